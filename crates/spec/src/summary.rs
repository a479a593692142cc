//! Human-readable tables: the per-layer summary (`netspec summary`) and the zoo list
//! (`netspec zoo`).

use crate::analyze::{analyze, param_count};
use crate::error::SpecError;
use crate::layer::NetSpec;
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
                print_layer(&spec.layers[l.index]),
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
        let spec = crate::zoo::get(name).expect("zoo name");
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
