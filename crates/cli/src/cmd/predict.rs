//! `netspec predict MODEL --checkpoint C FILE…|DIR [--top-k K] [--json]`: class names with
//! probabilities for PNG/JPEG images, through the compiled predict program.

use std::path::PathBuf;

use anyhow::{bail, Context};
use train::predict::{self, Predictor};

/// Classify images (PNG, JPEG) with a trained model: top-k classes with probabilities.
///
/// Images are preprocessed as the dataset's test split is (grey or RGB, resized to the stored size
/// when it differs, the dataset's normalisation), batched, and run through the model's compiled
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
    /// The dataset whose preprocessing and class names apply (default: the checkpoint's, else the
    /// one that fits the model's input).
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
    let kind = match (
        &args.dataset,
        train::run::CheckpointMeta::from_checkpoint(&ck, &file),
    ) {
        (Some(d), _) => d.parse()?,
        (None, Ok(m)) => train::run::dataset_kind(m.config.dataset),
        (None, Err(_)) => spec::Dataset::for_input(spec.input)
            .map(train::run::dataset_kind)
            .with_context(|| {
                format!(
                    "no dataset known for input {:?}: pass --dataset",
                    spec.input
                )
            })?,
    };
    let names = predict::class_names(kind);
    if names.len() > spec.num_classes {
        bail!(
            "model {} has {} classes, but {kind} has {}",
            spec.name,
            spec.num_classes,
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
    let mut x = Vec::new();
    let mut resized = false;
    for f in &files {
        x.extend(predict::load_image(f, spec.input[0], kind, &mut resized)?);
    }
    if resized {
        let (_, h, w) = kind.stored_shape(train::data::Split::Test);
        note!("note: images not of {kind}'s {h}x{w} size were resized to it");
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
            .map(|&i| (i, names.get(i).copied().unwrap_or("?"), row[i]))
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
