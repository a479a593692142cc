//! The network-specific parts of the script: the parameter table, the recipe and `forward`.
//!
//! `forward` is written from the elaborated spec (`spec::analyze`: every block already expanded
//! into core layers and combinators): one helper call of `py/layers.py` per core layer, and plain
//! Python for the combinators (a residual sum, a parallel join). The helpers are written from the
//! core layers' doc comments (`spec::Layer`), never from a graph, and read parameters by ABI name, so
//! a disagreement with `spec::params` is caught when the script runs (`run_forward` compares the
//! names it read with the ABI list).

use std::fmt::Write as _;

use spec::{Init, Join, Layer, LayerInfo, Node, Op, ParamSpec, RunConfig, Shape};

/// A Python string literal (double quotes; escapes for `\`, `"` and control characters).
pub(crate) fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An `f32` as the Python float of the same value (widened to f64 exactly, shortest round-trip text).
pub(crate) fn py_f32(v: f32) -> String {
    // The shortest decimal that reads back to the same f32 (`0.9`, not 0.8999999761581421): JAX
    // rounds Python floats to f32 when they meet f32 arrays, giving back exactly `v`.
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

fn py_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_init(init: Init) -> String {
    match init {
        Init::HeNormal { fan_in } => format!("(\"he\", {fan_in})"),
        // spec::init multiplies by `std as f64`: write that exact value (0.019999999552965164 for
        // 0.02f32), or the Python init would differ in the last bits.
        Init::Normal { std } => format!("(\"normal\", {:?})", std as f64),
        Init::Zeros => "(\"zeros\",)".into(),
        Init::Ones => "(\"ones\",)".into(),
        Init::Constant { value } => format!("(\"constant\", {:?})", value as f64),
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `PARAMS` (name, shape, init, decay) and `BUFFERS` (name, shape, init), in ABI order.
pub(crate) fn param_tables(params: &[ParamSpec], buffers: &[ParamSpec]) -> String {
    let mut s = String::from("# The parameter ABI (spec::params): name, shape, init, weight decay. Order = ABI order.\nPARAMS = [\n");
    for p in params {
        let _ = writeln!(
            s,
            "    ({}, {}, {}, {}),",
            py_str(&p.name),
            py_shape(&p.shape),
            py_init(p.init),
            py_bool(p.decay)
        );
    }
    s.push_str("]\n\n# BN running statistics (spec::buffers): name, shape, init.\nBUFFERS = [\n");
    for b in buffers {
        let _ = writeln!(
            s,
            "    ({}, {}, {}),",
            py_str(&b.name),
            py_shape(&b.shape),
            py_init(b.init)
        );
    }
    s.push_str("]\n");
    s
}

/// Why the script cannot reproduce a configuration, if it cannot: it reads the built-in datasets and
/// does their crop-and-flip augmentations (`train::augment`'s `Fit::Crop`), with no validation split.
pub(crate) fn unsupported(r: &RunConfig) -> Option<String> {
    if !r.dataset.is_built_in() {
        return Some(format!(
            "the JAX export reads the built-in datasets (mnist, fashion-mnist, cifar10, imagenette), not {} data",
            r.dataset
        ));
    }
    if r.augment == spec::Augment::RandomResizedCrop {
        return Some(
            "the JAX export does not do the random-resized crop (--augment random-resized-crop)"
                .into(),
        );
    }
    if r.resize.is_some() {
        return Some("the JAX export does not resize images (--resize)".into());
    }
    if r.val_split.is_some() || r.early_stop.is_some() {
        return Some(
            "the JAX export has no validation split or early stopping (--val-split, --early-stop)"
                .into(),
        );
    }
    None
}

/// A JSON value as a Python literal (the config values the trace header copies).
fn py_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Bool(b) => py_bool(*b).into(),
        serde_json::Value::String(s) => py_str(s),
        other => other.to_string(),
    }
}

/// The run configuration as a Python dict: every `RunConfig` field under its JSON key (the
/// optimizer's constants as `mu`, `beta1`, `beta2`, `eps`; `augment` as netspec writes it: a bool or
/// a name; `normalize` only when set), plus what the script does with them: `random_crop` and `hflip`
/// (what the augmentation does on the training batches) and `mean`/`std` (the normalisation, empty
/// for plain `x/255`).
pub(crate) fn recipe_dict(r: &RunConfig) -> String {
    // Constants of the optimizers that do not use them are written as the usual values; the
    // script reads only its optimizer's.
    let (mu, beta1, beta2, eps) = match r.optimizer {
        spec::Optimizer::Sgd => (0.0, 0.9, 0.999, 1e-8),
        spec::Optimizer::Momentum { mu } => (mu, 0.9, 0.999, 1e-8),
        spec::Optimizer::Adam { beta1, beta2, eps }
        | spec::Optimizer::AdamW { beta1, beta2, eps } => (0.0, beta1, beta2, eps),
    };
    let (random_crop, hflip) = match r.augment {
        spec::Augment::None => (false, false),
        spec::Augment::Flip => (false, true),
        spec::Augment::CropFlip | spec::Augment::RandomResizedCrop => (true, true),
    };
    #[allow(
        clippy::expect_used,
        reason = "RunConfig's JSON form has only numbers, strings and bools: serializing cannot fail"
    )]
    let json = serde_json::to_value(r).expect("a RunConfig always serializes");
    let norm = r.normalization();
    let floats = |v: &[f32]| {
        format!(
            "[{}]",
            v.iter().map(|x| py_f32(*x)).collect::<Vec<_>>().join(", ")
        )
    };
    let mut s = String::from("RECIPE = {\n");
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(s, "    {}: {v},", py_str(k));
    };
    kv("optimizer", py_str(r.optimizer.name()));
    kv("mu", py_f32(mu));
    kv("beta1", py_f32(beta1));
    kv("beta2", py_f32(beta2));
    kv("eps", py_f32(eps));
    kv("lr", py_f32(r.lr));
    kv("batch_size", r.batch_size.to_string());
    kv("epochs", r.epochs.to_string());
    kv("weight_decay", py_f32(r.weight_decay));
    kv("warmup_epochs", r.warmup_epochs.to_string());
    kv("schedule", py_str(r.schedule.name()));
    kv("label_smoothing", py_f32(r.label_smoothing));
    kv("shuffle", py_bool(r.shuffle).into());
    kv("augment", py_json(&json["augment"]));
    kv("random_crop", py_bool(random_crop).into());
    kv("hflip", py_bool(hflip).into());
    if let Some(n) = &r.normalize {
        kv(
            "normalize",
            format!(
                "{{\"mean\": {}, \"std\": {}}}",
                floats(&n.mean),
                floats(&n.std)
            ),
        );
    }
    kv("mean", floats(&norm.mean));
    kv("std", floats(&norm.std));
    kv("seed", r.seed.to_string());
    kv("dataset", py_str(r.dataset.name()));
    kv("precision", py_str(r.precision.name()));
    s.push_str("}\n");
    s
}

/// `def forward(c, x):` — the network, one statement per core layer.
pub(crate) fn forward(infos: &[LayerInfo]) -> String {
    let mut f = Forward {
        lines: Vec::new(),
        temps: 0,
        random: 0,
    };
    for info in infos {
        f.line(format!(
            "# layer {} ({}): {} -> {}",
            info.index, info.kind, info.input, info.output
        ));
        match &info.node.op {
            // a top-level block call: its comment is the line above
            Op::Seq(children) if spec::sig(&info.kind).is_none() => {
                children.iter().for_each(|c| f.node(c))
            }
            Op::Layer { .. } | Op::Seq(_) | Op::Add { .. } | Op::Parallel { .. } => {
                f.node(&info.node)
            }
        }
    }
    let mut s = String::from(
        "def forward(c, x):\n    \"\"\"Logits of the network for the image batch x: [B, C, H, W] (train or eval per c).\"\"\"\n",
    );
    for l in f.lines {
        let _ = writeln!(s, "    {l}");
    }
    s.push_str("    return x\n");
    s
}

/// The statements of `forward` under construction; the activation is always in `x`.
struct Forward {
    lines: Vec<String>,
    temps: usize,
    /// Random layers so far (each folds its own index into the dropout key).
    random: usize,
}

impl Forward {
    fn line(&mut self, l: String) {
        self.lines.push(l);
    }

    fn temp(&mut self, stem: &str) -> String {
        self.temps += 1;
        format!("{stem}{}", self.temps)
    }

    fn node(&mut self, n: &Node) {
        match &n.op {
            Op::Layer { layer, .. } => {
                if let Some(l) = self.layer(layer, &n.path, n.input) {
                    self.line(l);
                }
            }
            Op::Seq(children) => {
                if spec::sig(&n.kind).is_none() {
                    // a block call
                    self.line(format!("# {}: {}", n.path, n.kind));
                }
                children.iter().for_each(|c| self.node(c));
            }
            Op::Add { body, down } => {
                let s = self.temp("skip");
                self.line(format!("{s} = x  # {}: residual", n.path));
                body.iter().for_each(|c| self.node(c));
                if down.is_empty() {
                    self.line(format!("x = x + {s}"));
                } else {
                    let b = self.temp("body");
                    self.line(format!("{b} = x"));
                    self.line(format!("x = {s}  # projection"));
                    down.iter().for_each(|c| self.node(c));
                    self.line(format!("x = {b} + x"));
                }
            }
            Op::Parallel { join, branches } => {
                let p = self.temp("branch_in");
                self.line(format!("{p} = x  # {}: parallel {}", n.path, join.name()));
                let mut outs = Vec::new();
                for (k, b) in branches.iter().enumerate() {
                    if k > 0 {
                        self.line(format!("x = {p}"));
                    }
                    self.node(b);
                    let o = self.temp("branch");
                    self.line(format!("{o} = x"));
                    outs.push(o);
                }
                let joined = match join {
                    Join::Concat => {
                        let axis = if let Shape::Image { .. } = n.output {
                            1
                        } else {
                            -1
                        };
                        format!("jnp.concatenate([{}], axis={axis})", outs.join(", "))
                    }
                    // A product of branches (an SE gate) broadcasts one of them: in f32 (mul_f32), so
                    // that the broadcast's gradient sums in f32 at bf16 (see layers.py).
                    Join::Mul => outs
                        .iter()
                        .skip(1)
                        .fold(outs[0].clone(), |a, o| format!("mul_f32({a}, {o})")),
                    Join::Add => outs.join(" + "),
                };
                self.line(format!("x = {joined}"));
            }
        }
    }

    /// The statement of one core layer at `path` on input shape `x` (`None` for the identity).
    fn layer(&mut self, layer: &Layer, path: &str, x: Shape) -> Option<String> {
        let q = py_str(path);
        let act = |a: spec::Act| py_str(a.name());
        let image = matches!(x, Shape::Image { .. });
        Some(match *layer {
            Layer::Dense { act: a, .. } => format!("x = dense(c, {q}, x, {})", act(a)),
            Layer::Conv2d { stride, pad, groups, bias, act: a, .. } => format!(
                "x = conv2d(c, {q}, x, stride={stride}, pad={pad}, groups={groups}, bias={}, act={})",
                py_bool(bias),
                act(a)
            ),
            Layer::BatchNorm => format!("x = batch_norm(c, {q}, x)"),
            Layer::LayerNorm => format!("x = layer_norm(c, {q}, x, axis={})", if image { 1 } else { -1 }),
            Layer::InstanceNorm => format!("x = instance_norm(c, {q}, x)"),
            Layer::MaxPool { size, stride, pad } => {
                format!("x = max_pool(x, size={size}, stride={stride}, pad={pad})")
            }
            Layer::AvgPool { size, stride, pad } => {
                format!("x = avg_pool(x, size={size}, stride={stride}, pad={pad})")
            }
            Layer::GlobalAvgPool { keep } => format!("x = global_avg_pool(x, keep={})", py_bool(keep)),
            Layer::Flatten => "x = flatten(x)".into(),
            Layer::Dropout { rate } | Layer::DropPath { rate } => {
                self.random += 1;
                let f = if let Layer::Dropout { .. } = layer { "dropout" } else { "drop_path" };
                format!("x = {f}(c, x, rate={}, index={})", py_f32(rate), self.random)
            }
            Layer::Activation(a) => format!("x = ACTS[{}](x)", act(a)),
            Layer::Identity => return None,
            Layer::Scale { .. } => format!("x = scale(c, {q}, x, axis={})", if image { 1 } else { -1 }),
            Layer::Attention { heads } => format!("x = attention(c, {q}, x, heads={heads})"),
            Layer::ToTokens => "x = to_tokens(x)".into(),
            Layer::ClsToken => format!("x = cls_token(c, {q}, x)"),
            Layer::PosEmbed => format!("x = pos_embed(c, {q}, x)"),
            Layer::ClsPool => "x = x[:, 0]  # the CLS token".into(),
        })
    }
}
