//! `netspec summary MODEL|FILE`: per-layer table (index, layer, output shape, parameters,
//! forward FLOPs); the last line is `total params: N`.

use std::path::Path;

use anyhow::Context;

/// Show a network's layers, output shapes, parameter counts and forward FLOPs.
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
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
    println!("{}", spec::summary(&net)?);
    Ok(())
}
