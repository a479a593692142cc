//! Error types: [`SpecError`] (a spec that does not type-check) and [`ParseError`] (a spec file
//! that does not parse or check, with `line:column`).

use std::fmt;

/// A spec that is not well formed: a bad argument, a shape mismatch, an overflow. Names the layer
/// (index and what it calls) and, when the problem lies inside it, the path of the part
/// (`l4.b0.conv1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// `(index, kind)` of the offending top-level layer, or `None` for spec-level problems (bad
    /// name, bad input shape).
    pub layer: Option<(usize, String)>,
    /// The path of the part of the layer where the problem is, when it is not the layer itself.
    pub path: Option<String>,
    /// `(line, column)` in the spec file of the innermost statement involved, when the spec was read
    /// from a file (a statement of the file's own blocks rather than the layer's line, where the
    /// problem lies there).
    pub pos: Option<(usize, usize)>,
    /// What is wrong and, where possible, what to change.
    pub message: String,
}

impl SpecError {
    pub(crate) fn spec(message: impl Into<String>) -> Self {
        SpecError {
            layer: None,
            path: None,
            pos: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((i, kind)) = &self.layer {
            write!(f, "layer {i} ({kind}): ")?;
        }
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// An error in a spec file, at a 1-based `line` and `col` (counted in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for ParseError {}
