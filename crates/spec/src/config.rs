//! One run's configuration, as plain data: [`RunConfig`] is everything that defines a training run's
//! mathematics (optimizer and its constants, learning rate and schedule, batch size, epochs, weight
//! decay, label smoothing, seed, data order, augmentation, dataset). It is the one type for it:
//! the zoo's recipes ([`crate::zoo::recipe`]) are `RunConfig`s, `nn::train_step` bakes its step part
//! into the program, the JAX export writes it as the script's `RECIPE`, and the training loop writes
//! it (serde) as the `config` of trace headers and checkpoints, where a resumed run must find the
//! same one. What is not the run's mathematics (data directory, device, threads, trace and
//! checkpoint paths) is not here.
//!
//! The JSON form (trace headers, checkpoint metadata) has one key per field, with `f32` values as
//! their shortest decimal: `{"optimizer":"adamw","lr":0.001,"batch_size":128,"epochs":12,
//! "weight_decay":0.0001,"label_smoothing":0.0,"warmup_epochs":1,"schedule":"cosine","seed":314159,
//! "shuffle":true,"augment":false,"dataset":"fashion-mnist"}`, plus `"precision":"bf16"` for a bf16
//! run ([`Precision`]; absent for f32); momentum adds `"momentum": μ`, and
//! Adam/AdamW add `beta1`, `beta2`, `eps` only where they differ from the usual constants (so files
//! written before those keys existed read back unchanged). `augment` is `false`, `true` (the
//! dataset's own augmentation, [`Dataset::augmentation`]) or a name (`"random-resized-crop"`). The
//! data options `resize`, `normalize` (only where it differs from the dataset's own), `val_split` and
//! `early_stop` appear only when set, so a configuration that does not use them writes the bytes it
//! always wrote and older files read back. `crates/jaxgen/src/py/runtime.py` (`trace_config`)
//! writes the same keys for the configurations the JAX export accepts.

use serde::{Deserialize, Serialize};

/// The optimizer of the train step. Every variant applies weight decay to conv/dense kernels only
/// (`ParamSpec::decay`). JSON: `"optimizer": "sgd" | "momentum" | "adam" | "adamw"`, plus the
/// variant's constants as sibling keys (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "optimizer", rename_all = "lowercase")]
pub enum Optimizer {
    /// `w ← w − lr·(g + wd·w)`.
    Sgd,
    /// Heavy-ball momentum: `m ← μ·m + (g + wd·w)`, `w ← w − lr·m`.
    Momentum {
        #[serde(rename = "momentum")]
        mu: f32,
    },
    /// Adam with bias correction from the step counter (`t = step + 1`) on `g + wd·w` (L2 coupled
    /// into the gradient).
    Adam {
        #[serde(default = "beta1", skip_serializing_if = "is_beta1")]
        beta1: f32,
        #[serde(default = "beta2", skip_serializing_if = "is_beta2")]
        beta2: f32,
        #[serde(default = "eps", skip_serializing_if = "is_eps")]
        eps: f32,
    },
    /// AdamW: Adam on `g`, then decoupled decay `w ← w − lr·wd·w` (lean4-mlir's phase-3 "Adam").
    #[serde(rename = "adamw")]
    AdamW {
        #[serde(default = "beta1", skip_serializing_if = "is_beta1")]
        beta1: f32,
        #[serde(default = "beta2", skip_serializing_if = "is_beta2")]
        beta2: f32,
        #[serde(default = "eps", skip_serializing_if = "is_eps")]
        eps: f32,
    },
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;
fn beta1() -> f32 {
    BETA1
}
fn beta2() -> f32 {
    BETA2
}
fn eps() -> f32 {
    EPS
}
fn is_beta1(v: &f32) -> bool {
    *v == BETA1
}
fn is_beta2(v: &f32) -> bool {
    *v == BETA2
}
fn is_eps(v: &f32) -> bool {
    *v == EPS
}

impl Optimizer {
    /// Every name [`Optimizer::name`] gives, in the order error messages list them.
    pub const NAMES: [&'static str; 4] = ["sgd", "momentum", "adam", "adamw"];
    /// Adam with the usual constants (β₁ 0.9, β₂ 0.999, ε 1e-8).
    pub const ADAM: Optimizer = Optimizer::Adam {
        beta1: BETA1,
        beta2: BETA2,
        eps: EPS,
    };
    /// AdamW with the usual constants (β₁ 0.9, β₂ 0.999, ε 1e-8).
    pub const ADAMW: Optimizer = Optimizer::AdamW {
        beta1: BETA1,
        beta2: BETA2,
        eps: EPS,
    };
    /// What `--optimizer momentum` means: μ = 0.9.
    pub const MOMENTUM: Optimizer = Optimizer::Momentum { mu: 0.9 };

    /// The command-line and JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Momentum { .. } => "momentum",
            Optimizer::Adam { .. } => "adam",
            Optimizer::AdamW { .. } => "adamw",
        }
    }
}

/// The one parser of optimizer names (`--optimizer` of every command): `sgd`, `momentum` (μ = 0.9),
/// `adam`, `adamw` (β₁ 0.9, β₂ 0.999, ε 1e-8).
impl std::str::FromStr for Optimizer {
    type Err = String;
    fn from_str(s: &str) -> Result<Optimizer, String> {
        match s {
            "sgd" => Ok(Optimizer::Sgd),
            "momentum" => Ok(Optimizer::MOMENTUM),
            "adam" => Ok(Optimizer::ADAM),
            "adamw" => Ok(Optimizer::ADAMW),
            _ => Err(format!(
                "unknown optimizer '{s}' (expected sgd, momentum, adam or adamw)"
            )),
        }
    }
}

/// Learning-rate schedule, per step, after a linear warmup of `warmup_epochs` (the formula is in
/// `train::schedule`). JSON: `"constant"`, `"cosine"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Linear warmup over `warmup_epochs`, then cosine to 0 at the end of the last epoch.
    Cosine,
}

/// The element type of a step's activations and matrix/convolution inputs (`--precision`). JSON:
/// `"precision": "bf16"`; the key is left out for `f32` (so files written before it existed read
/// back unchanged, and f32 runs' headers and checkpoints are as they were).
///
/// `Bf16` is mixed precision, applied by the code generator (`nn::step`), never by a layer: the
/// images and each parameter are converted to bf16 where the step reads them; matrix products and
/// convolutions take bf16 operands and accumulate in f32 (preferred element type) before their
/// result is rounded to bf16; sums, means, normalisation statistics, softmax, the loss and the
/// optimizer are f32. Parameters, optimizer state, BN running statistics and checkpoints stay f32;
/// the gradients reach the optimizer in f32 (through `convert`'s VJP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// `f32` or `bf16`.
    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }

    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

impl Schedule {
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Cosine => "cosine",
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Schedule, String> {
        match s {
            "constant" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine),
            _ => Err(format!(
                "unknown schedule '{s}' (expected constant or cosine)"
            )),
        }
    }
}

/// The training augmentation of a run (`--augment`); `train::augment::Preprocess::for_images`
/// holds the table of what each does in training and in evaluation. JSON: `false` for `None`, `true`
/// for the dataset's own ([`Dataset::augmentation`]; what `"augment": true` always meant), else the
/// name (`"flip"`, `"crop-flip"`, `"random-resized-crop"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Augment {
    /// Images used at their size (or `resize` and the centre crop).
    #[default]
    None,
    /// `None` plus a random horizontal flip.
    Flip,
    /// A random crop of the input size (from the image, or after `resize`) and a flip.
    CropFlip,
    /// torchvision's `RandomResizedCrop` (scale 0.08–1, ratio 3/4–4/3) and a flip.
    RandomResizedCrop,
}

impl Augment {
    pub const ALL: [Augment; 4] = [
        Augment::None,
        Augment::Flip,
        Augment::CropFlip,
        Augment::RandomResizedCrop,
    ];

    /// The command-line and JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Augment::None => "none",
            Augment::Flip => "flip",
            Augment::CropFlip => "crop-flip",
            Augment::RandomResizedCrop => "random-resized-crop",
        }
    }
}

impl std::str::FromStr for Augment {
    type Err = String;
    fn from_str(s: &str) -> Result<Augment, String> {
        Augment::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Augment::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown augmentation '{s}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// ImageNet channel means (R, G, B): Imagenette's normalisation, `--normalize imagenet`.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (R, G, B).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// CIFAR-10 training-set channel means, `--normalize cifar10`.
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10 training-set channel standard deviations.
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// Per-channel standardisation after `x/255`: `(x/255 − mean[c]) / std[c]`; both empty for plain
/// `x/255`. JSON `{"mean": [...], "std": [...]}`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    /// Plain `x/255`.
    pub fn none() -> Normalize {
        Normalize::default()
    }

    pub fn imagenet() -> Normalize {
        Normalize {
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
        }
    }

    pub fn cifar10() -> Normalize {
        Normalize {
            mean: CIFAR10_MEAN.to_vec(),
            std: CIFAR10_STD.to_vec(),
        }
    }

    pub fn is_none(&self) -> bool {
        self.mean.is_empty() && self.std.is_empty()
    }

    /// Checks the values for a network of `channels` input channels (`None`: lengths only).
    pub fn check(&self, channels: Option<usize>) -> Result<(), String> {
        let (m, s) = (self.mean.len(), self.std.len());
        if m != s {
            return Err(format!(
                "--normalize: {m} means and {s} standard deviations (give one of each per channel)"
            ));
        }
        if let Some(c) = channels.filter(|&c| m != 0 && m != c) {
            return Err(format!(
                "--normalize gives {m} channel means, the network takes {c} channels"
            ));
        }
        if let Some(v) = self.std.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(format!(
                "--normalize: standard deviation {v} is not a positive number"
            ));
        }
        if let Some(v) = self.mean.iter().find(|v| !v.is_finite()) {
            return Err(format!("--normalize: mean {v} is not a number"));
        }
        Ok(())
    }
}

/// `none`, `imagenet`, `cifar10`, or `M1,M2,M3/S1,S2,S3` (means, then standard deviations).
impl std::str::FromStr for Normalize {
    type Err = String;
    fn from_str(s: &str) -> Result<Normalize, String> {
        match s {
            "none" => return Ok(Normalize::none()),
            "imagenet" => return Ok(Normalize::imagenet()),
            "cifar10" => return Ok(Normalize::cifar10()),
            _ => {}
        }
        let bad = || {
            format!(
                "--normalize '{s}': expected none, imagenet, cifar10 or MEANS/STDS (e.g. 0.5,0.5,0.5/0.25,0.25,0.25)"
            )
        };
        let (m, d) = s.split_once('/').ok_or_else(bad)?;
        let list = |t: &str| -> Result<Vec<f32>, String> {
            t.split(',')
                .map(|v| v.trim().parse::<f32>().map_err(|_| bad()))
                .collect()
        };
        let n = Normalize {
            mean: list(m)?,
            std: list(d)?,
        };
        n.check(None)?;
        Ok(n)
    }
}

/// Which data set a run trains on. JSON and command line: the [`Dataset::name`]s. The first four are
/// the built-in formats (read whole into memory, found by their file names); `Folder` and `Arrays`
/// are the user's own data, streamed from the path given to `--data` (an image folder in
/// torchvision's layout; safetensors / `.npy` / `.npz` arrays).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dataset {
    #[serde(rename = "mnist")]
    Mnist,
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
    #[serde(rename = "cifar10")]
    Cifar10,
    #[serde(rename = "imagenette")]
    Imagenette,
    #[serde(rename = "folder")]
    Folder,
    #[serde(rename = "arrays")]
    Arrays,
}

impl Dataset {
    pub const ALL: [Dataset; 6] = [
        Dataset::Mnist,
        Dataset::FashionMnist,
        Dataset::Cifar10,
        Dataset::Imagenette,
        Dataset::Folder,
        Dataset::Arrays,
    ];
    /// The built-in formats.
    pub const BUILT_IN: [Dataset; 4] = [
        Dataset::Mnist,
        Dataset::FashionMnist,
        Dataset::Cifar10,
        Dataset::Imagenette,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Cifar10 => "cifar10",
            Dataset::Imagenette => "imagenette",
            Dataset::Folder => "folder",
            Dataset::Arrays => "arrays",
        }
    }

    pub fn from_name(s: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Whether this is one of the built-in formats (not a folder or arrays).
    pub fn is_built_in(self) -> bool {
        self.input().is_some()
    }

    /// `[C, H, W]` of the network input for a built-in data set (Imagenette: the 224 crop); `None`
    /// for folders and arrays, whose images the transforms bring to the network's input.
    pub fn input(self) -> Option<[usize; 3]> {
        match self {
            Dataset::Mnist | Dataset::FashionMnist => Some([1, 28, 28]),
            Dataset::Cifar10 => Some([3, 32, 32]),
            Dataset::Imagenette => Some([3, 224, 224]),
            Dataset::Folder | Dataset::Arrays => None,
        }
    }

    /// The dataset a spec without a recipe trains on, by its input shape (1×28×28: Fashion-MNIST,
    /// the installed one).
    pub fn for_input(input: [usize; 3]) -> Option<Dataset> {
        [Dataset::FashionMnist, Dataset::Cifar10, Dataset::Imagenette]
            .into_iter()
            .find(|d| d.input() == Some(input))
    }

    /// What `"augment": true` means on this dataset (lean4-mlir's recipes): nothing on MNIST-like
    /// digits, a horizontal flip on CIFAR-10, random crop 256 → 224 and flip on Imagenette; nothing
    /// on folders and arrays, whose augmentation is always named.
    pub fn augmentation(self) -> Augment {
        match self {
            Dataset::Mnist | Dataset::FashionMnist | Dataset::Folder | Dataset::Arrays => {
                Augment::None
            }
            Dataset::Cifar10 => Augment::Flip,
            Dataset::Imagenette => Augment::CropFlip,
        }
    }

    /// The dataset's own normalisation: ImageNet mean/std on Imagenette, plain `x/255` elsewhere.
    pub fn normalization(self) -> Normalize {
        match self {
            Dataset::Imagenette => Normalize::imagenet(),
            Dataset::Mnist
            | Dataset::FashionMnist
            | Dataset::Cifar10
            | Dataset::Folder
            | Dataset::Arrays => Normalize::none(),
        }
    }
}

impl std::str::FromStr for Dataset {
    type Err = String;
    fn from_str(s: &str) -> Result<Dataset, String> {
        Dataset::from_name(s).ok_or_else(|| {
            let names: Vec<_> = Dataset::ALL.iter().map(|d| d.name()).collect();
            format!(
                "unknown dataset '{s}' (expected one of: {})",
                names.join(", ")
            )
        })
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One training run's configuration (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RunConfigJson", into = "RunConfigJson")]
pub struct RunConfig {
    pub optimizer: Optimizer,
    /// Peak learning rate.
    pub lr: f32,
    pub batch_size: usize,
    pub epochs: u64,
    /// Weight decay on conv/dense kernels (coupled or decoupled as the optimizer says).
    pub weight_decay: f32,
    /// `ls` in the loss: targets `(1 − ls)·onehot + ls/K`.
    pub label_smoothing: f32,
    pub warmup_epochs: u64,
    pub schedule: Schedule,
    /// Seed of the initial parameters, the data order and the augmentation draws.
    pub seed: u64,
    /// Visit the training set in a seeded random order each epoch (else in file order).
    pub shuffle: bool,
    /// The augmentation of the training batches (JSON: see [`Augment`]).
    pub augment: Augment,
    pub dataset: Dataset,
    /// Mixed precision of the step programs ([`Precision`]); JSON key only when `bf16`.
    pub precision: Precision,
    /// Resize the shorter side of every image to this many pixels before cropping (`--resize`);
    /// JSON key only when set.
    pub resize: Option<usize>,
    /// The normalisation, where it differs from the dataset's own ([`Dataset::normalization`];
    /// `None`: the dataset's). JSON key only when set.
    pub normalize: Option<Normalize>,
    /// Hold out this fraction of each class of the training split for validation (`--val-split`;
    /// the exact rule is `train::run::feed::split_per_class`'s doc). JSON key only when set.
    pub val_split: Option<f32>,
    /// Stop when validation accuracy has not improved for this many epochs (`--early-stop`). JSON key
    /// only when set.
    pub early_stop: Option<u64>,
}

/// `augment` as JSON: a bool (`false`: none, `true`: the dataset's own), or a name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum AugmentJson {
    Flag(bool),
    Name(String),
}

/// The JSON form of [`RunConfig`]: the same fields, `augment` as [`AugmentJson`], the optional ones
/// left out when unset (so files written before they existed read back, and configurations that do
/// not use them write the same bytes as before).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RunConfigJson {
    #[serde(flatten)]
    optimizer: Optimizer,
    lr: f32,
    batch_size: usize,
    epochs: u64,
    weight_decay: f32,
    label_smoothing: f32,
    warmup_epochs: u64,
    schedule: Schedule,
    seed: u64,
    shuffle: bool,
    augment: AugmentJson,
    dataset: Dataset,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resize: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    normalize: Option<Normalize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    val_split: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    early_stop: Option<u64>,
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    precision: Precision,
}

impl TryFrom<RunConfigJson> for RunConfig {
    type Error = String;
    fn try_from(j: RunConfigJson) -> Result<RunConfig, String> {
        let augment = match j.augment {
            AugmentJson::Flag(false) => Augment::None,
            AugmentJson::Flag(true) => j.dataset.augmentation(),
            AugmentJson::Name(n) => n.parse()?,
        };
        Ok(RunConfig {
            optimizer: j.optimizer,
            lr: j.lr,
            batch_size: j.batch_size,
            epochs: j.epochs,
            weight_decay: j.weight_decay,
            label_smoothing: j.label_smoothing,
            warmup_epochs: j.warmup_epochs,
            schedule: j.schedule,
            seed: j.seed,
            shuffle: j.shuffle,
            augment,
            dataset: j.dataset,
            resize: j.resize,
            normalize: j.normalize.filter(|n| *n != j.dataset.normalization()),
            val_split: j.val_split,
            early_stop: j.early_stop,
            precision: j.precision,
        })
    }
}

impl From<RunConfig> for RunConfigJson {
    fn from(c: RunConfig) -> RunConfigJson {
        let augment = match c.augment {
            Augment::None => AugmentJson::Flag(false),
            a if a == c.dataset.augmentation() => AugmentJson::Flag(true),
            a => AugmentJson::Name(a.name().into()),
        };
        RunConfigJson {
            optimizer: c.optimizer,
            lr: c.lr,
            batch_size: c.batch_size,
            epochs: c.epochs,
            weight_decay: c.weight_decay,
            label_smoothing: c.label_smoothing,
            warmup_epochs: c.warmup_epochs,
            schedule: c.schedule,
            seed: c.seed,
            shuffle: c.shuffle,
            augment,
            dataset: c.dataset,
            resize: c.resize,
            normalize: c.normalize.filter(|n| *n != c.dataset.normalization()),
            val_split: c.val_split,
            early_stop: c.early_stop,
            precision: c.precision,
        }
    }
}

impl Default for RunConfig {
    /// lean4-mlir's MNIST MLP recipe: AdamW 1e-3, batch 128, 12 epochs, wd 1e-4, cosine, warmup 1,
    /// no smoothing, no augmentation, seed 314159 (lean4-mlir's `TrainConfig` default); on
    /// Fashion-MNIST, the installed dataset of the same shape.
    fn default() -> Self {
        RunConfig {
            optimizer: Optimizer::ADAMW,
            lr: 1e-3,
            batch_size: 128,
            epochs: 12,
            weight_decay: 1e-4,
            label_smoothing: 0.0,
            warmup_epochs: 1,
            schedule: Schedule::Cosine,
            seed: 314_159,
            shuffle: true,
            augment: Augment::None,
            dataset: Dataset::FashionMnist,
            precision: Precision::F32,
            resize: None,
            normalize: None,
            val_split: None,
            early_stop: None,
        }
    }
}

impl RunConfig {
    /// The configuration a spec trains with unless told otherwise: its zoo recipe
    /// ([`crate::zoo::recipe`], by the spec's name), else the default with the dataset its input
    /// shape implies.
    pub fn default_for(spec: &crate::NetSpec) -> RunConfig {
        crate::zoo::recipe(&spec.name).unwrap_or_else(|| {
            let d = RunConfig::default();
            RunConfig {
                dataset: Dataset::for_input(spec.input).unwrap_or(d.dataset),
                ..d
            }
        })
    }

    /// The normalisation of this run: [`RunConfig::normalize`], else the dataset's own.
    pub fn normalization(&self) -> Normalize {
        self.normalize
            .clone()
            .unwrap_or_else(|| self.dataset.normalization())
    }

    /// Switches to another dataset the way `--dataset` (or `--data` naming a folder or arrays) does:
    /// an augmentation that was the old dataset's own (`"augment": true`) becomes the new dataset's
    /// own ([`Dataset::augmentation`]: none for folders and arrays), `none` and a named one stay;
    /// the normalisation stays the one this configuration had (it is the model's input convention,
    /// e.g. ImageNet mean/std for the Imagenette recipes).
    pub fn switch_dataset(&mut self, to: Dataset) {
        if to == self.dataset {
            return;
        }
        let norm = self.normalization();
        if self.augment != Augment::None && self.augment == self.dataset.augmentation() {
            self.augment = to.augmentation();
        }
        self.dataset = to;
        self.set_normalize(norm);
    }

    /// Sets the normalisation (kept as `None` when it is the dataset's own, so that equal runs have
    /// equal configurations).
    pub fn set_normalize(&mut self, n: Normalize) {
        self.normalize = Some(n).filter(|n| *n != self.dataset.normalization());
    }

    /// Checks what the train-step program bakes in (batch size, weight decay, label smoothing, the
    /// optimizer's constants). Messages name the value and its command-line flag.
    pub fn check_step(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("the batch size (--batch-size) must be at least 1".into());
        }
        let ls = self.label_smoothing;
        if !(ls.is_finite() && (0.0..1.0).contains(&ls)) {
            return Err(format!(
                "label smoothing (--label-smoothing) must be in [0, 1), got {ls}"
            ));
        }
        let wd = self.weight_decay;
        if !(wd.is_finite() && wd >= 0.0) {
            return Err(format!(
                "weight decay (--weight-decay) must be finite and ≥ 0, got {wd}"
            ));
        }
        let beta = |name: &str, b: f32| {
            if b.is_finite() && (0.0..1.0).contains(&b) {
                Ok(())
            } else {
                Err(format!("{name} must be in [0, 1), got {b}"))
            }
        };
        match self.optimizer {
            Optimizer::Sgd => Ok(()),
            Optimizer::Momentum { mu } => {
                if mu.is_finite() && mu >= 0.0 {
                    Ok(())
                } else {
                    Err(format!("momentum must be finite and ≥ 0, got {mu}"))
                }
            }
            Optimizer::Adam { beta1, beta2, eps } | Optimizer::AdamW { beta1, beta2, eps } => {
                beta("beta1", beta1)?;
                beta("beta2", beta2)?;
                if eps.is_finite() && eps > 0.0 {
                    Ok(())
                } else {
                    Err(format!("eps must be finite and > 0, got {eps}"))
                }
            }
        }
    }

    /// Checks the whole configuration: [`RunConfig::check_step`], the learning rate, the epochs,
    /// the warmup and the data options (resize, normalisation, validation split, early stop).
    pub fn check(&self) -> Result<(), String> {
        if self.resize == Some(0) {
            return Err("--resize must be at least 1 pixel".into());
        }
        if let Some(n) = &self.normalize {
            n.check(None)?;
        }
        if let Some(f) = self.val_split {
            if !(f > 0.0 && f < 1.0) {
                return Err(format!(
                    "--val-split is the fraction of each class held out for validation: it must lie strictly between 0 and 1, got {f}"
                ));
            }
        }
        if self.early_stop == Some(0) {
            return Err("--early-stop is a patience in epochs: at least 1".into());
        }
        self.check_step()?;
        if self.epochs == 0 {
            return Err("the number of epochs (--epochs) must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(format!(
                "the learning rate (--lr) must be a non-negative number, got {}",
                self.lr
            ));
        }
        if self.schedule == Schedule::Cosine && self.warmup_epochs > self.epochs {
            return Err(format!(
                "--warmup-epochs {} is longer than the {} epochs of the run",
                self.warmup_epochs, self.epochs
            ));
        }
        Ok(())
    }
}
