//! Elaboration: the one walk over a [`NetSpec`]. It evaluates every expression, expands every block
//! (prelude and the file's own), repeat and guard, and infers every shape; the result is a tree of
//! [`Node`]s whose leaves are core layers with their parameters (names, shapes, init, decay), BN
//! buffers and FLOPs. Everything downstream reads this tree: `spec::params`/`buffers`, the summary,
//! the lowering (`nn`) and the JAX export (`jaxgen`). Nothing else knows a block's structure.
//!
//! Naming: a top-level layer is `l{index}` (or its label); inside a body a labelled call adds its
//! label to the path, an unlabelled one shares the body's path (its parameters must not collide with
//! a sibling's); `repeat` names its copies `b0`, `b1`, …; `add`'s projection is `down` (`down.conv`,
//! `down.bn`). Parameter names are `{path}.{name}` (`l4.b0.conv1.w`).

use std::collections::{HashMap, HashSet};

use crate::analyze::{ParamSpec, Shape, MAX_BLOCKS, MAX_DIM, MAX_ELEMS};
use crate::ast::{
    make_divisible, Act, BinOp, BlockDef, Call, Expr, Join, NetSpec, Pos, Stmt, Ty, Value,
};
use crate::core::{self, join, Def, Layer};

/// Most nodes a network may expand to (keeps hostile specs small).
pub const MAX_NODES: usize = 100_000;
/// Deepest nesting of block calls.
pub const MAX_DEPTH: usize = 64;

/// One part of an elaborated network.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where its parameters live (`l4.b0.conv1`); the path of its enclosing call when unlabelled.
    pub path: String,
    /// What was called: a core layer, a combinator or a block name.
    pub kind: String,
    pub input: Shape,
    pub output: Shape,
    /// Forward FLOPs per example of this node alone (a layer; the sum or join of a combinator).
    pub flops: u64,
    pub op: Op,
}

/// What a node computes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A core layer and its own parameters and BN buffers (ABI order).
    Layer {
        layer: Layer,
        params: Vec<ParamSpec>,
        buffers: Vec<ParamSpec>,
    },
    /// The children in order (a block call, `seq`, `repeat`, one copy of a repeat, `add when=false`).
    Seq(Vec<Node>),
    /// `body(x) + x`, or `body(x) + down(x)` when `down` (the projection) is not empty.
    Add { body: Vec<Node>, down: Vec<Node> },
    /// Every branch applied to the input, joined.
    Parallel { join: Join, branches: Vec<Node> },
}

impl Node {
    /// Calls `f` on this node and every node below it, parents first, in order.
    pub fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        f(self);
        match &self.op {
            Op::Layer { .. } => {}
            Op::Seq(ch) | Op::Parallel { branches: ch, .. } => ch.iter().for_each(|c| c.visit(f)),
            Op::Add { body, down } => body.iter().chain(down).for_each(|c| c.visit(f)),
        }
    }

    /// The parameters of this node and below, in ABI order.
    pub fn params(&self) -> Vec<&ParamSpec> {
        self.collect(|op| match op {
            Op::Layer { params, .. } => params.as_slice(),
            Op::Seq(_) | Op::Add { .. } | Op::Parallel { .. } => &[],
        })
    }

    /// The BN buffers of this node and below, in ABI order.
    pub fn buffers(&self) -> Vec<&ParamSpec> {
        self.collect(|op| match op {
            Op::Layer { buffers, .. } => buffers.as_slice(),
            Op::Seq(_) | Op::Add { .. } | Op::Parallel { .. } => &[],
        })
    }

    /// Forward FLOPs per example of this node and below.
    pub fn total_flops(&self) -> u64 {
        let mut n = 0u64;
        self.visit(&mut |c| n = n.saturating_add(c.flops));
        n
    }

    fn collect<'a>(&'a self, of: impl Fn(&'a Op) -> &'a [ParamSpec]) -> Vec<&'a ParamSpec> {
        let mut v = Vec::new();
        self.visit(&mut |c| v.extend(of(&c.op)));
        v
    }
}

/// Why elaboration failed: the message, the path being elaborated and the innermost position in
/// the spec file (not the prelude) that was being elaborated.
#[derive(Debug)]
pub(crate) struct Fail {
    pub path: String,
    pub pos: Pos,
    pub msg: String,
}

/// The variables of a body: block parameters, `in`, `inH`, `inW`, `let`s, `i` in a repeat.
#[derive(Clone, Default)]
struct Env {
    vars: Vec<(String, Value)>,
}

impl Env {
    fn get(&self, name: &str) -> Option<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
    fn with(&self, name: &str, v: Value) -> Env {
        let mut e = self.clone();
        e.vars.push((name.to_string(), v));
        e
    }
}

/// The walker: the block definitions in scope and what the network has used up so far.
pub(crate) struct Elab<'s> {
    blocks: HashMap<&'s str, &'s BlockDef>,
    nodes: usize,
    depth: usize,
    names: HashSet<String>,
    total: usize,
}

impl<'s> Elab<'s> {
    pub fn new(spec: &'s NetSpec) -> Elab<'s> {
        let blocks = crate::prelude::blocks()
            .iter()
            .chain(&spec.blocks)
            .map(|b| (b.name.as_str(), b))
            .collect();
        Elab {
            blocks,
            nodes: 0,
            depth: 0,
            names: HashSet::new(),
            total: 0,
        }
    }

    /// The top-level layer `call` named `path`, applied to `x`.
    pub fn layer(&mut self, call: &Call, path: String, x: Shape) -> Result<Node, Fail> {
        let pos = call.pos;
        let node = self.call(call, &Env::default(), path.clone(), x, pos)?;
        node.ok_or_else(|| Fail {
            path,
            pos,
            msg: "a top-level layer cannot have an `if` guard".into(),
        })
    }

    /// A call in a body with variables `env`; `None` when its guard is false.
    fn call(
        &mut self,
        c: &Call,
        env: &Env,
        path: String,
        x: Shape,
        upos: Pos,
    ) -> Result<Option<Node>, Fail> {
        let upos = if c.pos.prelude || c.pos.line == 0 {
            upos
        } else {
            c.pos
        };
        let fail = |msg: String| Fail {
            path: path.clone(),
            pos: upos,
            msg,
        };
        if let Some(g) = &c.guard {
            if !eval_bool(g, env).map_err(fail)? {
                return Ok(None);
            }
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(fail(format!(
                "the network expands to more than {MAX_NODES} layers; use fewer `blocks`/`repeat`s"
            )));
        }
        if let Some(e) = c.arg("in") {
            let stated = eval(e, env).map_err(fail)?;
            let f = x.features();
            if stated != Value::Int(f as i64) {
                let what = match x {
                    Shape::Image { .. } => "input channels",
                    Shape::Tokens { .. } => "token dim",
                    Shape::Flat { .. } => "input features",
                };
                return Err(fail(format!(
                    "states in={stated} but its input is {x} ({f} {what}); change `in=` or the previous layer's output size"
                )));
            }
        }
        let (output, flops, op) = if let Some(sig) = core::sig(&c.op) {
            let vals = core_args(sig, c, env).map_err(fail)?;
            if !sig.body && !c.body.is_empty() {
                return Err(fail(format!("`{}` takes no indented body", c.op)));
            }
            match c.op.as_str() {
                "seq" => {
                    let (body, y) = self.body(&c.body, env, &path, x, upos)?;
                    (y, 0, Op::Seq(body))
                }
                "add" => self.add(c, &vals, env, &path, x, upos)?,
                "parallel" => {
                    let Value::Join(j) = vals[0] else {
                        return Err(fail("`parallel` needs a join".into()));
                    };
                    let mut branches = Vec::new();
                    for s in &c.body {
                        let Stmt::Call(b) = s else {
                            return Err(fail(
                                "the body of `parallel` holds branches (calls) only; put `let` and `require` in a block".into(),
                            ));
                        };
                        let bp = b.label.as_ref().map_or(path.clone(), |l| join(&path, l));
                        if let Some(n) = self.call(b, env, bp, x, upos)? {
                            branches.push(n);
                        }
                    }
                    if branches.is_empty() {
                        return Err(fail("`parallel` has no branch left".into()));
                    }
                    let ys: Vec<Shape> = branches.iter().map(|b| b.output).collect();
                    let y = core::join_shapes(j, &ys).map_err(fail)?;
                    let flops = match j {
                        Join::Concat => 0,
                        Join::Mul | Join::Add => y.elems() as u64 * (ys.len() as u64 - 1),
                    };
                    (y, flops, Op::Parallel { join: j, branches })
                }
                "repeat" => {
                    let n = match vals[0] {
                        Value::Int(n) if n as usize <= MAX_BLOCKS => n as usize,
                        v => {
                            return Err(fail(format!(
                                "`repeat` takes between 1 and {MAX_BLOCKS} copies, got {v}"
                            )))
                        }
                    };
                    let mut copies = Vec::with_capacity(n);
                    let mut y = x;
                    for j in 0..n {
                        let p = join(&path, &format!("b{j}"));
                        let e = env.with("i", Value::Int(j as i64));
                        let (body, out) = self.body(&c.body, &e, &p, y, upos)?;
                        copies.push(Node {
                            path: p,
                            kind: "seq".into(),
                            input: y,
                            output: out,
                            flops: 0,
                            op: Op::Seq(body),
                        });
                        y = out;
                    }
                    (y, 0, Op::Seq(copies))
                }
                name => {
                    let layer = Layer::build(name, &vals).map_err(fail)?;
                    let r = layer.infer(&path, x).map_err(fail)?;
                    for p in &r.params {
                        self.own(p).map_err(fail)?;
                    }
                    let op = Op::Layer {
                        layer,
                        params: r.params,
                        buffers: r.buffers,
                    };
                    (r.out, r.flops, op)
                }
            }
        } else if let Some(&def) = self.blocks.get(c.op.as_str()) {
            let benv = block_env(def, c, env, x).map_err(fail)?;
            if !c.body.is_empty() {
                return Err(fail(format!("`{}` takes no indented body", c.op)));
            }
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(fail(format!(
                    "blocks nest more than {MAX_DEPTH} deep (does `{}` call itself?)",
                    c.op
                )));
            }
            let (body, y) = self.body(&def.body, &benv, &path, x, upos)?;
            self.depth -= 1;
            (y, 0, Op::Seq(body))
        } else {
            return Err(fail(format!("unknown layer `{}`", c.op)));
        };
        crate::analyze::checked_elems(&output.dims()).map_err(fail)?;
        Ok(Some(Node {
            path,
            kind: c.op.clone(),
            input: x,
            output,
            flops,
            op,
        }))
    }

    /// The statements of a body applied in turn to `x`: the nodes and the output shape.
    fn body(
        &mut self,
        stmts: &[Stmt],
        env: &Env,
        path: &str,
        mut x: Shape,
        upos: Pos,
    ) -> Result<(Vec<Node>, Shape), Fail> {
        let mut env = env.clone();
        let mut nodes = Vec::new();
        for s in stmts {
            match s {
                Stmt::Call(c) => {
                    let p = c.label.as_ref().map_or(path.to_string(), |l| join(path, l));
                    if let Some(n) = self.call(c, &env, p, x, upos)? {
                        x = n.output;
                        nodes.push(n);
                    }
                }
                Stmt::Let { pos, name, value } => {
                    let v = eval(value, &env).map_err(|msg| Fail {
                        path: path.to_string(),
                        pos: if pos.prelude { upos } else { *pos },
                        msg: format!("`let {name}`: {msg}"),
                    })?;
                    env = env.with(name, v);
                }
                Stmt::Require { pos, cond, message } => {
                    let fail = |msg: String| Fail {
                        path: path.to_string(),
                        pos: if pos.prelude { upos } else { *pos },
                        msg,
                    };
                    if !eval_bool(cond, &env).map_err(fail)? {
                        return Err(fail(interpolate(message, &env)));
                    }
                }
            }
        }
        Ok((nodes, x))
    }

    /// `add`: the body, then the sum with the input or its projection.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        c: &Call,
        vals: &[Value],
        env: &Env,
        path: &str,
        x: Shape,
        upos: Pos,
    ) -> Result<(Shape, u64, Op), Fail> {
        let (Value::Int(stride), Value::Bool(when)) = (vals[0], vals[1]) else {
            return Err(Fail {
                path: path.to_string(),
                pos: upos,
                msg: "`add` takes a whole-number stride and a true/false `when`".into(),
            });
        };
        let stride = stride as usize;
        let (body, y) = self.body(&c.body, env, path, x, upos)?;
        if !when {
            return Ok((y, 0, Op::Seq(body)));
        }
        let mut down = Vec::new();
        if y != x {
            // The projection: a 1×1 conv (stride `stride`, no bias) to the body's channels, then BN.
            let fail = |msg: String| Fail {
                path: join(path, "down"),
                pos: upos,
                msg,
            };
            let Shape::Image { c: out, .. } = y else {
                return Err(Fail {
                    path: path.to_string(),
                    pos: upos,
                    msg: format!(
                        "`add` needs its body to keep the shape of a non-image input, but it maps {x} to {y}"
                    ),
                });
            };
            let conv = Layer::Conv2d {
                out,
                kernel: 1,
                stride,
                pad: 0,
                groups: 1,
                bias: false,
                act: Act::Identity,
            };
            let mut h = x;
            for (layer, name) in [(conv, "down.conv"), (Layer::BatchNorm, "down.bn")] {
                let p = join(path, name);
                let r = layer.infer(&p, h).map_err(fail)?;
                for q in &r.params {
                    self.own(q).map_err(fail)?;
                }
                down.push(Node {
                    path: p,
                    kind: layer.name().into(),
                    input: h,
                    output: r.out,
                    flops: r.flops,
                    op: Op::Layer {
                        layer,
                        params: r.params,
                        buffers: r.buffers,
                    },
                });
                h = r.out;
            }
            if h != y {
                return Err(fail(format!(
                    "the body maps {x} to {y}, but the 1×1 projection with stride {stride} gives {h}; give `add` the body's stride (`stride=`)"
                )));
            }
        }
        Ok((y, y.elems() as u64, Op::Add { body, down }))
    }

    /// Registers a parameter name and its size.
    fn own(&mut self, p: &ParamSpec) -> Result<(), String> {
        if !self.names.insert(p.name.clone()) {
            return Err(format!(
                "two parts of the network own a parameter named `{}`; give one of them a label (`name: …`)",
                p.name
            ));
        }
        self.total = self
            .total
            .checked_add(p.numel())
            .filter(|&t| t <= usize::MAX / 8)
            .ok_or("parameter count overflows")?;
        Ok(())
    }
}

/// The values of a core call's arguments in table order, checked against their types.
fn core_args(sig: &core::Sig, c: &Call, env: &Env) -> Result<Vec<Value>, String> {
    check_arg_names(c, sig.args.iter().map(|a| a.name), sig.takes_in)?;
    sig.args
        .iter()
        .map(|a| match (c.arg(a.name), a.default) {
            (Some(e), d) => typed(a.name, a.ty, eval(e, env)?, d == Def::Auto),
            (None, Def::Is(v)) => Ok(v),
            (None, Def::Auto) => Ok(Value::Auto),
            (None, Def::Required) => Err(format!("`{}` needs `{}=`", c.op, a.name)),
        })
        .collect()
}

/// The variables of a block's body for this call: the parameters (arguments evaluated in the
/// caller's `env`, defaults in the block's own), `in`, and `inH`, `inW` for an image input.
fn block_env(def: &BlockDef, c: &Call, env: &Env, x: Shape) -> Result<Env, String> {
    check_arg_names(c, def.params.iter().map(|p| p.name.as_str()), true)?;
    let mut benv = Env::default().with("in", Value::Int(x.features() as i64));
    if let Shape::Image { h, w, .. } = x {
        benv = benv
            .with("inH", Value::Int(h as i64))
            .with("inW", Value::Int(w as i64));
    }
    for p in &def.params {
        let auto_ok = p.default == Some(Expr::Auto);
        let v = match (c.arg(&p.name), &p.default) {
            (Some(e), _) => eval(e, env)?,
            (None, Some(d)) => eval(d, &benv)?,
            (None, None) => return Err(format!("`{}` needs `{}=`", c.op, p.name)),
        };
        benv = benv.with(&p.name, typed(&p.name, p.ty, v, auto_ok)?);
    }
    Ok(benv)
}

fn check_arg_names<'a>(
    c: &Call,
    names: impl Iterator<Item = &'a str> + Clone,
    takes_in: bool,
) -> Result<(), String> {
    for (n, _) in &c.args {
        if !(names.clone().any(|a| a == n) || (takes_in && n == "in")) {
            return Err(format!("unknown argument `{n}` for `{}`", c.op));
        }
    }
    Ok(())
}

/// `v` as a value of type `ty` for the argument `name` (whole numbers are reals where reals are wanted).
pub(crate) fn typed(name: &str, ty: Ty, v: Value, auto_ok: bool) -> Result<Value, String> {
    let bad = || Err(format!("`{name}` must be a {}, got {v}", ty.describe()));
    match (ty, v) {
        (_, Value::Auto) if auto_ok => Ok(v),
        (Ty::Int | Ty::Int0, Value::Int(i)) => {
            let min = if ty == Ty::Int { 1 } else { 0 };
            if i < min {
                Err(format!("`{name}` must be at least {min}, got {i}"))
            } else if i > MAX_DIM as i64 {
                Err(format!("`{name}` = {i} is too large (at most {MAX_DIM})"))
            } else {
                Ok(v)
            }
        }
        (Ty::Real, Value::Int(i)) => Ok(Value::Real(i as f64)),
        (Ty::Real, Value::Real(_)) => Ok(v),
        (Ty::Rate, Value::Int(_) | Value::Real(_)) => {
            let r = match v {
                Value::Int(i) => i as f64,
                Value::Real(r) => r,
                _ => 0.0,
            };
            if (0.0..1.0).contains(&r) {
                Ok(Value::Real(r))
            } else {
                Err(format!("`{name}` must be a rate in [0, 1), got {v}"))
            }
        }
        (Ty::Bool, Value::Bool(_)) | (Ty::Act, Value::Act(_)) | (Ty::Join, Value::Join(_)) => Ok(v),
        (
            Ty::Int | Ty::Int0 | Ty::Real | Ty::Rate | Ty::Bool | Ty::Act | Ty::Join,
            Value::Int(_)
            | Value::Real(_)
            | Value::Bool(_)
            | Value::Act(_)
            | Value::Join(_)
            | Value::Auto,
        ) => bad(),
    }
}

fn eval_bool(e: &Expr, env: &Env) -> Result<bool, String> {
    match eval(e, env)? {
        Value::Bool(b) => Ok(b),
        v => Err(format!("a condition must be true or false, got {v}")),
    }
}

fn num(v: Value) -> Result<f64, String> {
    match v {
        Value::Int(i) => Ok(i as f64),
        Value::Real(r) => Ok(r),
        other => Err(format!("expected a number, got {other}")),
    }
}

/// The value of an expression.
fn eval(e: &Expr, env: &Env) -> Result<Value, String> {
    let overflow = || "a whole number overflows".to_string();
    Ok(match e {
        Expr::Int(i) => Value::Int(*i),
        Expr::Real(r) => Value::Real(*r),
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Auto => Value::Auto,
        Expr::Name(n) => match env.get(n) {
            Some(v) => v,
            None => match (Act::from_name(n), Join::from_name(n)) {
                (Some(a), _) => Value::Act(a),
                (None, Some(j)) => Value::Join(j),
                (None, None) if n == "inH" || n == "inW" => {
                    return Err(format!(
                        "`{n}` is defined only when the block's input is an image"
                    ))
                }
                (None, None) => return Err(format!("unknown name `{n}`")),
            },
        },
        Expr::Neg(a) => match eval(a, env)? {
            Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(overflow)?),
            v => Value::Real(-num(v)?),
        },
        Expr::Not(a) => Value::Bool(!eval_bool(a, env)?),
        Expr::If(then, cond, other) => {
            if eval_bool(cond, env)? {
                eval(then, env)?
            } else {
                eval(other, env)?
            }
        }
        Expr::Bin(op, a, b) => {
            if let BinOp::And | BinOp::Or = op {
                let a = eval_bool(a, env)?;
                // short-circuit, as Python
                return Ok(Value::Bool(match op {
                    BinOp::And => a && eval_bool(b, env)?,
                    _ => a || eval_bool(b, env)?,
                }));
            }
            binary(*op, eval(a, env)?, eval(b, env)?)?
        }
        Expr::Call(f, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, env))
                .collect::<Result<Vec<_>, _>>()?;
            call_fn(f, &vals)?
        }
    })
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, String> {
    use BinOp::*;
    let text = op.text();
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let r = match op {
            Add => x.checked_add(y),
            Sub => x.checked_sub(y),
            Mul => x.checked_mul(y),
            FloorDiv | Rem if y == 0 => return Err(format!("`{x} {text} 0` divides by zero")),
            FloorDiv => Some(x.div_euclid(y)),
            Rem => Some(x.rem_euclid(y)),
            Div | Eq | Ne | Lt | Le | Gt | Ge | And | Or => None,
        };
        if let Some(r) = r {
            return Ok(Value::Int(r));
        }
        if matches!(op, Add | Sub | Mul) {
            return Err(format!("`{x} {text} {y}` overflows"));
        }
    }
    match op {
        Eq | Ne => {
            let same = match (a, b) {
                (Value::Int(_) | Value::Real(_), Value::Int(_) | Value::Real(_)) => {
                    num(a)? == num(b)?
                }
                _ if std::mem::discriminant(&a) == std::mem::discriminant(&b) => a == b,
                _ => return Err(format!("cannot compare {a} with {b}")),
            };
            Ok(Value::Bool(same == (op == Eq)))
        }
        Lt | Le | Gt | Ge => {
            let (x, y) = (num(a)?, num(b)?);
            Ok(Value::Bool(match op {
                Lt => x < y,
                Le => x <= y,
                Gt => x > y,
                _ => x >= y,
            }))
        }
        Add | Sub | Mul | Div => {
            let (x, y) = (num(a)?, num(b)?);
            let r = match op {
                Add => x + y,
                Sub => x - y,
                Mul => x * y,
                _ if y == 0.0 => return Err(format!("`{a} / {b}` divides by zero")),
                _ => x / y,
            };
            if !r.is_finite() {
                return Err(format!("`{a} {text} {b}` is not a finite number"));
            }
            Ok(Value::Real(r))
        }
        FloorDiv | Rem => Err(format!("`{text}` takes whole numbers, got {a} and {b}")),
        And | Or => unreachable!("handled with short-circuit"),
    }
}

/// The functions of the language: `max`, `min`, `makeDivisible`.
pub(crate) const FUNCTIONS: [&str; 3] = ["max", "min", "makeDivisible"];

fn call_fn(f: &str, v: &[Value]) -> Result<Value, String> {
    match f {
        "max" | "min" if !v.is_empty() => {
            let mut best = v[0];
            for &x in &v[1..] {
                let better = if f == "max" { num(x)? > num(best)? } else { num(x)? < num(best)? };
                if better {
                    best = x;
                }
            }
            num(best)?;
            Ok(best)
        }
        "makeDivisible" => match v {
            [Value::Int(x), Value::Int(d)] if (0..=MAX_ELEMS as i64).contains(x) && (1..=MAX_DIM as i64).contains(d) => {
                Ok(Value::Int(make_divisible(*x as usize, *d as usize) as i64))
            }
            _ => Err(format!(
                "`makeDivisible(v, d)` takes a whole number 0 ≤ v ≤ {MAX_ELEMS} and a divisor 1 ≤ d ≤ {MAX_DIM}"
            )),
        },
        _ => Err(format!(
            "unknown function `{f}` with {} arguments; the functions are max(a, b, …), min(a, b, …), makeDivisible(v, d)",
            v.len()
        )),
    }
}

/// `message` with every `{name}` replaced by the variable's value.
fn interpolate(message: &str, env: &Env) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(a) = rest.find('{') {
        out.push_str(&rest[..a]);
        match rest[a..].find('}') {
            Some(b) => {
                let name = &rest[a + 1..a + b];
                match env.get(name) {
                    Some(v) => out.push_str(&v.to_string()),
                    None => out.push_str(&rest[a..=a + b]),
                }
                rest = &rest[a + b + 1..];
            }
            None => {
                out.push_str(&rest[a..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
