//! Shape inference, the parameter/buffer list and forward FLOPs, from one walk over the layers.
//!
//! Every layer is expanded here into its units (conv, BN, SE, …) in exactly the order the doc
//! comments in `layer.rs` give; that order is the ABI order of `params()` / `buffers()`.

use crate::error::SpecError;
use crate::layer::{make_divisible, Act, Layer, NetSpec};
use std::fmt;

/// Largest value accepted for any size field (channels, kernel, stride, blocks, image side…).
pub const MAX_DIM: usize = 1 << 24;
/// Largest `blocks` of a stage (keeps the parameter list of a hostile spec small).
pub const MAX_BLOCKS: usize = 1024;
/// Largest element count of one parameter tensor or of one example's activation.
pub const MAX_ELEMS: usize = (1 << 31) - 1;

/// The shape of one example's activation (the batch dimension `B` is implicit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `[B, C, H, W]`
    Image { c: usize, h: usize, w: usize },
    /// `[B, T, D]`
    Tokens { t: usize, d: usize },
    /// `[B, N]`
    Flat { n: usize },
}

impl Shape {
    /// Dimensions after the batch dimension.
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Image { c, h, w } => vec![c, h, w],
            Shape::Tokens { t, d } => vec![t, d],
            Shape::Flat { n } => vec![n],
        }
    }
    /// Elements per example.
    pub fn elems(&self) -> usize {
        // Shapes are only built through `checked_elems`, so this cannot overflow.
        self.dims().iter().product()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[B")?;
        for d in self.dims() {
            write!(f, ", {d}")?;
        }
        write!(f, "]")
    }
}

/// How a parameter (or buffer) is initialised by [`crate::init`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Normal(0, √(2/fan_in)) — conv/dense kernels; `fan_in = in/groups · kh · kw` for convs
    /// (`in` for dense kernels).
    HeNormal { fan_in: usize },
    /// Normal(0, std) — ViT `cls` token and positional embedding (std 0.02).
    Normal { std: f32 },
    /// All zeros — biases, β, BN running mean.
    Zeros,
    /// All ones — γ, BN running variance.
    Ones,
}

/// One parameter or buffer tensor of the ABI.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Dot path rooted at the layer index, e.g. `l4.b0.conv1.w`.
    pub name: String,
    /// Shape (OIHW for conv kernels, `[in, out]` for dense kernels).
    pub shape: Vec<usize>,
    pub init: Init,
    /// Weight decay applies (conv/dense kernels only; always false for buffers).
    pub decay: bool,
}

impl ParamSpec {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// What one layer does to the shape, and what it owns.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    pub index: usize,
    pub kind: &'static str,
    pub input: Shape,
    pub output: Shape,
    /// Parameters in ABI order.
    pub params: Vec<ParamSpec>,
    /// BN running statistics (`…mean`, `…var`) in ABI order.
    pub buffers: Vec<ParamSpec>,
    /// Forward FLOPs for one example: 2·MACs for convs, dense layers and attention matmuls; one
    /// FLOP per element for each bias add, activation and residual add; 4 per element for a
    /// normalisation (center, scale, γ, β); `size²` per output element for pooling; one per input
    /// element for global pooling; 3 per element for softmax.
    pub flops: u64,
}

impl LayerInfo {
    pub fn param_count(&self) -> usize {
        self.params.iter().map(ParamSpec::numel).sum()
    }
}

/// Output shapes of every layer, or the first error. The last shape is `[B, num_classes]`.
pub fn infer_shapes(spec: &NetSpec) -> Result<Vec<Shape>, SpecError> {
    Ok(analyze(spec)?.into_iter().map(|l| l.output).collect())
}

/// The parameters in ABI order (see ARCHITECTURE.md, "Parameters and buffers").
pub fn params(spec: &NetSpec) -> Result<Vec<ParamSpec>, SpecError> {
    Ok(analyze(spec)?.into_iter().flat_map(|l| l.params).collect())
}

/// The BN running statistics in ABI order: for every BN, `…mean` (zeros) then `…var` (ones).
pub fn buffers(spec: &NetSpec) -> Result<Vec<ParamSpec>, SpecError> {
    Ok(analyze(spec)?.into_iter().flat_map(|l| l.buffers).collect())
}

/// Total number of trainable parameter elements (BN running statistics not included).
pub fn param_count(spec: &NetSpec) -> Result<usize, SpecError> {
    Ok(analyze(spec)?.iter().map(LayerInfo::param_count).sum())
}

/// Walks the spec: per layer its input/output shape, parameters, buffers and FLOPs.
pub fn analyze(spec: &NetSpec) -> Result<Vec<LayerInfo>, SpecError> {
    check_header(spec)?;
    let [c, h, w] = spec.input;
    let mut x = Shape::Image { c, h, w };
    let mut out = Vec::with_capacity(spec.layers.len());
    let mut total: usize = 0;
    for (i, layer) in spec.layers.iter().enumerate() {
        let kind = layer.kind();
        let err = |m: String| SpecError::at(i, kind, m);
        check_fields(layer).map_err(err)?;
        check_stated_in(layer, x).map_err(err)?;
        let mut e = Emit::new(format!("l{i}"));
        let y = layer_forward(&mut e, layer, x).map_err(err)?;
        for p in &e.params {
            total = total
                .checked_add(p.numel())
                .ok_or_else(|| err("parameter count overflows".into()))?;
        }
        out.push(LayerInfo {
            index: i,
            kind,
            input: x,
            output: y,
            params: e.params,
            buffers: e.buffers,
            flops: e.flops,
        });
        x = y;
    }
    let last = spec.layers.len() - 1;
    let want = Shape::Flat {
        n: spec.num_classes,
    };
    if x != want {
        let kind = spec.layers[last].kind();
        let hint = match x {
            Shape::Image { .. } => {
                "add `globalAvgPool` (or `flatten`) and a `dense` head".to_string()
            }
            Shape::Tokens { .. } => {
                "add a `transformer` (it pools the CLS token) and a `dense` head".to_string()
            }
            Shape::Flat { n } => format!(
                "the last layer gives {n} features; make the head `dense {}` or change `classes`",
                spec.num_classes
            ),
        };
        return Err(SpecError::at(
            last,
            kind,
            format!(
                "the network must end with logits {want} (classes = {}) but ends with {x}; {hint}",
                spec.num_classes
            ),
        ));
    }
    Ok(out)
}

fn check_header(spec: &NetSpec) -> Result<(), SpecError> {
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
    {
        return Err(SpecError::spec(format!(
            "bad name {:?}: use letters, digits, `_`, `-` and `.` only",
            spec.name
        )));
    }
    let [c, h, w] = spec.input;
    for (what, v) in [("channels", c), ("height", h), ("width", w)] {
        if v == 0 || v > MAX_DIM {
            return Err(SpecError::spec(format!(
                "input {what} must be between 1 and {MAX_DIM}, got {v}"
            )));
        }
    }
    checked_elems(&[c, h, w]).map_err(|m| SpecError::spec(format!("input: {m}")))?;
    if spec.num_classes == 0 || spec.num_classes > MAX_DIM {
        return Err(SpecError::spec(format!(
            "classes must be between 1 and {MAX_DIM}, got {}",
            spec.num_classes
        )));
    }
    if spec.layers.is_empty() {
        return Err(SpecError::spec(
            "the spec has no layers; add at least a `dense` head",
        ));
    }
    Ok(())
}

fn checked_elems(dims: &[usize]) -> Result<usize, String> {
    let mut n: usize = 1;
    for &d in dims {
        n = n.checked_mul(d).filter(|&n| n <= MAX_ELEMS).ok_or_else(|| {
            format!("a tensor of shape {dims:?} has more than {MAX_ELEMS} elements; use smaller sizes")
        })?;
    }
    Ok(n)
}

fn blocks_ok(v: usize) -> Result<(), String> {
    if v == 0 || v > MAX_BLOCKS {
        return Err(format!(
            "`blocks` must be between 1 and {MAX_BLOCKS}, got {v}"
        ));
    }
    Ok(())
}

fn size(name: &str, v: usize, min: usize) -> Result<(), String> {
    if v < min || v > MAX_DIM {
        return Err(format!(
            "`{name}` must be between {min} and {MAX_DIM}, got {v}"
        ));
    }
    Ok(())
}

fn odd(name: &str, k: usize) -> Result<(), String> {
    if k.is_multiple_of(2) {
        return Err(format!(
            "`{name}` must be odd (so that padding (k-1)/2 keeps the size), got {k}"
        ));
    }
    Ok(())
}

fn conv_pad(kernel: usize, pad: Option<usize>) -> Result<(), String> {
    match pad {
        None => odd("kernel", kernel),
        Some(p) if p >= kernel => Err(format!(
            "`pad` must be smaller than the kernel ({kernel}), got {p}"
        )),
        Some(_) => Ok(()),
    }
}

/// Field checks that do not depend on the input shape.
fn check_fields(layer: &Layer) -> Result<(), String> {
    if let Some(c) = layer.stated_in() {
        size("in", c, 1)?;
    }
    match *layer {
        Layer::Dense { out, .. } => size("out", out, 1),
        Layer::Conv2d {
            out,
            kernel,
            stride,
            pad,
            ..
        }
        | Layer::ConvBn {
            out,
            kernel,
            stride,
            pad,
            ..
        } => {
            size("out", out, 1)?;
            size("kernel", kernel, 1)?;
            size("stride", stride, 1)?;
            conv_pad(kernel, pad)
        }
        Layer::BatchNorm { .. } | Layer::LayerNorm { .. } | Layer::InstanceNorm { .. } => Ok(()),
        Layer::MaxPool {
            size: k,
            stride,
            pad,
        }
        | Layer::AvgPool {
            size: k,
            stride,
            pad,
        } => {
            size("size", k, 1)?;
            size("stride", stride, 1)?;
            if pad > k / 2 {
                return Err(format!(
                    "`pad` must be at most half the window ({}), got {pad}",
                    k / 2
                ));
            }
            Ok(())
        }
        Layer::GlobalAvgPool | Layer::Flatten | Layer::Activation { .. } => Ok(()),
        Layer::Dropout { rate } => {
            if !(rate.is_finite() && (0.0..1.0).contains(&rate)) {
                return Err(format!("`rate` must be in [0, 1), got {rate}"));
            }
            Ok(())
        }
        Layer::Residual {
            out,
            blocks,
            stride,
            ..
        } => {
            size("out", out, 1)?;
            blocks_ok(blocks)?;
            size("stride", stride, 1)
        }
        Layer::Bottleneck {
            out,
            blocks,
            stride,
            ..
        } => {
            size("out", out, 4)?;
            blocks_ok(blocks)?;
            size("stride", stride, 1)?;
            if out % 4 != 0 {
                return Err(format!(
                    "`out` must be a multiple of 4 (the 3×3 conv has out/4 channels), got {out}"
                ));
            }
            Ok(())
        }
        Layer::SeparableConv { out, stride, .. } => {
            size("out", out, 1)?;
            size("stride", stride, 1)
        }
        Layer::InvertedResidual {
            out,
            expand,
            stride,
            blocks,
            ..
        } => {
            size("out", out, 1)?;
            size("expand", expand, 1)?;
            size("stride", stride, 1)?;
            blocks_ok(blocks)
        }
        Layer::MbConv {
            out,
            expand,
            kernel,
            stride,
            blocks,
            ..
        }
        | Layer::FusedMbConv {
            out,
            expand,
            kernel,
            stride,
            blocks,
            ..
        } => {
            size("out", out, 1)?;
            size("expand", expand, 1)?;
            size("kernel", kernel, 1)?;
            odd("kernel", kernel)?;
            size("stride", stride, 1)?;
            blocks_ok(blocks)
        }
        Layer::MbConvV3 {
            out,
            expanded,
            kernel,
            stride,
            ..
        } => {
            size("out", out, 1)?;
            size("expanded", expanded, 1)?;
            size("kernel", kernel, 1)?;
            odd("kernel", kernel)?;
            size("stride", stride, 1)
        }
        Layer::Uib {
            out,
            expand,
            start_kernel,
            mid_kernel,
            stride,
            ..
        } => {
            size("out", out, 1)?;
            size("expand", expand, 1)?;
            size("stride", stride, 1)?;
            for (name, k) in [("start", start_kernel), ("mid", mid_kernel)] {
                if k != 0 {
                    size(name, k, 1)?;
                    odd(name, k)?;
                }
            }
            if start_kernel == 0 && mid_kernel == 0 && stride != 1 {
                return Err(format!(
                    "stride {stride} needs a depthwise conv to carry it; set `start` or `mid` to a kernel size"
                ));
            }
            Ok(())
        }
        Layer::Fire {
            squeeze,
            expand1x1,
            expand3x3,
            ..
        } => {
            size("squeeze", squeeze, 1)?;
            size("expand1", expand1x1, 1)?;
            size("expand3", expand3x3, 1)
        }
        Layer::PatchEmbed { dim, patch, .. } => {
            size("dim", dim, 1)?;
            size("patch", patch, 1)
        }
        Layer::Transformer {
            heads, mlp, blocks, ..
        } => {
            size("heads", heads, 1)?;
            size("mlp", mlp, 1)?;
            blocks_ok(blocks)
        }
    }
}

/// The channel/feature count `in=` refers to, for the given input.
fn features(x: Shape) -> usize {
    match x {
        Shape::Image { c, .. } => c,
        Shape::Tokens { d, .. } => d,
        Shape::Flat { n } => n,
    }
}

fn check_stated_in(layer: &Layer, x: Shape) -> Result<(), String> {
    match layer.stated_in() {
        Some(c) if c != features(x) => {
            let what = match x {
                Shape::Image { .. } => "input channels",
                Shape::Tokens { .. } => "token dim",
                Shape::Flat { .. } => "input features",
            };
            Err(format!(
                "states in={c} but its input is {x} ({} {what}); change `in=` or the previous layer's output size",
                features(x)
            ))
        }
        Some(_) | None => Ok(()),
    }
}

/// A one-line description of what a layer needs, for shape errors.
fn need_image(x: Shape) -> Result<(usize, usize, usize), String> {
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

/// Collects the parameters, buffers and FLOPs of one layer under a name prefix.
struct Emit {
    prefix: String,
    params: Vec<ParamSpec>,
    buffers: Vec<ParamSpec>,
    flops: u64,
}

#[derive(Clone, Copy)]
struct Img {
    c: usize,
    h: usize,
    w: usize,
}

impl Img {
    fn shape(self) -> Shape {
        Shape::Image {
            c: self.c,
            h: self.h,
            w: self.w,
        }
    }
    fn elems(self) -> u64 {
        (self.c * self.h * self.w) as u64
    }
}

/// Output size of a `k×k` window with stride `s` and padding `p` over `x`, or an error saying
/// that the spatial size shrinks to zero.
fn window(what: &str, x: Img, k: usize, s: usize, p: usize) -> Result<(usize, usize), String> {
    // h, w, k, p ≤ MAX_DIM, so h + 2p cannot overflow.
    let (ph, pw) = (x.h + 2 * p, x.w + 2 * p);
    if ph < k || pw < k {
        return Err(format!(
            "the {k}×{k} {what} (padding {p}) does not fit its {}×{} input {}: the spatial size shrinks to zero; \
             remove a downsampling layer before it or use a larger input",
            x.h,
            x.w,
            x.shape()
        ));
    }
    Ok(((ph - k) / s + 1, (pw - k) / s + 1))
}

impl Emit {
    fn new(prefix: String) -> Self {
        Emit {
            prefix,
            params: Vec::new(),
            buffers: Vec::new(),
            flops: 0,
        }
    }

    fn name(&self, path: &str) -> String {
        format!("{}.{path}", self.prefix)
    }

    fn param(
        &mut self,
        path: &str,
        shape: Vec<usize>,
        init: Init,
        decay: bool,
    ) -> Result<(), String> {
        checked_elems(&shape).map_err(|m| format!("parameter `{}`: {m}", self.name(path)))?;
        self.params.push(ParamSpec {
            name: self.name(path),
            shape,
            init,
            decay,
        });
        Ok(())
    }

    fn add_flops(&mut self, f: u64) {
        self.flops = self.flops.saturating_add(f);
    }

    fn check_act(&self, x: Img) -> Result<Img, String> {
        checked_elems(&[x.c, x.h, x.w])?;
        Ok(x)
    }

    /// conv(k, s, p, groups) [+ bias]; kernel named `{path}.w`, bias `{path}.b` (`w`, `b` for an
    /// empty path).
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        path: &str,
        x: Img,
        out: usize,
        k: usize,
        s: usize,
        p: usize,
        groups: usize,
        bias: bool,
    ) -> Result<Img, String> {
        let what = if groups > 1 { "depthwise conv" } else { "conv" };
        let (h, w) = window(what, x, k, s, p)?;
        let y = self.check_act(Img { c: out, h, w })?;
        let cin = x.c / groups;
        self.param(
            &join(path, "w"),
            vec![out, cin, k, k],
            Init::HeNormal {
                fan_in: cin * k * k,
            },
            true,
        )?;
        if bias {
            self.param(&join(path, "b"), vec![out], Init::Zeros, false)?;
            self.add_flops(y.elems());
        }
        self.add_flops(y.elems().saturating_mul(2 * (cin * k * k) as u64));
        Ok(y)
    }

    /// BN over `c` channels named `{path}.gamma|beta` (+ buffers `{path}.mean|var`).
    fn bn(&mut self, path: &str, c: usize, elems: u64) -> Result<(), String> {
        self.param(&format!("{path}.gamma"), vec![c], Init::Ones, false)?;
        self.param(&format!("{path}.beta"), vec![c], Init::Zeros, false)?;
        self.buffers.push(ParamSpec {
            name: self.name(&format!("{path}.mean")),
            shape: vec![c],
            init: Init::Zeros,
            decay: false,
        });
        self.buffers.push(ParamSpec {
            name: self.name(&format!("{path}.var")),
            shape: vec![c],
            init: Init::Ones,
            decay: false,
        });
        self.add_flops(4 * elems);
        Ok(())
    }

    fn act(&mut self, act: Act, elems: u64) {
        match act {
            Act::Identity => {}
            Act::Relu
            | Act::Relu6
            | Act::Swish
            | Act::HardSwish
            | Act::HardSigmoid
            | Act::Gelu
            | Act::Sigmoid => self.add_flops(elems),
        }
    }

    /// A conv-BN unit `{unit}.conv.w`, `{unit}.bn.*`, then `act`; padding (k−1)/2.
    #[allow(clippy::too_many_arguments)]
    fn conv_bn(
        &mut self,
        unit: &str,
        x: Img,
        out: usize,
        k: usize,
        s: usize,
        groups: usize,
        act: Act,
    ) -> Result<Img, String> {
        self.conv_bn_pad(unit, x, out, k, s, (k - 1) / 2, groups, act)
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_bn_pad(
        &mut self,
        unit: &str,
        x: Img,
        out: usize,
        k: usize,
        s: usize,
        p: usize,
        groups: usize,
        act: Act,
    ) -> Result<Img, String> {
        let y = self.conv(&join(unit, "conv"), x, out, k, s, p, groups, false)?;
        self.bn(&join(unit, "bn"), out, y.elems())?;
        self.act(act, y.elems());
        Ok(y)
    }

    /// SE(C → r) named `{path}.reduce.*`, `{path}.expand.*` (see `layer.rs`).
    fn se(&mut self, path: &str, x: Img, r: usize) -> Result<(), String> {
        let c = x.c;
        self.param(
            &format!("{path}.reduce.w"),
            vec![r, c, 1, 1],
            Init::HeNormal { fan_in: c },
            true,
        )?;
        self.param(&format!("{path}.reduce.b"), vec![r], Init::Zeros, false)?;
        self.param(
            &format!("{path}.expand.w"),
            vec![c, r, 1, 1],
            Init::HeNormal { fan_in: r },
            true,
        )?;
        self.param(&format!("{path}.expand.b"), vec![c], Init::Zeros, false)?;
        // pool + two matmuls (+bias, act) + gate + scale
        self.add_flops(
            x.elems() + 4 * (c * r) as u64 + 2 * (r + c) as u64 + 2 * c as u64 + x.elems(),
        );
        Ok(())
    }

    fn residual_add(&mut self, y: Img) {
        self.add_flops(y.elems());
    }
}

/// The skip rule of the inverted-bottleneck family.
fn has_skip(stride: usize, cin: usize, cout: usize) -> bool {
    stride == 1 && cin == cout
}

fn layer_forward(e: &mut Emit, layer: &Layer, x: Shape) -> Result<Shape, String> {
    match *layer {
        Layer::Dense { out, act, .. } => {
            let n = match x {
                Shape::Flat { n } => n,
                Shape::Image { .. } => {
                    return Err(format!(
                        "expects a flat [B, N] input but gets {x}; insert `flatten` (or `globalAvgPool`) before it"
                    ))
                }
                Shape::Tokens { .. } => {
                    return Err(format!(
                        "expects a flat [B, N] input but gets tokens {x}; insert `transformer` (CLS pooling) or `flatten` before it"
                    ))
                }
            };
            e.param("w", vec![n, out], Init::HeNormal { fan_in: n }, true)?;
            e.param("b", vec![out], Init::Zeros, false)?;
            e.add_flops(2 * (n as u64) * out as u64 + out as u64);
            e.act(act, out as u64);
            Ok(Shape::Flat { n: out })
        }
        Layer::Conv2d {
            out,
            kernel,
            stride,
            pad,
            act,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let p = pad.unwrap_or((kernel - 1) / 2);
            let y = e.conv("", Img { c, h, w }, out, kernel, stride, p, 1, true)?;
            e.act(act, y.elems());
            Ok(y.shape())
        }
        Layer::ConvBn {
            out,
            kernel,
            stride,
            pad,
            act,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let p = pad.unwrap_or((kernel - 1) / 2);
            // The unit is the layer itself: `l{i}.conv.w`, `l{i}.bn.*`.
            Ok(
                e.conv_bn_pad("", Img { c, h, w }, out, kernel, stride, p, 1, act)?
                    .shape(),
            )
        }
        Layer::BatchNorm { .. } => {
            let c = match x {
                Shape::Image { c, .. } => c,
                Shape::Flat { n } => n,
                Shape::Tokens { .. } => {
                    return Err(format!("expects [B, C, H, W] or [B, N] but gets tokens {x}; use `layerNorm` for tokens"))
                }
            };
            e.param("gamma", vec![c], Init::Ones, false)?;
            e.param("beta", vec![c], Init::Zeros, false)?;
            e.buffers.push(ParamSpec {
                name: e.name("mean"),
                shape: vec![c],
                init: Init::Zeros,
                decay: false,
            });
            e.buffers.push(ParamSpec {
                name: e.name("var"),
                shape: vec![c],
                init: Init::Ones,
                decay: false,
            });
            e.add_flops(4 * x.elems() as u64);
            Ok(x)
        }
        Layer::LayerNorm { .. } => {
            let f = features(x);
            e.param("gamma", vec![f], Init::Ones, false)?;
            e.param("beta", vec![f], Init::Zeros, false)?;
            e.add_flops(4 * x.elems() as u64);
            Ok(x)
        }
        Layer::InstanceNorm { .. } => {
            let (c, _, _) = need_image(x)?;
            e.param("gamma", vec![c], Init::Ones, false)?;
            e.param("beta", vec![c], Init::Zeros, false)?;
            e.add_flops(4 * x.elems() as u64);
            Ok(x)
        }
        Layer::MaxPool { size, stride, pad } | Layer::AvgPool { size, stride, pad } => {
            let (c, h, w) = need_image(x)?;
            let what = if matches!(layer, Layer::MaxPool { .. }) {
                "max pool"
            } else {
                "average pool"
            };
            let (ho, wo) = window(what, Img { c, h, w }, size, stride, pad)?;
            let y = Img { c, h: ho, w: wo };
            e.add_flops(y.elems() * (size * size) as u64);
            Ok(y.shape())
        }
        Layer::GlobalAvgPool => {
            let (c, _, _) = need_image(x)?;
            e.add_flops(x.elems() as u64);
            Ok(Shape::Flat { n: c })
        }
        Layer::Flatten => match x {
            Shape::Image { .. } | Shape::Tokens { .. } => Ok(Shape::Flat { n: x.elems() }),
            Shape::Flat { .. } => Err(format!(
                "the input {x} is already flat; remove this `flatten`"
            )),
        },
        Layer::Dropout { .. } => Ok(x),
        Layer::Activation { act } => {
            e.act(act, x.elems() as u64);
            Ok(x)
        }
        Layer::Residual {
            out,
            blocks,
            stride,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let mut y = Img { c, h, w };
            for j in 0..blocks {
                let s = if j == 0 { stride } else { 1 };
                y = basic_block(e, &format!("b{j}"), y, out, s)
                    .map_err(|m| format!("block {j}: {m}"))?;
            }
            Ok(y.shape())
        }
        Layer::Bottleneck {
            out,
            blocks,
            stride,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let mut y = Img { c, h, w };
            for j in 0..blocks {
                let s = if j == 0 { stride } else { 1 };
                y = bottleneck_block(e, &format!("b{j}"), y, out, s)
                    .map_err(|m| format!("block {j}: {m}"))?;
            }
            Ok(y.shape())
        }
        Layer::SeparableConv {
            out, stride, act, ..
        } => {
            let (c, h, w) = need_image(x)?;
            let y = e.conv_bn("dw", Img { c, h, w }, c, 3, stride, c, act)?;
            let y = e.conv_bn("pw", y, out, 1, 1, 1, act)?;
            Ok(y.shape())
        }
        Layer::InvertedResidual {
            out,
            expand,
            stride,
            blocks,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let mut y = Img { c, h, w };
            for j in 0..blocks {
                let s = if j == 0 { stride } else { 1 };
                let b = format!("b{j}");
                let x0 = y;
                let mid =
                    x0.c.checked_mul(expand)
                        .filter(|&m| m <= MAX_ELEMS)
                        .ok_or("expanded channels overflow")?;
                let run = |e: &mut Emit| -> Result<Img, String> {
                    let mut t = x0;
                    if expand != 1 {
                        t = e.conv_bn(&format!("{b}.expand"), t, mid, 1, 1, 1, Act::Relu6)?;
                    }
                    t = e.conv_bn(&format!("{b}.dw"), t, mid, 3, s, mid, Act::Relu6)?;
                    e.conv_bn(&format!("{b}.project"), t, out, 1, 1, 1, Act::Identity)
                };
                y = run(e).map_err(|m| format!("block {j}: {m}"))?;
                if has_skip(s, x0.c, out) {
                    e.residual_add(y);
                }
            }
            Ok(y.shape())
        }
        Layer::MbConv {
            out,
            expand,
            kernel,
            stride,
            blocks,
            se,
            act,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let mut y = Img { c, h, w };
            for j in 0..blocks {
                let s = if j == 0 { stride } else { 1 };
                let b = format!("b{j}");
                let x0 = y;
                let run = |e: &mut Emit| -> Result<Img, String> {
                    let mid = mid_channels(x0.c, expand)?;
                    let mut t = x0;
                    if expand != 1 {
                        t = e.conv_bn(&format!("{b}.expand"), t, mid, 1, 1, 1, act)?;
                    }
                    t = e.conv_bn(&format!("{b}.dw"), t, mid, kernel, s, mid, act)?;
                    if se {
                        e.se(&format!("{b}.se"), t, (x0.c / 4).max(1))?;
                    }
                    e.conv_bn(&format!("{b}.project"), t, out, 1, 1, 1, Act::Identity)
                };
                y = run(e).map_err(|m| format!("block {j}: {m}"))?;
                if has_skip(s, x0.c, out) {
                    e.residual_add(y);
                }
            }
            Ok(y.shape())
        }
        Layer::MbConvV3 {
            out,
            expanded,
            kernel,
            stride,
            se,
            act,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let x0 = Img { c, h, w };
            let mut t = x0;
            if expanded != c {
                t = e.conv_bn("expand", t, expanded, 1, 1, 1, act)?;
            }
            t = e.conv_bn("dw", t, expanded, kernel, stride, expanded, act)?;
            if se {
                e.se("se", t, make_divisible(expanded / 4))?;
            }
            let y = e.conv_bn("project", t, out, 1, 1, 1, Act::Identity)?;
            if has_skip(stride, c, out) {
                e.residual_add(y);
            }
            Ok(y.shape())
        }
        Layer::FusedMbConv {
            out,
            expand,
            kernel,
            stride,
            blocks,
            se,
            act,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let mut y = Img { c, h, w };
            for j in 0..blocks {
                let s = if j == 0 { stride } else { 1 };
                let b = format!("b{j}");
                let x0 = y;
                let run = |e: &mut Emit| -> Result<Img, String> {
                    if expand == 1 {
                        return e.conv_bn(&format!("{b}.fused"), x0, out, kernel, s, 1, act);
                    }
                    let mid = mid_channels(x0.c, expand)?;
                    let t = e.conv_bn(&format!("{b}.fused"), x0, mid, kernel, s, 1, act)?;
                    if se {
                        e.se(&format!("{b}.se"), t, (x0.c / 4).max(1))?;
                    }
                    e.conv_bn(&format!("{b}.project"), t, out, 1, 1, 1, Act::Identity)
                };
                y = run(e).map_err(|m| format!("block {j}: {m}"))?;
                if has_skip(s, x0.c, out) {
                    e.residual_add(y);
                }
            }
            Ok(y.shape())
        }
        Layer::Uib {
            out,
            expand,
            start_kernel,
            mid_kernel,
            stride,
            act,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let x0 = Img { c, h, w };
            let mid = mid_channels(c, expand)?;
            let mut t = x0;
            if start_kernel > 0 {
                let s = if mid_kernel == 0 { stride } else { 1 };
                t = e.conv_bn("dw_start", t, c, start_kernel, s, c, Act::Identity)?;
            }
            t = e.conv_bn("expand", t, mid, 1, 1, 1, act)?;
            if mid_kernel > 0 {
                t = e.conv_bn("dw_mid", t, mid, mid_kernel, stride, mid, act)?;
            }
            let y = e.conv_bn("project", t, out, 1, 1, 1, Act::Identity)?;
            if has_skip(stride, c, out) {
                e.residual_add(y);
            }
            Ok(y.shape())
        }
        Layer::Fire {
            squeeze,
            expand1x1,
            expand3x3,
            ..
        } => {
            let (c, h, w) = need_image(x)?;
            let s = e.conv("squeeze", Img { c, h, w }, squeeze, 1, 1, 0, 1, true)?;
            e.act(Act::Relu, s.elems());
            let a = e.conv("expand1", s, expand1x1, 1, 1, 0, 1, true)?;
            e.act(Act::Relu, a.elems());
            let b = e.conv("expand3", s, expand3x3, 3, 1, 1, 1, true)?;
            e.act(Act::Relu, b.elems());
            let cout = expand1x1 + expand3x3;
            let y = e.check_act(Img {
                c: cout,
                h: a.h,
                w: a.w,
            })?;
            Ok(y.shape())
        }
        Layer::PatchEmbed { dim, patch, .. } => {
            let (c, h, w) = need_image(x)?;
            if h % patch != 0 || w % patch != 0 {
                return Err(format!(
                    "the input {h}×{w} ({x}) is not a whole number of {patch}×{patch} patches; \
                     use a patch size that divides both sides"
                ));
            }
            e.conv("", Img { c, h, w }, dim, patch, patch, 0, 1, true)?;
            let t = (h / patch) * (w / patch) + 1;
            e.param("cls", vec![dim], Init::Normal { std: 0.02 }, false)?;
            e.param("pos", vec![t, dim], Init::Normal { std: 0.02 }, false)?;
            checked_elems(&[t, dim])?;
            e.add_flops((t * dim) as u64);
            Ok(Shape::Tokens { t, d: dim })
        }
        Layer::Transformer {
            heads, mlp, blocks, ..
        } => {
            let (t, d) = match x {
                Shape::Tokens { t, d } => (t, d),
                Shape::Image { .. } => {
                    return Err(format!(
                        "expects tokens [B, T, D] but gets {x}; insert `patchEmbed` before it"
                    ))
                }
                Shape::Flat { .. } => return Err(format!("expects tokens [B, T, D] but gets {x}")),
            };
            if d % heads != 0 {
                return Err(format!(
                    "{heads} heads do not divide the token dim {d}; use a head count that divides {d}"
                ));
            }
            checked_elems(&[t, mlp])?;
            checked_elems(&[t, t, heads])?;
            let (tu, du, mu) = (t as u64, d as u64, mlp as u64);
            for j in 0..blocks {
                let b = format!("b{j}");
                e.param(&format!("{b}.ln1.gamma"), vec![d], Init::Ones, false)?;
                e.param(&format!("{b}.ln1.beta"), vec![d], Init::Zeros, false)?;
                e.param(
                    &format!("{b}.attn.qkv.w"),
                    vec![d, 3 * d],
                    Init::HeNormal { fan_in: d },
                    true,
                )?;
                e.param(&format!("{b}.attn.qkv.b"), vec![3 * d], Init::Zeros, false)?;
                e.param(
                    &format!("{b}.attn.proj.w"),
                    vec![d, d],
                    Init::HeNormal { fan_in: d },
                    true,
                )?;
                e.param(&format!("{b}.attn.proj.b"), vec![d], Init::Zeros, false)?;
                e.param(&format!("{b}.ln2.gamma"), vec![d], Init::Ones, false)?;
                e.param(&format!("{b}.ln2.beta"), vec![d], Init::Zeros, false)?;
                e.param(
                    &format!("{b}.mlp.fc1.w"),
                    vec![d, mlp],
                    Init::HeNormal { fan_in: d },
                    true,
                )?;
                e.param(&format!("{b}.mlp.fc1.b"), vec![mlp], Init::Zeros, false)?;
                e.param(
                    &format!("{b}.mlp.fc2.w"),
                    vec![mlp, d],
                    Init::HeNormal { fan_in: mlp },
                    true,
                )?;
                e.param(&format!("{b}.mlp.fc2.b"), vec![d], Init::Zeros, false)?;
                let f = 2 * 4 * tu * du // two LNs
                    + 2 * tu * du * 3 * du + 3 * tu * du // qkv
                    + 2 * tu * tu * du // q·kᵀ over all heads
                    + 3 * tu * tu * heads as u64 // softmax
                    + 2 * tu * tu * du // attention · v
                    + 2 * tu * du * du + tu * du // proj
                    + 2 * tu * du * mu + 2 * tu * mu // fc1 + gelu
                    + 2 * tu * mu * du + tu * du // fc2
                    + 2 * tu * du; // two residual adds
                e.add_flops(f);
            }
            e.param("ln.gamma", vec![d], Init::Ones, false)?;
            e.param("ln.beta", vec![d], Init::Zeros, false)?;
            e.add_flops(4 * du);
            Ok(Shape::Flat { n: d })
        }
    }
}

/// `a.b`, or just `b` when `a` is empty (a unit that is the layer itself).
fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

fn mid_channels(c: usize, expand: usize) -> Result<usize, String> {
    let v = c
        .checked_mul(expand)
        .filter(|&v| v <= MAX_ELEMS)
        .ok_or("expanded channels overflow")?;
    Ok(make_divisible(v))
}

fn basic_block(e: &mut Emit, b: &str, x: Img, out: usize, s: usize) -> Result<Img, String> {
    let t = e.conv(&format!("{b}.conv1"), x, out, 3, s, 1, 1, false)?;
    e.bn(&format!("{b}.bn1"), out, t.elems())?;
    e.act(Act::Relu, t.elems());
    let t = e.conv(&format!("{b}.conv2"), t, out, 3, 1, 1, 1, false)?;
    e.bn(&format!("{b}.bn2"), out, t.elems())?;
    if s != 1 || x.c != out {
        e.conv_bn(&format!("{b}.down"), x, out, 1, s, 1, Act::Identity)?;
    }
    e.residual_add(t);
    e.act(Act::Relu, t.elems());
    Ok(t)
}

fn bottleneck_block(e: &mut Emit, b: &str, x: Img, out: usize, s: usize) -> Result<Img, String> {
    let mid = out / 4;
    let t = e.conv(&format!("{b}.conv1"), x, mid, 1, 1, 0, 1, false)?;
    e.bn(&format!("{b}.bn1"), mid, t.elems())?;
    e.act(Act::Relu, t.elems());
    let t = e.conv(&format!("{b}.conv2"), t, mid, 3, s, 1, 1, false)?;
    e.bn(&format!("{b}.bn2"), mid, t.elems())?;
    e.act(Act::Relu, t.elems());
    let t = e.conv(&format!("{b}.conv3"), t, out, 1, 1, 0, 1, false)?;
    e.bn(&format!("{b}.bn3"), out, t.elems())?;
    if s != 1 || x.c != out {
        e.conv_bn(&format!("{b}.down"), x, out, 1, s, 1, Act::Identity)?;
    }
    e.residual_add(t);
    e.act(Act::Relu, t.elems());
    Ok(t)
}
