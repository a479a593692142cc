//! Per-target formulations. netspec prints one graph for several compilers; where a compiler lacks a
//! lowering, the graph is rewritten for it before printing:
//!
//! | target | max-pool backward (`select_and_scatter`) | `tf.aliasing_output` |
//! |---|---|---|
//! | [`Target::Xla`] | `stablehlo.select_and_scatter` (XLA:CPU ran it faster than strided slices) | printed |
//! | [`Target::Iree`] | strided slices + compare + select + pad per window position (IREE 3.13 has no lowering for `select_and_scatter`) | not printed (IREE 3.13 writes an aliased result over its argument while a later dispatch still reads it) |
//!
//! Convolution custom calls (`Prim::ConvCall`, emitted only for an XLA:CPU client that registered their
//! handlers) become the `stablehlo.convolution`s they stand for on every target but [`Target::Xla`].

use crate::error::Result;
use crate::graph::{Graph, Value};
use crate::prims::{window, Prim, ReduceOp};
use crate::printer::{print_module_with, PrintOptions};

/// A compiler netspec prints modules for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// XLA through PJRT (the runtime).
    Xla,
    /// IREE (`iree-compile`, llvm-cpu), used as a cross-check in the tests.
    Iree,
}

impl Target {
    fn print_options(self) -> PrintOptions {
        match self {
            Target::Xla => PrintOptions { aliasing: true },
            Target::Iree => PrintOptions { aliasing: false },
        }
    }
}

/// The graph in the formulation `target` accepts: for [`Target::Iree`] every `select_and_scatter` is
/// rebuilt from strided slices (the same first-maximum rule: each source element goes to the first
/// position of its window holding the window's maximum); for [`Target::Xla`] a copy of `g`.
/// Parameters, argument attributes and outputs are kept; dead nodes are dropped.
pub fn for_target(g: &Graph, target: Target) -> Result<Graph> {
    if target == Target::Xla {
        return Ok(g.clone());
    }
    let mut h = Graph::new(&g.name);
    h.set_partitions(g.num_partitions, g.num_replicas);
    let live = g.live_nodes();
    let mut map: Vec<Vec<Value>> = vec![Vec::new(); g.nodes.len()];
    for (i, node) in g.nodes.iter().enumerate() {
        if !live[i] {
            continue;
        }
        let ins: Vec<Value> = node
            .inputs
            .iter()
            .map(|v| map[v.node()][v.result()])
            .collect();
        map[i] = match &node.prim {
            Prim::Parameter { index, ty } => {
                let p = h.parameter(ty.clone());
                h.arg_attrs[*index] = g.arg_attrs[*index].clone();
                vec![p]
            }
            Prim::SelectAndScatter { window } => {
                // select_and_scatter(x, src, init) = init + scatter to the first maximum.
                let (x, src, init) = (ins[0], ins[1], ins[2]);
                let y = h.reduce_window(x, ReduceOp::Max, window)?;
                let s =
                    window::scatter_to_first_extremum(&mut h, x, src, y, ReduceOp::Max, window)?;
                let dims = h.dims(s).to_vec();
                let init = h.broadcast_in_dim(init, &dims, &[])?;
                vec![h.add(s, init)?]
            }
            Prim::ConvCall(c) => vec![crate::prims::expand_conv_call(&mut h, c, ins[0], ins[1])?],
            Prim::MatMulCall(c) => vec![h.dot_general(ins[0], ins[1], &c.dot_dims())?],
            Prim::AdamCall(c) => c.expand(&mut h, &ins)?.to_vec(),
            other => h.push(other.clone(), ins)?,
        };
    }
    let outs: Vec<Value> = g
        .outputs
        .iter()
        .map(|v| map[v.node()][v.result()])
        .collect();
    h.set_outputs(&outs)?;
    Ok(h)
}

/// Prints `g` for `target`: [`for_target`], then the target's printing options.
pub fn print_for(g: &Graph, target: Target) -> Result<String> {
    let h = for_target(g, target)?;
    print_module_with(&h, &target.print_options())
}
