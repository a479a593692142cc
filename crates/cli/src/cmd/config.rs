//! The flags that set a run's configuration (`spec::RunConfig`), shared by the commands that take
//! them: [`StepFlags`] (what the train-step program bakes in: `train`, `bench`, `emit`) and, for
//! `train` only, [`RunFlags`] (schedule, epochs, data order, dataset). Each applies its flags over a
//! base configuration: the model's recipe (`RunConfig::default_for`), or a resumed checkpoint's.

use spec::RunConfig;

/// Flags of the train step's configuration.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StepFlags {
    /// Batch size (default: the model's recipe).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// sgd, momentum (μ = 0.9), adam or adamw (default: the model's recipe).
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Weight decay on kernels (default: the model's recipe).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Label smoothing of the loss (default: the model's recipe).
    #[arg(long)]
    pub label_smoothing: Option<f32>,
    /// f32 or bf16: mixed precision (bf16 activations and matrix/convolution operands, f32
    /// accumulation, statistics, loss and parameters; default: f32, or a resumed run's).
    #[arg(long)]
    pub precision: Option<String>,
}

impl StepFlags {
    /// Sets each given value in `cfg`. An optimizer flag naming `cfg`'s optimizer keeps its
    /// constants (a resumed run's momentum stays what it was).
    pub fn apply(&self, cfg: &mut RunConfig) -> anyhow::Result<()> {
        if let Some(v) = self.batch_size {
            cfg.batch_size = v;
        }
        if let Some(o) = &self.optimizer {
            let o: spec::Optimizer = o.parse().map_err(anyhow::Error::msg)?;
            if o.name() != cfg.optimizer.name() {
                cfg.optimizer = o;
            }
        }
        if let Some(v) = self.weight_decay {
            cfg.weight_decay = v;
        }
        if let Some(v) = self.label_smoothing {
            cfg.label_smoothing = v;
        }
        if let Some(p) = &self.precision {
            cfg.precision = parse_precision(p)?;
        }
        Ok(())
    }
}

/// `--precision f32|bf16`.
pub fn parse_precision(s: &str) -> anyhow::Result<spec::Precision> {
    spec::Precision::parse(s).ok_or_else(|| {
        anyhow::anyhow!("--precision `{s}`: expected f32 or bf16 (the reference interpreter's f64/f32 is --reference-precision)")
    })
}

/// Flags of the rest of a training run's configuration.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunFlags {
    /// fashion-mnist, mnist, cifar10 or imagenette (default: from the recipe).
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    #[arg(long)]
    pub warmup_epochs: Option<u64>,
    /// constant or cosine (per step, after a linear warmup).
    #[arg(long)]
    pub schedule: Option<String>,
    /// Seed of the initial parameters and the data order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Visit the training set in file order every epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Training augmentation: none, flip, crop-flip or random-resized-crop (default: the recipe's
    /// on its dataset, none on your own data).
    #[arg(long)]
    pub augment: Option<String>,
    /// Resize the shorter side of every image to this many pixels, then crop to the model's input
    /// (centre crop in evaluation).
    #[arg(long)]
    pub resize: Option<usize>,
    /// Normalisation after x/255: none, imagenet, cifar10, or MEANS/STDS per channel
    /// (e.g. 0.5,0.5,0.5/0.25,0.25,0.25). Default: the recipe's.
    #[arg(long)]
    pub normalize: Option<String>,
    /// Hold out this fraction of each class of the training split for validation (deterministic);
    /// every epoch is then evaluated on it, best.safetensors keeps the best epoch, and the test split
    /// is evaluated once at the end. Without it, a `val/` folder is the validation split.
    #[arg(long)]
    pub val_split: Option<f32>,
    /// Stop after this many epochs in a row without a better validation accuracy.
    #[arg(long)]
    pub early_stop: Option<u64>,
}

impl RunFlags {
    /// Sets each given value in `cfg`. The dataset is `--dataset`, else what `data` (the `--data`
    /// path) holds ([`train::run::detect_dataset`]: the recipe's dataset if its files are there, else
    /// arrays or an image folder); switching it goes through [`RunConfig::switch_dataset`], and the
    /// data flags apply over the result.
    pub fn apply(&self, cfg: &mut RunConfig, data: Option<&std::path::Path>) -> anyhow::Result<()> {
        let dataset = match (&self.dataset, data) {
            (Some(d), _) => d.parse().map_err(anyhow::Error::msg)?,
            (None, Some(p)) => train::run::detect_dataset(p, cfg.dataset),
            (None, None) => cfg.dataset,
        };
        cfg.switch_dataset(dataset);
        if let Some(a) = &self.augment {
            cfg.augment = a.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(v) = self.resize {
            cfg.resize = Some(v);
        }
        if let Some(n) = &self.normalize {
            cfg.set_normalize(n.parse().map_err(anyhow::Error::msg)?);
        }
        if let Some(v) = self.val_split {
            cfg.val_split = Some(v);
        }
        if let Some(v) = self.early_stop {
            cfg.early_stop = Some(v);
        }
        if let Some(v) = self.epochs {
            cfg.epochs = v;
        }
        if let Some(v) = self.lr {
            cfg.lr = v;
        }
        if let Some(v) = self.warmup_epochs {
            cfg.warmup_epochs = v;
        }
        if let Some(s) = &self.schedule {
            cfg.schedule = s.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(v) = self.seed {
            cfg.seed = v;
        }
        if self.no_shuffle {
            cfg.shuffle = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spec::Optimizer;

    #[test]
    fn step_flags_override_the_base() {
        let base = RunConfig::default();
        let mut c = base.clone();
        StepFlags {
            batch_size: Some(32),
            optimizer: Some("sgd".into()),
            weight_decay: Some(0.5),
            label_smoothing: Some(0.1),
            precision: Some("bf16".into()),
        }
        .apply(&mut c)
        .unwrap();
        assert_eq!(
            (c.batch_size, c.optimizer, c.weight_decay, c.label_smoothing),
            (32, Optimizer::Sgd, 0.5, 0.1)
        );
        assert_eq!(c.precision, spec::Precision::Bf16);
        let e = StepFlags {
            precision: Some("f64".into()),
            ..StepFlags::default()
        }
        .apply(&mut c.clone())
        .unwrap_err()
        .to_string();
        assert!(e.contains("f64") && e.contains("bf16"), "{e}");
        let mut d = base.clone();
        StepFlags::default().apply(&mut d).unwrap();
        assert_eq!(d, base);
        let e = StepFlags {
            optimizer: Some("lamb".into()),
            ..StepFlags::default()
        }
        .apply(&mut d)
        .unwrap_err()
        .to_string();
        assert!(e.contains("lamb") && e.contains("adamw"), "{e}");
        // Naming the base's optimizer keeps its constants.
        let mut m = RunConfig {
            optimizer: Optimizer::Momentum { mu: 0.95 },
            ..base.clone()
        };
        StepFlags {
            optimizer: Some("momentum".into()),
            ..StepFlags::default()
        }
        .apply(&mut m)
        .unwrap();
        assert_eq!(m.optimizer, Optimizer::Momentum { mu: 0.95 });
    }

    #[test]
    fn run_flags_override_the_base() {
        let mut c = RunConfig::default();
        RunFlags {
            dataset: Some("cifar10".into()),
            epochs: Some(3),
            lr: Some(0.1),
            warmup_epochs: Some(0),
            schedule: Some("constant".into()),
            seed: Some(7),
            no_shuffle: true,
            ..RunFlags::default()
        }
        .apply(&mut c, None)
        .unwrap();
        assert_eq!(
            c,
            RunConfig {
                dataset: spec::Dataset::Cifar10,
                epochs: 3,
                lr: 0.1,
                warmup_epochs: 0,
                schedule: spec::Schedule::Constant,
                seed: 7,
                shuffle: false,
                ..RunConfig::default()
            }
        );
        let e = RunFlags {
            schedule: Some("linear".into()),
            ..RunFlags::default()
        }
        .apply(&mut c, None)
        .unwrap_err()
        .to_string();
        assert!(e.contains("linear"), "{e}");
    }

    #[test]
    fn data_flags_override_the_base() {
        let mut c = spec::zoo::recipe("resnet18").unwrap();
        RunFlags {
            dataset: Some("folder".into()),
            augment: Some("random-resized-crop".into()),
            resize: Some(256),
            val_split: Some(0.1),
            early_stop: Some(2),
            ..RunFlags::default()
        }
        .apply(&mut c, None)
        .unwrap();
        assert_eq!(
            (c.dataset, c.augment, c.resize, c.val_split, c.early_stop),
            (
                spec::Dataset::Folder,
                spec::Augment::RandomResizedCrop,
                Some(256),
                Some(0.1),
                Some(2)
            )
        );
        // The recipe's normalisation stays with the model.
        assert_eq!(c.normalization(), spec::Normalize::imagenet());
        RunFlags {
            normalize: Some("none".into()),
            ..RunFlags::default()
        }
        .apply(&mut c, None)
        .unwrap();
        assert_eq!(c.normalization(), spec::Normalize::none());
        for (flags, what) in [
            (
                RunFlags {
                    augment: Some("zoom".into()),
                    ..RunFlags::default()
                },
                "zoom",
            ),
            (
                RunFlags {
                    normalize: Some("0.5/-1".into()),
                    ..RunFlags::default()
                },
                "--normalize",
            ),
        ] {
            let e = flags.apply(&mut c, None).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
    }
}
