//! Constant literals and their exact StableHLO spelling.
//!
//! A literal with one element is a *splat* (every element of the tensor has that value); otherwise it holds
//! exactly `numel` elements in row-major order. Float values are stored as `f64` already rounded to the
//! tensor's element type, so printing can round-trip them exactly.

use crate::error::{bail, Result};
use crate::types::{DType, TensorType};

/// The data of a `constant` primitive.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// f32 / f64 / bf16 values (already rounded to the element type).
    Float(Vec<f64>),
    /// i32 / i64 values.
    Int(Vec<i64>),
    /// u8 / u32 / u64 values.
    UInt(Vec<u64>),
    /// pred values.
    Bool(Vec<bool>),
}

impl Literal {
    /// Number of stored elements (1 for a splat).
    pub fn len(&self) -> usize {
        match self {
            Literal::Float(v) => v.len(),
            Literal::Int(v) => v.len(),
            Literal::UInt(v) => v.len(),
            Literal::Bool(v) => v.len(),
        }
    }

    /// True when no element is stored (only valid for zero-sized tensors).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The splat value as `f64`, if this literal is a float splat.
    pub fn splat_f64(&self) -> Option<f64> {
        match self {
            Literal::Float(v) if v.len() == 1 => Some(v[0]),
            Literal::Float(_) | Literal::Int(_) | Literal::UInt(_) | Literal::Bool(_) => None,
        }
    }

    /// A key that identifies the literal bit-exactly (for constant de-duplication; `-0.0 != 0.0`, NaN == NaN).
    pub(crate) fn key(&self) -> Vec<u64> {
        match self {
            Literal::Float(v) => v.iter().map(|x| x.to_bits()).collect(),
            Literal::Int(v) => v.iter().map(|&x| x as u64).collect(),
            Literal::UInt(v) => v.clone(),
            Literal::Bool(v) => v.iter().map(|&x| x as u64).collect(),
        }
    }

    /// A splat literal of `value` for `dtype`: floats are rounded to the type; integers must be exact.
    pub fn splat(value: f64, dtype: DType) -> Result<Literal> {
        Literal::from_f64s(&[value], dtype)
    }

    /// A literal from `f64` values for any element type; float values are rounded to `dtype`,
    /// integer and pred values must be exactly representable.
    pub fn from_f64s(values: &[f64], dtype: DType) -> Result<Literal> {
        let exact_int = |x: f64, lo: f64, hi: f64| -> Result<f64> {
            if x.fract() != 0.0 || !(lo..=hi).contains(&x) {
                bail!("constant", "value {x} is not representable in {dtype}");
            }
            Ok(x)
        };
        Ok(match dtype {
            DType::F32 | DType::F64 | DType::BF16 => {
                Literal::Float(values.iter().map(|&x| round_to(x, dtype)).collect())
            }
            DType::I32 => Literal::Int(
                values
                    .iter()
                    .map(|&x| exact_int(x, i32::MIN as f64, i32::MAX as f64).map(|x| x as i64))
                    .collect::<Result<_>>()?,
            ),
            DType::I64 => Literal::Int(
                values
                    .iter()
                    .map(|&x| {
                        exact_int(x, -9.007199254740992e15, 9.007199254740992e15).map(|x| x as i64)
                    })
                    .collect::<Result<_>>()?,
            ),
            DType::U8 => Literal::UInt(
                values
                    .iter()
                    .map(|&x| exact_int(x, 0.0, 255.0).map(|x| x as u64))
                    .collect::<Result<_>>()?,
            ),
            DType::U32 => Literal::UInt(
                values
                    .iter()
                    .map(|&x| exact_int(x, 0.0, u32::MAX as f64).map(|x| x as u64))
                    .collect::<Result<_>>()?,
            ),
            DType::U64 => Literal::UInt(
                values
                    .iter()
                    .map(|&x| exact_int(x, 0.0, 1.8446744073709552e19).map(|x| x as u64))
                    .collect::<Result<_>>()?,
            ),
            DType::Pred => Literal::Bool(
                values
                    .iter()
                    .map(|&x| exact_int(x, 0.0, 1.0).map(|x| x != 0.0))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// Checks that the literal's variant matches `ty.dtype` and that it has 1 or `numel` elements.
    pub(crate) fn check(&self, ty: &TensorType) -> Result<()> {
        let kind_ok = match self {
            Literal::Float(_) => ty.dtype.is_float(),
            Literal::Int(_) => ty.dtype.is_signed_int(),
            Literal::UInt(_) => ty.dtype.is_unsigned_int(),
            Literal::Bool(_) => ty.dtype == DType::Pred,
        };
        if !kind_ok {
            bail!(
                "constant",
                "literal kind {} does not match type {ty}",
                self.kind()
            );
        }
        if self.len() != 1 && self.len() != ty.numel() {
            bail!(
                "constant",
                "literal has {} elements but type {ty} has {}",
                self.len(),
                ty.numel()
            );
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        match self {
            Literal::Float(_) => "float",
            Literal::Int(_) => "signed integer",
            Literal::UInt(_) => "unsigned integer",
            Literal::Bool(_) => "bool",
        }
    }

    /// The MLIR attribute body for type `ty`: `dense<1.0>` or `dense<[[1.0, 2.0], [3.0, 4.0]]>`.
    pub(crate) fn to_mlir(&self, ty: &TensorType) -> String {
        let elem = |i: usize| -> String {
            match self {
                Literal::Float(v) => fmt_float(v[i], ty.dtype),
                Literal::Int(v) => v[i].to_string(),
                Literal::UInt(v) => v[i].to_string(),
                Literal::Bool(v) => v[i].to_string(),
            }
        };
        if self.len() == 1 {
            return format!("dense<{}>", elem(0));
        }
        let mut s = String::from("dense<");
        nested(&mut s, &ty.dims, 0, &mut 0, &elem);
        s.push('>');
        s
    }
}

/// Writes elements as nested `[…]` lists following `dims` (row-major).
fn nested(
    s: &mut String,
    dims: &[usize],
    depth: usize,
    next: &mut usize,
    elem: &dyn Fn(usize) -> String,
) {
    if depth == dims.len() {
        s.push_str(&elem(*next));
        *next += 1;
        return;
    }
    s.push('[');
    for i in 0..dims[depth] {
        if i > 0 {
            s.push_str(", ");
        }
        nested(s, dims, depth + 1, next, elem);
    }
    s.push(']');
}

/// Rounds `x` to the nearest value of a float `dtype` (ties to even); identity for other types.
pub fn round_to(x: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F64 => x,
        DType::F32 => x as f32 as f64,
        DType::BF16 => round_bf16(x),
        DType::I32 | DType::I64 | DType::U8 | DType::U32 | DType::U64 | DType::Pred => x,
    }
}

/// Round to bfloat16 (8 significant bits, f32 exponent range) directly from f64, avoiding double rounding.
fn round_bf16(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // Exponent of x; bf16 subnormals share the ulp of the smallest normal binade (2^-126 · 2^-7).
    let e = x.abs().log2().floor() as i32;
    let e = e.clamp(-126, 1024);
    let ulp = 2f64.powi(e - 7);
    let r = (x / ulp).round_ties_even() * ulp;
    const BF16_MAX: f64 = 3.3895313892515355e38; // (2 − 2^-7) · 2^127
    if r.abs() > BF16_MAX {
        f64::INFINITY.copysign(x)
    } else {
        r
    }
}

/// Bit pattern of a float value of `dtype`, as MLIR's hexadecimal float literal.
fn hex_bits(x: f64, dtype: DType) -> String {
    match dtype {
        DType::F64 => format!("0x{:016X}", x.to_bits()),
        DType::F32 => format!("0x{:08X}", (x as f32).to_bits()),
        DType::BF16 => format!("0x{:04X}", (x as f32).to_bits() >> 16),
        // Float literals only ever carry float dtypes (checked by `Literal::check`).
        DType::I32 | DType::I64 | DType::U8 | DType::U32 | DType::U64 | DType::Pred => {
            format!("{x}")
        }
    }
}

/// Formats a float so the MLIR parser reads back exactly the same value: the shortest decimal that
/// round-trips (MLIR needs a `.` in the mantissa), or the hexadecimal bit pattern for ±inf, NaN and the
/// rare value whose decimal would double-round.
pub(crate) fn fmt_float(x: f64, dtype: DType) -> String {
    if !x.is_finite() {
        return hex_bits(x, dtype);
    }
    let s = match dtype {
        DType::F32 | DType::BF16 => format!("{:?}", x as f32),
        DType::F64
        | DType::I32
        | DType::I64
        | DType::U8
        | DType::U32
        | DType::U64
        | DType::Pred => format!("{x:?}"),
    };
    // The parser reads the decimal as f64, then rounds to the element type.
    let back = s.parse::<f64>().map(|v| round_to(v, dtype));
    if back.map(|v| v.to_bits() != x.to_bits()).unwrap_or(true) {
        return hex_bits(x, dtype);
    }
    match s.find('e') {
        Some(i) if !s[..i].contains('.') => format!("{}.0{}", &s[..i], &s[i..]),
        Some(_) => s,
        None if s.contains('.') => s,
        None => format!("{s}.0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip() {
        for &x in &[
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-5,
            3.4e38,
            1e-45,
            123456789.0,
            -2.5e-300,
            1e300,
        ] {
            for dt in [DType::F32, DType::F64, DType::BF16] {
                let v = round_to(x, dt);
                let s = fmt_float(v, dt);
                if let Some(hex) = s.strip_prefix("0x") {
                    let bits = u64::from_str_radix(hex, 16).unwrap();
                    let back = match dt {
                        DType::F64 => f64::from_bits(bits),
                        DType::F32 => f32::from_bits(bits as u32) as f64,
                        _ => f32::from_bits((bits as u32) << 16) as f64,
                    };
                    assert_eq!(back.to_bits(), v.to_bits(), "{x} {dt} {s}");
                } else {
                    assert!(s.contains('.'), "{s}");
                    let back = round_to(s.parse::<f64>().unwrap(), dt);
                    assert_eq!(back.to_bits(), v.to_bits(), "{x} {dt} {s}");
                }
            }
        }
        assert_eq!(fmt_float(1e-5, DType::F64), "1.0e-5");
        assert_eq!(fmt_float(f64::NEG_INFINITY, DType::F32), "0xFF800000");
        assert_eq!(fmt_float(f64::NEG_INFINITY, DType::BF16), "0xFF80");
        assert_eq!(round_to(1.0 + 1.0 / 256.0, DType::BF16), 1.0); // tie → even
        assert_eq!(round_to(1.0 + 3.0 / 256.0, DType::BF16), 1.0 + 4.0 / 256.0);
    }

    #[test]
    fn dense_is_nested() {
        let l = Literal::Int(vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            l.to_mlir(&TensorType::new(DType::I32, &[2, 3])),
            "dense<[[1, 2, 3], [4, 5, 6]]>"
        );
    }
}
