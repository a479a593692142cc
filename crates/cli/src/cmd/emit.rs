//! `netspec emit MODEL|FILE [-o out.mlir] [--program train|eval|predict|forward|grads] [--batch-size N]
//! [--optimizer sgd|momentum|adam|adamw] [--weight-decay WD] [--label-smoothing LS] [--devices N]`:
//! prints the StableHLO module of one step program. Defaults come from the model's configuration
//! (`spec::RunConfig::default_for`: the zoo recipe, or the default for spec files).

use std::path::PathBuf;

use anyhow::Context;

/// Which program to emit.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ProgramKind {
    /// The fused train step (forward, loss, backward, optimizer, BN running statistics).
    Train,
    /// Loss sum and correct count with running BN statistics.
    Eval,
    /// Logits with running BN statistics.
    Predict,
    /// Training-mode forward (batch statistics, dropout on) to logits.
    Forward,
    /// Loss and one gradient per parameter (training mode).
    Grads,
}

/// Write the StableHLO of a step program (train step by default).
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    /// Output file (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "train")]
    pub program: ProgramKind,
    #[command(flatten)]
    pub step: super::config::StepFlags,
    /// Emit the train, eval or predict program partitioned over this many devices (batch split,
    /// everything else replicated: `mhlo.sharding` on every argument).
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let net = super::summary::load(&args.model)?;
    let mut cfg = spec::RunConfig::default_for(&net);
    args.step.apply(&mut cfg)?;
    let n = args.devices;
    if n != 1 && matches!(args.program, ProgramKind::Forward | ProgramKind::Grads) {
        anyhow::bail!("--devices applies to the train, eval and predict programs only");
    }
    let prog = match args.program {
        ProgramKind::Train => nn::train_step_on(&net, &cfg, n),
        ProgramKind::Eval => nn::eval_step_with(&net, cfg.batch_size, n, cfg.precision),
        ProgramKind::Predict => nn::predict_with(&net, cfg.batch_size, n, cfg.precision),
        ProgramKind::Forward => nn::forward(&net, cfg.batch_size),
        ProgramKind::Grads => {
            nn::grads_in(&net, cfg.batch_size, cfg.label_smoothing, cfg.precision)
        }
    }
    .with_context(|| {
        format!(
            "building the {} program of `{}`",
            format!("{:?}", args.program).to_lowercase(),
            net.name
        )
    })?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &prog.mlir)
                .with_context(|| format!("writing {}", path.display()))?;
            note!(
                "wrote {} ({} bytes): {} program of `{}`, batch {}, {} inputs, {} outputs, {:.3} GFLOP per call",
                path.display(),
                prog.mlir.len(),
                format!("{:?}", args.program).to_lowercase(),
                net.name,
                cfg.batch_size,
                prog.inputs.len(),
                prog.outputs.len(),
                prog.flops as f64 / 1e9
            );
        }
        None => out!("{}", prog.mlir),
    }
    Ok(())
}
