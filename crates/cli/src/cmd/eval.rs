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
    let r = train::run::eval_checkpoint(
        &spec,
        &args.checkpoint,
        dataset,
        args
            .precision
            .as_deref()
            .map(super::config::parse_precision)
            .transpose()?,
        args.data.as_deref(),
        args.batch_size,
        args.device,
        args.devices,
        args.plugin.as_deref(),
    )?;
    println!(
        "{} {}: {} test split, loss {:.4}, accuracy {:.2}% ({}/{}) on {} device{}",
        spec.name,
        r.checkpoint.display(),
        r.dataset,
        r.test.mean_loss(),
        100.0 * r.test.accuracy(),
        r.test.correct,
        r.test.total,
        r.devices,
        if r.devices == 1 { "" } else { "s" }
    );
    Ok(())
}
