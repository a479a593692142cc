//! The spec text format: what a person writes in an editor.
//!
//! ```text
//! # ResNet-34 for Imagenette (comments start with `#` and run to the end of the line)
//! name resnet34
//! input 3 224 224          # C H W
//! classes 10
//!
//! convBn 64 kernel=7 stride=2
//! maxPool 3 stride=2 pad=1
//! residual 64 blocks=3
//! residual 128 blocks=4 stride=2
//! residual 256 blocks=6 stride=2
//! residual 512 blocks=3 stride=2
//! globalAvgPool
//! dense 10
//! ```
//!
//! * UTF-8 text, one statement per line; blank lines and `#` comments are ignored; tokens are
//!   separated by spaces or tabs (a trailing `\r` is ignored).
//! * Three header lines, each exactly once and before the first layer: `name NAME`
//!   (`[A-Za-z0-9_.-]+`), `input C H W`, `classes N`.
//! * Then one layer per line: the layer keyword, at most one positional value (the layer's main
//!   size, e.g. output channels), then `key=value` arguments in any order (no spaces around `=`).
//!   The positional value may also be given by name. Values are whole numbers (decimal, ≤ 2²⁴),
//!   rates (`0.2`), booleans (`true`/`false`) or activation names (`relu`, `relu6`, `swish`,
//!   `hswish`, `hsigmoid`, `gelu`, `sigmoid`, `identity`).
//! * The accepted arguments per layer and their defaults are in the table `ARGS` below (`netspec`
//!   prints them on an unknown-argument error). `in=N` states the expected input channels.
//! * Errors are reported as `line:column: message` (1-based; columns count characters).
//!
//! [`print`] writes the canonical form (defaults omitted); `parse(print(s)) == s` for valid specs.

use crate::analyze::MAX_DIM;
use crate::error::ParseError;
use crate::layer::{Act, Layer, NetSpec, LAYER_KINDS};
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    /// Whole number ≥ min.
    Int {
        min: usize,
    },
    /// Real number in [0, 1).
    Rate,
    Bool,
    Act,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Value {
    Int(usize),
    Rate(f32),
    Bool(bool),
    Act(Act),
}

/// Default of an argument: required, optional (absent = `None` in the Rust value), or a value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Def {
    Required,
    Optional,
    Is(Value),
}

struct Arg {
    name: &'static str,
    ty: Ty,
    def: Def,
}

const fn arg(name: &'static str, ty: Ty, def: Def) -> Arg {
    Arg { name, ty, def }
}

const N1: Ty = Ty::Int { min: 1 };
const N0: Ty = Ty::Int { min: 0 };
const IN: Arg = arg("in", N1, Def::Optional);
const REQ: Def = Def::Required;
const ONE: Def = Def::Is(Value::Int(1));
const fn act(a: Act) -> Def {
    Def::Is(Value::Act(a))
}
const fn flag(b: bool) -> Def {
    Def::Is(Value::Bool(b))
}

/// Per layer keyword: whether the first argument may be given positionally, and the arguments.
const ARGS: &[(&str, bool, &[Arg])] = &[
    (
        "dense",
        true,
        &[
            arg("out", N1, REQ),
            arg("act", Ty::Act, act(Act::Identity)),
            IN,
        ],
    ),
    (
        "conv2d",
        true,
        &[
            arg("out", N1, REQ),
            arg("kernel", N1, REQ),
            arg("stride", N1, ONE),
            arg("pad", N0, Def::Optional),
            arg("act", Ty::Act, act(Act::Identity)),
            IN,
        ],
    ),
    (
        "convBn",
        true,
        &[
            arg("out", N1, REQ),
            arg("kernel", N1, REQ),
            arg("stride", N1, ONE),
            arg("pad", N0, Def::Optional),
            arg("act", Ty::Act, act(Act::Relu)),
            IN,
        ],
    ),
    ("batchNorm", false, &[IN]),
    ("layerNorm", false, &[IN]),
    ("instanceNorm", false, &[IN]),
    (
        "maxPool",
        true,
        &[
            arg("size", N1, REQ),
            arg("stride", N1, Def::Optional),
            arg("pad", N0, Def::Is(Value::Int(0))),
        ],
    ),
    (
        "avgPool",
        true,
        &[
            arg("size", N1, REQ),
            arg("stride", N1, Def::Optional),
            arg("pad", N0, Def::Is(Value::Int(0))),
        ],
    ),
    ("globalAvgPool", false, &[]),
    ("flatten", false, &[]),
    ("dropout", true, &[arg("rate", Ty::Rate, REQ)]),
    ("act", true, &[arg("fn", Ty::Act, REQ)]),
    (
        "residual",
        true,
        &[
            arg("out", N1, REQ),
            arg("blocks", N1, ONE),
            arg("stride", N1, ONE),
            IN,
        ],
    ),
    (
        "bottleneck",
        true,
        &[
            arg("out", N1, REQ),
            arg("blocks", N1, ONE),
            arg("stride", N1, ONE),
            IN,
        ],
    ),
    (
        "separableConv",
        true,
        &[
            arg("out", N1, REQ),
            arg("stride", N1, ONE),
            arg("act", Ty::Act, act(Act::Relu)),
            IN,
        ],
    ),
    (
        "invertedResidual",
        true,
        &[
            arg("out", N1, REQ),
            arg("expand", N1, REQ),
            arg("stride", N1, ONE),
            arg("blocks", N1, ONE),
            IN,
        ],
    ),
    (
        "mbConv",
        true,
        &[
            arg("out", N1, REQ),
            arg("expand", N1, REQ),
            arg("kernel", N1, REQ),
            arg("stride", N1, ONE),
            arg("blocks", N1, ONE),
            arg("se", Ty::Bool, flag(true)),
            arg("act", Ty::Act, act(Act::Swish)),
            IN,
        ],
    ),
    (
        "mbConvV3",
        true,
        &[
            arg("out", N1, REQ),
            arg("expanded", N1, REQ),
            arg("kernel", N1, REQ),
            arg("stride", N1, ONE),
            arg("se", Ty::Bool, flag(false)),
            arg("act", Ty::Act, act(Act::Relu)),
            IN,
        ],
    ),
    (
        "fusedMbConv",
        true,
        &[
            arg("out", N1, REQ),
            arg("expand", N1, REQ),
            arg("kernel", N1, REQ),
            arg("stride", N1, ONE),
            arg("blocks", N1, ONE),
            arg("se", Ty::Bool, flag(false)),
            arg("act", Ty::Act, act(Act::Swish)),
            IN,
        ],
    ),
    (
        "uib",
        true,
        &[
            arg("out", N1, REQ),
            arg("expand", N1, REQ),
            arg("start", N0, Def::Is(Value::Int(0))),
            arg("mid", N0, Def::Is(Value::Int(0))),
            arg("stride", N1, ONE),
            arg("act", Ty::Act, act(Act::Relu)),
            IN,
        ],
    ),
    (
        "fire",
        true,
        &[
            arg("squeeze", N1, REQ),
            arg("expand1", N1, REQ),
            arg("expand3", N1, REQ),
            IN,
        ],
    ),
    (
        "patchEmbed",
        true,
        &[arg("dim", N1, REQ), arg("patch", N1, REQ), IN],
    ),
    (
        "transformer",
        false,
        &[
            arg("heads", N1, REQ),
            arg("mlp", N1, REQ),
            arg("blocks", N1, ONE),
            IN,
        ],
    ),
];

fn args_of(kind: &str) -> Option<(bool, &'static [Arg])> {
    ARGS.iter()
        .find(|(k, _, _)| *k == kind)
        .map(|&(_, pos, a)| (pos, a))
}

/// A token of a line: text and 1-based character column.
#[derive(Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    col: usize,
}

/// Splits one line into tokens, dropping the comment.
fn tokenize(line: &str) -> Vec<Tok<'_>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut toks = Vec::new();
    let mut start: Option<(usize, usize)> = None; // (byte, col)
    let mut end_byte = line.len();
    for (col0, (b, ch)) in line.char_indices().enumerate() {
        let col = col0 + 1;
        if ch == '#' {
            end_byte = b;
            break;
        }
        if ch == ' ' || ch == '\t' {
            if let Some((sb, sc)) = start.take() {
                toks.push(Tok {
                    text: &line[sb..b],
                    col: sc,
                });
            }
        } else if start.is_none() {
            start = Some((b, col));
        }
    }
    if let Some((sb, sc)) = start {
        toks.push(Tok {
            text: &line[sb..end_byte],
            col: sc,
        });
    }
    toks
}

/// Quotes user text for messages, escaping control characters.
fn show(s: &str) -> String {
    let mut out = String::from("`");
    for (n, ch) in s.chars().enumerate() {
        if n == 40 {
            out.push('…');
            break;
        }
        out.extend(ch.escape_debug());
    }
    out.push('`');
    out
}

struct Err1 {
    col: usize,
    message: String,
}

fn e1<T>(col: usize, message: impl Into<String>) -> Result<T, Err1> {
    Err(Err1 {
        col,
        message: message.into(),
    })
}

fn parse_int(tok: &str, col: usize, what: &str, min: usize) -> Result<usize, Err1> {
    if tok.is_empty() {
        return e1(col, format!("expected a number for {what}"));
    }
    if let Some(rest) = tok.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            return e1(
                col,
                format!("{what} must not be negative, found {}", show(tok)),
            );
        }
    }
    if !tok.bytes().all(|b| b.is_ascii_digit()) {
        return e1(
            col,
            format!("expected a whole number for {what}, found {}", show(tok)),
        );
    }
    let v = match tok.parse::<u64>() {
        Ok(v) if v <= MAX_DIM as u64 => v as usize,
        Ok(_) | Err(_) => {
            return e1(
                col,
                format!("{what} = {} is too large (at most {MAX_DIM})", show(tok)),
            )
        }
    };
    if v < min {
        return e1(col, format!("{what} must be at least {min}, found {v}"));
    }
    Ok(v)
}

fn parse_value(ty: Ty, tok: &str, col: usize, what: &str) -> Result<Value, Err1> {
    match ty {
        Ty::Int { min } => parse_int(tok, col, what, min).map(Value::Int),
        Ty::Rate => match tok.parse::<f32>() {
            Ok(r) if r.is_finite() && (0.0..1.0).contains(&r) => Ok(Value::Rate(r)),
            Ok(_) => e1(
                col,
                format!("{what} must be a rate in [0, 1), found {}", show(tok)),
            ),
            Err(_) => e1(
                col,
                format!("expected a rate like 0.2 for {what}, found {}", show(tok)),
            ),
        },
        Ty::Bool => match tok {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => e1(
                col,
                format!("expected `true` or `false` for {what}, found {}", show(tok)),
            ),
        },
        Ty::Act => match Act::from_name(tok) {
            Some(a) => Ok(Value::Act(a)),
            None => {
                let names: Vec<&str> = Act::ALL.iter().map(|a| a.name()).collect();
                e1(
                    col,
                    format!(
                        "unknown activation {} for {what}; expected one of: {}",
                        show(tok),
                        names.join(", ")
                    ),
                )
            }
        },
    }
}

/// Levenshtein distance (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(!a[i - 1].eq_ignore_ascii_case(&b[j - 1]));
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn suggest<'a>(word: &str, options: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.chars().count() > 40 {
        return None;
    }
    options
        .into_iter()
        .map(|o| (edit_distance(word, o), o))
        .filter(|&(d, o)| d <= 2.max(o.len() / 4) && d < o.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, o)| o)
}

/// The arguments given on one layer line, by table index.
struct Given {
    values: Vec<Option<(Value, usize)>>,
}

fn parse_layer(kind_tok: Tok<'_>, rest: &[Tok<'_>]) -> Result<Layer, Err1> {
    let kind = kind_tok.text;
    let Some((positional, defs)) = args_of(kind) else {
        let hint = match suggest(kind, LAYER_KINDS) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("expected one of: {}", LAYER_KINDS.join(", ")),
        };
        return e1(
            kind_tok.col,
            format!("unknown layer {}; {hint}", show(kind)),
        );
    };
    let mut given = Given {
        values: vec![None; defs.len()],
    };
    let mut npos = 0;
    for (ti, t) in rest.iter().enumerate() {
        match t.text.split_once('=') {
            None => {
                if rest.get(ti + 1).is_some_and(|n| n.text.starts_with('=')) {
                    return e1(
                        t.col,
                        format!("write `{}=value` without spaces around `=`", t.text),
                    );
                }
                if !positional || npos > 0 {
                    let named: Vec<String> = defs.iter().map(|d| format!("{}=", d.name)).collect();
                    let what = if positional {
                        format!(
                            "`{kind}` takes one positional value ({}); give the others by name",
                            defs[0].name
                        )
                    } else {
                        format!("`{kind}` takes no positional values")
                    };
                    let example = if named.is_empty() {
                        String::from(" (it has no arguments)")
                    } else {
                        format!(": {}", named.join(" "))
                    };
                    return e1(
                        t.col,
                        format!("unexpected {}: {what}{example}", show(t.text)),
                    );
                }
                npos += 1;
                if let Some((_, c)) = given.values[0] {
                    return e1(
                        t.col,
                        format!("`{}` is given twice (first at column {c})", defs[0].name),
                    );
                }
                let v = parse_value(defs[0].ty, t.text, t.col, &format!("`{}`", defs[0].name))?;
                given.values[0] = Some((v, t.col));
            }
            Some((key, val)) => {
                if key.is_empty() {
                    return e1(
                        t.col,
                        format!("expected `name=value`, found {}", show(t.text)),
                    );
                }
                let Some(idx) = defs.iter().position(|d| d.name == key) else {
                    let names: Vec<&str> = defs.iter().map(|d| d.name).collect();
                    if names.is_empty() {
                        return e1(
                            t.col,
                            format!(
                                "unknown argument {}: `{kind}` takes no arguments",
                                show(key)
                            ),
                        );
                    }
                    let hint = match suggest(key, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`? "),
                        None => String::new(),
                    };
                    return e1(
                        t.col,
                        format!(
                            "unknown argument {} for `{kind}`; {hint}(accepted: {})",
                            show(key),
                            names.join(", ")
                        ),
                    );
                };
                if let Some((_, c)) = given.values[idx] {
                    return e1(
                        t.col,
                        format!("`{key}` is given twice (first at column {c})"),
                    );
                }
                let vcol = t.col + key.chars().count() + 1;
                if val.is_empty() {
                    return e1(
                        vcol,
                        format!("expected a value after `{key}=` (no spaces around `=`)"),
                    );
                }
                let v = parse_value(defs[idx].ty, val, vcol, &format!("`{key}`"))?;
                given.values[idx] = Some((v, t.col));
            }
        }
    }
    for (d, g) in defs.iter().zip(&given.values) {
        if g.is_none() && d.def == Def::Required {
            let how = if positional && d.name == defs[0].name {
                format!(
                    "`{kind}` needs its `{}` value (e.g. `{kind} {}`)",
                    d.name,
                    example_value(d.ty)
                )
            } else {
                format!(
                    "`{kind}` needs `{}=` (e.g. `{}={}`)",
                    d.name,
                    d.name,
                    example_value(d.ty)
                )
            };
            return e1(kind_tok.col, format!("missing argument: {how}"));
        }
    }
    Ok(build(kind, defs, &given))
}

fn example_value(ty: Ty) -> &'static str {
    match ty {
        Ty::Int { .. } => "3",
        Ty::Rate => "0.2",
        Ty::Bool => "true",
        Ty::Act => "relu",
    }
}

impl Given {
    fn get(&self, defs: &[Arg], name: &str) -> Option<Value> {
        let i = defs
            .iter()
            .position(|d| d.name == name)
            .expect("argument name in table");
        match (self.values[i], defs[i].def) {
            (Some((v, _)), _) => Some(v),
            (None, Def::Is(v)) => Some(v),
            (None, Def::Optional | Def::Required) => None,
        }
    }
    fn int(&self, defs: &[Arg], name: &str) -> usize {
        self.opt(defs, name).expect("required argument checked")
    }
    fn opt(&self, defs: &[Arg], name: &str) -> Option<usize> {
        match self.get(defs, name) {
            Some(Value::Int(v)) => Some(v),
            Some(Value::Rate(_) | Value::Bool(_) | Value::Act(_)) | None => None,
        }
    }
    fn act(&self, defs: &[Arg], name: &str) -> Act {
        match self.get(defs, name) {
            Some(Value::Act(a)) => a,
            Some(Value::Int(_) | Value::Rate(_) | Value::Bool(_)) | None => Act::Identity,
        }
    }
    fn flag(&self, defs: &[Arg], name: &str) -> bool {
        matches!(self.get(defs, name), Some(Value::Bool(true)))
    }
    fn rate(&self, defs: &[Arg], name: &str) -> f32 {
        match self.get(defs, name) {
            Some(Value::Rate(r)) => r,
            Some(Value::Int(_) | Value::Bool(_) | Value::Act(_)) | None => 0.0,
        }
    }
}

/// Builds the layer from parsed arguments (types were checked against the table).
fn build(kind: &str, d: &[Arg], g: &Given) -> Layer {
    let in_ch = || g.opt(d, "in");
    match kind {
        "dense" => Layer::Dense {
            out: g.int(d, "out"),
            act: g.act(d, "act"),
            in_ch: in_ch(),
        },
        "conv2d" | "convBn" => {
            let (out, kernel, stride, pad, act) = (
                g.int(d, "out"),
                g.int(d, "kernel"),
                g.int(d, "stride"),
                g.opt(d, "pad"),
                g.act(d, "act"),
            );
            if kind == "conv2d" {
                Layer::Conv2d {
                    out,
                    kernel,
                    stride,
                    pad,
                    act,
                    in_ch: in_ch(),
                }
            } else {
                Layer::ConvBn {
                    out,
                    kernel,
                    stride,
                    pad,
                    act,
                    in_ch: in_ch(),
                }
            }
        }
        "batchNorm" => Layer::BatchNorm { in_ch: in_ch() },
        "layerNorm" => Layer::LayerNorm { in_ch: in_ch() },
        "instanceNorm" => Layer::InstanceNorm { in_ch: in_ch() },
        "maxPool" | "avgPool" => {
            let size = g.int(d, "size");
            let stride = g.opt(d, "stride").unwrap_or(size);
            let pad = g.int(d, "pad");
            if kind == "maxPool" {
                Layer::MaxPool { size, stride, pad }
            } else {
                Layer::AvgPool { size, stride, pad }
            }
        }
        "globalAvgPool" => Layer::GlobalAvgPool,
        "flatten" => Layer::Flatten,
        "dropout" => Layer::Dropout {
            rate: g.rate(d, "rate"),
        },
        "act" => Layer::Activation {
            act: g.act(d, "fn"),
        },
        "residual" => Layer::Residual {
            out: g.int(d, "out"),
            blocks: g.int(d, "blocks"),
            stride: g.int(d, "stride"),
            in_ch: in_ch(),
        },
        "bottleneck" => Layer::Bottleneck {
            out: g.int(d, "out"),
            blocks: g.int(d, "blocks"),
            stride: g.int(d, "stride"),
            in_ch: in_ch(),
        },
        "separableConv" => Layer::SeparableConv {
            out: g.int(d, "out"),
            stride: g.int(d, "stride"),
            act: g.act(d, "act"),
            in_ch: in_ch(),
        },
        "invertedResidual" => Layer::InvertedResidual {
            out: g.int(d, "out"),
            expand: g.int(d, "expand"),
            stride: g.int(d, "stride"),
            blocks: g.int(d, "blocks"),
            in_ch: in_ch(),
        },
        "mbConv" => Layer::MbConv {
            out: g.int(d, "out"),
            expand: g.int(d, "expand"),
            kernel: g.int(d, "kernel"),
            stride: g.int(d, "stride"),
            blocks: g.int(d, "blocks"),
            se: g.flag(d, "se"),
            act: g.act(d, "act"),
            in_ch: in_ch(),
        },
        "mbConvV3" => Layer::MbConvV3 {
            out: g.int(d, "out"),
            expanded: g.int(d, "expanded"),
            kernel: g.int(d, "kernel"),
            stride: g.int(d, "stride"),
            se: g.flag(d, "se"),
            act: g.act(d, "act"),
            in_ch: in_ch(),
        },
        "fusedMbConv" => Layer::FusedMbConv {
            out: g.int(d, "out"),
            expand: g.int(d, "expand"),
            kernel: g.int(d, "kernel"),
            stride: g.int(d, "stride"),
            blocks: g.int(d, "blocks"),
            se: g.flag(d, "se"),
            act: g.act(d, "act"),
            in_ch: in_ch(),
        },
        "uib" => Layer::Uib {
            out: g.int(d, "out"),
            expand: g.int(d, "expand"),
            start_kernel: g.int(d, "start"),
            mid_kernel: g.int(d, "mid"),
            stride: g.int(d, "stride"),
            act: g.act(d, "act"),
            in_ch: in_ch(),
        },
        "fire" => Layer::Fire {
            squeeze: g.int(d, "squeeze"),
            expand1x1: g.int(d, "expand1"),
            expand3x3: g.int(d, "expand3"),
            in_ch: in_ch(),
        },
        "patchEmbed" => Layer::PatchEmbed {
            dim: g.int(d, "dim"),
            patch: g.int(d, "patch"),
            in_ch: in_ch(),
        },
        "transformer" => Layer::Transformer {
            heads: g.int(d, "heads"),
            mlp: g.int(d, "mlp"),
            blocks: g.int(d, "blocks"),
            in_ch: in_ch(),
        },
        other => unreachable!("layer kind {other} is in ARGS but not in build()"),
    }
}

/// The layer's arguments in table order (`None` = absent optional).
fn layer_values(layer: &Layer) -> Vec<(&'static str, Option<Value>)> {
    use Value::{Act as A, Bool as B, Int as I, Rate as R};
    let opt = |v: Option<usize>| v.map(I);
    match *layer {
        Layer::Dense { out, act, in_ch } => vec![
            ("out", Some(I(out))),
            ("act", Some(A(act))),
            ("in", opt(in_ch)),
        ],
        Layer::Conv2d {
            out,
            kernel,
            stride,
            pad,
            act,
            in_ch,
        }
        | Layer::ConvBn {
            out,
            kernel,
            stride,
            pad,
            act,
            in_ch,
        } => vec![
            ("out", Some(I(out))),
            ("kernel", Some(I(kernel))),
            ("stride", Some(I(stride))),
            ("pad", opt(pad)),
            ("act", Some(A(act))),
            ("in", opt(in_ch)),
        ],
        Layer::BatchNorm { in_ch } | Layer::LayerNorm { in_ch } | Layer::InstanceNorm { in_ch } => {
            vec![("in", opt(in_ch))]
        }
        Layer::MaxPool { size, stride, pad } | Layer::AvgPool { size, stride, pad } => vec![
            ("size", Some(I(size))),
            // stride defaults to the window size
            (
                "stride",
                if stride == size {
                    None
                } else {
                    Some(I(stride))
                },
            ),
            ("pad", Some(I(pad))),
        ],
        Layer::GlobalAvgPool | Layer::Flatten => vec![],
        Layer::Dropout { rate } => vec![("rate", Some(R(rate)))],
        Layer::Activation { act } => vec![("fn", Some(A(act)))],
        Layer::Residual {
            out,
            blocks,
            stride,
            in_ch,
        }
        | Layer::Bottleneck {
            out,
            blocks,
            stride,
            in_ch,
        } => vec![
            ("out", Some(I(out))),
            ("blocks", Some(I(blocks))),
            ("stride", Some(I(stride))),
            ("in", opt(in_ch)),
        ],
        Layer::SeparableConv {
            out,
            stride,
            act,
            in_ch,
        } => {
            vec![
                ("out", Some(I(out))),
                ("stride", Some(I(stride))),
                ("act", Some(A(act))),
                ("in", opt(in_ch)),
            ]
        }
        Layer::InvertedResidual {
            out,
            expand,
            stride,
            blocks,
            in_ch,
        } => vec![
            ("out", Some(I(out))),
            ("expand", Some(I(expand))),
            ("stride", Some(I(stride))),
            ("blocks", Some(I(blocks))),
            ("in", opt(in_ch)),
        ],
        Layer::MbConv {
            out,
            expand,
            kernel,
            stride,
            blocks,
            se,
            act,
            in_ch,
        }
        | Layer::FusedMbConv {
            out,
            expand,
            kernel,
            stride,
            blocks,
            se,
            act,
            in_ch,
        } => vec![
            ("out", Some(I(out))),
            ("expand", Some(I(expand))),
            ("kernel", Some(I(kernel))),
            ("stride", Some(I(stride))),
            ("blocks", Some(I(blocks))),
            ("se", Some(B(se))),
            ("act", Some(A(act))),
            ("in", opt(in_ch)),
        ],
        Layer::MbConvV3 {
            out,
            expanded,
            kernel,
            stride,
            se,
            act,
            in_ch,
        } => vec![
            ("out", Some(I(out))),
            ("expanded", Some(I(expanded))),
            ("kernel", Some(I(kernel))),
            ("stride", Some(I(stride))),
            ("se", Some(B(se))),
            ("act", Some(A(act))),
            ("in", opt(in_ch)),
        ],
        Layer::Uib {
            out,
            expand,
            start_kernel,
            mid_kernel,
            stride,
            act,
            in_ch,
        } => vec![
            ("out", Some(I(out))),
            ("expand", Some(I(expand))),
            ("start", Some(I(start_kernel))),
            ("mid", Some(I(mid_kernel))),
            ("stride", Some(I(stride))),
            ("act", Some(A(act))),
            ("in", opt(in_ch)),
        ],
        Layer::Fire {
            squeeze,
            expand1x1,
            expand3x3,
            in_ch,
        } => vec![
            ("squeeze", Some(I(squeeze))),
            ("expand1", Some(I(expand1x1))),
            ("expand3", Some(I(expand3x3))),
            ("in", opt(in_ch)),
        ],
        Layer::PatchEmbed { dim, patch, in_ch } => {
            vec![
                ("dim", Some(I(dim))),
                ("patch", Some(I(patch))),
                ("in", opt(in_ch)),
            ]
        }
        Layer::Transformer {
            heads,
            mlp,
            blocks,
            in_ch,
        } => vec![
            ("heads", Some(I(heads))),
            ("mlp", Some(I(mlp))),
            ("blocks", Some(I(blocks))),
            ("in", opt(in_ch)),
        ],
    }
}

fn fmt_value(v: Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        // Rust prints the shortest decimal that reads back to the same f32.
        Value::Rate(r) => {
            let s = r.to_string();
            if s.contains('.') || s.contains('e') {
                s
            } else {
                format!("{s}.0")
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Act(a) => a.name().to_string(),
    }
}

/// One layer in the text format, canonical (defaults omitted), e.g. `convBn 64 kernel=7 stride=2`.
pub fn print_layer(layer: &Layer) -> String {
    let kind = layer.kind();
    let (positional, defs) = args_of(kind).expect("every layer kind has an argument table");
    let mut s = kind.to_string();
    for (i, (name, v)) in layer_values(layer).into_iter().enumerate() {
        debug_assert_eq!(defs[i].name, name);
        let Some(v) = v else { continue };
        if defs[i].def == Def::Is(v) {
            continue;
        }
        if i == 0 && positional {
            let _ = write!(s, " {}", fmt_value(v));
        } else {
            let _ = write!(s, " {name}={}", fmt_value(v));
        }
    }
    s
}

/// The whole spec in the text format; `parse(print(s).as_bytes()) == Ok(s)` for valid specs.
pub fn print(spec: &NetSpec) -> String {
    let [c, h, w] = spec.input;
    let mut s = format!(
        "name {}\ninput {c} {h} {w}\nclasses {}\n\n",
        spec.name, spec.num_classes
    );
    for l in &spec.layers {
        s.push_str(&print_layer(l));
        s.push('\n');
    }
    s
}

/// Line and column (1-based, in characters) of a byte offset in valid UTF-8 `text`.
fn position(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Where each layer and header is, for mapping shape errors back to the file.
struct Located {
    spec: NetSpec,
    layer_pos: Vec<(usize, usize)>,
    input_line: usize,
}

/// Parses a spec file (bytes, so that non-UTF-8 input is an error with a position, not a panic).
/// Checks syntax and argument values; see [`parse_checked`] for shape checking as well.
pub fn parse(text: &[u8]) -> Result<NetSpec, ParseError> {
    parse_located(text).map(|l| l.spec)
}

/// [`parse`] followed by shape inference; shape errors point at the offending layer's line.
pub fn parse_checked(text: &[u8]) -> Result<NetSpec, ParseError> {
    let l = parse_located(text)?;
    match crate::analyze::analyze(&l.spec) {
        Ok(_) => Ok(l.spec),
        Err(e) => {
            let (line, col) = match e.layer {
                Some((i, _)) => l.layer_pos[i],
                None => (l.input_line, 1),
            };
            Err(ParseError {
                line,
                col,
                message: e.to_string(),
            })
        }
    }
}

fn parse_located(bytes: &[u8]) -> Result<Located, ParseError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = e.valid_up_to();
            // The prefix is valid UTF-8 by construction.
            let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or("");
            let (line, col) = position(prefix, good);
            return Err(ParseError {
                line,
                col,
                message: format!(
                    "invalid UTF-8 (byte 0x{:02X}); spec files must be UTF-8 text",
                    bytes[good]
                ),
            });
        }
    };
    let mut name: Option<(String, usize)> = None;
    let mut input: Option<([usize; 3], usize)> = None;
    let mut classes: Option<(usize, usize)> = None;
    let mut layers = Vec::new();
    let mut layer_pos: Vec<(usize, usize)> = Vec::new();
    let mut last_line = 1;
    let mut last_len = 0;
    for (li, line) in text.split('\n').enumerate() {
        let ln = li + 1;
        last_line = ln;
        last_len = line.chars().count();
        let toks = tokenize(line);
        let Some((&head, rest)) = toks.split_first() else {
            continue;
        };
        let err = |e: Err1| ParseError {
            line: ln,
            col: e.col,
            message: e.message,
        };
        match head.text {
            "name" | "input" | "classes" => {
                let prev_line = match head.text {
                    "name" => name.as_ref().map(|n| n.1),
                    "input" => input.map(|i| i.1),
                    _ => classes.map(|c| c.1),
                };
                if let Some(p) = prev_line {
                    return Err(err(Err1 {
                        col: head.col,
                        message: format!("`{}` is given twice (first on line {p})", head.text),
                    }));
                }
                if !layers.is_empty() {
                    return Err(err(Err1 {
                        col: head.col,
                        message: format!(
                            "`{}` must come before the first layer (line {})",
                            head.text, layer_pos[0].0
                        ),
                    }));
                }
                match head.text {
                    "name" => name = Some((parse_name(head, rest).map_err(err)?, ln)),
                    "input" => input = Some((parse_input(head, rest).map_err(err)?, ln)),
                    _ => classes = Some((parse_classes(head, rest).map_err(err)?, ln)),
                }
            }
            _ => {
                if name.is_none() || input.is_none() || classes.is_none() {
                    let missing = if name.is_none() {
                        "`name NAME`"
                    } else if input.is_none() {
                        "`input C H W`"
                    } else {
                        "`classes N`"
                    };
                    let hint = if args_of(head.text).is_none() {
                        format!(" (or {} is misspelled)", show(head.text))
                    } else {
                        String::new()
                    };
                    return Err(err(Err1 {
                        col: head.col,
                        message: format!("missing {missing} line before the first layer{hint}"),
                    }));
                }
                layers.push(parse_layer(head, rest).map_err(err)?);
                layer_pos.push((ln, head.col));
            }
        }
    }
    let eof = |message: &str| ParseError {
        line: last_line,
        col: last_len + 1,
        message: message.to_string(),
    };
    let (Some((name, _)), Some((input, input_line)), Some((num_classes, _))) =
        (name, input, classes)
    else {
        return Err(eof(
            "unexpected end of file: a spec needs `name NAME`, `input C H W` and `classes N` lines, then one layer per line",
        ));
    };
    if layers.is_empty() {
        return Err(eof(
            "unexpected end of file: the spec has no layers; add at least a `dense` head",
        ));
    }
    Ok(Located {
        spec: NetSpec {
            name,
            input,
            num_classes,
            layers,
        },
        layer_pos,
        input_line,
    })
}

fn parse_name(head: Tok<'_>, rest: &[Tok<'_>]) -> Result<String, Err1> {
    let Some(n) = rest.first() else {
        return e1(
            head.col + 4,
            "expected a name after `name` (letters, digits, `_`, `-`, `.`)",
        );
    };
    if let Some(extra) = rest.get(1) {
        return e1(
            extra.col,
            format!(
                "unexpected {} after the name (names have no spaces)",
                show(extra.text)
            ),
        );
    }
    if let Some((i, ch)) = n
        .text
        .chars()
        .enumerate()
        .find(|&(_, ch)| !(ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.')))
    {
        return e1(
            n.col + i,
            format!(
                "unexpected {} in the name: use letters, digits, `_`, `-` and `.`",
                show(&ch.to_string())
            ),
        );
    }
    Ok(n.text.to_string())
}

fn parse_input(head: Tok<'_>, rest: &[Tok<'_>]) -> Result<[usize; 3], Err1> {
    let what = ["input channels", "input height", "input width"];
    let mut v = [0; 3];
    for i in 0..3 {
        let Some(t) = rest.get(i) else {
            let col = rest
                .last()
                .map_or(head.col + 5, |t| t.col + t.text.chars().count());
            return e1(
                col,
                format!(
                    "`input` needs three numbers C H W (e.g. `input 3 224 224`); the {} is missing",
                    what[i]
                ),
            );
        };
        v[i] = parse_int(t.text, t.col, what[i], 1)?;
    }
    if let Some(extra) = rest.get(3) {
        return e1(
            extra.col,
            format!(
                "unexpected {}: `input` takes exactly three numbers C H W",
                show(extra.text)
            ),
        );
    }
    Ok(v)
}

fn parse_classes(head: Tok<'_>, rest: &[Tok<'_>]) -> Result<usize, Err1> {
    let Some(t) = rest.first() else {
        return e1(
            head.col + 7,
            "`classes` needs the number of classes (e.g. `classes 10`)",
        );
    };
    if let Some(extra) = rest.get(1) {
        return e1(
            extra.col,
            format!(
                "unexpected {}: `classes` takes one number",
                show(extra.text)
            ),
        );
    }
    parse_int(t.text, t.col, "classes", 1)
}
