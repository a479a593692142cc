//! `netspec export-onnx MODEL --checkpoint C -o model.onnx [--batch N | --dynamic-batch]`: the
//! predict program as an ONNX model (crate `onnx`).

use std::path::PathBuf;

use anyhow::bail;

/// Export a trained model's predict program to ONNX (opset 18), weights as initializers.
///
/// Input `images` `[B, C, H, W]` (f32, NCHW, preprocessed as the dataset's test split), output
/// `logits` `[B, classes]`. The graph is netspec's own predict program translated primitive by
/// primitive, so an ONNX runtime computes what netspec computes (checked with onnxruntime for every
/// zoo model).
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    /// A checkpoint or weights file (netspec, torchvision or timm names), or a directory holding
    /// last.safetensors.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(short, long)]
    pub output: PathBuf,
    /// A fixed batch size.
    #[arg(long, conflicts_with = "dynamic_batch")]
    pub batch: Option<usize>,
    /// Any batch size (the first dim of input and output is the symbol `batch`).
    #[arg(long)]
    pub dynamic_batch: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = super::summary::load(&args.model)?;
    let file = train::run::checkpoint_file(&args.checkpoint);
    let ck = train::checkpoint::read_skipping(&file, &|n| {
        n.ends_with(train::exchange::BATCHES_TRACKED)
    })?;
    let _ = super::export::model_of(&ck, &file, Some(&args.model))?;
    let init = train::exchange::read_init(&spec, &file)?;
    if !init.fresh_head.is_empty() {
        bail!(
            "{}: the classifier ({}) has another class count than model {}",
            file.display(),
            init.fresh_head.join(", "),
            spec.name
        );
    }
    let weights = init
        .tensors
        .into_iter()
        .map(|(n, t)| match t.data {
            train::checkpoint::TensorData::F32(v) => Ok((n, v)),
            train::checkpoint::TensorData::I32(_) => {
                bail!("{}: tensor {n} is not f32", file.display())
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let batch = match (args.batch, args.dynamic_batch) {
        (_, true) => onnx::Batch::Dynamic,
        (Some(0), false) => bail!("--batch must be at least 1"),
        (Some(b), false) => onnx::Batch::Fixed(b),
        (None, false) => onnx::Batch::Fixed(1),
    };
    let model = onnx::export(&spec, &weights, batch)?;
    let bytes = onnx::to_bytes(&model);
    train::checkpoint::write_atomic(&args.output, |w| w.write_all(&bytes))?;
    let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
    note!(
        "{}: {} ({nodes} nodes, opset {}, batch {}), {:.1} MB",
        args.output.display(),
        spec.name,
        onnx::OPSET,
        match batch {
            onnx::Batch::Fixed(b) => b.to_string(),
            onnx::Batch::Dynamic => "dynamic".into(),
        },
        bytes.len() as f64 / 1e6
    );
    Ok(())
}
