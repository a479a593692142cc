//! Constant folding at build time, only as far as it keeps emitted modules clean: layout ops and converts of
//! splat constants become splat constants, arithmetic on two float splats is evaluated (exactly rounded),
//! and `x·1`, `x+0`, `x−0`, `x/1`, `select(const, a, b)` return the operand. (Constants are de-duplicated
//! in `Graph::push`; dead code is never printed, see `printer`.)

use crate::error::Result;
use crate::graph::{Graph, Value};
use crate::literal::{round_to, Literal};
use crate::prims::{BinaryOp, Prim, UnaryOp};
use crate::types::TensorType;

/// The splat literal of `v`, if `v` is a splat constant.
fn splat(g: &Graph, v: Value) -> Option<Literal> {
    match &g.node_of(v).prim {
        Prim::Constant { lit, .. } if lit.len() == 1 => Some(lit.clone()),
        _ => None,
    }
}

/// Returns a replacement value for the node `prim(inputs)` of result types `outs`, or `None` to build it.
pub(crate) fn fold(
    g: &mut Graph,
    prim: &Prim,
    inputs: &[Value],
    outs: &[TensorType],
) -> Result<Option<Value>> {
    let fsplat = |g: &Graph, i: usize| {
        inputs
            .get(i)
            .and_then(|&v| splat(g, v))
            .and_then(|l| l.splat_f64())
    };
    match prim {
        Prim::BroadcastInDim { .. }
        | Prim::Reshape { .. }
        | Prim::Transpose { .. }
        | Prim::Reverse { .. } => {
            if let Some(lit) = splat(g, inputs[0]) {
                return g.constant(&outs[0], lit).map(Some);
            }
        }
        Prim::Convert { to } => {
            let from = g.dtype(inputs[0]);
            if let (Some(lit), true) = (splat(g, inputs[0]), to.is_float()) {
                let x = match lit {
                    Literal::Float(v) => Some(v[0]),
                    Literal::Int(v) if from.is_signed_int() => Some(v[0] as f64),
                    Literal::UInt(v) => Some(v[0] as f64),
                    Literal::Bool(v) => Some(if v[0] { 1.0 } else { 0.0 }),
                    Literal::Int(_) => None,
                };
                if let Some(x) = x {
                    return g
                        .constant(&outs[0], Literal::Float(vec![round_to(x, *to)]))
                        .map(Some);
                }
            }
        }
        Prim::Unary(UnaryOp::Neg) => {
            if let Some(x) = fsplat(g, 0) {
                return g.constant(&outs[0], Literal::Float(vec![-x])).map(Some);
            }
        }
        Prim::Binary(op) => {
            let (a, b) = (fsplat(g, 0), fsplat(g, 1));
            let dt = outs[0].dtype;
            let both = |f: fn(f64, f64) -> f64| a.zip(b).map(|(a, b)| round_to(f(a, b), dt));
            let folded = match op {
                BinaryOp::Add => both(|a, b| a + b),
                BinaryOp::Sub => both(|a, b| a - b),
                BinaryOp::Mul => both(|a, b| a * b),
                BinaryOp::Div => both(|a, b| a / b),
                BinaryOp::Max
                | BinaryOp::Min
                | BinaryOp::Pow
                | BinaryOp::And
                | BinaryOp::Or
                | BinaryOp::Xor => None,
            };
            if let Some(x) = folded {
                return g.constant(&outs[0], Literal::Float(vec![x])).map(Some);
            }
            let is =
                |v: Option<f64>, c: f64| v.map(|v| v.to_bits() == c.to_bits()).unwrap_or(false);
            let keep = match op {
                BinaryOp::Mul if is(b, 1.0) => Some(inputs[0]),
                BinaryOp::Mul if is(a, 1.0) => Some(inputs[1]),
                BinaryOp::Add if is(b, 0.0) => Some(inputs[0]),
                BinaryOp::Add if is(a, 0.0) => Some(inputs[1]),
                BinaryOp::Sub if is(b, 0.0) => Some(inputs[0]),
                BinaryOp::Div if is(b, 1.0) => Some(inputs[0]),
                BinaryOp::Add
                | BinaryOp::Sub
                | BinaryOp::Mul
                | BinaryOp::Div
                | BinaryOp::Max
                | BinaryOp::Min
                | BinaryOp::Pow
                | BinaryOp::And
                | BinaryOp::Or
                | BinaryOp::Xor => None,
            };
            if keep.is_some() {
                return Ok(keep);
            }
        }
        Prim::Select => {
            if let Some(Literal::Bool(p)) = splat(g, inputs[0]) {
                return Ok(Some(if p[0] { inputs[1] } else { inputs[2] }));
            }
        }
        Prim::Parameter { .. }
        | Prim::Constant { .. }
        | Prim::Iota { .. }
        | Prim::Barrier
        | Prim::Unary(_)
        | Prim::Compare(_)
        | Prim::Slice { .. }
        | Prim::Pad { .. }
        | Prim::Concatenate { .. }
        | Prim::Reduce { .. }
        | Prim::ReduceWindow { .. }
        | Prim::SelectAndScatter { .. }
        | Prim::DotGeneral(_)
        | Prim::Convolution(_)
        | Prim::ConvCall(_)
        | Prim::MatMulCall(_)
        | Prim::AdamCall(_)
        | Prim::RngBitGenerator { .. }
        | Prim::CustomVjp(_) => {}
    }
    Ok(None)
}
