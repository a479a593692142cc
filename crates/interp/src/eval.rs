//! The evaluation loop: one exhaustive `match` over `graph::Prim` (no `_ =>`: a new primitive is a
//! compile error here too), each arm calling the function of its primitive family.

use std::rc::Rc;

use graph::{DType, Graph, Prim};

use crate::error::{bail, Error, Result};
use crate::tensor::Tensor;
use crate::{conv, dot, elementwise, layout, reduce, rng, Options, Precision};

/// Evaluates the live nodes of `g` in order on `args` (one per parameter, of the parameter's type) and
/// returns the outputs. Values are dropped after their last use.
pub(crate) fn run(g: &Graph, args: &[Tensor], opts: &Options) -> Result<Vec<Tensor>> {
    let params = g.parameters();
    if args.len() != params.len() {
        bail!(
            "arguments",
            "{} arguments given for {} parameters of `{}`",
            args.len(),
            params.len(),
            g.name()
        );
    }
    for (i, (a, &p)) in args.iter().zip(params).enumerate() {
        if &a.ty != g.ty(p) {
            bail!(
                "arguments",
                "argument {i} is {} but parameter {i} is {}",
                a.ty,
                g.ty(p)
            );
        }
    }
    let nodes = g.nodes();
    let live = g.live_nodes();
    // last[i]: the last node reading node i (outputs are read at the end).
    let mut last = vec![0usize; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        if live[i] {
            for v in &n.inputs {
                last[v.node()] = i;
            }
        }
    }
    for v in g.outputs() {
        last[v.node()] = usize::MAX;
    }
    let mut vals: Vec<Option<Vec<Rc<Tensor>>>> = vec![None; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        if !live[i] {
            continue;
        }
        let mut ins: Vec<Rc<Tensor>> = Vec::with_capacity(node.inputs.len());
        for v in &node.inputs {
            match vals[v.node()].as_ref().and_then(|r| r.get(v.result())) {
                Some(t) => ins.push(Rc::clone(t)),
                None => bail!(
                    "internal",
                    "node %{i} reads %{} before it is computed",
                    v.node()
                ),
            }
        }
        let refs: Vec<&Tensor> = ins.iter().map(|t| t.as_ref()).collect();
        let outs = match &node.prim {
            Prim::CustomVjp(c) => {
                // The composite's results are its outputs, operands n_in … n_in + n_out.
                let k = c.n_inputs();
                ins[k..k + c.n_outputs()].to_vec()
            }
            prim => {
                let mut outs = eval(prim, &refs, args, opts).map_err(|mut e| {
                    e.node = Some(i);
                    e
                })?;
                for (t, want) in outs.iter_mut().zip(&node.outs) {
                    if &t.ty != want {
                        return Err(Error {
                            node: Some(i),
                            op: prim.name().into(),
                            message: format!("internal: computed {} for declared {want}", t.ty),
                        });
                    }
                    if opts.precision == Precision::F32 && t.ty.dtype != DType::F64 {
                        t.normalize(true);
                    }
                }
                outs.into_iter().map(Rc::new).collect()
            }
        };
        vals[i] = Some(outs);
        drop(ins);
        for v in &node.inputs {
            if last[v.node()] == i {
                vals[v.node()] = None;
            }
        }
    }
    g.outputs()
        .iter()
        .map(|v| {
            vals[v.node()]
                .as_ref()
                .and_then(|r| r.get(v.result()))
                .map(|t| t.as_ref().clone())
                .ok_or_else(|| {
                    Error::new("internal", format!("output %{} was not computed", v.node()))
                })
        })
        .collect()
}

/// One primitive applied to its operands: the result tensors (before f32 rounding).
fn eval(prim: &Prim, x: &[&Tensor], args: &[Tensor], opts: &Options) -> Result<Vec<Tensor>> {
    let one = |t: Tensor| Ok(vec![t]);
    match prim {
        Prim::Parameter { index, .. } => one(args[*index].clone()),
        Prim::Constant { ty, lit } => one(layout::constant(ty, lit)?),
        Prim::Iota { ty, dim } => one(layout::iota(ty, *dim)?),
        Prim::Convert { to } => one(elementwise::convert(x[0], *to)?),
        Prim::Unary(op) => one(elementwise::unary(*op, x[0])?),
        Prim::Binary(op) => one(elementwise::binary(*op, x[0], x[1])?),
        Prim::Compare(dir) => one(elementwise::compare(*dir, x[0], x[1])?),
        Prim::Select => one(elementwise::select(x[0], x[1], x[2])?),
        Prim::BroadcastInDim { out, dims } => one(layout::broadcast(x[0], out, dims)),
        Prim::Reshape { out } => one(layout::reshape(x[0], out)),
        Prim::Transpose { perm } => one(layout::transpose(x[0], perm)),
        Prim::Slice {
            start,
            limit,
            strides,
        } => one(layout::slice(x[0], start, limit, strides)),
        Prim::Pad { lo, hi, interior } => one(layout::pad(x[0], x[1], lo, hi, interior)?),
        Prim::Concatenate { dim } => one(layout::concatenate(x, *dim)?),
        Prim::Reverse { dims } => one(layout::reverse(x[0], dims)),
        Prim::Barrier => Ok(x.iter().map(|t| (*t).clone()).collect()),
        Prim::Reduce { op, dims } => one(reduce::reduce(*op, x[0], x[1], dims)?),
        Prim::ReduceWindow { op, window } => one(reduce::reduce_window(*op, x[0], x[1], window)?),
        Prim::SelectAndScatter { window } => {
            one(reduce::select_and_scatter(x[0], x[1], x[2], window)?)
        }
        Prim::DotGeneral(d) => one(dot::dot_general(x[0], x[1], d, opts.threads)?),
        Prim::Convolution(c) => one(conv::convolution(x[0], x[1], c, opts.threads)?),
        Prim::MatMulCall(c) => one(dot::dot_general(x[0], x[1], &c.dot_dims(), opts.threads)?),
        Prim::ConvCall(c) => {
            // The convolutions the call stands for, evaluated as a graph of their own.
            let mut g = Graph::new("conv_call");
            let a = g.parameter(x[0].ty.clone());
            let b = g.parameter(x[1].ty.clone());
            let graph_err = |e: graph::Error| Error::new("custom_call", e.to_string());
            let y = graph::expand_conv_call(&mut g, c, a, b).map_err(graph_err)?;
            g.set_outputs(&[y]).map_err(graph_err)?;
            run(&g, &[x[0].clone(), x[1].clone()], opts)
        }
        Prim::AdamCall(c) => {
            // The update the call stands for, evaluated as a graph of its own.
            let mut g = Graph::new("adam_call");
            let ins: Vec<_> = x.iter().map(|t| g.parameter(t.ty.clone())).collect();
            let graph_err = |e: graph::Error| Error::new("custom_call", e.to_string());
            let ys = c.expand(&mut g, &ins).map_err(graph_err)?;
            g.set_outputs(&ys).map_err(graph_err)?;
            let args: Vec<Tensor> = x.iter().map(|t| (*t).clone()).collect();
            run(&g, &args, opts)
        }
        Prim::RngBitGenerator { algorithm, out } => {
            let (s, b) = rng::rng_bit_generator(x[0], *algorithm, out)?;
            Ok(vec![s, b])
        }
        Prim::CustomVjp(c) => {
            let k = c.n_inputs();
            Ok(x[k..k + c.n_outputs()]
                .iter()
                .map(|t| (*t).clone())
                .collect())
        }
    }
}
