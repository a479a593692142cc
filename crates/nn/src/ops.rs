//! Building blocks shared by the layer lowerings: activations, convolutions, normalisations, pooling
//! and the softmax cross-entropy. Everything here is a composition of `graph` primitives (no calculus of
//! its own, except the closed-form custom VJPs of the cross-entropy, softmax and batch norm).
//!
//! **Layout.** Activations are channels-last: images `[B, H, W, C]` (NHWC), features `[B, N]`, tokens
//! `[B, T, D]`, so the feature dim is always the last one. Convolution kernels stay OIHW, as the
//! parameters are stored. NHWC is XLA:CPU's native convolution layout: on a 3×3 convolution with 32
//! channels at 28×28, batch 128, forward / input cotangent / kernel cotangent took 11.1 / 11.0 / 14.2 ms
//! against 19.0 / 15.6 / 26.3 ms for NCHW operands (`examples/conv_forms.rs`, quiet machine), and 1×1
//! convolutions become plain matrix products with no transpose.

use std::cell::Cell;

use graph::ReduceOp;
use graph::{
    CmpDir, ConvCall, ConvDims, ConvPass, ConvSpec, DType, Graph, MatMulCall, Result, TensorType,
    Value, Window,
};
use spec::Act;

/// Which kernel-library custom calls the graphs built now contain (only for a runtime that registered
/// their handlers, `pjrt::Client::conv_calls`; the caller decides per program at code-generation time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    /// f32 convolutions (those [`conv`] would emit as `stablehlo.convolution`) as [`ConvCall`]s, and
    /// each parameter's Adam update as one `graph::AdamCall` (`step.rs`).
    pub kernels: bool,
    /// f32 dense products of a batch of rows ([`linear`] on a matrix) as [`MatMulCall`]s: measured
    /// faster than XLA's dots where oneDNN runs AVX-512 kernels, slower where it runs AVX2 ones
    /// (BENCHMARKS.md "Session 9"), so `train::Executor` asks for them by the CPU's instruction set.
    pub matmul: bool,
}

impl Calls {
    /// Every call.
    pub const ALL: Calls = Calls {
        kernels: true,
        matmul: true,
    };
    /// None: the graph's own primitives only.
    pub const NONE: Calls = Calls {
        kernels: false,
        matmul: false,
    };
}

thread_local! {
    static CALLS: Cell<Calls> = const { Cell::new(Calls::NONE) };
}

/// Builds, with `f`, graphs with the custom calls `calls` allows ([`Calls`]). Scoped to the calling
/// thread and restored when `f` returns (or unwinds).
pub fn with_calls<T>(calls: Calls, f: impl FnOnce() -> T) -> T {
    struct Restore(Calls);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALLS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CALLS.with(|c| c.replace(calls)));
    f()
}

/// [`with_calls`] with every call (`on`) or none.
pub fn with_conv_calls<T>(on: bool, f: impl FnOnce() -> T) -> T {
    with_calls(if on { Calls::ALL } else { Calls::NONE }, f)
}

/// The custom calls graphs built now may contain ([`with_calls`]).
pub(crate) fn calls() -> Calls {
    CALLS.with(|c| c.get())
}

/// `x + c` for a float constant `c`.
pub fn add_const(g: &mut Graph, x: Value, c: f64) -> Result<Value> {
    let k = g.full_like(c, x)?;
    g.add(x, k)
}

/// Broadcasts a per-feature vector `v : [n]` along dim `dim` of a tensor of dims `out`.
pub fn along(g: &mut Graph, v: Value, out: &[usize], dim: usize) -> Result<Value> {
    g.broadcast_in_dim(v, out, &[dim])
}

/// The feature dim of a channels-last activation: the last one.
pub fn feature_dim(g: &Graph, x: Value) -> usize {
    g.dims(x).len() - 1
}

/// `x + b` with `b : [features]` broadcast along the last (feature) dim.
pub fn bias(g: &mut Graph, x: Value, b: Value) -> Result<Value> {
    let out = g.dims(x).to_vec();
    let bb = along(g, b, &out, out.len() - 1)?;
    g.add(x, bb)
}

/// `x · s` where `s` is broadcast over some of `x`'s dims (an SE gate `[B, 1, 1, C]` → `[B, H, W, C]`,
/// a layer scale `[C]`), computed in the accumulation type and rounded to `x`'s type once. At bf16 the
/// broadcast operand's gradient is a sum over the broadcast dims of `ct · x`: widened, those products
/// are exact in f32 and the sum rounds once, as a convolution's kernel gradient does; a bf16 product
/// would round every term first (measured: the SE gradients of the bf16 oracle's `mbConvV3` case were
/// then up to 2.3× less accurate than JAX's, docs/ORACLE.md). At f32 no `convert` is emitted.
pub fn mul_broadcast(g: &mut Graph, x: Value, s: Value) -> Result<Value> {
    let dt = g.dtype(x);
    let xw = g.convert(x, dt.accumulation())?;
    let sw = g.convert(s, dt.accumulation())?;
    let y = g.mul(xw, sw)?;
    g.convert(y, dt)
}

/// `clamp(x, lo, hi)` written with selects, so the derivative is 1 strictly inside and 0 outside
/// (as `jax.nn.relu` / `relu6`: 0 at the kinks).
fn clamp(g: &mut Graph, x: Value, lo: f64, hi: Option<f64>) -> Result<Value> {
    let l = g.full_like(lo, x)?;
    let above = g.compare(x, l, CmpDir::Gt)?;
    let mut y = g.select(above, x, l)?;
    if let Some(hi) = hi {
        let h = g.full_like(hi, x)?;
        let below = g.compare(x, h, CmpDir::Lt)?;
        y = g.select(below, y, h)?;
    }
    Ok(y)
}

/// The activation functions of `spec::Act` (formulas in its doc comment).
pub fn act(g: &mut Graph, a: Act, x: Value) -> Result<Value> {
    match a {
        Act::Identity => Ok(x),
        Act::Relu => clamp(g, x, 0.0, None),
        Act::Relu6 => clamp(g, x, 0.0, Some(6.0)),
        Act::Swish => {
            let s = g.logistic(x)?;
            g.mul(x, s)
        }
        Act::HardSigmoid => hard_sigmoid(g, x),
        Act::HardSwish => {
            let s = hard_sigmoid(g, x)?;
            g.mul(x, s)
        }
        Act::Gelu => {
            // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
            let x2 = g.mul(x, x)?;
            let x3 = g.mul(x2, x)?;
            let t = g.scale(x3, 0.044715)?;
            let t = g.add(x, t)?;
            let t = g.scale(t, (2.0 / std::f64::consts::PI).sqrt())?;
            let t = g.tanh(t)?;
            let t = add_const(g, t, 1.0)?;
            let hx = g.scale(x, 0.5)?;
            g.mul(hx, t)
        }
        Act::Sigmoid => g.logistic(x),
        Act::GeluErf => {
            // 0.5·x·(1 + erf(x/√2))
            let t = g.scale(x, std::f64::consts::FRAC_1_SQRT_2)?;
            let t = g.erf(t)?;
            let t = add_const(g, t, 1.0)?;
            let hx = g.scale(x, 0.5)?;
            g.mul(hx, t)
        }
    }
}

/// relu6(x + 3)/6.
fn hard_sigmoid(g: &mut Graph, x: Value) -> Result<Value> {
    let t = add_const(g, x, 3.0)?;
    let t = clamp(g, t, 0.0, Some(6.0))?;
    // The division by 6 in the accumulation type, rounded once: a bf16 constant 1/6 is 0.16699,
    // 0.2 % high, a bias (not noise) on every hard-sigmoid and hard-swish and their gradients, where
    // JAX's `relu6(x + 3) / 6` rounds the exact quotient. At f32 no `convert` is emitted.
    let dt = g.dtype(t);
    let t = g.convert(t, dt.accumulation())?;
    let t = g.scale(t, 1.0 / 6.0)?;
    g.convert(t, dt)
}

/// 2-D convolution of NHWC `x` with an OIHW kernel `w`: stride `s`, symmetric zero padding `p`,
/// `groups` feature groups. The kernel is transposed to HWIO first (a parameter-sized copy; its
/// cotangent is transposed back): the kernel cotangent of a 3×3, 32-channel, 28×28 convolution took
/// 14.2 ms with an HWIO kernel against 20.4 ms with the OIHW one (`examples/conv_forms.rs`).
///
/// Three input channels (RGB images) under a kernel of at most 3×3 are padded to four with a zero
/// channel, and the kernel with a zero input slice: XLA:CPU's convolution is about twice as fast with
/// four (`conv_forms 128 C 32 32 3`, two runs: C = 3 forward 12.3/12.9 ms and kernel cotangent
/// 12.0/15.6 ms, C = 4 6.8/4.1 and 6.9/6.6 ms; cifar-cnn-bn's fastest step 166–180 → 157–165 ms). A 7×7
/// stride-2 stem on 32×32 gained nothing (`conv_forms 128 C 64 32 7 2`), nor did one or two channels.
/// The padded entries get no cotangent (pad's VJP is a slice), so the results are those of the
/// unpadded convolution.
pub fn conv2d(
    g: &mut Graph,
    x: Value,
    w: Value,
    s: usize,
    p: usize,
    groups: usize,
) -> Result<Value> {
    let p = p as i64;
    let wd = g.dims(w).to_vec();
    let (x, w) = if groups == 1 && g.dims(x)[3] == 3 && wd[2] <= 3 && wd[3] <= 3 {
        let zero = g.scalar(0.0, g.dtype(x))?;
        let xp = g.pad(x, zero, &[0, 0, 0, 0], &[0, 0, 0, 1], &[0, 0, 0, 0])?;
        let wp = g.pad(w, zero, &[0, 0, 0, 0], &[0, 1, 0, 0], &[0, 0, 0, 0])?;
        (xp, wp)
    } else {
        (x, w)
    };
    let w = g.transpose(w, &[2, 3, 1, 0])?;
    let spec = ConvSpec::new(ConvDims::nhwc(2))
        .strides(&[s, s])
        .padding(&[(p, p), (p, p)])
        .feature_groups(groups);
    g.convolution(x, w, &spec)
}

/// A convolution as the lowering emits it, in the form XLA:CPU runs fastest forward *and* backward:
/// - 1×1 convolutions without padding or groups become a matrix product over the channels (after
///   striding the input; `step_bench` on a 1×1 convBN, 64 channels, 56×56, batch 8: 256 ms against
///   504 ms per step as a convolution);
/// - depthwise convolutions become shifted multiply-adds ([`depthwise_taps`]);
/// - convolutions whose output map is smaller than the kernel along an axis become patches and one
///   matrix product ([`conv_patches`]): XLA:CPU's convolution falls off a cliff there (batch 128,
///   3×3, 256 channels on a 2×2 map: forward 75–80 ms, input cotangent 78–83 ms as a convolution,
///   6.1 and 3.7 ms as patches; 512 channels on 1×1: 39–42 ms against 1.0 ms; but 128 channels on 4×4:
///   3.3 ms as a convolution, 5.2 ms as patches; `examples/conv_forms.rs`, quiet machine);
/// - inside [`with_conv_calls`], other f32 convolutions without groups are a oneDNN custom call
///   ([`ConvCall`]; its VJP rule emits the backward calls);
/// - other convolutions stay `stablehlo.convolution` ([`conv2d`]).
pub fn conv(g: &mut Graph, x: Value, w: Value, s: usize, p: usize, groups: usize) -> Result<Value> {
    let wd = g.dims(w).to_vec();
    let xd = g.dims(x).to_vec();
    let c = xd[3];
    let out = |n: usize, k: usize| (n + 2 * p).saturating_sub(k) / s + 1;
    if wd[2] == 1 && wd[3] == 1 && p == 0 && groups == 1 {
        pointwise(g, x, w, s)
    } else if groups > 1 && groups == c && wd[0] == c {
        depthwise_taps(g, x, w, s, p)
    } else if groups == 1 && (out(xd[1], wd[2]) < wd[2] || out(xd[2], wd[3]) < wd[3]) {
        conv_patches(g, x, w, s, p)
    } else if groups == 1 && g.dtype(x) == DType::F32 && calls().kernels {
        let call = ConvCall {
            pass: ConvPass::Forward,
            input: [xd[0], xd[1], xd[2], xd[3]],
            kernel: [wd[2], wd[3], wd[1], wd[0]],
            strides: [s, s],
            padding: [(p, p), (p, p)],
        };
        let w = g.transpose(w, &[2, 3, 1, 0])?;
        g.conv_call(&call, x, w)
    } else {
        conv2d(g, x, w, s, p, groups)
    }
}

/// 1×1 convolution, stride `s`, no padding: `y[b, h, w, o] = Σ_c x[b, s·h, s·w, c] · w[o, c]`, one
/// `[B·H·W, C] × [C, O]` matrix product in the channels-last layout.
fn pointwise(g: &mut Graph, x: Value, w: Value, s: usize) -> Result<Value> {
    let d = g.dims(x).to_vec();
    let x = if s > 1 {
        g.slice(x, &[0, 0, 0, 0], &d, &[1, s, s, 1])?
    } else {
        x
    };
    let d = g.dims(x).to_vec();
    let (b, h, wd, c) = (d[0], d[1], d[2], d[3]);
    let o = g.dims(w)[0];
    let x2 = g.reshape(x, &[b * h * wd, c])?;
    let w2 = g.reshape(w, &[o, c])?;
    let y = rows_by_kernel(g, x2, w2)?; // [BHW, O]
    g.reshape(y, &[b, h, wd, o])
}

/// 2-D convolution of NHWC `x` with an OIHW kernel `w` (one group) as explicit patches and one
/// matrix product: `y[(b, h, w), o] = Σ_{(i, j, c)} xpad[b, s·h + i, s·w + j, c] · w[o, c, i, j]`.
/// Taps that only ever read padding are left out (a 3×3 kernel on a 1×1 map keeps its centre tap),
/// so the product has `k'²·C` rows for the `k'` taps per axis that see the input.
pub fn conv_patches(g: &mut Graph, x: Value, w: Value, s: usize, p: usize) -> Result<Value> {
    let xd = g.dims(x).to_vec();
    let (b, h, wd, c) = (xd[0], xd[1], xd[2], xd[3]);
    let (o, kh, kw) = (g.dims(w)[0], g.dims(w)[2], g.dims(w)[3]);
    let (ho, wo) = ((h + 2 * p - kh) / s + 1, (wd + 2 * p - kw) / s + 1);
    // Taps along one axis that read at least one input element: i with s·r + i − p ∈ [0, n) for some
    // output index r < m. They form one contiguous range.
    #[allow(
        clippy::expect_used,
        reason = "the output size formula guarantees that tap 0..k reaches the input"
    )]
    let live = |n: usize, m: usize, k: usize| -> (usize, usize) {
        let hit = |i: usize| (0..m).any(|r| (s * r + i).checked_sub(p).is_some_and(|v| v < n));
        let lo = (0..k).find(|&i| hit(i)).expect("some tap reads the input");
        let hi = (0..k)
            .rev()
            .find(|&i| hit(i))
            .expect("some tap reads the input")
            + 1;
        (lo, hi)
    };
    let ((i0, i1), (j0, j1)) = (live(h, ho, kh), live(wd, wo, kw));
    let pi = p as i64;
    let zero = g.scalar(0.0, g.dtype(x))?;
    let xp = if p > 0 {
        g.pad(x, zero, &[0, pi, pi, 0], &[0, pi, pi, 0], &[0, 0, 0, 0])?
    } else {
        x
    };
    // Patch columns in (c, i, j) order, the order of an OIHW kernel's rows: the kernel needs no
    // transpose, and its cotangent (a `[O, C·taps]` product) comes out OIHW, as the optimizer reads it.
    let mut taps = Vec::new();
    for i in i0..i1 {
        for j in j0..j1 {
            let lim = [b, i + (ho - 1) * s + 1, j + (wo - 1) * s + 1, c];
            let t = g.slice(xp, &[0, i, j, 0], &lim, &[1, s, s, 1])?;
            taps.push(g.reshape(t, &[b, ho, wo, c, 1])?);
        }
    }
    let n = (i1 - i0) * (j1 - j0) * c;
    let pm = g.concatenate(&taps, 4)?; // [B, Ho, Wo, C, taps]
    let pm = g.reshape(pm, &[b * ho * wo, n])?;
    let wk = g.slice(w, &[0, 0, i0, j0], &[o, c, i1, j1], &[1, 1, 1, 1])?;
    let wk = g.reshape(wk, &[o, n])?;
    let y = rows_by_kernel(g, pm, wk)?; // [B·Ho·Wo, O]
    g.reshape(y, &[b, ho, wo, o])
}

/// `a·kᵀ` for rows `a : [R, N]` and a kernel stored as `k : [O, N]` (an OIHW kernel's rows): `[R, O]`.
fn rows_by_kernel(g: &mut Graph, a: Value, k: Value) -> Result<Value> {
    let dd = graph::DotDims {
        lhs_batch: vec![],
        rhs_batch: vec![],
        lhs_contract: vec![1],
        rhs_contract: vec![1],
    };
    g.dot_general(a, k, &dd)
}

/// `x·w` for `x : [..., N]` and `w : [N, out]` (contracting the last dim of `x`). Inside
/// [`with_conv_calls`], an f32 `x : [B, N]` is a oneDNN custom call ([`MatMulCall`]; its VJP rule emits
/// the backward products as calls too): sgemm tiles on XLA's own threads took 1.34 ms where XLA's dots
/// took 1.90–2.0 ms for mnist-mlp's eight products (BENCHMARKS.md "Session 8").
pub fn linear(g: &mut Graph, x: Value, w: Value) -> Result<Value> {
    let r = g.dims(x).len();
    if r == 2 && g.dtype(x) == DType::F32 && g.dtype(w) == DType::F32 && calls().matmul {
        let call = MatMulCall {
            trans_a: false,
            trans_b: false,
        };
        return g.matmul_call(call, x, w);
    }
    let d = graph::DotDims {
        lhs_batch: vec![],
        rhs_batch: vec![],
        lhs_contract: vec![r - 1],
        rhs_contract: vec![0],
    };
    g.dot_general(x, w, &d)
}

/// Per-channel normalisation statistics: mean and biased variance of `x` over `dims` (kept dims in
/// order), and the centred input.
pub fn moments(g: &mut Graph, x: Value, dims: &[usize]) -> Result<(Value, Value, Value)> {
    // Statistics in f32 whatever the activations' type (bf16 activations are widened first).
    let x = g.convert(x, g.dtype(x).accumulation())?;
    let xd = g.dims(x).to_vec();
    let kept: Vec<usize> = (0..xd.len()).filter(|d| !dims.contains(d)).collect();
    let mean = g.mean(x, dims)?;
    let mb = g.broadcast_in_dim(mean, &xd, &kept)?;
    let xc = g.sub(x, mb)?;
    let sq = g.mul(xc, xc)?;
    let var = g.mean(sq, dims)?;
    Ok((mean, var, xc))
}

/// `y = xc · rsqrt(var + ε) · γ + β`, where `var` has the kept dims of `reduced` and γ, β lie along
/// `feature_dim`.
#[allow(clippy::too_many_arguments)]
pub fn normalize(
    g: &mut Graph,
    xc: Value,
    var: Value,
    reduced: &[usize],
    eps: f64,
    gamma: Value,
    beta: Value,
    feature_dim: usize,
) -> Result<Value> {
    let xd = g.dims(xc).to_vec();
    let kept: Vec<usize> = (0..xd.len()).filter(|d| !reduced.contains(d)).collect();
    // Computed in the statistics' type (f32); the result comes out in the parameters' type, which
    // is the step's compute type (bf16 under mixed precision).
    let (out, st) = (g.dtype(gamma), g.dtype(xc));
    let (gamma, beta) = (g.convert(gamma, st)?, g.convert(beta, st)?);
    let ve = add_const(g, var, eps)?;
    let inv = g.rsqrt(ve)?;
    let inv = g.broadcast_in_dim(inv, &xd, &kept)?;
    let y = g.mul(xc, inv)?;
    let gb = along(g, gamma, &xd, feature_dim)?;
    let y = g.mul(y, gb)?;
    let bb = along(g, beta, &xd, feature_dim)?;
    let y = g.add(y, bb)?;
    g.convert(y, out)
}

/// Dims reduced by batch norm: every dim but the last (channels), i.e. (N, H, W) for images, N for
/// flat input.
pub fn bn_dims(rank: usize) -> Vec<usize> {
    (0..rank - 1).collect()
}

/// Batch norm with given per-channel `mean`/`var` (eval: the running statistics), channels last:
/// `y = x·s + (β − mean·s)` with `s = γ·rsqrt(var + ε)` computed once per channel.
pub fn bn_affine(
    g: &mut Graph,
    x: Value,
    mean: Value,
    var: Value,
    gamma: Value,
    beta: Value,
    eps: f64,
) -> Result<Value> {
    // In f32 (the running statistics' type) whatever the activations' type; the result in x's.
    let dt = g.dtype(x);
    let st = dt.accumulation();
    let (x, gamma, beta) = (
        g.convert(x, st)?,
        g.convert(gamma, st)?,
        g.convert(beta, st)?,
    );
    let ve = add_const(g, var, eps)?;
    let inv = g.rsqrt(ve)?;
    let s = g.mul(gamma, inv)?;
    let ms = g.mul(mean, s)?;
    let shift = g.sub(beta, ms)?;
    let xd = g.dims(x).to_vec();
    let sb = along(g, s, &xd, xd.len() - 1)?;
    let y = g.mul(x, sb)?;
    let y = bias(g, y, shift)?;
    g.convert(y, dt)
}

/// Max or average pooling over the spatial dims of NHWC `x`: window `k×k`, stride `s`, padding `p`
/// (−∞ for max, zeros for average, which always divides by k²).
///
/// Non-overlapping windows (`k == s`, no padding, sides divisible by k) are written as reshape +
/// reduce: XLA:CPU runs that (and its broadcast-compare backward) much faster than `reduce_window`'s
/// `select_and_scatter` backward (DESIGN.md §9). Ties in a max window share the cotangent evenly.
pub fn pool(g: &mut Graph, x: Value, op: ReduceOp, k: usize, s: usize, p: usize) -> Result<Value> {
    let d = g.dims(x).to_vec();
    let (b, h, w, c) = (d[0], d[1], d[2], d[3]);
    let y = if k == s && p == 0 && h % k == 0 && w % k == 0 {
        let r = g.reshape(x, &[b, h / k, k, w / k, k, c])?;
        g.reduce(r, op, &[2, 4])?
    } else {
        let win = Window::new(&[1, k, k, 1]).strides(&[1, s, s, 1]).padding(&[
            (0, 0),
            (p, p),
            (p, p),
            (0, 0),
        ]);
        g.reduce_window(x, op, &win)?
    };
    match op {
        ReduceOp::Sum => g.scale(y, 1.0 / (k * k) as f64),
        ReduceOp::Max | ReduceOp::Min => Ok(y),
    }
}

/// One-hot `[B, K]` f32 rows of labels `y : i32[B]` (a label outside `0..K`, e.g. −1, gives a zero row).
pub fn one_hot(g: &mut Graph, y: Value, k: usize) -> Result<Value> {
    let b = g.dims(y)[0];
    let iota = g.iota(&TensorType::new(DType::I32, &[b, k]), 1)?;
    let yb = g.broadcast_in_dim(y, &[b, k], &[0])?;
    let eq = g.compare(iota, yb, CmpDir::Eq)?;
    g.convert(eq, DType::F32)
}

/// Log-softmax of `z : [B, K]` over K (max-shifted), and the softmax.
pub fn log_softmax(g: &mut Graph, z: Value) -> Result<(Value, Value)> {
    let d = g.dims(z).to_vec();
    let m = g.max_over(z, &[1])?;
    let mb = g.broadcast_in_dim(m, &d, &[0])?;
    let zs = g.sub(z, mb)?;
    let e = g.exp(zs)?;
    let se = g.sum(e, &[1])?;
    let lse = g.log(se)?;
    let lb = g.broadcast_in_dim(lse, &d, &[0])?;
    let logp = g.sub(zs, lb)?;
    let p = g.exp(logp)?;
    Ok((logp, p))
}

/// Mean softmax cross-entropy of logits `z : [B, K]` against soft targets `t : [B, K]`
/// (`−Σ t·log softmax(z) / B`), with the closed-form VJP `ct·(softmax(z) − t)/B` (valid because each
/// target row sums to 1). No cotangent flows into the targets.
pub fn softmax_xent_mean(g: &mut Graph, z: Value, t: Value) -> Result<Value> {
    let b = g.dims(z)[0] as f64;
    let out = g.custom_vjp(
        "softmax_xent",
        &[z, t],
        |g, ins| {
            let (logp, p) = log_softmax(g, ins[0])?;
            let tl = g.mul(ins[1], logp)?;
            let s = g.sum(tl, &[0, 1])?;
            let loss = g.scale(s, -1.0 / b)?;
            Ok((vec![loss], vec![p]))
        },
        move |g, cx| {
            let p = cx.residuals[0];
            let d = g.sub(p, cx.inputs[1])?;
            let dims = g.dims(d).to_vec();
            let ct = g.broadcast_in_dim(cx.cotangents[0], &dims, &[])?;
            let dz = g.mul(d, ct)?;
            Ok(vec![Some(g.scale(dz, 1.0 / b)?), None])
        },
    )?;
    Ok(out[0])
}

/// Label-smoothed targets `(1 − ls)·onehot + ls/K`.
pub fn smooth_targets(g: &mut Graph, onehot: Value, ls: f64) -> Result<Value> {
    if ls == 0.0 {
        return Ok(onehot);
    }
    let k = g.dims(onehot)[1] as f64;
    let t = g.scale(onehot, 1.0 - ls)?;
    add_const(g, t, ls / k)
}

/// Top-1 predictions of `z : [B, K]` as i32 `[B]` (the first index of the maximum).
pub fn argmax(g: &mut Graph, z: Value) -> Result<Value> {
    let d = g.dims(z).to_vec();
    let m = g.max_over(z, &[1])?;
    let mb = g.broadcast_in_dim(m, &d, &[0])?;
    let is_max = g.compare(z, mb, CmpDir::Eq)?;
    let iota = g.iota(&TensorType::new(DType::I32, &d), 1)?;
    let big = g.full_like(d[1] as f64, iota)?;
    let idx = g.select(is_max, iota, big)?;
    g.reduce(idx, ReduceOp::Min, &[1])
}

/// Number of rows where `argmax(z) == y`, as i32 `[]` (labels −1 never match).
pub fn correct(g: &mut Graph, z: Value, y: Value) -> Result<Value> {
    let pred = argmax(g, z)?;
    let eq = g.compare(pred, y, CmpDir::Eq)?;
    let eq = g.convert(eq, DType::I32)?;
    g.sum(eq, &[0])
}

/// Softmax over the last dim, with the closed-form VJP `y·(ct − Σ ct·y)` (the max shift carries no
/// gradient, as `jax.nn.softmax`).
pub fn softmax_last(g: &mut Graph, s: Value) -> Result<Value> {
    // In f32 whatever the scores' type; the probabilities come back in the scores' type.
    let dt = g.dtype(s);
    let s = g.convert(s, dt.accumulation())?;
    let out = g.custom_vjp(
        "softmax",
        &[s],
        |g, ins| {
            let x = ins[0];
            let d = g.dims(x).to_vec();
            let last = d.len() - 1;
            let kept: Vec<usize> = (0..last).collect();
            let m = g.max_over(x, &[last])?;
            let mb = g.broadcast_in_dim(m, &d, &kept)?;
            let xs = g.sub(x, mb)?;
            let e = g.exp(xs)?;
            let se = g.sum(e, &[last])?;
            let sb = g.broadcast_in_dim(se, &d, &kept)?;
            Ok((vec![g.div(e, sb)?], vec![]))
        },
        |g, cx| {
            let (y, ct) = (cx.outputs[0], cx.cotangents[0]);
            let d = g.dims(y).to_vec();
            let last = d.len() - 1;
            let kept: Vec<usize> = (0..last).collect();
            let cy = g.mul(ct, y)?;
            let s = g.sum(cy, &[last])?;
            let sb = g.broadcast_in_dim(s, &d, &kept)?;
            let t = g.sub(ct, sb)?;
            Ok(vec![Some(g.mul(y, t)?)])
        },
    )?;
    g.convert(out[0], dt)
}

/// Training-mode batch norm of `x` (`[B, H, W, C]` or `[B, C]`, statistics over every dim but the last):
/// returns `(y, batch mean, biased batch variance)`.
///
/// Forward in two reading passes and one writing pass: `μ = E[x]` and `E[x²]` (XLA:CPU hands both to
/// YNNPACK reductions that read `x` directly), `σ² = max(E[x²] − μ², 0)`, then `y = x·a + b` with
/// `a = γ·r`, `b = β − μ·a` (r = 1/√(σ² + ε)), which fuses into the activation after it. No centred or
/// normalised copy of `x` is materialised in the forward pass (with `σ² = E[(x − μ)²]` XLA wrote the
/// centred input out for the second reduction: mnist-cnn's step 139–152 → 127–134 ms, alternated
/// `netspec bench` runs). The one-pass variance loses relative precision ≈ 2⁻²⁴·(1 + μ²/σ²); flax's
/// `BatchNorm` computes it the same way by default, and the JAX oracle (two-pass variance) agrees on
/// every BN family to ≤ 2.6e-6·G (docs/ORACLE.md).
///
/// Closed-form VJP (x̂ = (x − μ)·r recomputed from the input, N = elements per channel):
/// `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ·r·(dy − dβ/N − x̂·dγ/N)` — two reductions instead of the four
/// that differentiating the composite would give. The statistics outputs carry no cotangent (they
/// only feed the running statistics, never the loss).
pub fn batch_norm_train(
    g: &mut Graph,
    x: Value,
    gamma: Value,
    beta: Value,
    eps: f64,
) -> Result<(Value, Value, Value)> {
    // Statistics and normalisation in f32 whatever the activations' type (mixed precision widens
    // bf16 here); y comes back in x's type, mean and variance stay f32.
    let dt = g.dtype(x);
    let st = dt.accumulation();
    let (x, gamma, beta) = (
        g.convert(x, st)?,
        g.convert(gamma, st)?,
        g.convert(beta, st)?,
    );
    let out = g.custom_vjp(
        "batch_norm",
        &[x, gamma, beta],
        move |g, ins| {
            let (x, gamma, beta) = (ins[0], ins[1], ins[2]);
            let xd = g.dims(x).to_vec();
            let (red, f) = (bn_dims(xd.len()), xd.len() - 1);
            let mean = g.mean(x, &red)?;
            let x2 = g.mul(x, x)?;
            let m2 = g.mean(x2, &red)?;
            let mm = g.mul(mean, mean)?;
            let var = g.sub(m2, mm)?;
            let zero = g.zeros_like(var)?;
            let var = g.max(var, zero)?;
            let ve = add_const(g, var, eps)?;
            let r = g.rsqrt(ve)?;
            let a = g.mul(gamma, r)?;
            let ma = g.mul(mean, a)?;
            let b = g.sub(beta, ma)?;
            let ab = along(g, a, &xd, f)?;
            let y = g.mul(x, ab)?;
            let y = bias(g, y, b)?;
            Ok((vec![y, mean, var], vec![mean, r]))
        },
        move |g, cx| {
            let (x, gamma, dy) = (cx.inputs[0], cx.inputs[1], cx.cotangents[0]);
            let (mean, r) = (cx.residuals[0], cx.residuals[1]);
            let xd = g.dims(dy).to_vec();
            let (red, f) = (bn_dims(xd.len()), xd.len() - 1);
            let mb = along(g, mean, &xd, f)?;
            let xc = g.sub(x, mb)?;
            let rb = along(g, r, &xd, f)?;
            let xhat = g.mul(xc, rb)?;
            let n: usize = red.iter().map(|&d| xd[d]).product();
            let dbeta = g.sum(dy, &red)?;
            let dyx = g.mul(dy, xhat)?;
            let dgamma = g.sum(dyx, &red)?;
            let mb = g.scale(dbeta, 1.0 / n as f64)?;
            let mb = along(g, mb, &xd, f)?;
            let mg = g.scale(dgamma, 1.0 / n as f64)?;
            let mg = along(g, mg, &xd, f)?;
            let t = g.sub(dy, mb)?;
            let u = g.mul(xhat, mg)?;
            let t = g.sub(t, u)?;
            let s = g.mul(gamma, r)?;
            let s = along(g, s, &xd, f)?;
            let dx = g.mul(t, s)?;
            Ok(vec![Some(dx), Some(dgamma), Some(dbeta)])
        },
    )?;
    Ok((g.convert(out[0], dt)?, out[1], out[2]))
}

/// Depthwise convolution of NHWC `x` (`groups = C`, kernel `[C, 1, k, k]`) as `k²` shifted
/// multiply-adds: `y = Σ_{i,j} xpad[:, i::s, j::s, :] · w[:, 0, i, j]`. A pure composition: its VJP is pads of `ct·w`
/// (input) and reductions of `ct·x` (kernel), which XLA:CPU fuses. Measured with `step_bench` on a
/// separable 3×3 block (512 channels, 14×14, batch 8): 126 ms per train step against 1,612 ms with a
/// `feature_group_count` convolution, whose kernel VJP is a `batch_group_count` convolution that
/// XLA:CPU expands into a dense one.
pub fn depthwise_taps(g: &mut Graph, x: Value, w: Value, s: usize, p: usize) -> Result<Value> {
    // bf16 taps are multiplied and accumulated in f32, as a convolution of bf16 operands is (the
    // product of two bf16 values is exact in f32): input and kernel are widened once, so the
    // backward pass also sums the taps' cotangents in f32 before one rounding back to bf16.
    let dt = g.dtype(x);
    let x = g.convert(x, dt.accumulation())?;
    let w = g.convert(w, dt.accumulation())?;
    let xd = g.dims(x).to_vec();
    let k = g.dims(w)[3];
    let (ho, wo) = ((xd[1] + 2 * p - k) / s + 1, (xd[2] + 2 * p - k) / s + 1);
    let pi = p as i64;
    let zero = g.scalar(0.0, g.dtype(x))?;
    let xp = if p > 0 {
        g.pad(x, zero, &[0, pi, pi, 0], &[0, pi, pi, 0], &[0, 0, 0, 0])?
    } else {
        x
    };
    let c = xd[3];
    let w2 = g.reshape(w, &[c, k * k])?;
    let out = [xd[0], ho, wo, c];
    let mut acc: Option<Value> = None;
    for i in 0..k {
        for j in 0..k {
            let lim = [xd[0], i + (ho - 1) * s + 1, j + (wo - 1) * s + 1, c];
            let xs = g.slice(xp, &[0, i, j, 0], &lim, &[1, s, s, 1])?;
            let t = i * k + j;
            let wt = g.slice(w2, &[0, t], &[c, t + 1], &[1, 1])?;
            let wt = g.reshape(wt, &[c])?;
            let wb = g.broadcast_in_dim(wt, &out, &[3])?;
            let term = g.mul(xs, wb)?;
            acc = Some(match acc {
                Some(a) => g.add(a, term)?,
                None => term,
            });
        }
    }
    #[allow(
        clippy::expect_used,
        reason = "the loops run k² ≥ 1 times: a kernel has at least one tap"
    )]
    g.convert(acc.expect("k ≥ 1"), dt)
}
