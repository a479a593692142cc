//! The network-specific parts of the script: the parameter table, the recipe and `forward`.
//!
//! `forward` is one line (or one line per block) per layer, calling the helpers of `py/layers.py`
//! with every structural decision (stride, padding, projection shortcut, skip, expansion) already
//! made here from the layer's doc in `spec::Layer` and its inferred input shape. The helpers read
//! parameters by ABI name, so a disagreement with `spec::params` is caught when the script runs
//! (`run_forward` compares the names it read with the ABI list).

use std::fmt::Write as _;

use spec::{Act, Init, Layer, LayerInfo, NetSpec, ParamSpec, RunConfig, Shape};

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

/// The run configuration as a Python dict: every `RunConfig` field under its JSON key (the
/// optimizer's constants as `mu`, `beta1`, `beta2`, `eps`), plus what `augment` does on the dataset
/// (`random_crop`, `hflip`: `RunConfig::augmentation`).
pub(crate) fn recipe_dict(r: &RunConfig) -> String {
    // Constants of the optimizers that do not use them are written as the usual values; the
    // script reads only its optimizer's.
    let (mu, beta1, beta2, eps) = match r.optimizer {
        spec::Optimizer::Sgd => (0.0, 0.9, 0.999, 1e-8),
        spec::Optimizer::Momentum { mu } => (mu, 0.9, 0.999, 1e-8),
        spec::Optimizer::Adam { beta1, beta2, eps }
        | spec::Optimizer::AdamW { beta1, beta2, eps } => (0.0, beta1, beta2, eps),
    };
    let aug = r.augmentation();
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
    kv("augment", py_bool(r.augment).into());
    kv("random_crop", py_bool(aug.random_crop).into());
    kv("hflip", py_bool(aug.hflip).into());
    kv("seed", r.seed.to_string());
    kv("dataset", py_str(r.dataset.name()));
    s.push_str("}\n");
    s
}

fn act(a: Act) -> String {
    py_str(a.name())
}

fn channels(shape: Shape) -> usize {
    match shape {
        Shape::Image { c, .. } => c,
        Shape::Tokens { d, .. } => d,
        Shape::Flat { n } => n,
    }
}

/// `def forward(c, x):` — the network, one statement per layer or block.
pub(crate) fn forward(spec: &NetSpec, infos: &[LayerInfo]) -> String {
    let mut s = String::from(
        "def forward(c, x):\n    \"\"\"Logits of the network for the image batch x: [B, C, H, W] (train or eval per c).\"\"\"\n",
    );
    for (layer, info) in spec.layers.iter().zip(infos) {
        let p = format!("l{}", info.index);
        let _ = writeln!(
            s,
            "    # layer {} ({}): {} -> {}",
            info.index, info.kind, info.input, info.output
        );
        for line in layer_lines(layer, &p, info) {
            let _ = writeln!(s, "    {line}");
        }
    }
    s.push_str("    return x\n");
    s
}

/// The Python statements of one layer (see `spec::Layer` for each definition).
fn layer_lines(layer: &Layer, p: &str, info: &LayerInfo) -> Vec<String> {
    let cin = channels(info.input);
    let q = py_str(p);
    // Stage blocks: block 0 has the stage stride and maps cin → out, the others stride 1, out → out.
    let stage = |blocks: usize, stride: usize, out: usize| {
        (0..blocks).map(move |j| {
            let (s, c) = if j == 0 { (stride, cin) } else { (1, out) };
            (py_str(&format!("{p}.b{j}")), s, c)
        })
    };
    match layer {
        Layer::Dense { act: a, .. } => vec![format!("x = dense(c, {q}, x, {})", act(*a))],
        Layer::Conv2d { kernel, stride, pad, act: a, .. } => {
            let pad = pad.unwrap_or((kernel - 1) / 2);
            vec![format!("x = conv_bias(c, {q}, x, stride={stride}, pad={pad}, act={})", act(*a))]
        }
        Layer::ConvBn { kernel, stride, pad, act: a, .. } => {
            let pad = pad.unwrap_or((kernel - 1) / 2);
            vec![format!("x = conv_bn(c, {q}, x, stride={stride}, pad={pad}, act={})", act(*a))]
        }
        Layer::BatchNorm { .. } => vec![format!("x = batch_norm(c, {q}, x)")],
        Layer::LayerNorm { .. } => {
            let axis = match info.input {
                Shape::Image { .. } => "1",
                Shape::Tokens { .. } | Shape::Flat { .. } => "-1",
            };
            vec![format!("x = layer_norm(c, {q}, x, axis={axis})")]
        }
        Layer::InstanceNorm { .. } => vec![format!("x = instance_norm(c, {q}, x)")],
        Layer::MaxPool { size, stride, pad } => vec![format!("x = max_pool(x, size={size}, stride={stride}, pad={pad})")],
        Layer::AvgPool { size, stride, pad } => vec![format!("x = avg_pool(x, size={size}, stride={stride}, pad={pad})")],
        Layer::GlobalAvgPool => vec!["x = global_avg_pool(x)".into()],
        Layer::Flatten => vec!["x = flatten(x)".into()],
        Layer::Dropout { rate } => vec![format!("x = dropout(c, x, rate={}, index={})", py_f32(*rate), info.index)],
        Layer::Activation { act: a } => vec![format!("x = ACTS[{}](x)", act(*a))],
        Layer::Residual { out, blocks, stride, .. } => stage(*blocks, *stride, *out)
            .map(|(b, s, c)| format!("x = basic_block(c, {b}, x, stride={s}, down={})", py_bool(s != 1 || c != *out)))
            .collect(),
        Layer::Bottleneck { out, blocks, stride, .. } => stage(*blocks, *stride, *out)
            .map(|(b, s, c)| format!("x = bottleneck_block(c, {b}, x, stride={s}, down={})", py_bool(s != 1 || c != *out)))
            .collect(),
        Layer::SeparableConv { stride, act: a, .. } => vec![
            format!("x = depthwise_bn(c, {}, x, kernel=3, stride={stride}, act={})", py_str(&format!("{p}.dw")), act(*a)),
            format!("x = conv_bn(c, {}, x, stride=1, pad=0, act={})", py_str(&format!("{p}.pw")), act(*a)),
        ],
        Layer::InvertedResidual { out, expand, stride, blocks, .. } => stage(*blocks, *stride, *out)
            .map(|(b, s, c)| {
                format!(
                    "x = inverted_residual(c, {b}, x, expand={}, stride={s}, skip={})",
                    py_bool(*expand != 1),
                    py_bool(s == 1 && c == *out)
                )
            })
            .collect(),
        Layer::MbConv { out, expand, kernel, stride, blocks, se, act: a, .. } => stage(*blocks, *stride, *out)
            .map(|(b, s, c)| {
                format!(
                    "x = mbconv(c, {b}, x, expand={}, kernel={kernel}, stride={s}, se={}, act={}, skip={})",
                    py_bool(*expand != 1),
                    py_bool(*se),
                    act(*a),
                    py_bool(s == 1 && c == *out)
                )
            })
            .collect(),
        Layer::MbConvV3 { out, expanded, kernel, stride, se, act: a, .. } => vec![format!(
            "x = mbconv_v3(c, {q}, x, expand={}, kernel={kernel}, stride={stride}, se={}, act={}, skip={})",
            py_bool(*expanded != cin),
            py_bool(*se),
            act(*a),
            py_bool(*stride == 1 && cin == *out)
        )],
        Layer::FusedMbConv { out, expand, kernel, stride, blocks, se, act: a, .. } => stage(*blocks, *stride, *out)
            .map(|(b, s, c)| {
                format!(
                    "x = fused_mbconv(c, {b}, x, expand={}, kernel={kernel}, stride={s}, se={}, act={}, skip={})",
                    py_bool(*expand != 1),
                    py_bool(*se),
                    act(*a),
                    py_bool(s == 1 && c == *out)
                )
            })
            .collect(),
        Layer::Uib { out, start_kernel, mid_kernel, stride, act: a, .. } => vec![format!(
            "x = uib(c, {q}, x, start_kernel={start_kernel}, mid_kernel={mid_kernel}, stride={stride}, act={}, skip={})",
            act(*a),
            py_bool(*stride == 1 && cin == *out)
        )],
        Layer::Fire { .. } => vec![format!("x = fire(c, {q}, x)")],
        Layer::PatchEmbed { patch, .. } => vec![format!("x = patch_embed(c, {q}, x, patch={patch})")],
        Layer::Transformer { heads, blocks, .. } => {
            let mut v: Vec<String> = (0..*blocks)
                .map(|j| format!("x = encoder_block(c, {}, x, heads={heads})", py_str(&format!("{p}.b{j}"))))
                .collect();
            v.push(format!("x = layer_norm(c, {}, x, axis=-1)", py_str(&format!("{p}.ln"))));
            v.push("x = x[:, 0]  # CLS token".into());
            v
        }
    }
}
