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
//! written before those keys existed read back unchanged). `crates/jaxgen/src/py/runtime.py`
//! (`trace_config`) writes the same keys.

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

/// What a run's augmentation does on a dataset (`train::augment` implements it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Augment {
    /// Random crop (Imagenette: 256 → 224 from the train records).
    pub random_crop: bool,
    /// Random horizontal flip with probability ½.
    pub hflip: bool,
}

/// Which data set a run trains on. JSON and command line: the [`Dataset::name`]s.
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
}

impl Dataset {
    pub const ALL: [Dataset; 4] = [
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
        }
    }

    pub fn from_name(s: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == s)
    }

    /// `[C, H, W]` of the network input for this data set (Imagenette: the 224 crop).
    pub fn input(self) -> [usize; 3] {
        match self {
            Dataset::Mnist | Dataset::FashionMnist => [1, 28, 28],
            Dataset::Cifar10 => [3, 32, 32],
            Dataset::Imagenette => [3, 224, 224],
        }
    }

    /// The dataset a spec without a recipe trains on, by its input shape (1×28×28: Fashion-MNIST,
    /// the installed one).
    pub fn for_input(input: [usize; 3]) -> Option<Dataset> {
        [Dataset::FashionMnist, Dataset::Cifar10, Dataset::Imagenette]
            .into_iter()
            .find(|d| d.input() == input)
    }

    /// What `augment: true` does on this dataset: nothing on MNIST-like digits, a horizontal flip
    /// on CIFAR-10, random crop 256 → 224 and flip on Imagenette.
    pub fn augmentation(self) -> Augment {
        match self {
            Dataset::Mnist | Dataset::FashionMnist => Augment::default(),
            Dataset::Cifar10 => Augment {
                random_crop: false,
                hflip: true,
            },
            Dataset::Imagenette => Augment {
                random_crop: true,
                hflip: true,
            },
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
pub struct RunConfig {
    #[serde(flatten)]
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
    /// The dataset's augmentation ([`Dataset::augmentation`]) on the training batches.
    pub augment: bool,
    pub dataset: Dataset,
    /// Mixed precision of the step programs ([`Precision`]); left out of the JSON when `f32`.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
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
            augment: false,
            dataset: Dataset::FashionMnist,
            precision: Precision::F32,
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

    /// What the augmentation does on the training batches of this run.
    pub fn augmentation(&self) -> Augment {
        if self.augment {
            self.dataset.augmentation()
        } else {
            Augment::default()
        }
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

    /// Checks the whole configuration: [`RunConfig::check_step`], the learning rate, the epochs
    /// and the warmup.
    pub fn check(&self) -> Result<(), String> {
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
