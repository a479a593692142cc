//! Host tensors: a `graph::TensorType` and its elements, row-major.
//!
//! Floats of every width are held as `f64` (an f32 value converts exactly); signed integers as `i64` and
//! unsigned ones as `u64`, always wrapped to their declared width; predicates as `bool`.

use graph::{DType, TensorType};

use crate::error::{bail, Result};

/// The elements of a tensor (row-major, `numel` of them).
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// f32 / f64 / bf16 values.
    Float(Vec<f64>),
    /// i32 / i64 values.
    Int(Vec<i64>),
    /// u8 / u32 / u64 values.
    UInt(Vec<u64>),
    /// i1 values.
    Pred(Vec<bool>),
}

/// Applies `$e` to the vector inside any `Data` variant, keeping the variant.
macro_rules! each {
    ($d:expr, $v:ident => $e:expr) => {
        match $d {
            $crate::tensor::Data::Float($v) => $crate::tensor::Data::Float($e),
            $crate::tensor::Data::Int($v) => $crate::tensor::Data::Int($e),
            $crate::tensor::Data::UInt($v) => $crate::tensor::Data::UInt($e),
            $crate::tensor::Data::Pred($v) => $crate::tensor::Data::Pred($e),
        }
    };
}

impl Data {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::Float(v) => v.len(),
            Data::Int(v) => v.len(),
            Data::UInt(v) => v.len(),
            Data::Pred(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements at `idx` (positions into `self`), in that order.
    pub(crate) fn gather(&self, idx: &[usize]) -> Data {
        each!(self, v => idx.iter().map(|&i| v[i]).collect())
    }

    fn kind_ok(&self, dtype: DType) -> bool {
        match self {
            Data::Float(_) => dtype.is_float(),
            Data::Int(_) => dtype.is_signed_int(),
            Data::UInt(_) => dtype.is_unsigned_int(),
            Data::Pred(_) => dtype == DType::Pred,
        }
    }
}

/// A tensor value of the interpreter.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub ty: TensorType,
    pub data: Data,
}

impl Tensor {
    /// A tensor of type `ty`; the data's kind must fit the element type and hold `numel` elements.
    /// Integers are wrapped to the declared width and floats rounded to it (f32 / bf16).
    pub fn new(ty: TensorType, data: Data) -> Result<Tensor> {
        if !data.kind_ok(ty.dtype) || data.len() != ty.numel() {
            bail!(
                "tensor",
                "{} {} elements do not make a {ty} ({} elements)",
                data.len(),
                kind_name(&data),
                ty.numel()
            );
        }
        let mut t = Tensor { ty, data };
        t.normalize(true);
        Ok(t)
    }

    /// An f32 tensor from host values.
    pub fn from_f32(dims: &[usize], values: &[f32]) -> Result<Tensor> {
        Tensor::new(
            TensorType::new(DType::F32, dims),
            Data::Float(values.iter().map(|&x| x as f64).collect()),
        )
    }

    /// An f64 tensor from host values.
    pub fn from_f64(dims: &[usize], values: Vec<f64>) -> Result<Tensor> {
        Tensor::new(TensorType::new(DType::F64, dims), Data::Float(values))
    }

    /// An i32 tensor from host values.
    pub fn from_i32(dims: &[usize], values: &[i32]) -> Result<Tensor> {
        Tensor::new(
            TensorType::new(DType::I32, dims),
            Data::Int(values.iter().map(|&x| x as i64).collect()),
        )
    }

    /// A u64 tensor from host values.
    pub fn from_u64(dims: &[usize], values: Vec<u64>) -> Result<Tensor> {
        Tensor::new(TensorType::new(DType::U64, dims), Data::UInt(values))
    }

    /// Float elements (as f64), if this is a float tensor.
    pub fn floats(&self) -> Option<&[f64]> {
        match &self.data {
            Data::Float(v) => Some(v),
            Data::Int(_) | Data::UInt(_) | Data::Pred(_) => None,
        }
    }

    /// Float elements rounded to f32 (ties to even), if this is a float tensor.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        self.floats().map(|v| v.iter().map(|&x| x as f32).collect())
    }

    /// Signed integer elements, if this is an i32 / i64 tensor.
    pub fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            Data::Int(v) => Some(v),
            Data::Float(_) | Data::UInt(_) | Data::Pred(_) => None,
        }
    }

    /// Unsigned integer elements, if this is a u8 / u32 / u64 tensor.
    pub fn uints(&self) -> Option<&[u64]> {
        match &self.data {
            Data::UInt(v) => Some(v),
            Data::Float(_) | Data::Int(_) | Data::Pred(_) => None,
        }
    }

    /// Predicate elements, if this is an i1 tensor.
    pub fn preds(&self) -> Option<&[bool]> {
        match &self.data {
            Data::Pred(v) => Some(v),
            Data::Float(_) | Data::Int(_) | Data::UInt(_) => None,
        }
    }

    /// Wraps integers to the declared width; with `round_floats`, rounds floats to f32 / bf16.
    pub(crate) fn normalize(&mut self, round_floats: bool) {
        let dt = self.ty.dtype;
        match &mut self.data {
            Data::Float(v) => {
                if round_floats && dt == DType::F32 {
                    for x in v.iter_mut() {
                        *x = *x as f32 as f64;
                    }
                } else if round_floats && dt != DType::F64 {
                    for x in v.iter_mut() {
                        *x = graph::round_to(*x, dt);
                    }
                }
            }
            Data::Int(v) => {
                if dt == DType::I32 {
                    for x in v.iter_mut() {
                        *x = *x as i32 as i64;
                    }
                }
            }
            Data::UInt(v) => {
                let mask = umask(dt);
                for x in v.iter_mut() {
                    *x &= mask;
                }
            }
            Data::Pred(_) => {}
        }
    }
}

fn kind_name(d: &Data) -> &'static str {
    match d {
        Data::Float(_) => "float",
        Data::Int(_) => "signed integer",
        Data::UInt(_) => "unsigned integer",
        Data::Pred(_) => "predicate",
    }
}

/// The all-ones mask of an unsigned type's width.
pub(crate) fn umask(dt: DType) -> u64 {
    match dt {
        DType::U8 => 0xff,
        DType::U32 => 0xffff_ffff,
        DType::U64
        | DType::F32
        | DType::F64
        | DType::BF16
        | DType::I32
        | DType::I64
        | DType::Pred => u64::MAX,
    }
}

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * dims[d + 1];
    }
    s
}

/// For every index of `out_dims` (row-major), the position `offset + Σ_d index[d]·steps[d]` in a source
/// tensor: transpose, broadcast, slice and reverse are all such affine maps.
pub(crate) fn affine_indices(out_dims: &[usize], offset: i64, steps: &[i64]) -> Vec<usize> {
    let n: usize = out_dims.iter().product();
    let mut res = Vec::with_capacity(n);
    if n == 0 {
        return res;
    }
    let r = out_dims.len();
    if r == 0 {
        res.push(offset as usize);
        return res;
    }
    let mut idx = vec![0usize; r];
    let mut base = offset;
    let (last, step) = (out_dims[r - 1], steps[r - 1]);
    loop {
        let mut p = base;
        for _ in 0..last {
            res.push(p as usize);
            p += step;
        }
        // Advance the odometer over all dims but the last.
        let mut d = r - 1;
        loop {
            if d == 0 {
                return res;
            }
            d -= 1;
            idx[d] += 1;
            base += steps[d];
            if idx[d] < out_dims[d] {
                break;
            }
            base -= steps[d] * out_dims[d] as i64;
            idx[d] = 0;
        }
    }
}
