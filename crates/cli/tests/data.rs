//! Your own data through the real binary: `netspec train --data FOLDER` with a validation split
//! (every epoch evaluated on it, `best.safetensors`, early stopping, the test split once at the end),
//! `netspec eval --split` and `netspec predict` on a folder-trained checkpoint, a PNG folder of
//! Fashion-MNIST against its IDX files, and a generated JPEG folder through the resize/crop path.
//!
//! Needs the PJRT CPU plugin and Fashion-MNIST (scripts/setup.sh plugin data). The full-size
//! comparison (all 70,000 Fashion-MNIST images as PNGs against the IDX files, one epoch each) is
//! `#[ignore]`d: `scripts/test-data-slow.sh` runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use train::data::write::{dataset_as_folder, Synthetic, FASHION_MNIST_CLASSES};
use train::data::{self, Dataset, DatasetKind, Split};

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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fashion(split: Split) -> Dataset {
    let src = DatasetKind::FashionMnist.default_dir().unwrap();
    data::load(&src, DatasetKind::FashionMnist, split)
        .expect("Fashion-MNIST (scripts/setup/data.sh)")
}

/// The first `n_train` / `n_test` Fashion-MNIST images as a PNG class-folder tree
/// (`root/train/<class>/…`, `root/test/<class>/…`).
fn png_folder(root: &Path, n_train: usize, n_test: usize) {
    for (split, name, n) in [
        (Split::Train, "train", n_train),
        (Split::Test, "test", n_test),
    ] {
        let ds = fashion(split);
        dataset_as_folder(&ds, 0..n, &root.join(name), &FASHION_MNIST_CLASSES).unwrap();
    }
}

/// The same images as plain IDX files in `dir`; `by_class`: in the order a folder lists them (by
/// class, then by index), instead of Fashion-MNIST's.
fn idx_files(dir: &Path, n_train: usize, n_test: usize, by_class: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for (split, prefix, n) in [
        (Split::Train, "train", n_train),
        (Split::Test, "t10k", n_test),
    ] {
        let ds = fashion(split);
        let mut order: Vec<usize> = (0..n).collect();
        if by_class {
            order.sort_by_key(|&i| (ds.labels[i], i));
        }
        let mut img = Vec::new();
        for v in [2051u32, n as u32, ds.h as u32, ds.w as u32] {
            img.extend_from_slice(&v.to_be_bytes());
        }
        for &i in &order {
            img.extend_from_slice(ds.image(i));
        }
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
        let mut lab = Vec::new();
        for v in [2049u32, n as u32] {
            lab.extend_from_slice(&v.to_be_bytes());
        }
        lab.extend(order.iter().map(|&i| ds.labels[i]));
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
    }
}

/// A `.npy` file of `u8` values of `shape` (numpy's format 1.0, written here byte by byte).
fn npy_u8(path: &Path, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dims = if dims.len() == 1 {
        format!("{},", dims[0])
    } else {
        dims.join(", ")
    };
    let mut header = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({dims}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// The same images as `.npy` arrays (`train_images.npy` `[N, 28, 28]` + `train_labels.npy`, and
/// `test_…`) in `dir`, in the folder's order.
fn npy_files(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (split, name, n) in [
        (Split::Train, "train", n_train),
        (Split::Test, "test", n_test),
    ] {
        let ds = fashion(split);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (ds.labels[i], i));
        let images: Vec<u8> = order.iter().flat_map(|&i| ds.image(i).to_vec()).collect();
        let labels: Vec<u8> = order.iter().map(|&i| ds.labels[i]).collect();
        npy_u8(
            &dir.join(format!("{name}_images.npy")),
            &[n, 28, 28],
            &images,
        );
        npy_u8(&dir.join(format!("{name}_labels.npy")), &[n], &labels);
    }
}

/// The trace's epoch lines.
fn epoch_lines(trace: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "epoch")
        .collect()
}

/// The trace's lines without the wall-clock field.
fn without_wall(trace: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(trace)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("wall_ms");
            v
        })
        .collect()
}

/// `(c/t)` after `key` in `text`.
fn count_after(text: &str, key: &str) -> (u64, u64) {
    let rest = &text[text
        .find(key)
        .unwrap_or_else(|| panic!("no '{key}' in {text}"))..];
    let inner = rest.split('(').nth(1).unwrap().split(')').next().unwrap();
    let (c, t) = inner.split_once('/').unwrap();
    (c.parse().unwrap(), t.parse().unwrap())
}

/// The percentage after `key` in `text`.
fn percent_after(text: &str, key: &str) -> f64 {
    let rest = &text[text
        .find(key)
        .unwrap_or_else(|| panic!("no '{key}' in {text}"))
        + key.len()..];
    rest.trim_start()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn validation_split_best_checkpoint_and_early_stop() {
    let d = dir("data-val");
    let folder = d.join("fashion");
    png_folder(&folder, 2000, 500);
    let ck = d.join("ck");
    let trace = d.join("t.jsonl");
    let (code, out, err) = netspec(&[
        "train",
        "mnist-mlp",
        "--data",
        s(&folder),
        "--val-split",
        "0.2",
        "--epochs",
        "4",
        "--batch-size",
        "100",
        "--checkpoint-dir",
        s(&ck),
        "--trace",
        s(&trace),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Each class of the 2,000 training images gives 20 % to validation, the rest trains.
    assert!(
        err.contains("held out of the training split (--val-split 0.2)"),
        "{err}"
    );
    let epochs = epoch_lines(&trace);
    assert_eq!(epochs.len(), 4, "{out}");
    let val_total = epochs[0]["val_total"].as_u64().unwrap();
    assert!((390..=410).contains(&val_total), "{val_total}");
    assert!(
        err.contains(&format!("{} training images", 2000 - val_total)),
        "{err}"
    );
    // Every epoch is evaluated on validation, never on the test split.
    for e in &epochs {
        assert!(e["val_acc"].is_number() && e["val_loss"].is_number(), "{e}");
        assert_eq!(e["val_total"].as_u64(), Some(val_total));
        assert!(
            e.get("test_acc").is_none(),
            "the test split was evaluated every epoch: {e}"
        );
    }
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("val acc") && !l.contains("test")),
        "{out}"
    );
    // The best epoch: the first with the most correct validation predictions.
    let correct: Vec<u64> = epochs
        .iter()
        .map(|e| e["val_correct"].as_u64().unwrap())
        .collect();
    let best = (0..4)
        .find(|&i| correct[i] == *correct.iter().max().unwrap())
        .unwrap();
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("best epoch {}: validation accuracy", best + 1))
            && last.contains(&format!("({}/{val_total})", correct[best])),
        "{out}"
    );
    let (test_correct, test_total) = count_after(last, "test accuracy");
    assert_eq!(test_total, 500, "{last}");
    assert!(test_correct > 300, "the model learned something: {last}");
    // best.safetensors holds that epoch's state: it evaluates to its validation count, and to the
    // test figure of the final line. Writes are atomic: no temporary file is left.
    let best_file = ck.join("best.safetensors");
    let mut names: Vec<String> = std::fs::read_dir(&ck)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["best.safetensors", "last.safetensors"]);
    for (split, want) in [
        ("val", (correct[best], val_total)),
        ("test", (test_correct, test_total)),
    ] {
        let (code, out, err) = netspec(&[
            "eval",
            "mnist-mlp",
            "--checkpoint",
            s(&best_file),
            "--data",
            s(&folder),
            "--split",
            split,
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(count_after(&out, "accuracy"), want, "{split}: {out}");
    }
    // The last checkpoint is the last epoch's state (its validation count).
    let (code, out_last, err) = netspec(&[
        "eval",
        "mnist-mlp",
        "--checkpoint",
        s(&ck),
        "--data",
        s(&folder),
        "--split",
        "val",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        count_after(&out_last, "accuracy"),
        (correct[3], val_total),
        "{out_last}"
    );

    // A run stopped inside epoch 3 and resumed selects and reports as the uninterrupted one: the
    // same trace, the same final line, the same best.safetensors.
    let ck3 = d.join("ck3");
    let trace3 = d.join("t3.jsonl");
    let run3 = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "mnist-mlp",
            "--data",
            s(&folder),
            "--val-split",
            "0.2",
            "--epochs",
            "4",
            "--batch-size",
            "100",
            "--checkpoint-dir",
            s(&ck3),
            "--trace",
            s(&trace3),
        ];
        args.extend(extra);
        let (code, out, err) = netspec(&args);
        assert_eq!(code, 0, "{out}\n{err}");
        out
    };
    run3(&["--max-steps", "40"]);
    let out3 = run3(&["--resume"]);
    assert_eq!(
        out3.lines().last().unwrap().replace(s(&ck3), s(&ck)),
        last,
        "{out3}"
    );
    assert_eq!(without_wall(&trace3), without_wall(&trace));
    assert_eq!(
        std::fs::read(ck3.join("best.safetensors")).unwrap(),
        std::fs::read(&best_file).unwrap()
    );

    // predict reads the images with the same loader and names the folder's classes: on the
    // test folder it is right exactly as often as eval says.
    let test_dirs: Vec<PathBuf> = FASHION_MNIST_CLASSES
        .iter()
        .map(|c| folder.join("test").join(c))
        .collect();
    let mut args = vec![
        "predict",
        "mnist-mlp",
        "--checkpoint",
        s(&best_file),
        "--top-k",
        "1",
    ];
    args.extend(test_dirs.iter().map(|p| s(p)));
    let (code, out, err) = netspec(&args);
    assert_eq!(code, 0, "{err}");
    let mut hits = 0;
    let mut n = 0;
    for l in out.lines() {
        let (file, top) = l.split_once(": ").unwrap();
        let class = Path::new(file)
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let predicted = top.rsplit_once(' ').unwrap().0;
        assert!(FASHION_MNIST_CLASSES.contains(&predicted), "{l}");
        hits += usize::from(predicted == class);
        n += 1;
    }
    assert_eq!((hits as u64, n), (test_correct, 500), "{out}");

    // Early stopping: at learning rate 1e-30 nothing changes, so epoch 1 stays the best and the
    // run stops after 1 + 2 epochs of the 10.
    let ck2 = d.join("ck2");
    let (code, out, err) = netspec(&[
        "train",
        "mnist-mlp",
        "--data",
        s(&folder),
        "--val-split",
        "0.2",
        "--epochs",
        "10",
        "--batch-size",
        "100",
        "--lr",
        "1e-30",
        "--early-stop",
        "2",
        "--checkpoint-dir",
        s(&ck2),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("epoch ")).count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("stopped early after epoch 3 (--early-stop 2)"),
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().starts_with("best epoch 1: "),
        "{out}"
    );
    assert!(ck2.join("best.safetensors").is_file());

    // Bad values name their flag, before any compile.
    for (flag, value, want) in [
        ("--val-split", "1.5", "--val-split"),
        ("--early-stop", "0", "--early-stop"),
        ("--augment", "zoom", "zoom"),
        ("--normalize", "0.5/0", "--normalize"),
    ] {
        let (code, _, err) = netspec(&["train", "mnist-mlp", "--data", s(&folder), flag, value]);
        assert_eq!(code, 1, "{flag} {value}");
        assert!(err.contains(want), "{flag} {value}: {err}");
    }
    // Early stopping without a validation split is refused.
    let (code, _, err) = netspec(&[
        "train",
        "mnist-mlp",
        "--data",
        s(&folder),
        "--early-stop",
        "2",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--early-stop needs a validation split"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Trains mnist-mlp for one epoch on `data` (batch 100); returns the last line and the step losses.
fn one_epoch(d: &Path, data: &str) -> (String, Vec<f64>) {
    let trace = d.join(format!("{data}.jsonl"));
    let (code, out, err) = netspec(&[
        "train",
        "mnist-mlp",
        "--data",
        s(&d.join(data)),
        "--epochs",
        "1",
        "--batch-size",
        "100",
        "--checkpoint-dir",
        s(&d.join(format!("ck-{data}"))),
        "--trace",
        s(&trace),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let losses = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "step")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    (out.lines().last().unwrap().to_string(), losses)
}

/// The folder and array paths compute what the IDX path computes: the first 10,000 + 2,000
/// Fashion-MNIST images as a PNG folder, as `.npy` arrays and as IDX files, the last two in the
/// folder's order (by class), train mnist-mlp for one epoch to the same step losses, bit for bit,
/// and the same test count.
#[test]
fn png_folder_and_npy_arrays_train_exactly_as_the_same_idx_files() {
    let d = dir("data-idx-small");
    idx_files(&d.join("idx"), 10_000, 2_000, true);
    png_folder(&d.join("png"), 10_000, 2_000);
    npy_files(&d.join("npy"), 10_000, 2_000);
    let (idx_line, idx_losses) = one_epoch(&d, "idx");
    assert_eq!(idx_losses.len(), 100);
    for other in ["png", "npy"] {
        let (line, losses) = one_epoch(&d, other);
        assert_eq!(idx_losses, losses, "{other}");
        assert_eq!(
            count_after(&idx_line, "test accuracy:"),
            count_after(&line, "test accuracy:"),
            "{other}: {line}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// All of Fashion-MNIST, the IDX files as distributed against the PNG folder (whose order, by class,
/// gives other batches): one epoch each, test accuracies within 1 point. `scripts/test-data-slow.sh`.
#[test]
#[ignore]
fn png_folder_reaches_the_idx_accuracy_on_all_of_fashion_mnist() {
    let d = dir("data-idx-full");
    idx_files(&d.join("idx"), 60_000, 10_000, false);
    png_folder(&d.join("png"), 60_000, 10_000);
    let t = std::time::Instant::now();
    let (idx_line, _) = one_epoch(&d, "idx");
    let t_idx = t.elapsed();
    let t = std::time::Instant::now();
    let (png_line, _) = one_epoch(&d, "png");
    let t_png = t.elapsed();
    let (idx, png) = (
        percent_after(&idx_line, "test accuracy:"),
        percent_after(&png_line, "test accuracy:"),
    );
    eprintln!(
        "all of Fashion-MNIST, 1 epoch of mnist-mlp: IDX {idx:.2}% ({:.1} s), PNG folder {png:.2}% ({:.1} s)",
        t_idx.as_secs_f64(),
        t_png.as_secs_f64()
    );
    assert!(
        (idx - png).abs() <= 1.0,
        "IDX {idx:.2}% vs PNG folder {png:.2}%"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Synthetic JPEGs (Imagenette-like photographs) as `root/train` and `root/val`.
fn jpeg_folder(root: &Path, short_side: usize, n_train: usize, n_val: usize) {
    for (name, n, seed) in [("train", n_train, 1), ("val", n_val, 2)] {
        Synthetic {
            count: n,
            classes: 10,
            short_side,
            seed,
            ..Synthetic::default()
        }
        .write(&root.join(name))
        .unwrap();
    }
}

/// A few steps on a generated JPEG folder whose images are larger than the model's input, through
/// `--augment` and `--resize`, then `netspec eval` on its `val/` folder.
fn jpeg_steps(tag: &str, model: &str, short_side: usize, extra: &[&str]) {
    let d = dir(tag);
    let folder = d.join("jpeg");
    jpeg_folder(&folder, short_side, 20, 10);
    let ck = d.join("ck");
    let trace = d.join("t.jsonl");
    let mut args = vec![
        "train",
        model,
        "--data",
        s(&folder),
        "--batch-size",
        "2",
        "--max-steps",
        "2",
        "--checkpoint-dir",
        s(&ck),
        "--trace",
        s(&trace),
    ];
    args.extend(extra);
    let (code, out, err) = netspec(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("20 training images, 10 validation images, 10 classes"),
        "{err}"
    );
    let steps: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "step")
        .collect();
    assert_eq!(steps.len(), 2);
    assert!(
        steps
            .iter()
            .all(|v| v["loss"].as_f64().is_some_and(f64::is_finite)),
        "{steps:?}"
    );
    let (code, out, err) = netspec(&[
        "eval",
        model,
        "--checkpoint",
        s(&ck),
        "--data",
        s(&folder),
        "--batch-size",
        "5",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(count_after(&out, "accuracy").1, 10, "{out}");
    assert!(out.contains("validation split"), "{out}");
    // Without a transform that changes the size, the images are refused, naming a file.
    let (code, _, err) = netspec(&["train", model, "--data", s(&folder), "--augment", "none"]);
    assert_eq!(code, 1);
    assert!(err.contains("img-") && err.contains("--resize"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn jpeg_folder_trains_a_cnn_through_resize_and_crop() {
    // cifar-cnn takes 32x32: 48-px JPEGs, shorter side resized to 36, random 32 crop and flip.
    jpeg_steps(
        "data-jpeg",
        "cifar-cnn",
        48,
        &["--augment", "crop-flip", "--resize", "36"],
    );
}

/// resnet18 at 224² from 320-px JPEGs (random-resized crop; evaluation resizes to 256 and
/// centre-crops). About 30 s, most of it compiling resnet18's train step.
#[test]
fn jpeg_folder_trains_resnet18_at_224() {
    jpeg_steps(
        "data-jpeg-r18",
        "resnet18",
        320,
        &["--augment", "random-resized-crop"],
    );
}
