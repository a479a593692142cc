//! `netspec predict` agrees with `netspec eval` on the same images; `netspec export` and
//! `netspec export-onnx` through the real binary.
//!
//! A short training run of mnist-cnn (batch norm in eval mode matters) on 1,000 Fashion-MNIST
//! training images; then the first 300 test images as PNG files. `eval` on those 300 images (an IDX
//! test split of them) and `predict --json --top-k 10` on the PNGs must count the same correct
//! predictions, and predict's mean cross-entropy (−ln p[label]) must equal eval's loss to its printed
//! precision. Needs the PJRT CPU plugin and Fashion-MNIST (scripts/setup.sh plugin data).

use std::path::{Path, PathBuf};
use std::process::Command;

use train::data::{self, DatasetKind, Split};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netspec-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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

fn idx(dir: &Path, prefix: &str, ds: &data::Dataset, n: usize) {
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

#[test]
fn predict_on_pngs_agrees_with_eval_and_exports_load() {
    const N_TEST: usize = 300;
    let d = dir("predict");
    let src = DatasetKind::FashionMnist.default_dir().unwrap();
    let train = data::load(&src, DatasetKind::FashionMnist, Split::Train)
        .expect("Fashion-MNIST (scripts/setup/data.sh)");
    let test = data::load(&src, DatasetKind::FashionMnist, Split::Test).unwrap();
    let data_dir = d.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    idx(&data_dir, "train", &train, 1000);
    idx(&data_dir, "t10k", &test, N_TEST);

    // The test images as PNGs, named by index.
    let png_dir = d.join("png");
    std::fs::create_dir_all(&png_dir).unwrap();
    for i in 0..N_TEST {
        let img = image::GrayImage::from_raw(28, 28, test.image(i).to_vec()).unwrap();
        img.save(png_dir.join(format!("{i:05}.png"))).unwrap();
    }

    let ck = d.join("ck");
    let (code, _, err) = netspec(&[
        "train",
        "mnist-cnn",
        "--data",
        data_dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "50",
        "--checkpoint-dir",
        ck.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let ck_s = ck.to_str().unwrap();

    let (code, out, err) = netspec(&[
        "eval",
        "mnist-cnn",
        "--checkpoint",
        ck_s,
        "--data",
        data_dir.to_str().unwrap(),
        "--batch-size",
        "100",
    ]);
    assert_eq!(code, 0, "{err}");
    // "… loss 0.6543, accuracy 75.33% (226/300)"
    let loss: f64 = out
        .split("loss ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let correct: usize = out
        .split('(')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let (code, out, err) = netspec(&[
        "predict",
        "mnist-cnn",
        "--checkpoint",
        ck_s,
        png_dir.to_str().unwrap(),
        "--json",
        "--top-k",
        "10",
        "--batch-size",
        "64",
    ]);
    assert_eq!(code, 0, "{err}");
    let json_out = out.clone();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), N_TEST);
    let (mut hits, mut ce) = (0usize, 0f64);
    for (i, l) in lines.iter().enumerate() {
        assert!(l["file"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{i:05}.png")));
        let label = test.labels[i] as u64;
        let top = l["top"].as_array().unwrap();
        assert_eq!(top.len(), 10);
        if top[0]["index"].as_u64() == Some(label) {
            hits += 1;
        }
        let p = top
            .iter()
            .find(|t| t["index"].as_u64() == Some(label))
            .unwrap()["prob"]
            .as_f64()
            .unwrap();
        ce -= p.ln();
        let names = train::predict::class_names(DatasetKind::FashionMnist);
        assert_eq!(
            top[0]["class"],
            names[top[0]["index"].as_u64().unwrap() as usize]
        );
    }
    ce /= N_TEST as f64;
    eprintln!(
        "eval: {correct}/{N_TEST} correct, loss {loss}; predict: {hits} correct, loss {ce:.5}"
    );
    assert_eq!(
        hits, correct,
        "predict and eval count different correct predictions"
    );
    assert!(
        (ce - loss).abs() <= 6e-5,
        "predict's loss {ce} vs eval's {loss}"
    );
    assert!(
        hits > N_TEST / 2,
        "the model learned something ({hits}/{N_TEST})"
    );

    // The human-readable form names the class and its probability.
    let first = png_dir.join("00000.png");
    let (code, out, err) = netspec(&[
        "predict",
        "mnist-cnn",
        "--checkpoint",
        ck_s,
        first.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("{}: ", first.display())) && out.contains('%'),
        "{out}"
    );

    // export: netspec names (with the model recorded) predict the same; torchvision names are refused
    // for a model that is not a torchvision model.
    let w = d.join("w.safetensors");
    let (code, _, err) = netspec(&["export", ck_s, "-o", w.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out2, err) = netspec(&[
        "predict",
        "mnist-cnn",
        "--checkpoint",
        w.to_str().unwrap(),
        png_dir.to_str().unwrap(),
        "--json",
        "--top-k",
        "10",
        "--batch-size",
        "64",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out2, json_out,
        "predict from the export differs from predict from the checkpoint"
    );
    let (code, _, err) = netspec(&[
        "export",
        ck_s,
        "-o",
        d.join("tv.safetensors").to_str().unwrap(),
        "--names",
        "torchvision",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a torchvision model"), "{err}");
    // A model that differs from the file's is refused.
    let (code, _, err) = netspec(&[
        "predict",
        "mnist-mlp",
        "--checkpoint",
        ck_s,
        first.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("differs from mnist-mlp"), "{err}");

    // export-onnx writes a model file (its numerics are checked by crates/onnx/tests/ort.rs).
    let o = d.join("m.onnx");
    let (code, _, err) = netspec(&[
        "export-onnx",
        "mnist-cnn",
        "--checkpoint",
        ck_s,
        "-o",
        o.to_str().unwrap(),
        "--dynamic-batch",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::metadata(&o).unwrap().len() > 4 * 1_600_000,
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
