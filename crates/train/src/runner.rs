//! The one step runner: compiled step programs and the state they run on, resident on the devices.
//! Training, per-epoch evaluation, checkpoint evaluation and `netspec bench` all run their steps
//! through a [`Runner`].
//!
//! A runner holds a train program, an eval program, or both, compiled by one
//! [`Executor`](crate::device::Executor), and one [`DeviceTensor`] per state tensor: the train
//! program's state inputs (parameters, optimizer state, BN running statistics, the step counter),
//! or, for an eval-only runner, the eval program's (parameters and BN statistics). Everything is
//! found by following [`nn::Program::inputs`] / [`nn::Program::outputs`] slot by slot; no position
//! is hard-coded, and the checkpoint name of each state tensor is [`state_name`].
//!
//! [`Runner::step`] donates every state tensor, keeps the batch and the learning rate, and takes the
//! aliased outputs as the new state: the state never leaves the devices, and only the two scalars
//! (loss, correct) are read back. [`Runner::evaluate`] runs the eval program over batches with the
//! state kept. [`Runner::state`] copies the state to the host (for checkpoints only). Batches and
//! rates are uploaded by an [`Uploader`], a cheap handle the batch producers use on their threads.

use std::time::{Duration, Instant};

use nn::{ElemType, Program, Slot, SlotKind};

use crate::batch::{HostBatch, Ready};
use crate::checkpoint::TensorData;
use crate::device::{Arg, DeviceTensor, Executable, Executor, HostSlice, Placement};
use crate::{Error, Result};

/// A state tensor on the host, named as in checkpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: TensorData,
}

/// The checkpoint name of a state slot (ARCHITECTURE.md, "Checkpoints"): parameters and BN buffers
/// by their `spec` name, optimizer state `opt.m.<name>` / `opt.v.<name>`, the counter `step`.
/// `None` for slots that are not state (batch, learning rate, metrics).
pub fn state_name(kind: &SlotKind) -> Option<&str> {
    match kind {
        SlotKind::Param(n) | SlotKind::OptState(n) | SlotKind::Buffer(n) => Some(n),
        SlotKind::Step => Some("step"),
        SlotKind::Images
        | SlotKind::Labels
        | SlotKind::LearningRate
        | SlotKind::Loss
        | SlotKind::Correct
        | SlotKind::Logits
        | SlotKind::Grad(_) => None,
    }
}

/// What one train step returns: its two metrics, still on the devices until read (each read is one
/// small copy to the host, from device 0).
pub struct StepOut {
    loss: DeviceTensor,
    correct: DeviceTensor,
}

impl StepOut {
    /// Mean loss of the batch.
    pub fn loss(&self) -> Result<f32> {
        self.loss.scalar_f32()
    }

    /// Correct top-1 predictions in the batch (before the update).
    pub fn correct(&self) -> Result<i32> {
        self.correct.scalar_i32()
    }
}

/// The result of an evaluation pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalOut {
    /// Sum of per-sample losses over the real (non-padding) samples.
    pub loss_sum: f64,
    pub correct: u64,
    pub total: u64,
}

impl EvalOut {
    pub const ZERO: EvalOut = EvalOut {
        loss_sum: 0.0,
        correct: 0,
        total: 0,
    };

    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
    pub fn mean_loss(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.loss_sum / self.total as f64
        }
    }
}

/// A batch on the devices: images `[B, C, H, W]` f32 and labels `[B]` i32, split over the devices
/// along `B`.
pub struct DeviceBatch {
    pub x: DeviceTensor,
    pub y: DeviceTensor,
}

/// Where each input of a program comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Input {
    /// The runner's state tensor at this index.
    State(usize),
    Images,
    Labels,
    Rate,
}

/// A compiled program and how its inputs and outputs connect to the runner.
struct Bound {
    program: Program,
    exe: Executable,
    compile_time: Duration,
    inputs: Vec<Input>,
    /// For each output, the state tensor it replaces (train: the aliased state outputs).
    next: Vec<Option<usize>>,
    loss: usize,
    correct: usize,
}

impl Bound {
    fn x_dims(&self) -> &[usize] {
        self.input_dims(Input::Images)
    }

    fn input_dims(&self, which: Input) -> &[usize] {
        match self.inputs.iter().position(|i| *i == which) {
            Some(i) => &self.program.inputs[i].dims,
            None => &[],
        }
    }

    /// Checks that a batch fits this program on `devices` devices: one tile per device, each of
    /// the program's shape with the batch divided by the device count. Done before anything is
    /// donated, so a wrong batch leaves the state intact.
    fn check_batch(&self, exec: &Executor, batch: &DeviceBatch, what: &str) -> Result<()> {
        let devices = exec.devices();
        for (t, which, name) in [
            (&batch.x, Input::Images, "images"),
            (&batch.y, Input::Labels, "labels"),
        ] {
            let global = self.input_dims(which);
            let mut tile = global.to_vec();
            tile[0] /= devices;
            let got = t.shard_dims();
            if t.devices() != devices || got != tile {
                return Err(Error::Invalid(format!(
                    "{what} step: the batch's {name} are {} tile(s) of {got:?}, the program takes \
                     {global:?} split into {devices} tile(s) of {tile:?}",
                    t.devices()
                )));
            }
            exec.check_placed(t, &format!("{what} step: the batch's {name}"))?;
        }
        Ok(())
    }
}

/// One state tensor.
struct State {
    name: String,
    slot: Slot,
    /// `None` before [`Runner::set_state`], while lent to a running step, or after a failed one.
    value: Option<DeviceTensor>,
}

fn find(slots: &[Slot], want: &SlotKind, what: &str, side: &str) -> Result<usize> {
    let mut hits = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| &s.kind == want)
        .map(|(i, _)| i);
    match (hits.next(), hits.next()) {
        (Some(i), None) => Ok(i),
        (None, _) => Err(Error::Invalid(format!(
            "{what} program: no {want:?} {side}"
        ))),
        (Some(_), Some(_)) => Err(Error::Invalid(format!(
            "{what} program: more than one {want:?} {side}"
        ))),
    }
}

/// Binds `program`'s inputs to `state` (by checkpoint name, same type and shape) and the batch, and
/// its aliased outputs back to the state (train). For the program that defines the state, the
/// state list is empty and is filled from its inputs.
fn bind(
    exec: &Executor,
    program: Program,
    train: bool,
    state: &mut Vec<State>,
    defines_state: bool,
) -> Result<Bound> {
    let what = if train { "train" } else { "eval" };
    let t0 = Instant::now();
    let exe = exec.compile(&program, what)?;
    let compile_time = t0.elapsed();
    let p = &program;
    find(&p.inputs, &SlotKind::Images, what, "input")?;
    find(&p.inputs, &SlotKind::Labels, what, "input")?;
    if train {
        find(&p.inputs, &SlotKind::LearningRate, what, "input")?;
        if p.aliases.len() != p.inputs.len() {
            return Err(Error::Invalid(format!(
                "train program: {} alias entries for {} inputs",
                p.aliases.len(),
                p.inputs.len()
            )));
        }
    }
    let mut inputs = Vec::with_capacity(p.inputs.len());
    let mut next = vec![None; p.outputs.len()];
    for (i, slot) in p.inputs.iter().enumerate() {
        let Some(name) = state_name(&slot.kind) else {
            inputs.push(match slot.kind {
                SlotKind::Images => Input::Images,
                SlotKind::Labels => Input::Labels,
                SlotKind::LearningRate if train => Input::Rate,
                _ => {
                    return Err(Error::Invalid(format!(
                        "{what} program input {i} ({:?}) is neither state nor batch",
                        slot.kind
                    )))
                }
            });
            continue;
        };
        let k = if defines_state {
            state.push(State {
                name: name.to_string(),
                slot: slot.clone(),
                value: None,
            });
            state.len() - 1
        } else {
            let k = state
                .iter()
                .position(|s| s.slot.kind == slot.kind)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{what} program input {i} ({name}) is not in the train state"
                    ))
                })?;
            if state[k].slot.dims != slot.dims || state[k].slot.elem != slot.elem {
                return Err(Error::Invalid(format!(
                    "{what} program input {i} ({name}) has shape {:?}, the train state {:?}",
                    slot.dims, state[k].slot.dims
                )));
            }
            k
        };
        inputs.push(Input::State(k));
        if train {
            let o = p.aliases[i].ok_or_else(|| {
                Error::Invalid(format!(
                    "train program: state input {i} ({name}) is not donated"
                ))
            })?;
            let out = p.outputs.get(o).ok_or_else(|| {
                Error::Invalid(format!(
                    "train program: input {i} ({name}) is aliased to missing output {o}"
                ))
            })?;
            if out.kind != slot.kind || out.dims != slot.dims || out.elem != slot.elem {
                return Err(Error::Invalid(format!(
                    "train program: input {i} ({name}) is aliased to output {o} of another kind or shape ({:?})",
                    out.kind
                )));
            }
            next[o] = Some(k);
        }
    }
    let loss = find(&p.outputs, &SlotKind::Loss, what, "output")?;
    let correct = find(&p.outputs, &SlotKind::Correct, what, "output")?;
    Ok(Bound {
        program,
        exe,
        compile_time,
        inputs,
        next,
        loss,
        correct,
    })
}

/// Compiled step programs and the state they run on (see the module doc).
pub struct Runner {
    exec: Executor,
    state: Vec<State>,
    train: Option<Bound>,
    eval: Option<Bound>,
    /// Set when a step failed after donating the state: the state is gone.
    poisoned: bool,
}

impl Runner {
    /// Compiles the programs and binds them together: the state is the train program's state
    /// inputs (or the eval program's, without a train program); every eval state input must be a
    /// train state input of the same type, and every train state input is aliased to an output of
    /// the same kind. The state must be set with [`Runner::set_state`] before the first step.
    pub fn new(exec: Executor, train: Option<Program>, eval: Option<Program>) -> Result<Runner> {
        let mut state = Vec::new();
        let defines = train.is_none();
        let train = match train {
            Some(p) => Some(bind(&exec, p, true, &mut state, true)?),
            None => None,
        };
        let eval = match eval {
            Some(p) => Some(bind(&exec, p, false, &mut state, defines)?),
            None => None,
        };
        if train.is_none() && eval.is_none() {
            return Err(Error::Invalid(
                "a runner needs a train or an eval program".into(),
            ));
        }
        Ok(Runner {
            exec,
            state,
            train,
            eval,
            poisoned: false,
        })
    }

    pub fn executor(&self) -> &Executor {
        &self.exec
    }

    /// How many devices each step runs on.
    pub fn devices(&self) -> usize {
        self.exec.devices()
    }

    fn bound(&self, train: bool) -> Result<&Bound> {
        let (b, what) = if train {
            (&self.train, "train")
        } else {
            (&self.eval, "eval")
        };
        b.as_ref()
            .ok_or_else(|| Error::Invalid(format!("this runner has no {what} program")))
    }

    /// The train program (`None` for an eval-only runner).
    pub fn train_program(&self) -> Option<&Program> {
        self.train.as_ref().map(|b| &b.program)
    }

    pub fn eval_program(&self) -> Option<&Program> {
        self.eval.as_ref().map(|b| &b.program)
    }

    /// XLA compile times of the train and eval programs (zero for a program the runner lacks).
    pub fn compile_times(&self) -> (Duration, Duration) {
        let t = |b: &Option<Bound>| b.as_ref().map_or(Duration::ZERO, |b| b.compile_time);
        (t(&self.train), t(&self.eval))
    }

    /// The state tensors in ABI order: `(checkpoint name, slot)`.
    pub fn state_slots(&self) -> impl Iterator<Item = (&str, &Slot)> {
        self.state.iter().map(|s| (s.name.as_str(), &s.slot))
    }

    /// Bytes of the state on one device.
    pub fn state_bytes(&self) -> u64 {
        self.state
            .iter()
            .map(|s| 4 * s.slot.dims.iter().product::<usize>() as u64)
            .sum()
    }

    /// A handle that uploads batches and rates for this runner's programs, from any thread.
    pub fn uploader(&self) -> Uploader {
        Uploader {
            exec: self.exec.clone(),
            train_x: self.train.as_ref().map(|b| b.x_dims().to_vec()),
            eval_x: self.eval.as_ref().map(|b| b.x_dims().to_vec()),
        }
    }

    /// Uploads the whole state: `source(name, slot)` gives each state tensor's values, which must
    /// match the slot's element type and element count.
    pub fn set_state(
        &mut self,
        mut source: impl FnMut(&str, &Slot) -> Result<TensorData>,
    ) -> Result<()> {
        for s in &mut self.state {
            let data = source(&s.name, &s.slot)?;
            let count: usize = s.slot.dims.iter().product();
            let (n, elem) = match &data {
                TensorData::F32(v) => (v.len(), ElemType::F32),
                TensorData::I32(v) => (v.len(), ElemType::I32),
            };
            if n != count || elem != s.slot.elem {
                return Err(Error::Invalid(format!(
                    "state tensor {}: got {n} {elem:?} values, the program needs {:?} {:?} ({count} values)",
                    s.name, s.slot.elem, s.slot.dims
                )));
            }
            let what = format!("state tensor {}", s.name);
            s.value = Some(self.exec.upload(
                HostSlice::from(&data),
                &s.slot.dims,
                Placement::Replicated,
                &what,
            )?);
        }
        self.poisoned = false;
        Ok(())
    }

    /// Checks that every device holds the same state, bit for bit (the state is replicated: each
    /// device computes the same update from the same all-reduced gradients). Reads every device's
    /// copy of every state tensor; an error names the first tensor and device that differ.
    pub fn check_replicas(&self) -> Result<()> {
        for (k, s) in self.state.iter().enumerate() {
            let copies = self.state_value(k)?.to_host_per_device()?;
            let bits = |t: &TensorData| -> Vec<u32> {
                match t {
                    TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
                    TensorData::I32(v) => v.iter().map(|&x| x as u32).collect(),
                }
            };
            let first = bits(&copies[0]);
            for (d, c) in copies.iter().enumerate().skip(1) {
                let other = bits(c);
                if let Some(i) = (0..first.len()).find(|&i| other.get(i) != first.get(i)) {
                    return Err(Error::Invalid(format!(
                        "state tensor {} differs between device 0 and device {d} at index {i} \
                         (bits {:08x} and {:08x}): the devices' replicas diverged",
                        s.name,
                        first[i],
                        other.get(i).copied().unwrap_or(0)
                    )));
                }
                if other.len() != first.len() {
                    return Err(Error::Invalid(format!(
                        "state tensor {} has {} values on device 0 and {} on device {d}",
                        s.name,
                        first.len(),
                        other.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Copies the whole state to the host (device 0's copy), in ABI order (for checkpoints).
    pub fn state(&self) -> Result<Vec<HostTensor>> {
        let mut out = Vec::with_capacity(self.state.len());
        for (k, s) in self.state.iter().enumerate() {
            out.push(HostTensor {
                name: s.name.clone(),
                dims: s.slot.dims.clone(),
                data: self.state_value(k)?.to_host()?,
            });
        }
        Ok(out)
    }

    fn state_value(&self, k: usize) -> Result<&DeviceTensor> {
        self.state[k].value.as_ref().ok_or_else(|| {
            Error::Invalid(if self.poisoned {
                "the training state was lost when a step failed".into()
            } else {
                "the training state was not uploaded".into()
            })
        })
    }

    /// One train step: donates the state, keeps the batch and `lr`; the aliased outputs become the
    /// state. Returns the loss and the correct count, to be read by the caller.
    pub fn step(&mut self, batch: &DeviceBatch, lr: &DeviceTensor) -> Result<StepOut> {
        let b = self.bound(true)?;
        for input in &b.inputs {
            if let Input::State(k) = input {
                self.state_value(*k)?;
            }
        }
        let b = self
            .train
            .as_ref()
            .ok_or_else(|| Error::Invalid("this runner has no train program".into()))?;
        b.check_batch(&self.exec, batch, "train")?;
        if lr.devices() != self.devices() || !lr.shard_dims().is_empty() {
            return Err(Error::Invalid(format!(
                "train step: the learning rate is {} buffer(s) of {:?}, the program takes a scalar on each of {} devices",
                lr.devices(),
                lr.shard_dims(),
                self.devices()
            )));
        }
        self.exec
            .check_placed(lr, "train step: the learning rate")?;
        let mut args = Vec::with_capacity(b.inputs.len());
        for input in &b.inputs {
            args.push(match *input {
                #[allow(clippy::expect_used, reason = "every state value was checked present above; an error here would drop the ones already taken")]
                Input::State(k) => Arg::Donate(self.state[k].value.take().expect("checked above")),
                Input::Images => Arg::Keep(&batch.x),
                Input::Labels => Arg::Keep(&batch.y),
                Input::Rate => Arg::Keep(lr),
            });
        }
        // From here the state is lent to the step; if it fails, it is gone.
        self.poisoned = true;
        let outs = self.exec.execute(&b.exe, args)?;
        let (mut loss, mut correct) = (None, None);
        for (o, t) in outs.into_iter().enumerate() {
            if let Some(k) = b.next[o] {
                self.state[k].value = Some(t);
            } else if o == b.loss {
                loss = Some(t);
            } else if o == b.correct {
                correct = Some(t);
            }
        }
        self.poisoned = false;
        match (loss, correct) {
            (Some(loss), Some(correct)) => Ok(StepOut { loss, correct }),
            _ => Err(Error::Invalid(
                "the train step returned no loss or correct output".into(),
            )),
        }
    }

    /// The eval program on one batch: `(loss sum, correct count)` over its rows labelled ≥ 0.
    pub fn eval_step(&self, batch: &DeviceBatch) -> Result<(f32, i32)> {
        let b = self.bound(false)?;
        b.check_batch(&self.exec, batch, "eval")?;
        let mut args = Vec::with_capacity(b.inputs.len());
        for input in &b.inputs {
            args.push(match *input {
                Input::State(k) => Arg::Keep(self.state_value(k)?),
                Input::Images => Arg::Keep(&batch.x),
                Input::Labels => Arg::Keep(&batch.y),
                Input::Rate => {
                    unreachable!("the eval program has no rate input (checked when bound)")
                }
            });
        }
        let outs = self.exec.execute(&b.exe, args)?;
        Ok((outs[b.loss].scalar_f32()?, outs[b.correct].scalar_i32()?))
    }

    /// Runs the eval program over uploaded batches (padding rows labelled −1 are not counted by
    /// the program; `rows` of each item is its count of real samples).
    pub fn evaluate(
        &self,
        batches: impl Iterator<Item = Result<Ready<DeviceBatch>>>,
    ) -> Result<EvalOut> {
        let mut acc = EvalOut::ZERO;
        for item in batches {
            let ready = item?;
            let (loss, correct) = self.eval_step(&ready.value)?;
            acc.loss_sum += loss as f64;
            acc.correct += correct.max(0) as u64;
            acc.total += ready.rows as u64;
        }
        Ok(acc)
    }
}

/// Uploads batches and learning rates for a runner's programs; cheap to clone, used by the batch
/// producers on their threads.
#[derive(Clone)]
pub struct Uploader {
    exec: Executor,
    train_x: Option<Vec<usize>>,
    eval_x: Option<Vec<usize>>,
}

impl Uploader {
    /// `[B, C, H, W]` of the train program's images.
    pub fn train_dims(&self) -> Result<&[usize]> {
        self.train_x
            .as_deref()
            .ok_or_else(|| Error::Invalid("this runner has no train program".into()))
    }

    /// `[B, C, H, W]` of the eval program's images.
    pub fn eval_dims(&self) -> Result<&[usize]> {
        self.eval_x
            .as_deref()
            .ok_or_else(|| Error::Invalid("this runner has no eval program".into()))
    }

    /// A batch for the train program (its shape checked against the program's).
    pub fn train_batch(&self, b: &HostBatch) -> Result<DeviceBatch> {
        self.batch(b, self.train_dims()?, "train")
    }

    /// A batch for the eval program (its shape checked against the program's).
    pub fn eval_batch(&self, b: &HostBatch) -> Result<DeviceBatch> {
        self.batch(b, self.eval_dims()?, "eval")
    }

    /// The learning rate, on every device.
    pub fn rate(&self, lr: f32) -> Result<DeviceTensor> {
        self.exec.upload(
            HostSlice::F32(&[lr]),
            &[],
            Placement::Replicated,
            "the learning rate",
        )
    }

    fn batch(&self, b: &HostBatch, dims: &[usize], what: &str) -> Result<DeviceBatch> {
        if b.shape[..] != dims[..] {
            return Err(Error::Invalid(format!(
                "{what} batch {} of epoch {} has shape {:?}, the program takes {:?}",
                b.index, b.epoch, b.shape, dims
            )));
        }
        self.upload(&b.x, &b.y, dims)
    }

    /// Images `x` of shape `dims` and their labels, split over the devices along the batch.
    pub fn upload(&self, x: &[f32], y: &[i32], dims: &[usize]) -> Result<DeviceBatch> {
        Ok(DeviceBatch {
            x: self
                .exec
                .upload(HostSlice::F32(x), dims, Placement::Batch, "a batch")?,
            y: self
                .exec
                .upload(HostSlice::I32(y), &[y.len()], Placement::Batch, "labels")?,
        })
    }
}
