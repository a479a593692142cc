//! Prefetching batch producers on background threads.
//!
//! A [`Batcher`] turns a [`Source`] (a [`crate::data::Dataset`] in memory, an image folder or array files
//! on disk) into a stream of preprocessed batches, computed ahead of the consumer by `threads` producer
//! threads through bounded queues (`prefetch` batches ahead in all). Reading, decoding and every transform
//! of a sample run on the producer that builds its batch.
//! Each batch passes through a hook on the producer thread (the training loop uses it to upload the
//! batch to the device ahead of time); the consumer receives the hook's output in order.
//!
//! **Order.** Training walks epochs `start.epoch, start.epoch + 1, …` (up to `epochs`, or forever),
//! each in the order of [`crate::order::epoch_order`]; batch `b` of an epoch holds the samples at
//! positions `b·B … b·B + B − 1` of that order. The partial last batch of an epoch is **dropped** in
//! training (an epoch has `⌊N/B⌋` batches), so every training step sees exactly `B` samples. Evaluation
//! makes one pass of `⌈N/B⌉` batches and **keeps** the partial last batch (its `rows` tell the
//! denominator; with `pad_last` it is padded to `B` with zero images and label −1).
//!
//! **Determinism.** A batch depends only on (dataset, preprocessing, seed, epoch, batch index): the
//! shuffle comes from (seed, epoch) and each sample's augmentation from (seed, epoch, position). So
//! starting at any [`Position`] yields exactly the batches an uninterrupted run yields from there, and
//! the number of threads changes nothing but speed.
//!
//! **Memory.** The producers hold at most [`held_batches`]`(cfg)` batches at once: each of the `threads`
//! producers has at most `depth = max(1, prefetch / threads)` finished items in its queue and one in the
//! making, which at its peak is the host batch and the hook's output (two batch sizes when the hook copies
//! the batch, as an upload to a CPU device does); the consumer holds one more. With `B·C·H·W·4 + B·4` bytes
//! per batch, the source's per-thread scratch ([`Source::sample_scratch_bytes`]: the file, the decoded
//! image, the resampled one) and [`THREAD_OVERHEAD`] per thread, [`memory_bound`] is the most the stream
//! holds beyond what the source keeps
//! (for a folder: its index, about 20 bytes plus one relative path per image), whatever the dataset's size.
//!
//! **Failure.** An error while building a batch (an unreadable or corrupt file, named), an error from the
//! hook, or a panic in a producer, reaches the consumer as an `Err` at that batch's place in the stream; the
//! stream then ends. Dropping the batcher stops and joins the
//! threads (a producer blocked on a full queue is woken by the disconnect).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::augment::Preprocess;
use crate::data::Source;
use crate::order::{augment_rng, epoch_order};
use crate::{Error, Result};

/// One preprocessed batch on the host: `x` is `f32` NCHW, `y` the `i32` labels.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBatch {
    pub epoch: u64,
    /// Batch index within the epoch (0-based).
    pub index: u64,
    /// Real samples in the batch; fewer than the batch size only for the last evaluation batch.
    pub rows: usize,
    /// `[B, C, H, W]`; `B` is `rows`, or the batch size when the batch is padded.
    pub shape: [usize; 4],
    pub x: Vec<f32>,
    /// One label per row of `x`; padding rows have −1.
    pub y: Vec<i32>,
    /// The dataset index of each real row.
    pub indices: Vec<u32>,
}

/// What the consumer receives: the hook's output for one batch, and where the batch sits.
#[derive(Clone, Debug, PartialEq)]
pub struct Ready<T> {
    pub epoch: u64,
    pub index: u64,
    pub rows: usize,
    pub value: T,
}

/// Training (whole batches, many epochs) or evaluation (one pass, partial last batch kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Train,
    Eval,
}

/// A place in the stream of batches: batch `batch` of epoch `epoch` (both 0-based).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Position {
    pub epoch: u64,
    pub batch: u64,
}

/// How to cut a dataset into batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    pub batch_size: usize,
    pub seed: u64,
    /// `false`: identity order every epoch.
    pub shuffle: bool,
    pub mode: Mode,
    /// The first batch produced. In evaluation, `epoch` only selects the random streams.
    pub start: Position,
    /// Training stops before this epoch; `None` runs forever. Ignored in evaluation.
    pub epochs: Option<u64>,
    /// Batches computed ahead of the consumer, over all threads (at least 1 per thread).
    pub prefetch: usize,
    /// Producer threads.
    pub threads: usize,
    /// Evaluation: pad the partial last batch to `batch_size` (zero images, label −1).
    pub pad_last: bool,
}

impl Default for BatchConfig {
    fn default() -> BatchConfig {
        BatchConfig {
            batch_size: 128,
            seed: 0,
            shuffle: true,
            mode: Mode::Train,
            start: Position::default(),
            epochs: None,
            prefetch: 4,
            threads: 2,
            pad_last: false,
        }
    }
}

/// Batches in one epoch of `n` samples: `⌊n/B⌋` in training, `⌈n/B⌉` in evaluation.
pub fn batches_per_epoch(n: usize, batch_size: usize, mode: Mode) -> u64 {
    if batch_size == 0 {
        return 0;
    }
    match mode {
        Mode::Train => (n / batch_size) as u64,
        Mode::Eval => n.div_ceil(batch_size) as u64,
    }
}

/// Batches the producers of `cfg` hold at most, counting the consumer's (see the module doc).
pub fn held_batches(cfg: &BatchConfig) -> u64 {
    let threads = cfg.threads.max(1) as u64;
    let depth = (cfg.prefetch as u64 / threads).max(1);
    threads * (depth + 2) + 1
}

/// What a producer thread costs besides its data: the pages of its stack it touches, its allocator
/// arena's bookkeeping, the resampler's buffers (measured: 0.1–0.3 MiB; `netspec bench-data` with
/// batches of one 8×8 image).
pub const THREAD_OVERHEAD: u64 = 1 << 20;

/// The most bytes a [`Batcher`] over `source` with `pre` and `cfg` holds at once (see the module doc).
pub fn memory_bound(source: &Source, pre: &Preprocess, cfg: &BatchConfig) -> u64 {
    let b = cfg.batch_size as u64;
    let batch = b * pre.out_len(source.channels()) as u64 * 4 + b * 4 + b * 4;
    held_batches(cfg) * batch
        + cfg.threads.max(1) as u64 * (source.sample_scratch_bytes(pre) + THREAD_OVERHEAD)
}

/// Everything a producer needs to build any batch.
struct Plan {
    ds: Source,
    pre: Preprocess,
    cfg: BatchConfig,
    tables: Vec<[f32; 256]>,
    per_epoch: u64,
}

impl Plan {
    fn new(ds: Source, pre: Preprocess, cfg: BatchConfig) -> Result<Plan> {
        if cfg.batch_size == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }
        ds.check(&pre)?;
        let per_epoch = batches_per_epoch(ds.len(), cfg.batch_size, cfg.mode);
        if per_epoch == 0 {
            return Err(Error::Invalid(format!(
                "{} samples make no batch of {} ({})",
                ds.len(),
                cfg.batch_size,
                match cfg.mode {
                    Mode::Train => "training drops the partial last batch",
                    Mode::Eval => "the dataset is empty",
                }
            )));
        }
        if cfg.mode == Mode::Eval && cfg.start.batch > per_epoch {
            return Err(Error::Invalid(format!(
                "evaluation start batch {} is past the {per_epoch} batches of the pass",
                cfg.start.batch
            )));
        }
        let tables = pre.tables(ds.channels());
        Ok(Plan {
            ds,
            pre,
            cfg,
            tables,
            per_epoch,
        })
    }

    /// How many batches the stream holds from the start; `None` when endless.
    fn total(&self) -> Option<u64> {
        match self.cfg.mode {
            Mode::Train => self.cfg.epochs.map(|end| {
                let first = self.cfg.start.epoch * self.per_epoch + self.cfg.start.batch;
                (end * self.per_epoch).saturating_sub(first)
            }),
            Mode::Eval => Some(self.per_epoch - self.cfg.start.batch),
        }
    }

    /// The position of the `seq`-th batch of the stream.
    fn position(&self, seq: u64) -> Position {
        match self.cfg.mode {
            Mode::Train => {
                let linear = self.cfg.start.epoch * self.per_epoch + self.cfg.start.batch + seq;
                Position {
                    epoch: linear / self.per_epoch,
                    batch: linear % self.per_epoch,
                }
            }
            Mode::Eval => Position {
                epoch: self.cfg.start.epoch,
                batch: self.cfg.start.batch + seq,
            },
        }
    }

    fn build(&self, pos: Position, order: &[u32]) -> Result<HostBatch> {
        let (ds, b) = (&self.ds, self.cfg.batch_size);
        let first = pos.batch as usize * b;
        let rows = b.min(ds.len() - first);
        let padded = if self.cfg.mode == Mode::Eval && self.cfg.pad_last {
            b
        } else {
            rows
        };
        let c = ds.channels();
        let len = self.pre.out_len(c);
        let mut x = vec![0f32; padded * len];
        let mut y = vec![-1i32; padded];
        let mut indices = Vec::with_capacity(rows);
        for k in 0..rows {
            let p = first + k;
            let idx = order[p] as usize;
            let mut rng = augment_rng(self.cfg.seed, pos.epoch, p as u64);
            ds.write(
                idx,
                &self.pre,
                &self.tables,
                &mut rng,
                &mut x[k * len..(k + 1) * len],
            )?;
            y[k] = ds.label(idx);
            indices.push(idx as u32);
        }
        Ok(HostBatch {
            epoch: pos.epoch,
            index: pos.batch,
            rows,
            shape: [padded, c, self.pre.out_h, self.pre.out_w],
            x,
            y,
            indices,
        })
    }

    fn order(&self, epoch: u64) -> Vec<u32> {
        epoch_order(self.ds.len(), self.cfg.seed, epoch, self.cfg.shuffle)
    }
}

/// Builds one batch synchronously (the same batch a [`Batcher`] with `cfg` yields at `pos`).
pub fn build_batch(
    ds: impl Into<Source>,
    pre: &Preprocess,
    cfg: &BatchConfig,
    pos: Position,
) -> Result<HostBatch> {
    let plan = Plan::new(ds.into(), pre.clone(), cfg.clone())?;
    if pos.batch >= plan.per_epoch {
        return Err(Error::Invalid(format!(
            "batch {} is past the {} batches of an epoch",
            pos.batch, plan.per_epoch
        )));
    }
    plan.build(pos, &plan.order(pos.epoch))
}

type Hook<T> = dyn Fn(HostBatch) -> Result<T> + Send + Sync;
type Msg<T> = Result<Ready<T>>;

/// A prefetching, resumable stream of batches (see the module doc).
pub struct Batcher<T> {
    rx: Vec<Receiver<Msg<T>>>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    seq: u64,
    total: Option<u64>,
    per_epoch: u64,
    done: bool,
    wait: Duration,
}

impl Batcher<HostBatch> {
    /// A batcher whose items are the host batches themselves.
    pub fn plain(
        ds: impl Into<Source>,
        pre: Preprocess,
        cfg: BatchConfig,
    ) -> Result<Batcher<HostBatch>> {
        Batcher::new(ds, pre, cfg, Ok)
    }
}

impl<T: Send + 'static> Batcher<T> {
    /// Starts the producer threads. `hook` runs on them, once per batch, in no particular thread
    /// order; its outputs reach the consumer in stream order.
    pub fn new<F>(
        ds: impl Into<Source>,
        pre: Preprocess,
        cfg: BatchConfig,
        hook: F,
    ) -> Result<Batcher<T>>
    where
        F: Fn(HostBatch) -> Result<T> + Send + Sync + 'static,
    {
        if cfg.threads == 0 {
            return Err(Error::Invalid(
                "batcher: at least one producer thread is needed".into(),
            ));
        }
        let threads = cfg.threads;
        let depth = (cfg.prefetch / threads).max(1);
        let plan = Arc::new(Plan::new(ds.into(), pre, cfg)?);
        let hook: Arc<Hook<T>> = Arc::new(hook);
        let stop = Arc::new(AtomicBool::new(false));
        let (total, per_epoch) = (plan.total(), plan.per_epoch);
        let mut rx = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for t in 0..threads {
            let (tx, r) = sync_channel(depth);
            rx.push(r);
            let (plan, hook, flag) = (plan.clone(), hook.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("netspec-batch-{t}"))
                .spawn(move || produce(&plan, &*hook, &flag, tx, t as u64, threads as u64, total));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    drop(rx);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(Error::Producer(format!(
                        "cannot start a producer thread: {e}"
                    )));
                }
            }
        }
        Ok(Batcher {
            rx,
            handles,
            stop,
            seq: 0,
            total,
            per_epoch,
            done: false,
            wait: Duration::ZERO,
        })
    }

    /// The next batch, `None` at the end of the stream (or after an error was returned).
    pub fn next_batch(&mut self) -> Option<Result<Ready<T>>> {
        if self.done || self.total.is_some_and(|t| self.seq >= t) {
            self.done = true;
            return None;
        }
        let w = (self.seq % self.rx.len() as u64) as usize;
        let t0 = Instant::now();
        let got = self.rx[w].recv();
        self.wait += t0.elapsed();
        match got {
            Ok(Ok(ready)) => {
                self.seq += 1;
                Some(Ok(ready))
            }
            Ok(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Err(_) => {
                self.done = true;
                Some(Err(Error::Producer(format!(
                    "producer thread {w} stopped before batch {} of the stream",
                    self.seq
                ))))
            }
        }
    }

    /// Total time the consumer spent waiting in [`Batcher::next_batch`] for a batch not yet ready.
    pub fn data_wait(&self) -> Duration {
        self.wait
    }

    /// Batches delivered so far.
    pub fn delivered(&self) -> u64 {
        self.seq
    }

    /// Batches per epoch (training: whole batches only).
    pub fn batches_per_epoch(&self) -> u64 {
        self.per_epoch
    }

    /// Batches the stream holds from its start (`None`: endless).
    pub fn len_hint(&self) -> Option<u64> {
        self.total
    }
}

impl<T: Send + 'static> Iterator for Batcher<T> {
    type Item = Result<Ready<T>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
    }
}

impl<T> Drop for Batcher<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Disconnecting wakes producers blocked on a full queue; then they see `stop` and return.
        self.rx.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Producer `t` of `threads` builds the batches whose stream index is `t (mod threads)`.
fn produce<T>(
    plan: &Plan,
    hook: &Hook<T>,
    stop: &AtomicBool,
    tx: SyncSender<Msg<T>>,
    t: u64,
    threads: u64,
    total: Option<u64>,
) {
    let mut cached: Option<(u64, Vec<u32>)> = None;
    let mut seq = t;
    while !stop.load(Ordering::SeqCst) && total.is_none_or(|n| seq < n) {
        let pos = plan.position(seq);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if cached.as_ref().is_some_and(|(e, _)| *e != pos.epoch) {
                cached = None;
            }
            let order = &cached
                .get_or_insert_with(|| (pos.epoch, plan.order(pos.epoch)))
                .1;
            let batch = plan.build(pos, order)?;
            let rows = batch.rows;
            hook(batch).map(|value| Ready {
                epoch: pos.epoch,
                index: pos.batch,
                rows,
                value,
            })
        }));
        let msg = match outcome {
            Ok(r) => r,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".into());
                Err(Error::Producer(format!(
                    "panicked at epoch {} batch {}: {what}",
                    pos.epoch, pos.batch
                )))
            }
        };
        let failed = msg.is_err();
        if tx.send(msg).is_err() || failed {
            return;
        }
        seq += threads;
    }
}
