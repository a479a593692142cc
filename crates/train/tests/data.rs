//! Dataset loaders: the real Fashion-MNIST, and malformed synthetic files whose errors must name the
//! file and the byte offset.

mod common;

use std::path::Path;

use common::{gzip, msg, TempDir};
use train::data::{self, DatasetKind, Split};

fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2051u32, n, rows, cols] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(pixels);
    v
}

fn idx_labels(n: u32, labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2049u32, n] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(labels);
    v
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The error names the file and "at byte N".
fn assert_names(err: &str, path: &Path, offset: u64) {
    assert!(
        err.contains(&path.display().to_string()),
        "error does not name {}: {err}",
        path.display()
    );
    assert!(
        err.contains(&format!("at byte {offset}:")),
        "error does not name byte {offset}: {err}"
    );
}

#[test]
fn real_fashion_mnist_loads() {
    let dir = DatasetKind::FashionMnist.default_dir().unwrap();
    assert!(
        dir.join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing from {}: run scripts/setup/data.sh",
        dir.display()
    );
    let train = data::load(&dir, DatasetKind::FashionMnist, Split::Train).unwrap();
    let test = data::load(&dir, DatasetKind::FashionMnist, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!((train.c, train.h, train.w, train.classes), (1, 28, 28, 10));
    assert_eq!(train.images.len(), 60_000 * 784);
    // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert_eq!(train.label_histogram(), vec![6000; 10]);
    assert_eq!(test.label_histogram(), vec![1000; 10]);
    // Its mean pixel is about 0.286 · 255 ≈ 72.9.
    let mean = train.images.iter().map(|&b| b as f64).sum::<f64>() / train.images.len() as f64;
    assert!((70.0..76.0).contains(&mean), "mean pixel {mean}");
    // The first training image is an ankle boot (class 9).
    assert_eq!(train.labels[0], 9);
}

#[test]
fn idx_plain_and_gzip_load_the_same() {
    let d = TempDir::new("idx");
    let pixels: Vec<u8> = (0..3 * 2 * 4).map(|i| i as u8).collect();
    let img = idx_images(3, 2, 4, &pixels);
    let lab = idx_labels(3, &[1, 0, 9]);
    let a = data::load_idx(&write(&d, "i", &img), &write(&d, "l", &lab), 10).unwrap();
    let b = data::load_idx(
        &write(&d, "i.gz", &gzip(&img)),
        &write(&d, "l.gz", &gzip(&lab)),
        10,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!((a.len(), a.c, a.h, a.w), (3, 1, 2, 4));
    assert_eq!(a.image(1), &pixels[8..16]);
    assert_eq!(a.labels, vec![1, 0, 9]);
}

#[test]
fn idx_truncated_pixels_name_file_and_offset() {
    let d = TempDir::new("idx-trunc");
    let img = write(&d, "img", &idx_images(3, 2, 2, &[0; 10])); // 12 bytes promised
    let lab = write(&d, "lab", &idx_labels(3, &[0, 1, 2]));
    let e = msg(data::load_idx(&img, &lab, 10));
    assert_names(&e, &img, 16);
    assert!(
        e.contains("truncated") && e.contains("expected 12 bytes") && e.contains("ends at byte 26"),
        "{e}"
    );

    // The same in a gzip file: offsets count decompressed bytes, and the message says so.
    let gz = write(&d, "img.gz", &gzip(&idx_images(3, 2, 2, &[0; 10])));
    let e = msg(data::load_idx(&gz, &lab, 10));
    assert_names(&e, &gz, 16);
    assert!(e.contains("decompressed"), "{e}");
}

#[test]
fn idx_truncated_header_and_cut_gzip_stream() {
    let d = TempDir::new("idx-head");
    let lab = write(&d, "lab", &idx_labels(1, &[0]));
    let img = write(&d, "img", &idx_images(1, 2, 2, &[0; 4])[..10]);
    let e = msg(data::load_idx(&img, &lab, 10));
    assert_names(&e, &img, 8);
    assert!(e.contains("row count"), "{e}");

    let full = gzip(&idx_images(50, 28, 28, &vec![7; 50 * 784]));
    let cut = write(&d, "cut.gz", &full[..full.len() / 2]);
    let e = msg(data::load_idx(&cut, &lab, 10));
    assert!(
        e.contains("gzip stream is corrupt or truncated") && e.contains(&cut.display().to_string()),
        "{e}"
    );
}

#[test]
fn idx_bad_magic_count_mismatch_label_and_trailing_data() {
    let d = TempDir::new("idx-bad");
    let img = write(&d, "img", &idx_images(2, 1, 1, &[5, 6]));
    let lab = write(&d, "lab", &idx_labels(2, &[0, 1]));

    let swapped = msg(data::load_idx(&lab, &img, 10));
    assert_names(&swapped, &lab, 0);
    assert!(
        swapped.contains("magic number 2049") && swapped.contains("expected 2051"),
        "{swapped}"
    );

    let short = write(&d, "lab3", &idx_labels(3, &[0, 1, 2]));
    let e = msg(data::load_idx(&img, &short, 10));
    assert_names(&e, &short, 4);
    assert!(e.contains("3 labels") && e.contains("2 images"), "{e}");

    let badlab = write(&d, "labbad", &idx_labels(2, &[0, 10]));
    let e = msg(data::load_idx(&img, &badlab, 10));
    assert_names(&e, &badlab, 9);
    assert!(e.contains("label 10"), "{e}");

    let mut extra = idx_images(2, 1, 1, &[5, 6]);
    extra.push(0);
    let extra = write(&d, "imgextra", &extra);
    let e = msg(data::load_idx(&extra, &lab, 10));
    assert_names(&e, &extra, 18);
    assert!(e.contains("trailing"), "{e}");
}

#[test]
fn missing_dataset_names_the_file() {
    let d = TempDir::new("missing");
    let e = msg(data::load(d.path(), DatasetKind::Mnist, Split::Train));
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("not found"),
        "{e}"
    );
    let e = msg(data::load(d.path(), DatasetKind::Cifar10, Split::Test));
    assert!(e.contains("test_batch.bin"), "{e}");
}

fn cifar_record(label: u8, fill: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend(std::iter::repeat_n(fill, 3072));
    r
}

#[test]
fn cifar_loads_and_reports_truncation_and_bad_labels() {
    let d = TempDir::new("cifar");
    for i in 1..=5u8 {
        write(
            &d,
            &format!("data_batch_{i}.bin"),
            &[cifar_record(i, i), cifar_record(0, 100 + i)].concat(),
        );
    }
    let ds = data::load(d.path(), DatasetKind::Cifar10, Split::Train).unwrap();
    assert_eq!((ds.len(), ds.c, ds.h, ds.w), (10, 3, 32, 32));
    assert_eq!(ds.labels, vec![1, 0, 2, 0, 3, 0, 4, 0, 5, 0]);
    assert!(ds.image(3).iter().all(|&b| b == 102));

    let mut cut = [cifar_record(1, 1), cifar_record(2, 2)].concat();
    cut.extend_from_slice(&[0; 100]);
    let p = write(&d, "test_batch.bin", &cut);
    let e = msg(data::load(d.path(), DatasetKind::Cifar10, Split::Test));
    assert_names(&e, &p, 6146);
    assert!(
        e.contains("truncated record 2") && e.contains("ends at byte 6246"),
        "{e}"
    );

    let p = write(
        &d,
        "test_batch.bin",
        &[cifar_record(1, 1), cifar_record(12, 2)].concat(),
    );
    let e = msg(data::load(d.path(), DatasetKind::Cifar10, Split::Test));
    assert_names(&e, &p, 3073);
    assert!(e.contains("label 12"), "{e}");

    let p = write(&d, "test_batch.bin", &[]);
    let e = msg(data::load(d.path(), DatasetKind::Cifar10, Split::Test));
    assert_names(&e, &p, 0);
}

fn imagenette(count: u32, records: &[(u8, u8)], size: usize) -> Vec<u8> {
    let mut v = count.to_le_bytes().to_vec();
    for &(label, fill) in records {
        v.push(label);
        v.extend(std::iter::repeat_n(fill, 3 * size * size));
    }
    v
}

#[test]
fn imagenette_loads_and_reports_errors() {
    let d = TempDir::new("imagenette");
    write(&d, "val.bin", &imagenette(2, &[(3, 30), (9, 90)], 224));
    let ds = data::load(d.path(), DatasetKind::Imagenette, Split::Test).unwrap();
    assert_eq!((ds.len(), ds.c, ds.h, ds.w), (2, 3, 224, 224));
    assert_eq!(ds.labels, vec![3, 9]);
    assert!(ds.image(1).iter().all(|&b| b == 90));

    // Three promised, two present (records of 1 + 3·4·4 = 49 bytes).
    let p = write(&d, "small.bin", &imagenette(3, &[(0, 1), (1, 2)], 4));
    let e = msg(data::load_imagenette_file(&p, 4));
    assert_names(&e, &p, 4 + 2 * 49);
    assert!(
        e.contains("truncated record 2 of 3") && e.contains("expected 49 bytes"),
        "{e}"
    );

    let p = write(&d, "head.bin", &[1, 0]);
    let e = msg(data::load_imagenette_file(&p, 4));
    assert_names(&e, &p, 0);
    assert!(e.contains("count"), "{e}");

    let mut extra = imagenette(1, &[(0, 1)], 4);
    extra.extend_from_slice(&[0; 3]);
    let p = write(&d, "extra.bin", &extra);
    let e = msg(data::load_imagenette_file(&p, 4));
    assert_names(&e, &p, 53);
    assert!(e.contains("trailing"), "{e}");

    let p = write(&d, "label.bin", &imagenette(2, &[(0, 1), (10, 2)], 4));
    let e = msg(data::load_imagenette_file(&p, 4));
    assert_names(&e, &p, 4 + 49);
    assert!(e.contains("label 10"), "{e}");

    // A train file read at the wrong size (224 instead of 256) is caught as a size mismatch.
    let p = write(&d, "train.bin", &imagenette(1, &[(0, 1)], 4));
    assert!(
        msg(data::load(d.path(), DatasetKind::Imagenette, Split::Train))
            .contains(&p.display().to_string())
    );
}

#[test]
fn dataset_kind_names_round_trip() {
    for k in DatasetKind::ALL {
        assert_eq!(k.name().parse::<DatasetKind>().unwrap(), k);
    }
    assert!(msg("svhn".parse::<DatasetKind>()).contains("unknown dataset 'svhn'"));
}
