//! `netspec bench MODEL|FILE --batch-size B`: code-generation and compile time, ms/step (median and
//! spread) of the donated train step with the batch already on the device, images/s, FLOPs per step
//! from the graph, GFLOP/s, peak host memory; `--e2e` adds the step fed by the batch producers.
//! One JSON line on stdout (keys in BENCHMARKS.md), a readable table on stderr.

use std::path::PathBuf;

use anyhow::Context;
use train::bench::{self, DataSource, Options};
use train::device::Executor;

use super::config::StepFlags;

/// Time the compiled train step of a model; prints one JSON line (stdout) and a table (stderr).
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    #[command(flatten)]
    pub step_flags: StepFlags,
    /// Timed steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Untimed steps before them.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: pjrt::Device,
    /// Devices the step runs on, the batch (--batch-size, global) split over them; with more than
    /// one, a 1-device baseline at the per-device batch is timed beside it and the scaling
    /// efficiency reported (default: 1 on CPU, every GPU on CUDA).
    #[arg(long)]
    pub devices: Option<usize>,
    /// The PJRT plugin file (default: found as `netspec doctor` finds it).
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Also time the step fed by the batch producers (upload on their threads).
    #[arg(long)]
    pub e2e: bool,
    /// Data for --e2e: a Fashion-MNIST directory, an image folder or array files (default:
    /// Fashion-MNIST's installed location when the model takes 1×28×28 images and the files are
    /// there; otherwise synthetic images of the model's input shape).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use synthetic images for --e2e even when Fashion-MNIST is available.
    #[arg(long)]
    pub synthetic: bool,
    /// With --e2e --data FOLDER: the training augmentation (none, flip, crop-flip,
    /// random-resized-crop), as `netspec train --augment`.
    #[arg(long)]
    pub augment: Option<String>,
    /// With --e2e --data FOLDER: resize the shorter side to this many pixels first, as
    /// `netspec train --resize`.
    #[arg(long)]
    pub resize: Option<usize>,
    /// Batch producer threads for --e2e.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Write the generated train-step StableHLO here (and still run it).
    #[arg(long)]
    pub dump_mlir: Option<PathBuf>,
    /// Compile this StableHLO file instead of the generated step (same signature required): for
    /// timing hand-edited variants of the step.
    #[arg(long)]
    pub mlir: Option<PathBuf>,
    /// Seed of the initial parameters and the batch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn data_source(net: &spec::NetSpec, args: &Args) -> anyhow::Result<DataSource> {
    if args.synthetic {
        return Ok(DataSource::Synthetic(
            4096.max(args.step_flags.batch_size.unwrap_or(0) * 4),
        ));
    }
    if let Some(path) = &args.data {
        anyhow::ensure!(
            path.exists(),
            "--data {}: no such file or directory",
            path.display()
        );
        if train::data::DatasetKind::FashionMnist.found_in(path) {
            return Ok(DataSource::FashionMnist(path.clone()));
        }
        // An image folder or array files, read as `netspec train --data` reads them.
        return Ok(DataSource::Files(path.clone()));
    }
    let installed = train::data::DatasetKind::FashionMnist
        .default_dir()
        .filter(|d| d.is_dir());
    Ok(match installed {
        Some(dir) if net.input == [1, 28, 28] => DataSource::FashionMnist(dir),
        Some(_) | None => {
            DataSource::Synthetic(4096.max(args.step_flags.batch_size.unwrap_or(0) * 4))
        }
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.steps > 0, "--steps must be at least 1");
    anyhow::ensure!(args.threads > 0, "--threads must be at least 1");
    let net = super::summary::load(&args.model)?;
    let mut cfg = spec::RunConfig::default_for(&net);
    args.step_flags.apply(&mut cfg)?;
    if let Some(a) = &args.augment {
        cfg.augment = a
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--augment {a}: {e}"))?;
    }
    if args.resize.is_some() {
        cfg.resize = args.resize;
    }
    cfg.check_step().map_err(anyhow::Error::msg)?;
    if let Some(n) = args.devices {
        anyhow::ensure!(n > 0, "--devices must be at least 1");
        anyhow::ensure!(
            cfg.batch_size.is_multiple_of(n),
            "--batch-size {} cannot be split evenly over {n} devices (--devices {n}): the batch is \
             the global batch, so it must be a multiple of the device count",
            cfg.batch_size
        );
    }
    let mlir = match &args.mlir {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --mlir {}", path.display()))?,
        ),
        None => None,
    };
    let exec = Executor::open_run(args.device, args.plugin.as_deref(), args.devices).with_context(
        || {
            format!(
                "opening the {} device(s) (check with: netspec doctor --device {})",
                args.device, args.device
            )
        },
    )?;
    eprintln!("devices: {}", exec.describe());
    if let Some(path) = &args.dump_mlir {
        let text = bench::emit(&net, &cfg, &exec)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let opts = Options {
        steps: args.steps,
        warmup: args.warmup,
        e2e: args.e2e,
        data: data_source(&net, &args)?,
        threads: args.threads,
        prefetch: 2 * args.threads,
        seed: args.seed,
        mlir,
        ..Options::default()
    };
    let report = bench::run(&net, &cfg, &exec, &opts)?;
    crate::output::stderr(format_args!("{}", report.table()));
    let mut json = report.to_json();
    let (hits, misses) = crate::block_cache_stats();
    json["block_cache"] = serde_json::json!({"hits": hits, "misses": misses});
    json["conv_calls"] = serde_json::json!(exec.conv_calls());
    json["matmul_calls"] = serde_json::json!(exec.calls().matmul);
    outln!("{}", json);
    Ok(())
}
