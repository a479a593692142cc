//! `netspec predict MODEL --checkpoint C FILE…|DIR [--top-k K] [--json]`: class names with
//! probabilities for PNG/JPEG images, through the compiled predict program.

use std::path::PathBuf;

use anyhow::bail;
use train::predict::{self, Predictor};

/// Classify images (PNG, JPEG) with a trained model: top-k classes with probabilities.
///
/// Images are read by the one image loader and preprocessed as the run's evaluation split is (grey
/// or RGB; the run's resize, centre crop and normalisation; an image of another size has its
/// shorter side resized first), batched, and run through the model's compiled
/// predict program (eval-mode BN, no dropout). The weights file may be a checkpoint, an export in
/// netspec names, or a torchvision/timm state dict of the model (as `--init` reads them).
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    /// Images, or directories of images (.png, .jpg, .jpeg).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// A checkpoint or weights file, or a directory holding last.safetensors.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    /// One JSON object per image: {"file", "top": [{"class", "index", "prob"}…]}.
    #[arg(long)]
    pub json: bool,
    /// The dataset whose preprocessing and class names apply (default: the checkpoint's run's, else
    /// the one that fits the model's input). An image folder's class names come from the checkpoint.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Images per run of the compiled program.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: pjrt::Device,
    #[arg(long)]
    pub plugin: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = super::summary::load(&args.model)?;
    if args.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let file = train::run::checkpoint_file(&args.checkpoint);
    // The model must be the one the file records, if it records one.
    let ck = train::checkpoint::read_skipping(&file, &|n| {
        n.ends_with(train::exchange::BATCHES_TRACKED)
    })?;
    if let Some(r) = train::exchange::recorded_spec(&ck, &file)? {
        if train::run::spec_hash(&r) != train::run::spec_hash(&spec) {
            bail!(
                "{}: the file holds model {}, which differs from {}",
                file.display(),
                r.name,
                args.model
            );
        }
    }
    // The run's configuration (its dataset, resize, normalisation) decides the preprocessing; a
    // weights file without one gets the recipe of the model's input.
    let meta = train::run::CheckpointMeta::from_checkpoint(&ck, &file).ok();
    let mut config = match &meta {
        Some(m) => m.config.clone(),
        None => {
            let c = spec::RunConfig::default_for(&spec);
            if args.dataset.is_none() && spec::Dataset::for_input(spec.input).is_none() {
                bail!(
                    "{}: no run recorded in this file and no built-in dataset has input {:?}: pass --dataset",
                    file.display(),
                    spec.input
                );
            }
            c
        }
    };
    if let Some(d) = &args.dataset {
        config.switch_dataset(d.parse().map_err(anyhow::Error::msg)?);
    }
    // Class names: an image folder's (recorded in the checkpoint), else the built-in dataset's,
    // else the label numbers.
    let names: Vec<String> = match (
        meta.as_ref().and_then(|m| m.class_names.clone()),
        train::data::DatasetKind::of(config.dataset),
    ) {
        (Some(n), _) => n,
        (None, Some(kind)) => predict::class_names(kind)
            .iter()
            .map(|s| s.to_string())
            .collect(),
        (None, None) => (0..spec.num_classes).map(|i| i.to_string()).collect(),
    };
    if names.len() > spec.num_classes {
        bail!(
            "model {} has {} classes, but {} has {}",
            spec.name,
            spec.num_classes,
            config.dataset,
            names.len()
        );
    }
    let init = train::exchange::read_init(&spec, &file)?;
    if !init.fresh_head.is_empty() {
        bail!(
            "{}: the classifier ({}) has another class count than model {}",
            file.display(),
            init.fresh_head.join(", "),
            spec.name
        );
    }

    let files = predict::image_files(&args.images)?;
    let pre = predict::preprocess(&config, spec.input);
    let mut x = Vec::new();
    for f in &files {
        x.extend(train::data::load_image(f, spec.input[0], &pre)?);
    }
    let exec = train::device::Executor::open(args.device, args.plugin.as_deref())?;
    let batch = args.batch_size.min(files.len());
    let p = Predictor::new(
        &exec,
        &spec,
        batch,
        &init.tensors,
        &file.display().to_string(),
    )?;
    let logits = p.logits(&x)?;
    let k = spec.num_classes;
    let probs = predict::softmax_rows(&logits, k);
    for (f, row) in files.iter().zip(probs.chunks(k)) {
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let top: Vec<(usize, &str, f32)> = order
            .iter()
            .take(args.top_k)
            .map(|&i| (i, names.get(i).map_or("?", String::as_str), row[i]))
            .collect();
        if args.json {
            let top: Vec<serde_json::Value> = top
                .iter()
                .map(|(i, n, p)| serde_json::json!({"class": n, "index": i, "prob": p}))
                .collect();
            outln!("{}", serde_json::json!({"file": f, "top": top}));
        } else {
            let parts: Vec<String> = top
                .iter()
                .map(|(_, n, p)| format!("{n} {:.1}%", 100.0 * p))
                .collect();
            outln!("{}: {}", f.display(), parts.join(", "));
        }
    }
    Ok(())
}
