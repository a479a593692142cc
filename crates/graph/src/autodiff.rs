//! Reverse-mode autodiff at generation time. `vjp` walks the nodes in reverse topological order and calls
//! each primitive's VJP rule (in `prims/*`), appending the backward nodes to the same graph so forward values
//! are reused and forward + backward print as one function. Composites can bring their own rule through
//! [`Graph::custom_vjp`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{bail, Error, Result};
use crate::graph::{Graph, Value};
use crate::prims::{self, Prim, VjpArgs};
use crate::types::TensorType;

/// What a custom VJP rule sees: the composite's inputs, outputs and residuals (extra forward values the
/// rule wants to reuse), and one cotangent per output (zeros where the output received none).
pub struct CustomVjpCtx<'a> {
    pub inputs: &'a [Value],
    pub outputs: &'a [Value],
    pub residuals: &'a [Value],
    pub cotangents: &'a [Value],
}

/// A custom VJP rule: returns one cotangent per composite input (`None` = zero).
pub type VjpRule =
    Arc<dyn Fn(&mut Graph, &CustomVjpCtx) -> Result<Vec<Option<Value>>> + Send + Sync>;

/// The attributes of a `Prim::CustomVjp` node.
#[derive(Clone)]
pub struct CustomVjp {
    pub name: String,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) rule: VjpRule,
}

impl fmt::Debug for CustomVjp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CustomVjp({}, {} in, {} out)",
            self.name, self.n_in, self.n_out
        )
    }
}

impl CustomVjp {
    /// Number of composite inputs (the node's first operands).
    pub fn n_inputs(&self) -> usize {
        self.n_in
    }

    /// Number of composite outputs: the node's results are its operands `n_inputs()..n_inputs() + n_outputs()`.
    pub fn n_outputs(&self) -> usize {
        self.n_out
    }

    /// The node's results have the types of the composite's outputs.
    pub(crate) fn shape(&self, ins: &[&TensorType]) -> Result<Vec<TensorType>> {
        Ok(ins[self.n_in..self.n_in + self.n_out]
            .iter()
            .map(|t| (*t).clone())
            .collect())
    }

    pub(crate) fn vjp(&self, g: &mut Graph, a: &VjpArgs) -> Result<Vec<Option<Value>>> {
        let (inputs, rest) = a.inputs.split_at(self.n_in);
        let (outputs, residuals) = rest.split_at(self.n_out);
        let mut cts = Vec::new();
        for (i, c) in a.cts.iter().enumerate() {
            cts.push(match c {
                Some(c) => *c,
                None => g.zeros_like(outputs[i])?,
            });
        }
        let ctx = CustomVjpCtx {
            inputs,
            outputs,
            residuals,
            cotangents: &cts,
        };
        let mut res = (self.rule)(g, &ctx)?;
        if res.len() != self.n_in {
            bail!(
                "custom_vjp",
                "rule of `{}` returned {} cotangents for {} inputs",
                self.name,
                res.len(),
                self.n_in
            );
        }
        for (i, c) in res.iter().enumerate() {
            if let Some(c) = c {
                if g.ty(*c) != g.ty(inputs[i]) {
                    bail!(
                        "custom_vjp",
                        "rule of `{}` returned cotangent {} for input {i} of type {}",
                        self.name,
                        g.ty(*c),
                        g.ty(inputs[i])
                    );
                }
            }
        }
        res.resize(a.inputs.len(), None);
        Ok(res)
    }
}

impl Graph {
    /// Builds a composite whose VJP is `rule` instead of the derivative of its internals.
    ///
    /// `forward(g, inputs)` builds the composite and returns `(outputs, residuals)`; residuals are forward
    /// values the rule may reuse (e.g. a batch mean). Returns handles to the outputs: differentiate through
    /// these and autodiff calls `rule`; internal nodes are not differentiated (unless used elsewhere).
    pub fn custom_vjp<F, R>(
        &mut self,
        name: &str,
        inputs: &[Value],
        forward: F,
        rule: R,
    ) -> Result<Vec<Value>>
    where
        F: FnOnce(&mut Graph, &[Value]) -> Result<(Vec<Value>, Vec<Value>)>,
        R: Fn(&mut Graph, &CustomVjpCtx) -> Result<Vec<Option<Value>>> + Send + Sync + 'static,
    {
        for &v in inputs {
            self.check_value(v, "custom_vjp")?;
        }
        let (outputs, residuals) = forward(self, inputs)?;
        if outputs.is_empty() {
            bail!("custom_vjp", "forward of `{name}` returned no outputs");
        }
        let node_inputs: Vec<Value> = inputs
            .iter()
            .chain(&outputs)
            .chain(&residuals)
            .copied()
            .collect();
        let c = CustomVjp {
            name: name.to_string(),
            n_in: inputs.len(),
            n_out: outputs.len(),
            rule: Arc::new(rule),
        };
        self.push(Prim::CustomVjp(c), node_inputs)
    }
}

/// Reverse mode: given `outputs` and one cotangent per output (same types), returns the cotangent of each
/// value in `wrt` (zeros for values the outputs do not depend on). Backward nodes are appended to `g`.
///
/// Errors (never a silently wrong gradient): a non-float output, cotangent or `wrt` value; a cotangent whose
/// type differs from its output; a primitive on the path that has no VJP rule (e.g. `rng_bit_generator`,
/// convolution with `batch_group_count > 1`). Integer and predicate paths carry no cotangent.
pub fn vjp(
    g: &mut Graph,
    outputs: &[Value],
    cotangents: &[Value],
    wrt: &[Value],
) -> Result<Vec<Value>> {
    if outputs.len() != cotangents.len() {
        bail!(
            "vjp",
            "{} outputs but {} cotangents",
            outputs.len(),
            cotangents.len()
        );
    }
    for (&o, &c) in outputs.iter().zip(cotangents) {
        g.check_value(o, "vjp")?;
        g.check_value(c, "vjp")?;
        if !g.dtype(o).is_float() {
            bail!(
                "vjp",
                "cannot differentiate output %{} of type {} (only float outputs carry cotangents)",
                o.node,
                g.ty(o)
            );
        }
        if g.ty(o) != g.ty(c) {
            bail!(
                "vjp",
                "cotangent type {} differs from output type {}",
                g.ty(c),
                g.ty(o)
            );
        }
    }
    for &w in wrt {
        g.check_value(w, "vjp")?;
        if !g.dtype(w).is_float() {
            bail!("vjp", "cannot differentiate with respect to %{} of type {} (integer and predicate values have no gradient)", w.node, g.ty(w));
        }
    }
    let n = g.nodes.len();
    // depends[i]: node i is (or reads, transitively) one of the `wrt` values.
    let mut depends = vec![false; n];
    for &w in wrt {
        depends[w.node()] = true;
    }
    for i in 0..n {
        if !depends[i] && g.nodes[i].inputs.iter().any(|v| depends[v.node()]) {
            depends[i] = true;
        }
    }
    let mut cts: HashMap<Value, Value> = HashMap::new();
    for (&o, &c) in outputs.iter().zip(cotangents) {
        accumulate(g, &mut cts, o, c)?;
    }
    let top = outputs.iter().map(|o| o.node()).max().unwrap_or(0);
    for i in (0..=top.min(n.saturating_sub(1))).rev() {
        if !depends[i] || g.nodes[i].inputs.is_empty() {
            continue;
        }
        let n_out = g.nodes[i].outs.len();
        let results: Vec<Value> = (0..n_out as u32)
            .map(|res| Value {
                node: i as u32,
                res,
            })
            .collect();
        let node_cts: Vec<Option<Value>> = results.iter().map(|v| cts.get(v).copied()).collect();
        if node_cts.iter().all(|c| c.is_none()) {
            continue;
        }
        let inputs = g.nodes[i].inputs.clone();
        let needs: Vec<bool> = inputs
            .iter()
            .map(|v| depends[v.node()] && g.dtype(*v).is_float())
            .collect();
        if !needs.iter().any(|&b| b) {
            continue;
        }
        let prim = g.nodes[i].prim.clone();
        let args = VjpArgs {
            inputs: &inputs,
            outputs: &results,
            cts: &node_cts,
            needs: &needs,
        };
        let in_cts = prims::vjp(g, &prim, &args).map_err(|e| context(e, &prim, i))?;
        if in_cts.len() != inputs.len() {
            bail!(
                "vjp",
                "internal: rule of {} returned {} cotangents for {} operands",
                prim.name(),
                in_cts.len(),
                inputs.len()
            );
        }
        for (k, c) in in_cts.into_iter().enumerate() {
            if let (true, Some(c)) = (needs[k], c) {
                if g.ty(c) != g.ty(inputs[k]) {
                    bail!(
                        "vjp",
                        "internal: rule of {} produced cotangent {} for operand {k} of type {}",
                        prim.name(),
                        g.ty(c),
                        g.ty(inputs[k])
                    );
                }
                accumulate(g, &mut cts, inputs[k], c)?;
            }
        }
    }
    wrt.iter()
        .map(|&w| match cts.get(&w) {
            Some(&c) => Ok(c),
            None => g.zeros_like(w),
        })
        .collect()
}

fn context(e: Error, prim: &Prim, node: usize) -> Error {
    Error::new(
        e.op,
        format!(
            "{} (while differentiating {} node %{node})",
            e.message,
            prim.name()
        ),
    )
}

fn accumulate(g: &mut Graph, cts: &mut HashMap<Value, Value>, v: Value, c: Value) -> Result<()> {
    let new = match cts.get(&v) {
        Some(&old) => g.add(old, c)?,
        None => c,
    };
    cts.insert(v, new);
    Ok(())
}

/// Gradient of a scalar `loss` (rank 0, float) with respect to each value in `wrt`: `vjp` with cotangent 1.
pub fn grad(g: &mut Graph, loss: Value, wrt: &[Value]) -> Result<Vec<Value>> {
    g.check_value(loss, "grad")?;
    let t = g.ty(loss).clone();
    if t.rank() != 0 || !t.dtype.is_float() {
        bail!("grad", "loss must be a float scalar, got {t}");
    }
    let one = g.scalar(1.0, t.dtype)?;
    vjp(g, &[loss], &[one], wrt)
}
