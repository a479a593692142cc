//! A matrix product computed by a kernel library instead of the compiler, printed as
//! `stablehlo.custom_call @netspec_matmul` to a handler the runtime registers (oneDNN's sgemm on
//! XLA:CPU's own thread pool, `crates/pjrt/src/onednn.rs`). Same mathematics as the
//! `stablehlo.dot_general` it replaces ([`MatMulCall::dot_dims`]; the tests compare both).
//!
//! `c = op(a)·op(b)` with `op(x)` = `x` or `xᵀ` for rank-2 f32 operands: `op(a) : [M, K]`,
//! `op(b) : [K, N]`, `c : [M, N]`. Its VJP is two more matrix products of the same kind:
//! `ā = c̄·op(b)ᵀ` (or its transpose when `a` is transposed) and `b̄ = op(a)ᵀ·c̄` (likewise).

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::{DotDims, OpText, Prim, VjpArgs};
use crate::types::{DType, TensorType};

/// `op(a)·op(b)` with the operands' transposition flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatMulCall {
    pub trans_a: bool,
    pub trans_b: bool,
}

impl MatMulCall {
    /// The custom call's target name (the handler the runtime registers under it).
    pub const TARGET: &'static str = "netspec_matmul";

    /// The `stablehlo.dot_general` computing the same product (its result is `[M, N]` too:
    /// `dot_general` puts the lhs's free dim first).
    pub fn dot_dims(self) -> DotDims {
        DotDims {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![if self.trans_a { 0 } else { 1 }],
            rhs_contract: vec![if self.trans_b { 1 } else { 0 }],
        }
    }

    /// `(M, K, N)` for operands of dims `a` and `b`, or `None` when they do not multiply.
    pub fn mkn(self, a: &[usize], b: &[usize]) -> Option<(usize, usize, usize)> {
        let (&[a0, a1], &[b0, b1]) = (a, b) else {
            return None;
        };
        let (m, k) = if self.trans_a { (a1, a0) } else { (a0, a1) };
        let (k2, n) = if self.trans_b { (b1, b0) } else { (b0, b1) };
        (k == k2).then_some((m, k, n))
    }
}

impl Graph {
    /// Appends `op(a)·op(b)` as a [`MatMulCall`].
    pub fn matmul_call(&mut self, call: MatMulCall, a: Value, b: Value) -> Result<Value> {
        self.push1(Prim::MatMulCall(call), vec![a, b])
    }
}

pub(crate) fn shape_matmul_call(ins: &[&TensorType], c: MatMulCall) -> Result<TensorType> {
    let (a, b) = (ins[0], ins[1]);
    match c.mkn(&a.dims, &b.dims) {
        Some((m, _, n)) if a.dtype == DType::F32 && b.dtype == DType::F32 => {
            Ok(TensorType::new(DType::F32, &[m, n]))
        }
        _ => bail!(
            MatMulCall::TARGET,
            "operands {a} and {b} (transposed: {}, {}) are not two f32 matrices that multiply",
            c.trans_a,
            c.trans_b
        ),
    }
}

/// `stablehlo.custom_call @netspec_matmul(a, b)` with the flags in the typed-FFI attributes.
pub(crate) fn print_matmul_call(c: MatMulCall, t: &OpText) -> String {
    format!(
        "{} = stablehlo.custom_call @{}({}, {}) {{api_version = 4 : i32, backend_config = {{trans_a = {} : i64, trans_b = {} : i64}}}} : {}",
        t.res,
        MatMulCall::TARGET,
        t.args[0],
        t.args[1],
        i64::from(c.trans_a),
        i64::from(c.trans_b),
        t.fn_type()
    )
}

/// `ā` and `b̄` as matrix products of the same kind (module doc).
pub(crate) fn vjp_matmul_call(
    g: &mut Graph,
    c: MatMulCall,
    a: &VjpArgs,
) -> Result<Vec<Option<Value>>> {
    let (p, q, ct) = (a.inputs[0], a.inputs[1], a.ct());
    let call = |trans_a, trans_b| MatMulCall { trans_a, trans_b };
    let dp = if !a.needs[0] {
        None
    } else if c.trans_a {
        // a : [K, M], ā = op(b)·c̄ᵀ
        Some(g.matmul_call(call(c.trans_b, true), q, ct)?)
    } else {
        // a : [M, K], ā = c̄·op(b)ᵀ
        Some(g.matmul_call(call(false, !c.trans_b), ct, q)?)
    };
    let dq = if !a.needs[1] {
        None
    } else if c.trans_b {
        // b : [N, K], b̄ = c̄ᵀ·op(a)
        Some(g.matmul_call(call(true, c.trans_a), ct, p)?)
    } else {
        // b : [K, N], b̄ = op(a)ᵀ·c̄
        Some(g.matmul_call(call(!c.trans_a, false), p, ct)?)
    };
    Ok(vec![dp, dq])
}
