//! `netspec export-jax MODEL|FILE -o train.py`: the network and its recipe as a self-contained JAX
//! training script (see the `jaxgen` crate). The recipe is the zoo model's (by name), else the
//! default recipe; flags override single fields.

use std::path::PathBuf;

use anyhow::Context;

/// Write a readable JAX training script (also the gradient oracle) for a network.
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    /// Output file ("-" for stdout).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Data set: mnist, fashion-mnist, cifar10, imagenette.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Seed of init and data order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// f32 or bf16 (mixed precision, as `netspec train --precision`).
    #[arg(long)]
    pub precision: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let net = crate::cmd::summary::load(&args.model)?;
    // The configuration `netspec train` would use.
    let mut recipe = spec::RunConfig::default_for(&net);
    if let Some(d) = &args.dataset {
        recipe.dataset = d.parse().map_err(anyhow::Error::msg)?;
    }
    if let Some(v) = args.lr {
        recipe.lr = v;
    }
    if let Some(v) = args.batch_size {
        recipe.batch_size = v;
    }
    if let Some(v) = args.epochs {
        recipe.epochs = v;
    }
    if let Some(v) = args.seed {
        recipe.seed = v;
    }
    if let Some(p) = &args.precision {
        recipe.precision = super::config::parse_precision(p)?;
    }
    let script = jaxgen::export(&net, &recipe)?;
    if args.output.as_os_str() == "-" {
        out!("{script}");
    } else {
        std::fs::write(&args.output, script)
            .with_context(|| format!("writing {}", args.output.display()))?;
        note!(
            "wrote {} ({} for {})",
            args.output.display(),
            net.name,
            recipe.dataset.name()
        );
    }
    Ok(())
}
