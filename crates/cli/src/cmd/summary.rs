//! `netspec summary MODEL|FILE [--batch-size B] [--optimizer O]`: per-layer table (index, layer,
//! output shape, parameters, forward FLOPs), trainable and non-trainable parameters, a training-memory
//! estimate (`cmd::memory`); the last line is `total params: N`.

use std::path::Path;

use anyhow::Context;

/// Show a network's layers, output shapes, parameters and FLOPs, and estimate its training memory.
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    /// Batch size of the memory estimate (default: the model's recipe, else 32).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Optimizer of the memory estimate: sgd, momentum, adam or adamw (default: the recipe's).
    #[arg(long)]
    pub optimizer: Option<String>,
}

/// A zoo model by name, else the spec file at that path (shape-checked; errors as
/// `FILE:LINE:COL: message`).
pub fn load(model: &str) -> anyhow::Result<spec::NetSpec> {
    if let Some(s) = spec::zoo::get(model) {
        return Ok(s);
    }
    let path = Path::new(model);
    if !path.exists() {
        anyhow::bail!(
            "`{model}` is neither a zoo model ({}) nor an existing file",
            spec::zoo::names().join(", ")
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    spec::parse_checked(&bytes).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let net = load(&args.model)?;
    let table = spec::summary(&net)?;
    let recipe = spec::zoo::recipe(&net.name).filter(|_| spec::zoo::get(&args.model).is_some());
    let batch = args
        .batch_size
        .or(recipe.as_ref().map(|r| r.batch_size))
        .unwrap_or(32);
    let optimizer = match &args.optimizer {
        Some(o) => o.parse::<spec::Optimizer>().map_err(anyhow::Error::msg)?,
        None => recipe.map_or(spec::RunConfig::default().optimizer, |r| r.optimizer),
    };
    let moments = match optimizer {
        spec::Optimizer::Sgd => 0,
        spec::Optimizer::Momentum { .. } => 1,
        spec::Optimizer::Adam { .. } | spec::Optimizer::AdamW { .. } => 2,
    };
    let m = super::memory::estimate(&net, batch, moments)?;
    // The table, the parameter and memory lines, then the table's last line (`total params: N`).
    let (body, last) = table.rsplit_once('\n').unwrap_or(("", &table));
    outln!("{body}");
    out!("{}", super::memory::report(&m, optimizer.name()));
    outln!("{last}");
    Ok(())
}
