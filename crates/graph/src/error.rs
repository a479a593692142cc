//! The one error type of the crate: which op (or pass) failed and why.

use std::fmt;

/// An error found while building, differentiating or printing a graph.
///
/// `op` names the primitive or builder (e.g. `dot_general`, `vjp`); `message` gives the shapes involved and,
/// where useful, the StableHLO constraint that is violated (e.g. `dot_general_c13`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub op: String,
    pub message: String,
}

impl Error {
    pub fn new(op: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            op: op.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.message)
    }
}

impl std::error::Error for Error {}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Early-return an [`Error`] for `op` with a formatted message.
macro_rules! bail {
    ($op:expr, $($fmt:tt)*) => {
        return Err($crate::error::Error::new($op, format!($($fmt)*)))
    };
}
pub(crate) use bail;
