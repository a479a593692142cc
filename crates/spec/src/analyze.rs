//! Shapes, the parameter/buffer list and forward FLOPs of a [`NetSpec`], from the one walk in
//! `elab.rs`. The order of `params()` / `buffers()` is the walk's order: the ABI order.

use crate::ast::{NetSpec, Pos};
use crate::elab::{Elab, Node};
use crate::error::SpecError;
use std::fmt;

/// Largest value accepted for any size argument (channels, kernel, stride, blocks, image side…).
pub const MAX_DIM: usize = 1 << 24;
/// Largest `blocks` of a stage / count of a `repeat` (keeps the parameter list of a hostile spec small).
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
    /// The feature count: C of an image, D of tokens, N of flat features.
    pub fn features(&self) -> usize {
        match *self {
            Shape::Image { c, .. } => c,
            Shape::Tokens { d, .. } => d,
            Shape::Flat { n } => n,
        }
    }
    /// The same shape with `n` features.
    pub fn with_features(&self, n: usize) -> Shape {
        match *self {
            Shape::Image { h, w, .. } => Shape::Image { c: n, h, w },
            Shape::Tokens { t, .. } => Shape::Tokens { t, d: n },
            Shape::Flat { .. } => Shape::Flat { n },
        }
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
    /// Every element `value` — layer scale.
    Constant { value: f32 },
}

/// One parameter or buffer tensor of the ABI.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Dot path rooted at the layer, e.g. `l4.b0.conv1.w`.
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

/// What one top-level layer does to the shape, and what it owns.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    pub index: usize,
    /// What the layer calls (`convBn`, `residual`, a block of the file, …).
    pub kind: String,
    pub input: Shape,
    pub output: Shape,
    /// Parameters in ABI order.
    pub params: Vec<ParamSpec>,
    /// BN running statistics (`…mean`, `…var`) in ABI order.
    pub buffers: Vec<ParamSpec>,
    /// Forward FLOPs for one example: 2·MACs for convs, dense layers and attention matmuls; one
    /// FLOP per element for each bias add, activation, scale and residual add; 4 per element for a
    /// normalisation (center, scale, γ, β); `size²` per output element for pooling; one per input
    /// element for global pooling; 3 per element for softmax.
    pub flops: u64,
    /// The elaborated layer: every block expanded, every shape known.
    pub node: Node,
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

/// Walks the spec: per top-level layer its elaborated node, input/output shape, parameters,
/// buffers and FLOPs. Errors name the layer, the path inside it and, for specs read from a file,
/// the line of the innermost statement of the file involved.
pub fn analyze(spec: &NetSpec) -> Result<Vec<LayerInfo>, SpecError> {
    check_header(spec)?;
    let [c, h, w] = spec.input;
    let mut x = Shape::Image { c, h, w };
    let mut out = Vec::with_capacity(spec.layers.len());
    let mut elab = Elab::new(spec);
    for (i, call) in spec.layers.iter().enumerate() {
        let path = call.label.clone().unwrap_or_else(|| format!("l{i}"));
        let node = elab.layer(call, path.clone(), x).map_err(|f| SpecError {
            layer: Some((i, call.op.clone())),
            path: (f.path != path).then_some(f.path),
            pos: known(f.pos),
            message: f.msg,
        })?;
        out.push(LayerInfo {
            index: i,
            kind: call.op.clone(),
            input: x,
            output: node.output,
            params: node.params().into_iter().cloned().collect(),
            buffers: node.buffers().into_iter().cloned().collect(),
            flops: node.total_flops(),
            node,
        });
        x = out[i].output;
    }
    let last = spec.layers.len() - 1;
    let want = Shape::Flat {
        n: spec.num_classes,
    };
    if x != want {
        let hint = match x {
            Shape::Image { .. } => {
                "add `globalAvgPool` (or `flatten`) and a `dense` head".to_string()
            }
            Shape::Tokens { .. } => {
                "pool the tokens before the head: `clsPool` (a `transformer` ends with it) or `flatten`".to_string()
            }
            Shape::Flat { n } => format!(
                "the last layer gives {n} features; make the head `dense {}` or change `classes`",
                spec.num_classes
            ),
        };
        return Err(SpecError {
            layer: Some((last, spec.layers[last].op.clone())),
            path: None,
            pos: known(spec.layers[last].pos),
            message: format!(
                "the network must end with logits {want} (classes = {}) but ends with {x}; {hint}",
                spec.num_classes
            ),
        });
    }
    Ok(out)
}

fn known(p: Pos) -> Option<(usize, usize)> {
    (p.line > 0 && !p.prelude).then_some((p.line, p.col))
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

/// The element count of `dims`, or an error when it exceeds [`MAX_ELEMS`].
pub(crate) fn checked_elems(dims: &[usize]) -> Result<usize, String> {
    let mut n: usize = 1;
    for &d in dims {
        n = n.checked_mul(d).filter(|&n| n <= MAX_ELEMS).ok_or_else(|| {
            format!("a tensor of shape {dims:?} has more than {MAX_ELEMS} elements; use smaller sizes")
        })?;
    }
    Ok(n)
}
