//! Error types: [`SpecError`] (a spec that does not type-check) and [`ParseError`] (a spec file
//! that does not parse, with `line:column`).

use std::fmt;

/// A spec that is not well formed: a bad field, a shape mismatch, an overflow. Names the layer
/// (index and kind) when the problem belongs to one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// `(index, kind)` of the offending layer, or `None` for spec-level problems (empty spec,
    /// bad input shape, wrong final shape not attributable to a layer).
    pub layer: Option<(usize, &'static str)>,
    /// What is wrong and, where possible, what to change.
    pub message: String,
}

impl SpecError {
    pub(crate) fn spec(message: impl Into<String>) -> Self {
        SpecError {
            layer: None,
            message: message.into(),
        }
    }
    pub(crate) fn at(index: usize, kind: &'static str, message: impl Into<String>) -> Self {
        SpecError {
            layer: Some((index, kind)),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layer {
            Some((i, kind)) => write!(f, "layer {i} ({kind}): {}", self.message),
            None => f.write_str(&self.message),
        }
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
