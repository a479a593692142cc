//! `stablehlo.dot_general`. Bilinear: each VJP is again a dot_general (plus a transpose into the operand's
//! dim order when needed).

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::{check_dims, list, OpText, Prim, VjpArgs};
use crate::types::TensorType;

/// Dimension numbers of a dot_general. Result dims: batch dims, then the lhs free dims, then the rhs free
/// dims (free dims in increasing order).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct DotDims {
    pub lhs_batch: Vec<usize>,
    pub rhs_batch: Vec<usize>,
    pub lhs_contract: Vec<usize>,
    pub rhs_contract: Vec<usize>,
}

impl DotDims {
    /// Plain matrix product `[m, k] x [k, n]`.
    pub fn matmul() -> DotDims {
        DotDims {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![1],
            rhs_contract: vec![0],
        }
    }
}

/// Dims of a rank-`rank` operand that are neither batch nor contracting, in increasing order.
fn free_dims(rank: usize, batch: &[usize], contract: &[usize]) -> Vec<usize> {
    (0..rank)
        .filter(|d| !batch.contains(d) && !contract.contains(d))
        .collect()
}

impl Graph {
    /// `stablehlo.dot_general` of `lhs` and `rhs` with dimension numbers `d`, in the operands' type.
    /// bf16 operands accumulate in f32 (the primitive's result type, [`crate::DType::accumulation`]) and the
    /// result is rounded back to bf16 by a `convert`.
    pub fn dot_general(&mut self, lhs: Value, rhs: Value, d: &DotDims) -> Result<Value> {
        let dt = self.dtype(lhs);
        let r = self.push1(Prim::DotGeneral(d.clone()), vec![lhs, rhs])?;
        self.convert(r, dt)
    }

    /// Matrix product: `[m, k] x [k, n] -> [m, n]`, or batched `[b…, m, k] x [b…, k, n] -> [b…, m, n]`.
    pub fn matmul(&mut self, a: Value, b: Value) -> Result<Value> {
        let r = self.ty(a).rank();
        if r < 2 || self.ty(b).rank() != r {
            bail!(
                "matmul",
                "operands {} and {} must both have the same rank >= 2",
                self.ty(a),
                self.ty(b)
            );
        }
        let batch: Vec<usize> = (0..r - 2).collect();
        let d = DotDims {
            lhs_batch: batch.clone(),
            rhs_batch: batch,
            lhs_contract: vec![r - 1],
            rhs_contract: vec![r - 2],
        };
        self.dot_general(a, b, &d)
    }
}

pub(crate) fn shape_dot_general(ins: &[&TensorType], d: &DotDims) -> Result<TensorType> {
    let (l, r) = (ins[0], ins[1]);
    let op = "dot_general";
    if l.dtype != r.dtype {
        bail!(op, "element types differ: lhs {l}, rhs {r}");
    }
    if d.lhs_batch.len() != d.rhs_batch.len() {
        bail!(
            op,
            "batch dims {:?} x {:?} differ in length (dot_general_c1); lhs {l}, rhs {r}",
            d.lhs_batch,
            d.rhs_batch
        );
    }
    if d.lhs_contract.len() != d.rhs_contract.len() {
        bail!(
            op,
            "contracting dims {:?} x {:?} differ in length (dot_general_c2); lhs {l}, rhs {r}",
            d.lhs_contract,
            d.rhs_contract
        );
    }
    let lhs_all: Vec<usize> = d.lhs_batch.iter().chain(&d.lhs_contract).copied().collect();
    let rhs_all: Vec<usize> = d.rhs_batch.iter().chain(&d.rhs_contract).copied().collect();
    check_dims(
        op,
        "lhs batch/contracting dim (dot_general_c3, c5, c6)",
        &lhs_all,
        l.rank(),
    )?;
    check_dims(
        op,
        "rhs batch/contracting dim (dot_general_c4, c7, c8)",
        &rhs_all,
        r.rank(),
    )?;
    for (&a, &b) in d.lhs_batch.iter().zip(&d.rhs_batch) {
        if l.dims[a] != r.dims[b] {
            bail!(
                op,
                "batch dim sizes differ: lhs {l} dim {a} vs rhs {r} dim {b} (dot_general_c9)"
            );
        }
    }
    for (&a, &b) in d.lhs_contract.iter().zip(&d.rhs_contract) {
        if l.dims[a] != r.dims[b] {
            bail!(op, "contracting dim sizes differ: lhs {l} dim {a} vs rhs {r} dim {b} (dot_general_c10)");
        }
    }
    let mut dims: Vec<usize> = d.lhs_batch.iter().map(|&a| l.dims[a]).collect();
    dims.extend(
        free_dims(l.rank(), &d.lhs_batch, &d.lhs_contract)
            .iter()
            .map(|&a| l.dims[a]),
    );
    dims.extend(
        free_dims(r.rank(), &d.rhs_batch, &d.rhs_contract)
            .iter()
            .map(|&a| r.dims[a]),
    );
    Ok(TensorType {
        dtype: l.dtype.accumulation(),
        dims,
    })
}

pub(crate) fn print_dot_general(d: &DotDims, t: &OpText) -> String {
    let batch = if d.lhs_batch.is_empty() {
        String::new()
    } else {
        format!(
            "batching_dims = [{}] x [{}], ",
            list(&d.lhs_batch),
            list(&d.rhs_batch)
        )
    };
    format!(
        "{} = stablehlo.dot_general {}, {}, {}contracting_dims = [{}] x [{}] : {}",
        t.res,
        t.args[0],
        t.args[1],
        batch,
        list(&d.lhs_contract),
        list(&d.rhs_contract),
        t.fn_type()
    )
}

/// Transposes `x`, whose axis `k` is operand dim `axes[k]`, into operand order.
fn to_operand_order(g: &mut Graph, x: Value, axes: &[usize]) -> Result<Value> {
    let perm: Vec<usize> = (0..axes.len())
        .map(|d| axes.iter().position(|&a| a == d).unwrap_or(0))
        .collect();
    g.transpose(x, &perm)
}

/// With ct laid out as [batch, lhs free, rhs free]:
///   ct_lhs = dot_general(ct, rhs) contracting ct's rhs-free block with rhs's free dims, batch with batch;
///            its dims are [batch, lhs free, rhs contracting (in rhs order)] → transpose into lhs order.
///   ct_rhs = dot_general(lhs, ct) contracting lhs's free dims with ct's lhs-free block;
///            its dims are [batch, lhs contracting (in lhs order), rhs free] → transpose into rhs order.
pub(crate) fn vjp_dot_general(
    g: &mut Graph,
    d: &DotDims,
    a: &VjpArgs,
) -> Result<Vec<Option<Value>>> {
    let (lhs, rhs) = (a.inputs[0], a.inputs[1]);
    // The cotangent of an f32-accumulated bf16 product is f32: rounded to the operands' type, the
    // cotangent products accumulate in f32 again and come back in the operands' type.
    let ct = g.convert(a.ct(), g.dtype(lhs))?;
    let (lr, rr) = (g.ty(lhs).rank(), g.ty(rhs).rank());
    let lf = free_dims(lr, &d.lhs_batch, &d.lhs_contract);
    let rf = free_dims(rr, &d.rhs_batch, &d.rhs_contract);
    let nb = d.lhs_batch.len();
    let ct_b: Vec<usize> = (0..nb).collect();
    let ct_lf: Vec<usize> = (nb..nb + lf.len()).collect();
    let ct_rf: Vec<usize> = (nb + lf.len()..nb + lf.len() + rf.len()).collect();

    let dl = if a.needs[0] {
        let dd = DotDims {
            lhs_batch: ct_b.clone(),
            rhs_batch: d.rhs_batch.clone(),
            lhs_contract: ct_rf,
            rhs_contract: rf.clone(),
        };
        let r = g.dot_general(ct, rhs, &dd)?;
        let mut rc_sorted = d.rhs_contract.clone();
        rc_sorted.sort_unstable();
        let mut axes = d.lhs_batch.clone();
        axes.extend(&lf);
        axes.extend(
            rc_sorted
                .iter()
                .map(|r| d.lhs_contract[d.rhs_contract.iter().position(|x| x == r).unwrap_or(0)]),
        );
        Some(to_operand_order(g, r, &axes)?)
    } else {
        None
    };
    let dr = if a.needs[1] {
        let dd = DotDims {
            lhs_batch: d.lhs_batch.clone(),
            rhs_batch: ct_b,
            lhs_contract: lf.clone(),
            rhs_contract: ct_lf,
        };
        let r = g.dot_general(lhs, ct, &dd)?;
        let mut lc_sorted = d.lhs_contract.clone();
        lc_sorted.sort_unstable();
        let mut axes = d.rhs_batch.clone();
        axes.extend(
            lc_sorted
                .iter()
                .map(|l| d.rhs_contract[d.lhs_contract.iter().position(|x| x == l).unwrap_or(0)]),
        );
        axes.extend(&rf);
        Some(to_operand_order(g, r, &axes)?)
    } else {
        None
    };
    Ok(vec![dl, dr])
}
