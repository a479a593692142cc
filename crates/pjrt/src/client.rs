//! PJRT clients: creation with named options, device information, host -> device copies.

use crate::api::{call, lossy, Api};
use crate::buffer::{element_count, Buffer, Element, ElementType};
use crate::error::{Error, ErrorKind, Result};
use crate::ffi::*;
use crate::kv::{Callbacks, KvStore};
use crate::plugin::{find_plugin, Device, Plugin};
use std::ffi::c_char;
use std::path::Path;
use std::sync::Arc;

/// Options passed to `PJRT_Client_Create` as named values. `None` fields are not passed, so the
/// plugin's defaults apply; plugins reject names they do not know, so set only what your plugin takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientOptions {
    /// CPU plugin: number of CPU "devices" (`cpu_device_count`; the plugin's default is 4). Programs
    /// run on device 0 unless compiled for several partitions (`CompileOptions::spmd`).
    pub cpu_device_count: Option<i64>,
    /// CUDA plugin: `platform_name` (JAX passes "cuda").
    pub platform_name: Option<String>,
    /// CUDA plugin: reserve most GPU memory up front (`preallocate`, plugin default true).
    pub preallocate: Option<bool>,
    /// CUDA plugin: fraction of GPU memory the allocator may use (`memory_fraction`).
    pub memory_fraction: Option<f32>,
    /// CUDA plugin: allocator kind (`allocator`: "default", "platform", "bfc", "cuda_async").
    pub allocator: Option<String>,
    /// CUDA plugin: which GPUs to use (`visible_devices`).
    pub visible_devices: Option<Vec<i64>>,
    /// The key-value store the processes of a multi-process job share (`kv_get_callback`,
    /// `kv_try_get_callback`, `kv_put_callback`; see [`crate::kv`]). The client keeps it alive.
    /// Plugins that run in one process ignore it (the CPU plugin never calls it).
    pub kv_store: Option<KvStore>,
}

impl ClientOptions {
    /// The options netspec uses by default for `device`: for CPU one device (`cpu_device_count =
    /// 1`); for CUDA `platform_name = "cuda"` and `preallocate = false` (allocate on demand, so that
    /// several processes and the data loader can share a GPU; XLA otherwise grabs ~75% of its
    /// memory).
    ///
    /// The CPU plugin's default of 4 devices also sizes its intra-op thread pool: 4 threads on a
    /// 2-core machine, where 1 or 2 devices give 2. The oversubscribed pool cost 9–12 % per train
    /// step (mnist-mlp, mnist-cnn, cifar-cnn-bn, batch 128, `bench/compare.py --netspec-b`,
    /// BENCHMARKS.md "Session 8"); several devices are asked for explicitly
    /// ([`ClientOptions::cpu_device_count`]).
    pub fn for_device(device: Device) -> ClientOptions {
        match device {
            Device::Cpu => ClientOptions {
                cpu_device_count: Some(1),
                ..ClientOptions::default()
            },
            Device::Cuda => ClientOptions {
                platform_name: Some("cuda".into()),
                preallocate: Some(false),
                ..ClientOptions::default()
            },
        }
    }
}

/// Owned storage for the named values of one `PJRT_Client_Create` call.
enum OptValue {
    Str(String),
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Bool(bool),
}

fn named_values(opts: &ClientOptions) -> Vec<(&'static str, OptValue)> {
    let mut v = Vec::new();
    if let Some(n) = opts.cpu_device_count {
        v.push(("cpu_device_count", OptValue::Int(n)));
    }
    if let Some(s) = &opts.platform_name {
        v.push(("platform_name", OptValue::Str(s.clone())));
    }
    if let Some(b) = opts.preallocate {
        v.push(("preallocate", OptValue::Bool(b)));
    }
    if let Some(f) = opts.memory_fraction {
        v.push(("memory_fraction", OptValue::Float(f)));
    }
    if let Some(s) = &opts.allocator {
        v.push(("allocator", OptValue::Str(s.clone())));
    }
    if let Some(d) = &opts.visible_devices {
        v.push(("visible_devices", OptValue::Ints(d.clone())));
    }
    v
}

/// One addressable device of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device id (`PJRT_DeviceDescription_Id`).
    pub id: i32,
    /// The device kind, e.g. "cpu" or "NVIDIA H100 80GB HBM3".
    pub kind: String,
    /// The plugin's one-line description (`PJRT_DeviceDescription_ToString`), if it gives one.
    pub description: String,
}

/// The client's state, shared by every buffer and executable made from it so that the PJRT client is
/// destroyed only after all of them.
pub(crate) struct ClientInner {
    pub(crate) api: &'static Api,
    pub(crate) raw: *mut PJRT_Client,
    /// The addressable devices, in the plugin's order; [`Client::buffer`] places on the first, and
    /// single-device programs run there.
    pub(crate) raw_devices: Vec<*mut PJRT_Device>,
    pub(crate) plugin: Plugin,
    devices: Vec<DeviceInfo>,
    platform_name: String,
    platform_version: String,
    /// Whether the oneDNN convolution handlers are registered with this plugin, else why not.
    conv_calls: std::result::Result<(), String>,
    /// The key-value callbacks' store: it must outlive the PJRT client, which may call them until
    /// destroyed (fields drop after `Drop::drop` destroyed the client).
    _kv: Option<Callbacks>,
}

impl ClientInner {
    /// The index of an addressable device handle in [`ClientInner::raw_devices`].
    pub(crate) fn device_index(&self, raw: *mut PJRT_Device) -> Option<usize> {
        self.raw_devices.iter().position(|&d| d == raw)
    }
}

// SAFETY: PJRT clients are thread-safe (the C API requires it); the raw pointers are handles owned by
// this struct and never mutated after creation.
unsafe impl Send for ClientInner {}
unsafe impl Sync for ClientInner {}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let mut a = PJRT_Client_Destroy_Args::new();
        a.client = self.raw;
        let _ = call!(
            self.api,
            PJRT_Client_Destroy,
            &mut a,
            "destroying the PJRT client"
        );
    }
}

/// A PJRT client on one plugin. Cheap to clone (shared); `Send + Sync`. Buffers and executables keep
/// the client alive.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

impl Client {
    /// Creates a client on a loaded plugin.
    pub fn new(plugin: &Plugin, opts: &ClientOptions) -> Result<Client> {
        let api = plugin.api();
        let ctx = || {
            format!(
                "creating a PJRT client with plugin {}",
                plugin.path().display()
            )
        };
        let values = named_values(opts);
        let nvs: Vec<PJRT_NamedValue> = values
            .iter()
            .map(|(name, value)| {
                let mut nv = PJRT_NamedValue::new();
                nv.name = name.as_ptr().cast::<c_char>();
                nv.name_size = name.len();
                match value {
                    OptValue::Str(s) => {
                        nv.r#type = PJRT_NamedValue_kString;
                        nv.value.string_value = s.as_ptr().cast::<c_char>();
                        nv.value_size = s.len();
                    }
                    OptValue::Int(i) => {
                        nv.r#type = PJRT_NamedValue_kInt64;
                        nv.value.int64_value = *i;
                        nv.value_size = 1;
                    }
                    OptValue::Ints(v) => {
                        nv.r#type = PJRT_NamedValue_kInt64List;
                        nv.value.int64_array_value = v.as_ptr();
                        nv.value_size = v.len();
                    }
                    OptValue::Float(f) => {
                        nv.r#type = PJRT_NamedValue_kFloat;
                        nv.value.float_value = *f;
                        nv.value_size = 1;
                    }
                    OptValue::Bool(b) => {
                        nv.r#type = PJRT_NamedValue_kBool;
                        nv.value.bool_value = *b;
                        nv.value_size = 1;
                    }
                }
                nv
            })
            .collect();
        let mut a = PJRT_Client_Create_Args::new();
        a.create_options = if nvs.is_empty() {
            std::ptr::null()
        } else {
            nvs.as_ptr()
        };
        a.num_options = nvs.len();
        let kv = opts.kv_store.as_ref().map(|s| Callbacks::new(s.0.clone()));
        if let Some(k) = &kv {
            k.install(&mut a);
        }
        call!(api, PJRT_Client_Create, &mut a, ctx()).map_err(explain_no_gpu)?;
        if a.client.is_null() {
            return Err(Error::new(
                ErrorKind::Plugin,
                ctx(),
                "PJRT_Client_Create returned no client",
            ));
        }
        // From here on the client is owned: any early return destroys it.
        let mut inner = ClientInner {
            api,
            raw: a.client,
            raw_devices: Vec::new(),
            plugin: plugin.clone(),
            devices: Vec::new(),
            platform_name: String::new(),
            platform_version: String::new(),
            conv_calls: Err(String::new()),
            _kv: kv,
        };

        let mut d = PJRT_Client_AddressableDevices_Args::new();
        d.client = inner.raw;
        call!(api, PJRT_Client_AddressableDevices, &mut d, ctx())?;
        let raw_devices: Vec<*mut PJRT_Device> = if d.num_addressable_devices == 0 {
            Vec::new()
        } else {
            // SAFETY: the plugin returns an array of num_addressable_devices handles owned by the client.
            unsafe { std::slice::from_raw_parts(d.addressable_devices, d.num_addressable_devices) }
                .to_vec()
        };
        if raw_devices.is_empty() {
            return Err(Error::new(
                ErrorKind::Plugin,
                ctx(),
                "the client has no addressable devices",
            ));
        }
        for &dev in &raw_devices {
            inner.devices.push(device_info(api, dev)?);
        }
        inner.raw_devices = raw_devices;

        let mut p = PJRT_Client_PlatformName_Args::new();
        p.client = inner.raw;
        call!(api, PJRT_Client_PlatformName, &mut p, ctx())?;
        // SAFETY: the string is owned by the client.
        inner.platform_name = unsafe { lossy(p.platform_name, p.platform_name_size) };
        let mut v = PJRT_Client_PlatformVersion_Args::new();
        v.client = inner.raw;
        call!(api, PJRT_Client_PlatformVersion, &mut v, ctx())?;
        // SAFETY: as above.
        inner.platform_version = unsafe { lossy(v.platform_version, v.platform_version_size) };
        inner.conv_calls = if inner.platform_name == "cpu" {
            crate::onednn::register(api)
        } else {
            Err(format!(
                "not offered on {} (XLA's own convolutions run there)",
                inner.platform_name
            ))
        };
        Ok(Client {
            inner: Arc::new(inner),
        })
    }

    /// A CPU client from the default plugin (see [`find_plugin`]) with default options.
    pub fn cpu() -> Result<Client> {
        Client::open(Device::Cpu, None)
    }

    /// Finds, loads and opens the plugin for `device` (`plugin` overrides the search) with
    /// [`ClientOptions::for_device`].
    pub fn open(device: Device, plugin: Option<&Path>) -> Result<Client> {
        Client::open_with(device, plugin, &ClientOptions::for_device(device))
    }

    /// Finds, loads and opens the plugin for `device` with the given options.
    pub fn open_with(
        device: Device,
        plugin: Option<&Path>,
        opts: &ClientOptions,
    ) -> Result<Client> {
        let path = find_plugin(device, plugin)?;
        let plugin = Plugin::load(&path)?;
        Client::new(&plugin, opts)
    }

    pub fn plugin(&self) -> &Plugin {
        &self.inner.plugin
    }

    /// E.g. "cpu" or "cuda".
    pub fn platform_name(&self) -> String {
        self.inner.platform_name.clone()
    }

    /// Whether programs for this client may contain `graph::ConvCall` convolutions (oneDNN custom
    /// calls, `onednn.rs`): their handlers are registered with this plugin. See [`Client::conv_calls_status`].
    pub fn conv_calls(&self) -> bool {
        self.inner.conv_calls.is_ok()
    }

    /// `Err` says why [`Client::conv_calls`] is false.
    pub fn conv_calls_status(&self) -> std::result::Result<(), String> {
        self.inner.conv_calls.clone()
    }

    /// The plugin's platform version string (for CUDA, the CUDA version it was built for).
    pub fn platform_version(&self) -> String {
        self.inner.platform_version.clone()
    }

    /// The addressable devices. [`Client::buffer`] places on, and single-device programs run on,
    /// the first one; a device *index* elsewhere in this API is a position in this list.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.inner.devices.clone()
    }

    /// How many addressable devices the client has.
    pub fn device_count(&self) -> usize {
        self.inner.raw_devices.len()
    }

    /// Whether `buffer` was made by this client (or a clone of it).
    pub fn owns(&self, buffer: &Buffer) -> bool {
        Arc::ptr_eq(&self.inner, &buffer.client)
    }

    /// Copies host data to a new device buffer of shape `dims` (row-major). Synchronous: `data` may be
    /// reused as soon as this returns.
    pub fn buffer<T: Element>(&self, data: &[T], dims: &[i64]) -> Result<Buffer> {
        self.buffer_on(0, data, dims)
    }

    /// Copies host data to a new buffer on the addressable device at index `device` (see
    /// [`Client::devices`]).
    pub fn buffer_on<T: Element>(&self, device: usize, data: &[T], dims: &[i64]) -> Result<Buffer> {
        let ctx = "copying host data to the device";
        let n = element_count(dims, ctx)?;
        if n != data.len() {
            return Err(Error::invalid(
                ctx,
                format!(
                    "shape {dims:?} has {n} elements but {} {} values were given",
                    data.len(),
                    T::TYPE
                ),
            ));
        }
        // SAFETY: data is n valid elements of T, whose layout is that of T::TYPE on the host.
        unsafe { self.buffer_from_ptr(data.as_ptr().cast(), T::TYPE, dims, device, ctx) }
    }

    /// A scalar (rank-0) buffer.
    pub fn scalar<T: Element>(&self, value: T) -> Result<Buffer> {
        self.buffer(&[value], &[])
    }

    /// Copies raw little-endian bytes (dense, row-major) of element type `ty` to a new device buffer.
    pub fn buffer_from_bytes(&self, ty: ElementType, bytes: &[u8], dims: &[i64]) -> Result<Buffer> {
        let ctx = "copying host bytes to the device";
        let size = ty
            .byte_size()
            .ok_or_else(|| Error::invalid(ctx, format!("cannot copy elements of type {ty}")))?;
        let n = element_count(dims, ctx)?;
        if n.checked_mul(size) != Some(bytes.len()) {
            return Err(Error::invalid(
                ctx,
                format!(
                    "shape {dims:?} of {ty} needs {n}×{size} bytes but {} were given",
                    bytes.len()
                ),
            ));
        }
        if ty == ElementType::Pred {
            if let Some(i) = bytes.iter().position(|&b| b > 1) {
                return Err(Error::invalid(
                    ctx,
                    format!("predicate byte {i} is {}, not 0 or 1", bytes[i]),
                ));
            }
        }
        // SAFETY: bytes holds exactly the buffer's data, checked above.
        unsafe { self.buffer_from_ptr(bytes.as_ptr(), ty, dims, 0, ctx) }
    }

    /// # Safety
    /// `data` must point to the dense row-major contents of a `ty` array of shape `dims`.
    unsafe fn buffer_from_ptr(
        &self,
        data: *const u8,
        ty: ElementType,
        dims: &[i64],
        device: usize,
        ctx: &str,
    ) -> Result<Buffer> {
        let inner = &self.inner;
        let Some(&device) = inner.raw_devices.get(device) else {
            return Err(Error::invalid(
                ctx,
                format!(
                    "device {device} does not exist: the client has {} devices",
                    inner.raw_devices.len()
                ),
            ));
        };
        let mut a = PJRT_Client_BufferFromHostBuffer_Args::new();
        a.client = inner.raw;
        a.data = data.cast();
        a.r#type = ty.to_raw();
        a.dims = dims.as_ptr();
        a.num_dims = dims.len();
        // The plugin copies during the call (or before done_with_host_buffer fires, which we await).
        a.host_buffer_semantics = PJRT_HostBufferSemantics_kImmutableOnlyDuringCall;
        a.device = device;
        call!(inner.api, PJRT_Client_BufferFromHostBuffer, &mut a, ctx)?;
        // Own the buffer first, so that a failing await still destroys it.
        let done = a.done_with_host_buffer;
        let buffer = Buffer::from_raw(inner.clone(), a.buffer, ctx);
        let awaited = inner.api.await_event(done, ctx);
        let buffer = buffer?;
        awaited?;
        Ok(buffer)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Client({} {}, {:?})",
            self.inner.platform_name, self.inner.platform_version, self.inner.plugin
        )
    }
}

fn device_info(api: &Api, dev: *mut PJRT_Device) -> Result<DeviceInfo> {
    let ctx = "reading device information";
    let mut g = PJRT_Device_GetDescription_Args::new();
    g.device = dev;
    call!(api, PJRT_Device_GetDescription, &mut g, ctx)?;
    let desc = g.device_description;
    let mut i = PJRT_DeviceDescription_Id_Args::new();
    i.device_description = desc;
    call!(api, PJRT_DeviceDescription_Id, &mut i, ctx)?;
    let mut k = PJRT_DeviceDescription_Kind_Args::new();
    k.device_description = desc;
    call!(api, PJRT_DeviceDescription_Kind, &mut k, ctx)?;
    let mut s = PJRT_DeviceDescription_ToString_Args::new();
    s.device_description = desc;
    // Optional: a description is nice to print but not needed.
    let description = match call!(api, PJRT_DeviceDescription_ToString, &mut s, ctx) {
        // SAFETY: strings owned by the device description.
        Ok(()) => unsafe { lossy(s.to_string, s.to_string_size) },
        Err(_) => String::new(),
    };
    Ok(DeviceInfo {
        id: i.id,
        // SAFETY: as above.
        kind: unsafe { lossy(k.device_kind, k.device_kind_size) },
        description,
    })
}

/// Adds a hint to the CUDA plugin's "no GPU" error.
fn explain_no_gpu(e: Error) -> Error {
    if e.message().contains("No visible GPU devices")
        || e.message().contains("no CUDA-capable device")
    {
        let message = format!(
            "{} — the CUDA plugin found no usable NVIDIA GPU (check `nvidia-smi`, the driver and \
             CUDA_VISIBLE_DEVICES), or use --device cpu",
            e.message().trim_end()
        );
        e.with_message(message)
    } else {
        e
    }
}
