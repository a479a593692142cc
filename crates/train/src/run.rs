//! A whole training run: data, code generation, compilation, the step loop, evaluation each epoch,
//! traces, checkpoints, resume, interruption and divergence.
//!
//! **Steps and positions.** With `P` whole batches per epoch, global step `s` (0-based, = the number
//! of updates done) trains on batch `s mod P` of epoch `⌊s/P⌋` with rate `schedule.lr(s)`. A run
//! resumed from a checkpoint at step `s` therefore sees exactly the batches, rates and state an
//! uninterrupted run sees from `s` on, and (XLA:CPU being deterministic for a fixed executable and
//! inputs) writes the same trace lines.
//!
//! **Checkpoints** go to `<dir>/last.safetensors` (atomically) at each epoch end, when the run stops
//! at `max_steps`, and when interrupted. A state holding NaN/Inf is never written, so the file
//! always holds the last good state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use spec::NetSpec;

use crate::augment::Preprocess;
use crate::batch::{BatchConfig, Batcher, HostBatch, Mode, Position};
use crate::checkpoint::{self, DataRef, TensorData, View};
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::schedule::Schedule;
use crate::trace::{self, EpochLine, Header, Step, TraceWriter};
use crate::trainer::{Compiled, EvalOut, HostTensor, Trainer};
use crate::{Error, Result};

/// Version string written into trace headers.
pub const EMITTER_VERSION: &str = concat!("netspec ", env!("CARGO_PKG_VERSION"));
/// The checkpoint file inside a checkpoint directory.
pub const LAST: &str = "last.safetensors";
/// The metadata key holding the run's JSON in a checkpoint.
pub const META_KEY: &str = "netspec";
const FORMAT: &str = "netspec-checkpoint-1";

/// The hyperparameters that define a run. They go into trace headers and checkpoints, and a
/// resumed run must have the same ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyper {
    pub optimizer: spec::Optimizer,
    /// Peak learning rate.
    pub lr: f32,
    pub batch_size: usize,
    pub epochs: u64,
    pub weight_decay: f32,
    pub label_smoothing: f32,
    pub warmup_epochs: u64,
    pub schedule: spec::Schedule,
    pub seed: u64,
    pub shuffle: bool,
    /// The recipe's augmentation (crop/flip where the dataset has them).
    pub augment: bool,
    pub dataset: DatasetKind,
}

/// The dataset a recipe names, as the loaders know it. MNIST recipes train on Fashion-MNIST by
/// default: it is the one installed (`scripts/setup/data.sh`) and has the same shape.
pub fn dataset_of(d: spec::Dataset) -> DatasetKind {
    match d {
        spec::Dataset::Mnist | spec::Dataset::FashionMnist => DatasetKind::FashionMnist,
        spec::Dataset::Cifar10 => DatasetKind::Cifar10,
        spec::Dataset::Imagenette => DatasetKind::Imagenette,
    }
}

/// The dataset for a spec that has no recipe, by its input shape.
pub fn dataset_for_input(input: [usize; 3]) -> Option<DatasetKind> {
    match input {
        [1, 28, 28] => Some(DatasetKind::FashionMnist),
        [3, 32, 32] => Some(DatasetKind::Cifar10),
        [3, 224, 224] => Some(DatasetKind::Imagenette),
        _ => None,
    }
}

pub fn optimizer_name(o: spec::Optimizer) -> &'static str {
    match o {
        spec::Optimizer::Sgd => "sgd",
        spec::Optimizer::Momentum { .. } => "momentum",
        spec::Optimizer::Adam => "adam",
        spec::Optimizer::AdamW => "adamw",
    }
}

/// `sgd`, `momentum` (μ = 0.9), `adam`, `adamw`.
pub fn parse_optimizer(s: &str) -> Result<spec::Optimizer> {
    match s {
        "sgd" => Ok(spec::Optimizer::Sgd),
        "momentum" => Ok(spec::Optimizer::Momentum { mu: 0.9 }),
        "adam" => Ok(spec::Optimizer::Adam),
        "adamw" => Ok(spec::Optimizer::AdamW),
        _ => Err(Error::Invalid(format!(
            "unknown optimizer '{s}' (expected sgd, momentum, adam or adamw)"
        ))),
    }
}

pub fn schedule_name(s: spec::Schedule) -> &'static str {
    match s {
        spec::Schedule::Constant => "constant",
        spec::Schedule::Cosine => "cosine",
    }
}

pub fn parse_schedule(s: &str) -> Result<spec::Schedule> {
    match s {
        "constant" => Ok(spec::Schedule::Constant),
        "cosine" => Ok(spec::Schedule::Cosine),
        _ => Err(Error::Invalid(format!(
            "unknown schedule '{s}' (expected constant or cosine)"
        ))),
    }
}

impl Hyper {
    /// A recipe's hyperparameters.
    pub fn from_recipe(r: &spec::Recipe) -> Hyper {
        Hyper {
            optimizer: r.optimizer,
            lr: r.lr,
            batch_size: r.batch_size,
            epochs: r.epochs as u64,
            weight_decay: r.weight_decay,
            label_smoothing: r.label_smoothing,
            warmup_epochs: r.warmup_epochs as u64,
            schedule: r.schedule,
            seed: r.seed,
            shuffle: true,
            augment: r.augment.random_crop || r.augment.hflip,
            dataset: dataset_of(r.dataset),
        }
    }

    /// The JSON in trace headers and checkpoints (`f32` values as their shortest decimal).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "optimizer": optimizer_name(self.optimizer),
            "lr": f32_json(self.lr),
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "weight_decay": f32_json(self.weight_decay),
            "label_smoothing": f32_json(self.label_smoothing),
            "warmup_epochs": self.warmup_epochs,
            "schedule": schedule_name(self.schedule),
            "seed": self.seed,
            "shuffle": self.shuffle,
            "augment": self.augment,
            "dataset": self.dataset.name(),
        });
        if let spec::Optimizer::Momentum { mu } = self.optimizer {
            v["momentum"] = f32_json(mu);
        }
        v
    }

    /// Reads [`Hyper::to_json`]'s output back; `what` names the source in errors.
    pub fn from_json(v: &Value, what: &str) -> Result<Hyper> {
        let bad = |k: &str| {
            Error::Invalid(format!(
                "{what}: config field \"{k}\" is missing or has the wrong type"
            ))
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).ok_or_else(|| bad(k));
        let f = |k: &str| {
            v.get(k)
                .and_then(Value::as_f64)
                .map(|x| x as f32)
                .ok_or_else(|| bad(k))
        };
        let u = |k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| bad(k));
        let b = |k: &str| v.get(k).and_then(Value::as_bool).ok_or_else(|| bad(k));
        let mut optimizer = parse_optimizer(s("optimizer")?)?;
        if let spec::Optimizer::Momentum { mu } = &mut optimizer {
            *mu = f("momentum")?;
        }
        Ok(Hyper {
            optimizer,
            lr: f("lr")?,
            batch_size: u("batch_size")? as usize,
            epochs: u("epochs")?,
            weight_decay: f("weight_decay")?,
            label_smoothing: f("label_smoothing")?,
            warmup_epochs: u("warmup_epochs")?,
            schedule: parse_schedule(s("schedule")?)?,
            seed: u("seed")?,
            shuffle: b("shuffle")?,
            augment: b("augment")?,
            dataset: s("dataset")?.parse()?,
        })
    }

    /// What the train-step program bakes in.
    pub fn step_config(&self) -> nn::StepConfig {
        let optimizer = match self.optimizer {
            spec::Optimizer::Sgd => nn::Optimizer::Sgd,
            spec::Optimizer::Momentum { mu } => nn::Optimizer::Momentum { mu },
            spec::Optimizer::Adam => nn::Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            spec::Optimizer::AdamW => nn::Optimizer::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
        };
        nn::StepConfig {
            batch_size: self.batch_size,
            optimizer,
            weight_decay: self.weight_decay,
            label_smoothing: self.label_smoothing,
        }
    }

    /// The per-step learning-rate schedule for epochs of `per_epoch` steps.
    pub fn schedule(&self, per_epoch: u64) -> Schedule {
        match self.schedule {
            spec::Schedule::Constant => Schedule::Constant { lr: self.lr as f64 },
            spec::Schedule::Cosine => Schedule::warmup_cosine_epochs(
                self.lr as f64,
                self.warmup_epochs,
                self.epochs,
                per_epoch,
            ),
        }
    }

    /// Rejects values no run can use.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad(format!("--lr {} is not a non-negative number", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "--weight-decay {} is not a non-negative number",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "--label-smoothing {} is not in [0, 1)",
                self.label_smoothing
            ));
        }
        if self.schedule == spec::Schedule::Cosine && self.warmup_epochs > self.epochs {
            return bad(format!(
                "--warmup-epochs {} is longer than the {} epochs of the run",
                self.warmup_epochs, self.epochs
            ));
        }
        Ok(())
    }
}

/// An `f32` as a JSON number with its shortest decimal (1e-3, not 0.0010000000474974513).
fn f32_json(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .map(Value::from)
        .unwrap_or(Value::Null)
}

/// SHA-256 (hex) of the spec's canonical text (`spec::print`).
pub fn spec_hash(spec: &NetSpec) -> String {
    let digest = Sha256::digest(spec::print(spec).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything about a run that is not a hyperparameter.
#[derive(Clone, Debug)]
pub struct Options {
    /// Dataset directory; `None`: the dataset's default location.
    pub data_dir: Option<PathBuf>,
    /// Stop after this global step (counting from the start of training, not of this process).
    pub max_steps: Option<u64>,
    pub device: pjrt::Device,
    pub plugin: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    /// Where `last.safetensors` goes; `None`: no checkpoints.
    pub checkpoint_dir: Option<PathBuf>,
    /// A checkpoint file to continue from.
    pub resume: Option<PathBuf>,
    /// A safetensors file with initial parameters (and optionally BN buffers).
    pub init: Option<PathBuf>,
    /// Set (e.g. by a Ctrl-C handler) to stop after the current step and save.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Batch producer threads and batches prepared ahead.
    pub threads: usize,
    pub prefetch: usize,
    /// Batch size of the eval program; `None`: the training batch size.
    pub eval_batch_size: Option<usize>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            data_dir: None,
            max_steps: None,
            device: pjrt::Device::Cpu,
            plugin: None,
            trace: None,
            checkpoint_dir: None,
            resume: None,
            init: None,
            interrupt: None,
            threads: 2,
            prefetch: 4,
            eval_batch_size: None,
        }
    }
}

/// One training step as reported to an [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// 1-based global step.
    pub step: u64,
    pub epoch: u64,
    pub loss: f32,
    pub lr: f32,
    pub correct: i32,
    pub batch_size: usize,
}

/// One finished epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    pub epoch: u64,
    /// Mean of the step losses of this epoch (of the steps this process ran).
    pub train_loss: f64,
    /// Fraction of correct predictions on the training batches (before each update).
    pub train_acc: f64,
    pub test: EvalOut,
    /// Training time of the epoch (steps only) and evaluation time.
    pub train_time: Duration,
    pub eval_time: Duration,
    /// Time the loop waited for the batch producers during the epoch.
    pub data_wait: Duration,
    /// Steps this process ran in the epoch.
    pub steps: u64,
    pub images_per_sec: f64,
}

/// What a run reports as it goes. All methods have empty defaults.
pub trait Observer {
    /// A line of information (data, code generation and compile times, …).
    fn info(&mut self, _msg: &str) {}
    /// Training is about to run steps `first + 1 ..= last` (1-based) of epochs of `per_epoch` steps.
    fn start(&mut self, _first: u64, _last: u64, _per_epoch: u64) {}
    fn step(&mut self, _s: &StepReport) {}
    fn epoch(&mut self, _e: &EpochReport) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The global step reached (updates done in total).
    pub step: u64,
    pub epochs: Vec<EpochReport>,
    /// The evaluation of the final state on the test split.
    pub test: EvalOut,
    pub codegen_time: Duration,
    pub compile_time: (Duration, Duration),
    pub data_wait: Duration,
    pub wall: Duration,
    /// The last checkpoint written, if any.
    pub checkpoint: Option<PathBuf>,
}

/// The run's JSON in a checkpoint's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointMeta {
    pub spec_name: String,
    pub spec_hash: String,
    pub hyper: Hyper,
    pub step: u64,
    pub position: Position,
    pub steps_per_epoch: u64,
    /// The running sums of the current epoch so far (so that a resumed run reports the same epoch line).
    pub epoch_sums: EpochSums,
}

/// Sums over the steps of the current epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpochSums {
    pub loss: f64,
    pub correct: u64,
    pub steps: u64,
}

impl CheckpointMeta {
    fn to_json(&self, spec_text: &str) -> Value {
        json!({
            "format": FORMAT,
            "spec_name": self.spec_name,
            "spec_hash": self.spec_hash,
            "config": self.hyper.to_json(),
            "step": self.step,
            "position": {"epoch": self.position.epoch, "batch": self.position.batch},
            "steps_per_epoch": self.steps_per_epoch,
            // The f64 by its bits: a decimal round trip through JSON is not guaranteed exact.
            "epoch_sums": {
                "loss_bits": format!("{:016x}", self.epoch_sums.loss.to_bits()),
                "correct": self.epoch_sums.correct,
                "steps": self.epoch_sums.steps,
            },
            "spec": spec_text,
        })
    }

    /// Reads the metadata of a checkpoint file.
    pub fn from_checkpoint(ck: &checkpoint::Checkpoint, path: &Path) -> Result<CheckpointMeta> {
        let what = path.display().to_string();
        let text = ck.metadata.get(META_KEY).ok_or_else(|| {
            Error::Invalid(format!(
                "{what}: no \"{META_KEY}\" metadata: not a netspec training checkpoint"
            ))
        })?;
        let v: Value = serde_json::from_str(text).map_err(|e| {
            Error::Invalid(format!("{what}: \"{META_KEY}\" metadata is not JSON: {e}"))
        })?;
        let bad = |k: &str| {
            Error::Invalid(format!(
                "{what}: checkpoint metadata field \"{k}\" is missing or invalid"
            ))
        };
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(bad("format"));
        }
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad(k))
        };
        let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| bad(k));
        let pos = v.get("position").ok_or_else(|| bad("position"))?;
        let sums = v.get("epoch_sums").ok_or_else(|| bad("epoch_sums"))?;
        let loss_bits = sums
            .get("loss_bits")
            .and_then(Value::as_str)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or_else(|| bad("epoch_sums.loss_bits"))?;
        Ok(CheckpointMeta {
            spec_name: s("spec_name")?,
            spec_hash: s("spec_hash")?,
            hyper: Hyper::from_json(v.get("config").ok_or_else(|| bad("config"))?, &what)?,
            step: u(&v, "step")?,
            position: Position {
                epoch: u(pos, "epoch")?,
                batch: u(pos, "batch")?,
            },
            steps_per_epoch: u(&v, "steps_per_epoch")?,
            epoch_sums: EpochSums {
                loss: f64::from_bits(loss_bits),
                correct: u(sums, "correct")?,
                steps: u(sums, "steps")?,
            },
        })
    }
}

/// `path` itself, or `path/last.safetensors` when `path` is a directory.
pub fn checkpoint_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(LAST)
    } else {
        path.to_path_buf()
    }
}

/// Reads the hyperparameters a checkpoint was trained with (for `--resume`).
pub fn resume_info(path: &Path) -> Result<(PathBuf, CheckpointMeta)> {
    let file = checkpoint_file(path);
    let ck = checkpoint::read(&file)?;
    let meta = CheckpointMeta::from_checkpoint(&ck, &file)?;
    Ok((file, meta))
}

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

/// Generates and compiles the train and eval programs; returns the trainer (state not yet set) and
/// the code-generation time.
pub fn build_trainer(
    spec: &NetSpec,
    hyper: &Hyper,
    eval_batch: usize,
    client: &pjrt::Client,
) -> Result<(Trainer, Duration)> {
    let t0 = Instant::now();
    let train = nn::train_step(spec, &hyper.step_config())
        .map_err(|e| Error::Invalid(format!("generating the train step of {}: {e}", spec.name)))?;
    let eval = nn::eval_step(spec, eval_batch)
        .map_err(|e| Error::Invalid(format!("generating the eval step of {}: {e}", spec.name)))?;
    let codegen = t0.elapsed();
    let train = Compiled::new(client, train, "train")?;
    let eval = Compiled::new(client, eval, "eval")?;
    Ok((Trainer::new(client.clone(), train, eval)?, codegen))
}

/// Opens the PJRT client for `device`.
pub fn open_client(device: pjrt::Device, plugin: Option<&Path>) -> Result<pjrt::Client> {
    pjrt::Client::open(device, plugin)
        .map_err(|e| Error::device(format!("opening the {device} device"), e))
}

/// A batch on the device with its learning rate.
struct Uploaded {
    x: pjrt::Buffer,
    y: pjrt::Buffer,
    lr: pjrt::Buffer,
    lr_value: f32,
}

fn check_batch(b: &HostBatch, dims: &[usize], what: &str) -> Result<()> {
    if b.shape[..] != dims[..] {
        return Err(Error::Invalid(format!(
            "{what} batch {} of epoch {} has shape {:?}, the program takes {:?}",
            b.index, b.epoch, b.shape, dims
        )));
    }
    Ok(())
}

/// One evaluation pass over the test split, batches uploaded by the producers.
pub fn evaluate(
    trainer: &Trainer,
    data: &Data,
    threads: usize,
    prefetch: usize,
) -> Result<EvalOut> {
    let dims = trainer.eval_x_dims().to_vec();
    let cfg = BatchConfig {
        batch_size: dims[0],
        seed: 0,
        shuffle: false,
        mode: Mode::Eval,
        start: Position::default(),
        epochs: None,
        prefetch,
        threads,
        pad_last: true,
    };
    let client = trainer.client().clone();
    let batcher = Batcher::new(
        data.test.clone(),
        data.pre_test.clone(),
        cfg,
        move |b: HostBatch| {
            check_batch(&b, &dims, "eval")?;
            Trainer::upload_batch(&client, &dims, &b.x, &b.y)
        },
    )?;
    trainer.evaluate(batcher)
}

/// Parameters (and buffers) from an init file, by name.
fn load_init(path: &Path) -> Result<BTreeMap<String, checkpoint::Tensor>> {
    let ck = checkpoint::read(path)?;
    Ok(ck
        .tensors
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect())
}

fn tensor_matches(t: &checkpoint::Tensor, slot: &nn::Slot, file: &Path) -> Result<TensorData> {
    if t.shape != slot.dims {
        return Err(Error::Invalid(format!(
            "{}: tensor {} has shape {:?}, the model needs {:?}",
            file.display(),
            t.name,
            t.shape,
            slot.dims
        )));
    }
    Ok(t.data.clone())
}

/// The initial state: parameters from `init` (or `spec::init(seed)`), zero optimizer state, BN
/// buffers from `init` (or `spec::init_buffers`), step 0.
fn initial_state(
    spec: &NetSpec,
    hyper: &Hyper,
    init: Option<&Path>,
    trainer: &mut Trainer,
) -> Result<()> {
    let spec_err = |e: spec::SpecError| Error::Invalid(format!("{}: {e}", spec.name));
    let mut fresh: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let params = spec::params(spec).map_err(spec_err)?;
    let values = spec::init(spec, hyper.seed).map_err(spec_err)?;
    fresh.extend(params.into_iter().map(|p| p.name).zip(values));
    let bufs = spec::buffers(spec).map_err(spec_err)?;
    let bvals = spec::init_buffers(spec).map_err(spec_err)?;
    fresh.extend(bufs.into_iter().map(|p| p.name).zip(bvals));
    let file = match init {
        Some(p) => Some((p.to_path_buf(), load_init(p)?)),
        None => None,
    };
    trainer.set_state(|name, slot| {
        let from_file = file.as_ref().and_then(|(p, m)| m.get(name).map(|t| (p, t)));
        match (&slot.kind, from_file) {
            (nn::SlotKind::Param(_) | nn::SlotKind::Buffer(_), Some((p, t))) => {
                tensor_matches(t, slot, p)
            }
            (nn::SlotKind::Param(_), None) if file.is_some() => Err(Error::Invalid(format!(
                "{}: the init file has no tensor {name}",
                file.as_ref()
                    .map(|(p, _)| p.display().to_string())
                    .unwrap_or_default()
            ))),
            (nn::SlotKind::Param(_) | nn::SlotKind::Buffer(_), None) => fresh
                .get(name)
                .map(|v| TensorData::F32(v.clone()))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the train program has state {name}, which spec does not know"
                    ))
                }),
            (nn::SlotKind::OptState(_), _) => {
                Ok(TensorData::F32(vec![0.0; slot.dims.iter().product()]))
            }
            (nn::SlotKind::Step, _) => Ok(TensorData::I32(vec![0])),
            (
                nn::SlotKind::Images
                | nn::SlotKind::Labels
                | nn::SlotKind::LearningRate
                | nn::SlotKind::Loss
                | nn::SlotKind::Correct
                | nn::SlotKind::Logits
                | nn::SlotKind::Grad(_),
                _,
            ) => Err(Error::Invalid(format!("slot {name} is not state"))),
        }
    })
}

/// Uploads every state tensor from a checkpoint.
fn state_from_checkpoint(
    trainer: &mut Trainer,
    ck: &checkpoint::Checkpoint,
    file: &Path,
) -> Result<()> {
    trainer.set_state(|name, slot| {
        let t = ck.get(name).ok_or_else(|| {
            Error::Invalid(format!(
                "{}: the checkpoint has no tensor {name}",
                file.display()
            ))
        })?;
        tensor_matches(t, slot, file)
    })
}

/// Writes the state as a checkpoint, refusing a state with a NaN/Inf anywhere.
fn save_checkpoint(
    trainer: &Trainer,
    path: &Path,
    meta: &CheckpointMeta,
    spec_text: &str,
) -> Result<()> {
    let state: Vec<HostTensor> = trainer.state()?;
    for t in &state {
        if let TensorData::F32(v) = &t.data {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::Invalid(format!(
                    "not saving step {}: state tensor {} holds {} at index {i}",
                    meta.step, t.name, v[i]
                )));
            }
        }
    }
    let views: Vec<View<'_>> = state
        .iter()
        .map(|t| View {
            name: &t.name,
            shape: &t.dims,
            data: match &t.data {
                TensorData::F32(v) => DataRef::F32(v),
                TensorData::I32(v) => DataRef::I32(v),
            },
        })
        .collect();
    let mut md = BTreeMap::new();
    md.insert(META_KEY.to_string(), meta.to_json(spec_text).to_string());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            err: e,
        })?;
    }
    checkpoint::write(path, &views, &md)
}

/// Keeps a trace's header, its step lines up to `step` and its epoch lines before `epoch`, so that
/// a resumed run can append the rest. (Lines are matched as this crate writes them.)
fn cut_trace(path: &Path, step: u64, epoch: u64) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        err: e,
    })?;
    let num_after = |line: &str, key: &str| -> Option<u64> {
        let rest = line.strip_prefix(key)?;
        rest[..rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len())]
            .parse()
            .ok()
    };
    let mut kept = String::new();
    for line in text.lines() {
        let keep = if let Some(s) = num_after(line, "{\"kind\":\"step\",\"step\":") {
            s <= step
        } else if let Some(e) = num_after(line, "{\"kind\":\"epoch\",\"epoch\":") {
            e < epoch
        } else {
            true
        };
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    checkpoint::write_atomic(path, |w| w.write_all(kept.as_bytes()))
}

/// Trains `spec` with `hyper` (see the module doc).
pub fn train(
    spec: &NetSpec,
    hyper: &Hyper,
    opts: &Options,
    obs: &mut dyn Observer,
) -> Result<Summary> {
    let wall0 = Instant::now();
    spec.check()
        .map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?;
    hyper.check()?;
    let hash = spec_hash(spec);
    let spec_text = spec::print(spec);

    // Resume: the checkpoint decides the configuration; this run must agree with it.
    let resume = match &opts.resume {
        Some(p) => {
            let file = checkpoint_file(p);
            let ck = checkpoint::read(&file)?;
            let meta = CheckpointMeta::from_checkpoint(&ck, &file)?;
            if meta.spec_hash != hash {
                return Err(Error::Invalid(format!(
                    "{}: the checkpoint is of model {} (spec hash {}), not of this {} (hash {hash})",
                    file.display(),
                    meta.spec_name,
                    &meta.spec_hash[..12.min(meta.spec_hash.len())],
                    spec.name
                )));
            }
            if &meta.hyper != hyper {
                let (a, b) = (meta.hyper.to_json(), hyper.to_json());
                let diffs: Vec<String> = a
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| b.get(k.as_str()) != Some(v))
                    .map(|(k, v)| {
                        format!(
                            "{k}: checkpoint {v}, this run {}",
                            b.get(k.as_str()).unwrap_or(&Value::Null)
                        )
                    })
                    .collect();
                return Err(Error::Invalid(format!(
                    "{}: a resumed run keeps its configuration, but {}",
                    file.display(),
                    diffs.join("; ")
                )));
            }
            Some((file, ck, meta))
        }
        None => None,
    };

    let t0 = Instant::now();
    let data = load_data(spec, hyper.dataset, opts.data_dir.as_deref(), hyper.augment)?;
    let per_epoch =
        crate::batch::batches_per_epoch(data.train.len(), hyper.batch_size, Mode::Train);
    if per_epoch == 0 {
        return Err(Error::Invalid(format!(
            "{} training images make no batch of {}",
            data.train.len(),
            hyper.batch_size
        )));
    }
    obs.info(&format!(
        "data: {} from {} ({} train, {} test images, {per_epoch} steps per epoch) in {:.2} s",
        data.kind,
        data.dir.display(),
        data.train.len(),
        data.test.len(),
        t0.elapsed().as_secs_f64()
    ));
    let total = hyper.epochs * per_epoch;
    let start = match &resume {
        Some((file, _, meta)) => {
            if meta.steps_per_epoch != per_epoch {
                return Err(Error::Invalid(format!(
                    "{}: the checkpoint was trained with {} steps per epoch, this data gives {per_epoch}",
                    file.display(),
                    meta.steps_per_epoch
                )));
            }
            meta.step
        }
        None => 0,
    };
    let end = opts.max_steps.map_or(total, |m| m.min(total));

    let client = open_client(opts.device, opts.plugin.as_deref())?;
    let eval_batch = opts.eval_batch_size.unwrap_or(hyper.batch_size);
    let (mut trainer, codegen) = build_trainer(spec, hyper, eval_batch, &client)?;
    let (ct, ce) = trainer.compile_times();
    obs.info(&format!(
        "{}: code generation {:.1} ms, compile train step {:.2} s, eval step {:.2} s ({} device, {:.1} MFLOP per step)",
        spec.name,
        codegen.as_secs_f64() * 1e3,
        ct.as_secs_f64(),
        ce.as_secs_f64(),
        client.platform_name(),
        trainer.train_program().flops as f64 / 1e6
    ));
    match &resume {
        Some((file, ck, meta)) => {
            state_from_checkpoint(&mut trainer, ck, file)?;
            obs.info(&format!(
                "resumed from {} at step {} (epoch {}, batch {})",
                file.display(),
                meta.step,
                meta.position.epoch,
                meta.position.batch
            ));
        }
        None => initial_state(spec, hyper, opts.init.as_deref(), &mut trainer)?,
    }

    // The trace: a fresh one, or the resumed run's, cut back to the checkpoint.
    let header = Header {
        phase: "phase3".into(),
        netspec_name: spec.name.clone(),
        netspec_hash: hash.clone(),
        config: hyper.to_json(),
        total_params: spec::param_count(spec)
            .map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?
            as u64,
        dataset: hyper.dataset.name().into(),
        emitter_version: EMITTER_VERSION.into(),
        extra: Default::default(),
    };
    let mut tracer = match &opts.trace {
        Some(p) if resume.is_some() && p.is_file() => {
            let old = trace::read(p)?;
            if old.header.netspec_hash != header.netspec_hash || old.header.config != header.config
            {
                return Err(Error::Invalid(format!(
                    "{}: this trace is of another model or configuration than the resumed run",
                    p.display()
                )));
            }
            cut_trace(p, start, start / per_epoch)?;
            Some(TraceWriter::append(p)?)
        }
        Some(p) => Some(TraceWriter::create(p, &header)?),
        None => None,
    };

    let ck_path = opts.checkpoint_dir.as_ref().map(|d| d.join(LAST));
    let mut last_saved: Option<PathBuf> = None;
    let meta_at = |step: u64, epoch_sums: EpochSums| CheckpointMeta {
        spec_name: spec.name.clone(),
        spec_hash: hash.clone(),
        hyper: hyper.clone(),
        step,
        position: Position {
            epoch: step / per_epoch,
            batch: step % per_epoch,
        },
        steps_per_epoch: per_epoch,
        epoch_sums,
    };

    let schedule = hyper.schedule(per_epoch);
    let x_dims = trainer.train_x_dims().to_vec();
    let mut summary = Summary {
        step: start,
        epochs: Vec::new(),
        test: EvalOut {
            loss_sum: 0.0,
            correct: 0,
            total: 0,
        },
        codegen_time: codegen,
        compile_time: (ct, ce),
        data_wait: Duration::ZERO,
        wall: Duration::ZERO,
        checkpoint: None,
    };
    obs.start(start, end, per_epoch);
    let mut step = start;
    let mut final_eval = None;
    let mut end_sums = resume.as_ref().map(|r| r.2.epoch_sums).unwrap_or_default();
    if step < end {
        let cfg = BatchConfig {
            batch_size: hyper.batch_size,
            seed: hyper.seed,
            shuffle: hyper.shuffle,
            mode: Mode::Train,
            start: Position {
                epoch: start / per_epoch,
                batch: start % per_epoch,
            },
            epochs: Some(hyper.epochs),
            prefetch: opts.prefetch.max(1),
            threads: opts.threads.max(1),
            pad_last: false,
        };
        let up_client = client.clone();
        let dims = x_dims.clone();
        let mut batcher = Batcher::new(
            data.train.clone(),
            data.pre_train.clone(),
            cfg,
            move |b: HostBatch| {
                check_batch(&b, &dims, "train")?;
                let lr_value = schedule.lr(b.epoch * per_epoch + b.index);
                let (x, y) = Trainer::upload_batch(&up_client, &dims, &b.x, &b.y)?;
                let lr = up_client
                    .scalar(lr_value)
                    .map_err(|e| Error::device("uploading the learning rate", e))?;
                Ok(Uploaded { x, y, lr, lr_value })
            },
        )?;

        let mut ep_t0 = Instant::now();
        let mut ep_wait0 = Duration::ZERO;
        let mut sums = match &resume {
            Some((_, _, meta)) => meta.epoch_sums,
            None => EpochSums::default(),
        };
        let mut ep_steps = 0u64;
        while step < end {
            let ready = batcher.next_batch().ok_or_else(|| {
                Error::Producer(format!("the batch stream ended before step {}", step + 1))
            })??;
            let (epoch, index) = (ready.epoch, ready.index);
            debug_assert_eq!(epoch * per_epoch + index, step);
            let b = &ready.value;
            let out = trainer.step(&b.x, &b.y, &b.lr)?;
            step += 1;
            if !out.loss.is_finite() {
                if let Some(t) = tracer.as_mut() {
                    t.step(&Step::new(step, epoch, out.loss as f64, b.lr_value as f64))?;
                }
                return Err(Error::NonFinite {
                    step,
                    loss: out.loss,
                    checkpoint: last_saved.or(existing(&ck_path)),
                });
            }
            let wall_ms = wall0.elapsed().as_secs_f64() * 1e3;
            if let Some(t) = tracer.as_mut() {
                t.step(&Step {
                    wall_ms: Some(wall_ms),
                    ..Step::new(step, epoch, out.loss as f64, b.lr_value as f64)
                })?;
            }
            obs.step(&StepReport {
                step,
                epoch,
                loss: out.loss,
                lr: b.lr_value,
                correct: out.correct,
                batch_size: hyper.batch_size,
            });
            sums.loss += out.loss as f64;
            sums.correct += out.correct.max(0) as u64;
            sums.steps += 1;
            ep_steps += 1;

            if step % per_epoch == 0 {
                let train_time = ep_t0.elapsed();
                let wait = batcher.data_wait() - ep_wait0;
                let e0 = Instant::now();
                let test = evaluate(&trainer, &data, opts.threads.max(1), opts.prefetch.max(1))?;
                let eval_time = e0.elapsed();
                let report = EpochReport {
                    epoch,
                    train_loss: sums.loss / sums.steps as f64,
                    train_acc: sums.correct as f64 / (sums.steps * hyper.batch_size as u64) as f64,
                    test,
                    train_time,
                    eval_time,
                    data_wait: wait,
                    steps: ep_steps,
                    images_per_sec: (ep_steps * hyper.batch_size as u64) as f64
                        / train_time.as_secs_f64(),
                };
                if let Some(p) = &ck_path {
                    save_checkpoint(
                        &trainer,
                        p,
                        &meta_at(step, EpochSums::default()),
                        &spec_text,
                    )?;
                    last_saved = Some(p.clone());
                }
                if let Some(t) = tracer.as_mut() {
                    t.epoch(&EpochLine {
                        epoch,
                        train_loss: Some(report.train_loss),
                        train_acc: Some(report.train_acc),
                        test_loss: Some(test.mean_loss()),
                        test_acc: Some(test.accuracy()),
                        test_correct: Some(test.correct),
                        test_total: Some(test.total),
                        wall_ms: Some(wall0.elapsed().as_secs_f64() * 1e3),
                    })?;
                }
                obs.epoch(&report);
                summary.epochs.push(report);
                if step == end {
                    final_eval = Some(test);
                }
                (sums, ep_steps) = (EpochSums::default(), 0);
                ep_t0 = Instant::now();
                ep_wait0 = batcher.data_wait();
            }
            if opts
                .interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst))
            {
                let saved = match &ck_path {
                    Some(p) if last_saved.as_ref() == Some(p) && step % per_epoch == 0 => {
                        Some(p.clone())
                    }
                    Some(p) => {
                        save_checkpoint(&trainer, p, &meta_at(step, sums), &spec_text)?;
                        Some(p.clone())
                    }
                    None => None,
                };
                return Err(Error::Interrupted {
                    step,
                    checkpoint: saved,
                });
            }
        }
        summary.data_wait = batcher.data_wait();
        end_sums = sums;
    }
    // Stopped inside an epoch (max_steps): save the position, and evaluate the state reached.
    if step % per_epoch != 0 || final_eval.is_none() {
        if let Some(p) = &ck_path {
            if step != start || resume.is_none() {
                save_checkpoint(&trainer, p, &meta_at(step, end_sums), &spec_text)?;
                last_saved = Some(p.clone());
            }
        }
        final_eval = Some(evaluate(
            &trainer,
            &data,
            opts.threads.max(1),
            opts.prefetch.max(1),
        )?);
    }
    summary.step = step;
    summary.test = final_eval.expect("set above");
    summary.checkpoint = last_saved;
    summary.wall = wall0.elapsed();
    Ok(summary)
}

fn existing(p: &Option<PathBuf>) -> Option<PathBuf> {
    p.as_ref().filter(|p| p.is_file()).cloned()
}

/// The result of evaluating a checkpoint.
#[derive(Clone, Debug)]
pub struct EvalReport {
    pub checkpoint: PathBuf,
    pub step: Option<u64>,
    pub dataset: DatasetKind,
    pub test: EvalOut,
    pub compile_time: Duration,
}

/// Evaluates the parameters and BN buffers of a checkpoint (or init file) on the test split.
/// `dataset` overrides the one recorded in the checkpoint.
pub fn eval_checkpoint(
    spec: &NetSpec,
    path: &Path,
    dataset: Option<DatasetKind>,
    data_dir: Option<&Path>,
    batch_size: usize,
    device: pjrt::Device,
    plugin: Option<&Path>,
) -> Result<EvalReport> {
    spec.check()
        .map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?;
    let file = checkpoint_file(path);
    let ck = checkpoint::read(&file)?;
    let meta = CheckpointMeta::from_checkpoint(&ck, &file).ok();
    if let Some(m) = &meta {
        if m.spec_hash != spec_hash(spec) {
            return Err(Error::Invalid(format!(
                "{}: the checkpoint is of model {}, which differs from this {}",
                file.display(),
                m.spec_name,
                spec.name
            )));
        }
    }
    let kind = match (dataset, &meta) {
        (Some(k), _) => k,
        (None, Some(m)) => m.hyper.dataset,
        (None, None) => dataset_for_input(spec.input).ok_or_else(|| {
            Error::Invalid(format!(
                "no dataset known for input {:?}: pass --dataset",
                spec.input
            ))
        })?,
    };
    let data = load_data(spec, kind, data_dir, false)?;
    let client = open_client(device, plugin)?;
    let eval = nn::eval_step(spec, batch_size)
        .map_err(|e| Error::Invalid(format!("generating the eval step of {}: {e}", spec.name)))?;
    let eval = Compiled::new(&client, eval, "eval")?;
    let compile_time = eval.compile_time;
    let test = eval_only(&client, eval, &ck, &file, &data)?;
    Ok(EvalReport {
        checkpoint: file,
        step: meta.map(|m| m.step),
        dataset: kind,
        test,
        compile_time,
    })
}

/// Runs an eval program with its state inputs taken from a checkpoint.
fn eval_only(
    client: &pjrt::Client,
    eval: Compiled,
    ck: &checkpoint::Checkpoint,
    file: &Path,
    data: &Data,
) -> Result<EvalOut> {
    // The eval program alone: state inputs come straight from the file.
    let mut state = Vec::new();
    let mut xy = (None, None);
    for (j, slot) in eval.program.inputs.iter().enumerate() {
        match crate::trainer::state_name(&slot.kind) {
            Some(name) => {
                let t = ck.get(name).ok_or_else(|| {
                    Error::Invalid(format!("{}: no tensor {name}", file.display()))
                })?;
                let data = tensor_matches(t, slot, file)?;
                let dims: Vec<i64> = slot.dims.iter().map(|&d| d as i64).collect();
                let buf = match &data {
                    TensorData::F32(v) => client.buffer(v, &dims),
                    TensorData::I32(v) => client.buffer(v, &dims),
                }
                .map_err(|e| Error::device(format!("uploading {name}"), e))?;
                state.push((j, buf));
            }
            None if slot.kind == nn::SlotKind::Images => xy.0 = Some(j),
            None if slot.kind == nn::SlotKind::Labels => xy.1 = Some(j),
            None => {
                return Err(Error::Invalid(format!(
                    "eval program input {j} ({:?}) is unexpected",
                    slot.kind
                )))
            }
        }
    }
    let (Some(xi), Some(yi)) = xy else {
        return Err(Error::Invalid(
            "eval program: no images or labels input".into(),
        ));
    };
    let loss_o = eval
        .program
        .outputs
        .iter()
        .position(|s| s.kind == nn::SlotKind::Loss);
    let corr_o = eval
        .program
        .outputs
        .iter()
        .position(|s| s.kind == nn::SlotKind::Correct);
    let (Some(lo), Some(co)) = (loss_o, corr_o) else {
        return Err(Error::Invalid(
            "eval program: no loss or correct output".into(),
        ));
    };
    let dims = eval.program.inputs[xi].dims.clone();
    let cfg = BatchConfig {
        batch_size: dims[0],
        seed: 0,
        shuffle: false,
        mode: Mode::Eval,
        start: Position::default(),
        epochs: None,
        prefetch: 4,
        threads: 2,
        pad_last: true,
    };
    let up = client.clone();
    let hook_dims = dims.clone();
    let batcher = Batcher::new(
        data.test.clone(),
        data.pre_test.clone(),
        cfg,
        move |b: HostBatch| {
            check_batch(&b, &hook_dims, "eval")?;
            Trainer::upload_batch(&up, &hook_dims, &b.x, &b.y)
        },
    )?;
    let mut acc = EvalOut {
        loss_sum: 0.0,
        correct: 0,
        total: 0,
    };
    for item in batcher {
        let ready = item?;
        let mut args = Vec::with_capacity(eval.program.inputs.len());
        let mut si = state.iter();
        for j in 0..eval.program.inputs.len() {
            if j == xi {
                args.push(pjrt::Arg::Keep(&ready.value.0));
            } else if j == yi {
                args.push(pjrt::Arg::Keep(&ready.value.1));
            } else {
                let (k, b) = si.next().expect("one state buffer per other input");
                debug_assert_eq!(*k, j);
                args.push(pjrt::Arg::Keep(b));
            }
        }
        let outs = eval
            .exe
            .execute(args)
            .map_err(|e| Error::device("running an eval step", e))?;
        acc.loss_sum += outs[lo]
            .scalar::<f32>()
            .map_err(|e| Error::device("reading the eval loss", e))? as f64;
        acc.correct += outs[co]
            .scalar::<i32>()
            .map_err(|e| Error::device("reading the correct count", e))?
            .max(0) as u64;
        acc.total += ready.rows as u64;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_json_round_trips_for_every_optimizer() {
        let base = Hyper::from_recipe(&spec::zoo::recipe("mnist-mlp").unwrap());
        for optimizer in [
            spec::Optimizer::Sgd,
            spec::Optimizer::Momentum { mu: 0.95 },
            spec::Optimizer::Adam,
            spec::Optimizer::AdamW,
        ] {
            for schedule in [spec::Schedule::Constant, spec::Schedule::Cosine] {
                let h = Hyper {
                    optimizer,
                    schedule,
                    lr: 3e-4,
                    label_smoothing: 0.1,
                    shuffle: false,
                    ..base.clone()
                };
                let text = h.to_json().to_string();
                let back = Hyper::from_json(&serde_json::from_str(&text).unwrap(), "test").unwrap();
                assert_eq!(back, h, "{text}");
            }
        }
        let text = base.to_json().to_string();
        assert!(text.contains("\"lr\":0.001,"), "{text}");
        let mut v = base.to_json();
        v.as_object_mut().unwrap().remove("seed");
        let e = Hyper::from_json(&v, "ck.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ck.safetensors") && e.contains("\"seed\""),
            "{e}"
        );
    }

    #[test]
    fn cut_trace_keeps_what_precedes_the_checkpoint() {
        let dir = std::env::temp_dir().join(format!("netspec-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.jsonl");
        let text = [
            r#"{"kind":"header","phase":"phase3"}"#,
            r#"{"kind":"step","step":1,"epoch":0,"loss":2.0,"lr":0.1}"#,
            r#"{"kind":"step","step":2,"epoch":0,"loss":1.5,"lr":0.1}"#,
            r#"{"kind":"epoch","epoch":0,"test_acc":0.5}"#,
            r#"{"kind":"step","step":3,"epoch":1,"loss":1.2,"lr":0.1}"#,
            r#"{"kind":"step","step":13,"epoch":1,"loss":NaN,"lr":0.1}"#,
        ]
        .join("\n");
        std::fs::write(&p, text).unwrap();
        cut_trace(&p, 2, 1).unwrap();
        let kept = std::fs::read_to_string(&p).unwrap();
        assert_eq!(kept.lines().count(), 4, "{kept}");
        assert!(kept.ends_with("\"test_acc\":0.5}\n"), "{kept}");
        cut_trace(&p, 1, 0).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn schedule_is_per_step() {
        let h = Hyper::from_recipe(&spec::zoo::recipe("mnist-mlp").unwrap());
        let s = h.schedule(10);
        // Warmup over the first epoch (10 steps), peak at step 9 and 10, zero at 12 epochs.
        assert!((s.lr(0) - 1e-4).abs() < 1e-10, "{}", s.lr(0));
        assert_eq!(s.lr(9), h.lr);
        assert_eq!(s.lr(10), h.lr);
        assert!(s.lr(119) > 0.0 && s.lr(119) < 1e-5);
        assert_eq!(s.lr(120), 0.0);
    }
}
