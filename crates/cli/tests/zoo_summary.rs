//! `netspec zoo` and `netspec summary`, through the real binary.

use std::process::Command;

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
fn zoo_lists_every_model_with_its_parameter_count() {
    let (code, out, err) = netspec(&["zoo"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1 + spec::zoo::names().len());
    let r34 = out.lines().find(|l| l.starts_with("resnet34 ")).unwrap();
    assert!(
        r34.contains("3×224×224") && r34.contains("21,289,802"),
        "{r34}"
    );
}

#[test]
fn zoo_model_prints_a_spec_that_summary_reads_back() {
    let (code, text, err) = netspec(&["zoo", "efficientnet-b0"]);
    assert_eq!(code, 0, "{err}");
    let path = std::env::temp_dir().join(format!("netspec-zoo-{}.ns", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let (code, out, err) = netspec(&["summary", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().last(), Some("total params: 4020358"));
    let (code, _, err) = netspec(&["zoo", "resnet-1000"]);
    assert_eq!(code, 1);
    assert!(err.contains("no zoo model `resnet-1000`"), "{err}");
}

#[test]
fn summary_of_a_zoo_model_ends_with_the_total() {
    let (code, out, err) = netspec(&["summary", "mnist-mlp"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().last(), Some("total params: 669706"));
    assert!(out.contains("dense 512 act=relu"), "{out}");
}

#[test]
fn summary_reports_file_errors_at_line_and_column() {
    let path = std::env::temp_dir().join(format!("netspec-bad-{}.ns", std::process::id()));
    std::fs::write(
        &path,
        "name t\ninput 1 28 28\nclasses 10\nconvBn 8 kernel=3\ndense 10\n",
    )
    .unwrap();
    let (code, out, err) = netspec(&["summary", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 1, "{out}");
    let want = format!(
        "error: {}:5:1: layer 1 (dense): expects a flat [B, N] input",
        path.display()
    );
    assert!(err.starts_with(&want), "{err}");
    assert!(err.contains("insert `flatten`"), "{err}");
    let (code, _, err) = netspec(&["summary", "no-such-model-or-file"]);
    assert_eq!(code, 1);
    assert!(err.contains("neither a zoo model"), "{err}");
}

#[test]
fn summary_counts_trainable_and_non_trainable_and_estimates_training_memory() {
    let (code, out, err) = netspec(&[
        "summary",
        "resnet18",
        "--batch-size",
        "8",
        "--optimizer",
        "momentum",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().last(), Some("total params: 11181642"));
    // 20 BN layers' running mean and variance: 2 x 4,800 channels.
    assert!(
        out.contains("trainable params: 11,181,642 (44.73 MB); non-trainable params: 9,600"),
        "{out}"
    );
    assert!(
        out.contains("at batch 8 (f32, momentum: 1 moment(s) per parameter)"),
        "{out}"
    );
    let row = |name: &str| -> String {
        out.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in {out}"))
            .to_string()
    };
    assert!(row("parameters").contains("44.73 MB"), "{out}");
    assert!(row("optimizer state").contains("44.73 MB"), "{out}");
    // Activations grow with the batch.
    let (_, out16, _) = netspec(&[
        "summary",
        "resnet18",
        "--batch-size",
        "16",
        "--optimizer",
        "momentum",
    ]);
    let act = |o: &str| -> f64 {
        let l = o
            .lines()
            .find(|l| l.trim_start().starts_with("activations"))
            .unwrap();
        let v: Vec<&str> = l.split_whitespace().collect();
        let scale = match v[2] {
            "GB" => 1e9,
            "MB" => 1e6,
            "kB" => 1e3,
            _ => 1.0,
        };
        v[1].parse::<f64>().unwrap() * scale
    };
    let (a8, a16) = (act(&out), act(&out16));
    // Not exactly twice: transposed kernels and per-channel values do not grow with the batch.
    assert!(
        (a16 / a8 - 2.0).abs() < 0.1,
        "activations at 8: {a8}, at 16: {a16}"
    );
}
