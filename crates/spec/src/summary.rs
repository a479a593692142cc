//! Human-readable tables: the per-layer summary (`netspec summary`) and the zoo list
//! (`netspec zoo`).

use crate::analyze::{analyze, param_count};
use crate::ast::NetSpec;
use crate::ast::Ty;
use crate::error::SpecError;
use crate::text::print_layer;
use std::fmt::Write as _;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// FLOPs with an SI prefix: `3.63 G`, `12.1 M`, `950`.
pub fn si(n: u64) -> String {
    let x = n as f64;
    for (scale, p) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if x >= scale {
            let v = x / scale;
            return if v >= 100.0 {
                format!("{v:.0} {p}")
            } else if v >= 10.0 {
                format!("{v:.1} {p}")
            } else {
                format!("{v:.2} {p}")
            };
        }
    }
    n.to_string()
}

/// The per-layer table: index, layer (in the text format), output shape, parameters, forward
/// FLOPs per example. The last line is exactly `total params: N`.
pub fn summary(spec: &NetSpec) -> Result<String, SpecError> {
    let info = analyze(spec)?;
    let rows: Vec<[String; 5]> = info
        .iter()
        .map(|l| {
            [
                l.index.to_string(),
                print_layer(spec, &spec.layers[l.index]),
                l.output.to_string(),
                thousands(l.param_count() as u64),
                si(l.flops),
            ]
        })
        .collect();
    let head = ["#", "layer", "output", "params", "FLOPs"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let [c, h, wd] = spec.input;
    let mut s = format!(
        "{}: input [B, {c}, {h}, {wd}], {} classes\n",
        spec.name, spec.num_classes
    );
    let line = |s: &mut String, r: &[String; 5]| {
        let _ = writeln!(
            s,
            "{:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        );
    };
    line(&mut s, &head.map(String::from));
    for r in &rows {
        line(&mut s, r);
    }
    let flops: u64 = info.iter().fold(0u64, |a, l| a.saturating_add(l.flops));
    let nbuf: usize = info.iter().map(|l| l.buffers.len()).sum();
    let _ = writeln!(
        s,
        "forward FLOPs per example: {} ({})",
        si(flops),
        thousands(flops)
    );
    let _ = writeln!(s, "BN running-statistics tensors: {nbuf}");
    let _ = write!(
        s,
        "total params: {}",
        info.iter().map(|l| l.param_count()).sum::<usize>()
    );
    Ok(s)
}

/// The zoo table: name, input shape, parameter count (10 classes), dataset of the default recipe.
pub fn zoo_table() -> String {
    let mut s = format!(
        "{:<20}  {:<16}  {:>12}  {}\n",
        "model", "input", "params", "recipe dataset"
    );
    for name in crate::zoo::names() {
        let Some(spec) = crate::zoo::get(name) else {
            continue;
        };
        let [c, h, w] = spec.input;
        let params = param_count(&spec)
            .map(|n| thousands(n as u64))
            .unwrap_or_else(|e| format!("error: {e}"));
        let data = crate::zoo::recipe(name).map_or("-", |r| r.dataset.name());
        let _ = writeln!(
            s,
            "{name:<20}  {:<16}  {params:>12}  {data}",
            format!("{c}×{h}×{w}")
        );
    }
    s
}

/// A parameter as written in a block header: `name:type`, `name=default` or `name:type=default`.
fn param_text(name: &str, ty: crate::ast::Ty, default: Option<String>, inferred: bool) -> String {
    match default {
        None => format!("{name}:{}", ty.name()),
        Some(d) if inferred => format!("{name}={d}"),
        Some(d) => format!("{name}:{}={d}", ty.name()),
    }
}

/// Every core layer, combinator and prelude block with its arguments (in the syntax of a block
/// header) and its one-line meaning: `netspec layers`. Generated from the tables the parser uses
/// (`core::CORE` and the prelude's definitions).
pub fn layers_table() -> String {
    use crate::core::{Def, CORE};
    let mut s = String::from(
        "Arguments are shown as in a block header: `name:type` is required, `name=default` optional; \
         a call may give its first\nargument without the name (`conv2d 64 kernel=3`) unless `*` \
         comes first; `in=N` (where marked) states the input features.\nTypes: int (≥ 1), int0 \
         (≥ 0), real, rate ([0, 1)), bool, act, join. `netspec layers NAME` shows one in full.\n",
    );
    for (title, body) in [
        ("Core layers", false),
        ("Combinators (take an indented body)", true),
    ] {
        let _ = writeln!(s, "\n{title}:");
        for c in CORE.iter().filter(|c| c.body == body) {
            let mut line = format!("  {}", c.name);
            if !c.positional && !c.args.is_empty() {
                line.push_str(" *");
            }
            for a in c.args {
                let d = match a.default {
                    Def::Required => None,
                    Def::Auto => Some("auto".to_string()),
                    Def::Is(v) => Some(v.to_string()),
                };
                let inferred = matches!(a.default, Def::Is(v) if literal_type(v) == Some(a.ty));
                let _ = write!(line, " {}", param_text(a.name, a.ty, d, inferred));
            }
            if c.takes_in {
                line.push_str(" [in]");
            }
            let _ = writeln!(s, "{line}\n      {}", c.doc);
        }
    }
    let _ = writeln!(s, "\nPrelude blocks (crates/spec/src/prelude.ns):");
    for b in crate::prelude::blocks() {
        let header = crate::text::print_block(None, b);
        let sig = header
            .lines()
            .find(|l| l.starts_with("block "))
            .unwrap_or_default()
            .trim_start_matches("block ");
        let _ = writeln!(
            s,
            "  {sig} [in]\n      {}",
            b.doc.first().map_or("", String::as_str)
        );
    }
    s
}

/// The type a literal default implies (as in block headers).
fn literal_type(v: crate::ast::Value) -> Option<crate::ast::Ty> {
    use crate::ast::{Ty, Value};
    match v {
        Value::Int(i) if i >= 1 => Some(Ty::Int),
        Value::Int(_) => Some(Ty::Int0),
        Value::Real(_) => Some(Ty::Real),
        Value::Bool(_) => Some(Ty::Bool),
        Value::Act(_) => Some(Ty::Act),
        Value::Join(_) => Some(Ty::Join),
        Value::Auto => None,
    }
}

/// One core layer, combinator or prelude block in full (`netspec layers NAME`): its arguments with
/// their types and defaults, its meaning, and for a prelude block its definition.
pub fn describe_layer(name: &str) -> Option<String> {
    use crate::core::Def;
    if let Some(c) = crate::core::sig(name) {
        let what = if c.body { "combinator" } else { "core layer" };
        let mut s = format!("{name} ({what}): {}\n", c.doc);
        for (i, a) in c.args.iter().enumerate() {
            let d = match a.default {
                Def::Required if i == 0 && c.positional => {
                    "required, may be given by position".into()
                }
                Def::Required => "required".to_string(),
                Def::Auto => "default auto".into(),
                Def::Is(v) => format!("default {v}"),
            };
            let _ = writeln!(s, "  {:<8} {:<18} {d}", a.name, a.ty.describe());
        }
        if c.takes_in {
            let _ = writeln!(
                s,
                "  {:<8} {:<18} optional: the input features, checked",
                "in",
                Ty::Int.describe()
            );
        }
        return Some(s);
    }
    let b = crate::prelude::blocks().iter().find(|b| b.name == name)?;
    Some(format!(
        "{name} (prelude block; in a body, `in` is the input's features and `inH`, `inW` its size):\n\n{}",
        crate::text::print_block(None, b)
    ))
}
