//! The VJP case table of `tests/vjp.rs`, shared with the interpreter's agreement tests
//! (`crates/interp/tests/prims.rs` includes this file by path): every primitive on random shapes and
//! configurations, seeded, and the check module each case builds: f(x + εt), f(x − εt), Jᵀc and, for
//! linear / bilinear primitives, J·t (f with the linear operand(s) replaced by t).
#![allow(dead_code)]

use graph::{
    vjp, BinaryOp, CmpDir, ConvDims, ConvSpec, DType, DotDims, Graph, ReduceOp, Result, TensorType,
    UnaryOp, Value, Window,
};

use crate::harness::Rng;

#[derive(Clone, Copy, Debug)]
pub enum Gen {
    Normal,
    Positive,
    AwayFromZero,
    OffGrid,
    Distinct,
}

pub struct Input {
    pub ty: TensorType,
    pub gen: Gen,
    pub diff: bool,
}

pub fn inp(dims: &[usize], gen: Gen) -> Input {
    Input {
        ty: TensorType::new(DType::F64, dims),
        gen,
        diff: true,
    }
}

pub type Build = Box<dyn Fn(&mut Graph, &[Value]) -> Result<Value>>;

pub struct Inst {
    pub label: String,
    pub inputs: Vec<Input>,
    pub build: Build,
    /// Groups of operands in which f is (jointly) linear, for the adjoint check.
    pub linear: Vec<Vec<usize>>,
    pub eps: f64,
    pub tol_fd: f64,
    pub tol_adj: f64,
}

pub fn inst(label: impl Into<String>, inputs: Vec<Input>, build: Build) -> Inst {
    Inst {
        label: label.into(),
        inputs,
        build,
        linear: vec![],
        eps: 1e-6,
        tol_fd: 1e-6,
        tol_adj: 1e-12,
    }
}

impl Inst {
    fn linear(mut self, groups: &[&[usize]]) -> Inst {
        self.linear = groups.iter().map(|g| g.to_vec()).collect();
        self
    }
}

pub fn gen_data(rng: &mut Rng, n: usize, gen: Gen) -> Vec<f64> {
    match gen {
        Gen::Normal => (0..n).map(|_| rng.normal()).collect(),
        Gen::Positive => (0..n).map(|_| 0.5 + 1.5 * rng.uniform()).collect(),
        Gen::AwayFromZero => (0..n)
            .map(|_| (0.5 + 1.5 * rng.uniform()) * if rng.coin() { 1.0 } else { -1.0 })
            .collect(),
        Gen::OffGrid => (0..n)
            .map(|_| (rng.range(0, 6) as f64 - 3.0) + 0.2 + 0.6 * rng.uniform())
            .collect(),
        Gen::Distinct => rng
            .perm(n)
            .into_iter()
            .map(|p| (p as f64 - n as f64 / 2.0) * 0.05)
            .collect(),
    }
}

/// The module of one case and what its inputs are.
pub struct Check {
    pub graph: Graph,
    /// Operands that are differentiated (indices into `Inst::inputs`).
    pub diff: Vec<usize>,
    /// The output (and cotangent) type.
    pub out: TensorType,
}

/// Builds the check module of `c`: parameters x…, t… (one per differentiated operand), c; outputs
/// f(x+εt), f(x−εt), Jᵀc… (per differentiated operand), then J·t per linear group.
pub fn build(c: &Inst) -> std::result::Result<Check, String> {
    let mut g = Graph::new("vjp_check");
    let (diff, out, outs) = build_into(&mut g, c)?;
    g.set_outputs(&outs).map_err(|e| e.to_string())?;
    Ok(Check {
        graph: g,
        diff,
        out,
    })
}

/// [`build`]'s parameters and nodes appended to `g` (which may hold other cases); returns the
/// differentiated operands, the output type and the case's outputs.
pub fn build_into(
    g: &mut Graph,
    c: &Inst,
) -> std::result::Result<(Vec<usize>, TensorType, Vec<Value>), String> {
    let xs: Vec<Value> = c.inputs.iter().map(|i| g.parameter(i.ty.clone())).collect();
    let diff: Vec<usize> = (0..xs.len()).filter(|&i| c.inputs[i].diff).collect();
    let ts: Vec<Value> = diff
        .iter()
        .map(|&i| g.parameter(c.inputs[i].ty.clone()))
        .collect();
    let err = |e: graph::Error| e.to_string();
    let y = (c.build)(g, &xs).map_err(err)?;
    let yty = g.ty(y).clone();
    let ct = g.parameter(yty.clone());
    // f(x ± εt)
    let shifted = |g: &mut Graph, sign: f64| -> Result<Value> {
        let mut args = xs.clone();
        for (k, &i) in diff.iter().enumerate() {
            let e = g.full_like(sign * c.eps, xs[i])?;
            let d = g.mul(e, ts[k])?;
            args[i] = g.add(xs[i], d)?;
        }
        (c.build)(g, &args)
    };
    let yp = shifted(g, 1.0).map_err(err)?;
    let ym = shifted(g, -1.0).map_err(err)?;
    let wrt: Vec<Value> = diff.iter().map(|&i| xs[i]).collect();
    let grads = vjp(g, &[y], &[ct], &wrt).map_err(err)?;
    let mut outs = vec![yp, ym];
    outs.extend(&grads);
    for group in &c.linear {
        let mut args = xs.clone();
        for &i in group {
            args[i] = ts[diff
                .iter()
                .position(|&d| d == i)
                .expect("linear operand must be differentiated")];
        }
        outs.push((c.build)(g, &args).map_err(err)?);
    }
    Ok((diff, yty, outs))
}

/// Host data for a check module's parameters: x (per the case's generators), t (normal), c (normal).
pub struct Draw {
    pub x: Vec<Vec<f64>>,
    pub t: Vec<Vec<f64>>,
    pub c: Vec<f64>,
}

impl Draw {
    pub fn new(rng: &mut Rng, inst: &Inst, diff: &[usize], out: &TensorType) -> Draw {
        let x = inst
            .inputs
            .iter()
            .map(|i| gen_data(rng, i.ty.numel(), i.gen))
            .collect();
        let t = diff
            .iter()
            .map(|&i| gen_data(rng, inst.inputs[i].ty.numel(), Gen::Normal))
            .collect();
        let c = gen_data(rng, out.numel(), Gen::Normal);
        Draw { x, t, c }
    }

    /// (type, data) of every parameter of the check module, in order.
    pub fn params<'a>(
        &'a self,
        inst: &'a Inst,
        diff: &[usize],
        out: &'a TensorType,
    ) -> Vec<(&'a TensorType, &'a [f64])> {
        let mut p: Vec<(&TensorType, &[f64])> = inst
            .inputs
            .iter()
            .zip(&self.x)
            .map(|(i, d)| (&i.ty, d.as_slice()))
            .collect();
        p.extend(
            diff.iter()
                .zip(&self.t)
                .map(|(&i, d)| (&inst.inputs[i].ty, d.as_slice())),
        );
        p.push((out, self.c.as_slice()));
        p
    }
}

pub const SHAPES_PER_CASE: usize = 3;

/// Every case, drawn from `rng`: each elementwise op on a few shapes, then the structural primitives
/// (their configuration variants cycled).
pub fn all_cases(rng: &mut Rng) -> Vec<(String, Inst)> {
    let rng = &mut *rng;
    let mut cases: Vec<(String, Inst)> = Vec::new();
    for &op in UnaryOp::ALL {
        if let Some((gen, linear)) = unary_case(op) {
            for _ in 0..SHAPES_PER_CASE {
                let d = rand_dims(rng, 0, 3);
                let mut c = inst(
                    format!("{d:?}"),
                    vec![inp(&d, gen)],
                    Box::new(move |g, x| g.unary(op, x[0])),
                );
                if linear {
                    c = c.linear(&[&[0]]);
                }
                cases.push((op.mlir().to_string(), c));
            }
        }
    }
    for &op in BinaryOp::ALL {
        if let Some((ga, gb, linear)) = binary_case(op) {
            for _ in 0..SHAPES_PER_CASE {
                let d = rand_dims(rng, 0, 3);
                let c = inst(
                    format!("{d:?}"),
                    vec![inp(&d, ga), inp(&d, gb)],
                    Box::new(move |g, x| g.binary(op, x[0], x[1])),
                );
                cases.push((op.mlir().to_string(), c.linear(linear)));
            }
        }
    }
    for (name, make) in structural_cases() {
        let n = match name {
            "convolution" => 2 * CONV_VARIANTS,
            "dot_general" | "reduce_window(sum)" | "reduce_window(max)" | "reduce_window(min)"
            | "select_and_scatter" => 2 * SHAPES_PER_CASE,
            _ => SHAPES_PER_CASE,
        };
        for i in 0..n {
            cases.push((name.to_string(), make(rng, i)));
        }
    }

    cases
}

fn rand_dims(rng: &mut Rng, rank_lo: usize, rank_hi: usize) -> Vec<usize> {
    let r = rng.range(rank_lo, rank_hi);
    (0..r).map(|_| rng.range(1, 4)).collect()
}

// ---------------------------------------------------------------------------------------------------
// The test table for elementwise ops: one line per op (an exhaustive match, so a new op must add one).

/// Input generator and linearity of each unary op; `None` for ops that take no float operands.
fn unary_case(op: UnaryOp) -> Option<(Gen, bool)> {
    match op {
        UnaryOp::Neg => Some((Gen::Normal, true)),
        UnaryOp::Exp => Some((Gen::Normal, false)),
        UnaryOp::Log => Some((Gen::Positive, false)),
        UnaryOp::Sqrt => Some((Gen::Positive, false)),
        UnaryOp::Rsqrt => Some((Gen::Positive, false)),
        UnaryOp::Tanh => Some((Gen::Normal, false)),
        UnaryOp::Logistic => Some((Gen::Normal, false)),
        UnaryOp::Abs => Some((Gen::AwayFromZero, false)),
        UnaryOp::Sign => Some((Gen::AwayFromZero, false)),
        UnaryOp::Floor => Some((Gen::OffGrid, false)),
        UnaryOp::Ceil => Some((Gen::OffGrid, false)),
        UnaryOp::RoundEven => Some((Gen::OffGrid, false)),
        UnaryOp::Cos => Some((Gen::Normal, false)),
        UnaryOp::Sin => Some((Gen::Normal, false)),
        UnaryOp::Log1p => Some((Gen::Positive, false)),
        UnaryOp::Expm1 => Some((Gen::Normal, false)),
        UnaryOp::Erf => Some((Gen::Normal, false)),
        UnaryOp::Not => None,
    }
}

/// Generators of both operands and the linearity groups of each binary op; `None` for integer-only ops.
fn binary_case(op: BinaryOp) -> Option<(Gen, Gen, &'static [&'static [usize]])> {
    match op {
        BinaryOp::Add => Some((Gen::Normal, Gen::Normal, &[&[0, 1]])),
        BinaryOp::Sub => Some((Gen::Normal, Gen::Normal, &[&[0, 1]])),
        BinaryOp::Mul => Some((Gen::Normal, Gen::Normal, &[&[0], &[1]])),
        BinaryOp::Div => Some((Gen::Normal, Gen::AwayFromZero, &[&[0]])),
        BinaryOp::Max => Some((Gen::Normal, Gen::Normal, &[])),
        BinaryOp::Min => Some((Gen::Normal, Gen::Normal, &[])),
        BinaryOp::Pow => Some((Gen::Positive, Gen::Normal, &[])),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => None,
    }
}

// ---------------------------------------------------------------------------------------------------
// Cases for the other primitives. Each `fn(&mut Rng) -> Inst` draws one random configuration.

/// Draw `i` of a case (used to cycle through fixed configuration variants so every one is covered).
type Maker = fn(&mut Rng, usize) -> Inst;

fn structural_cases() -> Vec<(&'static str, Maker)> {
    vec![
        ("convert", |rng, _i| {
            // f32 → f64 and f64 → f32; linear, but f32 rounding limits the accuracy (ε = 1e-2).
            let dims = rand_dims(rng, 1, 3);
            let to32 = rng.coin();
            let ty = TensorType::new(if to32 { DType::F64 } else { DType::F32 }, &dims);
            let mut c = inst(
                format!("{ty} -> {}", if to32 { "f32" } else { "f64" }),
                vec![Input {
                    ty,
                    gen: Gen::Normal,
                    diff: true,
                }],
                Box::new(move |g, x| g.convert(x[0], if to32 { DType::F32 } else { DType::F64 })),
            )
            .linear(&[&[0]]);
            c.eps = 1e-2;
            c.tol_fd = 1e-4;
            c.tol_adj = 1e-5;
            c
        }),
        ("select", |rng, _i| {
            let dims = rand_dims(rng, 0, 3);
            let label = format!("{dims:?}");
            let p = Input {
                ty: TensorType::new(DType::F64, &dims),
                gen: Gen::Normal,
                diff: false,
            };
            inst(
                label,
                vec![p, inp(&dims, Gen::Normal), inp(&dims, Gen::Normal)],
                Box::new(|g, x| {
                    let z = g.zeros_like(x[0])?;
                    let p = g.compare(x[0], z, CmpDir::Gt)?;
                    g.select(p, x[1], x[2])
                }),
            )
            .linear(&[&[1, 2]])
        }),
        ("broadcast_in_dim", |rng, _i| {
            // Operand dims (some of size 1, expanded) map to increasing result dims; other result dims are new.
            let out = rand_dims(rng, 1, 4);
            let mut dims: Vec<usize> = (0..out.len()).filter(|_| rng.coin()).collect();
            if dims.is_empty() {
                dims.push(0);
            }
            let xd: Vec<usize> = dims
                .iter()
                .map(|&d| if rng.coin() { out[d] } else { 1 })
                .collect();
            let label = format!("{xd:?} -> {out:?} dims {dims:?}");
            inst(
                label,
                vec![inp(&xd, Gen::Normal)],
                Box::new(move |g, x| g.broadcast_in_dim(x[0], &out, &dims)),
            )
            .linear(&[&[0]])
        }),
        ("reshape", |rng, _i| {
            let d = rand_dims(rng, 2, 3);
            let out = vec![d[0] * d[1], d[2..].iter().product()];
            inst(
                format!("{d:?} -> {out:?}"),
                vec![inp(&d, Gen::Normal)],
                Box::new(move |g, x| g.reshape(x[0], &out)),
            )
            .linear(&[&[0]])
        }),
        ("transpose", |rng, _i| {
            let d = rand_dims(rng, 2, 4);
            let perm = rng.perm(d.len());
            inst(
                format!("{d:?} perm {perm:?}"),
                vec![inp(&d, Gen::Normal)],
                Box::new(move |g, x| g.transpose(x[0], &perm)),
            )
            .linear(&[&[0]])
        }),
        ("slice", |rng, _i| {
            let d: Vec<usize> = (0..rng.range(1, 3)).map(|_| rng.range(3, 7)).collect();
            let start: Vec<usize> = d.iter().map(|&n| rng.range(0, n - 2)).collect();
            let limit: Vec<usize> = d
                .iter()
                .zip(&start)
                .map(|(&n, &s)| rng.range(s + 1, n))
                .collect();
            let strides: Vec<usize> = d.iter().map(|_| rng.range(1, 3)).collect();
            let label = format!("{d:?} [{start:?}:{limit:?}:{strides:?}]");
            inst(
                label,
                vec![inp(&d, Gen::Normal)],
                Box::new(move |g, x| g.slice(x[0], &start, &limit, &strides)),
            )
            .linear(&[&[0]])
        }),
        ("pad", |rng, _i| {
            // Negative lo/hi crop; interior padding; the padding value is differentiated too.
            let d: Vec<usize> = (0..rng.range(1, 3)).map(|_| rng.range(2, 4)).collect();
            let lo: Vec<i64> = d.iter().map(|_| rng.range(0, 3) as i64 - 1).collect();
            let hi: Vec<i64> = d.iter().map(|_| rng.range(0, 3) as i64 - 1).collect();
            let interior: Vec<usize> = d.iter().map(|_| rng.range(0, 2)).collect();
            let label = format!("{d:?} lo {lo:?} hi {hi:?} interior {interior:?}");
            inst(
                label,
                vec![inp(&d, Gen::Normal), inp(&[], Gen::Normal)],
                Box::new(move |g, x| g.pad(x[0], x[1], &lo, &hi, &interior)),
            )
            .linear(&[&[0, 1]])
        }),
        ("concatenate", |rng, _i| {
            let mut d = rand_dims(rng, 1, 3);
            let dim = rng.range(0, d.len() - 1);
            let n = rng.range(2, 3);
            let inputs: Vec<Input> = (0..n)
                .map(|_| {
                    d[dim] = rng.range(1, 3);
                    inp(&d, Gen::Normal)
                })
                .collect();
            let label = format!("{} operands, dim {dim}", n);
            let all: Vec<usize> = (0..n).collect();
            let mut c = inst(label, inputs, Box::new(move |g, x| g.concatenate(x, dim)));
            c.linear = vec![all];
            c
        }),
        ("reverse", |rng, _i| {
            let d = rand_dims(rng, 1, 3);
            let dims: Vec<usize> = (0..d.len()).filter(|_| rng.coin()).collect();
            let dims = if dims.is_empty() { vec![0] } else { dims };
            inst(
                format!("{d:?} dims {dims:?}"),
                vec![inp(&d, Gen::Normal)],
                Box::new(move |g, x| g.reverse(x[0], &dims)),
            )
            .linear(&[&[0]])
        }),
        ("reduce(sum)", |rng, _i| {
            let d = rand_dims(rng, 1, 4);
            let dims = nonempty_subset(rng, d.len());
            inst(
                format!("{d:?} dims {dims:?}"),
                vec![inp(&d, Gen::Normal)],
                Box::new(move |g, x| g.reduce(x[0], ReduceOp::Sum, &dims)),
            )
            .linear(&[&[0]])
        }),
        ("reduce(max)", |rng, _i| {
            let d = rand_dims(rng, 1, 4);
            let dims = nonempty_subset(rng, d.len());
            inst(
                format!("{d:?} dims {dims:?}"),
                vec![inp(&d, Gen::Distinct)],
                Box::new(move |g, x| g.reduce(x[0], ReduceOp::Max, &dims)),
            )
        }),
        ("reduce(min)", |rng, _i| {
            let d = rand_dims(rng, 1, 4);
            let dims = nonempty_subset(rng, d.len());
            inst(
                format!("{d:?} dims {dims:?}"),
                vec![inp(&d, Gen::Distinct)],
                Box::new(move |g, x| g.reduce(x[0], ReduceOp::Min, &dims)),
            )
        }),
        ("reduce_window(sum)", |rng, i| {
            let (d, w) = random_window(rng, i, true);
            let label = window_label(&d, &w);
            inst(
                label,
                vec![inp(&d, Gen::Normal)],
                Box::new(move |g, x| g.reduce_window(x[0], ReduceOp::Sum, &w)),
            )
            .linear(&[&[0]])
        }),
        ("reduce_window(max)", |rng, i| {
            let (d, w) = random_window(rng, i, false);
            let label = window_label(&d, &w);
            inst(
                label,
                vec![inp(&d, Gen::Distinct)],
                Box::new(move |g, x| g.reduce_window(x[0], ReduceOp::Max, &w)),
            )
        }),
        ("reduce_window(max, dilated)", |rng, i| {
            let (d, w) = dilated_window(rng, i);
            let label = window_label(&d, &w);
            inst(
                label,
                vec![inp(&d, Gen::Distinct)],
                Box::new(move |g, x| g.reduce_window(x[0], ReduceOp::Max, &w)),
            )
        }),
        ("reduce_window(min)", |rng, i| {
            let (d, w) = if i.is_multiple_of(2) {
                random_window(rng, i / 2, false)
            } else {
                dilated_window(rng, i / 2)
            };
            let label = window_label(&d, &w);
            inst(
                label,
                vec![inp(&d, Gen::Distinct)],
                Box::new(move |g, x| g.reduce_window(x[0], ReduceOp::Min, &w)),
            )
        }),
        ("select_and_scatter", |rng, i| {
            // Linear in the source; the operand (distinct values) is differentiated too: its gradient is 0.
            let (d, w) = random_window(rng, i, false);
            let label = window_label(&d, &w);
            let out: Vec<usize> = (0..d.len())
                .map(|i| (d[i] + w.padding[i].0 + w.padding[i].1 - w.dims[i]) / w.strides[i] + 1)
                .collect();
            inst(
                label,
                vec![inp(&d, Gen::Distinct), inp(&out, Gen::Normal)],
                Box::new(move |g, x| g.select_and_scatter(x[0], x[1], &w)),
            )
            .linear(&[&[1]])
        }),
        ("dot_general", |rng, i| {
            let (b, m, k, k2, n) = (
                rng.range(1, 3),
                rng.range(1, 4),
                rng.range(1, 4),
                rng.range(1, 3),
                rng.range(1, 4),
            );
            let (label, l, r, dd) = match i % 4 {
                0 => ("matmul", vec![m, k], vec![k, n], DotDims::matmul()),
                1 => (
                    "batch (1,0), contract (0,2)",
                    vec![k, b, m],
                    vec![b, n, k],
                    DotDims {
                        lhs_batch: vec![1],
                        rhs_batch: vec![0],
                        lhs_contract: vec![0],
                        rhs_contract: vec![2],
                    },
                ),
                2 => (
                    "two contracting dims (0,2)x(1,0)",
                    vec![k, m, k2],
                    vec![k2, k, n],
                    DotDims {
                        lhs_batch: vec![],
                        rhs_batch: vec![],
                        lhs_contract: vec![0, 2],
                        rhs_contract: vec![1, 0],
                    },
                ),
                _ => (
                    "batched matmul + outer batch",
                    vec![b, m, k],
                    vec![b, k, n],
                    DotDims {
                        lhs_batch: vec![0],
                        rhs_batch: vec![0],
                        lhs_contract: vec![2],
                        rhs_contract: vec![1],
                    },
                ),
            };
            let label = format!("{label}: {l:?} x {r:?}");
            inst(
                label,
                vec![inp(&l, Gen::Normal), inp(&r, Gen::Normal)],
                Box::new(move |g, x| g.dot_general(x[0], x[1], &dd)),
            )
            .linear(&[&[0], &[1]])
        }),
        ("convolution", |rng, i| {
            let (label, xd, wd, spec) = conv_case(rng, i);
            inst(
                label,
                vec![inp(&xd, Gen::Normal), inp(&wd, Gen::Normal)],
                Box::new(move |g, x| g.convolution(x[0], x[1], &spec)),
            )
            .linear(&[&[0], &[1]])
        }),
        ("custom_vjp", |rng, _i| {
            // softplus(x) = log(1 + e^x) with the closed-form rule ct · e^x / (1 + e^x), reusing the residual e^x.
            let d = rand_dims(rng, 1, 3);
            inst(
                format!("softplus {d:?}"),
                vec![inp(&d, Gen::Normal)],
                Box::new(|g, x| {
                    let out = g.custom_vjp(
                        "softplus",
                        &x[..1],
                        |g, xs| {
                            let e = g.exp(xs[0])?;
                            Ok((vec![g.log1p(e)?], vec![e]))
                        },
                        |g, cx| {
                            let e = cx.residuals[0];
                            let one = g.ones_like(e)?;
                            let d = g.add(one, e)?;
                            let s = g.div(e, d)?;
                            Ok(vec![Some(g.mul(cx.cotangents[0], s)?)])
                        },
                    )?;
                    Ok(out[0])
                }),
            )
        }),
        ("optimization_barrier", |rng, _i| {
            // Two operands of different shapes; the results are recombined so both cotangents flow.
            let d = rand_dims(rng, 1, 3);
            let e = rand_dims(rng, 1, 2);
            inst(
                format!("{d:?} and {e:?}"),
                vec![inp(&d, Gen::Normal), inp(&e, Gen::Normal)],
                Box::new(|g, x| {
                    let r = g.barrier(&[x[0], x[1]])?;
                    let all: Vec<usize> = (0..g.dims(r[1]).len()).collect();
                    let s = g.sum(r[1], &all)?;
                    let out = g.dims(r[0]).to_vec();
                    let s = g.broadcast_in_dim(s, &out, &[])?;
                    g.add(r[0], s)
                }),
            )
            .linear(&[&[0, 1]])
        }),
    ]
}

fn nonempty_subset(rng: &mut Rng, n: usize) -> Vec<usize> {
    let s: Vec<usize> = (0..n).filter(|_| rng.coin()).collect();
    if s.is_empty() {
        vec![rng.range(0, n - 1)]
    } else {
        s
    }
}

fn window_label(d: &[usize], w: &Window) -> String {
    format!(
        "{d:?} window {:?} strides {:?} pad {:?} base_dil {:?} win_dil {:?}",
        w.dims, w.strides, w.padding, w.base_dilation, w.window_dilation
    )
}

/// A [N, C, H, W] operand with a 2-D window that is overlapping (3×3 / 2×2 stride 1) or not (2×2 stride 2),
/// with padding below the window size; for sums also with base/window dilation.
fn random_window(rng: &mut Rng, i: usize, dilation: bool) -> (Vec<usize>, Window) {
    let d = vec![
        rng.range(1, 2),
        rng.range(1, 2),
        rng.range(4, 7),
        rng.range(4, 7),
    ];
    let (k, s) = match i % 3 {
        0 => (2, 2),
        1 => (3, 2),
        _ => (2, 1),
    };
    let p = rng.range(0, k - 1);
    let mut w = Window::new(&[1, 1, k, k]).strides(&[1, 1, s, s]).padding(&[
        (0, 0),
        (0, 0),
        (p, k - 1 - p),
        (p, 0),
    ]);
    if dilation && i % 2 == 1 {
        w = w
            .base_dilation(&[1, 1, rng.range(1, 2), 2])
            .window_dilation(&[1, 1, 2, rng.range(1, 2)]);
    }
    (d, w)
}

/// Max/min windows with dilation, chosen so that no window lies entirely in padding or dilation holes.
fn dilated_window(rng: &mut Rng, i: usize) -> (Vec<usize>, Window) {
    let d = vec![1, rng.range(1, 2), rng.range(4, 6), rng.range(4, 6)];
    let w = if i.is_multiple_of(2) {
        Window::new(&[1, 1, 2, 2])
            .strides(&[1, 1, 1, 2])
            .window_dilation(&[1, 1, 2, 2])
            .padding(&[(0, 0), (0, 0), (1, 1), (0, 2)])
    } else {
        Window::new(&[1, 1, 3, 3])
            .strides(&[1, 1, 2, 1])
            .base_dilation(&[1, 1, 2, 2])
            .padding(&[(0, 0), (0, 0), (1, 0), (2, 1)])
    };
    (d, w)
}

const CONV_VARIANTS: usize = 9;

/// Convolution configurations: strides, padding (incl. large and negative), lhs/rhs dilation, feature
/// groups, depthwise, NHWC/HWIO layout, 1-D.
fn conv_case(rng: &mut Rng, i: usize) -> (String, Vec<usize>, Vec<usize>, ConvSpec) {
    let n = rng.range(1, 2);
    let hw = rng.range(5, 7);
    let nchw = ConvDims::nchw(2);
    match i % CONV_VARIANTS {
        0 => (
            "3x3 pad 1".into(),
            vec![n, 2, hw, hw],
            vec![3, 2, 3, 3],
            ConvSpec::new(nchw).padding(&[(1, 1), (1, 1)]),
        ),
        1 => (
            "stride 2, pad (1,0)/(0,1)".into(),
            vec![n, 2, hw, hw],
            vec![3, 2, 3, 2],
            ConvSpec::new(nchw)
                .strides(&[2, 2])
                .padding(&[(1, 0), (0, 1)]),
        ),
        2 => (
            "lhs dilation 2 (transposed conv), pad 2".into(),
            vec![n, 2, 4, 3],
            vec![2, 2, 3, 3],
            ConvSpec::new(nchw)
                .lhs_dilation(&[2, 2])
                .padding(&[(2, 2), (1, 2)]),
        ),
        3 => (
            "rhs dilation 2, stride (1,2)".into(),
            vec![n, 2, hw, hw],
            vec![2, 2, 2, 3],
            ConvSpec::new(nchw).rhs_dilation(&[2, 2]).strides(&[1, 2]),
        ),
        4 => (
            "feature groups 2, stride 2".into(),
            vec![n, 4, hw, hw],
            vec![6, 2, 3, 3],
            ConvSpec::new(nchw)
                .feature_groups(2)
                .strides(&[2, 2])
                .padding(&[(1, 1), (1, 1)]),
        ),
        5 => (
            "depthwise C=3 x2, pad 1".into(),
            vec![n, 3, hw, hw],
            vec![6, 1, 3, 3],
            ConvSpec::new(nchw)
                .feature_groups(3)
                .padding(&[(1, 1), (1, 1)]),
        ),
        6 => {
            // NHWC input/output, HWIO kernel, stride 2, padding larger than the kernel and a negative one.
            let dims = ConvDims {
                input_batch: 0,
                input_feature: 3,
                input_spatial: vec![1, 2],
                kernel_in: 2,
                kernel_out: 3,
                kernel_spatial: vec![0, 1],
                output_batch: 0,
                output_feature: 3,
                output_spatial: vec![1, 2],
            };
            (
                "NHWC/HWIO, stride 2, pad (3,2)/(-1,1)".into(),
                vec![n, hw, hw, 2],
                vec![2, 2, 2, 3],
                ConvSpec::new(dims)
                    .strides(&[2, 2])
                    .padding(&[(3, 2), (-1, 1)]),
            )
        }
        7 => (
            "1-D, stride 3, rhs dilation 2, groups 2".into(),
            vec![n, 4, 11],
            vec![4, 2, 3],
            ConvSpec::new(ConvDims::nchw(1))
                .strides(&[3])
                .rhs_dilation(&[2])
                .feature_groups(2)
                .padding(&[(2, 1)]),
        ),
        _ => (
            "all: stride 2, lhs dil 2, rhs dil 2, groups 2".into(),
            vec![n, 2, 4, 4],
            vec![2, 1, 2, 2],
            ConvSpec::new(nchw)
                .strides(&[2, 2])
                .lhs_dilation(&[2, 2])
                .rhs_dilation(&[2, 2])
                .feature_groups(2)
                .padding(&[(1, 2), (2, 1)]),
        ),
    }
}
