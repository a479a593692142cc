//! The primitive set. Each family file keeps, side by side, a primitive's shape/dtype rule (`shape_*`), its
//! StableHLO printing (`print_*`) and its VJP rule (`vjp_*`). This module holds the [`Prim`] enum and the
//! exhaustive dispatch tables over it (no `_ =>` arms: a new variant is a compile error at every site).

pub(crate) mod adam_call;
pub(crate) mod conv;
pub(crate) mod conv_call;
pub(crate) mod dot;
pub(crate) mod elementwise;
pub(crate) mod layout;
pub(crate) mod matmul_call;
pub(crate) mod reduce;
pub(crate) mod rng;
pub(crate) mod window;

use crate::autodiff::CustomVjp;
use crate::error::Result;
use crate::graph::{Graph, Value};
use crate::literal::Literal;
use crate::types::{DType, TensorType};

pub use adam_call::AdamCall;
pub use conv::{ConvDims, ConvSpec};
pub use conv_call::{expand_conv_call, ConvCall, ConvPass};
pub use dot::DotDims;
pub use elementwise::{BinaryOp, CmpDir, UnaryOp};
pub use matmul_call::MatMulCall;
pub use reduce::ReduceOp;
pub use rng::RngAlgorithm;
pub use window::Window;

/// A StableHLO-shaped primitive with its static attributes. Operands are the node's inputs.
#[derive(Clone, Debug)]
pub enum Prim {
    /// Function argument number `index`.
    Parameter { index: usize, ty: TensorType },
    /// `stablehlo.constant` (splat or dense).
    Constant { ty: TensorType, lit: Literal },
    /// `stablehlo.iota` along `dim`.
    Iota { ty: TensorType, dim: usize },
    /// `stablehlo.convert` to another element type.
    Convert { to: DType },
    /// Elementwise unary op (table in `elementwise.rs`).
    Unary(UnaryOp),
    /// Elementwise binary op (table in `elementwise.rs`); operands have equal types.
    Binary(BinaryOp),
    /// `stablehlo.compare` → pred.
    Compare(CmpDir),
    /// `stablehlo.select(pred, on_true, on_false)`.
    Select,
    /// `stablehlo.broadcast_in_dim`: operand dim `i` becomes result dim `dims[i]`.
    BroadcastInDim { out: Vec<usize>, dims: Vec<usize> },
    /// `stablehlo.reshape` to `out` (same element count).
    Reshape { out: Vec<usize> },
    /// `stablehlo.transpose`: result dim `i` is operand dim `perm[i]`.
    Transpose { perm: Vec<usize> },
    /// `stablehlo.slice` with strides.
    Slice {
        start: Vec<usize>,
        limit: Vec<usize>,
        strides: Vec<usize>,
    },
    /// `stablehlo.pad(operand, padding_value)`; `lo`/`hi` may be negative (cropping).
    Pad {
        lo: Vec<i64>,
        hi: Vec<i64>,
        interior: Vec<usize>,
    },
    /// `stablehlo.concatenate` along `dim`.
    Concatenate { dim: usize },
    /// `stablehlo.reverse` along `dims`.
    Reverse { dims: Vec<usize> },
    /// `stablehlo.optimization_barrier`: its operands unchanged (one result each), all computed before
    /// any result is used (`Graph::barrier`).
    Barrier,
    /// `stablehlo.reduce(operand, init)` over `dims`; `init` is always `op`'s identity (built by the builder).
    Reduce { op: ReduceOp, dims: Vec<usize> },
    /// `stablehlo.reduce_window(operand, init)`; `init` is always `op`'s identity.
    ReduceWindow { op: ReduceOp, window: Window },
    /// `stablehlo.select_and_scatter(operand, source, init = 0)` with select `GE` and scatter `add`
    /// (the max-pool backward).
    SelectAndScatter { window: Window },
    /// `stablehlo.dot_general`.
    DotGeneral(DotDims),
    /// `stablehlo.convolution`.
    Convolution(ConvSpec),
    /// One product of a 2-D convolution run by a registered kernel library (`stablehlo.custom_call`;
    /// `conv_call.rs`).
    ConvCall(ConvCall),
    /// A rank-2 f32 matrix product run by a registered kernel library (`stablehlo.custom_call`;
    /// `matmul_call.rs`).
    MatMulCall(MatMulCall),
    /// One in-place Adam update of an f32 parameter run by a registered kernel
    /// (`stablehlo.custom_call`; `adam_call.rs`).
    AdamCall(AdamCall),
    /// `stablehlo.rng_bit_generator(state)` → (new state, bits of type `out`).
    RngBitGenerator {
        algorithm: RngAlgorithm,
        out: TensorType,
    },
    /// A composite with a user VJP rule. Inputs: the composite's inputs, then its outputs, then residuals;
    /// results alias the outputs (nothing is printed for it).
    CustomVjp(CustomVjp),
}

impl Prim {
    /// The StableHLO op name (or a descriptive name for non-ops).
    pub fn name(&self) -> &'static str {
        match self {
            Prim::Parameter { .. } => "parameter",
            Prim::Constant { .. } => "constant",
            Prim::Iota { .. } => "iota",
            Prim::Convert { .. } => "convert",
            Prim::Unary(op) => op.mlir(),
            Prim::Binary(op) => op.mlir(),
            Prim::Compare(_) => "compare",
            Prim::Select => "select",
            Prim::BroadcastInDim { .. } => "broadcast_in_dim",
            Prim::Reshape { .. } => "reshape",
            Prim::Transpose { .. } => "transpose",
            Prim::Slice { .. } => "slice",
            Prim::Pad { .. } => "pad",
            Prim::Concatenate { .. } => "concatenate",
            Prim::Reverse { .. } => "reverse",
            Prim::Barrier => "optimization_barrier",
            Prim::Reduce { .. } => "reduce",
            Prim::ReduceWindow { .. } => "reduce_window",
            Prim::SelectAndScatter { .. } => "select_and_scatter",
            Prim::DotGeneral(_) => "dot_general",
            Prim::Convolution(_) => "convolution",
            Prim::ConvCall(_) => "custom_call",
            Prim::MatMulCall(_) => "custom_call",
            Prim::AdamCall(_) => "custom_call",
            Prim::RngBitGenerator { .. } => "rng_bit_generator",
            Prim::CustomVjp(_) => "custom_vjp",
        }
    }
}

/// Shape and dtype rule: the result types of `prim` applied to operands of types `ins`, or an error naming
/// the op and the offending shapes.
pub(crate) fn infer(prim: &Prim, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
    let one = |t: Result<TensorType>| t.map(|t| vec![t]);
    match prim {
        Prim::Parameter { ty, .. } => Ok(vec![ty.clone()]),
        Prim::Constant { ty, lit } => lit.check(ty).map(|_| vec![ty.clone()]),
        Prim::Iota { ty, dim } => one(layout::shape_iota(ty, *dim)),
        Prim::Convert { to } => one(elementwise::shape_convert(ins, *to)),
        Prim::Unary(op) => one(elementwise::shape_unary(*op, ins)),
        Prim::Binary(op) => one(elementwise::shape_binary(*op, ins)),
        Prim::Compare(_) => one(elementwise::shape_compare(ins)),
        Prim::Select => one(elementwise::shape_select(ins)),
        Prim::BroadcastInDim { out, dims } => one(layout::shape_broadcast(ins, out, dims)),
        Prim::Reshape { out } => one(layout::shape_reshape(ins, out)),
        Prim::Transpose { perm } => one(layout::shape_transpose(ins, perm)),
        Prim::Slice {
            start,
            limit,
            strides,
        } => one(layout::shape_slice(ins, start, limit, strides)),
        Prim::Pad { lo, hi, interior } => one(layout::shape_pad(ins, lo, hi, interior)),
        Prim::Concatenate { dim } => one(layout::shape_concatenate(ins, *dim)),
        Prim::Reverse { dims } => one(layout::shape_reverse(ins, dims)),
        Prim::Barrier => layout::shape_barrier(ins),
        Prim::Reduce { op, dims } => one(reduce::shape_reduce(*op, ins, dims)),
        Prim::ReduceWindow { op, window } => one(window::shape_reduce_window(*op, ins, window)),
        Prim::SelectAndScatter { window } => one(window::shape_select_and_scatter(ins, window)),
        Prim::DotGeneral(d) => one(dot::shape_dot_general(ins, d)),
        Prim::Convolution(c) => one(conv::shape_convolution(ins, c)),
        Prim::ConvCall(c) => one(conv_call::shape_conv_call(ins, c)),
        Prim::MatMulCall(c) => one(matmul_call::shape_matmul_call(ins, *c)),
        Prim::AdamCall(c) => adam_call::shape_adam_call(ins, *c),
        Prim::RngBitGenerator { algorithm, out } => rng::shape_rng(ins, *algorithm, out),
        Prim::CustomVjp(c) => c.shape(ins),
    }
}

/// What a printing rule gets: result name(s), operand names and all types.
pub(crate) struct OpText<'a> {
    /// Unique number of this op in the printed function (used to name region arguments).
    pub id: usize,
    /// `%7`, or `%7:2` for multi-result ops.
    pub res: String,
    pub args: Vec<String>,
    pub ins: Vec<&'a TensorType>,
    pub outs: &'a [TensorType],
}

impl OpText<'_> {
    /// `(t0, t1) -> t` function type.
    pub(crate) fn fn_type(&self) -> String {
        let ins: Vec<String> = self.ins.iter().map(|t| t.to_string()).collect();
        let outs: Vec<String> = self.outs.iter().map(|t| t.to_string()).collect();
        let outs = if outs.len() == 1 {
            outs[0].clone()
        } else {
            format!("({})", outs.join(", "))
        };
        format!("({}) -> {}", ins.join(", "), outs)
    }
}

/// Printing rule: the StableHLO text of one op (possibly several lines, without indentation).
/// `Parameter` and `CustomVjp` print nothing (the printer handles them).
pub(crate) fn print(prim: &Prim, t: &OpText) -> String {
    match prim {
        Prim::Parameter { .. } | Prim::CustomVjp(_) => String::new(),
        Prim::Constant { ty, lit } => format!(
            "{} = stablehlo.constant {} : {}",
            t.res,
            lit.to_mlir(ty),
            ty
        ),
        Prim::Iota { ty, dim } => format!("{} = stablehlo.iota dim = {} : {}", t.res, dim, ty),
        Prim::Convert { .. } => elementwise::print_convert(t),
        Prim::Unary(op) => elementwise::print_unary(*op, t),
        Prim::Binary(op) => elementwise::print_binary(*op, t),
        Prim::Compare(dir) => elementwise::print_compare(*dir, t),
        Prim::Select => elementwise::print_select(t),
        Prim::BroadcastInDim { dims, .. } => layout::print_broadcast(dims, t),
        Prim::Reshape { .. } => layout::print_reshape(t),
        Prim::Transpose { perm } => layout::print_transpose(perm, t),
        Prim::Slice {
            start,
            limit,
            strides,
        } => layout::print_slice(start, limit, strides, t),
        Prim::Pad { lo, hi, interior } => layout::print_pad(lo, hi, interior, t),
        Prim::Concatenate { dim } => layout::print_concatenate(*dim, t),
        Prim::Reverse { dims } => layout::print_reverse(dims, t),
        Prim::Barrier => layout::print_barrier(t),
        Prim::Reduce { op, dims } => reduce::print_reduce(*op, dims, t),
        Prim::ReduceWindow { op, window } => window::print_reduce_window(*op, window, t),
        Prim::SelectAndScatter { window } => window::print_select_and_scatter(window, t),
        Prim::DotGeneral(d) => dot::print_dot_general(d, t),
        Prim::Convolution(c) => conv::print_convolution(c, t),
        Prim::ConvCall(c) => conv_call::print_conv_call(c, t),
        Prim::MatMulCall(c) => matmul_call::print_matmul_call(*c, t),
        Prim::AdamCall(c) => adam_call::print_adam_call(*c, t),
        Prim::RngBitGenerator { algorithm, .. } => rng::print_rng(*algorithm, t),
    }
}

/// What a VJP rule gets: the node's operands and results, the cotangents of its results (`None` = zero),
/// and which operands need a cotangent.
pub(crate) struct VjpArgs<'a> {
    pub inputs: &'a [Value],
    pub outputs: &'a [Value],
    pub cts: &'a [Option<Value>],
    pub needs: &'a [bool],
}

impl VjpArgs<'_> {
    /// The cotangent of the single result (rules are only called when some cotangent is non-zero).
    #[allow(
        clippy::expect_used,
        reason = "autodiff calls a rule only when some cotangent is non-zero"
    )]
    pub(crate) fn ct(&self) -> Value {
        self.cts[0].expect("VJP rule called with a zero cotangent")
    }
}

/// VJP rule: cotangents for the operands (`None` = zero or not needed), appended to `g`.
pub(crate) fn vjp(g: &mut Graph, prim: &Prim, a: &VjpArgs) -> Result<Vec<Option<Value>>> {
    match prim {
        Prim::Parameter { .. } | Prim::Constant { .. } | Prim::Iota { .. } => {
            Ok(vec![None; a.inputs.len()])
        }
        Prim::Convert { .. } => elementwise::vjp_convert(g, a),
        Prim::Unary(op) => elementwise::vjp_unary(g, *op, a),
        Prim::Binary(op) => elementwise::vjp_binary(g, *op, a),
        Prim::Compare(_) => Ok(vec![None, None]),
        Prim::Select => elementwise::vjp_select(g, a),
        Prim::BroadcastInDim { dims, .. } => layout::vjp_broadcast(g, dims, a),
        Prim::Reshape { .. } => layout::vjp_reshape(g, a),
        Prim::Transpose { perm } => layout::vjp_transpose(g, perm, a),
        Prim::Slice { start, strides, .. } => layout::vjp_slice(g, start, strides, a),
        Prim::Pad { lo, hi, interior } => layout::vjp_pad(g, lo, hi, interior, a),
        Prim::Concatenate { dim } => layout::vjp_concatenate(g, *dim, a),
        Prim::Reverse { dims } => layout::vjp_reverse(g, dims, a),
        Prim::Barrier => layout::vjp_barrier(a),
        Prim::Reduce { op, dims } => reduce::vjp_reduce(g, *op, dims, a),
        Prim::ReduceWindow { op, window } => window::vjp_reduce_window(g, *op, window, a),
        Prim::SelectAndScatter { window } => window::vjp_select_and_scatter(g, window, a),
        Prim::DotGeneral(d) => dot::vjp_dot_general(g, d, a),
        Prim::Convolution(c) => conv::vjp_convolution(g, c, a),
        Prim::ConvCall(c) => conv_call::vjp_conv_call(g, c, a),
        Prim::MatMulCall(c) => matmul_call::vjp_matmul_call(g, *c, a),
        Prim::AdamCall(_) => adam_call::vjp_adam_call(),
        Prim::RngBitGenerator { .. } => rng::vjp_rng(),
        Prim::CustomVjp(c) => c.vjp(g, a),
    }
}

/// Floating-point operations of one node: 2·MACs for dot_general/convolution, one per result element for
/// elementwise ops, one per operand element for reductions, window size per result for windowed ops;
/// data movement, constants and RNG count zero.
pub(crate) fn flops(prim: &Prim, ins: &[&TensorType], outs: &[TensorType]) -> u64 {
    let out_n = outs.first().map(|t| t.numel() as u64).unwrap_or(0);
    match prim {
        Prim::Parameter { .. }
        | Prim::Constant { .. }
        | Prim::Iota { .. }
        | Prim::BroadcastInDim { .. }
        | Prim::Reshape { .. }
        | Prim::Transpose { .. }
        | Prim::Slice { .. }
        | Prim::Pad { .. }
        | Prim::Concatenate { .. }
        | Prim::Reverse { .. }
        | Prim::Barrier
        | Prim::RngBitGenerator { .. }
        | Prim::CustomVjp(_) => 0,
        Prim::Convert { .. }
        | Prim::Unary(_)
        | Prim::Binary(_)
        | Prim::Compare(_)
        | Prim::Select => out_n,
        // The ops of its expansion (`AdamCall::expand`), so a step counts the same either way.
        Prim::AdamCall(c) => {
            let product = match c.product.and_then(|p| p.mkn(&ins[3].dims, &ins[4].dims)) {
                Some((m, k, n)) => 2 * (m * k * n) as u64,
                None => 0,
            };
            out_n * if c.decay != 0.0 { 16 } else { 14 } + product
        }
        Prim::Reduce { .. } => ins[0].numel() as u64,
        Prim::ReduceWindow { window, .. } => out_n * window.dims.iter().product::<usize>() as u64,
        Prim::SelectAndScatter { window } => {
            2 * ins[1].numel() as u64 * window.dims.iter().product::<usize>() as u64
        }
        Prim::DotGeneral(d) => {
            2 * out_n
                * d.lhs_contract
                    .iter()
                    .map(|&i| ins[0].dims[i] as u64)
                    .product::<u64>()
        }
        Prim::Convolution(c) => {
            let k = &ins[1].dims;
            let window: u64 = c.dims.kernel_spatial.iter().map(|&i| k[i] as u64).product();
            2 * out_n * k[c.dims.kernel_in] as u64 * window
        }
        Prim::MatMulCall(c) => {
            let (m, k, n) = c.mkn(&ins[0].dims, &ins[1].dims).unwrap_or((0, 0, 0));
            2 * m as u64 * k as u64 * n as u64
        }
        Prim::ConvCall(c) => {
            let [n, oh, ow, o] = c.output().unwrap_or([0; 4]);
            let [kh, kw, ci, _] = c.kernel;
            2 * [n, oh, ow, o, kh, kw, ci]
                .iter()
                .map(|&d| d as u64)
                .product::<u64>()
        }
    }
}

/// Joins numbers as `1, 2, 3`.
pub(crate) fn list<T: std::fmt::Display>(xs: &[T]) -> String {
    xs.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that `dims` are distinct and `< rank`; names `op` and `what` in the error.
pub(crate) fn check_dims(op: &str, what: &str, dims: &[usize], rank: usize) -> Result<()> {
    let mut seen = vec![false; rank];
    for &d in dims {
        if d >= rank {
            crate::error::bail!(
                op,
                "{what} {d} is out of range for rank {rank} (dims {dims:?})"
            );
        }
        if seen[d] {
            crate::error::bail!(op, "{what} {d} appears twice in {dims:?}");
        }
        seen[d] = true;
    }
    Ok(())
}
