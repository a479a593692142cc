//! Data movement (StableHLO spec: `iota`, `broadcast_in_dim`, `reshape`, `transpose`, `slice`, `pad`,
//! `concatenate`, `reverse`) and constants. Transpose, broadcast, slice and reverse are affine index
//! maps ([`affine_indices`]); pad maps each result element to an operand element or the padding value.

use graph::{Literal, TensorType};

use crate::error::{bail, Result};
use crate::tensor::{affine_indices, strides, Data, Tensor};

/// `constant`: a splat literal fills the tensor; a dense one is its elements in row-major order.
pub(crate) fn constant(ty: &TensorType, lit: &Literal) -> Result<Tensor> {
    let n = ty.numel();
    let fill = |len: usize| if len == 1 { n } else { 1 };
    let data = match lit {
        Literal::Float(v) => Data::Float(splat(v, fill(v.len()))),
        Literal::Int(v) => Data::Int(splat(v, fill(v.len()))),
        Literal::UInt(v) => Data::UInt(splat(v, fill(v.len()))),
        Literal::Bool(v) => Data::Pred(splat(v, fill(v.len()))),
    };
    Tensor::new(ty.clone(), data)
}

fn splat<T: Copy>(v: &[T], times: usize) -> Vec<T> {
    if times == 1 {
        v.to_vec()
    } else {
        vec![v[0]; times]
    }
}

/// `iota`: each element is its index along `dim`.
pub(crate) fn iota(ty: &TensorType, dim: usize) -> Result<Tensor> {
    let s = strides(&ty.dims);
    let size = ty.dims.get(dim).copied().unwrap_or(1);
    let idx: Vec<u64> = (0..ty.numel())
        .map(|i| ((i / s[dim]) % size) as u64)
        .collect();
    let data = if ty.dtype.is_float() {
        Data::Float(idx.iter().map(|&i| i as f64).collect())
    } else if ty.dtype.is_signed_int() {
        Data::Int(idx.iter().map(|&i| i as i64).collect())
    } else if ty.dtype.is_unsigned_int() {
        Data::UInt(idx)
    } else {
        bail!("iota", "not defined for {}", ty)
    };
    Tensor::new(ty.clone(), data)
}

/// `broadcast_in_dim`: `result[i] = operand[j]` with `j[d] = i[dims[d]]`, or 0 where the operand dim has
/// size 1.
pub(crate) fn broadcast(x: &Tensor, out: &[usize], dims: &[usize]) -> Tensor {
    let xs = strides(&x.ty.dims);
    let mut steps = vec![0i64; out.len()];
    for (i, &d) in dims.iter().enumerate() {
        if x.ty.dims[i] != 1 {
            steps[d] = xs[i] as i64;
        }
    }
    with(x, out, x.data.gather(&affine_indices(out, 0, &steps)))
}

/// `reshape`: the same elements in row-major order.
pub(crate) fn reshape(x: &Tensor, out: &[usize]) -> Tensor {
    with(x, out, x.data.clone())
}

/// `transpose`: `result[i] = operand[j]` with `j[perm[d]] = i[d]`.
pub(crate) fn transpose(x: &Tensor, perm: &[usize]) -> Tensor {
    let xs = strides(&x.ty.dims);
    let out: Vec<usize> = perm.iter().map(|&p| x.ty.dims[p]).collect();
    let steps: Vec<i64> = perm.iter().map(|&p| xs[p] as i64).collect();
    with(x, &out, x.data.gather(&affine_indices(&out, 0, &steps)))
}

/// `slice`: `result[i] = operand[start + i·strides]`.
pub(crate) fn slice(x: &Tensor, start: &[usize], limit: &[usize], stride: &[usize]) -> Tensor {
    let xs = strides(&x.ty.dims);
    let out: Vec<usize> = (0..start.len())
        .map(|d| (limit[d] - start[d]).div_ceil(stride[d]))
        .collect();
    let offset: usize = (0..start.len()).map(|d| start[d] * xs[d]).sum();
    let steps: Vec<i64> = (0..start.len())
        .map(|d| (xs[d] * stride[d]) as i64)
        .collect();
    with(
        x,
        &out,
        x.data.gather(&affine_indices(&out, offset as i64, &steps)),
    )
}

/// `reverse`: `result[i] = operand[j]`, `j[d] = size − 1 − i[d]` for reversed dims.
pub(crate) fn reverse(x: &Tensor, dims: &[usize]) -> Tensor {
    let xs = strides(&x.ty.dims);
    let mut offset = 0i64;
    let steps: Vec<i64> = (0..x.ty.rank())
        .map(|d| {
            if dims.contains(&d) {
                offset += ((x.ty.dims[d].max(1) - 1) * xs[d]) as i64;
                -(xs[d] as i64)
            } else {
                xs[d] as i64
            }
        })
        .collect();
    if x.ty.numel() == 0 {
        return x.clone();
    }
    with(
        x,
        &x.ty.dims,
        x.data.gather(&affine_indices(&x.ty.dims, offset, &steps)),
    )
}

/// `pad`: result position `p` along dim `d` holds operand element `(p − lo)/(interior + 1)` when that
/// division is exact and in range, else the padding value (negative `lo`/`hi` crop).
pub(crate) fn pad(
    x: &Tensor,
    value: &Tensor,
    lo: &[i64],
    hi: &[i64],
    interior: &[usize],
) -> Result<Tensor> {
    let r = x.ty.rank();
    let out: Vec<usize> = (0..r)
        .map(|d| {
            let n = x.ty.dims[d] as i64;
            (lo[d] + hi[d] + n + (n - 1).max(0) * interior[d] as i64).max(0) as usize
        })
        .collect();
    let xs = strides(&x.ty.dims);
    // Per dim and result position: the operand offset, or None for padding.
    let maps: Vec<Vec<Option<usize>>> = (0..r)
        .map(|d| {
            let step = interior[d] as i64 + 1;
            (0..out[d] as i64)
                .map(|p| {
                    let q = p - lo[d];
                    (q >= 0 && q % step == 0 && q / step < x.ty.dims[d] as i64)
                        .then(|| (q / step) as usize * xs[d])
                })
                .collect()
        })
        .collect();
    let idx = index_maps(&out, &maps);
    let data = match (&x.data, &value.data) {
        (Data::Float(v), Data::Float(p)) => Data::Float(fill(v, p[0], &idx)),
        (Data::Int(v), Data::Int(p)) => Data::Int(fill(v, p[0], &idx)),
        (Data::UInt(v), Data::UInt(p)) => Data::UInt(fill(v, p[0], &idx)),
        (Data::Pred(v), Data::Pred(p)) => Data::Pred(fill(v, p[0], &idx)),
        _ => bail!(
            "pad",
            "operand and padding value of different element kinds"
        ),
    };
    Ok(with(x, &out, data))
}

fn fill<T: Copy>(v: &[T], pad: T, idx: &[Option<usize>]) -> Vec<T> {
    idx.iter().map(|i| i.map(|i| v[i]).unwrap_or(pad)).collect()
}

/// For every index of `out` (row-major), the sum of the per-dim offsets `maps[d][i[d]]`, or None if any is
/// None.
pub(crate) fn index_maps(out: &[usize], maps: &[Vec<Option<usize>>]) -> Vec<Option<usize>> {
    let n: usize = out.iter().product();
    let mut res = Vec::with_capacity(n);
    if n == 0 {
        return res;
    }
    let r = out.len();
    let mut idx = vec![0usize; r];
    for _ in 0..n {
        let mut acc = Some(0usize);
        for d in 0..r {
            acc = match (acc, maps[d][idx[d]]) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
        res.push(acc);
        for d in (0..r).rev() {
            idx[d] += 1;
            if idx[d] < out[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    res
}

/// `concatenate` along `dim`.
pub(crate) fn concatenate(xs: &[&Tensor], dim: usize) -> Result<Tensor> {
    let first = xs[0];
    let outer: usize = first.ty.dims[..dim].iter().product();
    let inner: usize = first.ty.dims[dim + 1..].iter().product();
    let mut out = first.ty.dims.clone();
    out[dim] = xs.iter().map(|t| t.ty.dims[dim]).sum();
    let chunks: Vec<usize> = xs.iter().map(|t| t.ty.dims[dim] * inner).collect();
    fn cat<T: Copy>(parts: &[&[T]], chunks: &[usize], outer: usize) -> Vec<T> {
        let mut v = Vec::with_capacity(chunks.iter().sum::<usize>() * outer);
        for o in 0..outer {
            for (p, &c) in parts.iter().zip(chunks) {
                v.extend_from_slice(&p[o * c..(o + 1) * c]);
            }
        }
        v
    }
    macro_rules! parts {
        ($var:ident) => {{
            let mut ps = Vec::new();
            for t in xs {
                match &t.data {
                    Data::$var(v) => ps.push(v.as_slice()),
                    _ => bail!("concatenate", "operands of different element kinds"),
                }
            }
            Data::$var(cat(&ps, &chunks, outer))
        }};
    }
    let data = match &first.data {
        Data::Float(_) => parts!(Float),
        Data::Int(_) => parts!(Int),
        Data::UInt(_) => parts!(UInt),
        Data::Pred(_) => parts!(Pred),
    };
    Ok(with(first, &out, data))
}

/// A tensor of `x`'s element type with new dims and data.
fn with(x: &Tensor, dims: &[usize], data: Data) -> Tensor {
    Tensor {
        ty: TensorType::new(x.ty.dtype, dims),
        data,
    }
}

/// The elements of float tensor `x` transposed by `perm`, as a plain vector: dot and convolution bring
/// their operands into a canonical layout with it. Integer operands are not evaluated (an error).
pub(crate) fn permuted_floats(x: &Tensor, perm: &[usize], op: &str) -> Result<Vec<f64>> {
    match transpose(x, perm).data {
        Data::Float(v) => Ok(v),
        Data::Int(_) | Data::UInt(_) | Data::Pred(_) => bail!(
            op,
            "operand {} is not a float tensor; the interpreter evaluates {op} on floats only",
            x.ty
        ),
    }
}
