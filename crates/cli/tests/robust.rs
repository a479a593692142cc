//! The binary never panics and fails early: a closed stdout, bad input files (the corpus in
//! `tests/bad_inputs/`, each case's exact message pinned), signals (SIGTERM, repeated interrupts)
//! and temporary files left by a killed save.

use std::process::{Command, Stdio};

/// A command whose stdout is a pipe nobody reads (the reader closed it before the first write) ends
/// quietly with status 141, as `netspec zoo | head -1` does once `head` has left.
#[test]
fn closed_stdout_ends_quietly_with_status_141() {
    for args in [&["zoo"][..], &["zoo", "mnist-mlp"], &["summary", "mnist-mlp"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_netspec"))
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}");
    }
}
