//! The parameter ABI of every zoo model, pinned: the canonical spec text (its SHA-256 is the
//! checkpoint's `spec_hash`, so it must not change for old checkpoints to resume and evaluate), then
//! every parameter (name, shape, init, weight decay) and every BN buffer in ABI order (= checkpoint
//! order and names). One file per model in `tests/golden/abi/`; `UPDATE_EXPECT=1` rewrites them
//! (an intended change of the ABI must show up in review as a diff of these files).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/abi")
}

fn init(i: spec::Init) -> String {
    match i {
        spec::Init::HeNormal { fan_in } => format!("he(fan_in={fan_in})"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn abi_text(name: &str) -> String {
    let spec = spec::zoo::get(name).unwrap();
    let mut s = String::from("# spec::print\n");
    s.push_str(&spec::print(&spec));
    s.push_str("# parameters: name shape init [decay]\n");
    for p in spec::params(&spec).unwrap() {
        let decay = if p.decay { " decay" } else { "" };
        let _ = writeln!(s, "{} {:?} {}{decay}", p.name, p.shape, init(p.init));
    }
    s.push_str("# BN buffers: name shape init\n");
    for b in spec::buffers(&spec).unwrap() {
        let _ = writeln!(s, "{} {:?} {}", b.name, b.shape, init(b.init));
    }
    s
}

#[test]
fn every_zoo_model_keeps_its_parameter_abi() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    std::fs::create_dir_all(golden_dir()).unwrap();
    let mut differ = Vec::new();
    for name in spec::zoo::names() {
        let got = abi_text(name);
        let path = golden_dir().join(format!("{name}.txt"));
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let Ok(want) = std::fs::read_to_string(&path) else {
            differ.push(format!(
                "{name}: no {} (UPDATE_EXPECT=1 writes it)",
                path.display()
            ));
            continue;
        };
        if want != got {
            let line = want
                .lines()
                .zip(got.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(want.lines().count().min(got.lines().count()));
            differ.push(format!(
                "{name}: first difference at line {}:\n  want: {}\n  got:  {}",
                line + 1,
                want.lines().nth(line).unwrap_or("<end>"),
                got.lines().nth(line).unwrap_or("<end>")
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
