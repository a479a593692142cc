//! Elementwise primitives (StableHLO spec: `negate` … `expm1`, `add` … `xor`, `compare`, `select`,
//! `convert`). Floats are computed in f64 (the caller rounds results in f32 mode); integers wrap to their
//! width as XLA's do (two's complement).

use graph::{BinaryOp, CmpDir, DType, TensorType, UnaryOp};

use crate::error::{bail, Result};
use crate::tensor::{umask, Data, Tensor};

/// `unary(op, x)`: the spec's per-element definition of each op.
pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let ty = x.ty.clone();
    let data = match &x.data {
        Data::Float(v) => Data::Float(
            v.iter()
                .map(|&a| unary_float(op, a))
                .collect::<Result<_>>()?,
        ),
        Data::Int(v) => Data::Int(v.iter().map(|&a| unary_int(op, a)).collect::<Result<_>>()?),
        Data::UInt(v) => {
            let m = umask(ty.dtype);
            Data::UInt(
                v.iter()
                    .map(|&a| unary_uint(op, a, m))
                    .collect::<Result<_>>()?,
            )
        }
        Data::Pred(v) => match op {
            UnaryOp::Not => Data::Pred(v.iter().map(|&a| !a).collect()),
            other => bail!(other.mlir(), "not defined on i1"),
        },
    };
    Ok(Tensor { ty, data })
}

/// `sign`: −1, 0 or 1 (±0 and NaN are returned as they are).
fn sign_f(a: f64) -> f64 {
    if a > 0.0 {
        1.0
    } else if a < 0.0 {
        -1.0
    } else {
        a
    }
}

fn unary_float(op: UnaryOp, a: f64) -> Result<f64> {
    Ok(match op {
        UnaryOp::Neg => -a,
        UnaryOp::Exp => a.exp(),
        UnaryOp::Log => a.ln(),
        UnaryOp::Sqrt => a.sqrt(),
        UnaryOp::Rsqrt => 1.0 / a.sqrt(),
        UnaryOp::Tanh => a.tanh(),
        UnaryOp::Logistic => 1.0 / (1.0 + (-a).exp()),
        UnaryOp::Abs => a.abs(),
        UnaryOp::Sign => sign_f(a),
        UnaryOp::Floor => a.floor(),
        UnaryOp::Ceil => a.ceil(),
        UnaryOp::RoundEven => a.round_ties_even(),
        UnaryOp::Cos => a.cos(),
        UnaryOp::Sin => a.sin(),
        UnaryOp::Log1p => a.ln_1p(),
        UnaryOp::Expm1 => a.exp_m1(),
        // musl's erf (the `libm` crate): correctly rounded to within 1 ulp in f64.
        UnaryOp::Erf => libm::erf(a),
        UnaryOp::Not => bail!("not", "not defined on floats"),
    })
}

fn unary_int(op: UnaryOp, a: i64) -> Result<i64> {
    Ok(match op {
        UnaryOp::Neg => a.wrapping_neg(),
        UnaryOp::Abs => a.wrapping_abs(),
        UnaryOp::Sign => a.signum(),
        UnaryOp::Not => !a,
        UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Sqrt
        | UnaryOp::Rsqrt
        | UnaryOp::Tanh
        | UnaryOp::Logistic
        | UnaryOp::Floor
        | UnaryOp::Ceil
        | UnaryOp::RoundEven
        | UnaryOp::Cos
        | UnaryOp::Sin
        | UnaryOp::Log1p
        | UnaryOp::Expm1
        | UnaryOp::Erf => bail!(op.mlir(), "not defined on integers"),
    })
}

fn unary_uint(op: UnaryOp, a: u64, mask: u64) -> Result<u64> {
    match op {
        UnaryOp::Not => Ok(!a & mask),
        other => bail!(other.mlir(), "not defined on unsigned integers"),
    }
}

/// `binary(op, a, b)` on two tensors of one type.
pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let ty = a.ty.clone();
    let data = match (&a.data, &b.data) {
        (Data::Float(x), Data::Float(y)) => Data::Float(binary_floats(op, x, y)?),
        (Data::Int(x), Data::Int(y)) => Data::Int(zip(x, y, |p, q| binary_int(op, p, q))?),
        (Data::UInt(x), Data::UInt(y)) => {
            let m = umask(ty.dtype);
            Data::UInt(zip(x, y, |p, q| binary_uint(op, p, q, m))?)
        }
        (Data::Pred(x), Data::Pred(y)) => Data::Pred(zip(x, y, |p, q| binary_pred(op, p, q))?),
        _ => bail!(op.mlir(), "operands of different element kinds"),
    };
    let mut t = Tensor { ty, data };
    t.normalize(false);
    Ok(t)
}

fn zip<T: Copy, U>(x: &[T], y: &[T], f: impl Fn(T, T) -> Result<U>) -> Result<Vec<U>> {
    x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect()
}

/// `maximum` / `minimum` propagate NaN (as XLA does).
pub(crate) fn max_f(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a >= b {
        a
    } else {
        b
    }
}

pub(crate) fn min_f(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a <= b {
        a
    } else {
        b
    }
}

/// The float ops with the op chosen once per tensor (a loop per op, so the common ones vectorise).
fn binary_floats(op: BinaryOp, x: &[f64], y: &[f64]) -> Result<Vec<f64>> {
    fn each(x: &[f64], y: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
        x.iter().zip(y).map(|(&a, &b)| f(a, b)).collect()
    }
    Ok(match op {
        BinaryOp::Add => each(x, y, |a, b| a + b),
        BinaryOp::Sub => each(x, y, |a, b| a - b),
        BinaryOp::Mul => each(x, y, |a, b| a * b),
        BinaryOp::Div => each(x, y, |a, b| a / b),
        BinaryOp::Max
        | BinaryOp::Min
        | BinaryOp::Pow
        | BinaryOp::And
        | BinaryOp::Or
        | BinaryOp::Xor => zip(x, y, |a, b| binary_float(op, a, b))?,
    })
}

fn binary_float(op: BinaryOp, a: f64, b: f64) -> Result<f64> {
    Ok(match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => max_f(a, b),
        BinaryOp::Min => min_f(a, b),
        BinaryOp::Pow => a.powf(b),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
            bail!(op.mlir(), "not defined on floats")
        }
    })
}

/// Integer division as XLA defines it: truncating; x / 0 = −1; MIN / −1 = MIN.
fn binary_int(op: BinaryOp, a: i64, b: i64) -> Result<i64> {
    Ok(match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div => match b {
            0 => -1,
            _ => a.wrapping_div(b),
        },
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::And => a & b,
        BinaryOp::Or => a | b,
        BinaryOp::Xor => a ^ b,
        BinaryOp::Pow => bail!("power", "not defined on integers here"),
    })
}

/// Unsigned division: x / 0 = all ones (XLA).
fn binary_uint(op: BinaryOp, a: u64, b: u64, mask: u64) -> Result<u64> {
    Ok(match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div => a.checked_div(b).unwrap_or(mask),
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::And => a & b,
        BinaryOp::Or => a | b,
        BinaryOp::Xor => a ^ b,
        BinaryOp::Pow => bail!("power", "not defined on integers here"),
    })
}

fn binary_pred(op: BinaryOp, a: bool, b: bool) -> Result<bool> {
    Ok(match op {
        BinaryOp::And => a & b,
        BinaryOp::Or => a | b,
        BinaryOp::Xor => a ^ b,
        BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Max
        | BinaryOp::Min
        | BinaryOp::Pow => bail!(op.mlir(), "not defined on i1"),
    })
}

/// `compare(a, b, dir)`: IEEE comparisons for floats (NaN compares unequal), numeric for integers,
/// `false < true` for predicates.
pub(crate) fn compare(dir: CmpDir, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    fn cmp<T: PartialOrd + Copy>(dir: CmpDir, x: &[T], y: &[T]) -> Vec<bool> {
        x.iter()
            .zip(y)
            .map(|(p, q)| match dir {
                CmpDir::Eq => p == q,
                CmpDir::Ne => p != q,
                CmpDir::Lt => p < q,
                CmpDir::Le => p <= q,
                CmpDir::Gt => p > q,
                CmpDir::Ge => p >= q,
            })
            .collect()
    }
    let v = match (&a.data, &b.data) {
        (Data::Float(x), Data::Float(y)) => cmp(dir, x, y),
        (Data::Int(x), Data::Int(y)) => cmp(dir, x, y),
        (Data::UInt(x), Data::UInt(y)) => cmp(dir, x, y),
        (Data::Pred(x), Data::Pred(y)) => cmp(dir, x, y),
        _ => bail!("compare", "operands of different element kinds"),
    };
    Ok(Tensor {
        ty: a.ty.with_dtype(DType::Pred),
        data: Data::Pred(v),
    })
}

/// `select(pred, on_true, on_false)`; a scalar predicate picks a whole operand.
pub(crate) fn select(p: &Tensor, t: &Tensor, f: &Tensor) -> Result<Tensor> {
    let Some(pv) = p.preds() else {
        bail!("select", "predicate is not i1")
    };
    if pv.len() == 1 && t.ty.numel() != 1 {
        return Ok(if pv[0] { t.clone() } else { f.clone() });
    }
    fn pick<T: Copy>(pv: &[bool], x: &[T], y: &[T]) -> Vec<T> {
        pv.iter()
            .zip(x.iter().zip(y))
            .map(|(&c, (&a, &b))| if c { a } else { b })
            .collect()
    }
    let data = match (&t.data, &f.data) {
        (Data::Float(x), Data::Float(y)) => Data::Float(pick(pv, x, y)),
        (Data::Int(x), Data::Int(y)) => Data::Int(pick(pv, x, y)),
        (Data::UInt(x), Data::UInt(y)) => Data::UInt(pick(pv, x, y)),
        (Data::Pred(x), Data::Pred(y)) => Data::Pred(pick(pv, x, y)),
        _ => bail!("select", "branches of different element kinds"),
    };
    Ok(Tensor {
        ty: t.ty.clone(),
        data,
    })
}

/// `convert` to `to`: bool → 0/1; any → bool is `≠ 0`; float → integer truncates toward zero and
/// saturates (NaN → 0), as XLA:CPU does; integer → integer wraps (two's complement); → float is exact in
/// f64 (rounded by the caller in f32 mode).
pub(crate) fn convert(x: &Tensor, to: DType) -> Result<Tensor> {
    let ty = TensorType {
        dtype: to,
        dims: x.ty.dims.clone(),
    };
    // Every source as exact i128 (integers, predicates) or f64 (floats).
    let data = match (&x.data, to) {
        (Data::Float(v), t) if t.is_float() => Data::Float(v.clone()),
        (Data::Float(v), DType::Pred) => Data::Pred(v.iter().map(|&a| a != 0.0).collect()),
        (Data::Float(v), t) if t.is_signed_int() => {
            let (lo, hi) = int_range(t);
            Data::Int(
                v.iter()
                    .map(|&a| sat(a, lo as f64, hi as f64) as i64)
                    .collect(),
            )
        }
        (Data::Float(v), t) => {
            let hi = umask(t);
            Data::UInt(v.iter().map(|&a| sat(a, 0.0, hi as f64) as u64).collect())
        }
        (d, t) => {
            let wide: Vec<i128> = match d {
                Data::Int(v) => v.iter().map(|&a| a as i128).collect(),
                Data::UInt(v) => v.iter().map(|&a| a as i128).collect(),
                Data::Pred(v) => v.iter().map(|&a| a as i128).collect(),
                Data::Float(_) => bail!("convert", "internal: float source"),
            };
            match t {
                DType::F32 | DType::F64 | DType::BF16 => {
                    Data::Float(wide.iter().map(|&a| a as f64).collect())
                }
                DType::Pred => Data::Pred(wide.iter().map(|&a| a != 0).collect()),
                DType::I32 | DType::I64 => Data::Int(wide.iter().map(|&a| a as i64).collect()),
                DType::U8 | DType::U32 | DType::U64 => {
                    Data::UInt(wide.iter().map(|&a| a as u64).collect())
                }
            }
        }
    };
    let mut t = Tensor { ty, data };
    t.normalize(false);
    Ok(t)
}

fn int_range(t: DType) -> (i64, i64) {
    match t {
        DType::I32 => (i32::MIN as i64, i32::MAX as i64),
        DType::I64
        | DType::F32
        | DType::F64
        | DType::BF16
        | DType::U8
        | DType::U32
        | DType::U64
        | DType::Pred => (i64::MIN, i64::MAX),
    }
}

/// Truncation toward zero clamped to [lo, hi]; NaN → 0.
fn sat(a: f64, lo: f64, hi: f64) -> f64 {
    if a.is_nan() {
        0.0
    } else {
        a.trunc().clamp(lo, hi)
    }
}
