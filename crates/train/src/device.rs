//! The device side of running step programs: what the [`crate::runner::Runner`] needs from an
//! executor, and nothing more.
//!
//! - [`Executor::compile`] a [`nn::Program`] into an [`Executable`];
//! - [`Executor::upload`] a host tensor as a [`DeviceTensor`], placed by a [`Placement`];
//! - [`Executor::execute`] an executable with each argument kept ([`Arg::Keep`]) or donated
//!   ([`Arg::Donate`]: its device memory may become an output's);
//! - read results back with [`DeviceTensor::to_host`] / [`DeviceTensor::scalar_f32`] /
//!   [`DeviceTensor::scalar_i32`].
//!
//! **Devices.** A [`DeviceTensor`] is one value of a program's signature on every device of the
//! run: one buffer per device, the whole value where it is [`Placement::Replicated`] (parameters,
//! optimizer state, BN statistics, the step counter, the learning rate) and the device's slice of
//! the batch where it is [`Placement::Batch`] (images and labels, split along their first
//! dimension). One execution runs the program once on every device with each device's buffers, and
//! a donated argument gives each device's buffer to that device's run. Results are read from
//! device 0. With one device ([`Executor::open`]) the two placements coincide;
//! [`Executor::open_devices`] opens N, for programs partitioned over them by XLA's SPMD partitioner
//! (`nn::train_step_on` and its kin: `@main` says, per parameter, `mhlo.sharding`), and
//! [`Executor::open_run`] picks the count a run uses by default (1 on CPU, every visible GPU on
//! CUDA). A program must be emitted for the executor's device count ([`nn::Program::partitions`]),
//! and every argument must hold one buffer per device: both are checked before anything runs, since
//! a wrong partitioned call cannot be recovered from (see `pjrt::Executable::execute_sharded`).
//!
//! **Executors.** Each is a variant of the enums below, matched exhaustively, so a new one (the
//! reference interpreter of issue 17, which evaluates the `graph::Graph` of a program directly) is
//! a variant and an arm in each `match` of this file; nothing outside this file knows which
//! executor runs. Two: [`Executor::Pjrt`], a PJRT client (XLA's CPU or CUDA plugin), and
//! [`Executor::Reference`], the reference interpreter (`interp`), which evaluates a program's
//! `graph::Graph` on the host (one device; tensors are host tensors; in f64 mode the state stays f64
//! from step to step, rounded to f32 only when read back).

use std::path::Path;

use crate::checkpoint::TensorData;
use crate::{Error, Result};

/// Runs programs on the devices of one run. Cheap to clone (shared), `Send + Sync`: the batch
/// producers upload from their own threads.
#[derive(Clone)]
pub enum Executor {
    /// A PJRT client; runs use its first `devices` devices.
    Pjrt {
        client: pjrt::Client,
        devices: usize,
    },
    /// The reference interpreter (no plugin): one host "device".
    Reference(interp::Options),
}

/// A compiled program.
pub enum Executable {
    Pjrt(pjrt::Executable),
    /// The graph the interpreter evaluates.
    Reference(graph::Graph),
}

/// One device's buffer.
enum Buffer {
    Pjrt(pjrt::Buffer),
    Host(std::sync::Arc<interp::Tensor>),
}

/// A value of a program's signature on every device of the run (see the module doc).
pub struct DeviceTensor {
    /// One buffer per device, in device order: never empty (only [`Executor::upload`] and
    /// [`Executor::execute`] make these).
    shards: Vec<Buffer>,
}

/// How a host tensor is laid out over the devices (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The whole value on every device.
    Replicated,
    /// Split along the first dimension, device `d` holding the `d`-th contiguous part.
    Batch,
}

/// Host data to upload, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum HostSlice<'a> {
    F32(&'a [f32]),
    I32(&'a [i32]),
}

impl HostSlice<'_> {
    fn len(&self) -> usize {
        match self {
            HostSlice::F32(v) => v.len(),
            HostSlice::I32(v) => v.len(),
        }
    }
}

impl<'a> From<&'a TensorData> for HostSlice<'a> {
    fn from(t: &'a TensorData) -> HostSlice<'a> {
        match t {
            TensorData::F32(v) => HostSlice::F32(v),
            TensorData::I32(v) => HostSlice::I32(v),
        }
    }
}

/// An argument of [`Executor::execute`].
pub enum Arg<'a> {
    /// Read it; it stays valid and unchanged.
    Keep(&'a DeviceTensor),
    /// Give it to the execution (on every device); it is consumed, also when the execution fails.
    Donate(DeviceTensor),
}

fn dims_i64(d: &[usize]) -> Vec<i64> {
    d.iter().map(|&v| v as i64).collect()
}

impl Executor {
    /// Opens the PJRT plugin for `device` (`plugin` overrides the search; see `pjrt::find_plugin`).
    pub fn open(device: pjrt::Device, plugin: Option<&Path>) -> Result<Executor> {
        let client = pjrt::Client::open(device, plugin)
            .map_err(|e| Error::device(format!("opening the {device} device"), e))?;
        Ok(Executor::Pjrt { client, devices: 1 })
    }

    /// Whether programs for this executor are generated with oneDNN convolution custom calls
    /// (`nn::with_conv_calls`): a single-device PJRT client that registered their handlers (XLA:CPU
    /// with oneDNN; `pjrt::onednn`). Partitioned programs keep XLA's convolutions (the SPMD
    /// partitioner cannot split a custom call), as does the reference interpreter.
    pub fn conv_calls(&self) -> bool {
        match self {
            Executor::Pjrt { client, devices } => *devices == 1 && client.conv_calls(),
            Executor::Reference(_) => false,
        }
    }

    /// The custom calls programs for this executor contain (`nn::Calls`): with [`Executor::conv_calls`],
    /// the convolution and Adam-update calls, and the dense-product calls where oneDNN runs AVX-512
    /// kernels (`pjrt::onednn::avx512_kernels`: with AVX2 kernels XLA's own dots measured faster,
    /// BENCHMARKS.md "Session 9").
    pub fn calls(&self) -> nn::Calls {
        if !self.conv_calls() {
            return nn::Calls::NONE;
        }
        nn::Calls {
            kernels: true,
            matmul: pjrt::onednn::avx512_kernels(),
        }
    }

    /// Runs `f`, which generates programs for this executor, with the formulation choices of
    /// [`Executor::calls`].
    pub fn codegen<T>(&self, f: impl FnOnce() -> T) -> T {
        nn::with_calls(self.calls(), f)
    }

    /// Opens `n` devices of the plugin for `device` (on CPU, a client with `n` CPU devices;
    /// elsewhere the first `n` visible ones). Programs are compiled partitioned over them.
    pub fn open_devices(device: pjrt::Device, plugin: Option<&Path>, n: usize) -> Result<Executor> {
        if n == 0 {
            return Err(Error::Invalid("--devices must be at least 1".into()));
        }
        let opts = match device {
            pjrt::Device::Cpu => pjrt::ClientOptions {
                cpu_device_count: Some(n as i64),
                ..pjrt::ClientOptions::for_device(device)
            },
            pjrt::Device::Cuda => pjrt::ClientOptions::for_device(device),
        };
        let client = pjrt::Client::open_with(device, plugin, &opts)
            .map_err(|e| Error::device(format!("opening {n} {device} devices"), e))?;
        if client.device_count() < n {
            return Err(Error::Invalid(format!(
                "{n} {device} devices asked for, the plugin has {}",
                client.device_count()
            )));
        }
        Ok(Executor::Pjrt { client, devices: n })
    }

    /// The reference interpreter in `precision` (f64: every float in f64, the state too; f32: every
    /// op's result rounded to f32, as the device stores it).
    pub fn reference(precision: interp::Precision) -> Executor {
        Executor::Reference(interp::Options::new(precision))
    }

    /// The executor a run uses: `devices` devices when given (see [`Executor::open_devices`]; 1 is
    /// [`Executor::open`]), else the default: 1 device on CPU (XLA:CPU already uses every core for
    /// one device), every visible GPU on CUDA.
    pub fn open_run(
        device: pjrt::Device,
        plugin: Option<&Path>,
        devices: Option<usize>,
    ) -> Result<Executor> {
        match (devices, device) {
            (Some(0), _) => Err(Error::Invalid("--devices must be at least 1".into())),
            (Some(1), _) | (None, pjrt::Device::Cpu) => Executor::open(device, plugin),
            (Some(n), _) => Executor::open_devices(device, plugin, n),
            (None, pjrt::Device::Cuda) => {
                let client = pjrt::Client::open(device, plugin)
                    .map_err(|e| Error::device(format!("opening the {device} devices"), e))?;
                let devices = client.device_count();
                Ok(Executor::Pjrt { client, devices })
            }
        }
    }

    /// The same devices' first one alone: programs emitted for 1 device run there (`bench`'s
    /// single-device baseline beside an N-device run).
    pub fn first_device(&self) -> Executor {
        match self {
            Executor::Pjrt { client, .. } => Executor::Pjrt {
                client: client.clone(),
                devices: 1,
            },
            Executor::Reference(_) => self.clone(),
        }
    }

    /// The devices one execution runs on, for messages: `1 cpu device`, `2 cuda devices (NVIDIA
    /// H100 …)`.
    pub fn describe(&self) -> String {
        match self {
            Executor::Pjrt { client, devices } => {
                let kind = client
                    .devices()
                    .first()
                    .map(|d| d.kind.clone())
                    .filter(|k| !k.is_empty() && *k != client.platform_name())
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default();
                let s = if *devices == 1 { "" } else { "s" };
                format!("{devices} {} device{s}{kind}", client.platform_name())
            }
            Executor::Reference(_) => {
                format!("1 {} device (the reference interpreter)", self.platform())
            }
        }
    }

    /// The platform's name (`cpu`, `cuda`, `reference-f64`, `reference-f32`).
    pub fn platform(&self) -> String {
        match self {
            Executor::Pjrt { client, .. } => client.platform_name(),
            Executor::Reference(o) => match o.precision {
                interp::Precision::F64 => "reference-f64".into(),
                interp::Precision::F32 => "reference-f32".into(),
            },
        }
    }

    /// How many devices one execution runs on.
    pub fn devices(&self) -> usize {
        match self {
            Executor::Pjrt { devices, .. } => *devices,
            Executor::Reference(_) => 1,
        }
    }

    /// Compiles a step program; `what` names it in errors. The program must be emitted for this
    /// executor's device count.
    pub fn compile(&self, program: &nn::Program, what: &str) -> Result<Executable> {
        if program.partitions != self.devices() {
            return Err(Error::Invalid(format!(
                "the {what} program is emitted for {} device(s), this run has {}",
                program.partitions,
                self.devices()
            )));
        }
        match self {
            Executor::Pjrt { client, devices } => {
                let opts = match devices {
                    1 => pjrt::CompileOptions::default(),
                    n => pjrt::CompileOptions::spmd(*n),
                };
                client.compile_with(&program.mlir, &opts)
            }
            .map(Executable::Pjrt)
            .map_err(|e| Error::device(format!("compiling the {what} step"), e)),
            Executor::Reference(_) => Ok(Executable::Reference(program.graph.clone())),
        }
    }

    /// Copies host data of shape `dims` to the devices as `placement` says; `what` names it in
    /// errors. A batch the devices do not divide evenly is an error.
    pub fn upload(
        &self,
        data: HostSlice<'_>,
        dims: &[usize],
        placement: Placement,
        what: &str,
    ) -> Result<DeviceTensor> {
        let count: usize = dims.iter().product();
        if data.len() != count {
            return Err(Error::Invalid(format!(
                "uploading {what}: {} values for shape {dims:?} ({count} values)",
                data.len()
            )));
        }
        let n = self.devices();
        let shard_dims = match placement {
            Placement::Replicated => dims.to_vec(),
            Placement::Batch => {
                let b = dims.first().copied().unwrap_or(0);
                if dims.is_empty() || b % n != 0 {
                    return Err(Error::Invalid(format!(
                        "uploading {what}: a batch of shape {dims:?} cannot be split evenly over {n} devices"
                    )));
                }
                let mut d = dims.to_vec();
                d[0] = b / n;
                d
            }
        };
        let shard_len: usize = shard_dims.iter().product();
        let mut shards = Vec::with_capacity(n);
        for device in 0..n {
            let range = match placement {
                Placement::Replicated => 0..count,
                Placement::Batch => device * shard_len..(device + 1) * shard_len,
            };
            let buffer = match self {
                Executor::Pjrt { client, .. } => {
                    let d = dims_i64(&shard_dims);
                    match data {
                        HostSlice::F32(v) => client.buffer_on(device, &v[range], &d),
                        HostSlice::I32(v) => client.buffer_on(device, &v[range], &d),
                    }
                    .map(Buffer::Pjrt)
                    .map_err(|e| Error::device(format!("uploading {what}"), e))?
                }
                Executor::Reference(_) => match data {
                    HostSlice::F32(v) => interp::Tensor::from_f32(&shard_dims, &v[range]),
                    HostSlice::I32(v) => interp::Tensor::from_i32(&shard_dims, &v[range]),
                }
                .map(|t| Buffer::Host(std::sync::Arc::new(t)))
                .map_err(|e| Error::Invalid(format!("uploading {what}: {e}")))?,
            };
            shards.push(buffer);
        }
        Ok(DeviceTensor { shards })
    }

    /// Checks that `t` is on this executor's devices: one buffer per device, made by this
    /// executor's client, buffer `d` on device `d` (`what` names it in errors). Cheap (one query
    /// per buffer); the runner checks batches with it before donating any state.
    pub fn check_placed(&self, t: &DeviceTensor, what: &str) -> Result<()> {
        let n = self.devices();
        if t.shards.len() != n {
            return Err(Error::Invalid(format!(
                "{what} is on {} device(s), this run has {n}",
                t.shards.len()
            )));
        }
        for (d, shard) in t.shards.iter().enumerate() {
            match (self, shard) {
                (Executor::Pjrt { client, .. }, Buffer::Pjrt(b)) => {
                    if !client.owns(b) {
                        return Err(Error::Invalid(format!(
                            "{what}: its buffer for device {d} belongs to another executor"
                        )));
                    }
                    let on = b
                        .device()
                        .map_err(|e| Error::device(format!("placing {what}"), e))?;
                    if on != d {
                        return Err(Error::Invalid(format!(
                            "{what}: its buffer for device {d} is on device {on}"
                        )));
                    }
                }
                // Host tensors live nowhere in particular: any is the interpreter's.
                (Executor::Reference(_), Buffer::Host(_)) => {}
                (Executor::Pjrt { .. }, Buffer::Host(_))
                | (Executor::Reference(_), Buffer::Pjrt(_)) => {
                    return Err(Error::Invalid(format!("{what}: {}", mixed())))
                }
            }
        }
        Ok(())
    }

    /// Runs `exe` once on every device and waits for it. Returns the outputs, resident on the
    /// devices. Every argument must hold one buffer per device of this executor (else an error,
    /// before anything runs; donated arguments are then dropped).
    pub fn execute(&self, exe: &Executable, args: Vec<Arg<'_>>) -> Result<Vec<DeviceTensor>> {
        let n = self.devices();
        for (i, a) in args.iter().enumerate() {
            let shards = match a {
                Arg::Keep(t) => t.shards.len(),
                Arg::Donate(t) => t.shards.len(),
            };
            if shards != n {
                return Err(Error::Invalid(format!(
                    "running a step program: argument {i} is on {shards} device(s), the program runs on {n}"
                )));
            }
        }
        match (self, exe) {
            (Executor::Reference(opts), Executable::Reference(g)) => {
                let mut ins = Vec::with_capacity(args.len());
                for a in args {
                    let shard = match a {
                        Arg::Keep(t) => match &t.shards[0] {
                            Buffer::Host(h) => h.as_ref().clone(),
                            Buffer::Pjrt(_) => return Err(mixed()),
                        },
                        Arg::Donate(t) => match t.shards.into_iter().next() {
                            Some(Buffer::Host(h)) => {
                                std::sync::Arc::try_unwrap(h).unwrap_or_else(|h| h.as_ref().clone())
                            }
                            Some(Buffer::Pjrt(_)) | None => return Err(mixed()),
                        },
                    };
                    ins.push(shard);
                }
                let outs = interp::run(g, &ins, opts).map_err(|e| {
                    Error::Invalid(format!(
                        "running a step program on the reference interpreter: {e}"
                    ))
                })?;
                Ok(outs
                    .into_iter()
                    .map(|t| DeviceTensor {
                        shards: vec![Buffer::Host(std::sync::Arc::new(t))],
                    })
                    .collect())
            }
            (Executor::Reference(_), Executable::Pjrt(_))
            | (Executor::Pjrt { .. }, Executable::Reference(_)) => Err(mixed()),
            (Executor::Pjrt { devices: 1, .. }, Executable::Pjrt(exe)) => {
                // One device: each argument's only buffer.
                let args = args
                    .into_iter()
                    .map(|a| match a {
                        Arg::Keep(t) => match &t.shards[0] {
                            Buffer::Pjrt(b) => Ok(pjrt::Arg::Keep(b)),
                            Buffer::Host(_) => Err(mixed()),
                        },
                        Arg::Donate(t) => match t.shards.into_iter().next() {
                            Some(Buffer::Pjrt(b)) => Ok(pjrt::Arg::Donate(b)),
                            Some(Buffer::Host(_)) => Err(mixed()),
                            None => unreachable!("a DeviceTensor has one buffer per device"),
                        },
                    })
                    .collect::<Result<Vec<_>>>()?;
                let outs = exe
                    .execute(args)
                    .map_err(|e| Error::device("running a step program", e))?;
                Ok(outs
                    .into_iter()
                    .map(|b| DeviceTensor {
                        shards: vec![Buffer::Pjrt(b)],
                    })
                    .collect())
            }
            (Executor::Pjrt { devices, .. }, Executable::Pjrt(exe)) => {
                // One argument list per device, each with that device's buffer of every argument.
                let n = *devices;
                let mut lists: Vec<Vec<pjrt::Arg<'_>>> =
                    (0..n).map(|_| Vec::with_capacity(args.len())).collect();
                for a in args {
                    match a {
                        Arg::Keep(t) => {
                            for (list, shard) in lists.iter_mut().zip(&t.shards) {
                                match shard {
                                    Buffer::Pjrt(b) => list.push(pjrt::Arg::Keep(b)),
                                    Buffer::Host(_) => return Err(mixed()),
                                }
                            }
                        }
                        Arg::Donate(t) => {
                            for (list, shard) in lists.iter_mut().zip(t.shards) {
                                match shard {
                                    Buffer::Pjrt(b) => list.push(pjrt::Arg::Donate(b)),
                                    Buffer::Host(_) => return Err(mixed()),
                                }
                            }
                        }
                    }
                }
                let per_device = exe
                    .execute_sharded(lists)
                    .map_err(|e| Error::device("running a step program", e))?;
                // outputs[o] gathers output o of every device.
                let mut outputs: Vec<DeviceTensor> = (0..exe.num_outputs())
                    .map(|_| DeviceTensor {
                        shards: Vec::with_capacity(n),
                    })
                    .collect();
                for device_outputs in per_device {
                    for (t, b) in outputs.iter_mut().zip(device_outputs) {
                        t.shards.push(Buffer::Pjrt(b));
                    }
                }
                Ok(outputs)
            }
        }
    }
}

/// A tensor of one executor given to another.
fn mixed() -> Error {
    Error::Invalid("a tensor or program of one executor was given to another".into())
}

/// A buffer's contents on the host (step programs' tensors are f32 or i32).
fn host_of(buffer: &Buffer) -> Result<TensorData> {
    let what = "copying a tensor to the host";
    match buffer {
        Buffer::Host(t) => match (t.to_f32(), t.ints()) {
            (Some(v), _) => Ok(TensorData::F32(v)),
            (None, Some(v)) => Ok(TensorData::I32(v.iter().map(|&x| x as i32).collect())),
            (None, None) => Err(Error::Invalid(format!(
                "{what}: a {} tensor (step programs' tensors are f32 or i32)",
                t.ty
            ))),
        },
        Buffer::Pjrt(b) => match b.element_type() {
            pjrt::ElementType::F32 => b.to_vec::<f32>().map(TensorData::F32),
            pjrt::ElementType::S32 => b.to_vec::<i32>().map(TensorData::I32),
            other => {
                return Err(Error::Invalid(format!(
                    "{what}: a {other} tensor (step programs' tensors are f32 or i32)"
                )))
            }
        }
        .map_err(|e| Error::device(what, e)),
    }
}

impl DeviceTensor {
    /// How many devices hold a buffer of this value.
    pub fn devices(&self) -> usize {
        self.shards.len()
    }

    /// The dims of each device's buffer (device 0's; every device's are the same by construction):
    /// the whole value's when replicated, one tile's when split along the batch.
    pub fn shard_dims(&self) -> Vec<usize> {
        match &self.shards[0] {
            Buffer::Pjrt(b) => b.shape().iter().map(|&d| d as usize).collect(),
            Buffer::Host(t) => t.ty.dims.clone(),
        }
    }

    /// Device 0's copy on the host (the whole value for replicated tensors; the first tile of a
    /// batch split over several devices).
    pub fn to_host(&self) -> Result<TensorData> {
        host_of(&self.shards[0])
    }

    /// Every device's copy on the host, in device order (replicated values must agree; a batch
    /// gives its tiles).
    pub fn to_host_per_device(&self) -> Result<Vec<TensorData>> {
        self.shards.iter().map(host_of).collect()
    }

    /// The value of an f32 scalar (device 0's).
    pub fn scalar_f32(&self) -> Result<f32> {
        match &self.shards[0] {
            Buffer::Host(t) => match t.to_f32().as_deref() {
                Some([x]) => Ok(*x),
                _ => Err(Error::Invalid(format!(
                    "reading an f32 scalar from a {}",
                    t.ty
                ))),
            },
            Buffer::Pjrt(b) => b
                .scalar::<f32>()
                .map_err(|e| Error::device("reading an f32 scalar", e)),
        }
    }

    /// The value of an i32 scalar (device 0's).
    pub fn scalar_i32(&self) -> Result<i32> {
        match &self.shards[0] {
            Buffer::Host(t) => match t.ints() {
                Some([x]) => Ok(*x as i32),
                _ => Err(Error::Invalid(format!(
                    "reading an i32 scalar from a {}",
                    t.ty
                ))),
            },
            Buffer::Pjrt(b) => b
                .scalar::<i32>()
                .map_err(|e| Error::device("reading an i32 scalar", e)),
        }
    }
}
