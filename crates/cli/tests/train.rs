//! `netspec train` / `netspec eval` through the real binary: a run killed with SIGINT saves a
//! checkpoint and exits non-zero; `--resume` then writes exactly the rest of the uninterrupted trace;
//! `netspec eval` reproduces the final test accuracy; bad input gives clear errors.
//!
//! Needs the PJRT CPU plugin and Fashion-MNIST (scripts/setup.sh plugin data).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use train::data::{self, DatasetKind, Split};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netspec-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The first `n_train` / `n_test` Fashion-MNIST images as plain IDX files in `dir`.
fn subset(dir: &Path, n_train: usize, n_test: usize) {
    let src = DatasetKind::FashionMnist.default_dir().unwrap();
    for (split, prefix, n) in [
        (Split::Train, "train", n_train),
        (Split::Test, "t10k", n_test),
    ] {
        let ds = data::load(&src, DatasetKind::FashionMnist, split)
            .expect("Fashion-MNIST (scripts/setup/data.sh)");
        let mut img = Vec::new();
        for v in [2051u32, n as u32, ds.h as u32, ds.w as u32] {
            img.extend_from_slice(&v.to_be_bytes());
        }
        img.extend_from_slice(&ds.images[..n * ds.image_len()]);
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
        let mut lab = Vec::new();
        for v in [2049u32, n as u32] {
            lab.extend_from_slice(&v.to_be_bytes());
        }
        lab.extend_from_slice(&ds.labels[..n]);
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
    }
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

fn step_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| l.contains("\"kind\":\"step\""))
                .count()
        })
        .unwrap_or(0)
}

/// Trace lines without the wall-clock field.
fn lines_without_wall(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("wall_ms");
            v
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sigint_saves_and_resume_continues_the_same_run() {
    let d = dir("train-sigint");
    subset(&d, 3000, 500);
    // 30 steps per epoch; every run stops at step 120 (4 epochs of the 20-epoch schedule).
    let common = [
        "train",
        "mnist-mlp",
        "--data",
        s(&d),
        "--batch-size",
        "100",
        "--epochs",
        "20",
        "--max-steps",
        "120",
    ];

    let full = d.join("full.jsonl");
    let ck_full = d.join("ck-full");
    let mut args = common.to_vec();
    args.extend(["--trace", s(&full), "--checkpoint-dir", s(&ck_full)]);
    let (code, out, err) = netspec(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("test accuracy: ") && last.contains("after 120 steps"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("epoch ")).count(),
        4,
        "{out}"
    );

    // The same run, interrupted by a real SIGINT once it has written a few steps.
    let part = d.join("part.jsonl");
    let ck = d.join("ck");
    let mut args = common.to_vec();
    args.extend(["--trace", s(&part), "--checkpoint-dir", s(&ck)]);
    let child = Command::new(env!("CARGO_BIN_EXE_netspec"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while step_lines(&part) < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no steps written within 300 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the interrupted run must exit non-zero: {err}"
    );
    assert!(
        err.contains("interrupted after step") && err.contains("last.safetensors"),
        "{err}"
    );
    let stopped_at = step_lines(&part);
    assert!(
        stopped_at < 120,
        "the run finished before the interrupt reached it"
    );

    // Resume from the checkpoint directory (no value: the --checkpoint-dir).
    let mut args = common.to_vec();
    args.extend(["--trace", s(&part), "--checkpoint-dir", s(&ck), "--resume"]);
    let (code, out, err) = netspec(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains(&format!("at step {stopped_at}")), "{err}");
    assert_eq!(lines_without_wall(&full), lines_without_wall(&part));

    // A resumed run keeps its configuration.
    let mut args = common.to_vec();
    args.extend(["--checkpoint-dir", s(&ck), "--resume", "--lr", "0.5"]);
    let (code, _, err) = netspec(&args);
    assert_eq!(code, 1);
    assert!(
        err.contains("keeps its configuration") && err.contains("lr"),
        "{err}"
    );

    // netspec eval on the checkpoint gives the final accuracy line's figures.
    let (code, out_eval, err) = netspec(&[
        "eval",
        "mnist-mlp",
        "--checkpoint",
        s(&ck),
        "--data",
        s(&d),
        "--batch-size",
        "128",
    ]);
    assert_eq!(code, 0, "{err}");
    let full_out = std::fs::read_to_string(&full).unwrap();
    let epoch_line = full_out
        .lines()
        .rev()
        .find(|l| l.contains("\"kind\":\"epoch\""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(epoch_line).unwrap();
    let correct = v["test_correct"].as_u64().unwrap();
    assert!(
        out_eval.contains(&format!("({correct}/500)")),
        "{out_eval} vs {epoch_line}"
    );
}

#[test]
fn bad_input_is_reported_clearly() {
    let d = dir("train-bad");
    subset(&d, 500, 100);
    let (code, _, err) = netspec(&[
        "train",
        "cifar-cnn",
        "--data",
        s(&d),
        "--dataset",
        "fashion-mnist",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("does not fit the data"), "{err}");
    let (code, _, err) = netspec(&[
        "train",
        "mnist-mlp",
        "--data",
        s(&d),
        "--optimizer",
        "rmsprop",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown optimizer 'rmsprop'"), "{err}");
    let (code, _, err) = netspec(&["train", "no-such-model"]);
    assert_eq!(code, 1);
    assert!(err.contains("neither a zoo model"), "{err}");
    let (code, _, err) = netspec(&[
        "eval",
        "mnist-mlp",
        "--checkpoint",
        s(&d.join("missing.safetensors")),
        "--data",
        s(&d),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.safetensors"), "{err}");
}
