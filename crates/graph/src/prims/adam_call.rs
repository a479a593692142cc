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

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::{OpText, Prim};
use crate::types::{DType, TensorType};

/// The constants of one Adam update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamCall {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled (AdamW) weight decay `λ` on this parameter; 0 for none.
    pub decay: f64,
}

impl AdamCall {
    /// The custom call's target name (the handler the runtime registers under it).
    pub const TARGET: &'static str = "netspec_adam";

    /// The update as elementary ops (module doc): `[w', m', v']`.
    pub fn expand(self, g: &mut Graph, ins: [Value; 7]) -> Result<[Value; 3]> {
        let [w, m, v, gr, lr, r1, r2] = ins;
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
    /// Appends one Adam update as an [`AdamCall`]: `[w', m', v']`.
    pub fn adam_call(&mut self, call: AdamCall, ins: [Value; 7]) -> Result<[Value; 3]> {
        let r = self.push(Prim::AdamCall(call), ins.to_vec())?;
        Ok([r[0], r[1], r[2]])
    }
}

pub(crate) fn shape_adam_call(ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    let ok = ins.len() == 7
        && ins[0].dtype == DType::F32
        && ins[1..4].iter().all(|t| *t == ins[0])
        && ins[4..].iter().all(|t| t.dtype == DType::F32 && t.dims.is_empty());
    if !ok {
        let tys: Vec<String> = ins.iter().map(|t| t.to_string()).collect();
        bail!(
            AdamCall::TARGET,
            "expects (w, m, v, g) of one f32 type and three f32 scalars (lr, r1, r2), got ({})",
            tys.join(", ")
        );
    }
    Ok(vec![ins[0].clone(); 3])
}

/// `stablehlo.custom_call @netspec_adam(w, m, v, g, lr, r1, r2)`, results aliased to operands 0–2.
pub(crate) fn print_adam_call(c: AdamCall, t: &OpText) -> String {
    let alias = |i: usize| {
        format!(
            "#stablehlo.output_operand_alias<output_tuple_indices = [{i}], operand_index = {i}, operand_tuple_indices = []>"
        )
    };
    format!(
        "{} = stablehlo.custom_call @{}({}) {{api_version = 4 : i32, backend_config = {{beta1 = {:.8e} : f32, beta2 = {:.8e} : f32, decay = {:.8e} : f32, eps = {:.8e} : f32}}, output_operand_aliases = [{}, {}, {}]}} : {}",
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
