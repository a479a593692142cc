//! The crate's error type: what we were doing, plus the plugin's own message where there is one.

use std::fmt;

/// What went wrong, coarsely, so that callers can react (e.g. fall back to CPU when no GPU plugin exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No plugin file where we looked.
    PluginNotFound,
    /// The file exists but is not a usable PJRT plugin (dlopen failed, no `GetPjrtApi`, init failed).
    PluginLoad,
    /// The plugin's PJRT API version or function table is too old or of another major version.
    Version,
    /// Rejected in Rust before reaching the plugin: argument count, shape, dtype, data length.
    InvalidArgument,
    /// The plugin returned an error (compile errors, runtime errors, "No visible GPU devices", ...).
    Plugin,
    /// A self-check ([`crate::selftest`]) computed a wrong result.
    SelfTest,
}

/// A PJRT error: `context` says what netspec was doing, `message` what went wrong.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    context: String,
    message: String,
    /// The plugin's `PJRT_Error_Code` (absl status code), for `ErrorKind::Plugin`.
    code: Option<i32>,
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        context: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error {
            kind,
            context: context.into(),
            message: message.into(),
            code: None,
        }
    }

    pub(crate) fn plugin(context: impl Into<String>, message: String, code: Option<i32>) -> Error {
        Error {
            kind: ErrorKind::Plugin,
            context: context.into(),
            message,
            code,
        }
    }

    pub(crate) fn invalid(context: impl Into<String>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, context, message)
    }

    /// The same error with another message (kind, context and code kept).
    pub(crate) fn with_message(mut self, message: String) -> Error {
        self.message = message;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What netspec was doing, e.g. "compiling StableHLO module".
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The underlying message (the plugin's text for `ErrorKind::Plugin`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The plugin's status code name (e.g. "INVALID_ARGUMENT"), when the plugin reported one.
    pub fn code_name(&self) -> Option<&'static str> {
        self.code.map(code_name)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.context)?;
        if let Some(name) = self.code_name() {
            write!(f, "[{name}] ")?;
        }
        write!(f, "{}", self.message.trim_end())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Names of `PJRT_Error_Code` values (the absl status codes).
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}
