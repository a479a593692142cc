//! `netspec diff-traces A B --mode strict|cross-gpu|cross-comp`: compare two JSONL traces.
//!
//! Exit status: 0 when they agree, 1 when they differ (the first differing steps are listed, at
//! most 20, with both values), 2 when a trace cannot be read.

use std::path::PathBuf;

use train::trace::{self, DiffMode};

/// Compare two JSONL traces within a tolerance class (exit 0: agree, 1: differ, 2: unreadable).
#[derive(clap::Args)]
pub struct Args {
    /// The first trace (JSONL).
    pub a: PathBuf,
    /// The second trace; tolerances are relative to its values.
    pub b: PathBuf,
    /// Tolerances: strict (atol 1e-4, rtol 1e-3), cross-gpu (1e-3, 1e-2), cross-comp (1e-2, 1e-1).
    #[arg(long, default_value = "strict", value_parser = parse_mode)]
    pub mode: DiffMode,
}

fn parse_mode(s: &str) -> Result<DiffMode, String> {
    s.parse().map_err(|e: train::Error| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let read = |p: &PathBuf| {
        trace::read(p).unwrap_or_else(|e| {
            note!("error: {e}");
            std::process::exit(2)
        })
    };
    let (a, b) = (read(&args.a), read(&args.b));
    let report = trace::diff(&a, &b, args.mode);
    out!("{report}");
    if !report.agrees() {
        std::process::exit(1);
    }
    Ok(())
}
