//! Compiling StableHLO and running executables, with donation.

use crate::api::{call, entry, Api};
use crate::buffer::{Buffer, ElementType};
use crate::client::{Client, ClientInner};
use crate::error::{Error, ErrorKind, Result};
use crate::ffi::*;
use crate::proto::CompileOptions;
use crate::signature::{parse_main_signature, Param, Sharding, Signature};
use std::ffi::c_char;
use std::sync::Arc;

/// An argument of [`Executable::execute`].
pub enum Arg<'a> {
    /// Read the buffer; it stays valid and unchanged.
    Keep(&'a Buffer),
    /// Give the buffer to the executable. If `@main` marks this input `tf.aliasing_output = i`, output
    /// `i` reuses its device memory (no copy, no new allocation); either way the buffer is consumed.
    Donate(Buffer),
}

impl Arg<'_> {
    fn buffer(&self) -> &Buffer {
        match self {
            Arg::Keep(b) => b,
            Arg::Donate(b) => b,
        }
    }
}

/// What a partitioned run returns: `outputs[device][output]`, and (when asked) per device and
/// argument whether the plugin consumed the buffer.
pub type PerDevice = (Vec<Vec<Buffer>>, Vec<Vec<bool>>);

/// The type and dims of one output, as the compiled executable reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputShape {
    pub element_type: ElementType,
    pub dims: Vec<i64>,
}

/// A compiled program (`PJRT_LoadedExecutable`). `Send + Sync`. A program compiled for one device
/// runs on the client's first device ([`Executable::execute`]); one partitioned over several
/// ([`crate::CompileOptions::spmd`]) runs on all of them at once ([`Executable::execute_sharded`]).
pub struct Executable {
    raw: *mut PJRT_LoadedExecutable,
    client: Arc<ClientInner>,
    num_outputs: usize,
    signature: Option<Signature>,
    outputs: Option<Vec<OutputShape>>,
    /// The devices it runs on, as client device indices, in the order of the argument lists.
    devices: Vec<usize>,
}

// SAFETY: PJRT loaded executables may be executed concurrently and destroyed from any thread.
unsafe impl Send for Executable {}
unsafe impl Sync for Executable {}

impl Drop for Executable {
    fn drop(&mut self) {
        let mut a = PJRT_LoadedExecutable_Destroy_Args::new();
        a.executable = self.raw;
        let _ = call!(
            self.client.api,
            PJRT_LoadedExecutable_Destroy,
            &mut a,
            "destroying an executable"
        );
    }
}

impl Client {
    /// Compiles StableHLO (text or bytecode, PJRT format "mlir") for 1 replica and 1 partition.
    pub fn compile(&self, mlir: &str) -> Result<Executable> {
        self.compile_with(mlir, &CompileOptions::default())
    }

    /// Compiles with explicit options.
    pub fn compile_with(&self, mlir: &str, opts: &CompileOptions) -> Result<Executable> {
        let ctx = "compiling a StableHLO module";
        let inner = &self.inner;
        let api = inner.api;
        let format = b"mlir";
        let mut program = PJRT_Program::new();
        // The plugin only reads `code` when compiling (the field is non-const because other calls
        // write it).
        program.code = mlir.as_ptr() as *mut c_char;
        program.code_size = mlir.len();
        program.format = format.as_ptr().cast::<c_char>();
        program.format_size = format.len();
        let options = opts.to_proto_bytes();
        let mut a = PJRT_Client_Compile_Args::new();
        a.client = inner.raw;
        a.program = &program;
        a.compile_options = options.as_ptr().cast::<c_char>();
        a.compile_options_size = options.len();
        call!(api, PJRT_Client_Compile, &mut a, ctx)?;
        if a.executable.is_null() {
            return Err(Error::new(
                ErrorKind::Plugin,
                ctx,
                "PJRT_Client_Compile returned no executable",
            ));
        }
        // Own it now so that errors below destroy it.
        let mut exe = Executable {
            raw: a.executable,
            client: inner.clone(),
            num_outputs: 0,
            signature: parse_main_signature(mlir),
            outputs: None,
            devices: Vec::new(),
        };
        let (num_outputs, outputs) = output_info(api, exe.raw)?;
        exe.num_outputs = num_outputs;
        exe.outputs = outputs;
        exe.devices = executable_devices(inner, exe.raw)?;
        Ok(exe)
    }
}

/// The devices a loaded executable runs on, as client device indices, in the plugin's order.
fn executable_devices(
    inner: &ClientInner,
    loaded: *mut PJRT_LoadedExecutable,
) -> Result<Vec<usize>> {
    let ctx = "reading a compiled executable's devices";
    let mut a = PJRT_LoadedExecutable_AddressableDevices_Args::new();
    a.executable = loaded;
    call!(
        inner.api,
        PJRT_LoadedExecutable_AddressableDevices,
        &mut a,
        ctx
    )?;
    let raw: &[*mut PJRT_Device] = if a.num_addressable_devices == 0 {
        &[]
    } else {
        // SAFETY: an array of num_addressable_devices handles owned by the executable.
        unsafe { std::slice::from_raw_parts(a.addressable_devices, a.num_addressable_devices) }
    };
    let devices: Option<Vec<usize>> = raw.iter().map(|&d| inner.device_index(d)).collect();
    match devices {
        Some(d) if !d.is_empty() => Ok(d),
        _ => Err(Error::new(
            ErrorKind::Plugin,
            ctx,
            "the executable runs on no device, or on one the client does not address",
        )),
    }
}

/// Number of outputs, and their types and dims when the plugin reports them.
fn output_info(
    api: &Api,
    loaded: *mut PJRT_LoadedExecutable,
) -> Result<(usize, Option<Vec<OutputShape>>)> {
    let ctx = "reading a compiled executable's outputs";
    let mut g = PJRT_LoadedExecutable_GetExecutable_Args::new();
    g.loaded_executable = loaded;
    call!(api, PJRT_LoadedExecutable_GetExecutable, &mut g, ctx)?;
    let exe = g.executable;
    let result = (|| {
        let mut n = PJRT_Executable_NumOutputs_Args::new();
        n.executable = exe;
        call!(api, PJRT_Executable_NumOutputs, &mut n, ctx)?;
        Ok((n.num_outputs, output_shapes(api, exe, n.num_outputs)))
    })();
    // GetExecutable hands us a reference we must release.
    let mut d = PJRT_Executable_Destroy_Args::new();
    d.executable = exe;
    let destroyed = call!(api, PJRT_Executable_Destroy, &mut d, ctx);
    let r = result?;
    destroyed?;
    Ok(r)
}

/// Output element types and dims; `None` if the plugin lacks the entries or they fail.
fn output_shapes(api: &Api, exe: *mut PJRT_Executable, n: usize) -> Option<Vec<OutputShape>> {
    entry!(api, PJRT_Executable_OutputElementTypes)?;
    entry!(api, PJRT_Executable_OutputDimensions)?;
    let mut t = PJRT_Executable_OutputElementTypes_Args::new();
    t.executable = exe;
    call!(api, PJRT_Executable_OutputElementTypes, &mut t, "").ok()?;
    let mut d = PJRT_Executable_OutputDimensions_Args::new();
    d.executable = exe;
    call!(api, PJRT_Executable_OutputDimensions, &mut d, "").ok()?;
    if t.num_output_types != n
        || d.num_outputs != n
        || (n > 0 && (t.output_types.is_null() || d.dim_sizes.is_null()))
    {
        return None;
    }
    let mut shapes = Vec::with_capacity(n);
    let mut offset = 0;
    for i in 0..n {
        // SAFETY: arrays of n entries (and sum(dim_sizes) dims) owned by the executable.
        let (ty, rank) = unsafe { (*t.output_types.add(i), *d.dim_sizes.add(i)) };
        let dims = if rank == 0 {
            Vec::new()
        } else {
            unsafe { std::slice::from_raw_parts(d.dims.add(offset), rank) }.to_vec()
        };
        offset += rank;
        shapes.push(OutputShape {
            element_type: ElementType::from_raw(ty),
            dims,
        });
    }
    Some(shapes)
}

impl Executable {
    pub fn num_outputs(&self) -> usize {
        self.num_outputs
    }

    /// The parameters of `@main` as read from the compiled text (`None` if it could not be read; then
    /// arguments are checked only by the plugin, which checks byte sizes, not types or dims).
    pub fn params(&self) -> Option<&[Param]> {
        self.signature.as_ref().map(|s| s.params.as_slice())
    }

    /// Output types and dims as the executable reports them (`None` if the plugin does not say).
    pub fn output_shapes(&self) -> Option<&[OutputShape]> {
        self.outputs.as_deref()
    }

    /// The devices it runs on (client device indices), in the order [`Executable::execute_sharded`]
    /// takes their argument lists.
    pub fn devices(&self) -> &[usize] {
        &self.devices
    }

    /// Runs on the client's device and waits for completion. `Keep` arguments are listed in
    /// `non_donatable_input_indices`; `Donate` arguments are consumed (their handles are destroyed
    /// after the run, also when it fails). Returns the outputs, resident on the device.
    pub fn execute(&self, args: Vec<Arg<'_>>) -> Result<Vec<Buffer>> {
        self.execute_one(args, false).map(|(outputs, _)| outputs)
    }

    /// Like [`Executable::execute`], and also reports, per argument, whether the plugin consumed
    /// (deleted) its buffer: true exactly for donated inputs whose memory an output took over.
    /// For tests and diagnostics of donation.
    pub fn execute_report(&self, args: Vec<Arg<'_>>) -> Result<(Vec<Buffer>, Vec<bool>)> {
        self.execute_one(args, true)
    }

    fn execute_one(&self, args: Vec<Arg<'_>>, report: bool) -> Result<(Vec<Buffer>, Vec<bool>)> {
        if self.devices.len() != 1 {
            return Err(Error::invalid(
                "executing a compiled program",
                format!(
                    "the program runs on {} devices: use execute_sharded with one argument list per device",
                    self.devices.len()
                ),
            ));
        }
        self.check_args(&args)?;
        let (mut outs, consumed) = self.run_lists(vec![args], report)?;
        Ok((
            outs.remove(0),
            consumed.into_iter().next().unwrap_or_default(),
        ))
    }

    /// Runs a program partitioned over several devices: one argument list per device, in
    /// [`Executable::devices`] order, and waits for every device. Each list holds that device's
    /// buffers: the whole value for a replicated parameter, the device's tile for a sharded one
    /// (`mhlo.sharding`). A parameter is kept or donated alike on every device (`Donate` gives each
    /// device's buffer to that device's run). Returns the outputs per device: `outputs[d][o]`.
    ///
    /// Everything is checked before the plugin is called, because a wrong call cannot be recovered
    /// from: the devices that started wait in a collective for the others, and the plugin aborts the
    /// process. The count of lists and of arguments, each buffer's client and device, element type
    /// and local shape (from `@main`'s types and shardings, which must therefore be readable), and
    /// that donation agrees across devices.
    pub fn execute_sharded(&self, lists: Vec<Vec<Arg<'_>>>) -> Result<Vec<Vec<Buffer>>> {
        self.check_sharded(&lists)?;
        self.run_lists(lists, false).map(|(outputs, _)| outputs)
    }

    /// [`Executable::execute_sharded`] that also reports, per device and argument, whether the
    /// plugin consumed the buffer (see [`Executable::execute_report`]).
    pub fn execute_sharded_report(&self, lists: Vec<Vec<Arg<'_>>>) -> Result<PerDevice> {
        self.check_sharded(&lists)?;
        self.run_lists(lists, true)
    }

    /// Calls `PJRT_LoadedExecutable_Execute` with one argument list per device (already checked).
    fn run_lists(&self, lists: Vec<Vec<Arg<'_>>>, report: bool) -> Result<PerDevice> {
        let api = self.client.api;
        let ctx = "executing a compiled program";
        let n = lists.len();
        let num_args = lists.first().map_or(0, Vec::len);
        let raws: Vec<Vec<*mut PJRT_Buffer>> = lists
            .iter()
            .map(|l| l.iter().map(|a| a.buffer().raw).collect())
            .collect();
        // Donation is per parameter, the same on every device (checked).
        let non_donatable: Vec<i64> = lists
            .first()
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, a)| matches!(a, Arg::Keep(_)))
            .map(|(i, _)| i as i64)
            .collect();
        let mut opts = PJRT_ExecuteOptions::new();
        opts.non_donatable_input_indices = non_donatable.as_ptr();
        opts.num_non_donatable_input_indices = non_donatable.len();
        let arg_lists: Vec<*const *mut PJRT_Buffer> = raws.iter().map(|r| r.as_ptr()).collect();
        let mut outs: Vec<Vec<*mut PJRT_Buffer>> = (0..n)
            .map(|_| vec![std::ptr::null_mut(); self.num_outputs])
            .collect();
        let out_lists: Vec<*mut *mut PJRT_Buffer> =
            outs.iter_mut().map(|o| o.as_mut_ptr()).collect();
        let mut done: Vec<*mut PJRT_Event> = vec![std::ptr::null_mut(); n];
        let mut a = PJRT_LoadedExecutable_Execute_Args::new();
        a.executable = self.raw;
        a.options = &mut opts;
        a.argument_lists = arg_lists.as_ptr();
        a.num_devices = n;
        a.num_args = num_args;
        a.output_lists = out_lists.as_ptr();
        a.device_complete_events = done.as_mut_ptr();
        let executed = call!(api, PJRT_LoadedExecutable_Execute, &mut a, ctx);
        // Take ownership of whatever outputs exist before looking at errors, so nothing leaks.
        let mut outputs = Vec::with_capacity(n);
        let mut wrap_error = None;
        for list in outs {
            let mut device_outputs = Vec::with_capacity(list.len());
            for raw in list.into_iter().filter(|p| !p.is_null()) {
                match Buffer::from_raw(self.client.clone(), raw, ctx) {
                    Ok(b) => device_outputs.push(b),
                    Err(e) => wrap_error = wrap_error.or(Some(e)),
                }
            }
            outputs.push(device_outputs);
        }
        let mut awaited = Ok(());
        for event in done {
            let r = api.await_event(event, ctx);
            if awaited.is_ok() {
                awaited = r;
            }
        }
        let mut consumed = Vec::new();
        if report {
            for l in &lists {
                let mut c = Vec::with_capacity(l.len());
                for a in l {
                    c.push(a.buffer().is_deleted()?);
                }
                consumed.push(c);
            }
        }
        drop(lists); // destroys the handles of donated inputs
        executed?;
        awaited?;
        if let Some(e) = wrap_error {
            return Err(e);
        }
        if let Some(got) = outputs
            .iter()
            .map(Vec::len)
            .find(|&l| l != self.num_outputs)
        {
            return Err(Error::new(
                ErrorKind::Plugin,
                ctx,
                format!(
                    "the plugin returned {got} outputs on a device, expected {}",
                    self.num_outputs
                ),
            ));
        }
        Ok((outputs, consumed))
    }

    /// Runs with every argument kept (nothing donated).
    pub fn run(&self, args: &[&Buffer]) -> Result<Vec<Buffer>> {
        self.execute(args.iter().map(|b| Arg::Keep(b)).collect())
    }

    /// Rejects in Rust what the plugin would reject confusingly or not at all.
    fn check_args(&self, args: &[Arg<'_>]) -> Result<()> {
        let ctx = "executing a compiled program";
        for (i, a) in args.iter().enumerate() {
            if !Arc::ptr_eq(&a.buffer().client, &self.client) {
                return Err(Error::invalid(
                    ctx,
                    format!("argument {i} is a buffer of another client"),
                ));
            }
        }
        let Some(sig) = &self.signature else {
            return Ok(());
        };
        if args.len() != sig.params.len() {
            return Err(Error::invalid(
                ctx,
                format!(
                    "@main takes {} arguments, {} were given",
                    sig.params.len(),
                    args.len()
                ),
            ));
        }
        for (i, (a, p)) in args.iter().zip(&sig.params).enumerate() {
            let Some(want) = &p.ty else { continue };
            let b = a.buffer();
            let dims_match = want.dims.len() == b.shape().len()
                && want
                    .dims
                    .iter()
                    .zip(b.shape())
                    .all(|(w, got)| w.is_none_or(|w| w == *got));
            if want.element_type != b.element_type() || !dims_match {
                return Err(Error::invalid(
                    ctx,
                    format!(
                        "argument {i} of @main must be {want}, got {}{:?}",
                        b.element_type(),
                        b.shape()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The checks of [`Executable::execute_sharded`] (see there).
    fn check_sharded(&self, lists: &[Vec<Arg<'_>>]) -> Result<()> {
        let ctx = "executing a partitioned program";
        let bad = |m: String| Err(Error::invalid(ctx, m));
        if lists.len() != self.devices.len() {
            return bad(format!(
                "the program runs on {} devices, {} argument lists were given",
                self.devices.len(),
                lists.len()
            ));
        }
        let Some(sig) = &self.signature else {
            return bad(
                "@main's signature could not be read, so the arguments cannot be checked".into(),
            );
        };
        // The local shape every device must get for each parameter.
        let mut local = Vec::with_capacity(sig.params.len());
        for (i, p) in sig.params.iter().enumerate() {
            let Some(ty) = &p.ty else {
                return bad(format!(
                    "the type of @main's argument {i} could not be read"
                ));
            };
            let Some(global) = ty.dims.iter().copied().collect::<Option<Vec<i64>>>() else {
                return bad(format!("@main's argument {i} has a dynamic shape ({ty})"));
            };
            let sharding = match (&p.sharding, self.devices.len()) {
                (Some(s), _) => Sharding::parse(s).ok_or_else(|| {
                    Error::invalid(
                        ctx,
                        format!(
                            "@main's argument {i} has sharding \"{s}\", which cannot be checked"
                        ),
                    )
                })?,
                (None, 1) => Sharding::Replicated,
                (None, _) => {
                    return bad(format!(
                        "@main's argument {i} has no mhlo.sharding: say how it is laid out"
                    ))
                }
            };
            let dims = sharding.local_dims(&global).ok_or_else(|| {
                Error::invalid(
                    ctx,
                    format!("@main's argument {i} ({ty}) does not fit its sharding {sharding:?}"),
                )
            })?;
            local.push((ty.element_type, dims));
        }
        for (d, list) in lists.iter().enumerate() {
            if list.len() != local.len() {
                return bad(format!(
                    "@main takes {} arguments, {} were given for device {d}",
                    local.len(),
                    list.len()
                ));
            }
            for (i, (a, (ty, dims))) in list.iter().zip(&local).enumerate() {
                let b = a.buffer();
                if !Arc::ptr_eq(&b.client, &self.client) {
                    return bad(format!(
                        "argument {i} for device {d} is a buffer of another client"
                    ));
                }
                if matches!(a, Arg::Keep(_)) != matches!(lists[0][i], Arg::Keep(_)) {
                    return bad(format!(
                        "argument {i} is donated on some devices and kept on others"
                    ));
                }
                let on = b.device()?;
                if on != self.devices[d] {
                    return bad(format!(
                        "argument {i} for device {d} (client device {}) is a buffer on client device {on}",
                        self.devices[d]
                    ));
                }
                if b.element_type() != *ty || b.shape() != &dims[..] {
                    return bad(format!(
                        "argument {i} for device {d} must be {}{dims:?} (its shard), got {}{:?}",
                        ty,
                        b.element_type(),
                        b.shape()
                    ));
                }
            }
        }
        Ok(())
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn ok<T: Send + Sync>() {}
    ok::<Executable>();
    ok::<Buffer>();
    ok::<Client>();
}
