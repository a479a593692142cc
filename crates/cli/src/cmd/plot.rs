//! `netspec plot TRACE -o curves.png|svg`: loss per step (raw and smoothed) and accuracy per epoch.

use std::path::PathBuf;

use anyhow::Context;

/// Plot a trace's loss per step (raw and smoothed) and accuracy per epoch to PNG or SVG.
#[derive(clap::Args)]
pub struct Args {
    /// The trace (JSONL) to plot.
    pub trace: PathBuf,
    /// The image to write; its extension (.png or .svg) picks the format.
    #[arg(short, long, default_value = "curves.png")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let t = train::trace::read(&args.trace)?;
    train::plot::plot(&t, &args.output)
        .with_context(|| format!("plotting {}", args.trace.display()))?;
    outln!(
        "wrote {} ({} steps, {} epoch lines)",
        args.output.display(),
        t.steps.len(),
        t.epochs.len()
    );
    Ok(())
}
