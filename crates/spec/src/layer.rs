//! The data model: [`NetSpec`], [`Layer`], [`Act`].
//!
//! This file is the **reference definition** of every layer. The lowering (`nn`) and the JAX export
//! (`jaxgen`) must implement exactly the structure written in these doc comments; the parameter
//! list that `crate::params` produces follows the same text, in the same order.
//!
//! # Conventions used by every layer
//! * Activations are NCHW `[B, C, H, W]`; tokens `[B, T, D]`; flat features `[B, N]`.
//! * **conv(k, s, p, g)**: 2-D cross-correlation (as `stablehlo.convolution`), OIHW kernel
//!   `[out, in/g, k, k]`, stride `s` in both directions, zero padding `p` on all four sides,
//!   `g` feature groups (`g = C` is a depthwise conv with kernel `[C, 1, k, k]`).
//!   Output size `⌊(H + 2p − k)/s⌋ + 1`. Unless a layer says otherwise, `p = (k − 1)/2` ("same"
//!   for stride 1, torchvision-style symmetric padding; `k` must then be odd).
//! * **BN** (batch norm, per channel): training uses the batch statistics over (N, H, W) (over N for
//!   flat input), biased variance, ε = 1e-5: `y = γ·(x − μ)/√(σ² + ε) + β`; eval/predict use the
//!   running mean/var (ARCHITECTURE.md, "Batch norm"). Parameters `gamma`, `beta`; buffers `mean`,
//!   `var` (all `[C]`).
//! * **convBN(k, s, g) + act** = conv without bias → BN → activation (no activation when "linear").
//! * **SE(C → r)** (squeeze-excitation on a `[B, C, H, W]` tensor): `s = mean over (H, W)` → `[B, C]`;
//!   `s = inner_act(s·W1ᵀ + b1)` with `reduce.w : [r, C, 1, 1]`, `reduce.b : [r]`;
//!   `s = gate(s·W2ᵀ + b2)` with `expand.w : [C, r, 1, 1]`, `expand.b : [C]`; output `x · s` broadcast
//!   over (H, W). (The 1×1 kernels are stored OIHW like torchvision's 1×1 convs; applied to the pooled
//!   `[B, C]` they are plain matmuls.)
//! * **Skip rule** for the inverted-bottleneck family (invertedResidual, mbConv, mbConvV3,
//!   fusedMbConv, uib): the block adds its input to its output iff `stride == 1` and
//!   `in == out`; there is no activation after the addition.
//! * Multi-block stages (`blocks = n`, 1 ≤ n ≤ 1024): block 0 has the stated stride and maps
//!   `in → out`; blocks 1..n have stride 1 and map `out → out`.
//! * `make_divisible(v, 8) = max(8, ⌊v + 4⌋₈)` rounded down to a multiple of 8, plus 8 if that
//!   lost more than 10 % of `v` (torchvision's `_make_divisible`; see [`make_divisible`]).
//! * `in_ch: Option<usize>` on a layer is an optional statement of the input channels (features for
//!   `dense`, token dim for `transformer`/`layerNorm`); shape inference checks it and otherwise
//!   ignores it. Input channels are always inferred.

use std::fmt;

/// Elementwise activation functions.
///
/// Formulas (σ(x) = 1/(1 + e^−x), relu6(x) = min(max(x, 0), 6)):
/// * `Identity`: x
/// * `Relu`: max(x, 0)
/// * `Relu6`: relu6(x)
/// * `Swish` (SiLU): x·σ(x)
/// * `HardSwish`: x·relu6(x + 3)/6
/// * `HardSigmoid`: relu6(x + 3)/6
/// * `Gelu`: tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
/// * `Sigmoid`: σ(x)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    Identity,
    Relu,
    Relu6,
    Swish,
    HardSwish,
    HardSigmoid,
    Gelu,
    Sigmoid,
}

impl Act {
    /// Every activation, in declaration order.
    pub const ALL: [Act; 8] = [
        Act::Identity,
        Act::Relu,
        Act::Relu6,
        Act::Swish,
        Act::HardSwish,
        Act::HardSigmoid,
        Act::Gelu,
        Act::Sigmoid,
    ];

    /// The name used in spec files (`relu`, `hswish`, …).
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Relu => "relu",
            Act::Relu6 => "relu6",
            Act::Swish => "swish",
            Act::HardSwish => "hswish",
            Act::HardSigmoid => "hsigmoid",
            Act::Gelu => "gelu",
            Act::Sigmoid => "sigmoid",
        }
    }

    /// Inverse of [`Act::name`].
    pub fn from_name(s: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.name() == s)
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A whole network: a name, the input shape, the class count and a sequence of layers.
///
/// The input is always an image batch `[B, C, H, W]` (`input = [C, H, W]`); an MLP on MNIST takes
/// `[1, 28, 28]` and starts with `flatten`. Token models also take images: ViT starts with
/// [`Layer::PatchEmbed`], which patchifies the image into tokens `[B, T, D]`. The batch size `B`
/// is not part of the spec (the training recipe chooses it).
///
/// A valid spec ends with flat logits `[B, num_classes]` (see `crate::infer_shapes`).
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    /// Identifier used in file names, traces and MLIR module names (`[A-Za-z0-9_.-]+`).
    pub name: String,
    /// `[C, H, W]` of one input image.
    pub input: [usize; 3],
    /// Number of classes (width of the logits).
    pub num_classes: usize,
    /// The layers, applied in order. Parameter names are rooted at the index here (`l0`, `l1`, …).
    pub layers: Vec<Layer>,
}

/// One layer. Fields are what a person writes; input channels are inferred.
///
/// Each variant's doc gives the exact computation and its parameters in ABI order, as
/// `name : shape` relative to the layer's prefix `l{i}.` (blocks add `b{j}.` for block `j`).
/// "decay" marks the parameters that get weight decay (conv/dense kernels only).
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// Fully connected: `[B, N] → [B, out]`, `y = act(x·w + b)`.
    /// Params: `w : [N, out]` (decay), `b : [out]`. Needs flat input (use `flatten` or
    /// `globalAvgPool` before it).
    Dense {
        out: usize,
        act: Act,
        in_ch: Option<usize>,
    },

    /// Convolution with bias: `y = act(conv(kernel, stride, pad, 1)(x) + b)`.
    /// `pad = None` means `(kernel − 1)/2` and requires an odd kernel; an explicit pad must be
    /// `< kernel`. Params: `w : [out, C, k, k]` (decay), `b : [out]`.
    Conv2d {
        out: usize,
        kernel: usize,
        stride: usize,
        pad: Option<usize>,
        act: Act,
        in_ch: Option<usize>,
    },

    /// conv (no bias) → BN → act. Padding as in [`Layer::Conv2d`]. Default act in files: relu.
    /// Params: `conv.w : [out, C, k, k]` (decay), `bn.gamma`, `bn.beta : [out]`;
    /// buffers `bn.mean`, `bn.var : [out]`.
    ConvBn {
        out: usize,
        kernel: usize,
        stride: usize,
        pad: Option<usize>,
        act: Act,
        in_ch: Option<usize>,
    },

    /// Standalone batch norm on `[B, C, H, W]` (statistics over N, H, W) or `[B, N]` (over the batch).
    /// Params: `gamma`, `beta : [C]`; buffers `mean`, `var : [C]`.
    BatchNorm { in_ch: Option<usize> },

    /// Layer norm over the feature axis, ε = 1e-6, biased variance, affine:
    /// `[B, N]` normalizes over N; `[B, T, D]` over D per token; `[B, C, H, W]` over C at each
    /// position (channels-first LN as in ConvNeXt). Params: `gamma`, `beta : [features]`.
    LayerNorm { in_ch: Option<usize> },

    /// Instance norm on `[B, C, H, W]`: per example and channel over (H, W), ε = 1e-5, biased
    /// variance, affine, no running statistics (same in training and eval).
    /// Params: `gamma`, `beta : [C]`.
    InstanceNorm { in_ch: Option<usize> },

    /// Max pool, window `size × size`, stride `stride`, padding `pad` on all sides with −∞
    /// (`pad ≤ size/2`). Output `⌊(H + 2·pad − size)/stride⌋ + 1`. No params.
    MaxPool {
        size: usize,
        stride: usize,
        pad: usize,
    },

    /// Average pool, window `size × size`, stride, zero padding `pad` (`pad ≤ size/2`);
    /// always divides by `size²` (padding counts, like PyTorch's `count_include_pad=True`).
    /// No params.
    AvgPool {
        size: usize,
        stride: usize,
        pad: usize,
    },

    /// Mean over (H, W): `[B, C, H, W] → [B, C]`. No params.
    GlobalAvgPool,

    /// `[B, C, H, W] → [B, C·H·W]` (row-major over C, H, W) or `[B, T, D] → [B, T·D]`. No params.
    Flatten,

    /// Inverted dropout with drop probability `rate` (`0 ≤ rate < 1`): in training each element is
    /// zeroed with probability `rate` and the rest scaled by `1/(1 − rate)`; identity in eval and
    /// predict. Where the random mask comes from is the lowering's business. No params.
    Dropout { rate: f32 },

    /// A standalone elementwise activation. No params.
    Activation { act: Act },

    /// ResNet BasicBlock stage (torchvision `BasicBlock`). Per block (input `c`, stride `s`):
    /// `h = relu(BN1(conv1 3×3/s (c→out)(x)))`, `h = BN2(conv2 3×3/1 (out→out)(h))`,
    /// `y = relu(h + shortcut(x))`, where `shortcut = BN(conv 1×1/s (c→out))` ("down") if
    /// `s ≠ 1` or `c ≠ out`, else identity. Params per block `b{j}.`: `conv1.w : [out, c, 3, 3]`,
    /// `bn1.{gamma,beta}`, `conv2.w : [out, out, 3, 3]`, `bn2.{gamma,beta}`, then (if projecting)
    /// `down.conv.w : [out, c, 1, 1]`, `down.bn.{gamma,beta}`. Buffers: `bn1`, `bn2`, `down.bn`
    /// mean/var in the same order.
    Residual {
        out: usize,
        blocks: usize,
        stride: usize,
        in_ch: Option<usize>,
    },

    /// ResNet-50 bottleneck stage, v1.5 (stride on the 3×3, torchvision `Bottleneck`), expansion 4:
    /// `mid = out/4` (`out` must be a multiple of 4). Per block (input `c`, stride `s`):
    /// `h = relu(BN1(conv1 1×1 (c→mid)))`, `h = relu(BN2(conv2 3×3/s (mid→mid)))`,
    /// `h = BN3(conv3 1×1 (mid→out))`, `y = relu(h + shortcut(x))`, shortcut as in
    /// [`Layer::Residual`] (`down` = 1×1/s conv + BN when `s ≠ 1` or `c ≠ out`).
    /// Params per block: `conv1.w`, `bn1.*`, `conv2.w`, `bn2.*`, `conv3.w`, `bn3.*`, [`down.conv.w`,
    /// `down.bn.*`].
    Bottleneck {
        out: usize,
        blocks: usize,
        stride: usize,
        in_ch: Option<usize>,
    },

    /// MobileNet v1 depthwise-separable conv: `dw` = depthwise convBN(3×3, stride, groups = C) + act,
    /// then `pw` = pointwise convBN(1×1, C→out) + act. No skip.
    /// Params: `dw.conv.w : [C, 1, 3, 3]`, `dw.bn.*`, `pw.conv.w : [out, C, 1, 1]`, `pw.bn.*`.
    SeparableConv {
        out: usize,
        stride: usize,
        act: Act,
        in_ch: Option<usize>,
    },

    /// MobileNetV2 inverted residual stage (torchvision). Per block (input `c`, `mid = c·expand`):
    /// if `expand ≠ 1`: `expand` = convBN(1×1, c→mid) + relu6; then `dw` = depthwise
    /// convBN(3×3, stride, groups = mid) + relu6; then `project` = convBN(1×1, mid→out), linear;
    /// skip rule (module doc). Params per block: [`expand.conv.w`, `expand.bn.*`], `dw.conv.w :
    /// [mid, 1, 3, 3]`, `dw.bn.*`, `project.conv.w : [out, mid, 1, 1]`, `project.bn.*`.
    InvertedResidual {
        out: usize,
        expand: usize,
        stride: usize,
        blocks: usize,
        in_ch: Option<usize>,
    },

    /// EfficientNet MBConv stage (torchvision `MBConv`). Per block (input `c`,
    /// `mid = make_divisible(c·expand, 8)`): if `expand ≠ 1`: `expand` = convBN(1×1, c→mid) + act;
    /// `dw` = depthwise convBN(kernel, stride, groups = mid) + act; if `se`: `se` = SE(mid →
    /// max(1, ⌊c/4⌋)) with inner act = `act` and gate = sigmoid (squeeze from the *block input*
    /// channels, as torchvision); `project` = convBN(1×1, mid→out), linear; skip rule.
    /// Params per block: [`expand.*`], `dw.*`, [`se.reduce.w`, `se.reduce.b`, `se.expand.w`,
    /// `se.expand.b`], `project.*`. Default act: swish. `kernel` must be odd.
    MbConv {
        out: usize,
        expand: usize,
        kernel: usize,
        stride: usize,
        blocks: usize,
        se: bool,
        act: Act,
        in_ch: Option<usize>,
    },

    /// MobileNetV3 block (torchvision `InvertedResidual` of mobilenetv3), one block, `expanded`
    /// given in channels: if `expanded ≠ c`: `expand` = convBN(1×1, c→expanded) + act;
    /// `dw` = depthwise convBN(kernel, stride, groups = expanded) + act; if `se`:
    /// `se` = SE(expanded → make_divisible(expanded/4, 8)) with inner act relu and gate hsigmoid;
    /// `project` = convBN(1×1, expanded→out), linear; skip rule. `act` is relu or hswish in
    /// MobileNetV3 (default relu). Params: [`expand.*`], `dw.*`, [`se.*`], `project.*`.
    MbConvV3 {
        out: usize,
        expanded: usize,
        kernel: usize,
        stride: usize,
        se: bool,
        act: Act,
        in_ch: Option<usize>,
    },

    /// EfficientNetV2 Fused-MBConv stage (torchvision `FusedMBConv`). Per block (input `c`,
    /// `mid = make_divisible(c·expand, 8)`): if `expand ≠ 1`: `fused` = convBN(kernel, stride,
    /// c→mid) + act, [SE(mid → max(1, ⌊c/4⌋)), inner act = act, gate sigmoid, if `se`],
    /// `project` = convBN(1×1, mid→out), linear; if `expand = 1`: `fused` = convBN(kernel, stride,
    /// c→out) + act and nothing else (no SE, no project). Skip rule. Default act: swish.
    /// Params: `fused.*`, [`se.*`], [`project.*`]. The timm/MobileNetV4 "EdgeResidual" block is
    /// this block with `expand ≠ 1`.
    FusedMbConv {
        out: usize,
        expand: usize,
        kernel: usize,
        stride: usize,
        blocks: usize,
        se: bool,
        act: Act,
        in_ch: Option<usize>,
    },

    /// MobileNetV4 Universal Inverted Bottleneck (timm `UniversalInvertedResidual`, no layer
    /// scale), one block. `mid = make_divisible(c·expand, 8)`. A kernel of 0 means "absent".
    /// If `start_kernel > 0`: `dw_start` = depthwise convBN(start_kernel, groups = c), linear, with
    /// the block's stride if `mid_kernel == 0` (else stride 1);
    /// `expand` = convBN(1×1, c→mid) + act;
    /// if `mid_kernel > 0`: `dw_mid` = depthwise convBN(mid_kernel, stride, groups = mid) + act;
    /// `project` = convBN(1×1, mid→out), linear; skip rule. With both kernels 0 the stride must be 1
    /// (there is nowhere to put it). Default act: relu.
    /// Params: [`dw_start.*`], `expand.*`, [`dw_mid.*`], `project.*`.
    Uib {
        out: usize,
        expand: usize,
        start_kernel: usize,
        mid_kernel: usize,
        stride: usize,
        act: Act,
        in_ch: Option<usize>,
    },

    /// SqueezeNet fire module: `s = relu(conv 1×1 (c→squeeze) + b)`, then
    /// `concat_C(relu(conv 1×1 (squeeze→expand1x1) + b), relu(conv 3×3 pad 1 (squeeze→expand3x3) + b))`
    /// (the 1×1 branch first). Output channels `expand1x1 + expand3x3`.
    /// Params: `squeeze.w`, `squeeze.b`, `expand1.w`, `expand1.b`, `expand3.w`, `expand3.b`.
    Fire {
        squeeze: usize,
        expand1x1: usize,
        expand3x3: usize,
        in_ch: Option<usize>,
    },

    /// ViT patch embedding: `conv(patch, stride patch, pad 0) (C→dim) + b` gives
    /// `[B, dim, H/p, W/p]`; the patches are read in row-major (h, w) order into tokens
    /// `[B, N, dim]` (N = HW/p²); a learned `cls` token is prepended (token 0) and a learned
    /// positional embedding added: output `[B, N + 1, dim]`. H and W must be multiples of `patch`.
    /// Params: `w : [dim, C, p, p]` (decay), `b : [dim]`, `cls : [dim]`, `pos : [N + 1, dim]`.
    PatchEmbed {
        dim: usize,
        patch: usize,
        in_ch: Option<usize>,
    },

    /// Pre-LN transformer encoder (timm ViT) on `[B, T, D]`, `blocks` blocks, then a final LN and
    /// CLS pooling: output `[B, D]` = token 0. Per block:
    /// `x = x + proj(MHSA(LN1(x)))`, `x = x + fc2(gelu_tanh(fc1(LN2(x))))`.
    /// MHSA: `qkv = LN1(x)·qkv.w + qkv.b` with `qkv.w : [D, 3D]`, columns `[q | k | v]`, each split
    /// into `heads` contiguous chunks of `D/heads` (head h of q is columns `h·hd .. (h+1)·hd`);
    /// per head `softmax(q·kᵀ/√hd)·v`, heads concatenated in order, then `proj` (`[D, D]` + bias).
    /// LN ε = 1e-6. `D` must be divisible by `heads`. No mask, no dropout.
    /// Params per block `b{j}.`: `ln1.gamma`, `ln1.beta`, `attn.qkv.w : [D, 3D]`, `attn.qkv.b : [3D]`,
    /// `attn.proj.w : [D, D]`, `attn.proj.b : [D]`, `ln2.gamma`, `ln2.beta`, `mlp.fc1.w : [D, mlp]`,
    /// `mlp.fc1.b : [mlp]`, `mlp.fc2.w : [mlp, D]`, `mlp.fc2.b : [D]`; after the blocks
    /// `ln.gamma`, `ln.beta` (final LN, prefix `l{i}.`). Kernels (`*.w`) decay.
    Transformer {
        heads: usize,
        mlp: usize,
        blocks: usize,
        in_ch: Option<usize>,
    },
}

/// Every layer kind, in declaration order, as spelled in spec files.
pub const LAYER_KINDS: [&str; 23] = [
    "dense",
    "conv2d",
    "convBn",
    "batchNorm",
    "layerNorm",
    "instanceNorm",
    "maxPool",
    "avgPool",
    "globalAvgPool",
    "flatten",
    "dropout",
    "act",
    "residual",
    "bottleneck",
    "separableConv",
    "invertedResidual",
    "mbConv",
    "mbConvV3",
    "fusedMbConv",
    "uib",
    "fire",
    "patchEmbed",
    "transformer",
];

impl Layer {
    /// The layer's keyword in spec files (`convBn`, `residual`, …), also used in error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense { .. } => "dense",
            Layer::Conv2d { .. } => "conv2d",
            Layer::ConvBn { .. } => "convBn",
            Layer::BatchNorm { .. } => "batchNorm",
            Layer::LayerNorm { .. } => "layerNorm",
            Layer::InstanceNorm { .. } => "instanceNorm",
            Layer::MaxPool { .. } => "maxPool",
            Layer::AvgPool { .. } => "avgPool",
            Layer::GlobalAvgPool => "globalAvgPool",
            Layer::Flatten => "flatten",
            Layer::Dropout { .. } => "dropout",
            Layer::Activation { .. } => "act",
            Layer::Residual { .. } => "residual",
            Layer::Bottleneck { .. } => "bottleneck",
            Layer::SeparableConv { .. } => "separableConv",
            Layer::InvertedResidual { .. } => "invertedResidual",
            Layer::MbConv { .. } => "mbConv",
            Layer::MbConvV3 { .. } => "mbConvV3",
            Layer::FusedMbConv { .. } => "fusedMbConv",
            Layer::Uib { .. } => "uib",
            Layer::Fire { .. } => "fire",
            Layer::PatchEmbed { .. } => "patchEmbed",
            Layer::Transformer { .. } => "transformer",
        }
    }

    /// The optional stated input channels/features of this layer, if the layer has that field.
    pub fn stated_in(&self) -> Option<usize> {
        match self {
            Layer::Dense { in_ch, .. }
            | Layer::Conv2d { in_ch, .. }
            | Layer::ConvBn { in_ch, .. }
            | Layer::BatchNorm { in_ch }
            | Layer::LayerNorm { in_ch }
            | Layer::InstanceNorm { in_ch }
            | Layer::Residual { in_ch, .. }
            | Layer::Bottleneck { in_ch, .. }
            | Layer::SeparableConv { in_ch, .. }
            | Layer::InvertedResidual { in_ch, .. }
            | Layer::MbConv { in_ch, .. }
            | Layer::MbConvV3 { in_ch, .. }
            | Layer::FusedMbConv { in_ch, .. }
            | Layer::Uib { in_ch, .. }
            | Layer::Fire { in_ch, .. }
            | Layer::PatchEmbed { in_ch, .. }
            | Layer::Transformer { in_ch, .. } => *in_ch,
            Layer::MaxPool { .. }
            | Layer::AvgPool { .. }
            | Layer::GlobalAvgPool
            | Layer::Flatten
            | Layer::Dropout { .. }
            | Layer::Activation { .. } => None,
        }
    }
}

/// torchvision's `_make_divisible(v, 8)` for integer `v = a·b` (exact in integers):
/// round `v` to the nearest multiple of 8 (ties up), at least 8, and add 8 if the result lost more
/// than 10 % of `v`.
pub fn make_divisible(v: usize) -> usize {
    let d = 8;
    let mut n = ((v + d / 2) / d * d).max(d);
    // "if new_v < 0.9 * v" in integers: 10·n < 9·v.
    if 10 * n < 9 * v {
        n += d;
    }
    n
}

impl fmt::Display for NetSpec {
    /// The spec in the text format (same as `crate::print`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::print(self))
    }
}
