//! Element types and device buffers.

use crate::api::call;
use crate::client::ClientInner;
use crate::error::{Error, Result};
use crate::ffi::*;
use std::sync::Arc;

/// Element types of device buffers (the `PJRT_Buffer_Type` values netspec can meet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// `i1` in StableHLO; one byte per element (0 or 1) on the host.
    Pred,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    F16,
    F32,
    F64,
    Bf16,
    C64,
    C128,
    /// Any other `PJRT_Buffer_Type` code (fp8 kinds, int4, tokens, ...), kept as the raw code.
    Other(i32),
}

impl ElementType {
    /// The `PJRT_Buffer_Type` code (checked against the header by `tests/abi.rs`).
    #[doc(hidden)]
    pub fn to_raw(self) -> PJRT_Buffer_Type {
        // Codes are the order of the PJRT_Buffer_Type enum in pjrt_c_api.h (INVALID = 0).
        match self {
            ElementType::Pred => 1,
            ElementType::S8 => 2,
            ElementType::S16 => 3,
            ElementType::S32 => 4,
            ElementType::S64 => 5,
            ElementType::U8 => 6,
            ElementType::U16 => 7,
            ElementType::U32 => 8,
            ElementType::U64 => 9,
            ElementType::F16 => 10,
            ElementType::F32 => 11,
            ElementType::F64 => 12,
            ElementType::Bf16 => 13,
            ElementType::C64 => 14,
            ElementType::C128 => 15,
            ElementType::Other(code) => code,
        }
    }

    pub(crate) fn from_raw(code: PJRT_Buffer_Type) -> ElementType {
        match code {
            1 => ElementType::Pred,
            2 => ElementType::S8,
            3 => ElementType::S16,
            4 => ElementType::S32,
            5 => ElementType::S64,
            6 => ElementType::U8,
            7 => ElementType::U16,
            8 => ElementType::U32,
            9 => ElementType::U64,
            10 => ElementType::F16,
            11 => ElementType::F32,
            12 => ElementType::F64,
            13 => ElementType::Bf16,
            14 => ElementType::C64,
            15 => ElementType::C128,
            other => ElementType::Other(other),
        }
    }

    /// Bytes per element on the host, or `None` for types we do not lay out ourselves.
    pub fn byte_size(self) -> Option<usize> {
        match self {
            ElementType::Pred | ElementType::S8 | ElementType::U8 => Some(1),
            ElementType::S16 | ElementType::U16 | ElementType::F16 | ElementType::Bf16 => Some(2),
            ElementType::S32 | ElementType::U32 | ElementType::F32 => Some(4),
            ElementType::S64 | ElementType::U64 | ElementType::F64 | ElementType::C64 => Some(8),
            ElementType::C128 => Some(16),
            ElementType::Other(_) => None,
        }
    }

    /// The StableHLO spelling (`f32`, `i1`, `ui8`, `bf16`, ...), as in `tensor<2x3xf32>`.
    pub fn mlir_name(self) -> String {
        match self {
            ElementType::Pred => "i1".into(),
            ElementType::S8 => "i8".into(),
            ElementType::S16 => "i16".into(),
            ElementType::S32 => "i32".into(),
            ElementType::S64 => "i64".into(),
            ElementType::U8 => "ui8".into(),
            ElementType::U16 => "ui16".into(),
            ElementType::U32 => "ui32".into(),
            ElementType::U64 => "ui64".into(),
            ElementType::F16 => "f16".into(),
            ElementType::F32 => "f32".into(),
            ElementType::F64 => "f64".into(),
            ElementType::Bf16 => "bf16".into(),
            ElementType::C64 => "complex<f32>".into(),
            ElementType::C128 => "complex<f64>".into(),
            ElementType::Other(code) => format!("<PJRT buffer type {code}>"),
        }
    }

    /// Parses a StableHLO element type name (the inverse of [`ElementType::mlir_name`]).
    pub fn from_mlir_name(s: &str) -> Option<ElementType> {
        Some(match s {
            "i1" => ElementType::Pred,
            "i8" | "si8" => ElementType::S8,
            "i16" | "si16" => ElementType::S16,
            "i32" | "si32" => ElementType::S32,
            "i64" | "si64" => ElementType::S64,
            "ui8" => ElementType::U8,
            "ui16" => ElementType::U16,
            "ui32" => ElementType::U32,
            "ui64" => ElementType::U64,
            "f16" => ElementType::F16,
            "f32" => ElementType::F32,
            "f64" => ElementType::F64,
            "bf16" => ElementType::Bf16,
            "complex<f32>" => ElementType::C64,
            "complex<f64>" => ElementType::C128,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ElementType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.mlir_name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Rust types that can be copied to and from device buffers byte for byte.
///
/// Sealed: `Buffer::to_vec` writes device bytes straight into a `Vec<T>`, which is sound only for the
/// types below (every bit pattern valid, except `bool`, whose bytes are checked to be 0 or 1).
pub trait Element: Copy + Send + 'static + sealed::Sealed {
    const TYPE: ElementType;
}

macro_rules! element {
    ($($t:ty => $e:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const TYPE: ElementType = ElementType::$e;
        }
    )*};
}

element!(
    f32 => F32, f64 => F64, half::bf16 => Bf16, half::f16 => F16,
    i8 => S8, i16 => S16, i32 => S32, i64 => S64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    bool => Pred,
);

/// Number of elements of a shape, or an error for negative dims or overflow.
pub(crate) fn element_count(dims: &[i64], ctx: &str) -> Result<usize> {
    let mut n: usize = 1;
    for (i, &d) in dims.iter().enumerate() {
        if d < 0 {
            return Err(Error::invalid(
                ctx,
                format!("dimension {i} of {dims:?} is negative"),
            ));
        }
        n = n
            .checked_mul(d as usize)
            .ok_or_else(|| Error::invalid(ctx, format!("shape {dims:?} has too many elements")))?;
    }
    Ok(n)
}

/// A device buffer owned by Rust; destroyed on drop. Keeps its client alive.
pub struct Buffer {
    pub(crate) raw: *mut PJRT_Buffer,
    pub(crate) client: Arc<ClientInner>,
    dims: Vec<i64>,
    ty: ElementType,
}

// SAFETY: PJRT buffers may be used and destroyed from any thread; the handle is owned uniquely and
// the only shared state (the client) is itself thread-safe.
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Wraps a buffer the plugin handed us, reading its shape and type once (so that `dims` and
    /// `element_type` are infallible afterwards). On error the buffer is destroyed.
    pub(crate) fn from_raw(
        client: Arc<ClientInner>,
        raw: *mut PJRT_Buffer,
        ctx: &str,
    ) -> Result<Buffer> {
        let mut b = Buffer {
            raw,
            client,
            dims: Vec::new(),
            ty: ElementType::Other(0),
        };
        let api = b.client.api;
        let mut d = PJRT_Buffer_Dimensions_Args::new();
        d.buffer = raw;
        call!(api, PJRT_Buffer_Dimensions, &mut d, ctx)?;
        if d.num_dims > 0 && !d.dims.is_null() {
            // SAFETY: the plugin returns num_dims dims owned by the buffer.
            b.dims = unsafe { std::slice::from_raw_parts(d.dims, d.num_dims) }.to_vec();
        }
        let mut t = PJRT_Buffer_ElementType_Args::new();
        t.buffer = raw;
        call!(api, PJRT_Buffer_ElementType, &mut t, ctx)?;
        b.ty = ElementType::from_raw(t.r#type);
        Ok(b)
    }

    pub fn dims(&self) -> Vec<i64> {
        self.dims.clone()
    }

    /// The dims without copying.
    pub fn shape(&self) -> &[i64] {
        &self.dims
    }

    pub fn element_type(&self) -> ElementType {
        self.ty
    }

    /// The index (into [`crate::Client::devices`]) of the device holding this buffer, as the plugin
    /// reports it.
    pub fn device(&self) -> Result<usize> {
        let ctx = "reading a buffer's device";
        let mut a = PJRT_Buffer_Device_Args::new();
        a.buffer = self.raw;
        call!(self.client.api, PJRT_Buffer_Device, &mut a, ctx)?;
        self.client.device_index(a.device).ok_or_else(|| {
            Error::new(
                crate::error::ErrorKind::Plugin,
                ctx,
                "the buffer is on a device that is not one of the client's addressable devices",
            )
        })
    }

    /// Number of elements (product of dims; 1 for a scalar).
    pub fn element_count(&self) -> usize {
        self.dims.iter().map(|&d| d.max(0) as usize).product()
    }

    /// Copies the buffer to the host. `T` must match the buffer's element type.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let ctx = "copying a device buffer to the host";
        if T::TYPE != self.ty {
            return Err(Error::invalid(
                ctx,
                format!(
                    "asked for {} elements but the buffer holds {} (shape {:?})",
                    T::TYPE,
                    self.ty,
                    self.dims
                ),
            ));
        }
        let n = self.element_count();
        let bytes = n * std::mem::size_of::<T>();
        let mut v: Vec<T> = Vec::with_capacity(n);
        self.copy_to_host(v.as_mut_ptr().cast(), bytes, ctx)?;
        if T::TYPE == ElementType::Pred {
            // SAFETY: the first `bytes` bytes were written by the plugin; read them as u8 before
            // claiming they are valid `bool`s.
            let raw = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), bytes) };
            if let Some(i) = raw.iter().position(|&b| b > 1) {
                return Err(Error::invalid(
                    ctx,
                    format!("predicate element {i} is {}, not 0 or 1", raw[i]),
                ));
            }
        }
        // SAFETY: copy_to_host initialised exactly n elements; every bit pattern is valid for the sealed
        // Element types (bool checked above).
        unsafe { v.set_len(n) };
        Ok(v)
    }

    /// Copies the buffer to the host as raw little-endian bytes (dense, row-major), for any type with a
    /// known byte size.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let ctx = "copying a device buffer to the host";
        let size = self.ty.byte_size().ok_or_else(|| {
            Error::invalid(ctx, format!("cannot copy elements of type {}", self.ty))
        })?;
        let mut v = vec![0u8; self.element_count() * size];
        self.copy_to_host(v.as_mut_ptr().cast(), v.len(), ctx)?;
        Ok(v)
    }

    /// Reads a one-element buffer (a scalar or any shape with one element).
    pub fn scalar<T: Element>(&self) -> Result<T> {
        let v = self.to_vec::<T>()?;
        match v.as_slice() {
            [x] => Ok(*x),
            _ => Err(Error::invalid(
                "reading a scalar buffer",
                format!(
                    "the buffer has shape {:?} ({} elements), not one element",
                    self.dims,
                    v.len()
                ),
            )),
        }
    }

    /// The device address of the buffer's data (`PJRT_Buffer_UnsafePointer`). For diagnostics and
    /// tests only: e.g. an output that reuses a donated input's memory has the input's address.
    pub fn device_pointer(&self) -> Result<usize> {
        let mut a = PJRT_Buffer_UnsafePointer_Args::new();
        a.buffer = self.raw;
        call!(
            self.client.api,
            PJRT_Buffer_UnsafePointer,
            &mut a,
            "reading a buffer's device pointer"
        )?;
        Ok(a.buffer_pointer)
    }

    /// Whether the plugin considers the buffer deleted (e.g. consumed by donation).
    pub(crate) fn is_deleted(&self) -> Result<bool> {
        let mut a = PJRT_Buffer_IsDeleted_Args::new();
        a.buffer = self.raw;
        call!(
            self.client.api,
            PJRT_Buffer_IsDeleted,
            &mut a,
            "querying a buffer"
        )?;
        Ok(a.is_deleted)
    }

    /// Synchronous device -> host copy of exactly `bytes` bytes into `dst`.
    fn copy_to_host(&self, dst: *mut u8, bytes: usize, ctx: &str) -> Result<()> {
        let api = self.client.api;
        // First ask for the size the plugin will write, so a mismatch is an error rather than an
        // overflow of `dst`.
        let mut q = PJRT_Buffer_ToHostBuffer_Args::new();
        q.src = self.raw;
        call!(api, PJRT_Buffer_ToHostBuffer, &mut q, ctx)?;
        if q.dst_size != bytes {
            return Err(Error::invalid(
                ctx,
                format!(
                    "the plugin reports {} bytes for a {} buffer of shape {:?}, expected {bytes}",
                    q.dst_size, self.ty, self.dims
                ),
            ));
        }
        if bytes == 0 {
            return Ok(());
        }
        let mut a = PJRT_Buffer_ToHostBuffer_Args::new();
        a.src = self.raw;
        a.dst = dst.cast();
        a.dst_size = bytes;
        call!(api, PJRT_Buffer_ToHostBuffer, &mut a, ctx)?;
        api.await_event(a.event, ctx)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let mut a = PJRT_Buffer_Destroy_Args::new();
        a.buffer = self.raw;
        // A failing destroy cannot be reported from drop; there is nothing else to free.
        let _ = call!(
            self.client.api,
            PJRT_Buffer_Destroy,
            &mut a,
            "destroying a buffer"
        );
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({}{:?})", self.ty, self.dims)
    }
}
