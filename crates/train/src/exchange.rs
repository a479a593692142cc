//! Weights in PyTorch's names: the torchvision and timm state-dict names of netspec models, both ways.
//!
//! A [`NameMap`] pairs every parameter and BN statistic of a spec with its name and layout in a
//! torchvision or timm model. It is **derived from the spec's parameter list by rule**, one rule per
//! model family ([`Family`]); nothing is listed per model. A family first checks that the spec has
//! its structure (layer kinds in its order), so a spec that is not such a model gets no map.
//!
//! Rules common to every family:
//! * leaves: `w` → `weight`, `b` → `bias`, BN/LN `gamma` → `weight`, `beta` → `bias`, `mean` →
//!   `running_mean`, `var` → `running_var`;
//! * layouts: a dense kernel (rank 2, `[in, out]`) is PyTorch's `Linear.weight` transposed
//!   (`[out, in]`); conv kernels are OIHW on both sides; ViT's `cls` `[D]` and `pos` `[T, D]` are
//!   `cls_token` `[1, 1, D]` and `pos_embed` `[1, T, D]`;
//! * every BN module also has PyTorch's `num_batches_tracked` (an i64 scalar, used by PyTorch only
//!   when BN momentum is `None`): exports write the checkpoint's step there, imports ignore it;
//! * torchvision's `Conv2dNormActivation` is a `Sequential` (`.0` conv, `.1` BN, `.2` activation),
//!   and its classifiers are `Sequential`s of the head's layers in order, each activation and
//!   dropout a module of its own (so `dense 1280 act=hswish; dropout; dense 10` is `classifier.0`,
//!   `classifier.3`); a block's `block` `Sequential` holds its sub-blocks in netspec's order.
//!
//! The families and their module paths are in [`Family`]'s docs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use spec::{Call, Expr, LayerInfo, NetSpec, ParamSpec};

use crate::checkpoint::{self, Checkpoint, DataRef, Tensor, TensorData, View};
use crate::{Error, Result};

/// Whose names a weights file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// netspec's own (`l4.b0.conv1.w`, ARCHITECTURE.md).
    Netspec,
    /// torchvision's `state_dict()` names.
    Torchvision,
    /// timm's `state_dict()` names.
    Timm,
}

impl Convention {
    pub const ALL: [Convention; 3] = [
        Convention::Netspec,
        Convention::Torchvision,
        Convention::Timm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Convention::Netspec => "netspec",
            Convention::Torchvision => "torchvision",
            Convention::Timm => "timm",
        }
    }

    pub fn from_name(s: &str) -> Option<Convention> {
        Convention::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for Convention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model family whose PyTorch module paths follow from netspec's layers by one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// torchvision `ResNet` (`resnet18/34/50`): `convBn, maxPool, (residual|bottleneck)+,
    /// globalAvgPool, dense`. Stem `conv1`/`bn1`; stage `s` (1-based) block `j` is `layer{s}.{j}`
    /// (`conv1..3`, `bn1..3`, `down.conv`/`down.bn` → `downsample.0`/`.1`); head `fc`.
    TvResNet,
    /// torchvision `SqueezeNet` (`squeezenet1_1`): `features` is the `Sequential` of the layers
    /// before the first dropout, `classifier` of the rest (a conv with an activation takes two
    /// slots); fire `squeeze`/`expand1`/`expand3` → `squeeze`/`expand1x1`/`expand3x3`.
    TvSqueezeNet,
    /// torchvision `MobileNetV2`: `features.0` the stem, one `features` index per inverted-residual
    /// *block*, then the last convBn; inside a block `conv.{k}`: the expand and dw convBNs as
    /// `Conv2dNormActivation`s, the project conv and its BN as two plain slots.
    TvMobileNetV2,
    /// torchvision `MobileNetV3`: one `features` index per `mbConvV3`; sub-blocks in
    /// `features.{k}.block.{m}` (SE `reduce`/`expand` → `fc1`/`fc2`).
    TvMobileNetV3,
    /// torchvision `EfficientNet` (v1 and v2): one `features` index per stage layer, block `j` at
    /// `features.{k}.{j}.block.{m}` (SE as in MobileNetV3).
    TvEfficientNet,
    /// timm `MobileNetV4` (`mobilenetv4_conv_*`): `conv_stem`/`bn1`; `blocks.{s}.{j}` where a new stage
    /// starts at every stride-2 block and at a plain convBn block; fused blocks are timm's
    /// `EdgeResidual` (`conv_exp`, `bn1`, `conv_pwl`, `bn2`), UIB sub-blocks `dw_start`, `pw_exp`,
    /// `dw_mid`, `pw_proj`, a convBn block `conv`/`bn1`; the convBn after the pool is
    /// `conv_head`/`norm_head`; head `classifier`.
    TimmMobileNetV4,
    /// timm `VisionTransformer`: `patch_embed.proj`, `cls_token`, `pos_embed`,
    /// `blocks.{j}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm`, `head`.
    TimmVit,
}

impl Family {
    pub const ALL: [Family; 7] = [
        Family::TvResNet,
        Family::TvSqueezeNet,
        Family::TvMobileNetV2,
        Family::TvMobileNetV3,
        Family::TvEfficientNet,
        Family::TimmMobileNetV4,
        Family::TimmVit,
    ];

    pub fn convention(self) -> Convention {
        match self {
            Family::TvResNet
            | Family::TvSqueezeNet
            | Family::TvMobileNetV2
            | Family::TvMobileNetV3
            | Family::TvEfficientNet => Convention::Torchvision,
            Family::TimmMobileNetV4 | Family::TimmVit => Convention::Timm,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::TvResNet => "torchvision ResNet",
            Family::TvSqueezeNet => "torchvision SqueezeNet",
            Family::TvMobileNetV2 => "torchvision MobileNetV2",
            Family::TvMobileNetV3 => "torchvision MobileNetV3",
            Family::TvEfficientNet => "torchvision EfficientNet",
            Family::TimmMobileNetV4 => "timm MobileNetV4",
            Family::TimmVit => "timm VisionTransformer",
        }
    }
}

/// How a netspec tensor is stored on the PyTorch side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    Same,
    /// `[in, out]` ↔ `[out, in]`.
    Transpose,
    /// The same values with PyTorch's shape.
    Reshape(Vec<usize>),
}

/// One netspec tensor and its PyTorch counterpart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub netspec: String,
    /// netspec's shape.
    pub shape: Vec<usize>,
    pub torch: String,
    pub layout: Layout,
}

impl Entry {
    /// The PyTorch shape.
    pub fn torch_shape(&self) -> Vec<usize> {
        match &self.layout {
            Layout::Same => self.shape.clone(),
            Layout::Transpose => vec![self.shape[1], self.shape[0]],
            Layout::Reshape(s) => s.clone(),
        }
    }

    /// netspec values → PyTorch values.
    pub fn to_torch(&self, v: &[f32]) -> Vec<f32> {
        match &self.layout {
            Layout::Same | Layout::Reshape(_) => v.to_vec(),
            Layout::Transpose => transpose(v, self.shape[0], self.shape[1]),
        }
    }

    /// PyTorch values → netspec values.
    pub fn from_torch(&self, v: &[f32]) -> Vec<f32> {
        match &self.layout {
            Layout::Same | Layout::Reshape(_) => v.to_vec(),
            Layout::Transpose => transpose(v, self.shape[1], self.shape[0]),
        }
    }
}

/// `[r, c]` row-major → `[c, r]` row-major.
fn transpose(v: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = v[i * c + j];
        }
    }
    out
}

/// A spec's parameters and BN statistics in one family's names (ABI order: parameters, then buffers).
#[derive(Clone, Debug)]
pub struct NameMap {
    pub family: Family,
    pub params: Vec<Entry>,
    pub buffers: Vec<Entry>,
    /// `….num_batches_tracked` of every BN module, in order.
    pub batches_tracked: Vec<String>,
}

/// PyTorch's suffix of a BN module's step counter.
pub const BATCHES_TRACKED: &str = "num_batches_tracked";

/// The name map of `spec` in `family`'s names, or `None` when the spec does not have the family's
/// structure. Errors only for a spec that does not type-check.
pub fn name_map(spec: &NetSpec, family: Family) -> Result<Option<NameMap>> {
    let infos = spec::analyze(spec).map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?;
    let Some(places) = place(spec, &infos, family) else {
        return Ok(None);
    };
    let mut params = Vec::new();
    let mut buffers = Vec::new();
    let mut batches_tracked = Vec::new();
    let mut seen = HashSet::new();
    for (info, place) in infos.iter().zip(&places) {
        for (list, is_buf) in [(&info.params, false), (&info.buffers, true)] {
            for p in list.iter() {
                let Some(e) = entry(family, place, info, p) else {
                    return Ok(None);
                };
                if !seen.insert(e.torch.clone()) {
                    return Ok(None);
                }
                if is_buf {
                    if let Some(m) = e.torch.strip_suffix(".running_mean") {
                        batches_tracked.push(format!("{m}.{BATCHES_TRACKED}"));
                    }
                    buffers.push(e);
                } else {
                    params.push(e);
                }
            }
        }
    }
    Ok(Some(NameMap {
        family,
        params,
        buffers,
        batches_tracked,
    }))
}

/// The name maps of every family of `convention` that fits `spec` (at most one for the zoo).
pub fn name_maps(spec: &NetSpec, convention: Convention) -> Result<Vec<NameMap>> {
    let mut out = Vec::new();
    for f in Family::ALL {
        if f.convention() == convention {
            if let Some(m) = name_map(spec, f)? {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Where a layer's modules live on the PyTorch side.
#[derive(Clone, Debug)]
enum Place {
    /// No parameters (pools, flatten, dropout, activations).
    None,
    /// One module at this path (a dense/conv layer, a fire module, ViT's patch embedding).
    Module(String),
    /// A convBn as two modules.
    ConvBn { conv: String, bn: String },
    /// Blocks of a stage (or one block), each a module path; `b{j}.` in netspec names picks one.
    Blocks(Vec<String>),
}

/// The per-layer placement of `family`, or `None` when the spec's layers are not in its order.
fn place(spec: &NetSpec, infos: &[LayerInfo], family: Family) -> Option<Vec<Place>> {
    let layers = &spec.layers;
    let kinds: Vec<&str> = layers.iter().map(|l| l.op.as_str()).collect();
    let n = layers.len();
    // Split `kinds` as: prefix kinds, a middle of repeated allowed kinds, a given suffix pattern.
    let is = |i: usize, k: &str| kinds.get(i) == Some(&k);
    let seq = |i: usize| format!("{i}");
    match family {
        Family::TvResNet => {
            let stages = n.checked_sub(4)?;
            let ok = is(0, "convBn")
                && is(1, "maxPool")
                && stages >= 1
                && (2..2 + stages).all(|i| is(i, "residual") || is(i, "bottleneck"))
                && is(n - 2, "globalAvgPool")
                && is(n - 1, "dense");
            if !ok {
                return None;
            }
            let mut out = vec![
                Place::ConvBn {
                    conv: "conv1".into(),
                    bn: "bn1".into(),
                },
                Place::None,
            ];
            for (s, info) in infos[2..2 + stages].iter().enumerate() {
                let blocks = blocks_of(&layers[info.index]);
                out.push(Place::Blocks(
                    (0..blocks).map(|j| format!("layer{}.{j}", s + 1)).collect(),
                ));
            }
            out.push(Place::None);
            out.push(Place::Module("fc".into()));
            Some(out)
        }
        Family::TvSqueezeNet => {
            if !kinds.contains(&"fire")
                || !kinds.iter().all(|k| {
                    matches!(
                        *k,
                        "conv2d"
                            | "maxPool"
                            | "avgPool"
                            | "fire"
                            | "dropout"
                            | "globalAvgPool"
                            | "act"
                    )
                })
            {
                return None;
            }
            let mut out = Vec::new();
            let (mut seq_name, mut k) = ("features", 0usize);
            for l in layers {
                if l.op == "dropout" && seq_name == "features" {
                    (seq_name, k) = ("classifier", 0);
                }
                out.push(match l.op.as_str() {
                    "conv2d" | "fire" => Place::Module(format!("{seq_name}.{}", seq(k))),
                    _ => Place::None,
                });
                k += slots(l);
            }
            Some(out)
        }
        Family::TvMobileNetV2 | Family::TvMobileNetV3 | Family::TvEfficientNet => {
            let stage_kind = |k: &str| match family {
                Family::TvMobileNetV2 => k == "invertedResidual",
                Family::TvMobileNetV3 => k == "mbConvV3",
                _ => k == "mbConv" || k == "fusedMbConv",
            };
            let pool = kinds.iter().position(|k| *k == "globalAvgPool")?;
            let ok = pool >= 3
                && is(0, "convBn")
                && (1..pool - 1).all(|i| stage_kind(kinds[i]))
                && is(pool - 1, "convBn")
                && kinds[pool + 1..]
                    .iter()
                    .all(|k| *k == "dense" || *k == "dropout" || *k == "act")
                && is(n - 1, "dense");
            if !ok {
                return None;
            }
            let mut out = Vec::new();
            let mut k = 0usize;
            for l in &layers[..pool] {
                match l.op.as_str() {
                    "convBn" => {
                        out.push(Place::ConvBn {
                            conv: format!("features.{k}.0"),
                            bn: format!("features.{k}.1"),
                        });
                        k += 1;
                    }
                    _ if family == Family::TvMobileNetV2 => {
                        let b = blocks_of(l);
                        out.push(Place::Blocks(
                            (k..k + b).map(|i| format!("features.{i}")).collect(),
                        ));
                        k += b;
                    }
                    "mbConvV3" => {
                        out.push(Place::Blocks(vec![format!("features.{k}")]));
                        k += 1;
                    }
                    _ => {
                        let b = blocks_of(l);
                        out.push(Place::Blocks(
                            (0..b).map(|j| format!("features.{k}.{j}")).collect(),
                        ));
                        k += 1;
                    }
                }
            }
            out.push(Place::None);
            let mut c = 0usize;
            for l in &layers[pool + 1..] {
                out.push(match l.op.as_str() {
                    "dense" => Place::Module(format!("classifier.{c}")),
                    _ => Place::None,
                });
                c += slots(l);
            }
            Some(out)
        }
        Family::TimmMobileNetV4 => {
            let pool = kinds
                .iter()
                .position(|k| *k == "avgPool" || *k == "globalAvgPool")?;
            let ok = kinds.contains(&"uib")
                && is(0, "convBn")
                && (1..pool).all(|i| matches!(kinds[i], "uib" | "fusedMbConv" | "convBn"))
                && is(pool + 1, "convBn")
                && kinds[pool + 2..]
                    .iter()
                    .all(|k| *k == "flatten" || *k == "dropout" || *k == "dense")
                && is(n - 1, "dense");
            if !ok {
                return None;
            }
            let mut out = vec![Place::ConvBn {
                conv: "conv_stem".into(),
                bn: "bn1".into(),
            }];
            let (mut stage, mut j) = (0usize, 0usize);
            let mut first = true;
            for l in &layers[1..pool] {
                let mut paths = Vec::new();
                for b in 0..blocks_of(l) {
                    let stride = match l.op.as_str() {
                        "uib" => int_arg(l, "stride", 1),
                        "fusedMbConv" if b == 0 => int_arg(l, "stride", 1),
                        _ => 1,
                    };
                    let starts = l.op == "convBn" || stride != 1;
                    if starts && !first {
                        (stage, j) = (stage + 1, 0);
                    }
                    first = false;
                    paths.push(format!("blocks.{stage}.{j}"));
                    j += 1;
                }
                out.push(match l.op.as_str() {
                    "convBn" => Place::ConvBn {
                        conv: format!("{}.conv", paths[0]),
                        bn: format!("{}.bn1", paths[0]),
                    },
                    _ => Place::Blocks(paths),
                });
            }
            out.push(Place::None);
            out.push(Place::ConvBn {
                conv: "conv_head".into(),
                bn: "norm_head".into(),
            });
            for l in &layers[pool + 2..] {
                out.push(match l.op.as_str() {
                    "dense" => Place::Module("classifier".into()),
                    _ => Place::None,
                });
            }
            let heads = layers[pool + 2..]
                .iter()
                .filter(|l| l.op == "dense")
                .count();
            (heads == 1).then_some(out)
        }
        Family::TimmVit => {
            let ok = n == 3 && is(0, "patchEmbed") && is(1, "transformer") && is(2, "dense");
            ok.then(|| {
                vec![
                    Place::Module("patch_embed.proj".into()),
                    Place::Blocks(
                        (0..blocks_of(&layers[1]))
                            .map(|j| format!("blocks.{j}"))
                            .collect(),
                    ),
                    Place::Module("head".into()),
                ]
            })
        }
    }
}

/// A whole-number argument of a layer as written (the zoo's layers state them as literals).
fn int_arg(l: &Call, name: &str, default: usize) -> usize {
    match l.arg(name) {
        Some(Expr::Int(v)) => *v as usize,
        _ => default,
    }
}

/// Blocks of a stage layer (1 for single-block layers).
fn blocks_of(l: &Call) -> usize {
    match l.op.as_str() {
        "residual" | "bottleneck" | "invertedResidual" | "mbConv" | "fusedMbConv"
        | "transformer" => int_arg(l, "blocks", 1),
        _ => 1,
    }
}

/// How many slots a layer takes in a torchvision `Sequential` (a layer with an activation is
/// followed by the activation module; `act` is written only when it is not the identity).
fn slots(l: &Call) -> usize {
    match l.op.as_str() {
        "conv2d" | "dense" => 1 + usize::from(l.arg("act").is_some()),
        _ => 1,
    }
}

/// PyTorch's leaf name of a netspec leaf.
fn leaf(l: &str) -> Option<&'static str> {
    Some(match l {
        "w" | "gamma" => "weight",
        "b" | "beta" => "bias",
        "mean" => "running_mean",
        "var" => "running_var",
        _ => return None,
    })
}

/// The entry of one netspec tensor of layer `info` placed at `place`.
fn entry(family: Family, place: &Place, info: &LayerInfo, p: &ParamSpec) -> Option<Entry> {
    let rest = p.name.strip_prefix(&format!("l{}.", info.index))?;
    let (inner, lf) = match rest.rfind('.') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => ("", rest),
    };
    let mk = |torch: String, layout: Layout| {
        Some(Entry {
            netspec: p.name.clone(),
            shape: p.shape.clone(),
            torch,
            layout,
        })
    };
    let dense_layout = if p.shape.len() == 2 && lf == "w" {
        Layout::Transpose
    } else {
        Layout::Same
    };
    let module = match place {
        Place::None => return None,
        Place::Module(m) => {
            if family == Family::TimmVit && inner.is_empty() {
                match lf {
                    "cls" => {
                        return mk("cls_token".into(), Layout::Reshape(vec![1, 1, p.shape[0]]))
                    }
                    "pos" => {
                        let s = vec![1, p.shape[0], p.shape[1]];
                        return mk("pos_embed".into(), Layout::Reshape(s));
                    }
                    _ => {}
                }
            }
            match (family, inner) {
                (_, "") => m.clone(),
                (Family::TvSqueezeNet, "squeeze") => format!("{m}.squeeze"),
                (Family::TvSqueezeNet, "expand1") => format!("{m}.expand1x1"),
                (Family::TvSqueezeNet, "expand3") => format!("{m}.expand3x3"),
                _ => return None,
            }
        }
        Place::ConvBn { conv, bn } => match inner {
            "conv" => conv.clone(),
            "bn" => bn.clone(),
            _ => return None,
        },
        Place::Blocks(paths) => {
            let (j, sub) = match inner.strip_prefix('b').and_then(|s| s.split_once('.')) {
                Some((j, sub)) if j.parse::<usize>().is_ok() => (j.parse::<usize>().ok()?, sub),
                _ => (0, inner),
            };
            // A final LayerNorm after a transformer's blocks is rooted at the layer.
            if family == Family::TimmVit && inner == "ln" {
                "norm".to_string()
            } else {
                block_module(family, info, j, paths.get(j)?, sub)?
            }
        }
    };
    mk(format!("{module}.{}", leaf(lf)?), dense_layout)
}

/// The PyTorch module of sub-module `sub` (e.g. `down.conv`, `dw.bn`, `se.reduce`) of block `j`.
fn block_module(
    family: Family,
    info: &LayerInfo,
    j: usize,
    path: &str,
    sub: &str,
) -> Option<String> {
    let (head, tail) = sub.split_once('.').unwrap_or((sub, ""));
    match family {
        Family::TvResNet => Some(match sub {
            "down.conv" => format!("{path}.downsample.0"),
            "down.bn" => format!("{path}.downsample.1"),
            _ => format!("{path}.{sub}"),
        }),
        Family::TvMobileNetV2 => {
            // `conv.{k}`: sub-blocks in order; the last (project) is a plain conv then a plain BN.
            let order = sub_blocks(info, j);
            let k = order.iter().position(|s| s == head)?;
            let last = k + 1 == order.len();
            Some(match (last, tail) {
                (false, "conv") => format!("{path}.conv.{k}.0"),
                (false, "bn") => format!("{path}.conv.{k}.1"),
                (true, "conv") => format!("{path}.conv.{k}"),
                (true, "bn") => format!("{path}.conv.{}", k + 1),
                _ => return None,
            })
        }
        Family::TvMobileNetV3 | Family::TvEfficientNet => {
            let order = sub_blocks(info, j);
            let m = order.iter().position(|s| s == head)?;
            Some(match tail {
                "conv" => format!("{path}.block.{m}.0"),
                "bn" => format!("{path}.block.{m}.1"),
                "reduce" if head == "se" => format!("{path}.block.{m}.fc1"),
                "expand" if head == "se" => format!("{path}.block.{m}.fc2"),
                _ => return None,
            })
        }
        Family::TimmMobileNetV4 => {
            let m = match (head, tail) {
                ("fused", "conv") => "conv_exp",
                ("fused", "bn") => "bn1",
                ("project", "conv") if sub_blocks(info, j).contains(&"fused".to_string()) => {
                    "conv_pwl"
                }
                ("project", "bn") if sub_blocks(info, j).contains(&"fused".to_string()) => "bn2",
                ("se", "reduce") => "se.conv_reduce",
                ("se", "expand") => "se.conv_expand",
                ("dw_start", t) => return Some(format!("{path}.dw_start.{t}")),
                ("expand", t) => return Some(format!("{path}.pw_exp.{t}")),
                ("dw_mid", t) => return Some(format!("{path}.dw_mid.{t}")),
                ("project", t) => return Some(format!("{path}.pw_proj.{t}")),
                _ => return None,
            };
            Some(format!("{path}.{m}"))
        }
        Family::TimmVit => {
            let m = match head {
                "ln1" => "norm1".to_string(),
                "ln2" => "norm2".to_string(),
                "attn" | "mlp" => sub.to_string(),
                _ => return None,
            };
            Some(format!("{path}.{m}"))
        }
        Family::TvSqueezeNet => None,
    }
}

/// The top-level sub-module names of block `j` of a layer (`expand`, `dw`, `se`, `project`, …), in
/// the order of the layer's parameter list.
fn sub_blocks(info: &LayerInfo, j: usize) -> Vec<String> {
    let prefix = format!("l{}.", info.index);
    let block = format!("b{j}.");
    let mut out: Vec<String> = Vec::new();
    for p in &info.params {
        let Some(rest) = p.name.strip_prefix(&prefix) else {
            continue;
        };
        let rest = match rest.strip_prefix(&block) {
            Some(r) => r,
            None if rest.starts_with('b')
                && rest[1..].starts_with(|c: char| c.is_ascii_digit()) =>
            {
                continue
            }
            None => rest,
        };
        let head = rest.split('.').next().unwrap_or(rest).to_string();
        if !out.contains(&head) {
            out.push(head);
        }
    }
    out
}

/// An exported weights file's tensors: owned names, shapes and data.
pub struct Exported {
    pub tensors: Vec<(String, Vec<usize>, ExportData)>,
    pub metadata: BTreeMap<String, String>,
}

/// The data of an exported tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Exported {
    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let views: Vec<View<'_>> = self
            .tensors
            .iter()
            .map(|(n, s, d)| View {
                name: n,
                shape: s,
                data: match d {
                    ExportData::F32(v) => DataRef::F32(v),
                    ExportData::I64(v) => DataRef::I64(v),
                },
            })
            .collect();
        checkpoint::write(path, &views, &self.metadata)
    }
}

/// The parameters and BN statistics of `ck` (a checkpoint or init file of `spec`, netspec names) in
/// `convention`'s names and layouts. `step` fills PyTorch's `num_batches_tracked`. Optimizer state
/// and the step counter are left out.
pub fn export(
    spec: &NetSpec,
    ck: &Checkpoint,
    file: &Path,
    convention: Convention,
    step: u64,
) -> Result<Exported> {
    let need = |name: &str, shape: &[usize]| -> Result<&[f32]> {
        let t = ck.get(name).ok_or_else(|| {
            Error::Invalid(format!(
                "{}: no tensor {name} (model {})",
                file.display(),
                spec.name
            ))
        })?;
        match &t.data {
            TensorData::F32(v) if t.shape == shape => Ok(v),
            TensorData::F32(_) => Err(Error::Invalid(format!(
                "{}: tensor {name} has shape {:?}, the model needs {shape:?}",
                file.display(),
                t.shape
            ))),
            TensorData::I32(_) => Err(Error::Invalid(format!(
                "{}: tensor {name} is I32, a parameter is F32",
                file.display()
            ))),
        }
    };
    let mut tensors = Vec::new();
    let mut metadata = BTreeMap::new();
    match convention {
        Convention::Netspec => {
            let err = |e: spec::SpecError| Error::Invalid(format!("{}: {e}", spec.name));
            let ps = spec::params(spec).map_err(err)?;
            let bs = spec::buffers(spec).map_err(err)?;
            for p in ps.iter().chain(&bs) {
                let v = need(&p.name, &p.shape)?;
                tensors.push((p.name.clone(), p.shape.clone(), ExportData::F32(v.to_vec())));
            }
        }
        Convention::Torchvision | Convention::Timm => {
            let maps = name_maps(spec, convention)?;
            let Some(map) = maps.into_iter().next() else {
                return Err(not_a_family(spec, convention));
            };
            for e in map.params.iter().chain(&map.buffers) {
                let v = need(&e.netspec, &e.shape)?;
                tensors.push((
                    e.torch.clone(),
                    e.torch_shape(),
                    ExportData::F32(e.to_torch(v)),
                ));
            }
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            for n in &map.batches_tracked {
                tensors.push((n.clone(), vec![], ExportData::I64(vec![step])));
            }
            metadata.insert("format".into(), "pt".into());
        }
    }
    Ok(Exported { tensors, metadata })
}

fn not_a_family(spec: &NetSpec, convention: Convention) -> Error {
    let fams: Vec<&str> = Family::ALL
        .iter()
        .filter(|f| f.convention() == convention)
        .map(|f| f.name())
        .collect();
    Error::Invalid(format!(
        "model {} is not a {convention} model: its layers do not have the structure of any of {} \
         (see `netspec export --help`); export it with --names netspec",
        spec.name,
        fams.join(", ")
    ))
}

/// An init file read for a spec: parameters and buffers by netspec name.
#[derive(Debug)]
pub struct InitFile {
    /// Netspec name → tensor (netspec name, shape and layout).
    pub tensors: BTreeMap<String, Tensor>,
    /// The names the file used.
    pub convention: Convention,
    pub family: Option<Family>,
    /// Parameters of the classifier left out because the file's class count differs (fine-tuning
    /// a pretrained model on another dataset): they keep their fresh initialisation.
    pub fresh_head: Vec<String>,
}

impl InitFile {
    /// One line saying how the file was read.
    pub fn describe(&self, file: &Path) -> String {
        let mut s = format!(
            "init: {} read in {} names{} ({} tensors)",
            file.display(),
            self.convention,
            self.family
                .map(|f| format!(" ({})", f.name()))
                .unwrap_or_default(),
            self.tensors.len()
        );
        if !self.fresh_head.is_empty() {
            s.push_str(&format!(
                "; classifier {} freshly initialised (the file has another class count)",
                self.fresh_head.join(", ")
            ));
        }
        s
    }
}

/// A naming an init file may use: its convention, family, parameter and buffer entries.
type Candidate = (Convention, Option<Family>, Vec<Entry>, Vec<Entry>);

/// Reads an init file for `spec` in any [`Convention`]: netspec names as they are, or the names of a
/// torchvision/timm model of the spec's structure, converted back. Every parameter must be there
/// (buffers may be missing: they keep their fresh values); extra tensors are an error, except
/// PyTorch's `num_batches_tracked`. Only the classifier may differ in shape, and only in its class
/// count: it is then left out (see [`InitFile::fresh_head`]).
pub fn read_init(spec: &NetSpec, path: &Path) -> Result<InitFile> {
    let ck = checkpoint::read_skipping(path, &|n| n.ends_with(BATCHES_TRACKED))?;
    let by_name: HashMap<&str, &Tensor> = ck.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let err = |e: spec::SpecError| Error::Invalid(format!("{}: {e}", spec.name));
    let ps = spec::params(spec).map_err(err)?;
    let bs = spec::buffers(spec).map_err(err)?;
    let head = head_params(spec)?;

    // Candidates: netspec's own names, then every family that fits.
    let mut candidates: Vec<Candidate> = Vec::new();
    let own = |list: &[ParamSpec]| -> Vec<Entry> {
        list.iter()
            .map(|p| Entry {
                netspec: p.name.clone(),
                shape: p.shape.clone(),
                torch: p.name.clone(),
                layout: Layout::Same,
            })
            .collect()
    };
    candidates.push((Convention::Netspec, None, own(&ps), own(&bs)));
    for f in Family::ALL {
        if let Some(m) = name_map(spec, f)? {
            candidates.push((f.convention(), Some(f), m.params, m.buffers));
        }
    }
    let mut best: Option<(usize, String)> = None;
    for (convention, family, params, buffers) in &candidates {
        let missing: Vec<&Entry> = params
            .iter()
            .filter(|e| !by_name.contains_key(e.torch.as_str()))
            .collect();
        if let Some(first) = missing.first() {
            let found = params.len() - missing.len();
            let what = format!(
                "{} of {} parameters in {convention} names{} (the first missing is {})",
                found,
                params.len(),
                family
                    .map(|f| format!(" as a {}", f.name()))
                    .unwrap_or_default(),
                first.torch
            );
            if best.as_ref().is_none_or(|(n, _)| found > *n) {
                best = Some((found, what));
            }
            continue;
        }
        // This convention: every parameter is there.
        let known: HashSet<&str> = params
            .iter()
            .chain(buffers)
            .map(|e| e.torch.as_str())
            .collect();
        // A training checkpoint's optimizer state and step counter are not needed to start from.
        let state =
            |n: &str| *convention == Convention::Netspec && (n.starts_with("opt.") || n == "step");
        if let Some(extra) = ck
            .tensors
            .iter()
            .find(|t| !known.contains(t.name.as_str()) && !state(&t.name))
        {
            return Err(Error::Invalid(format!(
                "{}: tensor {} is not a parameter or BN statistic of {} in {convention} names",
                path.display(),
                extra.name,
                spec.name
            )));
        }
        let mut tensors = BTreeMap::new();
        let mut fresh_head = Vec::new();
        for e in params.iter().chain(buffers) {
            let Some(t) = by_name.get(e.torch.as_str()) else {
                continue; // a buffer the file does not have
            };
            let data = match &t.data {
                TensorData::F32(v) => v,
                TensorData::I32(_) => {
                    return Err(Error::Invalid(format!(
                        "{}: tensor {} is I32, a parameter is F32",
                        path.display(),
                        t.name
                    )))
                }
            };
            let want = e.torch_shape();
            if t.shape != want {
                let classes_differ = head.contains(&e.netspec)
                    && t.shape.len() == want.len()
                    && t.shape.first() != want.first();
                if classes_differ {
                    fresh_head.push(e.netspec.clone());
                    continue;
                }
                return Err(Error::Invalid(format!(
                    "{}: tensor {} has shape {:?}, the model's {} needs {want:?}",
                    path.display(),
                    t.name,
                    t.shape,
                    e.netspec
                )));
            }
            tensors.insert(
                e.netspec.clone(),
                Tensor {
                    name: e.netspec.clone(),
                    shape: e.shape.clone(),
                    data: TensorData::F32(e.from_torch(data)),
                },
            );
        }
        return Ok(InitFile {
            tensors,
            convention: *convention,
            family: *family,
            fresh_head,
        });
    }
    Err(Error::Invalid(format!(
        "{}: the tensor names are not those of model {}: found {}",
        path.display(),
        spec.name,
        best.map(|b| b.1).unwrap_or_else(|| "nothing".into())
    )))
}

/// The parameters of the classifier: the last layer that has parameters, if it outputs the logits.
fn head_params(spec: &NetSpec) -> Result<Vec<String>> {
    let infos = spec::analyze(spec).map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?;
    Ok(infos
        .iter()
        .rev()
        .find(|i| !i.params.is_empty())
        .map(|i| i.params.iter().map(|p| p.name.clone()).collect())
        .unwrap_or_default())
}

/// The metadata key of an exported weights file (netspec names, without `--weights-only`).
pub const WEIGHTS_META_KEY: &str = "netspec_weights";

/// The spec recorded in a file's metadata: a training checkpoint's (`netspec` → `spec`) or an
/// export's ([`WEIGHTS_META_KEY`] → `spec`). `Ok(None)` when the file records none.
pub fn recorded_spec(ck: &Checkpoint, file: &Path) -> Result<Option<NetSpec>> {
    for key in [crate::run::META_KEY, WEIGHTS_META_KEY] {
        let Some(text) = ck.metadata.get(key) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "{}: \"{key}\" metadata is not JSON: {e}",
                file.display()
            ))
        })?;
        if let Some(s) = v.get("spec").and_then(serde_json::Value::as_str) {
            let spec = spec::parse_checked(s.as_bytes()).map_err(|e| {
                Error::Invalid(format!(
                    "{}: the spec recorded in the file does not parse: {e}",
                    file.display()
                ))
            })?;
            return Ok(Some(spec));
        }
    }
    Ok(None)
}

/// The step recorded in a file's metadata (0 when none).
pub fn recorded_step(ck: &Checkpoint, file: &Path) -> u64 {
    if let Ok(m) = crate::run::CheckpointMeta::from_checkpoint(ck, file) {
        return m.step;
    }
    ck.metadata
        .get(WEIGHTS_META_KEY)
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("step").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

/// The metadata of an export in netspec names: model, spec hash and text, step, names.
pub fn weights_metadata(spec: &NetSpec, step: u64) -> (String, String) {
    let v = serde_json::json!({
        "format": "netspec-weights-1",
        "spec_name": spec.name,
        "spec_hash": crate::run::spec_hash(spec),
        "step": step,
        "spec": spec::print(spec),
    });
    (WEIGHTS_META_KEY.to_string(), v.to_string())
}

/// Weights for checks that compare two implementations on the same model (logit parity, ONNX):
/// every parameter and BN statistic random and deterministic in `seed`, so that no bias, γ, β or
/// running statistic is the identity. Kernels, `cls` and `pos` as `spec::init`; biases and β
/// uniform in [−0.2, 0.2]; γ in [0.5, 1.5]; running means in [−0.1, 0.1] and variances in
/// [0.5, 1.5]. Netspec names.
pub fn check_weights(spec: &NetSpec, seed: u64) -> Result<BTreeMap<String, Tensor>> {
    let err = |e: spec::SpecError| Error::Invalid(format!("{}: {e}", spec.name));
    let ps = spec::params(spec).map_err(err)?;
    let bs = spec::buffers(spec).map_err(err)?;
    let mut out = BTreeMap::new();
    for (p, is_buf) in ps
        .iter()
        .map(|p| (p, false))
        .chain(bs.iter().map(|b| (b, true)))
    {
        let key = p.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = spec::SplitMix64::new(seed ^ key);
        let n = p.numel();
        let mut uniform = |lo: f32, hi: f32| -> Vec<f32> {
            (0..n)
                .map(|_| lo + (hi - lo) * ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32))
                .collect()
        };
        let data = match (&p.init, is_buf) {
            (spec::Init::HeNormal { .. } | spec::Init::Normal { .. }, _) => {
                spec::init_tensor(p, seed)
            }
            (spec::Init::Zeros, false) => uniform(-0.2, 0.2),
            (spec::Init::Ones, false) => uniform(0.5, 1.5),
            (spec::Init::Zeros, true) => uniform(-0.1, 0.1),
            (spec::Init::Ones, true) => uniform(0.5, 1.5),
            (spec::Init::Constant { value }, _) => uniform(value - 0.2, value + 0.2),
        };
        out.insert(
            p.name.clone(),
            Tensor {
                name: p.name.clone(),
                shape: p.shape.clone(),
                data: TensorData::F32(data),
            },
        );
    }
    Ok(out)
}
