//! `netspec bench` through the real binary and the CPU plugin.

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

/// The number after `"key":` in a one-line JSON object (the CLI crate has no JSON parser).
fn number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[test]
fn bench_prints_one_json_line_and_a_table() {
    let (code, out, err) = netspec(&[
        "bench",
        "mnist-mlp",
        "--batch-size",
        "8",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--e2e",
        "--synthetic",
    ]);
    assert_eq!(code, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "stdout: {out}");
    let j = lines[0];
    assert!(j.starts_with('{') && j.ends_with('}'), "{j}");
    assert!(
        j.contains("\"model\":\"mnist-mlp\"") && j.contains("\"optimizer\":\"adamw\""),
        "{j}"
    );
    assert_eq!(number(j, "batch_size"), Some(8.0), "{j}");
    for k in [
        "codegen_ms",
        "compile_s",
        "ms_per_step_median",
        "img_per_s",
        "flops_per_step",
        "gflops",
        "e2e_img_per_s",
    ] {
        assert!(number(j, k).is_some_and(|v| v > 0.0), "{k} in {j}");
    }
    assert!(
        err.contains("XLA compile") && err.contains("GFLOP/s"),
        "{err}"
    );
}

#[test]
fn bench_rejects_bad_arguments() {
    let (code, _, err) = netspec(&[
        "bench",
        "mnist-mlp",
        "--batch-size",
        "8",
        "--optimizer",
        "lamb",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("lamb"), "{err}");
    let (code, _, err) = netspec(&["bench", "no-such-model", "--batch-size", "8"]);
    assert_eq!(code, 1);
    assert!(err.contains("no-such-model"), "{err}");
    let (code, _, err) = netspec(&["bench", "mnist-mlp", "--batch-size", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("--batch-size"), "{err}");
}

#[test]
fn bench_runs_a_dumped_module_and_rejects_a_broken_one() {
    let dir = std::env::temp_dir().join(format!("netspec-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("step.mlir");
    let fs = f.to_str().unwrap();
    let base = [
        "bench",
        "mnist-mlp",
        "--batch-size",
        "4",
        "--steps",
        "1",
        "--warmup",
        "0",
    ];
    let (code, out, err) = netspec(&[&base[..], &["--dump-mlir", fs]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"mlir\":\"generated\""), "{out}");
    assert!(std::fs::read_to_string(&f)
        .unwrap()
        .contains("func.func public @main"));
    let (code, out, err) = netspec(&[&base[..], &["--mlir", fs]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"mlir\":\"file\""), "{out}");
    std::fs::write(&f, "this is not StableHLO").unwrap();
    let (code, _, err) = netspec(&[&base[..], &["--mlir", fs]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("compiling the train step"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_on_two_devices_reports_scaling() {
    let (code, out, err) = netspec(&[
        "bench",
        "mnist-mlp",
        "--batch-size",
        "16",
        "--steps",
        "6",
        "--warmup",
        "1",
        "--devices",
        "2",
    ]);
    assert_eq!(code, 0, "stderr: {err}");
    let j = out.lines().next().unwrap_or_default();
    assert_eq!(number(j, "devices"), Some(2.0), "{j}");
    assert_eq!(number(j, "baseline_batch_size"), Some(8.0), "{j}");
    let total = number(j, "img_per_s").unwrap();
    let per = number(j, "img_per_s_per_device").unwrap();
    let base = number(j, "baseline_img_per_s").unwrap();
    let eff = number(j, "scaling_efficiency").unwrap();
    assert!(total > 0.0 && base > 0.0, "{j}");
    assert!((per - total / 2.0).abs() <= 0.1, "{j}");
    assert!(
        (eff - total / (2.0 * base)).abs() <= 1e-3 * eff.max(1.0) + 1e-3,
        "{j}"
    );
    assert!(
        err.contains("devices: 2 cpu devices")
            && err.contains("scaling efficiency")
            && err.contains("1-device baseline"),
        "{err}"
    );
}

/// `--e2e --data FOLDER` feeds the step from an image folder read as `train --data` reads it: the
/// producers decode, resize and crop on their threads, and the report names the source. A size no
/// transform resolves is the same clear error as in `train`.
#[test]
fn bench_e2e_reads_an_image_folder() {
    let dir = std::env::temp_dir().join(format!("netspec-cli-bench-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("pngs");
    let d = data.to_str().unwrap();
    let (code, _, err) = netspec(&[
        "bench-data",
        d,
        "--generate",
        "40",
        "--format",
        "png",
        "--short-side",
        "28",
        "--batches",
        "1",
        "--batch-size",
        "8",
    ]);
    assert_eq!(code, 0, "stderr: {err}");
    let args = [
        "bench",
        "mnist-mlp",
        "--batch-size",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--e2e",
        "--data",
        d,
    ];
    let (code, _, err) = netspec(&args);
    assert_eq!(
        code, 1,
        "a 28-px shorter side with another long side must not be cropped silently"
    );
    assert!(err.contains("--resize"), "{err}");
    let (code, out, err) = netspec(&[&args[..], &["--resize", "28"]].concat());
    assert_eq!(code, 0, "stderr: {err}");
    assert!(
        number(&out, "e2e_img_per_s").is_some_and(|v| v > 0.0),
        "{out}"
    );
    assert!(err.contains("(files)"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary's block cache (`src/block_cache.rs`) really serves XLA's per-step temp buffer: the
/// interposed `posix_memalign`/`free` are the ones the plugin calls (a linker change that stopped
/// exporting them would show as zero hits), and `NETSPEC_MALLOC=system` turns it off.
#[test]
fn bench_reuses_the_step_temp_buffer_unless_told_not_to() {
    let args = [
        "bench",
        "mnist-cnn",
        "--batch-size",
        "16",
        "--steps",
        "6",
        "--warmup",
        "1",
    ];
    let (code, out, err) = netspec(&args);
    assert_eq!(code, 0, "stderr: {err}");
    // mnist-cnn at batch 16 has a ≈ 17 MB temp buffer (≥ 8 MiB): the later steps reuse the first's. Not
    // always every one: on an Intel Xeon 4 steps gave 2 hits and 2 misses (a second large block was
    // mapped), so the test runs 7 steps and asks for at least 3 hits.
    let hits = number(&out, "hits").unwrap_or(0.0);
    assert!(hits >= 3.0, "block cache hits {hits}: {out}");
    let plain = Command::new(env!("CARGO_BIN_EXE_netspec"))
        .args(args)
        .env("NETSPEC_MALLOC", "system")
        .output()
        .unwrap();
    assert!(plain.status.success());
    let out = String::from_utf8_lossy(&plain.stdout);
    assert_eq!(number(&out, "hits"), Some(0.0), "{out}");
    assert_eq!(number(&out, "misses"), Some(0.0), "{out}");
}

#[test]
fn dense_product_calls_follow_the_instruction_set() {
    // Held to AVX2 kernels (ONEDNN_MAX_CPU_ISA), the step keeps XLA's dots for its dense layers (they
    // measured faster there) but still updates its parameters with the Adam call; unheld, it uses the
    // product calls exactly when the bench JSON says so. Without oneDNN there are no calls at all.
    let dir = std::env::temp_dir().join(format!("netspec-isa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cap in [Some("AVX2"), None] {
        let mlir = dir.join(format!("step-{}.mlir", cap.unwrap_or("none")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netspec"));
        cmd.args([
            "bench",
            "mnist-mlp",
            "--batch-size",
            "8",
            "--steps",
            "2",
            "--warmup",
            "1",
        ])
        .arg("--dump-mlir")
        .arg(&mlir);
        match cap {
            Some(c) => cmd.env("ONEDNN_MAX_CPU_ISA", c),
            None => cmd.env_remove("ONEDNN_MAX_CPU_ISA"),
        };
        let out = cmd.env_remove("NETSPEC_MAX_ISA").output().unwrap();
        let (j, err) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert!(out.status.success(), "stderr: {err}");
        let text = std::fs::read_to_string(&mlir).unwrap();
        let calls = j.contains("\"conv_calls\":true");
        let matmul = j.contains("\"matmul_calls\":true");
        assert!(j.contains("\"matmul_calls\":"), "{j}");
        if cap.is_some() || !calls {
            assert!(!matmul, "{j}");
        }
        assert_eq!(text.contains("@netspec_matmul"), matmul, "{cap:?}: {j}");
        assert_eq!(text.contains("@netspec_adam"), calls, "{cap:?}: {j}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
