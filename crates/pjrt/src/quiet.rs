//! Keeps the plugin's start-up chatter off the user's terminal.
//!
//! XLA logs through absl, which writes every message to stderr until the host program calls
//! `absl::InitializeLog()`; netspec cannot (the plugin does not export it). Creating a CPU client
//! with `cpu_device_count` therefore prints two lines on every run:
//!
//! ```text
//! WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
//! I0000 00:00:1796217049.266023   23383 pjrt_c_api_cpu_internal.cc:74] cpu_device_count set via create_options: 1
//! ```
//!
//! [`filter_stderr`] runs a call with file descriptor 2 pointed at an anonymous file and then writes
//! back what was printed, less absl's informational lines (`I` + `MMDD`) and, when nothing else is
//! left, absl's preamble. Warnings and errors are kept, in order, with the preamble before them.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd};

const PREAMBLE: &str = "WARNING: All log messages before absl::InitializeLog() is called";

/// Whether `line` is an absl informational log line (`I1202 13:01:21.123456  4242 file.cc:12] …`).
fn is_absl_info(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 6 && b[0] == b'I' && b[1..5].iter().all(u8::is_ascii_digit) && b[5] == b' '
}

/// What is written back of `captured`: every line but absl's informational ones, and absl's
/// preamble only when some other line is kept.
fn kept(captured: &str) -> String {
    let lines: Vec<&str> = captured
        .split_inclusive('\n')
        .filter(|l| !is_absl_info(l))
        .collect();
    if lines.iter().all(|l| l.starts_with(PREAMBLE)) {
        return String::new();
    }
    lines.concat()
}

/// Runs `f` with stderr captured, then writes back what [`kept`] keeps. When stderr cannot be
/// redirected (no `memfd_create`, no free descriptor), `f` simply runs with stderr as it is.
pub(crate) fn filter_stderr<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain descriptor calls; every descriptor opened here is owned and closed below, and fd 2
    // is restored before returning.
    unsafe {
        let mem = libc::memfd_create(c"netspec-stderr".as_ptr(), libc::MFD_CLOEXEC);
        if mem < 0 {
            return f();
        }
        let mem = OwnedFd::from_raw_fd(mem);
        let saved = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
        if saved < 0 {
            return f();
        }
        let saved = OwnedFd::from_raw_fd(saved);
        use std::os::fd::AsRawFd;
        if libc::dup2(mem.as_raw_fd(), 2) < 0 {
            return f();
        }
        let out = f();
        libc::dup2(saved.as_raw_fd(), 2);
        let mut file = std::fs::File::from(mem);
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() {
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        let keep = kept(&text);
        if !keep.is_empty() {
            let _ = std::io::stderr().write_all(keep.as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_info_lines_and_a_lone_preamble() {
        let noise = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n\
                     I0000 00:00:1796217049.266023   23383 pjrt_c_api_cpu_internal.cc:74] cpu_device_count set via create_options: 1\n";
        assert_eq!(kept(noise), "");
        let warn = format!("{noise}W1202 13:01:21.1 1 x.cc:3] something odd\nplain text\n");
        assert_eq!(
            kept(&warn),
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n\
             W1202 13:01:21.1 1 x.cc:3] something odd\nplain text\n"
        );
        assert_eq!(
            kept("Important: I1234 is not a log line\n"),
            "Important: I1234 is not a log line\n"
        );
        assert_eq!(kept("I12 short\n"), "I12 short\n");
    }
}
