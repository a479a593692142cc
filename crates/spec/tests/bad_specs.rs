//! The bad-spec corpus: every `tests/bad/<case>.ns` must fail `parse_checked` with exactly the
//! error in `tests/bad/<case>.err` (`line:col: message`). Run with `UPDATE_EXPECT=1` to rewrite
//! the `.err` files after an intended change of wording, then review the diff.

use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad")
}

#[test]
fn every_bad_spec_fails_with_the_expected_error() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ns"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "corpus too small: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let bytes = std::fs::read(case).unwrap();
        let got = match spec::parse_checked(&bytes) {
            Ok(s) => format!("unexpectedly valid: {s:?}"),
            Err(e) => {
                // The position must lie inside the file (or just after its last character).
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<&str> = text.split('\n').collect();
                assert!(
                    e.line >= 1 && e.line <= lines.len(),
                    "{}: line {} of {}",
                    case.display(),
                    e.line,
                    lines.len()
                );
                let len = lines[e.line - 1].chars().count();
                assert!(
                    e.col >= 1 && e.col <= len + 1,
                    "{}: col {} of {len}",
                    case.display(),
                    e.col
                );
                e.to_string()
            }
        };
        let expected_path = case.with_extension("err");
        if update {
            std::fs::write(&expected_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| format!("<missing {}>", expected_path.display()));
        if expected.trim_end() != got {
            failures.push(format!(
                "{}\n  expected: {}\n  got:      {got}",
                case.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_expected_error_has_a_case() {
    for e in std::fs::read_dir(corpus()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "err") {
            assert!(
                p.with_extension("ns").exists(),
                "{} has no .ns",
                p.display()
            );
        }
    }
}
