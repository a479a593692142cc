//! Training recipes as plain data. The training loop (`train`) and the train-step builder (`nn`)
//! read these; this crate only states them. Zoo defaults: [`crate::zoo::recipe`].

/// Optimizer. All variants apply weight decay to conv/dense kernels only (`ParamSpec::decay`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `w ← w − lr·(g + wd·w)`.
    Sgd,
    /// Heavy-ball momentum: `m ← μ·m + (g + wd·w)`, `w ← w − lr·m`.
    Momentum { mu: f32 },
    /// Adam (β₁ 0.9, β₂ 0.999, ε 1e-8, bias correction with `t = step + 1`) on `g + wd·w`
    /// (L2 coupled into the gradient).
    Adam,
    /// AdamW: Adam on `g`, then decoupled decay `w ← w − lr·wd·w` (lean4-mlir's phase-3 "Adam").
    AdamW,
}

/// Learning-rate schedule over epochs, after a linear warmup of `warmup_epochs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    Constant,
    /// `lr·½·(1 + cos(π·(e − w)/(E − w)))` for epoch `e ≥ w`; warmup `lr·(e + 1)/w` for `e < w`
    /// (lean4-mlir's per-epoch rule; a per-step variant is the loop's choice).
    Cosine,
}

/// Host-side augmentation switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Augment {
    /// Random crop (Imagenette: 256 → 224 from the train records).
    pub random_crop: bool,
    /// Random horizontal flip with probability ½.
    pub hflip: bool,
}

/// Which data set a recipe trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    Mnist,
    FashionMnist,
    Cifar10,
    Imagenette,
}

impl Dataset {
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Cifar10 => "cifar10",
            Dataset::Imagenette => "imagenette",
        }
    }

    pub fn from_name(s: &str) -> Option<Dataset> {
        [
            Dataset::Mnist,
            Dataset::FashionMnist,
            Dataset::Cifar10,
            Dataset::Imagenette,
        ]
        .into_iter()
        .find(|d| d.name() == s)
    }

    /// `[C, H, W]` of the network input for this data set (Imagenette: the 224 crop).
    pub fn input(self) -> [usize; 3] {
        match self {
            Dataset::Mnist | Dataset::FashionMnist => [1, 28, 28],
            Dataset::Cifar10 => [3, 32, 32],
            Dataset::Imagenette => [3, 224, 224],
        }
    }
}

/// A training recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    pub optimizer: Optimizer,
    /// Peak learning rate.
    pub lr: f32,
    pub batch_size: usize,
    pub epochs: usize,
    pub weight_decay: f32,
    pub warmup_epochs: usize,
    pub schedule: Schedule,
    /// `ls` in the loss: targets `(1 − ls)·onehot + ls/K`.
    pub label_smoothing: f32,
    pub augment: Augment,
    /// Seed for init and data order.
    pub seed: u64,
    pub dataset: Dataset,
}

impl Default for Recipe {
    /// lean4-mlir's MNIST MLP recipe: AdamW 1e-3, batch 128, 12 epochs, wd 1e-4, cosine, warmup 1,
    /// no smoothing, no augmentation, seed 314159 (lean4-mlir's `TrainConfig` default).
    fn default() -> Self {
        Recipe {
            optimizer: Optimizer::AdamW,
            lr: 1e-3,
            batch_size: 128,
            epochs: 12,
            weight_decay: 1e-4,
            warmup_epochs: 1,
            schedule: Schedule::Cosine,
            label_smoothing: 0.0,
            augment: Augment::default(),
            seed: 314_159,
            dataset: Dataset::Mnist,
        }
    }
}
