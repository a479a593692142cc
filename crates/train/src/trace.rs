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
//! form or from `null`.
//!
//! [`diff`] compares two traces as lean4-mlir's `diff_traces.py` does: the headers must agree on
//! `netspec_name`, `netspec_hash`, `config`, `total_params` and `dataset`; steps are compared index for
//! index and their counts must match; `loss` and `lr` always, `grad_norm` and `param_norm` only when
//! both traces have them; two values are close when `|a − b| ≤ atol + rtol·|b|` (NaN is never close).

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The first line of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// `"phase3"` for netspec's compiled path, `"phase2"` for the JAX export (lean4-mlir's names).
    pub phase: String,
    pub netspec_name: String,
    /// SHA-256 of the NetSpec text, hex.
    pub netspec_hash: String,
    /// The run's configuration (lr, batch_size, epochs, optimizer, seed, …).
    pub config: Value,
    pub total_params: u64,
    pub dataset: String,
    pub emitter_version: String,
    /// Any other header keys, kept as read.
    pub extra: Map<String, Value>,
}

/// One training step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// 1-based global step.
    pub step: u64,
    /// 0-based epoch.
    pub epoch: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: Option<f64>,
    pub param_norm: Option<f64>,
    pub wall_ms: Option<f64>,
}

/// One finished epoch (all fields but `epoch` optional).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochLine {
    pub epoch: u64,
    pub train_loss: Option<f64>,
    pub train_acc: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_acc: Option<f64>,
    pub test_correct: Option<u64>,
    pub test_total: Option<u64>,
    pub wall_ms: Option<f64>,
}

/// A whole trace as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub header: Header,
    pub steps: Vec<Step>,
    pub epochs: Vec<EpochLine>,
}

/// A JSON number, or Python's spelling of a non-finite one.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        Value::from(v).to_string()
    }
}

/// Builds `{"kind":…,…}` with keys in the order given.
struct Line(String);

impl Line {
    fn new(kind: &str) -> Line {
        Line(format!("{{\"kind\":{}", Value::from(kind)))
    }
    fn raw(mut self, key: &str, json: &str) -> Line {
        self.0.push_str(&format!(",{}:{json}", Value::from(key)));
        self
    }
    fn f(self, key: &str, v: f64) -> Line {
        self.raw(key, &num(v))
    }
    fn opt_f(self, key: &str, v: Option<f64>) -> Line {
        match v {
            Some(v) => self.f(key, v),
            None => self,
        }
    }
    fn u(self, key: &str, v: u64) -> Line {
        self.raw(key, &v.to_string())
    }
    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

impl Header {
    fn to_line(&self) -> String {
        let mut l = Line::new("header")
            .raw("phase", &Value::from(self.phase.as_str()).to_string())
            .raw(
                "netspec_name",
                &Value::from(self.netspec_name.as_str()).to_string(),
            )
            .raw(
                "netspec_hash",
                &Value::from(self.netspec_hash.as_str()).to_string(),
            )
            .raw("config", &self.config.to_string())
            .u("total_params", self.total_params)
            .raw("dataset", &Value::from(self.dataset.as_str()).to_string())
            .raw(
                "emitter_version",
                &Value::from(self.emitter_version.as_str()).to_string(),
            );
        for (k, v) in &self.extra {
            l = l.raw(k, &v.to_string());
        }
        l.finish()
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

    fn to_line(&self) -> String {
        Line::new("step")
            .u("step", self.step)
            .u("epoch", self.epoch)
            .f("loss", self.loss)
            .f("lr", self.lr)
            .opt_f("grad_norm", self.grad_norm)
            .opt_f("param_norm", self.param_norm)
            .opt_f("wall_ms", self.wall_ms)
            .finish()
    }
}

impl EpochLine {
    fn to_line(&self) -> String {
        let mut l = Line::new("epoch")
            .u("epoch", self.epoch)
            .opt_f("train_loss", self.train_loss)
            .opt_f("train_acc", self.train_acc)
            .opt_f("test_loss", self.test_loss)
            .opt_f("test_acc", self.test_acc);
        if let Some(c) = self.test_correct {
            l = l.u("test_correct", c);
        }
        if let Some(t) = self.test_total {
            l = l.u("test_total", t);
        }
        l.opt_f("wall_ms", self.wall_ms).finish()
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
        w.line(&header.to_line())?;
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
        self.line(&s.to_line())
    }

    pub fn epoch(&mut self, e: &EpochLine) -> Result<()> {
        self.line(&e.to_line())
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
    let mut s = t.header.to_line();
    s.push('\n');
    for st in &t.steps {
        s.push_str(&st.to_line());
        s.push('\n');
    }
    for e in &t.epochs {
        s.push_str(&e.to_line());
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
        let v: Value = serde_json::from_str(&quote_non_finite(raw))
            .map_err(|e| err(n, format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err(n, "not a JSON object".into()))?;
        let f = Fields { obj, line: n, path };
        let kind = f.str("kind")?;
        match (kind.as_str(), header.is_some()) {
            ("header", false) => header = Some(f.header()?),
            ("header", true) => return Err(err(n, "a second header line".into())),
            (_, false) => {
                return Err(err(
                    n,
                    format!("expected the header line first, found kind \"{kind}\""),
                ))
            }
            ("step", true) => steps.push(Step {
                step: f.uint("step")?,
                epoch: f.uint("epoch")?,
                loss: f.float("loss")?,
                lr: f.float("lr")?,
                grad_norm: f.opt_float("grad_norm")?,
                param_norm: f.opt_float("param_norm")?,
                wall_ms: f.opt_float("wall_ms")?,
            }),
            ("epoch", true) => epochs.push(EpochLine {
                epoch: f.uint("epoch")?,
                train_loss: f.opt_float("train_loss")?,
                train_acc: f.opt_float("train_acc")?,
                test_loss: f.opt_float("test_loss")?,
                test_acc: f.opt_float("test_acc")?,
                test_correct: f.opt_uint("test_correct")?,
                test_total: f.opt_uint("test_total")?,
                wall_ms: f.opt_float("wall_ms")?,
            }),
            (_, true) => {} // another kind: not ours to read
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
/// [`Fields::float`] accepts, so that standard JSON parsing can read the line.
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

/// Typed access to one line's keys, with errors naming the line and key.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    line: usize,
    path: &'a Path,
}

impl Fields<'_> {
    fn err(&self, msg: String) -> Error {
        Error::Trace {
            path: self.path.to_path_buf(),
            line: self.line,
            msg,
        }
    }
    fn get(&self, key: &str) -> Result<&Value> {
        self.obj
            .get(key)
            .ok_or_else(|| self.err(format!("missing key \"{key}\"")))
    }
    fn str(&self, key: &str) -> Result<String> {
        match self.get(key)? {
            Value::String(s) => Ok(s.clone()),
            v => Err(self.err(format!("\"{key}\" must be a string, found {v}"))),
        }
    }
    /// A string, or a number written where a string was meant (`"emitter_version": 1`).
    fn str_or_num(&self, key: &str) -> Result<String> {
        match self.get(key)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            v => Err(self.err(format!("\"{key}\" must be a string, found {v}"))),
        }
    }
    fn uint(&self, key: &str) -> Result<u64> {
        let v = self.get(key)?;
        v.as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 2f64.powi(53))
                    .map(|f| f as u64)
            })
            .ok_or_else(|| {
                self.err(format!(
                    "\"{key}\" must be a non-negative integer, found {v}"
                ))
            })
    }
    fn opt_uint(&self, key: &str) -> Result<Option<u64>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.uint(key).map(Some),
        }
    }
    fn float(&self, key: &str) -> Result<f64> {
        match self.get(key)? {
            Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            Value::Null => Ok(f64::NAN),
            Value::String(s) if s == "NaN" => Ok(f64::NAN),
            Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
            Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
            v => Err(self.err(format!("\"{key}\" must be a number, found {v}"))),
        }
    }
    fn opt_float(&self, key: &str) -> Result<Option<f64>> {
        match self.obj.get(key) {
            None => Ok(None),
            Some(_) => self.float(key).map(Some),
        }
    }
    fn header(&self) -> Result<Header> {
        const KNOWN: [&str; 8] = [
            "kind",
            "phase",
            "netspec_name",
            "netspec_hash",
            "config",
            "total_params",
            "dataset",
            "emitter_version",
        ];
        let config = self.get("config")?.clone();
        if !config.is_object() {
            return Err(self.err(format!("\"config\" must be an object, found {config}")));
        }
        Ok(Header {
            phase: self.str("phase")?,
            netspec_name: self.str("netspec_name")?,
            netspec_hash: self.str("netspec_hash")?,
            config,
            total_params: self.uint("total_params")?,
            dataset: self.str("dataset")?,
            emitter_version: self.str_or_num("emitter_version")?,
            extra: self
                .obj
                .iter()
                .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
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
