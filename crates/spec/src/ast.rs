//! The spec language's syntax tree ([`NetSpec`] and what it is made of) and its values.
//!
//! A `NetSpec` is what a spec file says, not what it computes: block definitions and calls with their
//! arguments as expressions. `crate::analyze` elaborates it (evaluates the expressions, expands the
//! blocks, infers the shapes); `crate::print` writes it back as text (`parse(print(s)) == s`).

use std::fmt;

/// A 1-based line and column in a spec file (or in the prelude). Positions never take part in `==`:
/// two specs are equal when they say the same thing, wherever it is written.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    /// Whether the position lies in the prelude rather than in the spec file being read.
    pub prelude: bool,
}

impl PartialEq for Pos {
    fn eq(&self, _: &Pos) -> bool {
        true
    }
}

/// A whole network: a name, the input shape, the class count, the file's own block definitions and
/// the layers (top-level calls, named `l0`, `l1`, … by position unless labelled).
///
/// The input is an image batch `[B, C, H, W]` (`input = [C, H, W]`); a valid spec ends with flat
/// logits `[B, num_classes]`. The batch size is not part of the spec (the recipe chooses it).
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    /// Identifier used in file names, traces and MLIR module names (`[A-Za-z0-9_.-]+`).
    pub name: String,
    /// `[C, H, W]` of one input image.
    pub input: [usize; 3],
    /// Number of classes (width of the logits).
    pub num_classes: usize,
    /// Block definitions of this file, in order (each may call the prelude and the blocks above it).
    pub blocks: Vec<BlockDef>,
    /// The layers, applied in order.
    pub layers: Vec<Call>,
}

/// `block NAME PARAMS…` and its indented body.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDef {
    pub pos: Pos,
    /// The comment lines directly above the definition (without `# `): the first is its one-line meaning.
    pub doc: Vec<String>,
    pub name: String,
    /// Whether a call may give the first parameter by position (`false` when the header says `*`).
    pub positional: bool,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
}

/// A block parameter: `name:type`, `name=default` (type from the default) or `name:type=default`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: Ty,
    /// `None`: the argument is required.
    pub default: Option<Expr>,
}

/// One line of a body.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Call(Call),
    /// `let NAME = EXPR`: a name for the following statements of the same body.
    Let {
        pos: Pos,
        name: String,
        value: Expr,
    },
    /// `require EXPR "message"`: the call fails with the message (`{name}` replaced by the value of
    /// `name`) unless the condition holds.
    Require {
        pos: Pos,
        cond: Expr,
        message: String,
    },
}

/// `[label:] OP [ARG…] [if GUARD]`, and for `seq`, `add`, `parallel`, `repeat` an indented body.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub pos: Pos,
    /// Names the call's parameters (`label.…`); unlabelled calls in a body share the body's names,
    /// top-level ones are named `l{index}`.
    pub label: Option<String>,
    /// A core layer, a combinator, or a block (prelude or this file's).
    pub op: String,
    /// Arguments in the callee's parameter order (`in` last); arguments equal to their default are
    /// left out, so two spellings of the same call are equal.
    pub args: Vec<(String, Expr)>,
    /// `if GUARD`: the call is left out when the guard is false.
    pub guard: Option<Expr>,
    pub body: Vec<Stmt>,
}

impl Call {
    /// The argument `name`, if given.
    pub fn arg(&self, name: &str) -> Option<&Expr> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }
}

/// An expression (argument values, defaults, guards, `let`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Int(i64),
    Real(f64),
    Bool(bool),
    /// `auto`: let the layer choose (conv padding `(k − 1)/2`, pool stride = window).
    Auto,
    /// A variable, an activation (`relu`) or a join (`concat`).
    Name(String),
    /// `max(a, b)`, `min(a, b)`, `makeDivisible(v, d)`.
    Call(String, Vec<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `then if cond else otherwise`.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    /// `/`: real division.
    Div,
    /// `//`: whole-number division, rounding down.
    FloorDiv,
    Rem,
}

impl BinOp {
    pub const ALL: [BinOp; 14] = [
        BinOp::Or,
        BinOp::And,
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Lt,
        BinOp::Le,
        BinOp::Gt,
        BinOp::Ge,
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::FloorDiv,
        BinOp::Rem,
    ];

    pub fn text(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Rem => "%",
        }
    }

    /// Binding strength: `or` 2, `and` 3, comparisons 5, `+ -` 6, `* / // %` 7 (`not` is 4, a
    /// conditional 1, unary minus 8).
    pub fn prec(self) -> u8 {
        match self {
            BinOp::Or => 2,
            BinOp::And => 3,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 5,
            BinOp::Add | BinOp::Sub => 6,
            BinOp::Mul | BinOp::Div | BinOp::FloorDiv | BinOp::Rem => 7,
        }
    }
}

/// Elementwise activation functions.
///
/// Formulas (σ(x) = 1/(1 + e^−x), relu6(x) = min(max(x, 0), 6)): `identity` x; `relu` max(x, 0);
/// `relu6`; `swish` (SiLU) x·σ(x); `hswish` x·relu6(x + 3)/6; `hsigmoid` relu6(x + 3)/6;
/// `gelu` the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); `sigmoid` σ(x);
/// `geluErf` the exact GELU 0.5·x·(1 + erf(x/√2)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    Identity,
    Relu,
    Relu6,
    Swish,
    HardSwish,
    HardSigmoid,
    Gelu,
    Sigmoid,
    GeluErf,
}

impl Act {
    /// Every activation, in declaration order.
    pub const ALL: [Act; 9] = [
        Act::Identity,
        Act::Relu,
        Act::Relu6,
        Act::Swish,
        Act::HardSwish,
        Act::HardSigmoid,
        Act::Gelu,
        Act::Sigmoid,
        Act::GeluErf,
    ];

    /// The name used in spec files (`relu`, `hswish`, …).
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Relu => "relu",
            Act::Relu6 => "relu6",
            Act::Swish => "swish",
            Act::HardSwish => "hswish",
            Act::HardSigmoid => "hsigmoid",
            Act::Gelu => "gelu",
            Act::Sigmoid => "sigmoid",
            Act::GeluErf => "geluErf",
        }
    }

    /// Inverse of [`Act::name`].
    pub fn from_name(s: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.name() == s)
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How `parallel` joins its branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Join {
    /// Side by side along the feature (channel) axis.
    Concat,
    /// Elementwise product; a `[B, C, 1, 1]` branch is broadcast over `[B, C, H, W]`.
    Mul,
    /// Elementwise sum.
    Add,
}

impl Join {
    pub const ALL: [Join; 3] = [Join::Concat, Join::Mul, Join::Add];

    pub fn name(self) -> &'static str {
        match self {
            Join::Concat => "concat",
            Join::Mul => "mul",
            Join::Add => "add",
        }
    }

    pub fn from_name(s: &str) -> Option<Join> {
        Join::ALL.into_iter().find(|j| j.name() == s)
    }
}

/// The type of an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// A whole number ≥ 1 (sizes, counts, strides).
    Int,
    /// A whole number ≥ 0.
    Int0,
    /// Any real number.
    Real,
    /// A real number in [0, 1).
    Rate,
    Bool,
    Act,
    Join,
}

impl Ty {
    pub const ALL: [Ty; 7] = [
        Ty::Int,
        Ty::Int0,
        Ty::Real,
        Ty::Rate,
        Ty::Bool,
        Ty::Act,
        Ty::Join,
    ];

    /// The name in block headers (`out:int`).
    pub fn name(self) -> &'static str {
        match self {
            Ty::Int => "int",
            Ty::Int0 => "int0",
            Ty::Real => "real",
            Ty::Rate => "rate",
            Ty::Bool => "bool",
            Ty::Act => "act",
            Ty::Join => "join",
        }
    }

    pub fn from_name(s: &str) -> Option<Ty> {
        Ty::ALL.into_iter().find(|t| t.name() == s)
    }

    /// What a value of this type is, for messages and `netspec layers`.
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Int => "whole number ≥ 1",
            Ty::Int0 => "whole number ≥ 0",
            Ty::Real => "real number",
            Ty::Rate => "rate in [0, 1)",
            Ty::Bool => "true or false",
            Ty::Act => "activation",
            Ty::Join => "concat, mul or add",
        }
    }
}

/// A value during elaboration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Real(f64),
    Bool(bool),
    Act(Act),
    Join(Join),
    Auto,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Real(r) => f.write_str(&real_text(r)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Act(a) => f.write_str(a.name()),
            Value::Join(j) => f.write_str(j.name()),
            Value::Auto => f.write_str("auto"),
        }
    }
}

/// A real number as written in spec files: the shortest text that reads back to the same `f64`,
/// always with a `.` or an exponent (`0.2`, `1e-6`, `17.0`).
pub fn real_text(r: f64) -> String {
    let s = format!("{r:?}");
    if s.contains(['.', 'e', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// torchvision's `_make_divisible(v, d)` for whole `v`: round `v` to the nearest multiple of `d`
/// (ties up), at least `d`, and add `d` if the result lost more than 10 % of `v`.
pub fn make_divisible(v: usize, d: usize) -> usize {
    let mut n = ((v + d / 2) / d * d).max(d);
    // "if new_v < 0.9 * v" in integers: 10·n < 9·v.
    if 10 * n < 9 * v {
        n += d;
    }
    n
}
