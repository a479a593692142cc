//! Hand-written `repr(C)` bindings for the subset of the PJRT C API (`pjrt_c_api.h`) that netspec uses.
//!
//! Written against the header of API 0.81 (shipped in the pinned `xla-cpu-pjrt` wheel). PJRT's
//! compatibility rule within major version 0 is "append only": newer plugins keep every field and table
//! entry at the same offset and may only add at the end. So structs written for 0.81 work with newer
//! plugins, and `tests/abi.rs` checks every size and offset below against the header with a C compiler.
//!
//! Conventions taken from the header:
//! - every argument struct starts with `struct_size` and `extension_start`; callers set `struct_size` to
//!   the header's `<T>_STRUCT_SIZE` (offset + size of the last field, without tail padding), which is
//!   `T::STRUCT_SIZE` here, and zero every other field they do not set (see [`Args::new`]);
//! - C enums are `int`-sized, so they are plain `i32` aliases with constants (a Rust enum would be UB
//!   for values a newer plugin might return);
//! - opaque handles are zero-sized `repr(C)` structs used only behind pointers.
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code
)]

use std::ffi::{c_char, c_int, c_void};
use std::mem::{offset_of, size_of};

/// Declares opaque handle types.
macro_rules! opaque {
    ($($name:ident),* $(,)?) => {$(
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
        }
    )*};
}

opaque!(
    PJRT_Error,
    PJRT_Event,
    PJRT_Client,
    PJRT_Device,
    PJRT_DeviceDescription,
    PJRT_Memory,
    PJRT_Executable,
    PJRT_LoadedExecutable,
    PJRT_Buffer,
    PJRT_Extension_Base,
    PJRT_ExecuteContext,
    PJRT_Buffer_MemoryLayout,
    PJRT_SendCallbackInfo,
    PJRT_RecvCallbackInfo,
);

// C enums (int-sized).
pub type PJRT_Error_Code = i32;
pub const PJRT_Error_Code_OK: PJRT_Error_Code = 0;
pub const PJRT_Error_Code_UNKNOWN: PJRT_Error_Code = 2;
pub const PJRT_Error_Code_INVALID_ARGUMENT: PJRT_Error_Code = 3;
pub const PJRT_Error_Code_DEADLINE_EXCEEDED: PJRT_Error_Code = 4;
pub const PJRT_Error_Code_NOT_FOUND: PJRT_Error_Code = 5;
pub const PJRT_Error_Code_ALREADY_EXISTS: PJRT_Error_Code = 6;
pub const PJRT_Error_Code_INTERNAL: PJRT_Error_Code = 13;
pub const PJRT_Error_Code_UNAVAILABLE: PJRT_Error_Code = 14;
pub type PJRT_NamedValue_Type = i32;
pub const PJRT_NamedValue_kString: PJRT_NamedValue_Type = 0;
pub const PJRT_NamedValue_kInt64: PJRT_NamedValue_Type = 1;
pub const PJRT_NamedValue_kInt64List: PJRT_NamedValue_Type = 2;
pub const PJRT_NamedValue_kFloat: PJRT_NamedValue_Type = 3;
pub const PJRT_NamedValue_kBool: PJRT_NamedValue_Type = 4;

pub type PJRT_Buffer_Type = i32;
pub type PJRT_HostBufferSemantics = i32;
/// The host memory may be reused as soon as the call returns... once `done_with_host_buffer` fired.
pub const PJRT_HostBufferSemantics_kImmutableOnlyDuringCall: PJRT_HostBufferSemantics = 0;

/// A function-table entry: takes a pointer to its argument struct, returns an owned error or null.
pub type Entry<A> = Option<unsafe extern "C" fn(args: *mut A) -> *mut PJRT_Error>;
/// A function-table entry we never call; only its slot (one pointer) matters.
pub type Unused = Option<unsafe extern "C" fn()>;

/// `PJRT_CallbackError`: given by the plugin to a callback, which calls it to make the error it
/// returns (the message is copied during the call).
pub type PJRT_CallbackError = Option<
    unsafe extern "C" fn(
        code: PJRT_Error_Code,
        message: *const c_char,
        message_size: usize,
    ) -> *mut PJRT_Error,
>;
/// `PJRT_KeyValueGetCallback_ValueDeleter` / `PJRT_KeyValueTryGetCallback_ValueDeleter`: frees a
/// value a get callback returned, once the plugin has copied it.
pub type PJRT_KeyValue_ValueDeleter = Option<unsafe extern "C" fn(value: *mut c_char)>;
/// The key-value callbacks of `PJRT_Client_Create_Args`.
pub type PJRT_KeyValueGetCallback = Entry<PJRT_KeyValueGetCallback_Args>;
pub type PJRT_KeyValueTryGetCallback = Entry<PJRT_KeyValueTryGetCallback_Args>;
pub type PJRT_KeyValuePutCallback = Entry<PJRT_KeyValuePutCallback_Args>;

/// The value of a `PJRT_NamedValue`; which member is live is given by `type`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union PJRT_NamedValue_Value {
    pub string_value: *const c_char,
    pub int64_value: i64,
    pub int64_array_value: *const i64,
    pub float_value: f32,
    pub bool_value: bool,
}

/// Layout of one bound field, as Rust sees it (compared with the C compiler's view in `tests/abi.rs`).
#[derive(Debug, Clone)]
pub struct FieldLayout {
    /// The field's name in the C header.
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

/// Layout of one bound struct.
#[derive(Debug, Clone)]
pub struct StructLayout {
    pub name: &'static str,
    /// `size_of` in Rust (with tail padding), to compare with C's `sizeof`.
    pub size: usize,
    /// Offset + size of the last field, to compare with the header's `<name>_STRUCT_SIZE`.
    pub struct_size: usize,
    pub fields: Vec<FieldLayout>,
}

const fn max_end(ends: &[usize]) -> usize {
    let mut m = 0;
    let mut i = 0;
    while i < ends.len() {
        if ends[i] > m {
            m = ends[i];
        }
        i += 1;
    }
    m
}

/// Argument structs: zero-initialisable, with a `struct_size` first field.
pub trait Args: Sized {
    const STRUCT_SIZE: usize;
    /// All-zero value (null pointers, `None` entries, 0 sizes) with `struct_size` set, as PJRT expects.
    fn new() -> Self;
}

/// Declares `repr(C)` structs, records their layouts for the ABI test, and computes `STRUCT_SIZE`.
/// A field written `name as "c_name": T` is called `c_name` in the header (used for anonymous unions).
macro_rules! pjrt_structs {
    ($(
        $(#[$meta:meta])*
        struct $name:ident { $( $field:ident $(as $cname:literal)? : $ty:ty ),* $(,)? }
    )*) => {
        $(
            $(#[$meta])*
            #[repr(C)]
            #[derive(Clone, Copy)]
            pub struct $name { $( pub $field: $ty ),* }

            impl $name {
                pub const STRUCT_SIZE: usize =
                    max_end(&[ $( offset_of!($name, $field) + size_of::<$ty>() ),* ]);
            }
        )*

        /// The layouts of every struct declared here, for the ABI test.
        pub fn layouts() -> Vec<StructLayout> {
            vec![$(
                StructLayout {
                    name: stringify!($name),
                    size: size_of::<$name>(),
                    struct_size: $name::STRUCT_SIZE,
                    fields: vec![$(
                        FieldLayout {
                            name: c_field_name(stringify!($field), [$($cname)?]),
                            offset: offset_of!($name, $field),
                            size: size_of::<$ty>(),
                        }
                    ),*],
                }
            ),*]
        }
    };
}

fn c_field_name<const N: usize>(rust: &'static str, alias: [&'static str; N]) -> &'static str {
    match alias.first() {
        Some(c) => c,
        None => rust.strip_prefix("r#").unwrap_or(rust),
    }
}

/// Implements [`Args`] for argument structs (all of which begin with `struct_size`).
macro_rules! impl_args {
    ($($name:ident),* $(,)?) => {$(
        impl Args for $name {
            const STRUCT_SIZE: usize = $name::STRUCT_SIZE;
            fn new() -> Self {
                // SAFETY: every field is an integer, float, bool, raw pointer, `Option<fn>` or a union of
                // those, for all of which the all-zero bit pattern is valid (0, false, null, None).
                let mut a: Self = unsafe { std::mem::zeroed() };
                a.struct_size = <$name>::STRUCT_SIZE;
                a
            }
        }
    )*};
}

pjrt_structs! {
    struct PJRT_Api_Version {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        major_version: c_int,
        minor_version: c_int,
    }

    struct PJRT_Error_Destroy_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        error: *mut PJRT_Error,
    }

    struct PJRT_Error_Message_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        error: *const PJRT_Error,
        message: *const c_char,
        message_size: usize,
    }

    struct PJRT_Error_GetCode_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        error: *const PJRT_Error,
        code: PJRT_Error_Code,
    }

    struct PJRT_NamedValue {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        name: *const c_char,
        name_size: usize,
        r#type: PJRT_NamedValue_Type,
        value as "int64_value": PJRT_NamedValue_Value,
        value_size: usize,
    }

    struct PJRT_Plugin_Initialize_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
    }

    struct PJRT_Plugin_Attributes_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        attributes: *const PJRT_NamedValue,
        num_attributes: usize,
    }

    struct PJRT_Event_Destroy_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        event: *mut PJRT_Event,
    }

    struct PJRT_Event_Await_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        event: *mut PJRT_Event,
    }

    struct PJRT_Client_Create_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        create_options: *const PJRT_NamedValue,
        num_options: usize,
        kv_get_callback: PJRT_KeyValueGetCallback,
        kv_get_user_arg: *mut c_void,
        kv_put_callback: PJRT_KeyValuePutCallback,
        kv_put_user_arg: *mut c_void,
        client: *mut PJRT_Client,
        kv_try_get_callback: PJRT_KeyValueTryGetCallback,
        kv_try_get_user_arg: *mut c_void,
    }

    struct PJRT_KeyValueGetCallback_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        key: *const c_char,
        key_size: usize,
        timeout_in_ms: c_int,
        callback_error: *mut PJRT_CallbackError,
        user_arg: *mut c_void,
        value: *mut c_char,
        value_size: usize,
        value_deleter_callback: PJRT_KeyValue_ValueDeleter,
    }

    struct PJRT_KeyValueTryGetCallback_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        key: *const c_char,
        key_size: usize,
        callback_error: *mut PJRT_CallbackError,
        user_arg: *mut c_void,
        value: *mut c_char,
        value_size: usize,
        value_deleter_callback: PJRT_KeyValue_ValueDeleter,
    }

    struct PJRT_KeyValuePutCallback_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        key: *const c_char,
        key_size: usize,
        value: *const c_char,
        value_size: usize,
        callback_error: *mut PJRT_CallbackError,
        user_arg: *mut c_void,
    }

    struct PJRT_Client_Destroy_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        client: *mut PJRT_Client,
    }

    struct PJRT_Client_PlatformName_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        client: *mut PJRT_Client,
        platform_name: *const c_char,
        platform_name_size: usize,
    }

    struct PJRT_Client_PlatformVersion_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        client: *mut PJRT_Client,
        platform_version: *const c_char,
        platform_version_size: usize,
    }

    struct PJRT_Client_AddressableDevices_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        client: *mut PJRT_Client,
        addressable_devices: *const *mut PJRT_Device,
        num_addressable_devices: usize,
    }

    struct PJRT_Program {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        code: *mut c_char,
        code_size: usize,
        format: *const c_char,
        format_size: usize,
    }

    struct PJRT_Client_Compile_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        client: *mut PJRT_Client,
        program: *const PJRT_Program,
        compile_options: *const c_char,
        compile_options_size: usize,
        executable: *mut PJRT_LoadedExecutable,
    }

    struct PJRT_Client_BufferFromHostBuffer_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        client: *mut PJRT_Client,
        data: *const c_void,
        r#type: PJRT_Buffer_Type,
        dims: *const i64,
        num_dims: usize,
        byte_strides: *const i64,
        num_byte_strides: usize,
        host_buffer_semantics: PJRT_HostBufferSemantics,
        device: *mut PJRT_Device,
        memory: *mut PJRT_Memory,
        device_layout: *mut PJRT_Buffer_MemoryLayout,
        done_with_host_buffer: *mut PJRT_Event,
        buffer: *mut PJRT_Buffer,
    }

    struct PJRT_DeviceDescription_Id_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        device_description: *mut PJRT_DeviceDescription,
        id: c_int,
    }

    struct PJRT_DeviceDescription_Kind_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        device_description: *mut PJRT_DeviceDescription,
        device_kind: *const c_char,
        device_kind_size: usize,
    }

    struct PJRT_DeviceDescription_ToString_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        device_description: *mut PJRT_DeviceDescription,
        to_string: *const c_char,
        to_string_size: usize,
    }

    struct PJRT_Device_GetDescription_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        device: *mut PJRT_Device,
        device_description: *mut PJRT_DeviceDescription,
    }

    struct PJRT_Executable_Destroy_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        executable: *mut PJRT_Executable,
    }

    struct PJRT_LoadedExecutable_Destroy_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        executable: *mut PJRT_LoadedExecutable,
    }

    struct PJRT_LoadedExecutable_GetExecutable_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        loaded_executable: *mut PJRT_LoadedExecutable,
        executable: *mut PJRT_Executable,
    }

    struct PJRT_Executable_NumOutputs_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        executable: *mut PJRT_Executable,
        num_outputs: usize,
    }

    struct PJRT_Executable_OutputElementTypes_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        executable: *mut PJRT_Executable,
        output_types: *mut PJRT_Buffer_Type,
        num_output_types: usize,
    }

    struct PJRT_Executable_OutputDimensions_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        executable: *mut PJRT_Executable,
        num_outputs: usize,
        dims: *const i64,
        dim_sizes: *const usize,
    }

    struct PJRT_ExecuteOptions {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        send_callbacks: *mut *mut PJRT_SendCallbackInfo,
        recv_callbacks: *mut *mut PJRT_RecvCallbackInfo,
        num_send_ops: usize,
        num_recv_ops: usize,
        launch_id: c_int,
        non_donatable_input_indices: *const i64,
        num_non_donatable_input_indices: usize,
        context: *mut PJRT_ExecuteContext,
        call_location: *const c_char,
        num_tasks: usize,
        task_ids: *mut c_int,
        incarnation_ids: *mut i64,
    }

    struct PJRT_LoadedExecutable_Execute_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        executable: *mut PJRT_LoadedExecutable,
        options: *mut PJRT_ExecuteOptions,
        argument_lists: *const *const *mut PJRT_Buffer,
        num_devices: usize,
        num_args: usize,
        output_lists: *const *mut *mut PJRT_Buffer,
        device_complete_events: *mut *mut PJRT_Event,
        execute_device: *mut PJRT_Device,
    }

    struct PJRT_Buffer_Destroy_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        buffer: *mut PJRT_Buffer,
    }

    struct PJRT_Buffer_ElementType_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        buffer: *mut PJRT_Buffer,
        r#type: PJRT_Buffer_Type,
    }

    struct PJRT_Buffer_Dimensions_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        buffer: *mut PJRT_Buffer,
        dims: *const i64,
        num_dims: usize,
    }

    struct PJRT_Buffer_ToHostBuffer_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        src: *mut PJRT_Buffer,
        host_layout: *mut PJRT_Buffer_MemoryLayout,
        dst: *mut c_void,
        dst_size: usize,
        event: *mut PJRT_Event,
    }

    struct PJRT_Buffer_Device_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        buffer: *mut PJRT_Buffer,
        device: *mut PJRT_Device,
    }

    struct PJRT_LoadedExecutable_AddressableDevices_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        executable: *mut PJRT_LoadedExecutable,
        addressable_devices: *const *mut PJRT_Device,
        num_addressable_devices: usize,
    }

    struct PJRT_Buffer_IsDeleted_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        buffer: *mut PJRT_Buffer,
        is_deleted: bool,
    }

    struct PJRT_Buffer_UnsafePointer_Args {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        buffer: *mut PJRT_Buffer,
        buffer_pointer: usize,
    }

    /// The function table returned by `GetPjrtApi`. Entries are in header order; the ones netspec never
    /// calls are [`Unused`] slots. Only entries below `struct_size` exist in an older plugin.
    struct PJRT_Api {
        struct_size: usize,
        extension_start: *mut PJRT_Extension_Base,
        pjrt_api_version: PJRT_Api_Version,
        PJRT_Error_Destroy: Option<unsafe extern "C" fn(args: *mut PJRT_Error_Destroy_Args)>,
        PJRT_Error_Message: Option<unsafe extern "C" fn(args: *mut PJRT_Error_Message_Args)>,
        PJRT_Error_GetCode: Entry<PJRT_Error_GetCode_Args>,
        PJRT_Plugin_Initialize: Entry<PJRT_Plugin_Initialize_Args>,
        PJRT_Plugin_Attributes: Entry<PJRT_Plugin_Attributes_Args>,
        PJRT_Event_Destroy: Entry<PJRT_Event_Destroy_Args>,
        PJRT_Event_IsReady: Unused,
        PJRT_Event_Error: Unused,
        PJRT_Event_Await: Entry<PJRT_Event_Await_Args>,
        PJRT_Event_OnReady: Unused,
        PJRT_Client_Create: Entry<PJRT_Client_Create_Args>,
        PJRT_Client_Destroy: Entry<PJRT_Client_Destroy_Args>,
        PJRT_Client_PlatformName: Entry<PJRT_Client_PlatformName_Args>,
        PJRT_Client_ProcessIndex: Unused,
        PJRT_Client_PlatformVersion: Entry<PJRT_Client_PlatformVersion_Args>,
        PJRT_Client_Devices: Unused,
        PJRT_Client_AddressableDevices: Entry<PJRT_Client_AddressableDevices_Args>,
        PJRT_Client_LookupDevice: Unused,
        PJRT_Client_LookupAddressableDevice: Unused,
        PJRT_Client_AddressableMemories: Unused,
        PJRT_Client_Compile: Entry<PJRT_Client_Compile_Args>,
        PJRT_Client_DefaultDeviceAssignment: Unused,
        PJRT_Client_BufferFromHostBuffer: Entry<PJRT_Client_BufferFromHostBuffer_Args>,
        PJRT_DeviceDescription_Id: Entry<PJRT_DeviceDescription_Id_Args>,
        PJRT_DeviceDescription_ProcessIndex: Unused,
        PJRT_DeviceDescription_Attributes: Unused,
        PJRT_DeviceDescription_Kind: Entry<PJRT_DeviceDescription_Kind_Args>,
        PJRT_DeviceDescription_DebugString: Unused,
        PJRT_DeviceDescription_ToString: Entry<PJRT_DeviceDescription_ToString_Args>,
        PJRT_Device_GetDescription: Entry<PJRT_Device_GetDescription_Args>,
        PJRT_Device_IsAddressable: Unused,
        PJRT_Device_LocalHardwareId: Unused,
        PJRT_Device_AddressableMemories: Unused,
        PJRT_Device_DefaultMemory: Unused,
        PJRT_Device_MemoryStats: Unused,
        PJRT_Memory_Id: Unused,
        PJRT_Memory_Kind: Unused,
        PJRT_Memory_DebugString: Unused,
        PJRT_Memory_ToString: Unused,
        PJRT_Memory_AddressableByDevices: Unused,
        PJRT_Executable_Destroy: Entry<PJRT_Executable_Destroy_Args>,
        PJRT_Executable_Name: Unused,
        PJRT_Executable_NumReplicas: Unused,
        PJRT_Executable_NumPartitions: Unused,
        PJRT_Executable_NumOutputs: Entry<PJRT_Executable_NumOutputs_Args>,
        PJRT_Executable_SizeOfGeneratedCodeInBytes: Unused,
        PJRT_Executable_GetCostAnalysis: Unused,
        PJRT_Executable_OutputMemoryKinds: Unused,
        PJRT_Executable_OptimizedProgram: Unused,
        PJRT_Executable_Serialize: Unused,
        PJRT_LoadedExecutable_Destroy: Entry<PJRT_LoadedExecutable_Destroy_Args>,
        PJRT_LoadedExecutable_GetExecutable: Entry<PJRT_LoadedExecutable_GetExecutable_Args>,
        PJRT_LoadedExecutable_AddressableDevices: Entry<PJRT_LoadedExecutable_AddressableDevices_Args>,
        PJRT_LoadedExecutable_Delete: Unused,
        PJRT_LoadedExecutable_IsDeleted: Unused,
        PJRT_LoadedExecutable_Execute: Entry<PJRT_LoadedExecutable_Execute_Args>,
        PJRT_Executable_DeserializeAndLoad: Unused,
        PJRT_LoadedExecutable_Fingerprint: Unused,
        PJRT_Buffer_Destroy: Entry<PJRT_Buffer_Destroy_Args>,
        PJRT_Buffer_ElementType: Entry<PJRT_Buffer_ElementType_Args>,
        PJRT_Buffer_Dimensions: Entry<PJRT_Buffer_Dimensions_Args>,
        PJRT_Buffer_UnpaddedDimensions: Unused,
        PJRT_Buffer_DynamicDimensionIndices: Unused,
        PJRT_Buffer_GetMemoryLayout: Unused,
        PJRT_Buffer_OnDeviceSizeInBytes: Unused,
        PJRT_Buffer_Device: Entry<PJRT_Buffer_Device_Args>,
        PJRT_Buffer_Memory: Unused,
        PJRT_Buffer_Delete: Unused,
        PJRT_Buffer_IsDeleted: Entry<PJRT_Buffer_IsDeleted_Args>,
        PJRT_Buffer_CopyToDevice: Unused,
        PJRT_Buffer_ToHostBuffer: Entry<PJRT_Buffer_ToHostBuffer_Args>,
        PJRT_Buffer_IsOnCpu: Unused,
        PJRT_Buffer_ReadyEvent: Unused,
        PJRT_Buffer_UnsafePointer: Entry<PJRT_Buffer_UnsafePointer_Args>,
        PJRT_Buffer_IncreaseExternalReferenceCount: Unused,
        PJRT_Buffer_DecreaseExternalReferenceCount: Unused,
        PJRT_Buffer_OpaqueDeviceMemoryDataPointer: Unused,
        PJRT_CopyToDeviceStream_Destroy: Unused,
        PJRT_CopyToDeviceStream_AddChunk: Unused,
        PJRT_CopyToDeviceStream_TotalBytes: Unused,
        PJRT_CopyToDeviceStream_GranuleSize: Unused,
        PJRT_CopyToDeviceStream_CurrentBytes: Unused,
        PJRT_TopologyDescription_Create: Unused,
        PJRT_TopologyDescription_Destroy: Unused,
        PJRT_TopologyDescription_PlatformName: Unused,
        PJRT_TopologyDescription_PlatformVersion: Unused,
        PJRT_TopologyDescription_GetDeviceDescriptions: Unused,
        PJRT_TopologyDescription_Serialize: Unused,
        PJRT_TopologyDescription_Attributes: Unused,
        PJRT_Compile: Unused,
        PJRT_Executable_OutputElementTypes: Entry<PJRT_Executable_OutputElementTypes_Args>,
        PJRT_Executable_OutputDimensions: Entry<PJRT_Executable_OutputDimensions_Args>,
        PJRT_Buffer_CopyToMemory: Unused,
        PJRT_Client_CreateViewOfDeviceBuffer: Unused,
        PJRT_Executable_Fingerprint: Unused,
        PJRT_Client_TopologyDescription: Unused,
        PJRT_Executable_GetCompiledMemoryStats: Unused,
        PJRT_Memory_Kind_Id: Unused,
        PJRT_ExecuteContext_Create: Unused,
        PJRT_ExecuteContext_Destroy: Unused,
        PJRT_Buffer_CopyRawToHost: Unused,
        PJRT_AsyncHostToDeviceTransferManager_Destroy: Unused,
        PJRT_AsyncHostToDeviceTransferManager_TransferData: Unused,
        PJRT_Client_CreateBuffersForAsyncHostToDevice: Unused,
        PJRT_AsyncHostToDeviceTransferManager_RetrieveBuffer: Unused,
        PJRT_AsyncHostToDeviceTransferManager_Device: Unused,
        PJRT_AsyncHostToDeviceTransferManager_BufferCount: Unused,
        PJRT_AsyncHostToDeviceTransferManager_BufferSize: Unused,
        PJRT_AsyncHostToDeviceTransferManager_SetBufferError: Unused,
        PJRT_AsyncHostToDeviceTransferManager_AddMetadata: Unused,
        PJRT_Client_DmaMap: Unused,
        PJRT_Client_DmaUnmap: Unused,
        PJRT_Client_CreateUninitializedBuffer: Unused,
        PJRT_Client_UpdateGlobalProcessInfo: Unused,
        PJRT_TopologyDescription_Deserialize: Unused,
        PJRT_Client_CreateAliasBuffer: Unused,
        PJRT_Client_FulfillAliasBuffer: Unused,
        PJRT_LoadedExecutable_GetDeviceAssignment: Unused,
    }
}

impl_args!(
    PJRT_Error_Destroy_Args,
    PJRT_Error_Message_Args,
    PJRT_Error_GetCode_Args,
    PJRT_NamedValue,
    PJRT_Plugin_Initialize_Args,
    PJRT_Plugin_Attributes_Args,
    PJRT_Event_Destroy_Args,
    PJRT_Event_Await_Args,
    PJRT_Client_Create_Args,
    PJRT_KeyValueGetCallback_Args,
    PJRT_KeyValueTryGetCallback_Args,
    PJRT_KeyValuePutCallback_Args,
    PJRT_Client_Destroy_Args,
    PJRT_Client_PlatformName_Args,
    PJRT_Client_PlatformVersion_Args,
    PJRT_Client_AddressableDevices_Args,
    PJRT_Program,
    PJRT_Client_Compile_Args,
    PJRT_Client_BufferFromHostBuffer_Args,
    PJRT_DeviceDescription_Id_Args,
    PJRT_DeviceDescription_Kind_Args,
    PJRT_DeviceDescription_ToString_Args,
    PJRT_Device_GetDescription_Args,
    PJRT_Executable_Destroy_Args,
    PJRT_LoadedExecutable_Destroy_Args,
    PJRT_LoadedExecutable_GetExecutable_Args,
    PJRT_Executable_NumOutputs_Args,
    PJRT_Executable_OutputElementTypes_Args,
    PJRT_Executable_OutputDimensions_Args,
    PJRT_ExecuteOptions,
    PJRT_LoadedExecutable_Execute_Args,
    PJRT_Buffer_Destroy_Args,
    PJRT_Buffer_ElementType_Args,
    PJRT_Buffer_Dimensions_Args,
    PJRT_Buffer_ToHostBuffer_Args,
    PJRT_Buffer_IsDeleted_Args,
    PJRT_Buffer_UnsafePointer_Args,
    PJRT_Buffer_Device_Args,
    PJRT_LoadedExecutable_AddressableDevices_Args,
);

/// The API version these bindings were written against (the header of the pinned `xla-cpu-pjrt` wheel).
pub const BINDINGS_API_VERSION: (u32, u32) = (0, 81);

/// The name of the symbol every PJRT plugin exports.
pub const GET_PJRT_API: &[u8] = b"GetPjrtApi\0";
pub type GetPjrtApiFn = unsafe extern "C" fn() -> *const PJRT_Api;
