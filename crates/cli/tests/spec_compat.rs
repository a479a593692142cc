//! The spec language stays compatible with what netspec wrote before: a checkpoint written by an
//! older netspec (before blocks were defined in the language; `tests/fixtures/every-block.ns` calls
//! every composite block of the zoo) loads by parameter name, its spec hash still matches, and it
//! evaluates to exactly what that netspec printed. Needs the CPU plugin and Fashion-MNIST.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
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
