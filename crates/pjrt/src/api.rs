//! The loaded function table and the helpers every call goes through: entry lookup that respects the
//! plugin's table size, error conversion, and event awaiting.

use crate::error::{Error, ErrorKind, Result};
use crate::ffi::*;
use std::mem::{offset_of, size_of};

/// A plugin's `PJRT_Api` table. Held as a raw pointer because an older plugin's table may be shorter
/// than our struct: entries are read only after checking that they lie below the table's `struct_size`.
pub(crate) struct Api {
    raw: *const PJRT_Api,
    table_size: usize,
    version: (u32, u32),
}

// SAFETY: the table is immutable static data inside a library that is never unloaded, and PJRT
// functions are thread-safe per the C API's contract.
unsafe impl Send for Api {}
unsafe impl Sync for Api {}

/// Reads entry `$name` of `$api`'s table, or `None` when the plugin's table is too short to have it.
macro_rules! entry {
    ($api:expr, $name:ident) => {{
        let api: &$crate::api::Api = $api;
        if api.has(std::mem::offset_of!($crate::ffi::PJRT_Api, $name)) {
            // SAFETY: the slot lies inside the plugin's table (checked just above).
            unsafe { std::ptr::addr_of!((*api.raw()).$name).read() }
        } else {
            None
        }
    }};
}

/// Calls entry `$name` with `&mut $args` and converts the returned `PJRT_Error*` into a `Result`,
/// with `$ctx` (a `&str` or `String` expression, evaluated only on error) as context.
macro_rules! call {
    ($api:expr, $name:ident, $args:expr, $ctx:expr) => {{
        let api: &$crate::api::Api = $api;
        match $crate::api::entry!(api, $name) {
            // SAFETY: `$args` is a correctly sized argument struct for this entry (see ffi.rs and the
            // ABI test); pointers inside it are valid for the duration of the call.
            Some(f) => api.check(unsafe { f($args) }, || $ctx),
            None => Err(api.missing(stringify!($name), $ctx)),
        }
    }};
}

pub(crate) use {call, entry};

/// Entries every operation of the safe API needs; a plugin lacking one is refused at load time.
const REQUIRED: &[(&str, usize)] = &[
    (
        "PJRT_Error_Destroy",
        offset_of!(PJRT_Api, PJRT_Error_Destroy),
    ),
    (
        "PJRT_Error_Message",
        offset_of!(PJRT_Api, PJRT_Error_Message),
    ),
    (
        "PJRT_Plugin_Initialize",
        offset_of!(PJRT_Api, PJRT_Plugin_Initialize),
    ),
    (
        "PJRT_Event_Destroy",
        offset_of!(PJRT_Api, PJRT_Event_Destroy),
    ),
    ("PJRT_Event_Await", offset_of!(PJRT_Api, PJRT_Event_Await)),
    (
        "PJRT_Client_Create",
        offset_of!(PJRT_Api, PJRT_Client_Create),
    ),
    (
        "PJRT_Client_Destroy",
        offset_of!(PJRT_Api, PJRT_Client_Destroy),
    ),
    (
        "PJRT_Client_PlatformName",
        offset_of!(PJRT_Api, PJRT_Client_PlatformName),
    ),
    (
        "PJRT_Client_PlatformVersion",
        offset_of!(PJRT_Api, PJRT_Client_PlatformVersion),
    ),
    (
        "PJRT_Client_AddressableDevices",
        offset_of!(PJRT_Api, PJRT_Client_AddressableDevices),
    ),
    (
        "PJRT_Client_Compile",
        offset_of!(PJRT_Api, PJRT_Client_Compile),
    ),
    (
        "PJRT_Client_BufferFromHostBuffer",
        offset_of!(PJRT_Api, PJRT_Client_BufferFromHostBuffer),
    ),
    (
        "PJRT_DeviceDescription_Id",
        offset_of!(PJRT_Api, PJRT_DeviceDescription_Id),
    ),
    (
        "PJRT_DeviceDescription_Kind",
        offset_of!(PJRT_Api, PJRT_DeviceDescription_Kind),
    ),
    (
        "PJRT_Device_GetDescription",
        offset_of!(PJRT_Api, PJRT_Device_GetDescription),
    ),
    (
        "PJRT_Executable_Destroy",
        offset_of!(PJRT_Api, PJRT_Executable_Destroy),
    ),
    (
        "PJRT_Executable_NumOutputs",
        offset_of!(PJRT_Api, PJRT_Executable_NumOutputs),
    ),
    (
        "PJRT_LoadedExecutable_Destroy",
        offset_of!(PJRT_Api, PJRT_LoadedExecutable_Destroy),
    ),
    (
        "PJRT_LoadedExecutable_GetExecutable",
        offset_of!(PJRT_Api, PJRT_LoadedExecutable_GetExecutable),
    ),
    (
        "PJRT_LoadedExecutable_Execute",
        offset_of!(PJRT_Api, PJRT_LoadedExecutable_Execute),
    ),
    (
        "PJRT_Buffer_Destroy",
        offset_of!(PJRT_Api, PJRT_Buffer_Destroy),
    ),
    (
        "PJRT_Buffer_ElementType",
        offset_of!(PJRT_Api, PJRT_Buffer_ElementType),
    ),
    (
        "PJRT_Buffer_Dimensions",
        offset_of!(PJRT_Api, PJRT_Buffer_Dimensions),
    ),
    (
        "PJRT_Buffer_ToHostBuffer",
        offset_of!(PJRT_Api, PJRT_Buffer_ToHostBuffer),
    ),
    (
        "PJRT_Buffer_IsDeleted",
        offset_of!(PJRT_Api, PJRT_Buffer_IsDeleted),
    ),
];

impl Api {
    /// Validates a table returned by `GetPjrtApi`: size, major version, minimum minor version and the
    /// presence of every required entry. `describe` names the plugin in error messages.
    ///
    /// # Safety
    /// `raw` must be the non-null result of the plugin's `GetPjrtApi`, valid for the process lifetime.
    pub(crate) unsafe fn from_raw(raw: *const PJRT_Api, describe: &str) -> Result<Api> {
        let ctx = || format!("loading PJRT plugin {describe}");
        // struct_size and the version struct come first in every PJRT version.
        let header_end = offset_of!(PJRT_Api, pjrt_api_version) + size_of::<PJRT_Api_Version>();
        let table_size = std::ptr::addr_of!((*raw).struct_size).read();
        if table_size < header_end {
            return Err(Error::new(
                ErrorKind::Version,
                ctx(),
                format!("its PJRT_Api table is {table_size} bytes, too small to hold a version"),
            ));
        }
        let v = std::ptr::addr_of!((*raw).pjrt_api_version).read();
        let version = (v.major_version.max(0) as u32, v.minor_version.max(0) as u32);
        let (major, min_minor) = crate::MIN_API_VERSION;
        if version.0 != major || version.1 < min_minor {
            return Err(Error::new(
                ErrorKind::Version,
                ctx(),
                format!(
                    "the plugin implements PJRT C API {}.{}, netspec needs {major}.x with x >= {min_minor} \
                     (install the pinned plugin with `./scripts/setup.sh plugin`)",
                    v.major_version, v.minor_version
                ),
            ));
        }
        let api = Api {
            raw,
            table_size,
            version,
        };
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|(_, off)| !api.has(*off) || api.slot_is_null(*off))
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(Error::new(
                ErrorKind::Version,
                ctx(),
                format!(
                    "its PJRT C API {}.{} function table lacks {}",
                    version.0,
                    version.1,
                    missing.join(", ")
                ),
            ));
        }
        Ok(api)
    }

    pub(crate) fn raw(&self) -> *const PJRT_Api {
        self.raw
    }

    pub(crate) fn version(&self) -> (u32, u32) {
        self.version
    }

    /// Whether the table holds a pointer-sized entry at `offset`.
    pub(crate) fn has(&self, offset: usize) -> bool {
        offset + size_of::<usize>() <= self.table_size
    }

    fn slot_is_null(&self, offset: usize) -> bool {
        // SAFETY: called only for offsets below table_size; every entry is one nullable pointer.
        unsafe {
            (self.raw as *const u8)
                .add(offset)
                .cast::<*const ()>()
                .read()
                .is_null()
        }
    }

    pub(crate) fn missing(&self, entry: &str, ctx: impl Into<String>) -> Error {
        Error::new(
            ErrorKind::Version,
            ctx,
            format!(
                "the plugin (PJRT C API {}.{}) does not provide {entry}",
                self.version.0, self.version.1
            ),
        )
    }

    /// Converts a returned `PJRT_Error*` into a `Result`, taking the plugin's message and code, and frees
    /// the error object.
    pub(crate) fn check<C: Into<String>>(
        &self,
        err: *mut PJRT_Error,
        ctx: impl FnOnce() -> C,
    ) -> Result<()> {
        if err.is_null() {
            return Ok(());
        }
        let mut m = PJRT_Error_Message_Args::new();
        m.error = err;
        let message = match entry!(self, PJRT_Error_Message) {
            Some(f) => {
                // SAFETY: err is a live error object returned by the plugin.
                unsafe { f(&mut m) };
                if m.message.is_null() {
                    String::from("(the plugin gave no message)")
                } else {
                    // SAFETY: the plugin returns a buffer of message_size bytes owned by the error.
                    unsafe { lossy(m.message, m.message_size) }
                }
            }
            None => String::from("(the plugin gave no message)"),
        };
        let mut code = None;
        if let Some(f) = entry!(self, PJRT_Error_GetCode) {
            let mut c = PJRT_Error_GetCode_Args::new();
            c.error = err;
            // SAFETY: as above. GetCode returns an error only for a null error, which this is not.
            if unsafe { f(&mut c) }.is_null() {
                code = Some(c.code);
            }
        }
        if let Some(f) = entry!(self, PJRT_Error_Destroy) {
            let mut d = PJRT_Error_Destroy_Args::new();
            d.error = err;
            // SAFETY: the error is destroyed exactly once, after its message was copied out.
            unsafe { f(&mut d) };
        }
        Err(Error::plugin(ctx(), message, code))
    }

    /// Awaits and then destroys an event (null events are a no-op). The await's error wins over the
    /// destroy's.
    pub(crate) fn await_event(&self, event: *mut PJRT_Event, ctx: &str) -> Result<()> {
        if event.is_null() {
            return Ok(());
        }
        let mut a = PJRT_Event_Await_Args::new();
        a.event = event;
        let awaited = call!(self, PJRT_Event_Await, &mut a, ctx);
        let mut d = PJRT_Event_Destroy_Args::new();
        d.event = event;
        let destroyed = call!(self, PJRT_Event_Destroy, &mut d, ctx);
        awaited.and(destroyed)
    }
}

/// Copies a (pointer, length) string returned by the plugin.
///
/// # Safety
/// `ptr` must point to `len` readable bytes (or be null, giving an empty string).
pub(crate) unsafe fn lossy(ptr: *const std::ffi::c_char, len: usize) -> String {
    if ptr.is_null() || len == 0 {
        return String::new();
    }
    String::from_utf8_lossy(std::slice::from_raw_parts(ptr.cast::<u8>(), len)).into_owned()
}
