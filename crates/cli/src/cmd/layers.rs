//! `netspec layers [NAME]`: the spec language's core layers, combinators and prelude blocks with
//! their arguments, defaults and meaning (from the tables the parser uses), or one of them in full.

/// List the layers a spec file can use, or describe one.
#[derive(clap::Args)]
pub struct Args {
    /// A core layer, combinator or prelude block to describe in full.
    pub name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.name {
        None => out!("{}", spec::summary::layers_table()),
        Some(n) => match spec::summary::describe_layer(&n) {
            Some(s) => out!("{s}"),
            None => anyhow::bail!(
                "no layer, combinator or prelude block `{n}`; `netspec layers` lists them"
            ),
        },
    }
    Ok(())
}
