//! One Adam (or AdamW) update of one f32 parameter computed by a registered kernel, in place, instead
//! of by the compiler's fusions: printed as `stablehlo.custom_call @netspec_adam` with its three results
//! aliased to the parameter and moment operands (`output_operand_aliases`), so the update reads
//! `w, m, v, g` once and writes `w, m, v` once, where XLA:CPU's three loop fusions (one per result)
//! read the gradient twice and the new moments again (`crates/pjrt/src/onednn.rs` has the handler).
//!
//! [`AdamCall::expand`] is the update's one definition, as elementary ops: the train step builds it
//! directly when no handler is registered, and every other target (IREE, the interpreter) evaluates the
//! call through it. The kernel follows it operation by operation in f32 (the tests compare both).
//!
//! Operands `(w, m, v, g, lr, r1, r2)`: the parameter, its two moments and its gradient (all of one f32
//! type; for plain Adam the gradient already carries the coupled weight decay), the learning rate and
//! the reciprocals of the bias corrections, `rᵢ = 1/(1 − βᵢᵗ)` (f32 scalars, computed once per step by
//! the caller, so each element costs one division). Results `(w', m', v')`:
//! `m' = β₁m + (1−β₁)g`, `v' = β₂v + (1−β₂)g²`, `u = m'·r1 / (√(v'·r2) + ε) + λw`, `w' = w − lr·u`
//! with `λ` the decoupled decay (0 for none). An optimizer update is never differentiated: its VJP rule
//! is an error.
//!
//! With [`AdamCall::product`], the gradient comes as the two factors of a matrix product instead,
//! `g = op(a)·op(b)` (a dense layer's weight gradient `xᵀ·δ`, a [`MatMulCall`]'s operands): operands
//! `(w, m, v, a, b, lr, r1, r2)`. The kernel then computes the gradient a tile of rows at a time into a
//! scratch buffer its core's cache holds and updates those rows at once, so the gradient is never
//! written to memory nor read back.

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::{MatMulCall, OpText, Prim};
use crate::types::{DType, TensorType};

/// The constants of one Adam update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamCall {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled (AdamW) weight decay `λ` on this parameter; 0 for none.
    pub decay: f64,
    /// The gradient as a product of the operands `a, b` in its place (module doc); `None`: the
    /// gradient itself.
    pub product: Option<MatMulCall>,
}

impl AdamCall {
    /// The custom call's target name (the handler the runtime registers under it).
    pub const TARGET: &'static str = "netspec_adam";

    /// Operands the call takes: 7, or 8 with a [`AdamCall::product`].
    pub fn arity(self) -> usize {
        if self.product.is_some() {
            8
        } else {
            7
        }
    }

    /// The update as elementary ops (module doc), from the call's operands: `[w', m', v']`.
    pub fn expand(self, g: &mut Graph, ins: &[Value]) -> Result<[Value; 3]> {
        if ins.len() != self.arity() {
            bail!(
                AdamCall::TARGET,
                "expects {} operands, got {}",
                self.arity(),
                ins.len()
            );
        }
        let (w, m, v) = (ins[0], ins[1], ins[2]);
        let (gr, [lr, r1, r2]) = match self.product {
            Some(p) => (
                g.dot_general(ins[3], ins[4], &p.dot_dims())?,
                [ins[5], ins[6], ins[7]],
            ),
            None => (ins[3], [ins[4], ins[5], ins[6]]),
        };
        let (b1, b2) = (self.beta1 as f64, self.beta2 as f64);
        let bcast = |g: &mut Graph, s: Value, like: Value| -> Result<Value> {
            let d = g.dims(like).to_vec();
            g.broadcast_in_dim(s, &d, &[])
        };
        let m = g.scale(m, b1)?;
        let gm = g.scale(gr, 1.0 - b1)?;
        let m = g.add(m, gm)?;
        let v = g.scale(v, b2)?;
        let g2 = g.mul(gr, gr)?;
        let g2 = g.scale(g2, 1.0 - b2)?;
        let v = g.add(v, g2)?;
        let r1 = bcast(g, r1, m)?;
        let r2 = bcast(g, r2, v)?;
        let mh = g.mul(m, r1)?;
        let vh = g.mul(v, r2)?;
        let den = g.sqrt(vh)?;
        let e = g.full_like(self.eps as f64, den)?;
        let den = g.add(den, e)?;
        let mut u = g.div(mh, den)?;
        if self.decay != 0.0 {
            let d = g.scale(w, self.decay)?;
            u = g.add(u, d)?;
        }
        let l = bcast(g, lr, w)?;
        let s = g.mul(l, u)?;
        let w = g.sub(w, s)?;
        Ok([w, m, v])
    }
}

impl Graph {
    /// Appends one Adam update as an [`AdamCall`] (operands as [`AdamCall::expand`]'s): `[w', m', v']`.
    pub fn adam_call(&mut self, call: AdamCall, ins: &[Value]) -> Result<[Value; 3]> {
        let r = self.push(Prim::AdamCall(call), ins.to_vec())?;
        Ok([r[0], r[1], r[2]])
    }
}

pub(crate) fn shape_adam_call(ins: &[&TensorType], c: AdamCall) -> Result<Vec<TensorType>> {
    let scalars = |s: &[&TensorType]| s.iter().all(|t| t.dtype == DType::F32 && t.dims.is_empty());
    let ok = ins.len() == c.arity()
        && ins[0].dtype == DType::F32
        && ins[1..3].iter().all(|t| *t == ins[0])
        && match c.product {
            None => *ins[3] == *ins[0] && scalars(&ins[4..]),
            Some(p) => {
                let (a, b) = (ins[3], ins[4]);
                a.dtype == DType::F32
                    && b.dtype == DType::F32
                    && p.mkn(&a.dims, &b.dims)
                        .is_some_and(|(m, _, n)| ins[0].dims == [m, n])
                    && scalars(&ins[5..])
            }
        };
    if !ok {
        let tys: Vec<String> = ins.iter().map(|t| t.to_string()).collect();
        let grad = match c.product {
            None => "(w, m, v, g) of one f32 type".to_string(),
            Some(p) => format!(
                "(w, m, v) of one f32 matrix type, two f32 matrices a, b with op(a)·op(b) of w's shape (transposed: {}, {})",
                p.trans_a, p.trans_b
            ),
        };
        bail!(
            AdamCall::TARGET,
            "expects {grad} and three f32 scalars (lr, r1, r2), got ({})",
            tys.join(", ")
        );
    }
    Ok(vec![ins[0].clone(); 3])
}

/// `stablehlo.custom_call @netspec_adam(w, m, v, g, lr, r1, r2)` (or `(w, m, v, a, b, lr, r1, r2)`
/// with the product's flags as attributes), results aliased to operands 0–2.
pub(crate) fn print_adam_call(c: AdamCall, t: &OpText) -> String {
    let alias = |i: usize| {
        format!(
            "#stablehlo.output_operand_alias<output_tuple_indices = [{i}], operand_index = {i}, operand_tuple_indices = []>"
        )
    };
    let flags = match c.product {
        Some(p) => format!(
            ", trans_a = {} : i64, trans_b = {} : i64",
            i64::from(p.trans_a),
            i64::from(p.trans_b)
        ),
        None => String::new(),
    };
    format!(
        "{} = stablehlo.custom_call @{}({}) {{api_version = 4 : i32, backend_config = {{beta1 = {:.8e} : f32, beta2 = {:.8e} : f32, decay = {:.8e} : f32, eps = {:.8e} : f32{flags}}}, output_operand_aliases = [{}, {}, {}]}} : {}",
        t.res,
        AdamCall::TARGET,
        t.args.join(", "),
        c.beta1,
        c.beta2,
        c.decay as f32,
        c.eps,
        alias(0),
        alias(1),
        alias(2),
        t.fn_type()
    )
}

pub(crate) fn vjp_adam_call() -> Result<Vec<Option<Value>>> {
    bail!(
        AdamCall::TARGET,
        "an optimizer update is not differentiated (no cotangent may reach it)"
    )
}
