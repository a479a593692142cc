//! Lowering: the elaborated network (`spec::analyze`'s tree of `spec::Node`s) to `graph` primitives,
//! forward only, in a training or an evaluation mode. Blocks are already expanded by `spec`; this file
//! knows only the core layers (`spec::Layer`, each as its doc comment says) and the four combinators
//! (sequence, residual add, parallel join), so no block rule is written twice. Parameters and BN
//! buffers are looked up by the names the nodes carry, and the walk checks that every one of
//! `spec::params` / `spec::buffers` is consumed exactly once.

use std::collections::HashMap;

use graph::{CmpDir, DType, Graph, Literal, ReduceOp, RngAlgorithm, TensorType, Value};
use spec::{Join, Layer, NetSpec, Node, Op, ParamSpec};

use crate::error::{Context, Error, Result};
use crate::ops;

/// BN ε (ARCHITECTURE.md, "Batch norm"); instance norm uses the same value.
pub const BN_EPS: f64 = 1e-5;
/// Layer norm ε (`spec::Layer::LayerNorm`, ViT).
pub const LN_EPS: f64 = 1e-6;

/// Training (batch statistics, dropout active) or evaluation (running statistics, no dropout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// The values a lowering reads besides the input batch.
pub struct Inputs<'a> {
    /// One value per `spec::params(spec)` entry, in that order.
    pub params: &'a [Value],
    /// One value per `spec::buffers(spec)` entry, in that order (read in [`Mode::Eval`]; may be empty
    /// in [`Mode::Train`], where batch statistics are used instead).
    pub buffers: &'a [Value],
    /// Dropout randomness in [`Mode::Train`]: a `ui64[2]` THREE_FRY state (see [`rng_key`]). Required
    /// when the spec has a dropout with a non-zero rate.
    pub rng: Option<Value>,
}

/// What the forward pass produced.
pub struct Forward {
    /// `[B, num_classes]`.
    pub logits: Value,
    /// [`Mode::Train`]: for every BN buffer (in `spec::buffers` order) the batch statistic of that
    /// step: the batch mean for `…mean`, the biased batch variance for `…var`. Empty in eval.
    pub batch_stats: Vec<Value>,
    /// The advanced RNG state (the input state when nothing drew from it).
    pub rng: Option<Value>,
}

/// The dropout state for a given step: `[0x6e6574737065635f ("netspec_"), step]` as `ui64[2]`.
/// Tying the mask to the step counter keeps the train-step ABI free of extra state and makes every step
/// reproducible; a different step gives independent masks.
pub fn rng_key(g: &mut Graph, step: Value) -> graph::Result<Value> {
    let seed = g.constant(
        &TensorType::new(DType::U64, &[1]),
        Literal::UInt(vec![0x6e65_7473_7065_635f]),
    )?;
    let s = g.convert(step, DType::U64)?;
    let s = g.reshape(s, &[1])?;
    g.concatenate(&[seed, s], 0)
}

/// Lowers the whole network applied to `x : f32[B, C, H, W]`.
pub fn lower(
    g: &mut Graph,
    spec: &NetSpec,
    mode: Mode,
    x: Value,
    inputs: Inputs,
) -> Result<Forward> {
    let net = spec::analyze(spec)?;
    let params: Vec<ParamSpec> = net.iter().flat_map(|l| l.params.iter().cloned()).collect();
    let buffers: Vec<ParamSpec> = net.iter().flat_map(|l| l.buffers.iter().cloned()).collect();
    if inputs.params.len() != params.len() {
        return Err(Error::Abi(format!(
            "{} parameter values given, the spec has {}",
            inputs.params.len(),
            params.len()
        )));
    }
    if mode == Mode::Eval && inputs.buffers.len() != buffers.len() {
        return Err(Error::Abi(format!(
            "{} buffer values given, the spec has {}",
            inputs.buffers.len(),
            buffers.len()
        )));
    }
    let mut cx = Lower {
        g,
        mode,
        param_index: params
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect(),
        params: inputs.params.to_vec(),
        param_uses: vec![0; params.len()],
        buffer_index: buffers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect(),
        buffers: inputs.buffers.to_vec(),
        buffer_uses: vec![0; buffers.len()],
        stats: vec![None; buffers.len()],
        rng: inputs.rng,
    };
    // Images enter channels-last (ops.rs, "Layout"); the ABI's x stays NCHW.
    let mut h = if cx.g.dims(x).len() == 4 {
        cx.g.transpose(x, &[0, 2, 3, 1])
            .ctx(|| "the input to channels-last".into())?
    } else {
        x
    };
    for l in &net {
        h = cx
            .node(&l.node, h)
            .ctx(|| format!("lowering layer {} ({})", l.index, l.kind))?;
    }
    for (p, &n) in params.iter().zip(&cx.param_uses) {
        if n != 1 {
            return Err(Error::Abi(format!(
                "parameter `{}` was used {n} times by the lowering (expected once)",
                p.name
            )));
        }
    }
    for (b, &n) in buffers.iter().zip(&cx.buffer_uses) {
        if n != 1 {
            return Err(Error::Abi(format!(
                "buffer `{}` was used {n} times by the lowering (expected once)",
                b.name
            )));
        }
    }
    let batch_stats = match mode {
        Mode::Train => cx
            .stats
            .iter()
            .zip(&buffers)
            .map(|(s, b)| {
                s.ok_or_else(|| Error::Abi(format!("buffer `{}` has no batch statistic", b.name)))
            })
            .collect::<Result<Vec<_>>>()?,
        Mode::Eval => Vec::new(),
    };
    Ok(Forward {
        logits: h,
        batch_stats,
        rng: cx.rng,
    })
}

struct Lower<'g> {
    g: &'g mut Graph,
    mode: Mode,
    param_index: HashMap<String, usize>,
    params: Vec<Value>,
    param_uses: Vec<usize>,
    buffer_index: HashMap<String, usize>,
    buffers: Vec<Value>,
    buffer_uses: Vec<usize>,
    stats: Vec<Option<Value>>,
    rng: Option<Value>,
}

fn missing(what: &str, name: &str) -> graph::Error {
    graph::Error::new(
        "nn::lower",
        format!("the spec has no {what} named `{name}` (lowering and spec::params disagree)"),
    )
}

impl Lower<'_> {
    /// The parameter `name` (counted as one use).
    fn p(&mut self, name: &str) -> graph::Result<Value> {
        let &i = self
            .param_index
            .get(name)
            .ok_or_else(|| missing("parameter", name))?;
        self.param_uses[i] += 1;
        Ok(self.params[i])
    }

    fn buffer_slot(&mut self, name: &str) -> graph::Result<usize> {
        let &i = self
            .buffer_index
            .get(name)
            .ok_or_else(|| missing("buffer", name))?;
        self.buffer_uses[i] += 1;
        Ok(i)
    }

    /// One node applied to the channels-last activation `x`.
    fn node(&mut self, n: &Node, x: Value) -> graph::Result<Value> {
        match &n.op {
            Op::Layer {
                layer,
                params,
                buffers,
            } => {
                let ps = params
                    .iter()
                    .map(|p| self.p(&p.name))
                    .collect::<graph::Result<Vec<_>>>()?;
                self.layer(layer, &ps, buffers, x)
            }
            Op::Seq(children) => self.seq(children, x),
            Op::Add { body, down } => {
                let y = self.seq(body, x)?;
                let s = self.seq(down, x)?;
                self.g.add(y, s)
            }
            Op::Parallel { join, branches } => {
                let ys = branches
                    .iter()
                    .map(|b| self.node(b, x))
                    .collect::<graph::Result<Vec<_>>>()?;
                let g = &mut *self.g;
                match join {
                    Join::Concat => {
                        let f = ops::feature_dim(g, ys[0]);
                        g.concatenate(&ys, f)
                    }
                    #[allow(
                        clippy::expect_used,
                        reason = "a join has at least one branch (`ys[0]` above relies on it too)"
                    )]
                    Join::Add | Join::Mul => {
                        // The widest branch sets the shape; `mul` broadcasts [B, 1, 1, C] branches.
                        let out = ys
                            .iter()
                            .map(|&y| g.dims(y).to_vec())
                            .max_by_key(|d| d.iter().product::<usize>())
                            .expect("a branch");
                        // (the running value, whether it is still a broadcast branch)
                        let mut acc: Option<(Value, bool)> = None;
                        for &y in &ys {
                            let (y, broadcast) = if g.dims(y) == out.as_slice() {
                                (y, false)
                            } else {
                                let d = g.dims(y).to_vec();
                                let y = g.reshape(y, &[d[0], d[3]])?;
                                (g.broadcast_in_dim(y, &out, &[0, 3])?, true)
                            };
                            // A broadcast factor (an SE gate) multiplies in the accumulation type.
                            acc = Some(match acc {
                                None => (y, broadcast),
                                Some((a, ab)) if *join == Join::Mul && (broadcast || ab) => {
                                    (ops::mul_broadcast(g, a, y)?, ab && broadcast)
                                }
                                Some((a, ab)) if *join == Join::Mul => (g.mul(a, y)?, ab),
                                Some((a, ab)) => (g.add(a, y)?, ab && broadcast),
                            });
                        }
                        Ok(acc.expect("a branch").0)
                    }
                }
            }
        }
    }

    fn seq(&mut self, nodes: &[Node], x: Value) -> graph::Result<Value> {
        nodes.iter().try_fold(x, |h, n| self.node(n, h))
    }

    /// A core layer with its parameter values `p` (in the order `spec::Layer::infer` gives them).
    fn layer(
        &mut self,
        layer: &Layer,
        p: &[Value],
        buffers: &[ParamSpec],
        x: Value,
    ) -> graph::Result<Value> {
        match *layer {
            Layer::Dense { act, .. } => {
                let y = ops::linear(self.g, x, p[0])?;
                let y = ops::bias(self.g, y, p[1])?;
                ops::act(self.g, act, y)
            }
            Layer::Conv2d {
                stride,
                pad,
                groups,
                bias,
                act,
                ..
            } => {
                let y = ops::conv(self.g, x, p[0], stride, pad, groups)?;
                let y = if bias { ops::bias(self.g, y, p[1])? } else { y };
                ops::act(self.g, act, y)
            }
            Layer::BatchNorm => {
                let im = self.buffer_slot(&buffers[0].name)?;
                let iv = self.buffer_slot(&buffers[1].name)?;
                match self.mode {
                    Mode::Train => {
                        let (y, mean, var) = ops::batch_norm_train(self.g, x, p[0], p[1], BN_EPS)?;
                        self.stats[im] = Some(mean);
                        self.stats[iv] = Some(var);
                        Ok(y)
                    }
                    Mode::Eval => {
                        let (mean, var) = (self.buffers[im], self.buffers[iv]);
                        ops::bn_affine(self.g, x, mean, var, p[0], p[1], BN_EPS)
                    }
                }
            }
            Layer::LayerNorm => {
                // over the features: the last dim of [B, N], [B, T, D] and channels-last images.
                let f = ops::feature_dim(self.g, x);
                let (_, var, xc) = ops::moments(self.g, x, &[f])?;
                ops::normalize(self.g, xc, var, &[f], LN_EPS, p[0], p[1], f)
            }
            Layer::InstanceNorm => {
                let (_, var, xc) = ops::moments(self.g, x, &[1, 2])?;
                ops::normalize(self.g, xc, var, &[1, 2], BN_EPS, p[0], p[1], 3)
            }
            Layer::MaxPool { size, stride, pad } => {
                ops::pool(self.g, x, ReduceOp::Max, size, stride, pad)
            }
            Layer::AvgPool { size, stride, pad } => {
                ops::pool(self.g, x, ReduceOp::Sum, size, stride, pad)
            }
            Layer::GlobalAvgPool { keep } => {
                let m = self.g.mean(x, &[1, 2])?;
                if keep {
                    let d = self.g.dims(m).to_vec();
                    self.g.reshape(m, &[d[0], 1, 1, d[1]])
                } else {
                    Ok(m)
                }
            }
            Layer::Flatten => {
                // The spec flattens in (C, H, W) order (the next dense kernel's rows): images go back
                // to channels-first for it, a copy of one activation.
                let x = if self.g.dims(x).len() == 4 {
                    self.g.transpose(x, &[0, 3, 1, 2])?
                } else {
                    x
                };
                let d = self.g.dims(x).to_vec();
                let n: usize = d[1..].iter().product();
                self.g.reshape(x, &[d[0], n])
            }
            Layer::Dropout { rate } => self.dropout(x, rate, false),
            Layer::DropPath { rate } => self.dropout(x, rate, true),
            Layer::Activation(a) => ops::act(self.g, a, x),
            Layer::Identity => Ok(x),
            Layer::Scale { .. } => {
                let out = self.g.dims(x).to_vec();
                let s = ops::along(self.g, p[0], &out, out.len() - 1)?;
                ops::mul_broadcast(self.g, x, s)
            }
            Layer::Attention { heads } => self.attention(x, p, heads),
            Layer::ToTokens => {
                // channels-last: [B, H, W, C] is already [B, H·W, C] in row-major (h, w) order.
                let d = self.g.dims(x).to_vec();
                self.g.reshape(x, &[d[0], d[1] * d[2], d[3]])
            }
            Layer::ClsToken => {
                let d = self.g.dims(x).to_vec();
                let c = self.g.broadcast_in_dim(p[0], &[d[0], 1, d[2]], &[2])?;
                self.g.concatenate(&[c, x], 1)
            }
            Layer::PosEmbed => {
                let d = self.g.dims(x).to_vec();
                let pb = self.g.broadcast_in_dim(p[0], &d, &[1, 2])?;
                self.g.add(x, pb)
            }
            Layer::ClsPool => {
                let d = self.g.dims(x).to_vec();
                let cls = self.g.slice(x, &[0, 0, 0], &[d[0], 1, d[2]], &[1, 1, 1])?;
                self.g.reshape(cls, &[d[0], d[2]])
            }
        }
    }

    /// Inverted dropout (train only): per element, or per example for stochastic depth (`rows`).
    fn dropout(&mut self, x: Value, rate: f32, rows: bool) -> graph::Result<Value> {
        if self.mode == Mode::Eval || rate == 0.0 {
            return Ok(x);
        }
        let state = self.rng.ok_or_else(|| {
            graph::Error::new(
                "nn::lower",
                "dropout in training needs an RNG state (Inputs::rng)",
            )
        })?;
        let xd = self.g.dims(x).to_vec();
        let md = if rows { vec![xd[0]] } else { xd.clone() };
        let (state, bits) = self.g.rng_bit_generator(
            state,
            RngAlgorithm::ThreeFry,
            &TensorType::new(DType::U32, &md),
        )?;
        self.rng = Some(state);
        // keep iff bits < keep·2³² (exact integer threshold, no float conversion of the bits).
        let keep = 1.0 - rate as f64;
        let thr = (keep * 4_294_967_296.0).round().min(u32::MAX as f64);
        let t = self.g.full(thr, &TensorType::new(DType::U32, &md))?;
        let mask = self.g.compare(bits, t, CmpDir::Lt)?;
        let mask = if rows {
            self.g.broadcast_in_dim(mask, &xd, &[0])?
        } else {
            mask
        };
        let scaled = self.g.scale(x, 1.0 / keep)?;
        let zero = self.g.zeros_like(x)?;
        self.g.select(mask, scaled, zero)
    }

    /// Multi-head self-attention on `[B, T, D]` (`spec::Layer::Attention`): `p` = qkv.w, qkv.b,
    /// proj.w, proj.b.
    fn attention(&mut self, x: Value, p: &[Value], heads: usize) -> graph::Result<Value> {
        let g = &mut *self.g;
        let d = g.dims(x).to_vec();
        let (bsz, t, dim) = (d[0], d[1], d[2]);
        let hd = dim / heads;
        let qkv = ops::linear(g, x, p[0])?;
        let qkv = ops::bias(g, qkv, p[1])?; // [B, T, 3D], columns [q | k | v], heads contiguous
        let r = g.reshape(qkv, &[bsz, t, 3, heads, hd])?;
        let r = g.transpose(r, &[2, 0, 3, 1, 4])?; // [3, B, H, T, hd]
        let part = |g: &mut Graph, i: usize| -> graph::Result<Value> {
            let s = g.slice(
                r,
                &[i, 0, 0, 0, 0],
                &[i + 1, bsz, heads, t, hd],
                &[1, 1, 1, 1, 1],
            )?;
            g.reshape(s, &[bsz, heads, t, hd])
        };
        let q = part(g, 0)?;
        let k = part(g, 1)?;
        let v = part(g, 2)?;
        let q = g.scale(q, 1.0 / (hd as f64).sqrt())?;
        let dd = graph::DotDims {
            lhs_batch: vec![0, 1],
            rhs_batch: vec![0, 1],
            lhs_contract: vec![3],
            rhs_contract: vec![3],
        };
        let scores = g.dot_general(q, k, &dd)?; // [B, H, T, T]
        let pr = ops::softmax_last(g, scores)?;
        let dv = graph::DotDims {
            lhs_batch: vec![0, 1],
            rhs_batch: vec![0, 1],
            lhs_contract: vec![3],
            rhs_contract: vec![2],
        };
        let o = g.dot_general(pr, v, &dv)?; // [B, H, T, hd]
        let o = g.transpose(o, &[0, 2, 1, 3])?;
        let o = g.reshape(o, &[bsz, t, dim])?;
        let o = ops::linear(g, o, p[2])?;
        ops::bias(g, o, p[3])
    }
}
