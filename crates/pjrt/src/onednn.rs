//! netspec's XLA:CPU custom calls: oneDNN convolutions and matrix products (`graph::ConvCall`,
//! `graph::MatMulCall`) and the Adam update (`graph::AdamCall`, kernel in `kernels.rs`): the handlers
//! behind `stablehlo.custom_call @netspec_conv2d_{forward,backward_data,backward_weights}`,
//! `@netspec_matmul` and `@netspec_adam`, and their registration through the plugin's PJRT FFI
//! extension.
//!
//! A matrix product is split into row tiles, an Adam update into element ranges, that run on XLA's
//! own intra-op threads (`XLA_FFI_ThreadPool_Schedule`), each product tile one single-threaded oneDNN
//! sgemm: the handler's thread takes tiles itself until none is left, so it never waits on a task that
//! has not started (no deadlock when the pool is busy), and a task that starts late finds no tile and
//! touches nothing. The handler then returns an FFI future that the thread finishing the last tile
//! completes, so no thread waits for another's tile (`run_on_pool`). oneDNN's own OpenMP team is not
//! used there: its threads woke too slowly between the short products and competed with XLA's
//! (BENCHMARKS.md "Session 8").
//!
//! The kernels are `csrc/onednn_conv.c` (oneDNN 2.x C API, library opened with `dlopen`); this file is
//! the typed-FFI side: the call frame's buffers and attributes in, one kernel call, an `XLA_FFI_Error`
//! out on failure. Hand-written `repr(C)` declarations of the few XLA FFI structs a handler reads
//! (`xla/ffi/api/c_api.h`, FFI API 0.2 in the pinned plugin, as `ffi.rs` does for PJRT), because no
//! maintained crate binds the XLA FFI.
//!
//! Protocol facts (checked against the pinned plugin): XLA calls each handler once when it is
//! registered, with a metadata extension in `extension_start`, to learn the FFI version it was built
//! for (answered with the runtime's own version); the plugin's `register_handler` does not report a
//! rejected handler, which would surface only at compile time ("No FFI handler registered"); only
//! the execute stage reaches the handler. Attributes come sorted by name; `i64` scalars are `S64`.
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Mutex;

use crate::api::Api;

// ------------------------------------------------------------------ XLA FFI (the subset read here)
#[repr(C)]
struct XLA_FFI_Extension_Base {
    struct_size: usize,
    kind: c_int,
    next: *mut XLA_FFI_Extension_Base,
}
const XLA_FFI_Extension_Metadata: c_int = 1;

#[repr(C)]
#[derive(Clone, Copy)]
struct XLA_FFI_Api_Version {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    major_version: c_int,
    minor_version: c_int,
}
const XLA_FFI_Api_Version_STRUCT_SIZE: usize = 24;

#[repr(C)]
struct XLA_FFI_Metadata {
    struct_size: usize,
    api_version: XLA_FFI_Api_Version,
    traits: u32,
}
#[repr(C)]
struct XLA_FFI_Metadata_Extension {
    base: XLA_FFI_Extension_Base,
    metadata: *mut XLA_FFI_Metadata,
}

enum XLA_FFI_Error {}

#[repr(C)]
struct XLA_FFI_Error_Create_Args {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    message: *const c_char,
    errc: c_int,
}
const XLA_FFI_Error_Create_Args_STRUCT_SIZE: usize = 28;
const XLA_FFI_Error_Code_INVALID_ARGUMENT: c_int = 3;
const XLA_FFI_Error_Code_INTERNAL: c_int = 13;

/// The head of `XLA_FFI_Api`, up to the one entry a handler calls.
#[repr(C)]
struct XLA_FFI_Api {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    api_version: XLA_FFI_Api_Version,
    internal_api: *const c_void,
    XLA_FFI_Error_Create:
        Option<unsafe extern "C" fn(args: *mut XLA_FFI_Error_Create_Args) -> *mut XLA_FFI_Error>,
    /// Error_GetMessage … DeviceMemory_Free, not called here.
    _unused: [*const c_void; 10],
    XLA_FFI_ThreadPool_Schedule: Option<
        unsafe extern "C" fn(args: *mut XLA_FFI_ThreadPool_Schedule_Args) -> *mut XLA_FFI_Error,
    >,
    XLA_FFI_ThreadPool_NumThreads: Option<
        unsafe extern "C" fn(args: *mut XLA_FFI_ThreadPool_NumThreads_Args) -> *mut XLA_FFI_Error,
    >,
    XLA_FFI_Future_Create:
        Option<unsafe extern "C" fn(args: *mut XLA_FFI_Future_Create_Args) -> *mut XLA_FFI_Error>,
    XLA_FFI_Future_SetAvailable: Option<
        unsafe extern "C" fn(args: *mut XLA_FFI_Future_SetAvailable_Args) -> *mut XLA_FFI_Error,
    >,
    XLA_FFI_Future_SetError:
        Option<unsafe extern "C" fn(args: *mut XLA_FFI_Future_SetError_Args) -> *mut XLA_FFI_Error>,
}
/// `struct_size` of an API table that has the future entries (and call frames with `future`).
const XLA_FFI_WITH_FUTURES: usize = 176;

enum XLA_FFI_Future {}
#[repr(C)]
struct XLA_FFI_Future_Create_Args {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    future: *mut XLA_FFI_Future,
}
#[repr(C)]
struct XLA_FFI_Future_SetAvailable_Args {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    future: *mut XLA_FFI_Future,
}
#[repr(C)]
struct XLA_FFI_Future_SetError_Args {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    future: *mut XLA_FFI_Future,
    error: *mut XLA_FFI_Error,
}
/// `struct_size` of an API table that has the thread-pool entries.
const XLA_FFI_Api_WITH_THREAD_POOL: usize = 152;

#[repr(C)]
struct XLA_FFI_ThreadPool_Schedule_Args {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    ctx: *mut c_void,
    task: Option<unsafe extern "C" fn(data: *mut c_void)>,
    data: *mut c_void,
}
#[repr(C)]
struct XLA_FFI_ThreadPool_NumThreads_Args {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    ctx: *mut c_void,
    num_threads: *mut i64,
}

const XLA_FFI_DataType_S64: c_int = 5;
const XLA_FFI_DataType_F32: c_int = 11;
const XLA_FFI_AttrType_SCALAR: c_int = 3;
const XLA_FFI_ExecutionStage_EXECUTE: c_int = 3;

#[repr(C)]
struct XLA_FFI_Buffer {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    dtype: c_int,
    data: *mut c_void,
    rank: i64,
    dims: *const i64,
}
#[repr(C)]
struct XLA_FFI_ByteSpan {
    ptr: *const c_char,
    len: usize,
}
#[repr(C)]
struct XLA_FFI_Scalar {
    dtype: c_int,
    value: *const c_void,
}
/// `XLA_FFI_Args` and `XLA_FFI_Rets` share this layout.
#[repr(C)]
struct XLA_FFI_List {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    size: i64,
    types: *const c_int,
    items: *const *mut c_void,
}
#[repr(C)]
struct XLA_FFI_Attrs {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    size: i64,
    types: *const c_int,
    names: *const *const XLA_FFI_ByteSpan,
    attrs: *const *const c_void,
}
#[repr(C)]
struct XLA_FFI_CallFrame {
    struct_size: usize,
    extension_start: *mut XLA_FFI_Extension_Base,
    api: *const XLA_FFI_Api,
    ctx: *mut c_void,
    stage: c_int,
    args: XLA_FFI_List,
    rets: XLA_FFI_List,
    attrs: XLA_FFI_Attrs,
    /// Out: set by a handler that finishes after returning (present when the API table has the
    /// future entries; the frame's own `struct_size` still ends at `attrs`).
    future: *mut XLA_FFI_Future,
}

// ------------------------------------------------------------------ PJRT FFI extension
#[repr(C)]
struct PJRT_Extension_Base {
    struct_size: usize,
    kind: c_int,
    next: *const PJRT_Extension_Base,
}
const PJRT_Extension_Type_FFI: c_int = 5;

#[repr(C)]
struct PJRT_FFI_Register_Handler_Args {
    struct_size: usize,
    target_name: *const c_char,
    target_name_size: usize,
    handler: *mut c_void,
    platform_name: *const c_char,
    platform_name_size: usize,
    traits: u32,
}
const PJRT_FFI_Register_Handler_Args_STRUCT_SIZE: usize = 52;

#[repr(C)]
struct PJRT_FFI_Extension {
    base: PJRT_Extension_Base,
    type_register: *const c_void,
    user_data_add: *const c_void,
    register_handler: Option<
        unsafe extern "C" fn(
            args: *mut PJRT_FFI_Register_Handler_Args,
        ) -> *mut crate::ffi::PJRT_Error,
    >,
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(XLA_FFI_CallFrame, args) == 40);
    assert!(offset_of!(XLA_FFI_CallFrame, rets) == 80);
    assert!(offset_of!(XLA_FFI_CallFrame, attrs) == 120);
    assert!(size_of::<XLA_FFI_Buffer>() == 48);
    assert!(offset_of!(XLA_FFI_Api, XLA_FFI_Error_Create) == 48);
    assert!(offset_of!(XLA_FFI_Api, XLA_FFI_ThreadPool_Schedule) == 136);
    assert!(offset_of!(XLA_FFI_Api, XLA_FFI_Future_Create) == XLA_FFI_Api_WITH_THREAD_POOL);
    assert!(size_of::<XLA_FFI_Api>() == XLA_FFI_WITH_FUTURES);
    assert!(size_of::<XLA_FFI_CallFrame>() == XLA_FFI_WITH_FUTURES);
    assert!(size_of::<XLA_FFI_ThreadPool_Schedule_Args>() == 40);
    assert!(size_of::<XLA_FFI_ThreadPool_NumThreads_Args>() == 32);
    assert!(offset_of!(PJRT_FFI_Register_Handler_Args, traits) == 48);
    assert!(offset_of!(PJRT_FFI_Extension, register_handler) == 40);
};

// ------------------------------------------------------------------ the kernels (csrc/onednn_conv.c)
#[cfg(netspec_onednn)]
extern "C" {
    fn netspec_dnnl_init(err: *mut c_char, len: usize) -> c_int;
    fn netspec_dnnl_matmul_rows(
        ta: c_int,
        tb: c_int,
        m: i64,
        n: i64,
        k: i64,
        a: *const f32,
        b: *const f32,
        c_rows: *mut f32,
        m0: i64,
        m1: i64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn netspec_dnnl_conv(
        pass: c_int,
        g: *const i64,
        a: *const f32,
        b: *const f32,
        out: *mut f32,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn netspec_dnnl_impl(
        pass: c_int,
        g: *const i64,
        name: *mut c_char,
        name_len: usize,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
}

fn message(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether oneDNN's (and netspec's own) kernels run AVX-512 code here: the CPU has it and no
/// `ONEDNN_MAX_CPU_ISA` / `NETSPEC_MAX_ISA` holds them to less. The dense-product calls are chosen by
/// it (`train::Executor::calls`).
pub fn avx512_kernels() -> bool {
    crate::kernels::isa() >= 2
}

/// Opens oneDNN (once per process): `Err` says why the convolution calls are unavailable.
pub fn init() -> std::result::Result<(), String> {
    #[cfg(netspec_onednn)]
    {
        let mut err = [0u8; 256];
        // SAFETY: err is writable for its length; the C side NUL-terminates.
        match unsafe { netspec_dnnl_init(err.as_mut_ptr().cast(), err.len()) } {
            0 => Ok(()),
            _ => Err(message(&err)),
        }
    }
    #[cfg(not(netspec_onednn))]
    Err("this netspec was built without oneDNN's header (scripts/setup.sh onednn installs Debian's libdnnl-dev; then rebuild)".into())
}

/// The convolution geometry the kernels take: `n h w c o kh kw sh sw pt pb pl pr`.
pub type Geometry = [i64; 13];

/// Runs pass `pass` (0 forward `(x, w) -> y`, 1 backward data `(dy, w) -> dx`, 2 backward weights
/// `(x, dy) -> dw`) on host slices laid out as in `graph::ConvCall` (NHWC, HWIO). For tests and
/// benchmarks of the kernels themselves; the compiled program calls them through the handlers.
pub fn conv(
    pass: i32,
    g: &Geometry,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
) -> std::result::Result<(), String> {
    let [n, h, w, c, o, kh, kw, sh, sw, pt, pb, pl, pr] = g.map(|v| v.max(0) as usize);
    let oh = (h + pt + pb)
        .checked_sub(kh)
        .map(|r| r / sh.max(1) + 1)
        .unwrap_or(0);
    let ow = (w + pl + pr)
        .checked_sub(kw)
        .map(|r| r / sw.max(1) + 1)
        .unwrap_or(0);
    let (x, k, y) = (n * h * w * c, kh * kw * c * o, n * oh * ow * o);
    let want = match pass {
        0 => (x, k, y),
        1 => (y, k, x),
        2 => (x, y, k),
        _ => return Err(format!("unknown convolution pass {pass}")),
    };
    if (a.len(), b.len(), out.len()) != want {
        return Err(format!(
            "buffer sizes {:?} do not match geometry {g:?} (expected {want:?})",
            (a.len(), b.len(), out.len())
        ));
    }
    run(pass, g, a.as_ptr(), b.as_ptr(), out.as_mut_ptr())
}

/// The oneDNN implementation chosen for a pass and geometry (e.g. `brgconv:avx512_core`).
pub fn implementation(pass: i32, g: &Geometry) -> std::result::Result<String, String> {
    #[cfg(netspec_onednn)]
    {
        let (mut name, mut err) = ([0u8; 128], [0u8; 256]);
        // SAFETY: g has 13 entries; the buffers are writable for their lengths.
        let r = unsafe {
            netspec_dnnl_impl(
                pass,
                g.as_ptr(),
                name.as_mut_ptr().cast(),
                name.len(),
                err.as_mut_ptr().cast(),
                err.len(),
            )
        };
        if r == 0 {
            Ok(message(&name))
        } else {
            Err(message(&err))
        }
    }
    #[cfg(not(netspec_onednn))]
    {
        let _ = (pass, g);
        init().map(|_| String::new())
    }
}

fn run(
    pass: i32,
    g: &Geometry,
    a: *const f32,
    b: *const f32,
    out: *mut f32,
) -> std::result::Result<(), String> {
    #[cfg(netspec_onednn)]
    {
        let mut err = [0u8; 256];
        // SAFETY: the caller checked (or XLA guarantees) that the buffers match the geometry.
        match unsafe {
            netspec_dnnl_conv(
                pass,
                g.as_ptr(),
                a,
                b,
                out,
                err.as_mut_ptr().cast(),
                err.len(),
            )
        } {
            0 => Ok(()),
            _ => Err(message(&err)),
        }
    }
    #[cfg(not(netspec_onednn))]
    {
        let _ = (pass, g, a, b, out);
        init()
    }
}

/// The product `c = op(a)·op(b)` of a `graph::MatMulCall` on host slices (`op(a) : [m, k]`,
/// `op(b) : [k, n]`, row-major; `ta`/`tb`: stored transposed), as `tiles` row tiles run one after
/// another on this thread: the tests' entry to the kernels behind the
/// handler, which runs the tiles on XLA's threads.
pub fn matmul(
    ta: bool,
    tb: bool,
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    tiles: usize,
) -> std::result::Result<(), String> {
    if (a.len(), b.len(), c.len()) != (m * k, k * n, m * n) || tiles == 0 {
        return Err(format!(
            "buffer sizes {:?} do not match m, k, n = {m}, {k}, {n} (or no tiles)",
            (a.len(), b.len(), c.len())
        ));
    }
    let job = matmul_job(
        (ta, tb),
        (m as i64, n as i64, k as i64),
        (a.as_ptr(), b.as_ptr(), c.as_mut_ptr()),
        tiles,
    );
    job.work();
    job.result()
}

/// One `graph::AdamCall` update on host slices, in place, as `tiles` element ranges run one after
/// another on this thread (the tests' entry to the kernel behind the handler). `k` = `[β₁, β₂, ε, λ,
/// lr, r1, r2]` (`rᵢ`: the bias corrections' reciprocals).
pub fn adam(
    w: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    k: [f32; 7],
    tiles: usize,
) -> std::result::Result<(), String> {
    let n = w.len();
    if (m.len(), v.len(), g.len()) != (n, n, n) || tiles == 0 {
        return Err(format!(
            "buffer sizes {:?} differ (or no tiles)",
            (n, m.len(), v.len(), g.len())
        ));
    }
    let rows = n.div_ceil(tiles).max(1);
    let job = adam_job(
        [w.as_ptr(), m.as_ptr(), v.as_ptr(), g.as_ptr()],
        [w.as_mut_ptr(), m.as_mut_ptr(), v.as_mut_ptr()],
        n,
        k,
        rows,
    );
    job.work();
    job.result()
}

/// One `graph::AdamCall` update with a product gradient `op(a)·op(b)` (`ta`/`tb`: stored transposed;
/// `op(a) : [m, k]`, `op(b) : [k, n]`, `w, m, v : [m, n]`) on host slices, in place, as tiles of `rows`
/// rows run one after another on this thread (the tests' entry to the handler's kernel; `k` as for
/// [`adam`]).
#[allow(clippy::too_many_arguments)]
pub fn adam_product(
    (ta, tb): (bool, bool),
    (rm, rk, rn): (usize, usize, usize),
    a: &[f32],
    b: &[f32],
    [w, m, v]: [&mut [f32]; 3],
    k: [f32; 7],
    rows: usize,
) -> std::result::Result<(), String> {
    let n = rm * rn;
    if (a.len(), b.len(), w.len(), m.len(), v.len()) != (rm * rk, rk * rn, n, n, n) || rows == 0 {
        return Err(format!(
            "buffer sizes {:?} do not match m, k, n = {rm}, {rk}, {rn} (or no rows)",
            (a.len(), b.len(), w.len(), m.len(), v.len())
        ));
    }
    let job = adam_product_job(
        (ta, tb),
        (rm as i64, rn as i64, rk as i64),
        (a.as_ptr(), b.as_ptr()),
        [w.as_ptr(), m.as_ptr(), v.as_ptr()],
        [w.as_mut_ptr(), m.as_mut_ptr(), v.as_mut_ptr()],
        k,
        rows as i64,
    );
    job.work();
    job.result()
}

/// Work split into tiles that XLA's intra-op threads and the handler's own thread claim one by one
/// (see the module doc). Shared through an `Arc`; the buffers a tile touches are the call's, alive
/// until every tile is done, and a tile is only run while claimed.
struct PoolJob {
    tiles: usize,
    tile: Box<dyn Fn(usize) -> std::result::Result<(), String> + Send + Sync>,
    next: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
    error: Mutex<Option<String>>,
    /// The XLA future the thread finishing the last tile completes (`run_on_pool`), with the API
    /// table and the call's target (for an error's message); addresses, set before any tile runs.
    future: std::sync::OnceLock<(usize, usize, &'static str)>,
}

impl PoolJob {
    fn new(
        tiles: usize,
        tile: impl Fn(usize) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> PoolJob {
        PoolJob {
            tiles,
            tile: Box::new(tile),
            next: std::sync::atomic::AtomicUsize::new(0),
            done: std::sync::atomic::AtomicUsize::new(0),
            error: Mutex::new(None),
            future: std::sync::OnceLock::new(),
        }
    }

    /// Runs tiles until none is left to claim.
    fn work(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let i = self.next.fetch_add(1, Ordering::AcqRel);
            if i >= self.tiles {
                return;
            }
            if let Err(e) = (self.tile)(i) {
                *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            }
            if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.tiles {
                self.complete();
            }
        }
    }

    /// After the last tile: makes the call's future available (or failed), when it has one.
    fn complete(&self) {
        let Some(&(api, future, target)) = self.future.get() else {
            return;
        };
        let api = api as *const XLA_FFI_Api;
        let future = future as *mut XLA_FFI_Future;
        // SAFETY: the API table is the runtime's (static); the future was created by it for this
        // call and is completed exactly once, here (only the last tile's thread gets here).
        unsafe {
            match self.result() {
                Ok(()) => {
                    if let Some(set) = (*api).XLA_FFI_Future_SetAvailable {
                        let mut a = XLA_FFI_Future_SetAvailable_Args {
                            struct_size: std::mem::size_of::<XLA_FFI_Future_SetAvailable_Args>(),
                            extension_start: std::ptr::null_mut(),
                            future,
                        };
                        set(&mut a);
                    }
                }
                Err(m) => {
                    let error = error_object(api, target, XLA_FFI_Error_Code_INTERNAL, &m);
                    if let Some(set) = (*api).XLA_FFI_Future_SetError {
                        let mut a = XLA_FFI_Future_SetError_Args {
                            struct_size: std::mem::size_of::<XLA_FFI_Future_SetError_Args>(),
                            extension_start: std::ptr::null_mut(),
                            future,
                            error,
                        };
                        set(&mut a);
                    }
                }
            }
        }
    }

    /// Waits for tiles other threads are running (they finish without waiting on anything).
    fn wait(&self) {
        use std::sync::atomic::Ordering;
        let mut spins = 0u32;
        while self.done.load(Ordering::Acquire) < self.tiles {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn result(&self) -> std::result::Result<(), String> {
        match self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A scheduled task: the job's `Arc` handed over as a raw pointer.
///
/// # Safety
/// `data` is an `Arc<PoolJob>` turned into a raw pointer, owned by this call.
unsafe extern "C" fn pool_task(data: *mut c_void) {
    let job = std::sync::Arc::from_raw(data as *const PoolJob);
    job.work();
}

/// XLA's intra-op thread count for this call (1 when the API table predates the thread pool).
///
/// # Safety
/// `cf` is an execute-stage call frame from XLA.
unsafe fn pool_threads(cf: &XLA_FFI_CallFrame) -> usize {
    let api = &*cf.api;
    let mut threads: i64 = 1;
    if let (true, Some(num)) = (
        api.struct_size >= XLA_FFI_Api_WITH_THREAD_POOL,
        api.XLA_FFI_ThreadPool_NumThreads,
    ) {
        let mut na = XLA_FFI_ThreadPool_NumThreads_Args {
            struct_size: std::mem::size_of::<XLA_FFI_ThreadPool_NumThreads_Args>(),
            extension_start: std::ptr::null_mut(),
            ctx: cf.ctx,
            num_threads: &mut threads,
        };
        if !num(&mut na).is_null() {
            threads = 1;
        }
    }
    threads.max(1) as usize
}

/// Runs `job` on XLA's intra-op threads and this one: schedules up to `helpers` tasks (no more than
/// there are tiles besides the first) and takes tiles itself until none is left. Where the runtime
/// takes futures, the call then returns at once and the thread that finishes the last tile completes
/// the call's future (XLA runs the call's dependents from there), so no thread ever waits; otherwise
/// this thread waits for the running tiles.
///
/// # Safety
/// `cf` is an execute-stage call frame from XLA, not read through any reference after this call.
unsafe fn run_on_pool(
    cf: *mut XLA_FFI_CallFrame,
    target: &'static str,
    job: PoolJob,
    helpers: usize,
) -> std::result::Result<(), String> {
    let api = (*cf).api;
    let job = std::sync::Arc::new(job);
    let pool = (*api).struct_size >= XLA_FFI_Api_WITH_THREAD_POOL;
    let mut asynchronous = false;
    // The call frame's `future` came with the API's future entries (its `struct_size` still ends at
    // `attrs`, the struct-traits macro was not moved), so the API table's size says it is there.
    if job.tiles > 1 && (*api).struct_size >= XLA_FFI_WITH_FUTURES {
        if let Some(create) = (*api).XLA_FFI_Future_Create {
            let mut a = XLA_FFI_Future_Create_Args {
                struct_size: std::mem::size_of::<XLA_FFI_Future_Create_Args>(),
                extension_start: std::ptr::null_mut(),
                future: std::ptr::null_mut(),
            };
            if create(&mut a).is_null() && !a.future.is_null() {
                let _ = job.future.set((api as usize, a.future as usize, target));
                std::ptr::addr_of_mut!((*cf).future).write(a.future);
                asynchronous = true;
            }
        }
    }
    if let (true, Some(schedule)) = (pool, (*api).XLA_FFI_ThreadPool_Schedule) {
        for _ in 0..helpers.min(job.tiles.saturating_sub(1)) {
            let data = std::sync::Arc::into_raw(job.clone()) as *mut c_void;
            let mut sa = XLA_FFI_ThreadPool_Schedule_Args {
                struct_size: std::mem::size_of::<XLA_FFI_ThreadPool_Schedule_Args>(),
                extension_start: std::ptr::null_mut(),
                ctx: (*cf).ctx,
                task: Some(pool_task),
                data,
            };
            if !schedule(&mut sa).is_null() {
                // Not scheduled (XLA's error object is left to it): take the reference back; this
                // thread runs the tile.
                drop(std::sync::Arc::from_raw(data as *const PoolJob));
            }
        }
    }
    job.work();
    if asynchronous {
        return Ok(());
    }
    job.wait();
    job.result()
}

/// A product split into at most `tiles` row tiles of a multiple of 16 rows (the sgemm kernels' row
/// block), each one single-threaded oneDNN sgemm.
fn matmul_job(
    (ta, tb): (bool, bool),
    (m, n, k): (i64, i64, i64),
    (a, b, c): (*const f32, *const f32, *mut f32),
    tiles: usize,
) -> PoolJob {
    let tiles = tiles.clamp(1, ((m + 15) / 16).max(1) as usize) as i64;
    let rows = ((m + tiles - 1) / tiles + 15) / 16 * 16;
    let (a, b, c) = (a as usize, b as usize, c as usize);
    PoolJob::new(((m + rows - 1) / rows).max(1) as usize, move |i| {
        let m0 = i as i64 * rows;
        let m1 = (m0 + rows).min(m);
        if m1 <= m0 {
            return Ok(());
        }
        // SAFETY: the addresses are the call's buffers (checked against m, n, k by the caller),
        // alive until every tile is done; tiles write disjoint rows of c.
        unsafe {
            sgemm_rows(
                (ta, tb),
                (m, n, k),
                (a as *const f32, b as *const f32),
                (c as *mut f32).add((m0 * n) as usize),
                (m0, m1),
            )
        }
    })
}

/// Rows `[m0, m1)` of `op(a)·op(b)` (`[m, n]`, inner size `k`) into `c_rows`, one single-threaded
/// oneDNN sgemm.
///
/// # Safety
/// `a` and `b` hold the operands, `c_rows` has room for the rows (`n` apart).
unsafe fn sgemm_rows(
    (ta, tb): (bool, bool),
    (m, n, k): (i64, i64, i64),
    (a, b): (*const f32, *const f32),
    c_rows: *mut f32,
    (m0, m1): (i64, i64),
) -> std::result::Result<(), String> {
    #[cfg(netspec_onednn)]
    {
        let mut err = [0u8; 256];
        match netspec_dnnl_matmul_rows(
            c_int::from(ta),
            c_int::from(tb),
            m,
            n,
            k,
            a,
            b,
            c_rows,
            m0,
            m1,
            err.as_mut_ptr().cast(),
            err.len(),
        ) {
            0 => Ok(()),
            _ => Err(message(&err)),
        }
    }
    #[cfg(not(netspec_onednn))]
    {
        let _ = (ta, tb, m, n, k, a, b, c_rows, m0, m1);
        init()
    }
}

/// Elements `[e0, e1)` of an Adam update: `ins` = `w, m, v`, `outs` = `w', m', v'` (the same buffers
/// when XLA honoured the call's aliasing, else copied first), `g` the range's gradient.
///
/// # Safety
/// The buffers hold at least `e1` elements, an output either is its input or overlaps no input, and
/// no other thread touches the range.
unsafe fn adam_range(
    ins: [usize; 3],
    outs: [usize; 3],
    (e0, e1): (usize, usize),
    g: &[f32],
    k: [f32; 7],
) {
    let len = e1 - e0;
    for j in 0..3 {
        if ins[j] != outs[j] {
            std::ptr::copy_nonoverlapping(
                (ins[j] as *const f32).add(e0),
                (outs[j] as *mut f32).add(e0),
                len,
            );
        }
    }
    let out = |j: usize| std::slice::from_raw_parts_mut((outs[j] as *mut f32).add(e0), len);
    crate::kernels::adam(out(0), out(1), out(2), &g[..len], k);
}

/// An Adam update of `n` elements in tiles of `rows`: `ins` = `w, m, v, g`, `outs` = `w', m', v'`
/// ([`adam_range`]).
fn adam_job(
    ins: [*const f32; 4],
    outs: [*mut f32; 3],
    n: usize,
    k: [f32; 7],
    rows: usize,
) -> PoolJob {
    let ins = ins.map(|p| p as usize);
    let outs = outs.map(|p| p as usize);
    PoolJob::new(n.div_ceil(rows), move |i| {
        let (e0, e1) = (i * rows, ((i + 1) * rows).min(n));
        if e1 <= e0 {
            return Ok(());
        }
        // SAFETY: the addresses are the call's buffers of n elements (checked by the caller), alive
        // until every tile is done; tiles touch disjoint ranges.
        unsafe {
            let g = std::slice::from_raw_parts((ins[3] as *const f32).add(e0), e1 - e0);
            adam_range([ins[0], ins[1], ins[2]], outs, (e0, e1), g, k);
        }
        Ok(())
    })
}

thread_local! {
    /// A tile's gradient rows ([`adam_product_job`]), kept per thread between calls.
    static GRADIENT_TILE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An Adam update of an `[m, n]` parameter whose gradient is `op(a)·op(b)` (inner size `k`;
/// `graph::AdamCall::product`), in tiles of `rows` rows: each tile computes its rows of the gradient
/// into its thread's buffer, which stays in the core's cache, and updates them at once
/// ([`adam_range`]), so the gradient never reaches memory.
fn adam_product_job(
    flags: (bool, bool),
    (m, n, k): (i64, i64, i64),
    (a, b): (*const f32, *const f32),
    ins: [*const f32; 3],
    outs: [*mut f32; 3],
    kc: [f32; 7],
    rows: i64,
) -> PoolJob {
    let (a, b) = (a as usize, b as usize);
    let ins = ins.map(|p| p as usize);
    let outs = outs.map(|p| p as usize);
    let rows = rows.max(1);
    PoolJob::new(((m + rows - 1) / rows).max(1) as usize, move |i| {
        let m0 = i as i64 * rows;
        let m1 = (m0 + rows).min(m);
        if m1 <= m0 {
            return Ok(());
        }
        GRADIENT_TILE.with(|t| {
            let mut t = t.borrow_mut();
            let len = ((m1 - m0) * n) as usize;
            if t.len() < len {
                t.resize(len, 0.0);
            }
            // SAFETY: the addresses are the call's buffers (checked against m, n, k by the caller),
            // alive until every tile is done; tiles touch disjoint rows; the buffer holds the rows.
            unsafe {
                sgemm_rows(
                    flags,
                    (m, n, k),
                    (a as *const f32, b as *const f32),
                    t.as_mut_ptr(),
                    (m0, m1),
                )?;
                let e = ((m0 * n) as usize, (m1 * n) as usize);
                adam_range(ins, outs, e, &t[..len], kc);
            }
            Ok(())
        })
    })
}

// ------------------------------------------------------------------ handlers
const TARGETS: [(&str, i32); 3] = [
    ("netspec_conv2d_forward", 0),
    ("netspec_conv2d_backward_data", 1),
    ("netspec_conv2d_backward_weights", 2),
];

const MATMUL_TARGET: &str = "netspec_matmul";
const ADAM_TARGET: &str = "netspec_adam";

unsafe extern "C" fn handler_forward(cf: *mut XLA_FFI_CallFrame) -> *mut XLA_FFI_Error {
    handle(cf, TARGETS[0].0, |cf| execute(&*cf, 0))
}
unsafe extern "C" fn handler_backward_data(cf: *mut XLA_FFI_CallFrame) -> *mut XLA_FFI_Error {
    handle(cf, TARGETS[1].0, |cf| execute(&*cf, 1))
}
unsafe extern "C" fn handler_backward_weights(cf: *mut XLA_FFI_CallFrame) -> *mut XLA_FFI_Error {
    handle(cf, TARGETS[2].0, |cf| execute(&*cf, 2))
}
unsafe extern "C" fn handler_matmul(cf: *mut XLA_FFI_CallFrame) -> *mut XLA_FFI_Error {
    handle(cf, MATMUL_TARGET, |cf| execute_matmul(cf))
}
unsafe extern "C" fn handler_adam(cf: *mut XLA_FFI_CallFrame) -> *mut XLA_FFI_Error {
    handle(cf, ADAM_TARGET, |cf| execute_adam(cf))
}

/// # Safety
/// `cf` is a call frame from XLA; `run` executes it.
unsafe fn handle(
    cf: *mut XLA_FFI_CallFrame,
    target: &str,
    run: impl FnOnce(*mut XLA_FFI_CallFrame) -> std::result::Result<(), (c_int, String)>,
) -> *mut XLA_FFI_Error {
    let cfp = cf;
    let cf = &*cf;
    let api = cf.api;
    let ext = cf.extension_start;
    if !ext.is_null() && (*ext).kind == XLA_FFI_Extension_Metadata {
        // The registration's version query: answer with the runtime's own FFI version.
        let md = (*(ext as *mut XLA_FFI_Metadata_Extension)).metadata;
        if !md.is_null() && !cf.api.is_null() {
            (*md).api_version = XLA_FFI_Api_Version {
                struct_size: XLA_FFI_Api_Version_STRUCT_SIZE,
                extension_start: std::ptr::null_mut(),
                major_version: (*cf.api).api_version.major_version,
                minor_version: (*cf.api).api_version.minor_version,
            };
            (*md).traits = 0;
        }
        return std::ptr::null_mut();
    }
    if cf.stage != XLA_FFI_ExecutionStage_EXECUTE {
        return std::ptr::null_mut();
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cfp)));
    let (code, msg) = match result {
        Ok(Ok(())) => return std::ptr::null_mut(),
        Ok(Err((code, m))) => (code, m),
        Err(_) => (
            XLA_FFI_Error_Code_INTERNAL,
            "panic in the handler".to_string(),
        ),
    };
    error_object(api, target, code, &msg)
}

/// An XLA error object saying `target: msg`.
///
/// # Safety
/// `api` is the runtime's API table.
unsafe fn error_object(
    api: *const XLA_FFI_Api,
    target: &str,
    code: c_int,
    msg: &str,
) -> *mut XLA_FFI_Error {
    let msg = CString::new(format!("{target}: {msg}").replace('\0', " ")).unwrap_or_default();
    let mut a = XLA_FFI_Error_Create_Args {
        struct_size: XLA_FFI_Error_Create_Args_STRUCT_SIZE,
        extension_start: std::ptr::null_mut(),
        message: msg.as_ptr(),
        errc: code,
    };
    match (*api).XLA_FFI_Error_Create {
        // SAFETY: XLA copies the message.
        Some(create) => create(&mut a),
        None => std::ptr::null_mut(),
    }
}

/// # Safety
/// `cf` is an execute-stage call frame from XLA.
unsafe fn execute(cf: &XLA_FFI_CallFrame, pass: i32) -> std::result::Result<(), (c_int, String)> {
    let bad = |m: String| (XLA_FFI_Error_Code_INVALID_ARGUMENT, m);
    if cf.args.size != 2 || cf.rets.size != 1 {
        return Err(bad(format!(
            "expected 2 operands and 1 result, got {} and {}",
            cf.args.size, cf.rets.size
        )));
    }
    let buffer = |p: *mut c_void,
                  what: &str|
     -> std::result::Result<(&XLA_FFI_Buffer, Vec<i64>), (c_int, String)> {
        let b = &*(p as *const XLA_FFI_Buffer);
        if b.dtype != XLA_FFI_DataType_F32 || b.rank != 4 {
            return Err(bad(format!(
                "{what} must be a rank-4 f32 tensor (dtype {}, rank {})",
                b.dtype, b.rank
            )));
        }
        Ok((b, std::slice::from_raw_parts(b.dims, 4).to_vec()))
    };
    let (a, ad) = buffer(*cf.args.items, "operand 0")?;
    let (b, bd) = buffer(*cf.args.items.add(1), "operand 1")?;
    let (r, rd) = buffer(*cf.rets.items, "the result")?;
    // Window attributes, sorted by name: pad_h_hi pad_h_lo pad_w_hi pad_w_lo stride_h stride_w.
    let mut win = [None::<i64>; 6];
    const NAMES: [&str; 6] = [
        "pad_h_hi", "pad_h_lo", "pad_w_hi", "pad_w_lo", "stride_h", "stride_w",
    ];
    for i in 0..cf.attrs.size.max(0) as usize {
        let name = &**cf.attrs.names.add(i);
        let name = std::slice::from_raw_parts(name.ptr.cast::<u8>(), name.len);
        if let Some(k) = NAMES.iter().position(|n| n.as_bytes() == name) {
            let s = &*(*cf.attrs.attrs.add(i) as *const XLA_FFI_Scalar);
            if *cf.attrs.types.add(i) == XLA_FFI_AttrType_SCALAR && s.dtype == XLA_FFI_DataType_S64
            {
                win[k] = Some(*(s.value as *const i64));
            }
        }
    }
    let [Some(phh), Some(phl), Some(pwh), Some(pwl), Some(sh), Some(sw)] = win else {
        return Err(bad(format!(
            "missing i64 attributes (need {})",
            NAMES.join(", ")
        )));
    };
    // x [N,H,W,C], w [KH,KW,C,O], y [N,OH,OW,O]
    let (x, w, y) = match pass {
        0 => (&ad, &bd, &rd),
        1 => (&rd, &bd, &ad),
        _ => (&ad, &rd, &bd),
    };
    let g: Geometry = [
        x[0], x[1], x[2], x[3], w[3], w[0], w[1], sh, sw, phl, phh, pwl, pwh,
    ];
    let out = |n: i64, k: i64, s: i64, lo: i64, hi: i64| {
        if s > 0 && n + lo + hi >= k {
            (n + lo + hi - k) / s + 1
        } else {
            -1
        }
    };
    if w[2] != x[3]
        || y[0] != x[0]
        || y[3] != w[3]
        || y[1] != out(x[1], w[0], sh, phl, phh)
        || y[2] != out(x[2], w[1], sw, pwl, pwh)
    {
        return Err(bad(format!("shapes x {x:?}, w {w:?}, y {y:?} do not form a convolution with strides ({sh}, {sw}) and padding ({phl}, {phh}), ({pwl}, {pwh})")));
    }
    run(
        pass,
        &g,
        a.data as *const f32,
        b.data as *const f32,
        r.data as *mut f32,
    )
    .map_err(|m| (XLA_FFI_Error_Code_INTERNAL, m))
}

/// # Safety
/// `cf` is an execute-stage call frame from XLA.
unsafe fn execute_matmul(cfp: *mut XLA_FFI_CallFrame) -> std::result::Result<(), (c_int, String)> {
    let cf = &*cfp;
    let bad = |m: String| (XLA_FFI_Error_Code_INVALID_ARGUMENT, m);
    if cf.args.size != 2 || cf.rets.size != 1 {
        return Err(bad(format!(
            "expected 2 operands and 1 result, got {} and {}",
            cf.args.size, cf.rets.size
        )));
    }
    type Matrix<'a> = (&'a XLA_FFI_Buffer, [i64; 2]);
    let matrix = |p: *mut c_void, what: &str| -> std::result::Result<Matrix, (c_int, String)> {
        let b = &*(p as *const XLA_FFI_Buffer);
        if b.dtype != XLA_FFI_DataType_F32 || b.rank != 2 {
            return Err(bad(format!(
                "{what} must be an f32 matrix (dtype {}, rank {})",
                b.dtype, b.rank
            )));
        }
        let d = std::slice::from_raw_parts(b.dims, 2);
        Ok((b, [d[0], d[1]]))
    };
    let (a, ad) = matrix(*cf.args.items, "operand 0")?;
    let (b, bd) = matrix(*cf.args.items.add(1), "operand 1")?;
    let (c, cd) = matrix(*cf.rets.items, "the result")?;
    // Attributes, sorted by name: trans_a, trans_b.
    let mut flags = [None::<i64>; 2];
    for i in 0..cf.attrs.size.max(0) as usize {
        let name = &**cf.attrs.names.add(i);
        let name = std::slice::from_raw_parts(name.ptr.cast::<u8>(), name.len);
        if let Some(k) = [&b"trans_a"[..], b"trans_b"]
            .iter()
            .position(|n| *n == name)
        {
            let s = &*(*cf.attrs.attrs.add(i) as *const XLA_FFI_Scalar);
            if *cf.attrs.types.add(i) == XLA_FFI_AttrType_SCALAR && s.dtype == XLA_FFI_DataType_S64
            {
                flags[k] = Some(*(s.value as *const i64));
            }
        }
    }
    let [Some(ta), Some(tb)] = flags else {
        return Err(bad("missing i64 attributes (need trans_a, trans_b)".into()));
    };
    let Some((m, k, n)) =
        product_dims((ta != 0, tb != 0), &ad, &bd).filter(|&(m, _, n)| cd == [m, n])
    else {
        return Err(bad(format!(
            "operands {ad:?} and {bd:?} (transposed: {ta}, {tb}) do not give the result {cd:?}"
        )));
    };
    if m == 0 || n == 0 {
        return Ok(());
    }
    let threads = pool_threads(cf);
    let job = matmul_job(
        (ta != 0, tb != 0),
        (m, n, k),
        (
            a.data as *const f32,
            b.data as *const f32,
            c.data as *mut f32,
        ),
        threads,
    );
    run_on_pool(cfp, MATMUL_TARGET, job, threads - 1).map_err(|m| (XLA_FFI_Error_Code_INTERNAL, m))
}

/// `(m, k, n)` of `op(a)·op(b)` for matrices of dims `ad` and `bd` stored transposed or not, or `None`
/// when they do not multiply.
fn product_dims((ta, tb): (bool, bool), ad: &[i64], bd: &[i64]) -> Option<(i64, i64, i64)> {
    let (&[a0, a1], &[b0, b1]) = (ad, bd) else {
        return None;
    };
    let (m, k) = if ta { (a1, a0) } else { (a0, a1) };
    let (k2, n) = if tb { (b1, b0) } else { (b0, b1) };
    (k == k2).then_some((m, k, n))
}

/// Elements per tile of an Adam update: the four arrays' tiles (256 KiB) stay in a core's L2.
const ADAM_TILE: usize = 16 * 1024;

/// # Safety
/// `cf` is an execute-stage call frame from XLA.
unsafe fn execute_adam(cfp: *mut XLA_FFI_CallFrame) -> std::result::Result<(), (c_int, String)> {
    let cf = &*cfp;
    let bad = |m: String| (XLA_FFI_Error_Code_INVALID_ARGUMENT, m);
    // 7 operands (w, m, v, g, lr, r1, r2), or 8 with the gradient as a product's factors a, b.
    let product = cf.args.size == 8;
    if !(cf.args.size == 7 || product) || cf.rets.size != 3 {
        return Err(bad(format!(
            "expected 7 or 8 operands and 3 results, got {} and {}",
            cf.args.size, cf.rets.size
        )));
    }
    let nargs = cf.args.size as usize;
    let buffer = |p: *mut c_void| &*(p as *const XLA_FFI_Buffer);
    let dims = |b: &XLA_FFI_Buffer| std::slice::from_raw_parts(b.dims, b.rank.max(0) as usize);
    let numel = |b: &XLA_FFI_Buffer| -> i64 { dims(b).iter().product() };
    let args: Vec<&XLA_FFI_Buffer> = (0..nargs).map(|i| buffer(*cf.args.items.add(i))).collect();
    let rets: Vec<&XLA_FFI_Buffer> = (0..3).map(|i| buffer(*cf.rets.items.add(i))).collect();
    let n = numel(args[0]);
    let factors = if product { 3..5 } else { 0..0 };
    for (i, b) in args.iter().chain(rets.iter()).enumerate() {
        if factors.contains(&i) {
            if b.dtype != XLA_FFI_DataType_F32 || b.rank != 2 {
                return Err(bad(format!(
                    "operand {i} must be an f32 matrix (dtype {}, rank {})",
                    b.dtype, b.rank
                )));
            }
            continue;
        }
        let want = if (nargs - 3..nargs).contains(&i) {
            1
        } else {
            n
        };
        if b.dtype != XLA_FFI_DataType_F32 || numel(b) != want {
            return Err(bad(format!(
                "buffer {i} must be f32 with {want} elements (dtype {}, {} elements)",
                b.dtype,
                numel(b)
            )));
        }
    }
    // Attributes, sorted by name: beta1, beta2, decay, eps (f32), trans_a, trans_b (i64, products).
    let names = [&b"beta1"[..], b"beta2", b"decay", b"eps"];
    let mut attrs = [None::<f32>; 4];
    let mut flags = [None::<i64>; 2];
    for i in 0..cf.attrs.size.max(0) as usize {
        let name = &**cf.attrs.names.add(i);
        let name = std::slice::from_raw_parts(name.ptr.cast::<u8>(), name.len);
        let s = &*(*cf.attrs.attrs.add(i) as *const XLA_FFI_Scalar);
        if *cf.attrs.types.add(i) != XLA_FFI_AttrType_SCALAR {
            continue;
        }
        if let Some(k) = names.iter().position(|n| *n == name) {
            if s.dtype == XLA_FFI_DataType_F32 {
                attrs[k] = Some(*(s.value as *const f32));
            }
        } else if let Some(k) = [&b"trans_a"[..], b"trans_b"]
            .iter()
            .position(|n| *n == name)
        {
            if s.dtype == XLA_FFI_DataType_S64 {
                flags[k] = Some(*(s.value as *const i64));
            }
        }
    }
    let [Some(b1), Some(b2), Some(decay), Some(eps)] = attrs else {
        return Err(bad(
            "missing f32 attributes (need beta1, beta2, decay, eps)".into(),
        ));
    };
    let scalar = |i: usize| *(args[i].data as *const f32);
    let k = [
        b1,
        b2,
        eps,
        decay,
        scalar(nargs - 3),
        scalar(nargs - 2),
        scalar(nargs - 1),
    ];
    if n == 0 {
        return Ok(());
    }
    let f = |i: usize| args[i].data as *const f32;
    let o = |i: usize| rets[i].data as *mut f32;
    let helpers = pool_threads(cf) - 1;
    let job = if product {
        let [Some(ta), Some(tb)] = flags else {
            return Err(bad(
                "missing i64 attributes (need trans_a, trans_b with 8 operands)".into(),
            ));
        };
        let (ad, bd, wd) = (dims(args[3]), dims(args[4]), dims(args[0]));
        let Some((m, kk, nn)) =
            product_dims((ta != 0, tb != 0), ad, bd).filter(|&(m, _, n)| wd == [m, n])
        else {
            return Err(bad(format!(
                "factors {ad:?} and {bd:?} (transposed: {ta}, {tb}) do not give the parameter's shape {wd:?}"
            )));
        };
        // Tiles of about ADAM_TILE elements in whole rows (of a multiple of 16, sgemm's row block).
        let rows = (ADAM_TILE as i64 / nn.max(1) + 15) / 16 * 16;
        adam_product_job(
            (ta != 0, tb != 0),
            (m, nn, kk),
            (f(3), f(4)),
            [f(0), f(1), f(2)],
            [o(0), o(1), o(2)],
            k,
            rows.max(16),
        )
    } else {
        adam_job(
            [f(0), f(1), f(2), f(3)],
            [o(0), o(1), o(2)],
            n as usize,
            k,
            ADAM_TILE,
        )
    };
    run_on_pool(cfp, ADAM_TARGET, job, helpers).map_err(|m| (XLA_FFI_Error_Code_INTERNAL, m))
}

// ------------------------------------------------------------------ registration
static REGISTERED: Mutex<Vec<(usize, std::result::Result<(), String>)>> = Mutex::new(Vec::new());

/// Registers the three handlers with the plugin behind `api` (once per plugin and process): `Ok` when
/// programs compiled by its clients may contain `graph::ConvCall`s, else why not. Turned off by
/// `NETSPEC_CONV_CALLS=off`.
pub(crate) fn register(api: &Api) -> std::result::Result<(), String> {
    if std::env::var("NETSPEC_CONV_CALLS").is_ok_and(|v| v == "off") {
        return Err("turned off by NETSPEC_CONV_CALLS=off".into());
    }
    let key = api.raw() as usize;
    let mut done = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = done.iter().find(|(k, _)| *k == key) {
        return r.clone();
    }
    let r = init().and_then(|()| register_now(api));
    done.push((key, r.clone()));
    r
}

fn register_now(api: &Api) -> std::result::Result<(), String> {
    // SAFETY: the table is the plugin's; its extension chain is a linked list of static structs.
    let mut ext = unsafe { (*api.raw()).extension_start as *const PJRT_Extension_Base };
    let ffi = loop {
        if ext.is_null() {
            return Err("the PJRT plugin has no FFI extension".into());
        }
        // SAFETY: as above.
        let e = unsafe { &*ext };
        if e.kind == PJRT_Extension_Type_FFI {
            break ext as *const PJRT_FFI_Extension;
        }
        ext = e.next;
    };
    // SAFETY: an FFI extension of this type starts with these fields (size checked).
    let reg = unsafe {
        if (*ffi).base.struct_size < std::mem::size_of::<PJRT_FFI_Extension>() {
            return Err("the PJRT plugin's FFI extension is too old (no register_handler)".into());
        }
        (*ffi).register_handler
    };
    let Some(reg) = reg else {
        return Err("the PJRT plugin's FFI extension has no register_handler".into());
    };
    type Handler = unsafe extern "C" fn(*mut XLA_FFI_CallFrame) -> *mut XLA_FFI_Error;
    let handlers: [(&str, Handler); 5] = [
        (TARGETS[0].0, handler_forward),
        (TARGETS[1].0, handler_backward_data),
        (TARGETS[2].0, handler_backward_weights),
        (MATMUL_TARGET, handler_matmul),
        (ADAM_TARGET, handler_adam),
    ];
    for (name, h) in handlers {
        let platform = "Host";
        let mut a = PJRT_FFI_Register_Handler_Args {
            struct_size: PJRT_FFI_Register_Handler_Args_STRUCT_SIZE,
            target_name: name.as_ptr().cast(),
            target_name_size: name.len(),
            handler: h as *mut c_void,
            platform_name: platform.as_ptr().cast(),
            platform_name_size: platform.len(),
            traits: 0,
        };
        // SAFETY: a is a complete argument struct; the strings outlive the call.
        let e = unsafe { reg(&mut a) };
        api.check(e, || format!("registering the custom call handler {name}"))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
