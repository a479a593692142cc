//! Reductions (StableHLO spec: `reduce`, `reduce_window`, `select_and_scatter`). The body of every
//! reduction is `add`, `maximum` or `minimum`, applied in row-major order of the reduced elements,
//! starting from the init value; floats accumulate in f64.

use graph::{ReduceOp, TensorType, Window};

use crate::elementwise::{max_f, min_f};
use crate::error::{bail, Result};
use crate::layout::index_maps;
use crate::tensor::{affine_indices, strides, umask, Data, Tensor};

fn comb_f(op: ReduceOp, a: f64, b: f64) -> f64 {
    match op {
        ReduceOp::Sum => a + b,
        ReduceOp::Max => max_f(a, b),
        ReduceOp::Min => min_f(a, b),
    }
}

fn comb_i(op: ReduceOp, a: i64, b: i64) -> i64 {
    match op {
        ReduceOp::Sum => a.wrapping_add(b),
        ReduceOp::Max => a.max(b),
        ReduceOp::Min => a.min(b),
    }
}

fn comb_u(op: ReduceOp, a: u64, b: u64) -> u64 {
    match op {
        ReduceOp::Sum => a.wrapping_add(b),
        ReduceOp::Max => a.max(b),
        ReduceOp::Min => a.min(b),
    }
}

/// Folds the elements `x[i]` into `acc[to[i]]` in order with `op` (integers wrap to `mask` afterwards).
fn fold_into(
    op: ReduceOp,
    x: &Data,
    init: &Data,
    n_out: usize,
    to: &[(usize, usize)],
    mask: u64,
) -> Result<Data> {
    Ok(match (x, init) {
        (Data::Float(v), Data::Float(i)) => {
            let mut acc = vec![i[0]; n_out];
            for &(src, dst) in to {
                acc[dst] = comb_f(op, acc[dst], v[src]);
            }
            Data::Float(acc)
        }
        (Data::Int(v), Data::Int(i)) => {
            let mut acc = vec![i[0]; n_out];
            for &(src, dst) in to {
                acc[dst] = comb_i(op, acc[dst], v[src]);
            }
            Data::Int(acc)
        }
        (Data::UInt(v), Data::UInt(i)) => {
            let mut acc = vec![i[0]; n_out];
            for &(src, dst) in to {
                acc[dst] = comb_u(op, acc[dst], v[src]) & mask;
            }
            Data::UInt(acc)
        }
        _ => bail!(
            "reduce",
            "operand and init value must be of one numeric kind"
        ),
    })
}

/// `reduce(x, init) across dims`: `result[k] = init ⊕ x[i₀] ⊕ x[i₁] ⊕ …` over the operand indices `i` whose
/// kept dims equal `k`, in row-major order.
pub(crate) fn reduce(op: ReduceOp, x: &Tensor, init: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let xd = &x.ty.dims;
    let kept: Vec<usize> = (0..xd.len()).filter(|d| !dims.contains(d)).collect();
    let out: Vec<usize> = kept.iter().map(|&d| xd[d]).collect();
    let os = strides(&out);
    let mut steps = vec![0i64; xd.len()];
    for (k, &d) in kept.iter().enumerate() {
        steps[d] = os[k] as i64;
    }
    let to: Vec<(usize, usize)> = affine_indices(xd, 0, &steps)
        .into_iter()
        .enumerate()
        .collect();
    let n_out = out.iter().product();
    let mut t = Tensor {
        ty: TensorType::new(x.ty.dtype, &out),
        data: fold_into(op, &x.data, &init.data, n_out, &to, umask(x.ty.dtype))?,
    };
    t.normalize(false);
    Ok(t)
}

/// Per dim, per (result position, window position): the operand offset of the element the window reads,
/// or None where it reads padding or a base-dilation hole (`padded = pad(x, init, lo, hi, base_dil − 1)`,
/// window start `o·stride`, element `start + j·window_dil`).
/// Per dim, per window position, per result position: an operand offset or None.
type Tables = Vec<Vec<Vec<Option<usize>>>>;

#[allow(clippy::needless_range_loop)] // d indexes the operand dims, strides and every window field
fn window_tables(x: &TensorType, w: &Window) -> (Vec<usize>, Tables) {
    let xs = strides(&x.dims);
    let mut out = Vec::new();
    let mut tables = Vec::new();
    for d in 0..x.rank() {
        let n = x.dims[d] as i64;
        let bd = w.base_dilation[d] as i64;
        let nd = if n == 0 { 0 } else { (n - 1) * bd + 1 };
        let ke = (w.dims[d] as i64 - 1) * w.window_dilation[d] as i64 + 1;
        let np = nd + w.padding[d].0 as i64 + w.padding[d].1 as i64;
        let m = if np < ke {
            0
        } else {
            (np - ke) / w.strides[d] as i64 + 1
        };
        out.push(m as usize);
        let table: Vec<Vec<Option<usize>>> = (0..w.dims[d] as i64)
            .map(|j| {
                (0..m)
                    .map(|o| {
                        let q = o * w.strides[d] as i64 + j * w.window_dilation[d] as i64
                            - w.padding[d].0 as i64;
                        (q >= 0 && q % bd == 0 && q / bd < n).then(|| (q / bd) as usize * xs[d])
                    })
                    .collect()
            })
            .collect();
        tables.push(table);
    }
    (out, tables)
}

/// Every window position `j` (row-major over the window) with, for each result index, the operand element
/// it reads (None: padding / hole).
fn window_positions(x: &TensorType, w: &Window) -> (Vec<usize>, Vec<Vec<Option<usize>>>) {
    let (out, tables) = window_tables(x, w);
    let total: usize = w.dims.iter().product();
    let r = w.dims.len();
    let mut res = Vec::with_capacity(total);
    for flat in 0..total {
        let mut rem = flat;
        let mut j = vec![0; r];
        for d in (0..r).rev() {
            j[d] = rem % w.dims[d];
            rem /= w.dims[d];
        }
        let maps: Vec<Vec<Option<usize>>> = (0..r).map(|d| tables[d][j[d]].clone()).collect();
        res.push(index_maps(&out, &maps));
    }
    (out, res)
}

/// `reduce_window(x, init)`: `result[o] = init ⊕ window elements` (padding and holes hold `init`, the
/// body's identity, so they are skipped).
pub(crate) fn reduce_window(op: ReduceOp, x: &Tensor, init: &Tensor, w: &Window) -> Result<Tensor> {
    let (out, positions) = window_positions(&x.ty, w);
    let to: Vec<(usize, usize)> = positions
        .iter()
        .flat_map(|p| p.iter().enumerate().filter_map(|(o, i)| i.map(|i| (i, o))))
        .collect();
    // Combine in row-major window order per result: `to` lists window position by window position, which
    // is that order for every single result.
    let n_out = out.iter().product();
    let mut t = Tensor {
        ty: TensorType::new(x.ty.dtype, &out),
        data: fold_into(op, &x.data, &init.data, n_out, &to, umask(x.ty.dtype))?,
    };
    t.normalize(false);
    Ok(t)
}

/// `select_and_scatter(operand, source, init)` with select `GE` and scatter `add`: each window selects
/// its first element `e` (row-major) such that `e ≥` every later one — the running choice `s` is kept
/// while `s ≥ candidate` — and `source[o]` is added to the result at the selected position; the result
/// starts at `init`. Padding is never selected.
pub(crate) fn select_and_scatter(
    x: &Tensor,
    src: &Tensor,
    init: &Tensor,
    w: &Window,
) -> Result<Tensor> {
    let (Some(xv), Some(sv), Some(iv)) = (x.floats(), src.floats(), init.floats()) else {
        bail!(
            "select_and_scatter",
            "the interpreter evaluates float operands only ({} / {})",
            x.ty,
            src.ty
        )
    };
    let (out, positions) = window_positions(&x.ty, w);
    let n_out: usize = out.iter().product();
    let mut sel: Vec<Option<usize>> = vec![None; n_out];
    for p in &positions {
        for (o, i) in p.iter().enumerate() {
            if let Some(i) = *i {
                sel[o] = match sel[o] {
                    Some(s) if xv[s] >= xv[i] => Some(s),
                    _ => Some(i),
                };
            }
        }
    }
    let mut res = vec![iv[0]; xv.len()];
    for (o, s) in sel.iter().enumerate() {
        if let Some(s) = *s {
            res[s] += sv[o];
        }
    }
    Ok(Tensor {
        ty: x.ty.clone(),
        data: Data::Float(res),
    })
}
