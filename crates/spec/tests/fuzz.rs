//! Fuzzing the spec parser with proptest: random bytes and mutated zoo specs. Properties: no
//! panic; every error carries a `line:column` inside the file; every accepted spec survives
//! `print` → `parse` unchanged and can be analysed and summarised.
//!
//! Bounded: `FUZZ_CASES` cases per property (default 20,000), so it runs in the normal test suite.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Inputs accepted by `parse_checked` so far (all tests in this file share it; each test
/// reports its own count from differences, run single-threaded figures via `--test-threads 1`).
static ACCEPTED: AtomicUsize = AtomicUsize::new(0);

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

fn zoo_texts() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../zoo");
    spec::zoo::names()
        .iter()
        .map(|n| std::fs::read(dir.join(format!("{n}.ns"))).expect("zoo file"))
        .collect()
}

/// Fragments that tend to reach interesting parser and checker states.
const FRAGMENTS: &[&str] = &[
    "=",
    "-1",
    "0",
    "1",
    "2",
    "7",
    "99999999999999999999999",
    "16777216",
    "16777217",
    "kernel=",
    "stride=0",
    "stride=2",
    "pad=9",
    "in=3",
    "in=64",
    "#",
    "\n",
    " ",
    "\t",
    "\r",
    "é",
    "\u{7}",
    "blocks=1024",
    "expand=16777216",
    "transformer heads=7 mlp=1",
    "patchEmbed 16 patch=2",
    "act=gelu",
    "se=true",
    "1.5",
    "0.25",
    "name",
    "name x",
    "input 3 1 1",
    "input 1 28 28",
    "classes 0",
    "classes 10",
    "maxPool 3",
    "avgPool 7",
    "globalAvgPool",
    "flatten",
    "dense 10",
    "dense",
    "convBn 8 kernel=3",
    "uib 8 expand=2 start=3 stride=2",
    "fire 4 expand1=4 expand3=4",
    "layerNorm",
    "batchNorm",
    "instanceNorm",
    "dropout 0.5",
    "act swish",
    "mbConvV3 16 expanded=32 kernel=5 se=true",
    // the block language
    "block b w:int",
    "block c * w:int k=3",
    "  conv2d w kernel=3",
    "  c: convBn w kernel=k if w > 2",
    "  let h = w // 2",
    "  require w % 2 == 0 \"odd {w}\"",
    "    ",
    "\t",
    "b 8",
    "c w=4",
    "repeat 3",
    "add stride=2",
    "parallel concat",
    "parallel mul",
    "seq",
    "  identity",
    "  globalAvgPool keep=true",
    "(i + 1)",
    "max(1, in // 4)",
    "if i == 0 else",
    "convnextBlock 8 drop=0.1",
    "dropPath 0.5",
    "scale 1e-6",
    "act geluErf",
    "toTokens",
    "clsPool",
];

#[derive(Clone, Debug)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, frag: usize },
    Byte { at: usize, byte: u8 },
    DupLine { line: usize },
    Truncate { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..12).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..FRAGMENTS.len()).prop_map(|(at, frag)| Edit::Insert { at, frag }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Byte { at, byte }),
        any::<usize>().prop_map(|line| Edit::DupLine { line }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ]
}

fn apply(mut t: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = t.len().max(1);
        match *e {
            Edit::Delete { at, len } => {
                let a = at % n;
                let b = (a + len).min(t.len());
                if a < b {
                    t.drain(a..b);
                }
            }
            Edit::Insert { at, frag } => {
                let a = (at % (t.len() + 1)).min(t.len());
                t.splice(a..a, FRAGMENTS[frag].bytes());
            }
            Edit::Byte { at, byte } => {
                if !t.is_empty() {
                    let a = at % t.len();
                    t[a] = byte;
                }
            }
            Edit::DupLine { line } => {
                let lines: Vec<&[u8]> = t.split(|&b| b == b'\n').collect();
                let i = line % lines.len();
                let mut out = Vec::new();
                for (j, l) in lines.iter().enumerate() {
                    out.extend_from_slice(l);
                    out.push(b'\n');
                    if j == i {
                        out.extend_from_slice(l);
                        out.push(b'\n');
                    }
                }
                t = out;
            }
            Edit::Truncate { at } => t.truncate(at % n),
        }
    }
    t
}

/// The properties every input must satisfy.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match spec::parse_checked(bytes) {
        Err(e) => {
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.split('\n').collect();
            prop_assert!(
                e.line >= 1 && e.line <= lines.len(),
                "line {} of {}: {e}",
                e.line,
                lines.len()
            );
            let len = lines[e.line - 1].chars().count();
            prop_assert!(
                e.col >= 1 && e.col <= len + 1,
                "col {} of {len}: {e}",
                e.col
            );
            prop_assert!(!e.message.is_empty());
        }
        Ok(s) => {
            ACCEPTED.fetch_add(1, Ordering::Relaxed);
            let again = spec::parse(spec::print(&s).as_bytes());
            prop_assert_eq!(again.as_ref(), Ok(&s));
            let info = spec::analyze(&s);
            prop_assert!(
                info.is_ok(),
                "parse_checked accepted but analyze failed: {:?}",
                info
            );
            prop_assert!(spec::summary(&s).is_ok());
        }
    }
    // The unchecked parser must not panic either, nor must the checker on what it returns.
    if let Ok(s) = spec::parse(bytes) {
        let _ = spec::params(&s);
    }
    Ok(())
}

fn run<S: Strategy>(name: &str, strategy: S, f: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let n = cases();
    let start = std::time::Instant::now();
    let before = ACCEPTED.load(Ordering::Relaxed);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, f) {
        panic!("{name}: {e}");
    }
    // Shown with `cargo test -- --nocapture`; the report quotes these figures.
    let accepted = ACCEPTED.load(Ordering::Relaxed) - before;
    println!(
        "fuzz {name}: {n} cases in {:.2} s ({accepted} accepted specs)",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzz_random_bytes() {
    run(
        "random bytes",
        proptest::collection::vec(any::<u8>(), 0..300),
        |bytes| check(&bytes),
    );
}

#[test]
fn fuzz_random_token_soup() {
    // Lines made of valid-looking fragments reach deeper than raw bytes.
    let line = proptest::collection::vec(0..FRAGMENTS.len(), 0..3);
    run(
        "token soup",
        (proptest::collection::vec(line, 0..8), any::<bool>()),
        |(lines, tail)| {
            let mut text = String::from("name f\ninput 3 32 32\nclasses 10\n");
            for l in lines {
                let words: Vec<&str> = l.into_iter().map(|i| FRAGMENTS[i]).collect();
                text.push_str(&words.join(" "));
                text.push('\n');
            }
            if tail {
                text.push_str("globalAvgPool\ndense 10\n");
            }
            check(text.as_bytes())
        },
    );
}

#[test]
fn fuzz_mutated_zoo_specs() {
    let texts = zoo_texts();
    let k = texts.len();
    run(
        "mutated zoo specs",
        (0..k, proptest::collection::vec(edit(), 1..5)),
        |(i, edits)| check(&apply(texts[i].clone(), &edits)),
    );
}

#[test]
fn unmutated_zoo_specs_pass_the_properties() {
    for t in zoo_texts() {
        check(&t).unwrap();
        assert!(spec::parse_checked(&t).is_ok());
    }
}
