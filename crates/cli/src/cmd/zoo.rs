//! `netspec zoo [MODEL]`: the reference models (input shape, parameter count, data set of the
//! default recipe), or one model's spec file text.

/// List the zoo models, or print one model as a spec file.
#[derive(clap::Args)]
pub struct Args {
    /// Print this model's spec (the text format that `netspec summary FILE` reads).
    pub model: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.model {
        None => out!("{}", spec::summary::zoo_table()),
        Some(name) => match spec::zoo::get(&name) {
            Some(s) => out!("{}", spec::print(&s)),
            None => anyhow::bail!(
                "no zoo model `{name}`; models: {}",
                spec::zoo::names().join(", ")
            ),
        },
    }
    Ok(())
}
