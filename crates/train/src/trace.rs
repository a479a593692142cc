//! JSONL training traces: writer, reader and tolerance diff.
//!
//! The format is lean4-mlir's `TRACE_FORMAT` (ARCHITECTURE.md, "Traces"), one JSON object per line:
//! - line 1, the header: `{"kind":"header","phase","netspec_name","netspec_hash","config":{…},
//!   "total_params","dataset","emitter_version"}` (other keys, e.g. `emitted_at`, are kept as `extra`);
//! - per step: `{"kind":"step","step","epoch","loss","lr"}` with `step` 1-based and `epoch` 0-based,
//!   and optionally `grad_norm`, `param_norm`, `wall_ms`;
//! - optionally per epoch (netspec's addition): `{"kind":"epoch","epoch"}` with any of `train_loss`,
//!   `train_acc`, `test_loss`, `test_acc` (a fraction in 0..1), `test_correct`, `test_total`, `wall_ms`.
//!
//! Lines of another `kind` are skipped by the reader, empty lines too. Non-finite numbers are
//! written as Python's `json` writes them (`NaN`, `Infinity`, `-Infinity`), and read back from that
//! form or from `null`. The lines are serde-derived types ([`Header`], [`Step`], [`EpochLine`],
//! tagged by `kind`); the reader takes what Python and lean4-mlir write (integers written as
//! `3.0`, `emitter_version` as a number), through the field helpers of `py`.
//!
//! [`diff`] compares two traces as lean4-mlir's `diff_traces.py` does: the headers must agree on
//! `netspec_name`, `netspec_hash`, `config`, `total_params` and `dataset`; steps are compared index for
//! index and their counts must match; `loss` and `lr` always, `grad_norm` and `param_norm` only when
//! both traces have them; two values are close when `|a − b| ≤ atol + rtol·|b|` (NaN is never close).

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The first line of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// `"phase3"` for netspec's compiled path, `"phase2"` for the JAX export (lean4-mlir's names).
    pub phase: String,
    pub netspec_name: String,
    /// SHA-256 of the NetSpec text, hex.
    pub netspec_hash: String,
    /// The run's configuration, a JSON object (netspec writes `spec::RunConfig`; other producers
    /// their own keys, kept as read).
    pub config: Value,
    #[serde(deserialize_with = "py::uint")]
    pub total_params: u64,
    pub dataset: String,
    #[serde(deserialize_with = "py::string_or_number")]
    pub emitter_version: String,
    /// Any other header keys, kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based global step.
    #[serde(deserialize_with = "py::uint")]
    pub step: u64,
    /// 0-based epoch.
    #[serde(deserialize_with = "py::uint")]
    pub epoch: u64,
    #[serde(with = "py::float")]
    pub loss: f64,
    #[serde(with = "py::float")]
    pub lr: f64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub grad_norm: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub param_norm: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub wall_ms: Option<f64>,
}

/// One finished epoch (all fields but `epoch` optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochLine {
    #[serde(deserialize_with = "py::uint")]
    pub epoch: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub train_loss: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub train_acc: Option<f64>,
    /// The validation split's mean loss and accuracy (fraction), correct count and size.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub val_loss: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub val_acc: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "py::opt_uint"
    )]
    pub val_correct: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "py::opt_uint"
    )]
    pub val_total: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub test_loss: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub test_acc: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "py::opt_uint"
    )]
    pub test_correct: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "py::opt_uint"
    )]
    pub test_total: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "py::opt_float"
    )]
    pub wall_ms: Option<f64>,
}

/// A whole trace as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub header: Header,
    pub steps: Vec<Step>,
    pub epochs: Vec<EpochLine>,
}

/// A line as read: its `kind` selects the type; other kinds are not ours to read.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Line {
    Header(Header),
    Step(Step),
    Epoch(EpochLine),
    #[serde(other)]
    Other,
}

/// A line to write (the same tags as [`Line`]).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum LineRef<'a> {
    Header(&'a Header),
    Step(&'a Step),
    Epoch(&'a EpochLine),
}

impl LineRef<'_> {
    /// The line's JSON text. Non-finite numbers come out of `py::float` as the strings `"NaN"`,
    /// `"Infinity"`, `"-Infinity"` (serde_json cannot write them bare) and are unquoted here, as
    /// Python's `json` writes them; step and epoch lines hold no other strings than their kind.
    #[allow(
        clippy::expect_used,
        reason = "trace lines hold numbers (non-finite ones as strings) and strings: serializing cannot fail"
    )]
    fn text(&self) -> String {
        let text = serde_json::to_string(self).expect("trace lines always serialize");
        match self {
            LineRef::Header(_) => text,
            LineRef::Step(_) | LineRef::Epoch(_) => text
                .replace("\"NaN\"", "NaN")
                .replace("\"-Infinity\"", "-Infinity")
                .replace("\"Infinity\"", "Infinity"),
        }
    }
}

/// Field helpers for what Python and lean4-mlir write.
mod py {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::fmt;

    /// A non-negative integer, also written as a float with no fraction (`3.0`).
    pub fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
                if v.fract() == 0.0 && (0.0..2f64.powi(53)).contains(&v) {
                    Ok(v as u64)
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }

    /// `null` (absent) or [`uint`].
    pub fn opt_uint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or null")
            }
            fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
                uint(d).map(Some)
            }
        }
        d.deserialize_option(V)
    }

    /// A string, or a number written where a string was meant (`"emitter_version": 1`).
    pub fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
                Ok(serde_json::Number::from_f64(v).map_or(v.to_string(), |n| n.to_string()))
            }
        }
        d.deserialize_any(V)
    }

    /// Numbers, with Python's non-finite spellings (read as strings, see `quote_non_finite`) and
    /// `null` read as NaN.
    pub mod float {
        use super::*;

        pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
            if v.is_finite() {
                s.serialize_f64(*v)
            } else if v.is_nan() {
                s.serialize_str("NaN")
            } else if *v > 0.0 {
                s.serialize_str("Infinity")
            } else {
                s.serialize_str("-Infinity")
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = f64;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a number, NaN, Infinity or -Infinity")
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                    Ok(v)
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                    Ok(v as f64)
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                    Ok(v as f64)
                }
                fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
                    Ok(f64::NAN)
                }
                fn visit_none<E: de::Error>(self) -> Result<f64, E> {
                    Ok(f64::NAN)
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                    match v {
                        "NaN" => Ok(f64::NAN),
                        "Infinity" => Ok(f64::INFINITY),
                        "-Infinity" => Ok(f64::NEG_INFINITY),
                        _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                    }
                }
            }
            d.deserialize_any(V)
        }
    }

    /// [`float`] for optional keys: an absent key is `None`, a present one (even `null`) a value.
    pub mod opt_float {
        use super::*;

        pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => float::serialize(v, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
            float::deserialize(d).map(Some)
        }
    }
}

impl Step {
    /// A step line with only the required fields.
    pub fn new(step: u64, epoch: u64, loss: f64, lr: f64) -> Step {
        Step {
            step,
            epoch,
            loss,
            lr,
            grad_norm: None,
            param_norm: None,
            wall_ms: None,
        }
    }
}

/// Writes a trace line by line; every line is flushed so that a killed run keeps its trace.
pub struct TraceWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl TraceWriter {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(path: &Path, header: &Header) -> Result<TraceWriter> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = TraceWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        };
        w.line(&LineRef::Header(header).text())?;
        Ok(w)
    }

    /// Opens an existing trace to add lines after its last one (a resumed run continues its trace);
    /// writes no header.
    pub fn append(path: &Path) -> Result<TraceWriter> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(TraceWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    pub fn step(&mut self, s: &Step) -> Result<()> {
        self.line(&LineRef::Step(s).text())
    }

    pub fn epoch(&mut self, e: &EpochLine) -> Result<()> {
        self.line(&LineRef::Epoch(e).text())
    }

    fn line(&mut self, text: &str) -> Result<()> {
        let r = self
            .out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .and_then(|_| self.out.flush());
        r.map_err(|e| Error::io(&self.path, e))
    }
}

/// The text of a whole trace (what [`TraceWriter`] writes).
pub fn to_string(t: &Trace) -> String {
    let mut s = LineRef::Header(&t.header).text();
    s.push('\n');
    for st in &t.steps {
        s.push_str(&LineRef::Step(st).text());
        s.push('\n');
    }
    for e in &t.epochs {
        s.push_str(&LineRef::Epoch(e).text());
        s.push('\n');
    }
    s
}

/// Reads a trace file.
pub fn read(path: &Path) -> Result<Trace> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path)
}

/// Parses trace text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Trace> {
    let err = |line: usize, msg: String| Error::Trace {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut header = None;
    let mut steps = Vec::new();
    let mut epochs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&quote_non_finite(raw)).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => err(n, format!("not JSON: {e}")),
                Category::Data => err(n, e.to_string()),
            }
        })?;
        match (line, &header) {
            (Line::Header(h), None) => {
                if !h.config.is_object() {
                    return Err(err(
                        n,
                        format!("\"config\" must be an object, found {}", h.config),
                    ));
                }
                header = Some(h)
            }
            (Line::Header(_), Some(_)) => return Err(err(n, "a second header line".into())),
            (Line::Step(_) | Line::Epoch(_) | Line::Other, None) => {
                return Err(err(n, "expected the header line first".into()))
            }
            (Line::Step(s), Some(_)) => steps.push(s),
            (Line::Epoch(e), Some(_)) => epochs.push(e),
            (Line::Other, Some(_)) => {} // another kind: not ours to read
        }
    }
    let header = header.ok_or_else(|| err(1, "empty trace: no header line".into()))?;
    Ok(Trace {
        header,
        steps,
        epochs,
    })
}

/// Turns Python's bare `NaN`, `Infinity`, `-Infinity` (outside strings) into strings, which
/// `py::float` accepts, so that standard JSON parsing can read the line.
fn quote_non_finite(line: &str) -> std::borrow::Cow<'_, str> {
    if !(line.contains("NaN") || line.contains("Infinity")) {
        return line.into();
    }
    let mut out = String::with_capacity(line.len() + 8);
    let (mut in_str, mut escaped) = (false, false);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if let Some(tok) = ["NaN", "-Infinity", "Infinity"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push('"');
            out.push_str(tok);
            out.push('"');
            rest = &rest[tok.len()..];
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.into()
}

/// Tolerance classes of [`diff`], as lean4-mlir names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiffMode {
    /// Same backend and compiler: atol 1e-4, rtol 1e-3.
    Strict,
    /// Same compiler, different GPUs: atol 1e-3, rtol 1e-2.
    CrossGpu,
    /// Different compilers (netspec vs JAX): atol 1e-2, rtol 1e-1.
    CrossComp,
}

impl DiffMode {
    pub const ALL: [DiffMode; 3] = [DiffMode::Strict, DiffMode::CrossGpu, DiffMode::CrossComp];

    /// `(atol, rtol)`.
    pub fn tolerances(self) -> (f64, f64) {
        match self {
            DiffMode::Strict => (1e-4, 1e-3),
            DiffMode::CrossGpu => (1e-3, 1e-2),
            DiffMode::CrossComp => (1e-2, 1e-1),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DiffMode::Strict => "strict",
            DiffMode::CrossGpu => "cross-gpu",
            DiffMode::CrossComp => "cross-comp",
        }
    }
}

impl std::str::FromStr for DiffMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<DiffMode> {
        DiffMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown diff mode '{s}' (expected strict, cross-gpu or cross-comp)"
                ))
            })
    }
}

/// `|a − b| ≤ atol + rtol·|b|`; NaN is never close.
pub fn close(a: f64, b: f64, (atol, rtol): (f64, f64)) -> bool {
    (a - b).abs() <= atol + rtol * b.abs()
}

/// One value that differs.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDiff {
    pub field: &'static str,
    pub a: f64,
    pub b: f64,
    /// The allowed difference, `atol + rtol·|b|`.
    pub allowed: f64,
}

/// A step (by index) where some values differ.
#[derive(Clone, Debug, PartialEq)]
pub struct StepDiff {
    /// 0-based index into both step lists.
    pub index: usize,
    /// The step number in trace A.
    pub step: u64,
    pub fields: Vec<FieldDiff>,
}

/// The outcome of [`diff`].
#[derive(Clone, Debug, PartialEq)]
pub struct DiffReport {
    pub mode: DiffMode,
    /// Header keys that differ, each with both values.
    pub header: Vec<String>,
    /// Step counts of A and B.
    pub counts: (usize, usize),
    /// Steps compared (the shorter count).
    pub compared: usize,
    /// How many compared steps differ.
    pub differing: usize,
    /// The first differing steps, at most [`MAX_LISTED`].
    pub first: Vec<StepDiff>,
}

/// How many differing steps a report lists.
pub const MAX_LISTED: usize = 20;

impl DiffReport {
    pub fn agrees(&self) -> bool {
        self.header.is_empty() && self.counts.0 == self.counts.1 && self.differing == 0
    }
}

/// Compares two traces (see the module doc).
pub fn diff(a: &Trace, b: &Trace, mode: DiffMode) -> DiffReport {
    let tol = mode.tolerances();
    let (ha, hb) = (&a.header, &b.header);
    let mut header = Vec::new();
    let mut check = |key: &str, x: Value, y: Value| {
        if !json_eq(&x, &y) {
            header.push(format!("{key}: A has {x}, B has {y}"));
        }
    };
    check(
        "netspec_name",
        ha.netspec_name.as_str().into(),
        hb.netspec_name.as_str().into(),
    );
    check(
        "netspec_hash",
        ha.netspec_hash.as_str().into(),
        hb.netspec_hash.as_str().into(),
    );
    check("config", ha.config.clone(), hb.config.clone());
    check(
        "total_params",
        ha.total_params.into(),
        hb.total_params.into(),
    );
    check(
        "dataset",
        ha.dataset.as_str().into(),
        hb.dataset.as_str().into(),
    );

    let compared = a.steps.len().min(b.steps.len());
    let mut differing = 0;
    let mut first = Vec::new();
    for (i, (sa, sb)) in a.steps.iter().zip(&b.steps).enumerate() {
        let mut fields = Vec::new();
        for (name, x, y) in [("step", sa.step, sb.step), ("epoch", sa.epoch, sb.epoch)] {
            if x != y {
                fields.push(FieldDiff {
                    field: name,
                    a: x as f64,
                    b: y as f64,
                    allowed: 0.0,
                });
            }
        }
        let pairs = [
            ("loss", Some(sa.loss), Some(sb.loss)),
            ("lr", Some(sa.lr), Some(sb.lr)),
            ("grad_norm", sa.grad_norm, sb.grad_norm),
            ("param_norm", sa.param_norm, sb.param_norm),
        ];
        for (name, x, y) in pairs {
            if let (Some(x), Some(y)) = (x, y) {
                if !close(x, y, tol) {
                    fields.push(FieldDiff {
                        field: name,
                        a: x,
                        b: y,
                        allowed: tol.0 + tol.1 * y.abs(),
                    });
                }
            }
        }
        if !fields.is_empty() {
            differing += 1;
            if first.len() < MAX_LISTED {
                first.push(StepDiff {
                    index: i,
                    step: sa.step,
                    fields,
                });
            }
        }
    }
    DiffReport {
        mode,
        header,
        counts: (a.steps.len(), b.steps.len()),
        compared,
        differing,
        first,
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`, as in Python).
fn json_eq(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Number(p), Value::Number(q)) => match (p.as_f64(), q.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => p == q,
        },
        (Value::Array(p), Value::Array(q)) => {
            p.len() == q.len() && p.iter().zip(q).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(p), Value::Object(q)) => {
            p.len() == q.len()
                && p.iter()
                    .all(|(k, v)| q.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => x == y,
    }
}

impl fmt::Display for DiffReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (atol, rtol) = self.mode.tolerances();
        let verdict = if self.agrees() {
            "traces agree"
        } else {
            "traces differ"
        };
        writeln!(
            f,
            "{verdict} (mode {}: atol {atol:e}, rtol {rtol:e}; {} steps compared)",
            self.mode.name(),
            self.compared
        )?;
        for h in &self.header {
            writeln!(f, "header {h}")?;
        }
        if self.counts.0 != self.counts.1 {
            writeln!(
                f,
                "step count: A has {}, B has {}",
                self.counts.0, self.counts.1
            )?;
        }
        for s in &self.first {
            for d in &s.fields {
                // The index is worth printing only when step numbers do not already say it.
                let at = if s.step == s.index as u64 + 1 {
                    String::new()
                } else {
                    format!(" (step line {})", s.index + 1)
                };
                writeln!(
                    f,
                    "step {}{at}: {} A={} B={} |A-B|={:.3e} allowed {:.3e}",
                    s.step,
                    d.field,
                    d.a,
                    d.b,
                    (d.a - d.b).abs(),
                    d.allowed
                )?;
            }
        }
        if self.differing > self.first.len() {
            writeln!(
                f,
                "{} of {} compared steps differ (first {} shown)",
                self.differing,
                self.compared,
                self.first.len()
            )?;
        } else if self.differing > 0 {
            writeln!(
                f,
                "{} of {} compared steps differ",
                self.differing, self.compared
            )?;
        }
        Ok(())
    }
}
