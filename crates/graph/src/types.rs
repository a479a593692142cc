//! Element types and tensor types, with their StableHLO spelling.

use std::fmt;

/// Element type of a tensor. `Pred` is StableHLO's `i1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
    BF16,
    I32,
    I64,
    U8,
    U32,
    U64,
    Pred,
}

impl DType {
    /// The MLIR spelling (`f32`, `ui8`, `i1`, …).
    pub fn mlir(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::BF16 => "bf16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "ui8",
            DType::U32 => "ui32",
            DType::U64 => "ui64",
            DType::Pred => "i1",
        }
    }

    /// The type sums of this type accumulate in: f32 for bf16 (a matrix product's or a convolution's
    /// preferred element type, a reduction's running sum), else the type itself. The one rule of
    /// mixed precision in the graph: `dot_general` and `convolution` of bf16 operands have an f32
    /// result, and the builders (`Graph::dot_general`, `convolution`, `reduce`, `reduce_window` with
    /// `Sum`) round the f32 result back to bf16.
    pub fn accumulation(self) -> DType {
        match self {
            DType::BF16 => DType::F32,
            DType::F32
            | DType::F64
            | DType::I32
            | DType::I64
            | DType::U8
            | DType::U32
            | DType::U64
            | DType::Pred => self,
        }
    }

    /// True for f32, f64, bf16: the only types that carry cotangents.
    pub fn is_float(self) -> bool {
        match self {
            DType::F32 | DType::F64 | DType::BF16 => true,
            DType::I32 | DType::I64 | DType::U8 | DType::U32 | DType::U64 | DType::Pred => false,
        }
    }

    /// True for i32, i64.
    pub fn is_signed_int(self) -> bool {
        match self {
            DType::I32 | DType::I64 => true,
            DType::F32
            | DType::F64
            | DType::BF16
            | DType::U8
            | DType::U32
            | DType::U64
            | DType::Pred => false,
        }
    }

    /// True for u8, u32, u64.
    pub fn is_unsigned_int(self) -> bool {
        match self {
            DType::U8 | DType::U32 | DType::U64 => true,
            DType::F32 | DType::F64 | DType::BF16 | DType::I32 | DType::I64 | DType::Pred => false,
        }
    }

    /// True for every integer type (not `Pred`).
    pub fn is_int(self) -> bool {
        self.is_signed_int() || self.is_unsigned_int()
    }

    /// Size of one element in bytes (`Pred` counts as one byte).
    pub fn size_bytes(self) -> usize {
        match self {
            DType::U8 | DType::Pred => 1,
            DType::BF16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mlir())
    }
}

/// A static tensor type: element type and dimension sizes (rank 0 = scalar).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub dims: Vec<usize>,
}

impl TensorType {
    /// A tensor type from an element type and dimensions.
    pub fn new(dtype: DType, dims: &[usize]) -> TensorType {
        TensorType {
            dtype,
            dims: dims.to_vec(),
        }
    }

    /// A rank-0 tensor type.
    pub fn scalar(dtype: DType) -> TensorType {
        TensorType {
            dtype,
            dims: Vec::new(),
        }
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// The same dimensions with another element type.
    pub fn with_dtype(&self, dtype: DType) -> TensorType {
        TensorType {
            dtype,
            dims: self.dims.clone(),
        }
    }
}

/// Prints the MLIR type, e.g. `tensor<2x3xf32>` or `tensor<f32>`.
impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor<")?;
        for d in &self.dims {
            write!(f, "{d}x")?;
        }
        write!(f, "{}>", self.dtype)
    }
}
