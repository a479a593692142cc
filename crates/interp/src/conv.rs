//! `convolution` (StableHLO spec): with `feature_group_count = batch_group_count = 1`,
//! `result[n, o, p…] = Σ_{c, k…} padded_lhs[n, c, p·stride + k·rhs_dilation] · rhs[o, c, k…]`, where
//! `padded_lhs = pad(lhs, 0, padding_low, padding_high, lhs_dilation − 1)` (negative padding crops), and
//! `n, c, p` / `o, c, k` / `n, o, p` are the roles the dimension numbers give to the tensors' dims.
//! Feature groups split lhs features and rhs output features into G groups, convolved pairwise and
//! concatenated along the output features; batch groups split the lhs batch instead.
//!
//! Evaluation: lhs and rhs are transposed into `[N, C, spatial…]` / `[O, I, spatial…]`; for each result
//! batch element and group the windows are gathered into a `[I·Πk, Πp]` matrix (zeros for padding and
//! dilation holes) and multiplied by the group's `[O/G, I·Πk]` kernel rows ([`matmul`]: sums in f64, in
//! the order (c, k…)); the `[N', O, spatial…]` result is transposed into the output dims.

use graph::{ConvSpec, TensorType};

use crate::dot::matmul;
use crate::error::Result;
use crate::layout::{index_maps, permuted_floats, transpose};
use crate::tensor::{strides, Data, Tensor};

pub(crate) fn convolution(x: &Tensor, w: &Tensor, c: &ConvSpec, threads: usize) -> Result<Tensor> {
    let d = &c.dims;
    let ns = d.input_spatial.len();
    let mut xperm = vec![d.input_batch, d.input_feature];
    xperm.extend(&d.input_spatial);
    let mut wperm = vec![d.kernel_out, d.kernel_in];
    wperm.extend(&d.kernel_spatial);
    let xc = permuted_floats(x, &xperm, "convolution")?;
    let wc = permuted_floats(w, &wperm, "convolution")?;
    let xdims: Vec<usize> = xperm.iter().map(|&i| x.ty.dims[i]).collect();
    let wdims: Vec<usize> = wperm.iter().map(|&i| w.ty.dims[i]).collect();
    let (n, ch) = (xdims[0], xdims[1]);
    let (o, i) = (wdims[0], wdims[1]);
    let (fg, bg) = (c.feature_group_count, c.batch_group_count);
    let groups = fg * bg;
    let n_out = n / bg;
    let og = o / groups;
    let sp_in = &xdims[2..];
    let sp_k = &wdims[2..];
    let in_strides = strides(sp_in);

    // Per spatial dim and kernel tap: for each result position, the lhs offset it reads, or None.
    let mut sp_out = Vec::with_capacity(ns);
    let mut tables: Vec<Vec<Vec<Option<usize>>>> = Vec::with_capacity(ns);
    for s in 0..ns {
        let (len, k) = (sp_in[s] as i64, sp_k[s] as i64);
        let (ld, rd, st) = (
            c.lhs_dilation[s] as i64,
            c.rhs_dilation[s] as i64,
            c.strides[s] as i64,
        );
        let (lo, hi) = c.padding[s];
        let nd = if len == 0 { 0 } else { (len - 1) * ld + 1 };
        let ke = if k == 0 { 0 } else { (k - 1) * rd + 1 };
        let np = nd + lo + hi;
        let m = if np < ke || k == 0 {
            0
        } else {
            (np - ke) / st + 1
        };
        sp_out.push(m as usize);
        tables.push(
            (0..k)
                .map(|kk| {
                    (0..m)
                        .map(|p| {
                            let q = p * st + kk * rd - lo;
                            (q >= 0 && q % ld == 0 && q / ld < len)
                                .then(|| (q / ld) as usize * in_strides[s])
                        })
                        .collect()
                })
                .collect(),
        );
    }
    let taps: usize = sp_k.iter().product();
    let positions: usize = sp_out.iter().product();
    // Per kernel tap (row-major over the kernel's spatial dims), the lhs offsets of every result position.
    let tap_maps: Vec<Vec<Option<usize>>> = (0..taps)
        .map(|t| {
            let mut rem = t;
            let mut kk = vec![0; ns];
            for s in (0..ns).rev() {
                kk[s] = rem % sp_k[s];
                rem /= sp_k[s];
            }
            let maps: Vec<Vec<Option<usize>>> = (0..ns).map(|s| tables[s][kk[s]].clone()).collect();
            index_maps(&sp_out, &maps)
        })
        .collect();

    let plane: usize = sp_in.iter().product();
    let rows = i * taps;
    let mut out = vec![0.0; n_out * o * positions];
    let mut cols = vec![0.0; rows * positions];
    let mut res = vec![0.0; og * positions];
    for b in 0..n_out {
        for g in 0..groups {
            let nb = if bg > 1 { b + g * n_out } else { b };
            let cb = if fg > 1 { g * i } else { 0 };
            for ci in 0..i {
                let base = (nb * ch + cb + ci) * plane;
                for (t, map) in tap_maps.iter().enumerate() {
                    let row =
                        &mut cols[(ci * taps + t) * positions..(ci * taps + t + 1) * positions];
                    for (dst, off) in row.iter_mut().zip(map) {
                        *dst = off.map(|off| xc[base + off]).unwrap_or(0.0);
                    }
                }
            }
            let wg = &wc[g * og * rows..(g + 1) * og * rows];
            res.iter_mut().for_each(|v| *v = 0.0);
            matmul(wg, &cols, &mut res, og, rows, positions, threads);
            let dst = (b * o + g * og) * positions;
            out[dst..dst + og * positions].copy_from_slice(&res);
        }
    }
    let mut canon_dims = vec![n_out, o];
    canon_dims.extend(&sp_out);
    let canon = Tensor {
        ty: TensorType::new(x.ty.dtype.accumulation(), &canon_dims),
        data: Data::Float(out),
    };
    // Result dim output_batch is canonical dim 0, output_feature 1, output_spatial[s] 2 + s.
    let mut perm = vec![0; ns + 2];
    perm[d.output_batch] = 0;
    perm[d.output_feature] = 1;
    for (s, &od) in d.output_spatial.iter().enumerate() {
        perm[od] = 2 + s;
    }
    Ok(transpose(&canon, &perm))
}
