//! Image folders and array files as batch sources: Fashion-MNIST as a PNG folder against its IDX files,
//! numpy-written `.npy`/`.npz` files and safetensors read as written, an MLP trained on arrays, and every
//! kind of bad data named before anything runs (or counted with `skip_bad`).
//!
//! Needs Fashion-MNIST (`scripts/setup/data.sh`); the MLP test needs the PJRT CPU plugin.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{msg, TempDir};
use train::augment::{Augment, Preprocess};
use train::batch::{build_batch, BatchConfig, Batcher, HostBatch, Mode, Position};
use train::data::folder::{self, ScanOptions};
use train::data::write::{dataset_as_folder, FASHION_MNIST_CLASSES};
use train::data::{self, arrays, Dataset, DatasetKind, Source, Split};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/arrays");

fn opts(channels: usize) -> ScanOptions {
    ScanOptions {
        channels,
        skip_bad: false,
        threads: 2,
    }
}

/// Every sample of `source` in index order, one evaluation batch, preprocessed by `pre`.
fn all(source: impl Into<Source>, pre: &Preprocess) -> HostBatch {
    let source = source.into();
    let cfg = BatchConfig {
        batch_size: source.len(),
        shuffle: false,
        mode: Mode::Eval,
        threads: 1,
        ..BatchConfig::default()
    };
    build_batch(source, pre, &cfg, Position::default()).unwrap()
}

/// (label, image bits) per row, sorted: the batch as a set.
fn as_set(b: &HostBatch) -> Vec<(i32, Vec<u32>)> {
    let per = b.x.len() / b.shape[0];
    let mut v: Vec<(i32, Vec<u32>)> = (0..b.rows)
        .map(|r| {
            (
                b.y[r],
                b.x[r * per..(r + 1) * per]
                    .iter()
                    .map(|f| f.to_bits())
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
}

fn subset(ds: &Dataset, n: usize) -> Dataset {
    let per = ds.image_len();
    Dataset::new(
        ds.images[..n * per].to_vec(),
        ds.labels[..n].to_vec(),
        ds.c,
        ds.h,
        ds.w,
        ds.classes,
    )
    .unwrap()
}

#[test]
fn fashion_mnist_as_a_png_folder_equals_its_idx_files_as_a_set() {
    png_folder_equals_idx(600, 250);
}

/// The same on all 70,000 images (22 s on the shared 2-core machine; not in the suite):
/// `cargo test --release -p train --test sources -- --ignored full_fashion_mnist`.
#[test]
#[ignore]
fn full_fashion_mnist_as_a_png_folder_equals_its_idx_files_as_a_set() {
    png_folder_equals_idx(60_000, 10_000);
}

fn png_folder_equals_idx(n_train: usize, n_test: usize) {
    let dir = TempDir::new("fmnist-png");
    let src = DatasetKind::FashionMnist.default_dir().unwrap();
    let mut idx = Vec::new();
    for (split, name, n) in [
        (Split::Train, "train", n_train),
        (Split::Test, "test", n_test),
    ] {
        let full = data::load(&src, DatasetKind::FashionMnist, split)
            .expect("Fashion-MNIST (scripts/setup/data.sh)");
        let ds = subset(&full, n);
        let files = dataset_as_folder(&ds, 0..n, &dir.join(name), &FASHION_MNIST_CLASSES).unwrap();
        assert_eq!(files.len(), n);
        idx.push(ds);
    }
    let splits = folder::scan(dir.path(), &opts(1)).unwrap();
    assert_eq!(
        splits.classes.as_slice(),
        FASHION_MNIST_CLASSES.map(String::from).as_slice()
    );
    assert!(splits.val.is_none());
    let test = splits.test.clone().expect("the test/ split");
    for (f, ds) in [(&splits.train, &idx[0]), (&test, &idx[1])] {
        assert_eq!(f.len(), ds.len());
        // Decoded bytes: every file equals the IDX image its name carries, label included.
        for i in 0..f.len() {
            let path = f.path(i);
            let k: usize = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let px = f.decode(i).unwrap();
            assert_eq!((px.w, px.h, px.c), (28, 28, 1));
            assert_eq!(px.data, ds.image(k), "{}", path.display());
            assert_eq!(f.label(i), ds.labels[k] as u32, "{}", path.display());
        }
        // The batches: the folder's and the IDX path's preprocessed samples are the same set.
        let from_folder = all(
            f.clone(),
            &Preprocess::for_images(Augment::None, 28, 28, None, false),
        );
        let from_idx = all(
            Arc::new(ds.clone()),
            &Preprocess::for_kind(DatasetKind::FashionMnist, false, false),
        );
        assert_eq!(as_set(&from_folder), as_set(&from_idx));
    }
    // Training batches stream from the folder with several threads, as from memory.
    let mut b = Batcher::plain(
        splits.train.clone(),
        Preprocess::for_images(Augment::Flip, 28, 28, None, true),
        BatchConfig {
            batch_size: 64,
            epochs: Some(1),
            threads: 3,
            ..BatchConfig::default()
        },
    )
    .unwrap();
    let got: Vec<_> = b.by_ref().map(|r| r.unwrap().value).collect();
    assert_eq!(got.len(), n_train / 64);
    assert!(got
        .iter()
        .all(|h| h.shape == [64, 1, 28, 28] && h.y.iter().all(|&y| (0..10).contains(&y))));
}

#[test]
fn numpy_files_read_as_numpy_wrote_them() {
    // tests/data/arrays was written by numpy 2.4.6 (np.savez, np.savez_compressed, np.save):
    //   x_train = (arange(6*4*5*3) * 7 % 251).astype(u8).reshape(6, 4, 5, 3)      NHWC
    //   y_train = [0, 1, 2, 0, 1, 2] int64
    //   x_test  = (arange(4*3*4*5, float32) / 64 - 1).astype('>f4').reshape(4, 3, 4, 5)   NCHW, big-endian
    //   y_test  = [[2], [1], [0], [2]] uint8
    //   npy_dir/train_images.npy = (arange(5*4*5) * 3 % 256).astype(u8).reshape(5, 4, 5); train_labels int32
    for name in ["small.npz", "small_compressed.npz"] {
        let s = arrays::open(&Path::new(FIXTURES).join(name), 3).unwrap();
        assert!(s.val.is_none());
        let (tr, te) = (s.train, s.test.expect("x_test/y_test"));
        assert_eq!(
            (tr.len(), tr.shape(), tr.channels_last(), tr.is_f32()),
            (6, (3, 4, 5), true, false)
        );
        assert_eq!(
            (te.len(), te.shape(), te.channels_last(), te.is_f32()),
            (4, (3, 4, 5), false, true)
        );
        let b = all(
            tr,
            &Preprocess::for_images(Augment::None, 4, 5, None, false),
        );
        assert_eq!(b.y, vec![0, 1, 2, 0, 1, 2]);
        for n in 0..6 {
            for c in 0..3 {
                for y in 0..4 {
                    for x in 0..5 {
                        let k = ((n * 4 + y) * 5 + x) * 3 + c; // NHWC flat index
                        let want = ((k * 7) % 251) as u8 as f32 / 255.0;
                        assert_eq!(
                            b.x[((n * 3 + c) * 4 + y) * 5 + x],
                            want,
                            "{name} {n} {c} {y} {x}"
                        );
                    }
                }
            }
        }
        let b = all(
            te,
            &Preprocess::for_images(Augment::None, 4, 5, None, false),
        );
        assert_eq!(b.y, vec![2, 1, 0, 2]);
        let want: Vec<f32> = (0..240).map(|k| k as f32 / 64.0 - 1.0).collect();
        assert_eq!(b.x, want, "{name}");
    }
    let dir = Path::new(FIXTURES).join("npy_dir");
    let s = arrays::open(&dir, 1).unwrap();
    let b = all(
        s.train,
        &Preprocess::for_images(Augment::None, 4, 5, None, false),
    );
    assert_eq!(b.y, vec![1, 0, 1, 0, 1]);
    let want: Vec<f32> = (0..100)
        .map(|k| ((k * 3) % 256) as u8 as f32 / 255.0)
        .collect();
    assert_eq!(b.x, want);
    // Three channels do not fit a one-channel array; Fortran order is refused; a lone .npy is explained.
    assert!(msg(arrays::open(&dir, 3)).contains("expected images as [N, C, H, W] or [N, H, W, C]"));
    let e = msg(arrays::open(&dir.join("fortran.npy"), 1));
    assert!(e.contains("holds one array"), "{e}");
    let d = TempDir::new("fortran");
    std::fs::copy(dir.join("fortran.npy"), d.join("train_images.npy")).unwrap();
    std::fs::copy(dir.join("train_labels.npy"), d.join("train_labels.npy")).unwrap();
    let e = msg(arrays::open(d.path(), 1));
    assert!(
        e.contains("Fortran order") && e.contains("train_images.npy"),
        "{e}"
    );
}

/// 3 classes of 20×20 images: class k is bright in the k-th third of the rows, plus noise.
fn three_classes(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut r = train::order::SplitMix64::new(seed);
    let mut x = Vec::with_capacity(n * 400);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % 3;
        for row in 0..20 {
            for _ in 0..20 {
                let base = if row * 3 / 20 == k { 180 } else { 40 };
                x.push((base + r.below(60) as i32 - 30) as u8);
            }
        }
        y.push(k as u8);
    }
    (x, y)
}

fn write_safetensors(path: &Path, tensors: Vec<(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)>) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.to_string(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

use npyz::WriterBuilder;

fn write_npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[u64],
    data: &[T],
) {
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::new(
            std::fs::File::create(path).unwrap(),
        ))
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// Trains `net` on `train` for `steps` steps of 30 with Adam 1e-2, then returns the accuracy on `test`.
fn train_and_eval(net: &spec::NetSpec, train: Source, test: Source, steps: usize) -> f64 {
    let exec = train::device::Executor::open(pjrt::Device::Cpu, None)
        .expect("the PJRT CPU plugin (scripts/setup.sh plugin)");
    let cfg = spec::RunConfig {
        batch_size: 30,
        lr: 1e-2,
        optimizer: spec::Optimizer::ADAM,
        weight_decay: 0.0,
        ..spec::RunConfig::default()
    };
    let train_program = nn::train_step(net, &cfg).unwrap();
    let eval_program = nn::eval_step(net, 30).unwrap();
    let mut runner =
        train::runner::Runner::new(exec, Some(train_program), Some(eval_program)).unwrap();
    train::run::checkpoints::initial_state(net, 1, None, &mut runner).unwrap();
    let up = runner.uploader();
    let batcher = Batcher::new(
        train,
        Preprocess::for_images(Augment::None, 20, 20, None, true),
        BatchConfig {
            batch_size: 30,
            epochs: None,
            threads: 2,
            ..BatchConfig::default()
        },
        move |b: HostBatch| up.train_batch(&b),
    )
    .unwrap();
    let lr = runner.uploader().rate(1e-2).unwrap();
    let mut first = None;
    let mut last = 0.0;
    for ready in batcher.take(steps) {
        let out = runner.step(&ready.unwrap().value, &lr).unwrap();
        let loss = out.loss().unwrap();
        first.get_or_insert(loss);
        last = loss;
    }
    assert!(last < first.unwrap(), "loss {first:?} -> {last}");
    let up = runner.uploader();
    let eval = Batcher::new(
        test,
        Preprocess::for_images(Augment::None, 20, 20, None, false),
        BatchConfig {
            batch_size: 30,
            mode: Mode::Eval,
            shuffle: false,
            pad_last: true,
            threads: 1,
            ..BatchConfig::default()
        },
        move |b: HostBatch| up.eval_batch(&b),
    )
    .unwrap();
    runner.evaluate(eval).unwrap().accuracy()
}

#[test]
fn arrays_in_safetensors_and_npy_train_a_3_class_mlp_on_20x20_inputs() {
    let dir = TempDir::new("arrays-mlp");
    let (xtr, ytr) = three_classes(300, 1);
    let (xte, yte) = three_classes(90, 2);
    // safetensors: u8 [N, 1, 20, 20] and u8 labels, Keras-style names, one file.
    let st = dir.join("data.safetensors");
    write_safetensors(
        &st,
        vec![
            (
                "x_train",
                safetensors::Dtype::U8,
                vec![300, 1, 20, 20],
                xtr.clone(),
            ),
            ("y_train", safetensors::Dtype::U8, vec![300], ytr.clone()),
            (
                "x_test",
                safetensors::Dtype::U8,
                vec![90, 1, 20, 20],
                xte.clone(),
            ),
            ("y_test", safetensors::Dtype::U8, vec![90], yte.clone()),
        ],
    );
    // .npy: f32 [N, 20, 20, 1] (channels last, already scaled) and i64 labels, a directory of pairs.
    let npy = dir.join("npy");
    std::fs::create_dir_all(&npy).unwrap();
    let f = |x: &[u8]| x.iter().map(|&v| v as f32 / 255.0).collect::<Vec<f32>>();
    let l = |y: &[u8]| y.iter().map(|&v| v as i64).collect::<Vec<i64>>();
    write_npy(&npy.join("train_images.npy"), &[300, 20, 20, 1], &f(&xtr));
    write_npy(&npy.join("train_labels.npy"), &[300], &l(&ytr));
    write_npy(&npy.join("test_images.npy"), &[90, 20, 20, 1], &f(&xte));
    write_npy(&npy.join("test_labels.npy"), &[90], &l(&yte));

    let a = arrays::open(&st, 1).unwrap();
    let b = arrays::open(&npy, 1).unwrap();
    assert!(arrays::is_array_path(&st) && arrays::is_array_path(&npy));
    assert!(b.train.channels_last() && b.train.is_f32());
    // Both files hold the same samples: u8/255 and the f32 written from it are the same floats.
    let p = Preprocess::for_images(Augment::None, 20, 20, None, false);
    assert_eq!(all(a.train.clone(), &p), all(b.train.clone(), &p));
    let memory = Dataset::new(xtr, ytr, 1, 20, 20, 3).unwrap();
    assert_eq!(all(a.train.clone(), &p).x, all(Arc::new(memory), &p).x);

    let net = spec::parse_checked(
        b"name arrays-mlp\ninput 1 20 20\nclasses 3\nflatten\ndense 32 act=relu\ndense 3\n",
    )
    .unwrap();
    for s in [&a, &b] {
        let src: Source = s.train.clone().into();
        src.check_classes(3).unwrap();
        let acc = train_and_eval(&net, src, s.test.clone().unwrap().into(), 30);
        assert!(acc > 0.9, "{}: test accuracy {acc}", s.path.display());
    }
}

fn png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .save(path)
        .unwrap();
}

fn tree(dir: &Path) {
    for c in ["cat", "dog"] {
        std::fs::create_dir_all(dir.join(c)).unwrap();
        for i in 0..3 {
            png(&dir.join(c).join(format!("{i}.png")), 12, 10);
        }
    }
}

#[test]
fn bad_files_are_named_before_anything_runs_or_skipped_and_counted() {
    // A file that is not an image, by name.
    let d = TempDir::new("bad-name");
    tree(d.path());
    std::fs::write(d.join("cat/notes.txt"), "hello").unwrap();
    let e = msg(folder::scan(d.path(), &opts(3)));
    assert!(
        e.contains("cat/notes.txt") && e.contains("not an image file") && e.contains("--skip-bad"),
        "{e}"
    );
    let s = folder::scan(
        d.path(),
        &ScanOptions {
            skip_bad: true,
            ..opts(3)
        },
    )
    .unwrap();
    assert_eq!((s.train.len(), s.train.skipped().len()), (6, 1));
    assert!(s.train.skipped()[0].path.ends_with("cat/notes.txt"));

    // An image name over bytes that are not one; a truncated header.
    let d = TempDir::new("bad-bytes");
    tree(d.path());
    std::fs::write(d.join("dog/fake.jpg"), b"not a jpeg at all").unwrap();
    std::fs::write(
        d.join("dog/cut.png"),
        &std::fs::read(d.join("dog/0.png")).unwrap()[..20],
    )
    .unwrap();
    let e = msg(folder::scan(d.path(), &opts(3)));
    assert!(
        e.contains("dog/cut.png") && e.contains("1 more files"),
        "{e}"
    );
    let s = folder::scan(
        d.path(),
        &ScanOptions {
            skip_bad: true,
            ..opts(3)
        },
    )
    .unwrap();
    assert_eq!(s.train.skipped().len(), 2);

    // An empty class folder.
    let d = TempDir::new("empty-class");
    tree(d.path());
    std::fs::create_dir_all(d.join("emu")).unwrap();
    let e = msg(folder::scan(d.path(), &opts(3)));
    assert!(e.contains("emu") && e.contains("no usable image"), "{e}");
    let s = folder::scan(
        d.path(),
        &ScanOptions {
            skip_bad: true,
            ..opts(3)
        },
    )
    .unwrap();
    assert_eq!(s.train.empty_classes(), ["emu".to_string()]);
    assert_eq!(s.classes.len(), 3);

    // No class folders; a val class that training lacks.
    let d = TempDir::new("no-classes");
    png(&d.join("a.png"), 4, 4);
    assert!(msg(folder::scan(d.path(), &opts(3))).contains("no class folders"));
    let d = TempDir::new("val-class");
    tree(&d.join("train"));
    tree(&d.join("val"));
    std::fs::create_dir_all(d.join("val/emu")).unwrap();
    png(&d.join("val/emu/0.png"), 12, 10);
    let e = msg(folder::scan(d.path(), &opts(3)));
    assert!(
        e.contains("val/emu") && e.contains("not a class of the training split"),
        "{e}"
    );

    // Pixel data corrupt behind a good header: found when the batch is built, named.
    let d = TempDir::new("bad-pixels");
    tree(d.path());
    let good = std::fs::read(d.join("cat/1.png")).unwrap();
    std::fs::write(d.join("cat/1.png"), &good[..good.len() - 30]).unwrap();
    let s = folder::scan(d.path(), &opts(3)).unwrap();
    let pre = Preprocess::for_images(Augment::None, 10, 12, None, false);
    let cfg = BatchConfig {
        batch_size: 6,
        mode: Mode::Eval,
        shuffle: false,
        threads: 1,
        ..BatchConfig::default()
    };
    let e = msg(build_batch(
        s.train.clone(),
        &pre,
        &cfg,
        Position::default(),
    ));
    assert!(e.contains("cat/1.png") && e.contains("corrupt"), "{e}");

    // A size no transform resolves: named at the check, with what to change.
    let d = TempDir::new("bad-size");
    tree(d.path());
    png(&d.join("dog/big.png"), 13, 10);
    let s: Source = folder::scan(d.path(), &opts(3)).unwrap().train.into();
    let e = msg(s.check(&Preprocess::for_images(Augment::None, 10, 12, None, true)));
    assert!(
        e.contains("dog/big.png") && e.contains("13x10") && e.contains("--resize"),
        "{e}"
    );
    s.check(&Preprocess::for_images(
        Augment::None,
        10,
        12,
        Some(12),
        true,
    ))
    .unwrap();
    s.check(&Preprocess::for_images(
        Augment::CropFlip,
        10,
        12,
        None,
        true,
    ))
    .unwrap();
    let e = msg(s.check(&Preprocess::for_images(
        Augment::CropFlip,
        11,
        12,
        None,
        true,
    )));
    assert!(e.contains("smaller than the model's 12x11 input"), "{e}");
    assert!(msg(s.check_classes(1)).contains("the data has 2 classes"));

    // Arrays: a label out of range names the file, the array and the index.
    let d = TempDir::new("bad-label");
    write_safetensors(
        &d.join("a.safetensors"),
        vec![
            ("images", safetensors::Dtype::U8, vec![3, 2, 2], vec![0; 12]),
            (
                "labels",
                safetensors::Dtype::I32,
                vec![3],
                [0i32, 5, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ],
    );
    let s: Source = arrays::open(&d.join("a.safetensors"), 1)
        .unwrap()
        .train
        .into();
    let e = msg(s.check_classes(3));
    assert!(
        e.contains("a.safetensors") && e.contains("'labels'") && e.contains("label 5 at index 1"),
        "{e}"
    );
    s.check_classes(6).unwrap();
    // A truncated safetensors file; a negative label.
    let bytes = std::fs::read(d.join("a.safetensors")).unwrap();
    std::fs::write(d.join("cut.safetensors"), &bytes[..bytes.len() - 4]).unwrap();
    assert!(msg(arrays::open(&d.join("cut.safetensors"), 1)).contains("truncated"));
    write_safetensors(
        &d.join("neg.safetensors"),
        vec![
            ("images", safetensors::Dtype::U8, vec![2, 2, 2], vec![0; 8]),
            (
                "labels",
                safetensors::Dtype::I64,
                vec![2],
                [0i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ],
    );
    assert!(msg(arrays::open(&d.join("neg.safetensors"), 1)).contains("label -1 at index 1"));
}

#[test]
fn folder_batches_are_position_addressed_so_resume_and_thread_count_change_nothing() {
    let d = TempDir::new("folder-resume");
    for c in ["a", "b", "c"] {
        std::fs::create_dir_all(d.join(c)).unwrap();
        for i in 0..7 {
            png(&d.join(c).join(format!("{i}.png")), 30 + i * 3, 24 + i);
        }
    }
    let f = folder::scan(d.path(), &opts(3)).unwrap().train;
    let pre = Preprocess::for_images(Augment::RandomResizedCrop, 16, 16, None, true);
    let cfg = |threads, start| BatchConfig {
        batch_size: 4,
        seed: 9,
        threads,
        start,
        epochs: Some(3),
        prefetch: 4,
        ..BatchConfig::default()
    };
    let run = |threads, start| -> Vec<HostBatch> {
        Batcher::plain(f.clone(), pre.clone(), cfg(threads, start))
            .unwrap()
            .map(|r| r.unwrap().value)
            .collect()
    };
    let whole = run(1, Position::default());
    assert_eq!(whole.len(), 3 * (21 / 4));
    assert_eq!(run(3, Position::default()), whole);
    let from = Position { epoch: 1, batch: 2 };
    assert_eq!(run(2, from), whole[(21 / 4) + 2..].to_vec());
    assert_eq!(
        build_batch(f.clone(), &pre, &cfg(1, from), from).unwrap(),
        whole[(21 / 4) + 2]
    );
    // Epochs differ (their own shuffle and draws).
    assert_ne!(whole[0].x, whole[21 / 4].x);
}

#[test]
fn one_image_loads_as_the_network_input_as_evaluation_makes_it() {
    let d = TempDir::new("one-image");
    tree(d.path());
    png(&d.join("dog/wide.png"), 40, 20);
    let f = folder::scan(d.path(), &opts(3)).unwrap().train;
    let pre = Preprocess::for_images(Augment::RandomResizedCrop, 8, 8, None, false);
    let i = (0..f.len())
        .find(|&i| f.path(i).ends_with("wide.png"))
        .unwrap();
    let got = data::load_image(&f.path(i), 3, &pre).unwrap();
    let b = all(f, &pre);
    let per = 3 * 8 * 8;
    assert_eq!(got, b.x[i * per..(i + 1) * per]);
    assert!(msg(data::load_image(&d.join("nope.png"), 3, &pre)).contains("nope.png"));
}

#[test]
fn the_validation_split_is_per_class_disjoint_and_independent_of_the_run() {
    let src = DatasetKind::FashionMnist.default_dir().unwrap();
    let ds = subset(
        &data::load(&src, DatasetKind::FashionMnist, Split::Train).unwrap(),
        3000,
    );
    let source = Source::from(Arc::new(ds.clone()));
    let (train, val) = train::run::split_per_class(&source, 0.1).unwrap();
    assert_eq!(train.len() + val.len(), 3000);
    // round(0.1 · n_c) images of each class c are held out.
    for c in 0..10 {
        let n = ds.labels.iter().filter(|&&l| l == c).count();
        let held = (0..val.len()).filter(|&i| val.label(i) == c as i32).count();
        assert_eq!(held, (0.1 * n as f64).round() as usize, "class {c}");
    }
    // The two parts are disjoint and cover the split: as sets of (label, image) they add up.
    let pre = Preprocess::for_images(Augment::None, 28, 28, None, false);
    let mut parts = as_set(&all(train.clone(), &pre));
    parts.extend(as_set(&all(val.clone(), &pre)));
    parts.sort();
    assert_eq!(parts, as_set(&all(source.clone(), &pre)));
    // The same split every time (it depends on the labels only).
    let (_, again) = train::run::split_per_class(&source, 0.1).unwrap();
    assert_eq!(as_set(&all(again, &pre)), as_set(&all(val, &pre)));
    // A fraction that holds out nothing is an error naming the flag; every class keeps an image.
    let tiny = Source::from(Arc::new(subset(&ds, 5)));
    assert!(msg(train::run::split_per_class(&tiny, 0.01)).contains("--val-split"));
    let (t, _) = train::run::split_per_class(&tiny, 0.99).unwrap();
    let classes: std::collections::BTreeSet<i32> = (0..t.len()).map(|i| t.label(i)).collect();
    let all_classes: std::collections::BTreeSet<i32> = (0..5).map(|i| tiny.label(i)).collect();
    assert_eq!(classes, all_classes);
}
