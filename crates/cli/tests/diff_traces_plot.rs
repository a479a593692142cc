//! `netspec diff-traces` exit statuses and `netspec plot` output, through the real binary.

use std::path::PathBuf;
use std::process::Command;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netspec-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn trace(losses: &[f64]) -> String {
    let mut s = String::from(concat!(
        "{\"kind\":\"header\",\"phase\":\"phase3\",\"netspec_name\":\"m\",\"netspec_hash\":\"h\",",
        "\"config\":{\"lr\":0.1},\"total_params\":10,\"dataset\":\"fashion-mnist\",\"emitter_version\":\"1\"}\n"
    ));
    for (i, l) in losses.iter().enumerate() {
        s.push_str(&format!(
            "{{\"kind\":\"step\",\"step\":{},\"epoch\":0,\"loss\":{l},\"lr\":0.1}}\n",
            i + 1
        ));
    }
    s.push_str("{\"kind\":\"epoch\",\"epoch\":0,\"test_acc\":0.84}\n");
    s
}

fn netspec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netspec"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn diff_traces_exit_statuses() {
    let d = dir("diff");
    let (a, b, c) = (d.join("a.jsonl"), d.join("b.jsonl"), d.join("c.jsonl"));
    std::fs::write(&a, trace(&[2.3, 1.9, 1.5])).unwrap();
    std::fs::write(&b, trace(&[2.3, 1.9, 1.5])).unwrap();
    std::fs::write(&c, trace(&[2.3, 1.95, 1.5])).unwrap();
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();

    let (code, out, _) = netspec(&["diff-traces", &s(&a), &s(&b)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("traces agree"), "{out}");

    let (code, out, _) = netspec(&["diff-traces", &s(&a), &s(&c), "--mode", "cross-gpu"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("step 2: loss A=1.9 B=1.95"), "{out}");

    let (code, out, _) = netspec(&["diff-traces", &s(&a), &s(&c), "--mode=cross-comp"]);
    assert_eq!(code, 0, "{out}");

    let (code, _, err) = netspec(&["diff-traces", &s(&a), &s(&d.join("missing.jsonl"))]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.jsonl"), "{err}");
    std::fs::write(&c, "not json\n").unwrap();
    let (code, _, err) = netspec(&["diff-traces", &s(&c), &s(&a)]);
    assert_eq!(code, 2);
    assert!(err.contains("c.jsonl:1: not JSON"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn plot_writes_png_and_svg() {
    let d = dir("plot");
    let t = d.join("t.jsonl");
    std::fs::write(&t, trace(&[2.3, 1.9, 1.5, 1.2, 1.0])).unwrap();
    for name in ["c.png", "c.svg"] {
        let out = d.join(name);
        let (code, stdout, err) =
            netspec(&["plot", t.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(stdout.contains("5 steps, 1 epoch lines"), "{stdout}");
        let bytes = std::fs::read(&out).unwrap();
        if name.ends_with("png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            assert!(bytes.starts_with(b"<svg"));
        }
    }
    let (code, _, err) = netspec(&[
        "plot",
        t.to_str().unwrap(),
        "-o",
        d.join("c.gif").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains(".svg or .png"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
