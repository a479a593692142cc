//! The error type of `nn`: a spec that does not check, a graph builder that refused an op (a bug in the
//! lowering, reported rather than panicking), or a step configuration that makes no sense.

use std::fmt;

/// Why a program could not be built.
#[derive(Debug)]
pub enum Error {
    /// The spec failed shape checking (the message names the layer).
    Spec(spec::SpecError),
    /// A graph builder rejected an op; `context` says which layer/program was being lowered.
    Graph {
        context: String,
        source: graph::Error,
    },
    /// A bad step configuration (`spec::RunConfig::check_step`) or argument (batch size 0, label smoothing outside [0, 1), …).
    Config(String),
    /// The lowering and `spec::params`/`spec::buffers` disagree (a parameter unused or used twice).
    Abi(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spec(e) => write!(f, "{e}"),
            Error::Graph { context, source } => write!(f, "{context}: {source}"),
            Error::Config(m) => write!(f, "bad step configuration: {m}"),
            Error::Abi(m) => write!(f, "lowering does not match the parameter ABI: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spec(e) => Some(e),
            Error::Graph { source, .. } => Some(source),
            Error::Config(_) | Error::Abi(_) => None,
        }
    }
}

impl From<spec::SpecError> for Error {
    fn from(e: spec::SpecError) -> Error {
        Error::Spec(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds a context string to graph errors.
pub(crate) trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for graph::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Graph {
            context: context(),
            source,
        })
    }
}
