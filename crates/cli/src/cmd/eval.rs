//! `netspec eval MODEL|FILE --checkpoint FILE`: accuracy of a checkpoint on a split of its data.

use std::path::PathBuf;

/// Evaluate a checkpoint (or init file) on the test split (or --split); prints loss and accuracy.
///
/// The data is read as the run that wrote the checkpoint read it (dataset, resize, normalisation,
/// validation split), with the evaluation transform.
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    /// A checkpoint file, or a directory holding last.safetensors.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset directory, image folder or array file (default: the dataset's installed location).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Dataset (default: the one the checkpoint was trained on, or what --data holds).
    #[arg(long)]
    pub dataset: Option<String>,
    /// train, val or test (default: test if the data has one, else val).
    #[arg(long)]
    pub split: Option<String>,
    /// Leave out unreadable or corrupt image files (counted) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// The (global) batch of the eval program, split over --devices.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// f32 or bf16 (default: the precision the checkpoint was trained in).
    #[arg(long)]
    pub precision: Option<String>,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: pjrt::Device,
    /// Devices to evaluate on, the batch split over them (default: 1 on CPU, every GPU on CUDA).
    #[arg(long)]
    pub devices: Option<usize>,
    #[arg(long)]
    pub plugin: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = super::summary::load(&args.model)?;
    let dataset = args
        .dataset
        .as_deref()
        .map(str::parse::<spec::Dataset>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let split = args
        .split
        .as_deref()
        .map(str::parse::<train::run::EvalSplit>)
        .transpose()?;
    let r = train::run::eval_checkpoint(
        &spec,
        &args.checkpoint,
        &train::run::EvalData {
            path: args.data.clone(),
            dataset,
            split,
            skip_bad: args.skip_bad,
        },
        args.precision
            .as_deref()
            .map(super::config::parse_precision)
            .transpose()?,
        args.batch_size,
        args.device,
        args.devices,
        args.plugin.as_deref(),
    )?;
    outln!(
        "{} {}: {} {} split, loss {:.4}, accuracy {:.2}% ({}/{}); {}; on {} device{}",
        spec.name,
        r.checkpoint.display(),
        r.dataset,
        r.split.name(),
        r.test.mean_loss(),
        100.0 * r.test.accuracy(),
        r.test.correct,
        r.test.total,
        r.split_from,
        r.devices,
        if r.devices == 1 { "" } else { "s" }
    );
    Ok(())
}
