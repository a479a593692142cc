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
//! * UTF-8 text, one statement per line; blank lines and `#` comments are ignored; a trailing `\r`
//!   is ignored.
//! * Three header lines, each exactly once and first: `name NAME` (`[A-Za-z0-9_.-]+`),
//!   `input C H W`, `classes N`.
//! * Then layers, one per line: `[label:] OP [VALUE] [key=value …] [if CONDITION]`. `OP` is a core
//!   layer, a combinator, a prelude block or a block defined above in the file (`netspec layers`
//!   lists them with their arguments and defaults). At most one value may be given by position (the
//!   first argument); the others by name, in any order, without spaces around `=`. A value is a
//!   number (`3`, `0.2`, `1e-6`), `true`/`false`, `auto`, an activation (`relu`…), a join (`concat`,
//!   `mul`, `add`), a name, a call (`max(1, in // 4)`) or any expression in parentheses. `in=N`
//!   states the expected input features (checked).
//! * Block definitions: `block NAME [*] PARAM…` followed by an indented body of statements
//!   (calls, `let NAME = EXPR`, `require CONDITION "message"`). A parameter is `name:type`,
//!   `name=default` or `name:type=default` with type `int` (≥ 1), `int0` (≥ 0), `real`, `rate`,
//!   `bool`, `act` or `join`; `*` makes the first parameter name-only. In a body, `in` is the
//!   block's input features and `inH`, `inW` its height and width (images).
//! * Combinators take an indented body: `seq`, `add`, `parallel JOIN`, `repeat N` (with `i`, the
//!   copy's index). Indentation matters only there; bodies are indented consistently.
//! * Expressions: `+ - * / // %` (`/` gives a real, `//` a whole number), comparisons,
//!   `and or not`, `A if C else B`, `max`, `min`, `makeDivisible(v, d)`.
//! * Errors are reported as `line:column: message` (1-based; columns count characters).
//!
//! [`print`] writes the canonical form (arguments equal to their defaults omitted, two-space
//! indentation, comments other than block docs dropped); `parse(print(s)) == s` for valid specs.

use crate::analyze::MAX_DIM;
use crate::ast::{
    real_text, Act, BinOp, BlockDef, Call, Expr, Join, NetSpec, Param, Pos, Stmt, Ty, Value,
};
use crate::core::{self, Def, Sig};
use crate::elab::FUNCTIONS;
use crate::error::ParseError;
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------------------
// Lines and tokens
// ---------------------------------------------------------------------------------------------

/// An error on the current line, at a column.
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

#[derive(Clone, Copy, Debug, PartialEq)]
enum K {
    Ident,
    Num,
    Str,
    Op,
}

/// A token: kind, text, 1-based character column, whether whitespace precedes it.
#[derive(Clone, Copy, Debug)]
struct Tok<'a> {
    k: K,
    text: &'a str,
    col: usize,
    spaced: bool,
}

const OPS2: [&str; 5] = ["==", "!=", "<=", ">=", "//"];
const OPS1: &str = "=<>+-*/%(),:";
const KEYWORDS: [&str; 12] = [
    "block", "let", "require", "if", "else", "and", "or", "not", "true", "false", "auto", "in",
];

/// Splits a statement line into tokens (the comment dropped).
fn lex(line: &str) -> Result<Vec<Tok<'_>>, Err1> {
    let cs: Vec<(usize, char)> = line.char_indices().collect();
    let byte = |k: usize| cs.get(k).map_or(line.len(), |c| c.0);
    let mut toks = Vec::new();
    let mut k = 0;
    let mut spaced = true;
    while k < cs.len() {
        let ch = cs[k].1;
        let start = k;
        let kind = if ch == '#' {
            break;
        } else if ch == ' ' || ch == '\t' {
            spaced = true;
            k += 1;
            continue;
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            while k < cs.len() && (cs[k].1.is_ascii_alphanumeric() || cs[k].1 == '_') {
                k += 1;
            }
            K::Ident
        } else if ch.is_ascii_digit()
            || (ch == '.' && cs.get(k + 1).is_some_and(|c| c.1.is_ascii_digit()))
        {
            while k < cs.len() {
                let c = cs[k].1;
                let exp_sign = (c == '+' || c == '-') && matches!(cs[k - 1].1, 'e' | 'E');
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || exp_sign {
                    k += 1;
                } else {
                    break;
                }
            }
            K::Num
        } else if ch == '"' {
            k += 1;
            while k < cs.len() && cs[k].1 != '"' {
                k += if cs[k].1 == '\\' { 2 } else { 1 };
            }
            if k >= cs.len() {
                return e1(start + 1, "unterminated string: close it with `\"`");
            }
            k += 1;
            K::Str
        } else if let Some(op) = OPS2.iter().find(|o| line[cs[k].0..].starts_with(**o)) {
            k += op.len();
            K::Op
        } else if OPS1.contains(ch) {
            k += 1;
            K::Op
        } else {
            return e1(
                k + 1,
                format!("unexpected character {}", show(&ch.to_string())),
            );
        };
        toks.push(Tok {
            k: kind,
            text: &line[byte(start)..byte(k)],
            col: start + 1,
            spaced,
        });
        spaced = false;
    }
    Ok(toks)
}

/// Whitespace-separated words of a header line, with columns (the comment dropped).
fn words(line: &str) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    let mut start: Option<(usize, usize)> = None; // (byte, col)
    let mut end = line.len();
    for (col0, (b, ch)) in line.char_indices().enumerate() {
        if ch == '#' {
            end = b;
            break;
        }
        if ch == ' ' || ch == '\t' {
            if let Some((sb, sc)) = start.take() {
                toks.push(word(&line[sb..b], sc));
            }
        } else if start.is_none() {
            start = Some((b, col0 + 1));
        }
    }
    if let Some((sb, sc)) = start {
        toks.push(word(&line[sb..end], sc));
    }
    toks
}

fn word(text: &str, col: usize) -> Tok<'_> {
    Tok {
        k: K::Ident,
        text,
        col,
        spaced: true,
    }
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

// ---------------------------------------------------------------------------------------------
// Callees: what a call may name, and what it accepts
// ---------------------------------------------------------------------------------------------

/// The parameter list of a core layer, combinator or block, as the parser and printer see it.
struct Callee {
    positional: bool,
    takes_in: bool,
    params: Vec<(String, Ty, Option<Expr>)>,
}

impl Callee {
    fn core(s: &Sig) -> Callee {
        Callee {
            positional: s.positional,
            takes_in: s.takes_in,
            params: s
                .args
                .iter()
                .map(|a| {
                    let d = match a.default {
                        Def::Required => None,
                        Def::Auto => Some(Expr::Auto),
                        Def::Is(v) => Some(value_expr(v)),
                    };
                    (a.name.to_string(), a.ty, d)
                })
                .collect(),
        }
    }
    fn block(b: &BlockDef) -> Callee {
        Callee {
            positional: b.positional,
            takes_in: true,
            params: b
                .params
                .iter()
                .map(|p| (p.name.clone(), p.ty, p.default.clone()))
                .collect(),
        }
    }
    fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.params.iter().map(|p| p.0.as_str()).collect();
        if self.takes_in {
            v.push("in");
        }
        v
    }
}

/// The expression of a literal value.
fn value_expr(v: Value) -> Expr {
    match v {
        Value::Int(i) => Expr::Int(i),
        Value::Real(r) => Expr::Real(r),
        Value::Bool(b) => Expr::Bool(b),
        Value::Act(a) => Expr::Name(a.name().into()),
        Value::Join(j) => Expr::Name(j.name().into()),
        Value::Auto => Expr::Auto,
    }
}

/// The type a literal default gives a parameter.
fn literal_ty(e: &Expr) -> Option<Ty> {
    match e {
        Expr::Int(i) if *i >= 1 => Some(Ty::Int),
        Expr::Int(_) => Some(Ty::Int0),
        Expr::Real(_) => Some(Ty::Real),
        Expr::Bool(_) => Some(Ty::Bool),
        Expr::Name(n) if Act::from_name(n).is_some() => Some(Ty::Act),
        Expr::Name(n) if Join::from_name(n).is_some() => Some(Ty::Join),
        _ => None,
    }
}

/// The blocks visible while parsing: the prelude's and those defined so far in the file.
struct Defs<'p> {
    prelude: &'p [BlockDef],
    file: Vec<BlockDef>,
}

impl Defs<'_> {
    fn block(&self, name: &str) -> Option<&BlockDef> {
        self.file
            .iter()
            .chain(self.prelude)
            .find(|b| b.name == name)
    }
    fn callee(&self, name: &str) -> Option<Callee> {
        core::sig(name)
            .map(Callee::core)
            .or_else(|| self.block(name).map(Callee::block))
    }
    fn all_names(&self) -> Vec<&str> {
        core::CORE
            .iter()
            .map(|s| s.name)
            .chain(self.prelude.iter().map(|b| b.name.as_str()))
            .chain(self.file.iter().map(|b| b.name.as_str()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

/// A cursor over one line's tokens, with the variables in scope.
struct Cur<'t, 'a> {
    t: &'t [Tok<'a>],
    i: usize,
    /// Column just after the line's last character.
    end: usize,
    scope: &'t [String],
    /// Nesting of the expression being parsed (bounded, so no input can exhaust the stack).
    depth: usize,
}

/// Deepest nesting of expressions, and of bodies.
const MAX_NESTING: usize = 48;

impl<'a> Cur<'_, 'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.t.get(self.i).copied()
    }
    fn peek2(&self) -> Option<Tok<'a>> {
        self.t.get(self.i + 1).copied()
    }
    fn is(&self, text: &str) -> bool {
        self.peek().is_some_and(|t| t.text == text && t.k != K::Str)
    }
    fn col(&self) -> usize {
        self.peek().map_or(self.end, |t| t.col)
    }
    fn eat(&mut self, text: &str) -> bool {
        let yes = self.is(text);
        if yes {
            self.i += 1;
        }
        yes
    }
    fn expect(&mut self, text: &str, what: &str) -> Result<(), Err1> {
        if self.eat(text) {
            return Ok(());
        }
        let found = self
            .peek()
            .map_or("the end of the line".into(), |t| show(t.text));
        e1(self.col(), format!("expected {what}, found {found}"))
    }

    /// `A if C else B` | or-expression.
    fn expr(&mut self) -> Result<Expr, Err1> {
        self.nest()?;
        let e = self.cond();
        self.depth -= 1;
        e
    }

    fn nest(&mut self) -> Result<(), Err1> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return e1(
                self.col(),
                format!("expression nested more than {MAX_NESTING} deep"),
            );
        }
        Ok(())
    }

    fn cond(&mut self) -> Result<Expr, Err1> {
        let then = self.binary(2)?;
        if !self.eat("if") {
            return Ok(then);
        }
        let cond = self.binary(2)?;
        self.expect("else", "`else` (a conditional is `A if C else B`)")?;
        let other = self.expr()?;
        Ok(Expr::If(Box::new(then), Box::new(cond), Box::new(other)))
    }

    /// Binary operators binding at least as strongly as `min` (`not` sits at 4).
    fn binary(&mut self, min: u8) -> Result<Expr, Err1> {
        let mut lhs = if min <= 4 && self.eat("not") {
            self.nest()?;
            let e = Expr::Not(Box::new(self.binary(4)?));
            self.depth -= 1;
            e
        } else {
            self.unary()?
        };
        let mut compared = false;
        while let Some(t) = self.peek() {
            let Some(op) = BinOp::ALL
                .into_iter()
                .find(|o| o.text() == t.text && t.k != K::Str)
            else {
                break;
            };
            let p = op.prec();
            if p < min {
                break;
            }
            if p == 5 && compared {
                return e1(t.col, "comparisons do not chain; use `and`");
            }
            compared |= p == 5;
            self.i += 1;
            let rhs = self.binary(p + 1)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    /// `-unary` | primary.
    fn unary(&mut self) -> Result<Expr, Err1> {
        if self.eat("-") {
            self.nest()?;
            let e = Expr::Neg(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(e);
        }
        self.primary()
    }

    /// A number, a name, a function call, `true`/`false`/`auto` or a parenthesised expression.
    fn primary(&mut self) -> Result<Expr, Err1> {
        let Some(t) = self.peek() else {
            return e1(self.end, "expected a value, found the end of the line");
        };
        self.i += 1;
        match t.k {
            K::Num => number(t.text)
                .ok_or(())
                .or_else(|()| e1(t.col, format!("expected a number, found {}", show(t.text)))),
            K::Op if t.text == "(" => {
                let e = self.expr()?;
                self.expect(")", "`)`")?;
                Ok(e)
            }
            K::Ident => match t.text {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "auto" => Ok(Expr::Auto),
                _ if self.is("(") && !self.peek().is_some_and(|p| p.spaced) => {
                    if !FUNCTIONS.contains(&t.text) {
                        return e1(
                            t.col,
                            format!(
                                "unknown function {}; the functions are {}",
                                show(t.text),
                                FUNCTIONS.join(", ")
                            ),
                        );
                    }
                    self.i += 1;
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",", "`,` or `)`")?;
                        }
                    }
                    Ok(Expr::Call(t.text.to_string(), args))
                }
                name => {
                    self.name(name, t.col)?;
                    Ok(Expr::Name(name.to_string()))
                }
            },
            K::Str | K::Op => e1(t.col, format!("expected a value, found {}", show(t.text))),
        }
    }

    /// Checks that `name` is a variable in scope or a constant.
    fn name(&self, name: &str, col: usize) -> Result<(), Err1> {
        let known = self.scope.iter().any(|v| v == name)
            || Act::from_name(name).is_some()
            || Join::from_name(name).is_some();
        if known {
            return Ok(());
        }
        if KEYWORDS.contains(&name) && name != "in" {
            return e1(col, format!("expected a value, found the keyword `{name}`"));
        }
        let hint = match suggest(name, self.scope.iter().map(String::as_str)) {
            Some(s) => format!("; did you mean `{s}`?"),
            None if self.scope.is_empty() => String::new(),
            None => format!(" (names here: {})", self.scope.join(", ")),
        };
        e1(col, format!("unknown name {}{hint}", show(name)))
    }
}

/// A number token as a literal (`None` if it is not a number).
fn number(text: &str) -> Option<Expr> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(match text.parse::<i64>() {
            Ok(v) => Expr::Int(v),
            Err(_) => Expr::Int(i64::MAX),
        });
    }
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && !text.contains(['i', 'n', 'I', 'N']) => Some(Expr::Real(r)),
        Ok(_) | Err(_) => None,
    }
}

/// Parses an argument value (`-`? primary) of type `ty` for `what`, checking literals against the
/// type right here (so the error points at the value).
fn arg_value(c: &mut Cur<'_, '_>, ty: Ty, auto_ok: bool, what: &str) -> Result<Expr, Err1> {
    let Some(t) = c.peek() else {
        return e1(c.end, format!("expected a value for {what}"));
    };
    let neg = t.text == "-" && t.k == K::Op;
    let lit = if neg { c.peek2() } else { Some(t) };
    let call = c.t.get(c.i + 1).is_some_and(|n| n.text == "(" && !n.spaced);
    match lit {
        // A single word that is not a variable: a constant of the argument's type.
        Some(w) if w.k == K::Ident && !neg && !call && !c.scope.iter().any(|v| v == w.text) => {
            let ok = match (ty, w.text) {
                (_, "auto") => auto_ok,
                (Ty::Bool, n) => matches!(n, "true" | "false"),
                (Ty::Act, n) => Act::from_name(n).is_some(),
                (Ty::Join, n) => Join::from_name(n).is_some(),
                (Ty::Int | Ty::Int0 | Ty::Rate | Ty::Real, _) => false,
            };
            if !ok {
                let msg = match suggest(w.text, c.scope.iter().map(String::as_str)) {
                    Some(v) => format!("unknown name {}; did you mean `{v}`?", show(w.text)),
                    None if w.text == "auto" => {
                        format!("{what} cannot be `auto`; give a {}", ty.describe())
                    }
                    None => expected(ty, what, w.text),
                };
                return e1(w.col, msg);
            }
        }
        Some(n) if n.k == K::Num => {
            let text = if neg {
                format!("-{}", n.text)
            } else {
                n.text.to_string()
            };
            let bad = |m: String| e1(t.col, m);
            match (ty, number(n.text)) {
                (Ty::Int | Ty::Int0, Some(Expr::Int(v))) if neg && v != 0 => {
                    return bad(format!(
                        "{what} must not be negative, found {}",
                        show(&text)
                    ))
                }
                (Ty::Int | Ty::Int0 | Ty::Real, Some(Expr::Int(v))) if v > MAX_DIM as i64 => {
                    return bad(format!(
                        "{what} = {} is too large (at most {MAX_DIM})",
                        show(&text)
                    ))
                }
                (Ty::Int, Some(Expr::Int(0))) => {
                    return bad(format!("{what} must be at least 1, found 0"))
                }
                (Ty::Int | Ty::Int0, Some(Expr::Int(_))) | (Ty::Real, Some(_)) => {}
                (Ty::Rate, Some(Expr::Int(0))) if !neg => {}
                (Ty::Rate, Some(Expr::Real(r))) if !neg && (0.0..1.0).contains(&r) => {}
                (Ty::Rate, Some(_)) => {
                    return bad(format!(
                        "{what} must be a rate in [0, 1), found {}",
                        show(&text)
                    ))
                }
                _ => return bad(expected(ty, what, &text)),
            }
        }
        _ => {}
    }
    c.unary()
}

/// The message for `found`, which is not a value of type `ty`, given for `what`.
fn expected(ty: Ty, what: &str, found: &str) -> String {
    let found = show(found);
    match ty {
        Ty::Int | Ty::Int0 => format!("expected a whole number for {what}, found {found}"),
        Ty::Real => format!("expected a number for {what}, found {found}"),
        Ty::Rate => format!("expected a rate like 0.2 for {what}, found {found}"),
        Ty::Bool => format!("expected `true` or `false` for {what}, found {found}"),
        Ty::Join => format!("expected `concat`, `mul` or `add` for {what}, found {found}"),
        Ty::Act => {
            let names: Vec<&str> = Act::ALL.iter().map(|a| a.name()).collect();
            format!(
                "unknown activation {found} for {what}; expected one of: {}",
                names.join(", ")
            )
        }
    }
}

/// Every number literal in an expression must be at most [`MAX_DIM`] (whole) or finite (real).
fn check_literals(e: &Expr) -> Result<(), String> {
    match e {
        Expr::Int(v) if *v > MAX_DIM as i64 => {
            Err(format!("the number {v} is too large (at most {MAX_DIM})"))
        }
        Expr::Int(_) | Expr::Real(_) | Expr::Bool(_) | Expr::Auto | Expr::Name(_) => Ok(()),
        Expr::Call(_, a) => a.iter().try_for_each(check_literals),
        Expr::Neg(a) | Expr::Not(a) => check_literals(a),
        Expr::Bin(_, a, b) => check_literals(a).and(check_literals(b)),
        Expr::If(a, b, c) => check_literals(a)
            .and(check_literals(b))
            .and(check_literals(c)),
    }
}

// ---------------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------------

/// `label` / parameter / `let` names: identifiers that are not keywords or constants.
fn check_ident(t: Tok<'_>, what: &str) -> Result<(), Err1> {
    if t.k != K::Ident {
        return e1(t.col, format!("expected {what}, found {}", show(t.text)));
    }
    if KEYWORDS.contains(&t.text) || matches!(t.text, "i" | "inH" | "inW") {
        return e1(
            t.col,
            format!("`{}` is reserved; choose another {what}", t.text),
        );
    }
    if Act::from_name(t.text).is_some() || Join::from_name(t.text).is_some() {
        return e1(
            t.col,
            format!("`{}` names a constant; choose another {what}", t.text),
        );
    }
    Ok(())
}

/// Parses a call line (its body, if any, is parsed by the caller).
fn parse_call(
    toks: &[Tok<'_>],
    end: usize,
    scope: &[String],
    defs: &Defs<'_>,
    pos: Pos,
) -> Result<Call, Err1> {
    let mut c = Cur {
        t: toks,
        i: 0,
        end,
        scope,
        depth: 0,
    };
    let mut label = None;
    if c.peek2().is_some_and(|t| t.text == ":" && t.k == K::Op) {
        #[allow(
            clippy::expect_used,
            reason = "peek2() returned a token just above, so peek() has one"
        )]
        let t = c.peek().expect("two tokens");
        check_ident(t, "label")?;
        label = Some(t.text.to_string());
        c.i += 2;
    }
    let Some(op_tok) = c.peek().filter(|t| t.k == K::Ident) else {
        let found = c
            .peek()
            .map_or("the end of the line".into(), |t| show(t.text));
        return e1(
            c.col(),
            format!("expected a layer after the label, found {found}"),
        );
    };
    c.i += 1;
    let kind = op_tok.text;
    let Some(callee) = defs.callee(kind) else {
        let mut hint = match suggest(kind, defs.all_names()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if matches!(kind, "let" | "require") => {
                "`let` and `require` belong in a block's body".into()
            }
            None => format!(
                "expected one of: {} (`netspec layers` describes them)",
                defs.all_names().join(", ")
            ),
        };
        if scope.iter().any(|v| v == "in") {
            hint.push_str(
                " (a block calls core layers, prelude blocks and the blocks defined above it)",
            );
        }
        return e1(op_tok.col, format!("unknown layer {}; {hint}", show(kind)));
    };
    let names = callee.names();
    let mut given: Vec<Option<(Expr, usize)>> = vec![None; names.len()];
    let mut npos = 0;
    let mut guard = None;
    while let Some(t) = c.peek() {
        if t.k == K::Ident && t.text == "if" {
            c.i += 1;
            let g = c.expr()?;
            check_literals(&g).map_err(|m| Err1 {
                col: t.col,
                message: m,
            })?;
            guard = Some(g);
            if let Some(x) = c.peek() {
                return e1(
                    x.col,
                    format!("unexpected {} after the condition", show(x.text)),
                );
            }
            break;
        }
        let named = t.k == K::Ident && c.peek2().is_some_and(|n| n.text == "=" && n.k == K::Op);
        if named {
            #[allow(
                clippy::expect_used,
                reason = "peek2() was checked to be `=` on the line above"
            )]
            let eq = c.peek2().expect("checked");
            if eq.spaced {
                return e1(
                    t.col,
                    format!("write `{}=value` without spaces around `=`", t.text),
                );
            }
            c.i += 2;
            let key = t.text;
            if c.peek().is_none_or(|v| v.spaced) {
                return e1(
                    eq.col + 1,
                    format!("expected a value after `{key}=` (no spaces around `=`)"),
                );
            }
            let Some(idx) = names.iter().position(|n| *n == key) else {
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
            if let Some((_, col)) = given[idx] {
                return e1(
                    t.col,
                    format!("`{key}` is given twice (first at column {col})"),
                );
            }
            let (ty, auto_ok) = arg_type(&callee, idx);
            let v = arg_value(&mut c, ty, auto_ok, &format!("`{key}`"))?;
            given[idx] = Some((v, t.col));
        } else if t.k == K::Op && t.text == "=" {
            return e1(
                t.col,
                "expected `name=value` (no spaces around `=`)".to_string(),
            );
        } else {
            if !callee.positional || npos > 0 || names.is_empty() {
                let named: Vec<String> = names.iter().map(|n| format!("{n}=")).collect();
                let what = if callee.positional && !names.is_empty() {
                    format!(
                        "`{kind}` takes one positional value ({}); give the others by name",
                        names[0]
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
            if let Some((_, col)) = given[0] {
                return e1(
                    t.col,
                    format!("`{}` is given twice (first at column {col})", names[0]),
                );
            }
            let (ty, auto_ok) = arg_type(&callee, 0);
            let v = arg_value(&mut c, ty, auto_ok, &format!("`{}`", names[0]))?;
            if c.peek().is_some_and(|n| n.text == "=" && n.k == K::Op) {
                return e1(
                    t.col,
                    format!("write `{}=value` without spaces around `=`", t.text),
                );
            }
            given[0] = Some((v, t.col));
        }
    }
    for (i, g) in given.iter().enumerate() {
        let required = callee.params.get(i).is_some_and(|p| p.2.is_none());
        if g.is_none() && required {
            let (n, ty) = (&callee.params[i].0, callee.params[i].1);
            let ex = example_value(ty);
            let how = if callee.positional && i == 0 {
                format!("`{kind}` needs its `{n}` value (e.g. `{kind} {ex}`)")
            } else {
                format!("`{kind}` needs `{n}=` (e.g. `{n}={ex}`)")
            };
            return e1(op_tok.col, format!("missing argument: {how}"));
        }
    }
    for (v, col) in given.iter().flatten() {
        check_literals(v).map_err(|m| Err1 {
            col: *col,
            message: m,
        })?;
    }
    // Canonical form: parameter order, `in` last, arguments equal to their default left out.
    let args = given
        .into_iter()
        .zip(&names)
        .filter_map(|(g, n)| {
            let (v, _) = g?;
            let default = callee
                .params
                .iter()
                .find(|p| p.0 == *n)
                .and_then(|p| p.2.as_ref());
            (default != Some(&v)).then(|| (n.to_string(), v))
        })
        .collect();
    Ok(Call {
        pos: Pos {
            line: pos.line,
            col: op_tok.col.min(toks[0].col),
            prelude: pos.prelude,
        },
        label,
        op: kind.to_string(),
        args,
        guard,
        body: Vec::new(),
    })
}

fn arg_type(c: &Callee, idx: usize) -> (Ty, bool) {
    match c.params.get(idx) {
        Some((_, ty, d)) => (*ty, d.as_ref() == Some(&Expr::Auto)),
        None => (Ty::Int, false), // `in`
    }
}

fn example_value(ty: Ty) -> &'static str {
    match ty {
        Ty::Int | Ty::Int0 => "3",
        Ty::Real => "1.0",
        Ty::Rate => "0.2",
        Ty::Bool => "true",
        Ty::Act => "relu",
        Ty::Join => "concat",
    }
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// A line that is not blank or a comment.
struct Line<'a> {
    no: usize,
    indent: &'a str,
    text: &'a str,
    /// Comment lines directly above (for block docs).
    doc: Vec<String>,
}

impl Line<'_> {
    fn end(&self) -> usize {
        self.text.chars().count() + 1
    }
}

struct Parser<'a, 'p> {
    lines: Vec<Line<'a>>,
    i: usize,
    /// Bodies open around the current line.
    depth: usize,
    defs: Defs<'p>,
    prelude: bool,
}

impl<'a, 'p> Parser<'a, 'p> {
    fn err(&self, line: usize, e: Err1) -> ParseError {
        ParseError {
            line,
            col: e.col,
            message: e.message,
        }
    }

    fn toks(&self, l: &Line<'a>) -> Result<Vec<Tok<'a>>, ParseError> {
        lex(l.text).map_err(|e| self.err(l.no, e))
    }

    /// A `block` definition at line `self.i`, with its body.
    fn block(&mut self) -> Result<(), ParseError> {
        let l = &self.lines[self.i];
        let (no, indent, doc) = (l.no, l.indent, l.doc.clone());
        let toks = self.toks(l)?;
        let end = l.end();
        let err = |e: Err1| ParseError {
            line: no,
            col: e.col,
            message: e.message,
        };
        let Some(&name) = toks.get(1) else {
            return e1(
                end,
                "`block` needs a name and parameters: `block NAME PARAM…`",
            )
            .map_err(err);
        };
        check_ident(name, "block name").map_err(err)?;
        if self.defs.callee(name.text).is_some() {
            let what = if core::sig(name.text).is_some() {
                "a core layer"
            } else {
                "already a block"
            };
            return e1(
                name.col,
                format!("`{}` is {what}; choose another name", name.text),
            )
            .map_err(err);
        }
        let mut c = Cur {
            t: &toks,
            i: 2,
            end,
            scope: &[],
            depth: 0,
        };
        let positional = !c.eat("*");
        let mut params: Vec<Param> = Vec::new();
        let mut scope: Vec<String> = vec!["in".into(), "inH".into(), "inW".into()];
        while let Some(t) = c.peek() {
            check_ident(t, "parameter name").map_err(err)?;
            if params.iter().any(|p| p.name == t.text) {
                return e1(t.col, format!("parameter `{}` is declared twice", t.text)).map_err(err);
            }
            c.i += 1;
            let mut ty = None;
            if c.eat(":") {
                let tt = c.peek().filter(|x| x.k == K::Ident && !x.spaced);
                let Some(tt) = tt else {
                    return e1(
                        c.col(),
                        "expected a type after `:` (int, int0, real, rate, bool, act, join)",
                    )
                    .map_err(err);
                };
                let Some(tyv) = Ty::from_name(tt.text) else {
                    let m = format!(
                        "unknown type {}; the types are int, int0, real, rate, bool, act, join",
                        show(tt.text)
                    );
                    return e1(tt.col, m).map_err(err);
                };
                ty = Some(tyv);
                c.i += 1;
            }
            let mut default = None;
            if c.is("=") {
                #[allow(
                    clippy::expect_used,
                    reason = "c.is(\"=\") just checked that a token is there"
                )]
                let eq = c.peek().expect("checked");
                c.i += 1;
                if eq.spaced || c.peek().is_none_or(|v| v.spaced) {
                    let m = format!("write `{}=default` without spaces around `=`", t.text);
                    return e1(t.col, m).map_err(err);
                }
                let what = format!("`{}`", t.text);
                let d = match ty {
                    Some(ty) => arg_value(&mut c, ty, true, &what),
                    None => c.unary(),
                }
                .map_err(err)?;
                check_literals(&d).or_else(|m| e1(t.col, m)).map_err(err)?;
                default = Some(d);
            }
            let ty = match (ty, default.as_ref().and_then(literal_ty)) {
                (Some(ty), _) | (None, Some(ty)) => ty,
                (None, None) => {
                    let m = format!(
                        "give `{0}` a type (`{0}:int`, …) or a literal default (`{0}=1`)",
                        t.text
                    );
                    return e1(t.col, m).map_err(err);
                }
            };
            params.push(Param {
                name: t.text.to_string(),
                ty,
                default,
            });
            scope.push(t.text.to_string());
        }
        self.i += 1;
        let body = self.body_after(
            indent,
            no,
            &format!("`block {}`", name.text),
            &mut scope,
            false,
        )?;
        self.defs.file.push(BlockDef {
            pos: Pos {
                line: no,
                col: name.col,
                prelude: self.prelude,
            },
            doc,
            name: name.text.to_string(),
            positional,
            params,
            body,
        });
        Ok(())
    }

    /// The indented body following an opener at `indent` (line `no`); it must exist.
    fn body_after(
        &mut self,
        indent: &str,
        no: usize,
        what: &str,
        scope: &mut Vec<String>,
        branches: bool,
    ) -> Result<Vec<Stmt>, ParseError> {
        let deeper = self
            .lines
            .get(self.i)
            .filter(|l| l.indent.len() > indent.len() && l.indent.starts_with(indent))
            .map(|l| l.indent);
        let Some(body_indent) = deeper else {
            return Err(ParseError {
                line: no,
                col: indent.chars().count() + 1,
                message: format!("{what} needs a body: indent the statements it holds below it"),
            });
        };
        if self.depth >= MAX_NESTING {
            return Err(ParseError {
                line: no,
                col: 1,
                message: format!("bodies nested more than {MAX_NESTING} deep"),
            });
        }
        let n = scope.len();
        self.depth += 1;
        let body = self.body(body_indent, scope, branches)?;
        self.depth -= 1;
        scope.truncate(n);
        Ok(body)
    }

    /// Statements at exactly `indent`, until a line indented less.
    fn body(
        &mut self,
        indent: &str,
        scope: &mut Vec<String>,
        branches: bool,
    ) -> Result<Vec<Stmt>, ParseError> {
        let mut out = Vec::new();
        while let Some(l) = self.lines.get(self.i) {
            if l.indent != indent {
                if l.indent.starts_with(indent) {
                    return Err(ParseError {
                        line: l.no,
                        col: 1,
                        message: "unexpected indentation: only the body of a `block`, `seq`, `add`, `parallel` or `repeat` is indented".into(),
                    });
                }
                break;
            }
            let (no, end) = (l.no, l.end());
            let toks = self.toks(l)?;
            let err = |e: Err1| ParseError {
                line: no,
                col: e.col,
                message: e.message,
            };
            let first = toks[0];
            let pos = Pos {
                line: no,
                col: first.col,
                prelude: self.prelude,
            };
            match first.text {
                "block" if first.k == K::Ident => {
                    return e1(
                        first.col,
                        "`block` definitions go at the top level, not in a body",
                    )
                    .map_err(err)
                }
                "let" | "require" if first.k == K::Ident && branches => {
                    let m = "the body of `parallel` holds branches (calls) only; put `let` and `require` in a block";
                    return e1(first.col, m).map_err(err);
                }
                "let" if first.k == K::Ident => {
                    let name = toks.get(1).copied().ok_or_else(|| {
                        err(Err1 {
                            col: end,
                            message: "`let` needs `NAME = EXPR`".into(),
                        })
                    })?;
                    check_ident(name, "name").map_err(err)?;
                    if scope.iter().any(|s| s == name.text) {
                        let m = format!("`{}` is already defined here", name.text);
                        return e1(name.col, m).map_err(err);
                    }
                    let mut c = Cur {
                        t: &toks,
                        i: 2,
                        end,
                        scope,
                        depth: 0,
                    };
                    c.expect("=", "`=` (`let NAME = EXPR`)").map_err(err)?;
                    let value = c.expr().map_err(err)?;
                    if let Some(x) = c.peek() {
                        return e1(
                            x.col,
                            format!("unexpected {} after the expression", show(x.text)),
                        )
                        .map_err(err);
                    }
                    check_literals(&value).or_else(|m| e1(first.col, m).map_err(err))?;
                    out.push(Stmt::Let {
                        pos,
                        name: name.text.to_string(),
                        value,
                    });
                    scope.push(name.text.to_string());
                    self.i += 1;
                }
                "require" if first.k == K::Ident => {
                    let mut c = Cur {
                        t: &toks,
                        i: 1,
                        end,
                        scope,
                        depth: 0,
                    };
                    let cond = c.expr().map_err(err)?;
                    let msg = match c.peek() {
                        Some(s) if s.k == K::Str && c.i + 1 == toks.len() => unquote(s.text),
                        _ => {
                            let m = "`require` needs a condition and a message: `require COND \"message\"`";
                            return e1(c.col(), m).map_err(err);
                        }
                    };
                    check_literals(&cond).or_else(|m| e1(first.col, m).map_err(err))?;
                    out.push(Stmt::Require {
                        pos,
                        cond,
                        message: msg,
                    });
                    self.i += 1;
                }
                _ => {
                    let mut call = parse_call(&toks, end, scope, &self.defs, pos).map_err(err)?;
                    self.i += 1;
                    call.body = self.call_body(&call, indent, no, scope)?;
                    out.push(Stmt::Call(call));
                }
            }
        }
        Ok(out)
    }

    /// Top-level lines may be indented freely, but not between an opener (at `indent`) and the body
    /// that just ended.
    fn after_body(&self, indent: &str) -> Result<(), ParseError> {
        match self.lines.get(self.i) {
            Some(n) if n.indent.len() > indent.len() && n.indent.starts_with(indent) => Err(ParseError {
                line: n.no,
                col: 1,
                message: "this line is indented less than the body above it but more than the line that opens that body; align it with one of them".into(),
            }),
            Some(_) | None => Ok(()),
        }
    }

    /// The body of a combinator call (none for other calls).
    fn call_body(
        &mut self,
        call: &Call,
        indent: &str,
        no: usize,
        scope: &mut Vec<String>,
    ) -> Result<Vec<Stmt>, ParseError> {
        if core::sig(&call.op).is_none_or(|s| !s.body) {
            return Ok(Vec::new());
        }
        let n = scope.len();
        if call.op == "repeat" {
            scope.push("i".into());
        }
        let body = self.body_after(
            indent,
            no,
            &format!("`{}`", call.op),
            scope,
            call.op == "parallel",
        );
        scope.truncate(n);
        body
    }
}

/// The text of a string token without its quotes, `\"` and `\\` unescaped.
fn unquote(s: &str) -> String {
    let inner = &s[1..s.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// The significant lines of a text, or the error of a non-UTF-8 byte; also the last line's number
/// and length (for end-of-file errors).
fn lines(bytes: &[u8]) -> Result<(Vec<Line<'_>>, usize, usize), ParseError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = e.valid_up_to();
            // The prefix is valid UTF-8 by construction.
            let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or("");
            let line = prefix.matches('\n').count() + 1;
            let start = prefix.rfind('\n').map_or(0, |i| i + 1);
            return Err(ParseError {
                line,
                col: prefix[start..].chars().count() + 1,
                message: format!(
                    "invalid UTF-8 (byte 0x{:02X}); spec files must be UTF-8 text",
                    bytes[good]
                ),
            });
        }
    };
    let mut out = Vec::new();
    let mut doc: Vec<String> = Vec::new();
    let (mut last_line, mut last_len) = (1, 0);
    for (li, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        last_line = li + 1;
        last_len = raw.chars().count();
        let rest = line.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            doc.clear();
        } else if let Some(c) = rest.strip_prefix('#') {
            doc.push(c.strip_prefix(' ').unwrap_or(c).trim_end().to_string());
        } else {
            out.push(Line {
                no: li + 1,
                indent: &line[..line.len() - rest.len()],
                text: line,
                doc: std::mem::take(&mut doc),
            });
        }
    }
    Ok((out, last_line, last_len))
}

/// Parses a spec file (bytes, so that non-UTF-8 input is an error with a position, not a panic).
/// Checks syntax, names and argument values; see [`parse_checked`] for shape checking as well.
pub fn parse(text: &[u8]) -> Result<NetSpec, ParseError> {
    parse_located(text).map(|l| l.0)
}

/// [`parse`] followed by shape inference; shape errors point at the line involved (the layer's,
/// or a line of the file's own block definitions).
pub fn parse_checked(text: &[u8]) -> Result<NetSpec, ParseError> {
    let (spec, input_line) = parse_located(text)?;
    match crate::analyze::analyze(&spec) {
        Ok(_) => Ok(spec),
        Err(e) => {
            let (line, col) = e.pos.unwrap_or(match &e.layer {
                Some((i, _)) => (spec.layers[*i].pos.line, spec.layers[*i].pos.col),
                None => (input_line, 1),
            });
            Err(ParseError {
                line,
                col,
                message: e.to_string(),
            })
        }
    }
}

/// The block definitions of a library file (the prelude): only `block`s and comments.
pub(crate) fn parse_library(
    text: &str,
    prelude: &[BlockDef],
    is_prelude: bool,
) -> Result<Vec<BlockDef>, ParseError> {
    let (lines, _, _) = lines(text.as_bytes())?;
    let mut p = Parser {
        lines,
        i: 0,
        depth: 0,
        defs: Defs {
            prelude,
            file: Vec::new(),
        },
        prelude: is_prelude,
    };
    while let Some(l) = p.lines.get(p.i) {
        if !l.text.trim_start().starts_with("block") {
            return Err(p.err(
                l.no,
                Err1 {
                    col: 1,
                    message: "a library holds `block` definitions only".into(),
                },
            ));
        }
        p.block()?;
    }
    Ok(p.defs.file)
}

fn parse_located(bytes: &[u8]) -> Result<(NetSpec, usize), ParseError> {
    let (lines, last_line, last_len) = lines(bytes)?;
    let mut p = Parser {
        lines,
        i: 0,
        depth: 0,
        defs: Defs {
            prelude: crate::prelude::blocks(),
            file: Vec::new(),
        },
        prelude: false,
    };
    let mut name: Option<(String, usize)> = None;
    let mut input: Option<([usize; 3], usize)> = None;
    let mut classes: Option<(usize, usize)> = None;
    let mut layers: Vec<Call> = Vec::new();
    let mut first_line: Option<usize> = None;
    while let Some(l) = p.lines.get(p.i) {
        let (no, indent) = (l.no, l.indent);
        let ws = words(l.text);
        let head = ws[0];
        let err = |e: Err1| ParseError {
            line: no,
            col: e.col,
            message: e.message,
        };
        if let "name" | "input" | "classes" = head.text {
            let prev_line = match head.text {
                "name" => name.as_ref().map(|n| n.1),
                "input" => input.map(|i| i.1),
                _ => classes.map(|c| c.1),
            };
            if let Some(prev) = prev_line {
                let m = format!("`{}` is given twice (first on line {prev})", head.text);
                return e1(head.col, m).map_err(err);
            }
            if let Some(f) = first_line {
                return e1(
                    head.col,
                    format!(
                        "`{}` must come before the first layer (line {f})",
                        head.text
                    ),
                )
                .map_err(err);
            }
            let rest = &ws[1..];
            match head.text {
                "name" => name = Some((parse_name(head, rest).map_err(err)?, no)),
                "input" => input = Some((parse_input(head, rest).map_err(err)?, no)),
                _ => classes = Some((parse_classes(head, rest).map_err(err)?, no)),
            }
            p.i += 1;
            continue;
        }
        if name.is_none() || input.is_none() || classes.is_none() {
            let missing = if name.is_none() {
                "`name NAME`"
            } else if input.is_none() {
                "`input C H W`"
            } else {
                "`classes N`"
            };
            let known = head.text == "block"
                || p.defs
                    .callee(head.text.split(':').next().unwrap_or(""))
                    .is_some();
            let hint = if known {
                String::new()
            } else {
                format!(" (or {} is misspelled)", show(head.text))
            };
            return e1(
                head.col,
                format!("missing {missing} line before the first layer{hint}"),
            )
            .map_err(err);
        }
        first_line.get_or_insert(no);
        let toks = p.toks(&p.lines[p.i])?;
        if toks[0].k == K::Ident && toks[0].text == "block" {
            p.block()?;
            p.after_body(indent)?;
            continue;
        }
        if toks[0].k == K::Ident && matches!(toks[0].text, "let" | "require") {
            return e1(
                toks[0].col,
                format!("`{}` belongs in a block's body", toks[0].text),
            )
            .map_err(err);
        }
        let end = p.lines[p.i].end();
        let pos = Pos {
            line: no,
            col: toks[0].col,
            prelude: false,
        };
        let mut call = parse_call(&toks, end, &[], &p.defs, pos).map_err(err)?;
        if call.guard.is_some() {
            return e1(toks[0].col, "a top-level layer cannot have an `if` guard").map_err(err);
        }
        p.i += 1;
        call.body = p.call_body(&call, indent, no, &mut Vec::new())?;
        if !call.body.is_empty() {
            p.after_body(indent)?;
        }
        layers.push(call);
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
    Ok((
        NetSpec {
            name,
            input,
            num_classes,
            blocks: p.defs.file,
            layers,
        },
        input_line,
    ))
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

fn parse_int(tok: &str, col: usize, what: &str, min: usize) -> Result<usize, Err1> {
    match number(tok) {
        _ if tok.starts_with('-')
            && tok.len() > 1
            && tok[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            e1(
                col,
                format!("{what} must not be negative, found {}", show(tok)),
            )
        }
        Some(Expr::Int(v)) if v > MAX_DIM as i64 => e1(
            col,
            format!("{what} = {} is too large (at most {MAX_DIM})", show(tok)),
        ),
        Some(Expr::Int(v)) if (v as usize) < min => {
            e1(col, format!("{what} must be at least {min}, found {v}"))
        }
        Some(Expr::Int(v)) => Ok(v as usize),
        _ => e1(
            col,
            format!("expected a whole number for {what}, found {}", show(tok)),
        ),
    }
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

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

/// `e` as text and its binding strength (9 for atoms).
fn expr_text(e: &Expr) -> (String, u8) {
    let wrap = |e: &Expr, min: u8| {
        let (s, p) = expr_text(e);
        if p < min {
            format!("({s})")
        } else {
            s
        }
    };
    match e {
        Expr::Int(i) if *i < 0 => (i.to_string(), 8),
        Expr::Int(i) => (i.to_string(), 9),
        Expr::Real(r) if *r < 0.0 => (real_text(*r), 8),
        Expr::Real(r) => (real_text(*r), 9),
        Expr::Bool(b) => (b.to_string(), 9),
        Expr::Auto => ("auto".into(), 9),
        Expr::Name(n) => (n.clone(), 9),
        Expr::Call(f, a) => {
            let args: Vec<String> = a.iter().map(|x| expr_text(x).0).collect();
            (format!("{f}({})", args.join(", ")), 9)
        }
        Expr::Neg(a) => (format!("-{}", wrap(a, 8)), 8),
        Expr::Not(a) => (format!("not {}", wrap(a, 4)), 4),
        Expr::Bin(op, a, b) => {
            let p = op.prec();
            let left_min = if p == 5 { 6 } else { p };
            (
                format!("{} {} {}", wrap(a, left_min), op.text(), wrap(b, p + 1)),
                p,
            )
        }
        Expr::If(t, c, o) => (
            format!("{} if {} else {}", wrap(t, 2), wrap(c, 2), wrap(o, 1)),
            1,
        ),
    }
}

/// An argument value: atoms and negations as they are, anything else in parentheses.
fn arg_text(e: &Expr) -> String {
    let (s, p) = expr_text(e);
    if p >= 8 {
        s
    } else {
        format!("({s})")
    }
}

fn callee_for_print(spec: Option<&NetSpec>, op: &str) -> Option<Callee> {
    core::sig(op).map(Callee::core).or_else(|| {
        spec.into_iter()
            .flat_map(|s| &s.blocks)
            .chain(crate::prelude::blocks())
            .find(|b| b.name == op)
            .map(Callee::block)
    })
}

/// One call in the text format, canonical, without its body (e.g. `convBn 64 kernel=7 stride=2`);
/// `spec` resolves calls of the file's own blocks.
pub fn print_layer(spec: &NetSpec, call: &Call) -> String {
    call_line(Some(spec), call)
}

fn call_line(spec: Option<&NetSpec>, call: &Call) -> String {
    let callee = callee_for_print(spec, &call.op);
    let first = callee
        .as_ref()
        .filter(|c| c.positional)
        .and_then(|c| c.params.first().map(|p| p.0.clone()));
    let mut s = String::new();
    if let Some(l) = &call.label {
        let _ = write!(s, "{l}: ");
    }
    s.push_str(&call.op);
    for (name, v) in &call.args {
        if first.as_deref() == Some(name.as_str()) {
            let _ = write!(s, " {}", arg_text(v));
        } else {
            let _ = write!(s, " {name}={}", arg_text(v));
        }
    }
    if let Some(g) = &call.guard {
        let _ = write!(s, " if {}", expr_text(g).0);
    }
    s
}

fn print_body(s: &mut String, spec: Option<&NetSpec>, body: &[Stmt], depth: usize) {
    let pad = "  ".repeat(depth);
    for st in body {
        match st {
            Stmt::Call(c) => {
                let _ = writeln!(s, "{pad}{}", call_line(spec, c));
                print_body(s, spec, &c.body, depth + 1);
            }
            Stmt::Let { name, value, .. } => {
                let _ = writeln!(s, "{pad}let {name} = {}", expr_text(value).0);
            }
            Stmt::Require { cond, message, .. } => {
                let quoted = message.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(s, "{pad}require {} \"{quoted}\"", expr_text(cond).0);
            }
        }
    }
}

/// A block definition in the text format (its doc as comments, the header, the body).
pub fn print_block(spec: Option<&NetSpec>, b: &BlockDef) -> String {
    let mut s = String::new();
    for d in &b.doc {
        let _ = writeln!(s, "#{}{d}", if d.is_empty() { "" } else { " " });
    }
    let _ = write!(s, "block {}", b.name);
    if !b.positional {
        s.push_str(" *");
    }
    for p in &b.params {
        let _ = write!(s, " {}", p.name);
        let inferred = p.default.as_ref().and_then(literal_ty);
        if inferred != Some(p.ty) {
            let _ = write!(s, ":{}", p.ty.name());
        }
        if let Some(d) = &p.default {
            let _ = write!(s, "={}", arg_text(d));
        }
    }
    s.push('\n');
    print_body(&mut s, spec, &b.body, 1);
    s
}

/// The whole spec in the text format; `parse(print(s).as_bytes()) == Ok(s)` for valid specs.
pub fn print(spec: &NetSpec) -> String {
    let [c, h, w] = spec.input;
    let mut s = format!(
        "name {}\ninput {c} {h} {w}\nclasses {}\n\n",
        spec.name, spec.num_classes
    );
    for b in &spec.blocks {
        s.push_str(&print_block(Some(spec), b));
        s.push('\n');
    }
    for l in &spec.layers {
        let _ = writeln!(s, "{}", call_line(Some(spec), l));
        print_body(&mut s, Some(spec), &l.body, 1);
    }
    s
}
