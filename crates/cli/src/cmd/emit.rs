//! `netspec emit MODEL|FILE [-o out.mlir] [--program train|eval|predict|forward|grads] [--batch-size N]
//! [--optimizer sgd|momentum|adam|adamw] [--weight-decay WD] [--label-smoothing LS]`: prints the
//! StableHLO module of one step program. Defaults come from the zoo model's recipe (`spec::zoo::recipe`),
//! or from `spec::Recipe::default()` for spec files.

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

/// Optimizer choices on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OptName {
    Sgd,
    Momentum,
    Adam,
    Adamw,
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
    /// Batch size (default: the recipe's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Optimizer of the train step (default: the recipe's); momentum uses μ = 0.9.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptName>,
    /// Weight decay on kernels (default: the recipe's).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Label smoothing of the train/grads loss (default: the recipe's).
    #[arg(long)]
    pub label_smoothing: Option<f32>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let net = super::summary::load(&args.model)?;
    let recipe = spec::zoo::recipe(&args.model).unwrap_or_default();
    let mut cfg = nn::StepConfig::from_recipe(&recipe);
    if let Some(b) = args.batch_size {
        cfg.batch_size = b;
    }
    if let Some(o) = args.optimizer {
        cfg.optimizer = match o {
            OptName::Sgd => nn::Optimizer::Sgd,
            OptName::Momentum => nn::Optimizer::Momentum { mu: 0.9 },
            OptName::Adam => nn::Optimizer::ADAM,
            OptName::Adamw => nn::Optimizer::ADAMW,
        };
    }
    if let Some(wd) = args.weight_decay {
        cfg.weight_decay = wd;
    }
    if let Some(ls) = args.label_smoothing {
        cfg.label_smoothing = ls;
    }
    let prog = match args.program {
        ProgramKind::Train => nn::train_step(&net, &cfg),
        ProgramKind::Eval => nn::eval_step(&net, cfg.batch_size),
        ProgramKind::Predict => nn::predict(&net, cfg.batch_size),
        ProgramKind::Forward => nn::forward(&net, cfg.batch_size),
        ProgramKind::Grads => nn::grads(&net, cfg.batch_size, cfg.label_smoothing),
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
            eprintln!(
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
        None => print!("{}", prog.mlir),
    }
    Ok(())
}
