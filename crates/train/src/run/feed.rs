//! A run's data: loading its splits (checked against the spec before any code is generated), the
//! validation split, and the batch producers that feed the step runner. The producers upload on
//! their own threads: a training batch arrives on the devices with its learning rate, an evaluation
//! batch padded to the eval program's size.
//!
//! **Splits.** A built-in dataset has a training and a test split. An image folder has `train/` (or
//! is one flat class tree) and may have `val/` and `test/`; arrays may have `train`, `val` and `test`
//! arrays. The splits a run uses:
//! - with `--val-split F`: validation = F of each class of the training split
//!   ([`split_per_class`]), training = the rest; test = `test/` if present, else `val/` (Imagenette as
//!   distributed has only `train/` and `val/`, and its `val/` is what papers report);
//! - without: validation = `val/` if present; test = `test/` (or the built-in test split).
//!
//! With a validation split, every epoch is evaluated on it (model selection, `best.safetensors`,
//! early stopping) and the test split once at the end; without one, every epoch is evaluated on the
//! test split, as before validation splits existed.

use std::path::{Path, PathBuf};

use spec::{Dataset as DatasetName, NetSpec, RunConfig};

use crate::augment::Preprocess;
use crate::batch::{BatchConfig, Batcher, HostBatch, Mode, Position};
use crate::data::{self, arrays, folder, DatasetKind, Source, Split, Subset};
use crate::device::DeviceTensor;
use crate::runner::{DeviceBatch, Uploader};
use crate::schedule::Schedule;
use crate::{Error, Result};

/// A run's splits and their preprocessing (see the module doc).
#[derive(Clone, Debug)]
pub struct Data {
    pub dataset: DatasetName,
    /// Where the data was read from.
    pub path: PathBuf,
    pub train: Source,
    /// The validation split, if any, and where it came from (for messages).
    pub val: Option<Source>,
    pub val_from: String,
    /// The test split, if any, and where it came from.
    pub test: Option<Source>,
    pub test_from: String,
    pub pre_train: Preprocess,
    pub pre_eval: Preprocess,
    /// The class names, index = label (image folders).
    pub class_names: Option<Vec<String>>,
    /// What is worth telling the user about the data (files left out by `--skip-bad`).
    pub notes: Vec<String>,
}

/// How to read the data of a run (what is not the run's configuration).
#[derive(Clone, Debug, Default)]
pub struct DataOptions {
    /// The data path; `None`: the built-in dataset's default location.
    pub path: Option<PathBuf>,
    /// Leave out (and count) bad image files instead of failing (image folders).
    pub skip_bad: bool,
}

/// The salt of the validation split's per-class permutations (`"val_splt"`).
pub const VAL_SPLIT_SEED: u64 = 0x7661_6c5f_7370_6c74;

/// Splits `source` per class: of the `n` samples of class `c` (in index order), the first
/// `k = min(round(fraction·n), n − 1)` positions of `order::permutation(n, VAL_SPLIT_SEED, c)` are
/// held out (so every class keeps at least one training sample); returns (training, held out), each
/// in index order. The split depends only on the labels, not on the run's seed, so runs with
/// different seeds are compared on the same validation images. An empty held-out part is an error.
pub fn split_per_class(source: &Source, fraction: f32) -> Result<(Source, Source)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::Invalid(format!(
            "--val-split must lie strictly between 0 and 1, got {fraction}"
        )));
    }
    let classes = source.classes();
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for i in 0..source.len() {
        let l = source.label(i) as usize;
        if l >= by_class.len() {
            by_class.resize(l + 1, Vec::new());
        }
        by_class[l].push(i);
    }
    let mut held = vec![false; source.len()];
    for (c, idx) in by_class.iter().enumerate() {
        let n = idx.len();
        if n == 0 {
            continue;
        }
        let k = ((fraction as f64 * n as f64).round() as usize).min(n - 1);
        let perm = crate::order::permutation(n, VAL_SPLIT_SEED, c as u64);
        for &p in &perm[..k] {
            held[idx[p as usize]] = true;
        }
    }
    let (val, train): (Vec<usize>, Vec<usize>) = (0..source.len()).partition(|&i| held[i]);
    if val.is_empty() {
        return Err(Error::Invalid(format!(
            "--val-split {fraction} holds out no image of {} (each class keeps at least one training image): use a larger fraction or more data",
            source.describe()
        )));
    }
    let part = |indices: Vec<usize>| {
        Source::Subset(std::sync::Arc::new(Subset {
            source: source.clone(),
            indices,
        }))
    };
    Ok((part(train), part(val)))
}

/// The dataset that `--data PATH` means when `--dataset` is not given: `current` (the recipe's) if
/// it is a built-in dataset whose training file is in `PATH`; else array data
/// ([`arrays::is_array_path`]); else an image folder if `PATH` is a directory with subdirectories;
/// else `current` (whose loader then names the file it misses).
pub fn detect_dataset(path: &Path, current: DatasetName) -> DatasetName {
    if let Some(k) = DatasetKind::of(current) {
        if k.found_in(path) {
            return current;
        }
    }
    if arrays::is_array_path(path) {
        return DatasetName::Arrays;
    }
    let has_subdirs = std::fs::read_dir(path).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .any(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
    });
    if has_subdirs {
        return DatasetName::Folder;
    }
    current
}

/// Loads the splits of `config.dataset` and checks them against `spec` (input size, channels, class
/// count, every image's size from its header) before any code is generated.
pub fn load_data(spec: &NetSpec, config: &RunConfig, opts: &DataOptions) -> Result<Data> {
    let [channels, h, w] = spec.input;
    let pre_train = Preprocess::for_config(config, h, w, true);
    let pre_eval = Preprocess::for_config(config, h, w, false);
    let classes = spec.num_classes;
    let mut notes = Vec::new();
    let (path, train, val_dir, test, class_names) = match DatasetKind::of(config.dataset) {
        Some(kind) => {
            let dir = match &opts.path {
                Some(d) => d.clone(),
                None => kind.default_dir().ok_or_else(|| {
                    Error::Invalid(format!("{kind} has no default location: pass --data DIR"))
                })?,
            };
            let net_in = config.dataset.input().ok_or_else(|| {
                Error::Invalid(format!("internal: {kind} has no input size of its own"))
            })?;
            let transformed =
                config.resize.is_some() || config.augment == spec::Augment::RandomResizedCrop;
            if spec.input[0] != net_in[0] || (!transformed && spec.input != net_in) {
                return Err(Error::Invalid(format!(
                    "model {} takes input [C, H, W] = {:?}, but {kind} gives {:?}: the model does not fit the data",
                    spec.name, spec.input, net_in
                )));
            }
            if kind.classes() > classes {
                return Err(Error::Invalid(format!(
                    "model {} has {classes} classes, but {kind} has {}",
                    spec.name,
                    kind.classes()
                )));
            }
            let train = data::load(&dir, kind, Split::Train)?;
            let test = data::load(&dir, kind, Split::Test)?;
            for (ds, split) in [(&train, "train"), (&test, "test")] {
                if ds.c != channels {
                    return Err(Error::Invalid(format!(
                        "model {} takes {channels} channels, but the {split} images in {} have {}",
                        spec.name,
                        dir.display(),
                        ds.c
                    )));
                }
            }
            (
                dir,
                Source::from(train),
                None,
                Some(Source::from(test)),
                None,
            )
        }
        None => {
            let path = opts.path.clone().ok_or_else(|| {
                Error::Invalid(format!(
                    "the run's data is {} data: pass its path with --data",
                    config.dataset
                ))
            })?;
            match config.dataset {
                DatasetName::Folder => {
                    let scan = folder::scan(
                        &path,
                        &folder::ScanOptions {
                            channels,
                            skip_bad: opts.skip_bad,
                            ..folder::ScanOptions::default()
                        },
                    )?;
                    let names: Vec<String> = scan.classes.to_vec();
                    if names.len() != classes {
                        let shown = names.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
                        return Err(Error::data(
                            &path,
                            format!(
                                "the folder has {} classes ({shown}{}), model {} has {classes}: train a spec whose `classes` is {} (write the model with `netspec zoo {} > my.ns`, change its class count, and train my.ns)",
                                names.len(),
                                if names.len() > 8 { ", …" } else { "" },
                                spec.name,
                                names.len(),
                                spec.name
                            ),
                        ));
                    }
                    for split in [Some(&scan.train), scan.val.as_ref(), scan.test.as_ref()]
                        .into_iter()
                        .flatten()
                    {
                        if !split.skipped().is_empty() || !split.empty_classes().is_empty() {
                            notes.push(format!(
                                "{}: left out {} bad files{}{} (--skip-bad)",
                                split.dir().display(),
                                split.skipped().len(),
                                split
                                    .skipped()
                                    .first()
                                    .map(|s| format!(", e.g. {}: {}", s.path.display(), s.reason))
                                    .unwrap_or_default(),
                                if split.empty_classes().is_empty() {
                                    String::new()
                                } else {
                                    format!("; empty classes: {}", split.empty_classes().join(", "))
                                }
                            ));
                        }
                    }
                    (
                        path,
                        Source::from(scan.train),
                        scan.val.map(Source::from),
                        scan.test.map(Source::from),
                        Some(names),
                    )
                }
                DatasetName::Arrays => {
                    let a = arrays::open(&path, channels)?;
                    let (train, val, test) = (
                        Source::from(a.train),
                        a.val.map(Source::from),
                        a.test.map(Source::from),
                    );
                    for s in [Some(&train), val.as_ref(), test.as_ref()]
                        .into_iter()
                        .flatten()
                    {
                        s.check_classes(classes).map_err(|e| {
                            Error::Invalid(format!(
                                "{e}: train a spec with more classes, or fix the labels"
                            ))
                        })?;
                    }
                    (path, train, val, test, None)
                }
                DatasetName::Mnist
                | DatasetName::FashionMnist
                | DatasetName::Cifar10
                | DatasetName::Imagenette => unreachable!("built-in datasets have a loader kind"),
            }
        }
    };
    let split_from = |what: &str| format!("{what} of {}", path.display());
    let (train, val, val_from, test, test_from) = match config.val_split {
        Some(f) => {
            let (train, held) = split_per_class(&train, f)?;
            let (test, test_from) = match (test, val_dir) {
                (Some(t), _) => (Some(t), split_from("the test split")),
                (None, Some(v)) => (Some(v), split_from("the val split")),
                (None, None) => (None, String::new()),
            };
            let val_from = format!(
                "{} images held out of the training split (--val-split {f})",
                held.len()
            );
            (train, Some(held), val_from, test, test_from)
        }
        None => (
            train,
            val_dir,
            split_from("the val split"),
            test,
            split_from("the test split"),
        ),
    };
    if config.early_stop.is_some() && val.is_none() {
        return Err(Error::Invalid(format!(
            "--early-stop needs a validation split, and {} has none: pass --val-split FRACTION (or give the data a val split)",
            path.display()
        )));
    }
    if train.is_empty() {
        return Err(Error::data(&path, "the training split has no images"));
    }
    train.check(&pre_train)?;
    for s in [val.as_ref(), test.as_ref()].into_iter().flatten() {
        s.check(&pre_eval)?;
    }
    Ok(Data {
        dataset: config.dataset,
        path,
        train,
        val,
        val_from,
        test,
        test_from,
        pre_train,
        pre_eval,
        class_names,
        notes,
    })
}

impl Data {
    /// One line about the splits, for the run's log.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} from {}: {} training images",
            self.dataset,
            self.path.display(),
            self.train.len()
        );
        if let Some(v) = &self.val {
            s += &format!(", {} validation images", v.len());
        }
        if let Some(t) = &self.test {
            s += &format!(", {} test images", t.len());
        }
        if let Some(c) = &self.class_names {
            s += &format!(", {} classes", c.len());
        }
        s
    }
}

/// A training batch on the devices with its learning rate.
pub struct Uploaded {
    pub batch: DeviceBatch,
    pub lr: DeviceTensor,
    pub lr_value: f32,
}

/// How the training batches of a run are cut and produced.
pub struct TrainFeed {
    pub batch_size: usize,
    pub seed: u64,
    pub shuffle: bool,
    /// Epochs in all (the stream ends after the last).
    pub epochs: u64,
    /// The first batch to produce.
    pub start: Position,
    pub per_epoch: u64,
    pub schedule: Schedule,
    pub threads: usize,
    pub prefetch: usize,
}

/// The training batches from `feed.start` on, uploaded with the rate of their step
/// (`schedule.lr(epoch · per_epoch + index)`).
pub fn train_batches(data: &Data, feed: TrainFeed, up: Uploader) -> Result<Batcher<Uploaded>> {
    train_batches_with(data, feed, move |b: HostBatch, lr_value: f32| {
        let batch = up.train_batch(&b)?;
        let lr = up.rate(lr_value)?;
        Ok(Uploaded {
            batch,
            lr,
            lr_value,
        })
    })
}

/// The batches [`train_batches`] uploads, on the host, each with its rate: the same stream (one
/// definition), for replaying a run's first steps on an executor outside the training loop (the IREE
/// trace test, `crates/train/tests/iree_trace.rs`).
pub fn host_train_batches(data: &Data, feed: TrainFeed) -> Result<Batcher<(HostBatch, f32)>> {
    train_batches_with(data, feed, |b: HostBatch, lr: f32| Ok((b, lr)))
}

fn train_batches_with<T, F>(data: &Data, feed: TrainFeed, hook: F) -> Result<Batcher<T>>
where
    T: Send + 'static,
    F: Fn(HostBatch, f32) -> Result<T> + Send + Sync + 'static,
{
    let cfg = BatchConfig {
        batch_size: feed.batch_size,
        seed: feed.seed,
        shuffle: feed.shuffle,
        mode: Mode::Train,
        start: feed.start,
        epochs: Some(feed.epochs),
        prefetch: feed.prefetch.max(1),
        threads: feed.threads.max(1),
        pad_last: false,
    };
    let (schedule, per_epoch) = (feed.schedule, feed.per_epoch);
    Batcher::new(
        data.train.clone(),
        data.pre_train.clone(),
        cfg,
        move |b: HostBatch| {
            let lr = schedule.lr(b.epoch * per_epoch + b.index);
            hook(b, lr)
        },
    )
}

/// An evaluation split in order, in batches of the eval program's size, the last one padded (rows
/// labelled −1).
pub fn eval_batches(
    source: &Source,
    pre: &Preprocess,
    up: Uploader,
    threads: usize,
    prefetch: usize,
) -> Result<Batcher<DeviceBatch>> {
    let cfg = BatchConfig {
        batch_size: up.eval_dims()?[0],
        seed: 0,
        shuffle: false,
        mode: Mode::Eval,
        start: Position::default(),
        epochs: None,
        prefetch: prefetch.max(1),
        threads: threads.max(1),
        pad_last: true,
    };
    Batcher::new(source.clone(), pre.clone(), cfg, move |b: HostBatch| {
        up.eval_batch(&b)
    })
}
