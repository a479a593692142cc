//! `stablehlo.reduce` with a sum / max / min body over a list of dims.

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::literal::Literal;
use crate::prims::{check_dims, list, CmpDir, OpText, Prim, VjpArgs};
use crate::types::{DType, TensorType};

/// The combining function of a reduction (the body of `reduce` / `reduce_window`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}

impl ReduceOp {
    /// The StableHLO op of the body.
    pub(crate) fn mlir(self) -> &'static str {
        match self {
            ReduceOp::Sum => "add",
            ReduceOp::Max => "maximum",
            ReduceOp::Min => "minimum",
        }
    }

    /// The identity element, used as the init value: 0, −∞ (or the type's minimum), +∞ (or maximum).
    pub(crate) fn identity(self, dtype: DType) -> Result<Literal> {
        let (lo, hi): (f64, f64) = match dtype {
            DType::F32 | DType::F64 | DType::BF16 => (f64::NEG_INFINITY, f64::INFINITY),
            DType::I32 => (i32::MIN as f64, i32::MAX as f64),
            DType::I64 => {
                return Ok(Literal::Int(vec![match self {
                    ReduceOp::Sum => 0,
                    ReduceOp::Max => i64::MIN,
                    ReduceOp::Min => i64::MAX,
                }]))
            }
            DType::U8 => (0.0, 255.0),
            DType::U32 => (0.0, u32::MAX as f64),
            DType::U64 => {
                return Ok(Literal::UInt(vec![match self {
                    ReduceOp::Sum | ReduceOp::Max => 0,
                    ReduceOp::Min => u64::MAX,
                }]))
            }
            DType::Pred => bail!("reduce", "reductions over i1 are not supported"),
        };
        let v = match self {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => lo,
            ReduceOp::Min => hi,
        };
        Literal::splat(v, dtype)
    }
}

impl Graph {
    /// `stablehlo.reduce` of `x` over `dims` with `op` (init = `op`'s identity). No node for empty `dims`.
    /// A `Sum` of bf16 values accumulates in f32 ([`crate::DType::accumulation`]).
    pub fn reduce(&mut self, x: Value, op: ReduceOp, dims: &[usize]) -> Result<Value> {
        if dims.is_empty() {
            return Ok(x);
        }
        let dt = self.dtype(x);
        if op == ReduceOp::Sum && dt.accumulation() != dt {
            // A bf16 sum accumulates in f32 and is rounded back once.
            let xa = self.convert(x, dt.accumulation())?;
            let s = self.reduce(xa, op, dims)?;
            return self.convert(s, dt);
        }
        let init = self.constant(&TensorType::scalar(dt), op.identity(dt)?)?;
        let mut sorted = dims.to_vec();
        sorted.sort_unstable();
        self.push1(Prim::Reduce { op, dims: sorted }, vec![x, init])
    }
}

pub(crate) fn shape_reduce(
    op: ReduceOp,
    ins: &[&TensorType],
    dims: &[usize],
) -> Result<TensorType> {
    let x = ins[0];
    if ins[1].rank() != 0 || ins[1].dtype != x.dtype {
        bail!(
            "reduce",
            "init value {} must be a scalar of the operand's element type ({x}) (reduce_c2)",
            ins[1]
        );
    }
    if x.dtype == DType::Pred {
        bail!(
            "reduce",
            "{} reduction over i1 operand {x} is not supported",
            op.mlir()
        );
    }
    check_dims("reduce", "dimension", dims, x.rank())?;
    let kept = (0..x.rank())
        .filter(|d| !dims.contains(d))
        .map(|d| x.dims[d])
        .collect();
    Ok(TensorType {
        dtype: x.dtype,
        dims: kept,
    })
}

pub(crate) fn print_reduce(op: ReduceOp, dims: &[usize], t: &OpText) -> String {
    format!(
        "{} = stablehlo.reduce({} init: {}) applies stablehlo.{} across dimensions = [{}] : {}",
        t.res,
        t.args[0],
        t.args[1],
        op.mlir(),
        list(dims),
        t.fn_type()
    )
}

/// Sum: broadcast the cotangent back over the reduced dims.
/// Max/min: the cotangent goes to the positions equal to the result, split evenly among ties
/// (mask / count), so the rule is exact wherever the extremum is unique.
pub(crate) fn vjp_reduce(
    g: &mut Graph,
    op: ReduceOp,
    dims: &[usize],
    a: &VjpArgs,
) -> Result<Vec<Option<Value>>> {
    let (x, y, ct) = (a.inputs[0], a.outputs[0], a.ct());
    if !g.dtype(x).is_float() {
        return Ok(vec![None, None]);
    }
    let xdims = g.dims(x).to_vec();
    let kept: Vec<usize> = (0..xdims.len()).filter(|d| !dims.contains(d)).collect();
    let ct_b = g.broadcast_in_dim(ct, &xdims, &kept)?;
    match op {
        ReduceOp::Sum => Ok(vec![Some(ct_b), None]),
        ReduceOp::Max | ReduceOp::Min => {
            let y_b = g.broadcast_in_dim(y, &xdims, &kept)?;
            let mask = g.compare(x, y_b, CmpDir::Eq)?;
            let mask = g.convert(mask, g.dtype(x))?;
            let count = g.reduce(mask, ReduceOp::Sum, dims)?;
            let count = g.broadcast_in_dim(count, &xdims, &kept)?;
            let share = g.div(ct_b, count)?;
            Ok(vec![Some(g.mul(mask, share)?), None])
        }
    }
}
