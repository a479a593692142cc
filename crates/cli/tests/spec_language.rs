//! The spec language through the real binary. It stays compatible with what netspec wrote before: a
//! checkpoint written by an older netspec (before blocks were defined in the language;
//! `tests/fixtures/every-block.ns` calls every composite block of the zoo) loads by parameter name,
//! its spec hash still matches, and it evaluates to exactly what that netspec printed. A block
//! defined in a spec file trains. `netspec layers` lists the language. Needs the CPU plugin and
//! Fashion-MNIST.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    p.to_str().unwrap().to_string()
}

fn netspec(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netspec"))
        .args(args)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_checkpoint_written_before_the_spec_language_evaluates_the_same() {
    let spec = fixture("every-block.ns");
    let ckpt = fixture("every-block.safetensors");
    let (code, out) = netspec(&["eval", &spec, "--checkpoint", &ckpt]);
    assert_eq!(code, 0, "{out}");
    // What `netspec eval` printed at commit eed4d94 for the same files.
    assert!(
        out.contains("fashion-mnist test split, loss 2.2645, accuracy 17.88% (1788/10000)"),
        "{out}"
    );
}

#[test]
fn a_block_defined_in_a_spec_file_trains() {
    let dir = std::env::temp_dir().join(format!("netspec-user-block-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.jsonl");
    let (code, out) = netspec(&[
        "train",
        &fixture("user-block.ns"),
        "--dataset",
        "fashion-mnist",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--schedule",
        "constant",
        "--warmup-epochs",
        "0",
        "--batch-size",
        "64",
        "--max-steps",
        "60",
        "--trace",
        trace.to_str().unwrap(),
        "--checkpoint-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let losses: Vec<f64> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "step")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(losses.len(), 60);
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[50..].iter().sum::<f64>() / 10.0;
    eprintln!("user-block: mean loss of steps 1-10 {first:.3}, of steps 51-60 {last:.3}");
    assert!(
        last < 0.7 * first,
        "the loss did not fall: {first:.3} -> {last:.3}"
    );
}

#[test]
fn layers_lists_the_language_from_its_tables() {
    let (code, out) = netspec(&["layers"]);
    assert_eq!(code, 0, "{out}");
    for c in spec::CORE {
        assert!(
            out.contains(&format!("\n  {} ", c.name)) || out.contains(&format!("\n  {}\n", c.name)),
            "{}",
            c.name
        );
    }
    for b in spec::prelude::blocks() {
        assert!(out.contains(&format!("\n  {} ", b.name)), "{}", b.name);
    }
    assert!(
        out.contains(
            "conv2d out:int kernel:int stride=1 pad:int0=auto groups=1 bias=true act=identity [in]"
        ),
        "{out}"
    );
    let (code, out) = netspec(&["layers", "convnextBlock"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("block convnextBlock dim:int drop:rate=0.0 scaleInit=1e-6"),
        "{out}"
    );
    let (code, out) = netspec(&["layers", "convBnn"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("no layer, combinator or prelude block `convBnn`"),
        "{out}"
    );
}
