//! The crate's error type: every variant names what went wrong and where.

use std::path::{Path, PathBuf};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a file operation.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },

    /// A file whose bytes do not follow its format. `offset` is the byte offset in the file (for a
    /// gzip file: in the decompressed stream, and `msg` says so).
    #[error("{}: at byte {offset}: {msg}", path.display())]
    Format {
        path: PathBuf,
        offset: u64,
        msg: String,
    },

    /// A data file (an image, an array file, a folder) that cannot be used as it is; `msg` says why
    /// and what to change.
    #[error("{}: {msg}", path.display())]
    Data { path: PathBuf, msg: String },

    /// A trace line that cannot be understood (`line` is 1-based).
    #[error("{}:{line}: {msg}", path.display())]
    Trace {
        path: PathBuf,
        line: usize,
        msg: String,
    },

    /// A bad argument or configuration (batch size 0, a crop larger than the image, …).
    #[error("{0}")]
    Invalid(String),

    /// A batch producer thread failed outside the hook (it panicked or stopped early).
    #[error("batch producer: {0}")]
    Producer(String),

    /// The PJRT runtime failed while doing `what` (compiling, uploading, running a step, …).
    #[error("{what}: {err}")]
    Device { what: String, err: pjrt::Error },

    /// The training loss became NaN or infinite; no state from that step was saved. `checkpoint`
    /// is the last one this run wrote, or the one it resumed from: never another run's file.
    #[error("training diverged at step {step}: the loss is {loss}; no state from this step was saved{}",
        match checkpoint { Some(p) => format!(" (the last good checkpoint is {})", p.display()), None => " (this run wrote no checkpoint)".into() })]
    NonFinite {
        step: u64,
        loss: f32,
        checkpoint: Option<PathBuf>,
    },

    /// Training was interrupted (Ctrl-C) after finishing step `step`.
    #[error("interrupted after step {step}; {}",
        match checkpoint { Some(p) => format!("saved {} (continue with --resume {})", p.display(), p.display()), None => "nothing was saved".into() })]
    Interrupted {
        step: u64,
        checkpoint: Option<PathBuf>,
    },

    /// An error from outside this crate, e.g. from a batch hook that uploads to a device.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub(crate) fn io(path: &Path, err: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            err,
        }
    }

    pub(crate) fn format(path: &Path, offset: u64, msg: impl Into<String>) -> Error {
        Error::Format {
            path: path.to_path_buf(),
            offset,
            msg: msg.into(),
        }
    }

    pub(crate) fn data(path: &Path, msg: impl Into<String>) -> Error {
        Error::Data {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    /// A PJRT error with what was being done.
    pub fn device(what: impl Into<String>, err: pjrt::Error) -> Error {
        Error::Device {
            what: what.into(),
            err,
        }
    }

    /// Wraps any error (for hooks whose own error type is not this crate's).
    pub fn external(err: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::External(Box::new(err))
    }
}
