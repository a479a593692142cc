//! The interpreter's error: which node (and op) could not be evaluated, and why.

use std::fmt;

/// An error while evaluating a graph: a bad argument, or an operation outside what the interpreter
/// evaluates (named with the node and its op).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The node being evaluated, if any.
    pub node: Option<usize>,
    pub op: String,
    pub message: String,
}

impl Error {
    pub(crate) fn new(op: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            node: None,
            op: op.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            Some(n) => write!(f, "interp: node %{n} ({}): {}", self.op, self.message),
            None => write!(f, "interp: {}: {}", self.op, self.message),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with the interpreter's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

macro_rules! bail {
    ($op:expr, $($fmt:tt)*) => {
        return Err($crate::error::Error::new($op, format!($($fmt)*)))
    };
}
pub(crate) use bail;
