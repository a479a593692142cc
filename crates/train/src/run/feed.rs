//! A run's data: loading both splits (checked against the spec before any code is generated) and
//! the batch producers that feed the step runner. The producers upload on their own threads: a
//! training batch arrives on the devices with its learning rate, an evaluation batch padded to the
//! eval program's size.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use spec::NetSpec;

use crate::augment::Preprocess;
use crate::batch::{BatchConfig, Batcher, HostBatch, Mode, Position};
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::device::DeviceTensor;
use crate::runner::{DeviceBatch, Uploader};
use crate::schedule::Schedule;
use crate::{Error, Result};

/// The loaded splits and their preprocessing.
pub struct Data {
    pub kind: DatasetKind,
    pub dir: PathBuf,
    pub train: Arc<Dataset>,
    pub test: Arc<Dataset>,
    pub pre_train: Preprocess,
    pub pre_test: Preprocess,
}

/// Loads both splits of `kind` and checks that they fit `spec` (before any code is generated).
pub fn load_data(
    spec: &NetSpec,
    kind: DatasetKind,
    dir: Option<&Path>,
    augment: bool,
) -> Result<Data> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => kind.default_dir().ok_or_else(|| {
            Error::Invalid(format!("{kind} has no default location: pass --data DIR"))
        })?,
    };
    let pre_train = Preprocess::for_kind(kind, true, augment);
    let pre_test = Preprocess::for_kind(kind, false, false);
    let (c, h, w) = kind.stored_shape(Split::Test);
    let net_in = [c, pre_test.out_h.min(h), pre_test.out_w.min(w)];
    if net_in != spec.input {
        return Err(Error::Invalid(format!(
            "model {} takes input [C, H, W] = {:?}, but {kind} gives {:?}: the model does not fit the data",
            spec.name, spec.input, net_in
        )));
    }
    if kind.classes() > spec.num_classes {
        return Err(Error::Invalid(format!(
            "model {} has {} classes, but {kind} has {}",
            spec.name,
            spec.num_classes,
            kind.classes()
        )));
    }
    let train = data::load(&dir, kind, Split::Train)?;
    let test = data::load(&dir, kind, Split::Test)?;
    for (ds, split) in [(&train, "train"), (&test, "test")] {
        if ds.c != spec.input[0] {
            return Err(Error::Invalid(format!(
                "model {} takes {} channels, but the {split} images in {} have {}",
                spec.name,
                spec.input[0],
                dir.display(),
                ds.c
            )));
        }
    }
    pre_train.check(&train)?;
    pre_test.check(&test)?;
    Ok(Data {
        kind,
        dir,
        train: Arc::new(train),
        test: Arc::new(test),
        pre_train,
        pre_test,
    })
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
            let batch = up.train_batch(&b)?;
            let lr_value = schedule.lr(b.epoch * per_epoch + b.index);
            let lr = up.rate(lr_value)?;
            Ok(Uploaded {
                batch,
                lr,
                lr_value,
            })
        },
    )
}

/// The test split in order, in batches of the eval program's size, the last one padded (rows
/// labelled −1).
pub fn test_batches(
    data: &Data,
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
    Batcher::new(
        data.test.clone(),
        data.pre_test.clone(),
        cfg,
        move |b: HostBatch| up.eval_batch(&b),
    )
}
