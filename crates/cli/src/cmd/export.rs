//! `netspec export CHECKPOINT -o FILE.safetensors [--names netspec|torchvision|timm] [--weights-only]`:
//! the parameters and BN statistics of a checkpoint (no optimizer state), in netspec's names or in a
//! torchvision/timm model's (`train::exchange`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use train::exchange::{self, Convention};

/// Export a checkpoint's parameters and BN statistics (netspec, torchvision or timm names).
///
/// `--names torchvision` fits torchvision ResNet, SqueezeNet, MobileNetV2, MobileNetV3 and
/// EfficientNet structures, `--names timm` timm MobileNetV4 and VisionTransformer: names follow
/// from the model's layers, dense kernels are transposed to PyTorch's `[out, in]`, every BN gets
/// `num_batches_tracked` (the checkpoint's step), and the file loads with
/// `model.load_state_dict(safetensors.torch.load_file(FILE))`. `netspec train --init FILE` reads any
/// of the three back.
#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint file, or a directory holding last.safetensors.
    pub checkpoint: PathBuf,
    /// The output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Whose names to write: netspec, torchvision or timm.
    #[arg(long, default_value = "netspec")]
    pub names: String,
    /// Tensors only: leave out the metadata (model, spec, step) that a netspec-named export keeps.
    #[arg(long)]
    pub weights_only: bool,
    /// The model (zoo name or spec file), for a file that does not record its spec.
    #[arg(long)]
    pub model: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let convention = Convention::from_name(&args.names)
        .with_context(|| format!("--names {}: use netspec, torchvision or timm", args.names))?;
    let file = train::run::checkpoint_file(&args.checkpoint);
    let ck = train::checkpoint::read(&file)?;
    let spec = model_of(&ck, &file, args.model.as_deref())?;
    let step = exchange::recorded_step(&ck, &file);
    let mut out = exchange::export(&spec, &ck, &file, convention, step)?;
    if convention == Convention::Netspec && !args.weights_only {
        let (k, v) = exchange::weights_metadata(&spec, step);
        out.metadata.insert(k, v);
    }
    out.write(&args.output)?;
    note!(
        "{}: {} tensors of {} (step {step}) in {convention} names",
        args.output.display(),
        out.tensors.len(),
        spec.name
    );
    Ok(())
}

/// The spec of a file: the one it records, checked against `--model` when both are there.
pub fn model_of(
    ck: &train::checkpoint::Checkpoint,
    file: &std::path::Path,
    model: Option<&str>,
) -> anyhow::Result<spec::NetSpec> {
    let recorded = exchange::recorded_spec(ck, file)?;
    match (recorded, model) {
        (Some(r), Some(m)) => {
            let given = super::summary::load(m)?;
            if train::run::spec_hash(&given) != train::run::spec_hash(&r) {
                bail!(
                    "{}: the file holds model {}, which differs from {m}",
                    file.display(),
                    r.name
                );
            }
            Ok(given)
        }
        (Some(r), None) => Ok(r),
        (None, Some(m)) => super::summary::load(m),
        (None, None) => bail!(
            "{}: the file records no model: name it with --model MODEL|FILE",
            file.display()
        ),
    }
}
