//! The core of the spec language: the built-in layers and the combinators. Everything else (convBn,
//! the residual and inverted-bottleneck families, SE, fire, patch embedding, transformers) is written
//! in the language itself, in `prelude.ns`.
//!
//! A core layer is one row of [`CORE`] (name, arguments with types and defaults, one-line meaning:
//! the table the parser checks calls against and `netspec layers` prints) and one variant of
//! [`Layer`], whose [`Layer::infer`] gives its output shape, parameters, BN buffers and FLOPs. The
//! lowering (`nn`) and the JAX export (`jaxgen`) implement each variant as its doc comment says.
//!
//! Conventions: images are `[B, C, H, W]` (NCHW at every boundary), tokens `[B, T, D]`, features
//! `[B, N]`; "features" means C, D or N. Conv kernels are OIHW, dense kernels `[in, out]`.

use crate::analyze::{checked_elems, Init, ParamSpec, Shape, MAX_DIM};
use crate::ast::{Act, Join, Ty, Value};

/// A core layer or combinator signature.
#[derive(Debug)]
pub struct Sig {
    pub name: &'static str,
    /// Whether the first argument may be given by position (`conv2d 64`).
    pub positional: bool,
    pub args: &'static [Arg],
    /// Whether `in=N` (a stated input feature count, checked) is accepted.
    pub takes_in: bool,
    /// Combinators take an indented body.
    pub body: bool,
    /// The one-line meaning (`netspec layers`).
    pub doc: &'static str,
}

#[derive(Debug)]
pub struct Arg {
    pub name: &'static str,
    pub ty: Ty,
    pub default: Def,
}

/// Default of a core argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Def {
    Required,
    /// `auto`: the layer decides (see the layer's doc).
    Auto,
    Is(Value),
}

const fn arg(name: &'static str, ty: Ty, default: Def) -> Arg {
    Arg { name, ty, default }
}
const REQ: Def = Def::Required;
const ONE: Def = Def::Is(Value::Int(1));
const fn act(a: Act) -> Def {
    Def::Is(Value::Act(a))
}
const fn layer(
    name: &'static str,
    positional: bool,
    takes_in: bool,
    args: &'static [Arg],
    doc: &'static str,
) -> Sig {
    Sig {
        name,
        positional,
        args,
        takes_in,
        body: false,
        doc,
    }
}
const fn combinator(
    name: &'static str,
    positional: bool,
    args: &'static [Arg],
    doc: &'static str,
) -> Sig {
    Sig {
        name,
        positional,
        args,
        takes_in: false,
        body: true,
        doc,
    }
}

/// Every core layer, then the combinators.
#[rustfmt::skip]
pub const CORE: &[Sig] = &[
    layer("dense", true, true,
        &[arg("out", Ty::Int, REQ), arg("act", Ty::Act, act(Act::Identity))],
        "fully connected over the last axis: [B, N] → [B, out], tokens [B, T, D] → [B, T, out]; w [N, out], b [out]"),
    layer("conv2d", true, true,
        &[arg("out", Ty::Int, REQ), arg("kernel", Ty::Int, REQ), arg("stride", Ty::Int, ONE),
          arg("pad", Ty::Int0, Def::Auto), arg("groups", Ty::Int, ONE),
          arg("bias", Ty::Bool, Def::Is(Value::Bool(true))), arg("act", Ty::Act, act(Act::Identity))],
        "2-D convolution (cross-correlation), zero padding pad (auto: (kernel − 1)/2, odd kernel); w [out, C/groups, k, k], b [out] if bias"),
    layer("batchNorm", false, true, &[],
        "batch norm over (B, H, W) of images, B of [B, N]; ε 1e-5; gamma, beta; running mean, var buffers (momentum 0.1)"),
    layer("layerNorm", false, true, &[],
        "layer norm over the features (C of an image at each position, D of each token, N), ε 1e-6; gamma, beta"),
    layer("instanceNorm", false, true, &[],
        "per example and channel over (H, W), ε 1e-5, same in training and eval; gamma, beta"),
    layer("maxPool", true, false,
        &[arg("size", Ty::Int, REQ), arg("stride", Ty::Int, Def::Auto), arg("pad", Ty::Int0, Def::Is(Value::Int(0)))],
        "max over size×size windows, stride (auto: size), −∞ padding pad ≤ size/2"),
    layer("avgPool", true, false,
        &[arg("size", Ty::Int, REQ), arg("stride", Ty::Int, Def::Auto), arg("pad", Ty::Int0, Def::Is(Value::Int(0)))],
        "mean over size×size windows, stride (auto: size), zero padding pad ≤ size/2 that counts (divides by size²)"),
    layer("globalAvgPool", false, false, &[arg("keep", Ty::Bool, Def::Is(Value::Bool(false)))],
        "mean over (H, W): [B, C, H, W] → [B, C] ([B, C, 1, 1] with keep=true)"),
    layer("flatten", false, false, &[],
        "[B, C, H, W] → [B, C·H·W] in (C, H, W) order; [B, T, D] → [B, T·D]"),
    layer("dropout", true, false, &[arg("rate", Ty::Rate, REQ)],
        "in training zeroes each element with probability rate and scales the rest by 1/(1 − rate); identity in eval"),
    layer("dropPath", true, false, &[arg("rate", Ty::Rate, REQ)],
        "stochastic depth: in training zeroes each example with probability rate and scales the rest by 1/(1 − rate); identity in eval"),
    layer("act", true, false, &[arg("fn", Ty::Act, REQ)],
        "an activation: identity relu relu6 swish hswish hsigmoid gelu (tanh form) sigmoid geluErf (exact)"),
    layer("identity", false, false, &[], "the input, unchanged"),
    layer("scale", true, true, &[arg("init", Ty::Real, Def::Is(Value::Real(1.0)))],
        "learned per-feature scale (layer scale): y = gamma·x, gamma [features] initialised to init"),
    layer("attention", true, true, &[arg("heads", Ty::Int, REQ)],
        "multi-head self-attention on tokens: qkv w [D, 3D] + b → softmax(q·kᵀ/√(D/heads))·v per head → proj w [D, D] + b"),
    layer("toTokens", false, false, &[], "image [B, C, H, W] → tokens [B, H·W, C], positions in row-major order"),
    layer("clsToken", false, true, &[],
        "prepends a learned token: [B, T, D] → [B, T + 1, D]; cls [D] (normal, std 0.02)"),
    layer("posEmbed", false, true, &[],
        "adds a learned positional embedding pos [T, D] (normal, std 0.02)"),
    layer("clsPool", false, false, &[], "the first (CLS) token: [B, T, D] → [B, D]"),
    combinator("seq", false, &[], "its body in order: one branch, or one name for several statements"),
    combinator("add", false,
        &[arg("stride", Ty::Int, ONE), arg("when", Ty::Bool, Def::Is(Value::Bool(true)))],
        "body(x) + x, a residual connection; x goes through `down` (1×1 conv with stride, no bias, + BN) when the body changes its shape; when=false: body(x) alone"),
    combinator("parallel", true, &[arg("join", Ty::Join, REQ)],
        "each body statement is a branch applied to the input; joined by concat (features), mul or add"),
    combinator("repeat", true, &[arg("count", Ty::Int, REQ)],
        "count copies of its body, named b0, b1, …; `i` is the copy's index"),
];

/// The core layer or combinator `name`.
pub fn sig(name: &str) -> Option<&'static Sig> {
    CORE.iter().find(|s| s.name == name)
}

/// A core layer with its arguments evaluated. Shapes, parameters and FLOPs: [`Layer::infer`].
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// `y = act(x·w + b)` over the last axis of `[B, N]` or of each token.
    Dense {
        out: usize,
        act: Act,
    },
    /// `y = act(conv(x) [+ b])`; `pad` resolved (auto = `(kernel − 1)/2`).
    Conv2d {
        out: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        groups: usize,
        bias: bool,
        act: Act,
    },
    /// Training: batch statistics (biased variance), running statistics updated with momentum 0.1;
    /// eval: the running statistics. `y = γ·(x − μ)/√(σ² + ε) + β`, ε = 1e-5.
    BatchNorm,
    /// Over the feature axis, biased variance, ε = 1e-6, affine.
    LayerNorm,
    /// Per example and channel over (H, W), biased variance, ε = 1e-5, affine.
    InstanceNorm,
    /// −∞ padding; output `⌊(H + 2·pad − size)/stride⌋ + 1`.
    MaxPool {
        size: usize,
        stride: usize,
        pad: usize,
    },
    /// Zero padding that counts: always divides by `size²`.
    AvgPool {
        size: usize,
        stride: usize,
        pad: usize,
    },
    GlobalAvgPool {
        keep: bool,
    },
    Flatten,
    Dropout {
        rate: f32,
    },
    /// Per-example mask `[B]` in training (keep probability `1 − rate`, kept examples scaled by
    /// `1/(1 − rate)`), identity in eval (torchvision `StochasticDepth(mode="row")`).
    DropPath {
        rate: f32,
    },
    Activation(Act),
    Identity,
    /// `y = γ·x` with `γ : [features]` along the feature axis.
    Scale {
        init: f32,
    },
    /// Pre-split MHSA: `qkv = x·w + b` with columns `[q | k | v]`, each split into `heads` contiguous
    /// chunks of `D/heads`; per head `softmax(q·kᵀ/√(D/heads))·v`; heads concatenated; `·proj.w + b`.
    Attention {
        heads: usize,
    },
    /// `[B, C, H, W] → [B, H·W, C]`, token `h·W + w` from position `(h, w)`.
    ToTokens,
    /// `[B, T, D] → [B, T + 1, D]` with the learned `cls` first.
    ClsToken,
    /// `x + pos`, `pos : [T, D]`.
    PosEmbed,
    /// Token 0.
    ClsPool,
}

impl Layer {
    /// The layer's name in spec files.
    pub fn name(&self) -> &'static str {
        match self {
            Layer::Dense { .. } => "dense",
            Layer::Conv2d { .. } => "conv2d",
            Layer::BatchNorm => "batchNorm",
            Layer::LayerNorm => "layerNorm",
            Layer::InstanceNorm => "instanceNorm",
            Layer::MaxPool { .. } => "maxPool",
            Layer::AvgPool { .. } => "avgPool",
            Layer::GlobalAvgPool { .. } => "globalAvgPool",
            Layer::Flatten => "flatten",
            Layer::Dropout { .. } => "dropout",
            Layer::DropPath { .. } => "dropPath",
            Layer::Activation(_) => "act",
            Layer::Identity => "identity",
            Layer::Scale { .. } => "scale",
            Layer::Attention { .. } => "attention",
            Layer::ToTokens => "toTokens",
            Layer::ClsToken => "clsToken",
            Layer::PosEmbed => "posEmbed",
            Layer::ClsPool => "clsPool",
        }
    }

    /// Whether the layer draws random numbers in training (dropout, dropPath with a rate > 0).
    pub fn is_random(&self) -> bool {
        match *self {
            Layer::Dropout { rate } | Layer::DropPath { rate } => rate > 0.0,
            Layer::Dense { .. }
            | Layer::Conv2d { .. }
            | Layer::BatchNorm
            | Layer::LayerNorm
            | Layer::InstanceNorm
            | Layer::MaxPool { .. }
            | Layer::AvgPool { .. }
            | Layer::GlobalAvgPool { .. }
            | Layer::Flatten
            | Layer::Activation(_)
            | Layer::Identity
            | Layer::Scale { .. }
            | Layer::Attention { .. }
            | Layer::ToTokens
            | Layer::ClsToken
            | Layer::PosEmbed
            | Layer::ClsPool => false,
        }
    }

    /// The layer `name` from its argument values, in the order of its [`Sig`] (`Value::Auto` for an
    /// `auto` argument). The values have their declared types (checked by the caller).
    pub fn build(name: &str, v: &[Value]) -> Result<Layer, String> {
        let sig = sig(name).ok_or_else(|| format!("`{name}` is not a core layer"))?;
        let get = |n: &str| -> Value {
            #[allow(
                clippy::expect_used,
                reason = "`get` is called only with names of this layer's own signature"
            )]
            let i = sig
                .args
                .iter()
                .position(|a| a.name == n)
                .expect("argument in table");
            v[i]
        };
        let int = |n: &str| -> Result<usize, String> {
            match get(n) {
                Value::Int(i) if (0..=MAX_DIM as i64).contains(&i) => Ok(i as usize),
                Value::Int(i) => Err(format!("`{n}` must be between 0 and {MAX_DIM}, got {i}")),
                other => Err(format!("`{n}` must be a whole number, got {other}")),
            }
        };
        let opt = |n: &str| -> Result<Option<usize>, String> {
            match get(n) {
                Value::Auto => Ok(None),
                _ => int(n).map(Some),
            }
        };
        let act = |n: &str| match get(n) {
            Value::Act(a) => a,
            _ => Act::Identity,
        };
        let flag = |n: &str| get(n) == Value::Bool(true);
        let real = |n: &str| match get(n) {
            Value::Real(r) => r,
            Value::Int(i) => i as f64,
            _ => 0.0,
        };
        let rate = |n: &str| -> Result<f32, String> {
            let r = real(n);
            if !(0.0..1.0).contains(&r) {
                return Err(format!("`{n}` must be a rate in [0, 1), got {r}"));
            }
            Ok(r as f32)
        };
        let pos = |n: &str, v: usize| -> Result<usize, String> {
            if v == 0 {
                return Err(format!("`{n}` must be at least 1, got 0"));
            }
            Ok(v)
        };
        Ok(match name {
            "dense" => Layer::Dense {
                out: pos("out", int("out")?)?,
                act: act("act"),
            },
            "conv2d" => {
                let kernel = pos("kernel", int("kernel")?)?;
                let pad = match opt("pad")? {
                    None if kernel % 2 == 0 => {
                        return Err(format!(
                            "`kernel` must be odd (so that padding (k-1)/2 keeps the size), got {kernel}"
                        ))
                    }
                    None => (kernel - 1) / 2,
                    Some(p) if p >= kernel => {
                        return Err(format!(
                            "`pad` must be smaller than the kernel ({kernel}), got {p}"
                        ))
                    }
                    Some(p) => p,
                };
                Layer::Conv2d {
                    out: pos("out", int("out")?)?,
                    kernel,
                    stride: pos("stride", int("stride")?)?,
                    pad,
                    groups: pos("groups", int("groups")?)?,
                    bias: flag("bias"),
                    act: act("act"),
                }
            }
            "batchNorm" => Layer::BatchNorm,
            "layerNorm" => Layer::LayerNorm,
            "instanceNorm" => Layer::InstanceNorm,
            "maxPool" | "avgPool" => {
                let size = pos("size", int("size")?)?;
                let stride = pos("stride", opt("stride")?.unwrap_or(size))?;
                let pad = int("pad")?;
                if pad > size / 2 {
                    return Err(format!(
                        "`pad` must be at most half the window ({}), got {pad}",
                        size / 2
                    ));
                }
                if name == "maxPool" {
                    Layer::MaxPool { size, stride, pad }
                } else {
                    Layer::AvgPool { size, stride, pad }
                }
            }
            "globalAvgPool" => Layer::GlobalAvgPool { keep: flag("keep") },
            "flatten" => Layer::Flatten,
            "dropout" => Layer::Dropout {
                rate: rate("rate")?,
            },
            "dropPath" => Layer::DropPath {
                rate: rate("rate")?,
            },
            "act" => Layer::Activation(act("fn")),
            "identity" => Layer::Identity,
            "scale" => {
                let init = real("init");
                if !(init.is_finite() && init.abs() <= f32::MAX as f64) {
                    return Err(format!("`init` must be a finite f32, got {init}"));
                }
                Layer::Scale { init: init as f32 }
            }
            "attention" => Layer::Attention {
                heads: pos("heads", int("heads")?)?,
            },
            "toTokens" => Layer::ToTokens,
            "clsToken" => Layer::ClsToken,
            "posEmbed" => Layer::PosEmbed,
            "clsPool" => Layer::ClsPool,
            other => return Err(format!("`{other}` is a combinator, not a layer")),
        })
    }

    /// Output shape, parameters (named `{path}.{name}`), BN buffers and forward FLOPs per example of
    /// this layer applied to `x`; the `Err` says what is wrong and what to change.
    pub fn infer(&self, path: &str, x: Shape) -> Result<Inferred, String> {
        let mut r = Inferred {
            out: x,
            params: Vec::new(),
            buffers: Vec::new(),
            flops: 0,
        };
        let elems = x.elems() as u64;
        let f = x.features();
        match *self {
            Layer::Dense { out, act } => {
                let rows = match x {
                    Shape::Flat { .. } => 1,
                    Shape::Tokens { t, .. } => t,
                    Shape::Image { .. } => return Err(format!(
                        "expects a flat [B, N] input (or tokens) but gets {x}; insert `flatten` (or `globalAvgPool`) before it"
                    )),
                };
                r.param(path, "w", vec![f, out], Init::HeNormal { fan_in: f }, true)?;
                r.param(path, "b", vec![out], Init::Zeros, false)?;
                r.out = x.with_features(out);
                checked_elems(&r.out.dims())?;
                let n = (rows * out) as u64;
                r.flops = n.saturating_mul(2 * f as u64) + n + act_flops(act, n);
            }
            Layer::Conv2d {
                out,
                kernel: k,
                stride,
                pad,
                groups,
                bias,
                act,
            } => {
                let (c, _, _) = need_image(x)?;
                if c % groups != 0 || out % groups != 0 {
                    return Err(format!(
                        "`groups` ({groups}) must divide the input channels ({c}) and `out` ({out})"
                    ));
                }
                let what = if groups > 1 { "depthwise conv" } else { "conv" };
                let (ho, wo) = window(what, x, k, stride, pad)?;
                r.out = Shape::Image {
                    c: out,
                    h: ho,
                    w: wo,
                };
                checked_elems(&r.out.dims())?;
                let cin = c / groups;
                let fan_in = cin * k * k;
                r.param(
                    path,
                    "w",
                    vec![out, cin, k, k],
                    Init::HeNormal { fan_in },
                    true,
                )?;
                let n = r.out.elems() as u64;
                if bias {
                    r.param(path, "b", vec![out], Init::Zeros, false)?;
                    r.flops += n;
                }
                r.flops = r.flops.saturating_add(n.saturating_mul(2 * fan_in as u64));
                r.flops += act_flops(act, n);
            }
            Layer::BatchNorm => {
                if let Shape::Tokens { .. } = x {
                    return Err(format!(
                        "expects [B, C, H, W] or [B, N] but gets tokens {x}; use `layerNorm` for tokens"
                    ));
                }
                r.param(path, "gamma", vec![f], Init::Ones, false)?;
                r.param(path, "beta", vec![f], Init::Zeros, false)?;
                for (name, init) in [("mean", Init::Zeros), ("var", Init::Ones)] {
                    r.buffers.push(ParamSpec {
                        name: join(path, name),
                        shape: vec![f],
                        init,
                        decay: false,
                    });
                }
                r.flops = 4 * elems;
            }
            Layer::LayerNorm | Layer::InstanceNorm => {
                if *self == Layer::InstanceNorm {
                    need_image(x)?;
                }
                r.param(path, "gamma", vec![f], Init::Ones, false)?;
                r.param(path, "beta", vec![f], Init::Zeros, false)?;
                r.flops = 4 * elems;
            }
            Layer::MaxPool { size, stride, pad } | Layer::AvgPool { size, stride, pad } => {
                let (c, _, _) = need_image(x)?;
                let what = if let Layer::MaxPool { .. } = self {
                    "max pool"
                } else {
                    "average pool"
                };
                let (h, w) = window(what, x, size, stride, pad)?;
                r.out = Shape::Image { c, h, w };
                r.flops = r.out.elems() as u64 * (size * size) as u64;
            }
            Layer::GlobalAvgPool { keep } => {
                let (c, _, _) = need_image(x)?;
                r.out = if keep {
                    Shape::Image { c, h: 1, w: 1 }
                } else {
                    Shape::Flat { n: c }
                };
                r.flops = elems;
            }
            Layer::Flatten => {
                if let Shape::Flat { .. } = x {
                    return Err(format!(
                        "the input {x} is already flat; remove this `flatten`"
                    ));
                }
                r.out = Shape::Flat { n: x.elems() };
            }
            Layer::Dropout { .. } | Layer::DropPath { .. } | Layer::Identity => {}
            Layer::Activation(a) => r.flops = act_flops(a, elems),
            Layer::Scale { init } => {
                r.param(
                    path,
                    "gamma",
                    vec![f],
                    Init::Constant { value: init },
                    false,
                )?;
                r.flops = elems;
            }
            Layer::Attention { heads } => {
                let (t, d) = need_tokens(x)?;
                if d % heads != 0 {
                    return Err(format!(
                        "{heads} heads do not divide the token dim {d}; use a head count that divides {d}"
                    ));
                }
                checked_elems(&[t, t, heads])?;
                checked_elems(&[t, 3 * d])?;
                let he = Init::HeNormal { fan_in: d };
                r.param(path, "qkv.w", vec![d, 3 * d], he, true)?;
                r.param(path, "qkv.b", vec![3 * d], Init::Zeros, false)?;
                r.param(path, "proj.w", vec![d, d], he, true)?;
                r.param(path, "proj.b", vec![d], Init::Zeros, false)?;
                let (t, d, h) = (t as u64, d as u64, heads as u64);
                r.flops = 2 * t * d * 3 * d + 3 * t * d // qkv
                    + 2 * t * t * d + 3 * t * t * h // scores, softmax
                    + 2 * t * t * d // attention · v
                    + 2 * t * d * d + t * d; // proj
            }
            Layer::ToTokens => {
                let (c, h, w) = need_image(x)?;
                r.out = Shape::Tokens { t: h * w, d: c };
            }
            Layer::ClsToken => {
                let (t, d) = need_tokens(x)?;
                r.param(path, "cls", vec![d], Init::Normal { std: 0.02 }, false)?;
                r.out = Shape::Tokens { t: t + 1, d };
                checked_elems(&r.out.dims())?;
            }
            Layer::PosEmbed => {
                let (t, d) = need_tokens(x)?;
                r.param(path, "pos", vec![t, d], Init::Normal { std: 0.02 }, false)?;
                r.flops = elems;
            }
            Layer::ClsPool => {
                let (_, d) = need_tokens(x)?;
                r.out = Shape::Flat { n: d };
            }
        }
        Ok(r)
    }
}

/// What [`Layer::infer`] finds.
#[derive(Clone, Debug, PartialEq)]
pub struct Inferred {
    pub out: Shape,
    pub params: Vec<ParamSpec>,
    pub buffers: Vec<ParamSpec>,
    pub flops: u64,
}

impl Inferred {
    fn param(
        &mut self,
        path: &str,
        name: &str,
        shape: Vec<usize>,
        init: Init,
        decay: bool,
    ) -> Result<(), String> {
        let name = join(path, name);
        checked_elems(&shape).map_err(|m| format!("parameter `{name}`: {m}"))?;
        self.params.push(ParamSpec {
            name,
            shape,
            init,
            decay,
        });
        Ok(())
    }
}

/// `a.b`, or `b` when `a` is empty.
pub(crate) fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// One FLOP per element for every activation but the identity.
fn act_flops(a: Act, n: u64) -> u64 {
    match a {
        Act::Identity => 0,
        Act::Relu
        | Act::Relu6
        | Act::Swish
        | Act::HardSwish
        | Act::HardSigmoid
        | Act::Gelu
        | Act::Sigmoid
        | Act::GeluErf => n,
    }
}

pub(crate) fn need_image(x: Shape) -> Result<(usize, usize, usize), String> {
    match x {
        Shape::Image { c, h, w } => Ok((c, h, w)),
        Shape::Flat { .. } => Err(format!(
            "expects an image [B, C, H, W] but gets {x}; image layers must come before `flatten`/`globalAvgPool`/`dense`"
        )),
        Shape::Tokens { .. } => Err(format!(
            "expects an image [B, C, H, W] but gets tokens {x}; image layers must come before `patchEmbed`"
        )),
    }
}

fn need_tokens(x: Shape) -> Result<(usize, usize), String> {
    match x {
        Shape::Tokens { t, d } => Ok((t, d)),
        Shape::Image { .. } => Err(format!(
            "expects tokens [B, T, D] but gets {x}; insert `patchEmbed` before it"
        )),
        Shape::Flat { .. } => Err(format!("expects tokens [B, T, D] but gets {x}")),
    }
}

/// Output size of a `k×k` window with stride `s` and padding `p` over the image `x`, or an error
/// saying that the spatial size shrinks to zero.
fn window(what: &str, x: Shape, k: usize, s: usize, p: usize) -> Result<(usize, usize), String> {
    let (_, h, w) = need_image(x)?;
    // h, w, k, p ≤ MAX_DIM, so h + 2p cannot overflow.
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    if ph < k || pw < k {
        return Err(format!(
            "the {k}×{k} {what} (padding {p}) does not fit its {h}×{w} input {x}: the spatial size shrinks to zero; \
             remove a downsampling layer before it or use a larger input"
        ));
    }
    Ok(((ph - k) / s + 1, (pw - k) / s + 1))
}

/// The output of `parallel` with `join` over branch outputs `ys` (all from the same input).
pub(crate) fn join_shapes(join: Join, ys: &[Shape]) -> Result<Shape, String> {
    let first = ys[0];
    let list = || {
        ys.iter()
            .map(|y| y.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match join {
        Join::Concat => {
            let total = ys.iter().map(|y| y.features()).sum::<usize>();
            if ys
                .iter()
                .any(|y| y.with_features(1) != first.with_features(1))
            {
                return Err(format!(
                    "`parallel concat` joins branches that differ only in their features; the branches give {}",
                    list()
                ));
            }
            let out = first.with_features(total);
            checked_elems(&out.dims())?;
            Ok(out)
        }
        Join::Mul | Join::Add => {
            // The widest branch; `mul` broadcasts [B, C, 1, 1] branches over [B, C, H, W].
            #[allow(
                clippy::expect_used,
                reason = "a join has at least one branch (`elab` refuses a `parallel` with none)"
            )]
            let out = *ys.iter().max_by_key(|y| y.elems()).expect("a branch");
            let fits = |y: &Shape| {
                *y == out
                    || (join == Join::Mul
                        && matches!((y, out), (Shape::Image { c, h: 1, w: 1 }, Shape::Image { c: oc, .. }) if *c == oc))
            };
            if !ys.iter().all(fits) {
                let how = if join == Join::Mul {
                    "equal shapes (or [B, C, 1, 1] against [B, C, H, W])"
                } else {
                    "equal shapes"
                };
                return Err(format!(
                    "`parallel {}` needs {how}; the branches give {}",
                    join.name(),
                    list()
                ));
            }
            Ok(out)
        }
    }
}
