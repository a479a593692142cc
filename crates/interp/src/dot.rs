//! `dot_general` (StableHLO spec): `result[b…, i…, j…] = Σ_k lhs[b…, i…, k…] · rhs[b…, k…, j…]` with the
//! batch, contracting and free dims named by the dimension numbers; result dims are batch, lhs free,
//! rhs free (free dims in increasing order). Both operands are brought into `[B, M, K]` / `[B, K, N]`
//! (a transpose each) and multiplied by [`matmul`], which sums over `k` in increasing order in f64.

use graph::{DotDims, TensorType};

use crate::error::Result;
use crate::layout::permuted_floats;
use crate::tensor::{Data, Tensor};

fn free(rank: usize, batch: &[usize], contract: &[usize]) -> Vec<usize> {
    (0..rank)
        .filter(|d| !batch.contains(d) && !contract.contains(d))
        .collect()
}

pub(crate) fn dot_general(l: &Tensor, r: &Tensor, d: &DotDims, threads: usize) -> Result<Tensor> {
    let (ld, rd) = (&l.ty.dims, &r.ty.dims);
    let lf = free(ld.len(), &d.lhs_batch, &d.lhs_contract);
    let rf = free(rd.len(), &d.rhs_batch, &d.rhs_contract);
    let size = |dims: &[usize], of: &[usize]| -> usize { of.iter().map(|&i| dims[i]).product() };
    let b = size(ld, &d.lhs_batch);
    let m = size(ld, &lf);
    let k = size(ld, &d.lhs_contract);
    let n = size(rd, &rf);
    let lperm: Vec<usize> = d
        .lhs_batch
        .iter()
        .chain(&lf)
        .chain(&d.lhs_contract)
        .copied()
        .collect();
    let rperm: Vec<usize> = d
        .rhs_batch
        .iter()
        .chain(&d.rhs_contract)
        .chain(&rf)
        .copied()
        .collect();
    let a = permuted_floats(l, &lperm, "dot_general")?;
    let bm = permuted_floats(r, &rperm, "dot_general")?;
    let mut c = vec![0.0; b * m * n];
    for bi in 0..b {
        matmul(
            &a[bi * m * k..(bi + 1) * m * k],
            &bm[bi * k * n..(bi + 1) * k * n],
            &mut c[bi * m * n..(bi + 1) * m * n],
            m,
            k,
            n,
            threads,
        );
    }
    let mut out: Vec<usize> = d.lhs_batch.iter().map(|&i| ld[i]).collect();
    out.extend(lf.iter().map(|&i| ld[i]));
    out.extend(rf.iter().map(|&i| rd[i]));
    Ok(Tensor {
        ty: TensorType::new(l.ty.dtype.accumulation(), &out),
        data: Data::Float(c),
    })
}

/// `c[m×n] = a[m×k] · b[k×n]` (row-major), every `c[i][j]` summed over `k` in increasing order.
/// Wide results use the i-k-j order (a row of `b` scaled into a row of `c`, contiguous and vectorisable);
/// narrow ones (n < 16) take dot products against a transposed copy of `b`. Rows are split across
/// `threads` scoped threads when the product is large.
pub(crate) fn matmul(
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let work = m * k * n;
    let threads = if work < (1 << 22) {
        1
    } else {
        threads.clamp(1, m)
    };
    let bt: Option<Vec<f64>> = (n < 16).then(|| {
        let mut t = vec![0.0; n * k];
        for kk in 0..k {
            for j in 0..n {
                t[j * k + kk] = b[kk * n + j];
            }
        }
        t
    });
    let rows_per = m.div_ceil(threads);
    let run = |a_rows: &[f64], c_rows: &mut [f64]| match &bt {
        Some(bt) => rows_dot(a_rows, bt, c_rows, k, n),
        None => rows_ikj(a_rows, b, c_rows, k, n),
    };
    if threads == 1 {
        run(a, c);
        return;
    }
    std::thread::scope(|s| {
        for (a_rows, c_rows) in a.chunks(rows_per * k).zip(c.chunks_mut(rows_per * n)) {
            s.spawn(|| run(a_rows, c_rows));
        }
    });
}

/// i-k-j: for each block of 4 rows, every row `k` of `b` is read once and added into 4 rows of `c`.
fn rows_ikj(a: &[f64], b: &[f64], c: &mut [f64], k: usize, n: usize) {
    let m = c.len() / n;
    for i0 in (0..m).step_by(4) {
        let rows = (m - i0).min(4);
        let block = &mut c[i0 * n..(i0 + rows) * n];
        for kk in 0..k {
            let brow = &b[kk * n..(kk + 1) * n];
            for r in 0..rows {
                let aik = a[(i0 + r) * k + kk];
                let crow = &mut block[r * n..(r + 1) * n];
                for (cj, &bj) in crow.iter_mut().zip(brow) {
                    *cj += aik * bj;
                }
            }
        }
    }
}

/// Dot products of rows of `a` with rows of `bt` (= bᵀ), summed in increasing `k`.
fn rows_dot(a: &[f64], bt: &[f64], c: &mut [f64], k: usize, n: usize) {
    let m = c.len() / n;
    for i in 0..m {
        let arow = &a[i * k..(i + 1) * k];
        for j in 0..n {
            let brow = &bt[j * k..(j + 1) * k];
            let mut s = 0.0;
            for (x, y) in arow.iter().zip(brow) {
                s += x * y;
            }
            c[i * n + j] = s;
        }
    }
}
