//! Lowering: every `spec::Layer` to `graph` primitives, forward only, in a training or an evaluation
//! mode. The structure follows the doc comments of `spec/src/layer.rs` exactly; parameters and BN
//! buffers are looked up by their `spec::params` / `spec::buffers` names and the walk checks that
//! every one is consumed exactly once, so the two crates cannot drift apart silently.

use std::collections::HashMap;

use graph::{CmpDir, DType, Graph, Literal, ReduceOp, RngAlgorithm, TensorType, Value};
use spec::{Act, Layer, NetSpec};

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
    let params = spec::params(spec)?;
    let buffers = spec::buffers(spec)?;
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
    for (i, layer) in spec.layers.iter().enumerate() {
        h = cx
            .layer(&format!("l{i}"), layer, h)
            .ctx(|| format!("lowering layer {i} ({})", layer.kind()))?;
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
            .map(|s| s.expect("every buffer was used once"))
            .collect(),
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

/// `a.b`, or `b` when `a` is empty.
fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// The skip rule of the inverted-bottleneck family (`layer.rs` module doc).
fn has_skip(stride: usize, cin: usize, cout: usize) -> bool {
    stride == 1 && cin == cout
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

    /// Channels (features) of a channels-last activation.
    fn channels(&self, x: Value) -> usize {
        let d = self.g.dims(x);
        d[d.len() - 1]
    }

    /// Batch norm `{unit}.gamma|beta` (+ buffers `{unit}.mean|var`) on `[B, H, W, C]` or `[B, N]`.
    fn bn(&mut self, unit: &str, x: Value) -> graph::Result<Value> {
        let gamma = self.p(&format!("{unit}.gamma"))?;
        let beta = self.p(&format!("{unit}.beta"))?;
        let im = self.buffer_slot(&format!("{unit}.mean"))?;
        let iv = self.buffer_slot(&format!("{unit}.var"))?;
        match self.mode {
            Mode::Train => {
                let (y, mean, var) = ops::batch_norm_train(self.g, x, gamma, beta, BN_EPS)?;
                self.stats[im] = Some(mean);
                self.stats[iv] = Some(var);
                Ok(y)
            }
            Mode::Eval => {
                let (mean, var) = (self.buffers[im], self.buffers[iv]);
                ops::bn_affine(self.g, x, mean, var, gamma, beta, BN_EPS)
            }
        }
    }

    /// conv without bias `{unit}.conv.w` → BN `{unit}.bn` → act, padding `p`.
    #[allow(clippy::too_many_arguments)]
    fn conv_bn_pad(
        &mut self,
        unit: &str,
        x: Value,
        k_stride: usize,
        p: usize,
        groups: usize,
        act: Act,
    ) -> graph::Result<Value> {
        let w = self.p(&join(unit, "conv.w"))?;
        let y = ops::conv(self.g, x, w, k_stride, p, groups)?;
        let y = self.bn(&join(unit, "bn"), y)?;
        ops::act(self.g, act, y)
    }

    /// convBN with "same" padding `(k − 1)/2`, where `k` is read from the kernel's shape.
    fn conv_bn(
        &mut self,
        unit: &str,
        x: Value,
        stride: usize,
        groups: usize,
        act: Act,
    ) -> graph::Result<Value> {
        let k = self.kernel_size(&join(unit, "conv.w"))?;
        self.conv_bn_pad(unit, x, stride, (k - 1) / 2, groups, act)
    }

    /// Depthwise convBN (groups = channels of `x`).
    fn dw_bn(&mut self, unit: &str, x: Value, stride: usize, act: Act) -> graph::Result<Value> {
        let c = self.channels(x);
        self.conv_bn(unit, x, stride, c, act)
    }

    /// Spatial size of the OIHW kernel parameter `name` (without counting a use).
    fn kernel_size(&self, name: &str) -> graph::Result<usize> {
        let &i = self
            .param_index
            .get(name)
            .ok_or_else(|| missing("parameter", name))?;
        Ok(self.g.dims(self.params[i])[3])
    }

    /// conv with bias `{unit}.w`, `{unit}.b`, then act.
    fn conv_bias(
        &mut self,
        unit: &str,
        x: Value,
        stride: usize,
        pad: usize,
        act: Act,
    ) -> graph::Result<Value> {
        let w = self.p(&join(unit, "w"))?;
        let b = self.p(&join(unit, "b"))?;
        let y = ops::conv(self.g, x, w, stride, pad, 1)?;
        let y = ops::bias(self.g, y, b)?;
        ops::act(self.g, act, y)
    }

    /// Squeeze-excitation `{unit}.reduce.*`, `{unit}.expand.*` (SE in `layer.rs`).
    fn se(&mut self, unit: &str, x: Value, inner: Act, gate: Act) -> graph::Result<Value> {
        let w1 = self.p(&format!("{unit}.reduce.w"))?;
        let b1 = self.p(&format!("{unit}.reduce.b"))?;
        let w2 = self.p(&format!("{unit}.expand.w"))?;
        let b2 = self.p(&format!("{unit}.expand.b"))?;
        let g = &mut *self.g;
        let xd = g.dims(x).to_vec();
        let s = g.mean(x, &[1, 2])?; // [B, C]
                                     // s·W1ᵀ with W1 : [r, C, 1, 1] seen as [r, C]: contract C with W1's dim 1.
        let rt = |g: &mut Graph, s: Value, w: Value| -> graph::Result<Value> {
            let wd = g.dims(w).to_vec();
            let w = g.reshape(w, &[wd[0], wd[1]])?;
            let d = graph::DotDims {
                lhs_batch: vec![],
                rhs_batch: vec![],
                lhs_contract: vec![1],
                rhs_contract: vec![1],
            };
            g.dot_general(s, w, &d)
        };
        let s = rt(g, s, w1)?;
        let s = ops::bias(g, s, b1)?;
        let s = ops::act(g, inner, s)?;
        let s = rt(g, s, w2)?;
        let s = ops::bias(g, s, b2)?;
        let s = ops::act(g, gate, s)?;
        let sb = g.broadcast_in_dim(s, &xd, &[0, 3])?;
        g.mul(x, sb)
    }

    /// Layer norm `{unit}.gamma|beta` over dim `feature` (ε = 1e-6).
    fn layer_norm(&mut self, unit: &str, x: Value, feature: usize) -> graph::Result<Value> {
        let gamma = self.p(&format!("{unit}.gamma"))?;
        let beta = self.p(&format!("{unit}.beta"))?;
        let (_, var, xc) = ops::moments(self.g, x, &[feature])?;
        ops::normalize(self.g, xc, var, &[feature], LN_EPS, gamma, beta, feature)
    }

    /// Inverted dropout (train only).
    fn dropout(&mut self, x: Value, rate: f32) -> graph::Result<Value> {
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
        let (state, bits) = self.g.rng_bit_generator(
            state,
            RngAlgorithm::ThreeFry,
            &TensorType::new(DType::U32, &xd),
        )?;
        self.rng = Some(state);
        // keep iff bits < keep·2³² (exact integer threshold, no float conversion of the bits).
        let keep = 1.0 - rate as f64;
        let thr = (keep * 4_294_967_296.0).round().min(u32::MAX as f64);
        let t = self.g.full(thr, &TensorType::new(DType::U32, &xd))?;
        let mask = self.g.compare(bits, t, CmpDir::Lt)?;
        let scaled = self.g.scale(x, 1.0 / keep)?;
        let zero = self.g.zeros_like(x)?;
        self.g.select(mask, scaled, zero)
    }

    fn layer(&mut self, l: &str, layer: &Layer, x: Value) -> graph::Result<Value> {
        match *layer {
            Layer::Dense { act, .. } => {
                let w = self.p(&format!("{l}.w"))?;
                let b = self.p(&format!("{l}.b"))?;
                let y = ops::linear(self.g, x, w)?;
                let y = ops::bias(self.g, y, b)?;
                ops::act(self.g, act, y)
            }
            Layer::Conv2d {
                kernel,
                stride,
                pad,
                act,
                ..
            } => self.conv_bias(l, x, stride, pad.unwrap_or((kernel - 1) / 2), act),
            Layer::ConvBn {
                kernel,
                stride,
                pad,
                act,
                ..
            } => self.conv_bn_pad(l, x, stride, pad.unwrap_or((kernel - 1) / 2), 1, act),
            Layer::BatchNorm { .. } => self.bn(l, x),
            Layer::LayerNorm { .. } => {
                // over the features: the last dim of [B, N], [B, T, D] and channels-last images.
                let f = ops::feature_dim(self.g, x);
                self.layer_norm(l, x, f)
            }
            Layer::InstanceNorm { .. } => {
                let gamma = self.p(&format!("{l}.gamma"))?;
                let beta = self.p(&format!("{l}.beta"))?;
                let (_, var, xc) = ops::moments(self.g, x, &[1, 2])?;
                ops::normalize(self.g, xc, var, &[1, 2], BN_EPS, gamma, beta, 3)
            }
            Layer::MaxPool { size, stride, pad } => {
                ops::pool(self.g, x, ReduceOp::Max, size, stride, pad)
            }
            Layer::AvgPool { size, stride, pad } => {
                ops::pool(self.g, x, ReduceOp::Sum, size, stride, pad)
            }
            Layer::GlobalAvgPool => self.g.mean(x, &[1, 2]),
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
            Layer::Dropout { rate } => self.dropout(x, rate),
            Layer::Activation { act } => ops::act(self.g, act, x),
            Layer::Residual {
                out,
                blocks,
                stride,
                ..
            } => {
                let mut h = x;
                for j in 0..blocks {
                    let s = if j == 0 { stride } else { 1 };
                    h = self.basic_block(&format!("{l}.b{j}"), h, out, s)?;
                }
                Ok(h)
            }
            Layer::Bottleneck {
                out,
                blocks,
                stride,
                ..
            } => {
                let mut h = x;
                for j in 0..blocks {
                    let s = if j == 0 { stride } else { 1 };
                    h = self.bottleneck_block(&format!("{l}.b{j}"), h, out, s)?;
                }
                Ok(h)
            }
            Layer::SeparableConv { stride, act, .. } => {
                let h = self.dw_bn(&format!("{l}.dw"), x, stride, act)?;
                self.conv_bn(&format!("{l}.pw"), h, 1, 1, act)
            }
            Layer::InvertedResidual {
                out,
                expand,
                stride,
                blocks,
                ..
            } => {
                let mut h = x;
                for j in 0..blocks {
                    let s = if j == 0 { stride } else { 1 };
                    let b = format!("{l}.b{j}");
                    let cin = self.channels(h);
                    let mut t = h;
                    if expand != 1 {
                        t = self.conv_bn(&format!("{b}.expand"), t, 1, 1, Act::Relu6)?;
                    }
                    t = self.dw_bn(&format!("{b}.dw"), t, s, Act::Relu6)?;
                    t = self.conv_bn(&format!("{b}.project"), t, 1, 1, Act::Identity)?;
                    h = self.skip(h, t, s, cin, out)?;
                }
                Ok(h)
            }
            Layer::MbConv {
                out,
                expand,
                stride,
                blocks,
                se,
                act,
                ..
            } => {
                let mut h = x;
                for j in 0..blocks {
                    let s = if j == 0 { stride } else { 1 };
                    let b = format!("{l}.b{j}");
                    let cin = self.channels(h);
                    let mut t = h;
                    if expand != 1 {
                        t = self.conv_bn(&format!("{b}.expand"), t, 1, 1, act)?;
                    }
                    t = self.dw_bn(&format!("{b}.dw"), t, s, act)?;
                    if se {
                        t = self.se(&format!("{b}.se"), t, act, Act::Sigmoid)?;
                    }
                    t = self.conv_bn(&format!("{b}.project"), t, 1, 1, Act::Identity)?;
                    h = self.skip(h, t, s, cin, out)?;
                }
                Ok(h)
            }
            Layer::MbConvV3 {
                out,
                expanded,
                stride,
                se,
                act,
                ..
            } => {
                let cin = self.channels(x);
                let mut t = x;
                if expanded != cin {
                    t = self.conv_bn(&format!("{l}.expand"), t, 1, 1, act)?;
                }
                t = self.dw_bn(&format!("{l}.dw"), t, stride, act)?;
                if se {
                    // SE(expanded → make_divisible(expanded/4)); the width comes with the params.
                    t = self.se(&format!("{l}.se"), t, Act::Relu, Act::HardSigmoid)?;
                }
                t = self.conv_bn(&format!("{l}.project"), t, 1, 1, Act::Identity)?;
                self.skip(x, t, stride, cin, out)
            }
            Layer::FusedMbConv {
                out,
                expand,
                stride,
                blocks,
                se,
                act,
                ..
            } => {
                let mut h = x;
                for j in 0..blocks {
                    let s = if j == 0 { stride } else { 1 };
                    let b = format!("{l}.b{j}");
                    let cin = self.channels(h);
                    let mut t = self.conv_bn(&format!("{b}.fused"), h, s, 1, act)?;
                    if expand != 1 {
                        if se {
                            t = self.se(&format!("{b}.se"), t, act, Act::Sigmoid)?;
                        }
                        t = self.conv_bn(&format!("{b}.project"), t, 1, 1, Act::Identity)?;
                    }
                    h = self.skip(h, t, s, cin, out)?;
                }
                Ok(h)
            }
            Layer::Uib {
                out,
                start_kernel,
                mid_kernel,
                stride,
                act,
                ..
            } => {
                let cin = self.channels(x);
                let mut t = x;
                if start_kernel > 0 {
                    let s = if mid_kernel == 0 { stride } else { 1 };
                    t = self.dw_bn(&format!("{l}.dw_start"), t, s, Act::Identity)?;
                }
                t = self.conv_bn(&format!("{l}.expand"), t, 1, 1, act)?;
                if mid_kernel > 0 {
                    t = self.dw_bn(&format!("{l}.dw_mid"), t, stride, act)?;
                }
                t = self.conv_bn(&format!("{l}.project"), t, 1, 1, Act::Identity)?;
                self.skip(x, t, stride, cin, out)
            }
            Layer::Fire { .. } => {
                let s = self.conv_bias(&format!("{l}.squeeze"), x, 1, 0, Act::Relu)?;
                let a = self.conv_bias(&format!("{l}.expand1"), s, 1, 0, Act::Relu)?;
                let b = self.conv_bias(&format!("{l}.expand3"), s, 1, 1, Act::Relu)?;
                self.g.concatenate(&[a, b], 3)
            }
            Layer::PatchEmbed { patch, .. } => {
                let w = self.p(&format!("{l}.w"))?;
                let b = self.p(&format!("{l}.b"))?;
                let cls = self.p(&format!("{l}.cls"))?;
                let pos = self.p(&format!("{l}.pos"))?;
                let g = &mut *self.g;
                let y = ops::conv(g, x, w, patch, 0, 1)?;
                let y = ops::bias(g, y, b)?; // [B, h, w, D]
                let d = g.dims(y).to_vec();
                let (bsz, n, dim) = (d[0], d[1] * d[2], d[3]);
                let y = g.reshape(y, &[bsz, n, dim])?; // [B, N, D], patches in row-major (h, w) order
                let c = g.broadcast_in_dim(cls, &[bsz, 1, dim], &[2])?;
                let y = g.concatenate(&[c, y], 1)?;
                let pb = g.broadcast_in_dim(pos, &[bsz, n + 1, dim], &[1, 2])?;
                g.add(y, pb)
            }
            Layer::Transformer { heads, blocks, .. } => {
                let mut h = x;
                for j in 0..blocks {
                    h = self.encoder_block(&format!("{l}.b{j}"), h, heads)?;
                }
                let h = self.layer_norm(&format!("{l}.ln"), h, 2)?;
                let d = self.g.dims(h).to_vec();
                let cls = self.g.slice(h, &[0, 0, 0], &[d[0], 1, d[2]], &[1, 1, 1])?;
                self.g.reshape(cls, &[d[0], d[2]])
            }
        }
    }

    /// `y + x` when the skip rule holds, else `y`.
    fn skip(
        &mut self,
        x: Value,
        y: Value,
        stride: usize,
        cin: usize,
        cout: usize,
    ) -> graph::Result<Value> {
        if has_skip(stride, cin, cout) {
            self.g.add(y, x)
        } else {
            Ok(y)
        }
    }

    fn shortcut(&mut self, b: &str, x: Value, out: usize, s: usize) -> graph::Result<Value> {
        if s != 1 || self.channels(x) != out {
            self.conv_bn_pad(&format!("{b}.down"), x, s, 0, 1, Act::Identity)
        } else {
            Ok(x)
        }
    }

    /// torchvision BasicBlock (`Layer::Residual`).
    fn basic_block(&mut self, b: &str, x: Value, out: usize, s: usize) -> graph::Result<Value> {
        let w1 = self.p(&format!("{b}.conv1.w"))?;
        let h = ops::conv(self.g, x, w1, s, 1, 1)?;
        let h = self.bn(&format!("{b}.bn1"), h)?;
        let h = ops::act(self.g, Act::Relu, h)?;
        let w2 = self.p(&format!("{b}.conv2.w"))?;
        let h = ops::conv(self.g, h, w2, 1, 1, 1)?;
        let h = self.bn(&format!("{b}.bn2"), h)?;
        let sc = self.shortcut(b, x, out, s)?;
        let y = self.g.add(h, sc)?;
        ops::act(self.g, Act::Relu, y)
    }

    /// torchvision Bottleneck v1.5 (`Layer::Bottleneck`).
    fn bottleneck_block(
        &mut self,
        b: &str,
        x: Value,
        out: usize,
        s: usize,
    ) -> graph::Result<Value> {
        let w1 = self.p(&format!("{b}.conv1.w"))?;
        let h = ops::conv(self.g, x, w1, 1, 0, 1)?;
        let h = self.bn(&format!("{b}.bn1"), h)?;
        let h = ops::act(self.g, Act::Relu, h)?;
        let w2 = self.p(&format!("{b}.conv2.w"))?;
        let h = ops::conv(self.g, h, w2, s, 1, 1)?;
        let h = self.bn(&format!("{b}.bn2"), h)?;
        let h = ops::act(self.g, Act::Relu, h)?;
        let w3 = self.p(&format!("{b}.conv3.w"))?;
        let h = ops::conv(self.g, h, w3, 1, 0, 1)?;
        let h = self.bn(&format!("{b}.bn3"), h)?;
        let sc = self.shortcut(b, x, out, s)?;
        let y = self.g.add(h, sc)?;
        ops::act(self.g, Act::Relu, y)
    }

    /// One pre-LN ViT encoder block on `[B, T, D]` (`Layer::Transformer`).
    fn encoder_block(&mut self, b: &str, x: Value, heads: usize) -> graph::Result<Value> {
        let d = self.g.dims(x).to_vec();
        let (bsz, t, dim) = (d[0], d[1], d[2]);
        let hd = dim / heads;
        let h = self.layer_norm(&format!("{b}.ln1"), x, 2)?;
        let wqkv = self.p(&format!("{b}.attn.qkv.w"))?;
        let bqkv = self.p(&format!("{b}.attn.qkv.b"))?;
        let wp = self.p(&format!("{b}.attn.proj.w"))?;
        let bp = self.p(&format!("{b}.attn.proj.b"))?;
        let g = &mut *self.g;
        let qkv = ops::linear(g, h, wqkv)?;
        let qkv = ops::bias(g, qkv, bqkv)?; // [B, T, 3D], columns [q | k | v], heads contiguous
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
        let p = ops::softmax_last(g, scores)?;
        let dv = graph::DotDims {
            lhs_batch: vec![0, 1],
            rhs_batch: vec![0, 1],
            lhs_contract: vec![3],
            rhs_contract: vec![2],
        };
        let o = g.dot_general(p, v, &dv)?; // [B, H, T, hd]
        let o = g.transpose(o, &[0, 2, 1, 3])?;
        let o = g.reshape(o, &[bsz, t, dim])?;
        let o = ops::linear(g, o, wp)?;
        let o = ops::bias(g, o, bp)?;
        let x = g.add(x, o)?;
        let h = self.layer_norm(&format!("{b}.ln2"), x, 2)?;
        let w1 = self.p(&format!("{b}.mlp.fc1.w"))?;
        let b1 = self.p(&format!("{b}.mlp.fc1.b"))?;
        let w2 = self.p(&format!("{b}.mlp.fc2.w"))?;
        let b2 = self.p(&format!("{b}.mlp.fc2.b"))?;
        let g = &mut *self.g;
        let h = ops::linear(g, h, w1)?;
        let h = ops::bias(g, h, b1)?;
        let h = ops::act(g, Act::Gelu, h)?;
        let h = ops::linear(g, h, w2)?;
        let h = ops::bias(g, h, b2)?;
        g.add(x, h)
    }
}
