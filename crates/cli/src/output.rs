//! Writing to stdout and stderr without panicking.
//!
//! `print!` panics when stdout is a pipe whose reader has gone (`netspec zoo | head -1`: Rust ignores
//! SIGPIPE, so the write fails with `EPIPE`), and `eprint!` does the same on stderr. Every line the
//! binary writes goes through these macros instead:
//! - [`out!`] / [`outln!`] (stdout, a command's result): a closed stdout ends the process quietly
//!   with status 141 = 128 + SIGPIPE, what a shell reports for a C program that the signal ended
//!   (`yes | head -1` leaves 141 in `PIPESTATUS`); any other write error ends it with status 1 and
//!   the error on stderr;
//! - [`note!`] (stderr, progress and diagnostics): errors are ignored, nothing else can be done.
//!
//! A training run's epoch lines are written without either exit (see `cmd::train`): a closed stdout
//! must not stop a run before it saves.

use std::io::Write;

/// The exit status of a command whose stdout was closed under it.
pub const CLOSED_STDOUT_STATUS: i32 = 141;

/// Writes `args` to stdout, ending the process as the module doc says if that fails.
pub fn stdout(args: std::fmt::Arguments<'_>) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        exit_on_stdout_error(&e);
    }
}

/// Ends the process after a failed write to stdout: quietly (status 141) when the reader is gone.
pub fn exit_on_stdout_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(CLOSED_STDOUT_STATUS);
    }
    stderr(format_args!("error: writing to stdout: {e}\n"));
    std::process::exit(1)
}

/// Writes `args` to stderr, ignoring a failure.
pub fn stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that ends the process quietly (status 141) when stdout is closed.
macro_rules! out {
    ($($t:tt)*) => { $crate::output::stdout(format_args!($($t)*)) };
}

/// `println!` that ends the process quietly (status 141) when stdout is closed.
macro_rules! outln {
    () => { $crate::output::stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::output::stdout(format_args!("{}\n", format_args!($($t)*))) };
}

/// `eprintln!` that ignores a closed stderr instead of panicking.
macro_rules! note {
    ($($t:tt)*) => { $crate::output::stderr(format_args!("{}\n", format_args!($($t)*))) };
}
