//! `netspec eval MODEL|FILE --checkpoint FILE`: test-split accuracy of a checkpoint.

use std::path::PathBuf;

/// Evaluate a checkpoint (or init file) on the test split; prints loss and accuracy.
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    /// A checkpoint file, or a directory holding last.safetensors.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset directory (default: the dataset's installed location).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Dataset (default: the one the checkpoint was trained on).
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: pjrt::Device,
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
    let r = train::run::eval_checkpoint(
        &spec,
        &args.checkpoint,
        dataset,
        args.data.as_deref(),
        args.batch_size,
        args.device,
        args.plugin.as_deref(),
    )?;
    outln!(
        "{} {}: {} test split, loss {:.4}, accuracy {:.2}% ({}/{})",
        spec.name,
        r.checkpoint.display(),
        r.dataset,
        r.test.mean_loss(),
        100.0 * r.test.accuracy(),
        r.test.correct,
        r.test.total
    );
    Ok(())
}
