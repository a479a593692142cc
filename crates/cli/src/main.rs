//! The `netspec` command line. Each subcommand lives in `cmd/<name>.rs` and exposes
//! `Args` (clap) and `run(args) -> anyhow::Result<()>`; this file only dispatches.

use clap::{Parser, Subcommand};

#[macro_use]
mod output;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod block_cache;
mod cmd;
mod host_memory;

#[derive(Parser)]
#[command(
    name = "netspec",
    version,
    about = "Rust as a specification language for neural networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // Subcommands are added here, one line each: `Name(cmd::name::Args),`
    /// Check the PJRT runtime: plugin, versions, devices, a compiled module's exact result, timings
    Doctor(cmd::doctor::Args),
    /// Time the compiled train step: compile time, ms/step, img/s, GFLOP/s (one JSON line)
    Bench(cmd::bench::Args),
    /// Time the batch producers on an image folder or array files: decode + augment img/s, memory
    BenchData(cmd::bench_data::Args),
    DiffTraces(cmd::diff_traces::Args),
    /// Write the StableHLO of a step program (train, eval, predict, forward, grads)
    Emit(cmd::emit::Args),
    ExportJax(cmd::export_jax::Args),
    Plot(cmd::plot::Args),
    Summary(cmd::summary::Args),
    /// The spec language's layers, combinators and prelude blocks, or one of them in full
    Layers(cmd::layers::Args),
    Zoo(cmd::zoo::Args),
    /// Train a model (defaults from its recipe); traces, checkpoints, --resume
    Train(Box<cmd::train::Args>),
    /// Evaluate a checkpoint on the test split (or --split train|val)
    Eval(cmd::eval::Args),
    Export(cmd::export::Args),
    ExportOnnx(cmd::export_onnx::Args),
    Predict(cmd::predict::Args),
}

/// (requests served by a kept block, large requests that went to glibc): `block_cache.rs`.
fn block_cache_stats() -> (usize, usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    return block_cache::stats();
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    return (0, 0);
}

fn main() {
    host_memory::use_huge_pages();
    quiet_plugin_info_logs();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("NETSPEC_MALLOC").is_none_or(|v| v != "system") {
        block_cache::enable();
    }
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        // One line per subcommand: `Command::Name(a) => cmd::name::run(a),`
        Command::Doctor(a) => cmd::doctor::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::BenchData(a) => cmd::bench_data::run(a),
        Command::DiffTraces(a) => cmd::diff_traces::run(a),
        Command::Emit(a) => cmd::emit::run(a),
        Command::ExportJax(a) => cmd::export_jax::run(a),
        Command::Plot(a) => cmd::plot::run(a),
        Command::Summary(a) => cmd::summary::run(a),
        Command::Layers(a) => cmd::layers::run(a),
        Command::Zoo(a) => cmd::zoo::run(a),
        Command::Train(a) => cmd::train::run(*a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::ExportOnnx(a) => cmd::export_onnx::run(a),
        Command::Predict(a) => cmd::predict::run(a),
    };
    if let Err(e) = result {
        note!("error: {e:#}");
        std::process::exit(1);
    }
}

/// XLA logs informational lines to stderr before anything can configure its logging (absl's
/// pre-`InitializeLog` mode): creating a CPU client with `cpu_device_count` prints
/// `… pjrt_c_api_cpu_internal.cc:74] cpu_device_count set via create_options: 1` on every run. XLA's
/// logging reads `TF_CPP_MIN_LOG_LEVEL` (0 info, 1 warning, 2 error); netspec asks for warnings and
/// up unless the user set it. Called first thing in `main`, before any thread exists.
fn quiet_plugin_info_logs() {
    const VAR: &str = "TF_CPP_MIN_LOG_LEVEL";
    if std::env::var_os(VAR).is_none() {
        std::env::set_var(VAR, "1");
    }
}
