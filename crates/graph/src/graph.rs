//! The graph: an append-only list of primitive nodes in topological order, plus the function signature
//! (parameters, outputs, argument attributes). Builders check shapes before a node exists, fold constants
//! as they go, and return [`Value`] handles.

use std::collections::HashMap;

use crate::error::{bail, Result};
use crate::literal::Literal;
use crate::prims::{self, Prim};
use crate::types::{DType, TensorType};

/// A handle to one result of one node of a [`Graph`]. Cheap to copy; only meaningful for its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value {
    pub(crate) node: u32,
    pub(crate) res: u32,
}

impl Value {
    /// Index of the producing node (nodes are numbered in creation order).
    pub fn node(self) -> usize {
        self.node as usize
    }
    /// Which result of the node (0 except for multi-result primitives).
    pub fn result(self) -> usize {
        self.res as usize
    }
}

/// One primitive application. Inputs always refer to earlier nodes, so node order is a topological order.
#[derive(Clone, Debug)]
pub struct Node {
    pub prim: Prim,
    pub inputs: Vec<Value>,
    pub outs: Vec<TensorType>,
}

/// Attributes of one function argument.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgAttrs {
    /// `tf.aliasing_output = N`: the argument's buffer may be reused for result `N` (donation).
    pub aliasing_output: Option<usize>,
    /// `mhlo.sharding = "…"`: an HloSharding string such as `{replicated}`.
    pub sharding: Option<String>,
}

/// A typed graph of StableHLO-shaped primitives that prints as one module with one public `@main`.
///
/// Build it with the builder methods (`parameter`, `add`, `dot_general`, …; every one returns
/// `Result<Value>` and checks shapes), set the results with [`Graph::set_outputs`], differentiate with
/// [`crate::grad`] / [`crate::vjp`] (backward nodes are appended to the same graph), and print with
/// [`crate::print_module`].
#[derive(Clone, Debug)]
pub struct Graph {
    pub(crate) name: String,
    pub(crate) nodes: Vec<Node>,
    pub(crate) params: Vec<Value>,
    pub(crate) arg_attrs: Vec<ArgAttrs>,
    pub(crate) outputs: Vec<Value>,
    pub(crate) num_partitions: u32,
    pub(crate) num_replicas: u32,
    consts: HashMap<(TensorType, Vec<u64>), Value>,
    /// Common-subexpression table: (printed attributes, operands) → existing node.
    cse: HashMap<(String, Vec<Value>), Value>,
}

impl Graph {
    /// An empty graph; `name` becomes the module name (`module @name`). It must be an MLIR bare identifier.
    pub fn new(name: &str) -> Graph {
        Graph {
            name: name.to_string(),
            nodes: Vec::new(),
            params: Vec::new(),
            arg_attrs: Vec::new(),
            outputs: Vec::new(),
            num_partitions: 1,
            num_replicas: 1,
            consts: HashMap::new(),
            cse: HashMap::new(),
        }
    }

    /// The module name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a function argument of type `ty`; arguments are numbered in creation order.
    pub fn parameter(&mut self, ty: TensorType) -> Value {
        let index = self.params.len();
        let v = self.push_unchecked(
            Prim::Parameter {
                index,
                ty: ty.clone(),
            },
            vec![],
            vec![ty],
        );
        self.params.push(v);
        self.arg_attrs.push(ArgAttrs::default());
        v
    }

    /// The arguments, in order.
    pub fn parameters(&self) -> &[Value] {
        &self.params
    }

    /// Sets the function results (in order). Replaces earlier outputs.
    pub fn set_outputs(&mut self, outputs: &[Value]) -> Result<()> {
        for &v in outputs {
            self.check_value(v, "set_outputs")?;
        }
        self.outputs = outputs.to_vec();
        Ok(())
    }

    /// The function results.
    pub fn outputs(&self) -> &[Value] {
        &self.outputs
    }

    /// Marks argument `param` (a value returned by [`Graph::parameter`]) as donated into result
    /// `output_index` (`tf.aliasing_output`). Types are checked when printing, once outputs are known.
    pub fn set_aliasing_output(&mut self, param: Value, output_index: usize) -> Result<()> {
        let i = self.param_index(param, "set_aliasing_output")?;
        self.arg_attrs[i].aliasing_output = Some(output_index);
        Ok(())
    }

    /// Sets an `mhlo.sharding` string on an argument.
    pub fn set_sharding(&mut self, param: Value, sharding: &str) -> Result<()> {
        let i = self.param_index(param, "set_sharding")?;
        self.arg_attrs[i].sharding = Some(sharding.to_string());
        Ok(())
    }

    /// Argument attributes, one per parameter.
    pub fn arg_attrs(&self) -> &[ArgAttrs] {
        &self.arg_attrs
    }

    /// Sets the `mhlo.num_partitions` / `mhlo.num_replicas` module attributes (default 1 and 1).
    pub fn set_partitions(&mut self, num_partitions: u32, num_replicas: u32) {
        self.num_partitions = num_partitions;
        self.num_replicas = num_replicas;
    }

    fn param_index(&self, v: Value, op: &str) -> Result<usize> {
        self.check_value(v, op)?;
        match &self.nodes[v.node()].prim {
            Prim::Parameter { index, .. } => Ok(*index),
            other => bail!(
                op,
                "value %{} is a {} result, not a parameter",
                v.node,
                other.name()
            ),
        }
    }

    /// The type of a value.
    pub fn ty(&self, v: Value) -> &TensorType {
        &self.nodes[v.node()].outs[v.result()]
    }

    /// The element type of a value.
    pub fn dtype(&self, v: Value) -> DType {
        self.ty(v).dtype
    }

    /// The dimensions of a value.
    pub fn dims(&self, v: Value) -> &[usize] {
        &self.ty(v).dims
    }

    /// All nodes, in topological (creation) order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Result `result` of node `node`, if it exists (for tools that walk the nodes, e.g. to make
    /// intermediate values outputs).
    pub fn value(&self, node: usize, result: usize) -> Option<Value> {
        let n = self.nodes.get(node)?;
        (result < n.outs.len()).then_some(Value {
            node: node as u32,
            res: result as u32,
        })
    }

    /// The node that produced `v`.
    pub fn node_of(&self, v: Value) -> &Node {
        &self.nodes[v.node()]
    }

    /// If `v` is a constant whose every element equals one float, that value.
    pub fn splat_value(&self, v: Value) -> Option<f64> {
        match &self.nodes[v.node()].prim {
            Prim::Constant { lit, .. } => lit.splat_f64(),
            _ => None,
        }
    }

    pub(crate) fn check_value(&self, v: Value, op: &str) -> Result<()> {
        match self.nodes.get(v.node()) {
            Some(n) if v.result() < n.outs.len() => Ok(()),
            _ => bail!(op, "value {v:?} does not belong to this graph"),
        }
    }

    fn push_unchecked(&mut self, prim: Prim, inputs: Vec<Value>, outs: Vec<TensorType>) -> Value {
        self.nodes.push(Node { prim, inputs, outs });
        Value {
            node: (self.nodes.len() - 1) as u32,
            res: 0,
        }
    }

    /// Adds a node after checking its shape rule; returns all its results. Constants are de-duplicated and
    /// trivially foldable nodes (see `fold`) are replaced by existing values or new constants.
    pub(crate) fn push(&mut self, prim: Prim, inputs: Vec<Value>) -> Result<Vec<Value>> {
        for &v in &inputs {
            self.check_value(v, prim.name())?;
        }
        let in_tys: Vec<&TensorType> = inputs.iter().map(|&v| self.ty(v)).collect();
        let outs = prims::infer(&prim, &in_tys)?;
        if let Some(v) = crate::fold::fold(self, &prim, &inputs, &outs)? {
            return Ok(vec![v]);
        }
        if let Prim::Constant { ty, lit } = &prim {
            let key = (ty.clone(), lit.key());
            if let Some(&v) = self.consts.get(&key) {
                return Ok(vec![v]);
            }
            let v = self.push_unchecked(prim, inputs, outs);
            self.consts.insert(key, v);
            return Ok(vec![v]);
        }
        // Pure primitives applied to the same operands with the same attributes are built once.
        let key = match &prim {
            Prim::CustomVjp(_) | Prim::Parameter { .. } | Prim::Constant { .. } => None,
            _ => Some((format!("{prim:?}"), inputs.clone())),
        };
        let node = match key.as_ref().and_then(|k| self.cse.get(k)) {
            Some(v) => v.node,
            None => {
                let v = self.push_unchecked(prim, inputs, outs.clone());
                if let Some(k) = key {
                    self.cse.insert(k, v);
                }
                v.node
            }
        };
        Ok((0..outs.len() as u32)
            .map(|res| Value { node, res })
            .collect())
    }

    /// [`Graph::push`] for single-result primitives.
    pub(crate) fn push1(&mut self, prim: Prim, inputs: Vec<Value>) -> Result<Value> {
        Ok(self.push(prim, inputs)?[0])
    }

    /// A constant of type `ty` holding `lit` (a splat, or exactly `numel` elements row-major).
    pub fn constant(&mut self, ty: &TensorType, lit: Literal) -> Result<Value> {
        lit.check(ty)?;
        self.push1(
            Prim::Constant {
                ty: ty.clone(),
                lit,
            },
            vec![],
        )
    }

    /// A constant tensor whose every element is `value` (rounded to float types; integers must be exact).
    pub fn full(&mut self, value: f64, ty: &TensorType) -> Result<Value> {
        let lit = Literal::splat(value, ty.dtype)?;
        self.constant(ty, lit)
    }

    /// A rank-0 constant.
    pub fn scalar(&mut self, value: f64, dtype: DType) -> Result<Value> {
        self.full(value, &TensorType::scalar(dtype))
    }

    /// A constant with the type of `like` whose every element is `value`.
    pub fn full_like(&mut self, value: f64, like: Value) -> Result<Value> {
        let ty = self.ty(like).clone();
        self.full(value, &ty)
    }

    /// Zeros with the type of `like`.
    pub fn zeros_like(&mut self, like: Value) -> Result<Value> {
        self.full_like(0.0, like)
    }

    /// Ones with the type of `like`.
    pub fn ones_like(&mut self, like: Value) -> Result<Value> {
        self.full_like(1.0, like)
    }

    /// A dense constant from `f64` values (row-major, `numel` of them), converted to `ty.dtype`.
    pub fn constant_f64(&mut self, values: &[f64], ty: &TensorType) -> Result<Value> {
        let lit = Literal::from_f64s(values, ty.dtype)?;
        if lit.len() != ty.numel() {
            bail!(
                "constant",
                "{} values given for type {ty} with {} elements",
                values.len(),
                ty.numel()
            );
        }
        self.constant(ty, lit)
    }

    /// The values that `outputs` depend on, as a per-node liveness mask (parameters are always live).
    pub fn live_nodes(&self) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        for &v in &self.outputs {
            live[v.node()] = true;
        }
        for &p in &self.params {
            live[p.node()] = true;
        }
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for v in &self.nodes[i].inputs {
                    live[v.node()] = true;
                }
            }
        }
        live
    }
}
