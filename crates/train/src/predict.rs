//! The compiled predict program with a model's weights on the device: images in, logits out.
//!
//! `nn::predict(spec, batch)` is `(params…, bn_running…, x) -> logits` (eval-mode BN with the
//! running statistics, no dropout). A [`Predictor`] compiles it once, uploads every parameter and
//! BN statistic once (found by walking `Program::inputs`, named as in checkpoints), and then runs
//! any number of batches; a short last batch is padded with zero images and its padding rows are
//! dropped from the result. Used by `netspec predict`, the logit-parity and the ONNX checks.

use std::collections::BTreeMap;
use std::time::Duration;

use nn::SlotKind;
use pjrt::{Arg, Buffer, Client};
use spec::NetSpec;

use crate::checkpoint::{Tensor, TensorData};
use crate::trainer::{state_name, Compiled};
use crate::{Error, Result};

/// The predict program of a spec, compiled, with its state uploaded.
pub struct Predictor {
    client: Client,
    compiled: Compiled,
    /// One entry per program input: the uploaded state, `None` at the images input.
    state: Vec<Option<Buffer>>,
    x_index: usize,
    logits_index: usize,
    x_dims: Vec<usize>,
    classes: usize,
}

impl Predictor {
    /// Generates and compiles `nn::predict(spec, batch)` and uploads the state from `tensors`
    /// (netspec names; every parameter and BN statistic must be there with the model's shape).
    /// `what` names the tensors' source in errors.
    pub fn new(
        client: &Client,
        spec: &NetSpec,
        batch: usize,
        tensors: &BTreeMap<String, Tensor>,
        what: &str,
    ) -> Result<Predictor> {
        let program = nn::predict(spec, batch).map_err(|e| {
            Error::Invalid(format!(
                "generating the predict program of {}: {e}",
                spec.name
            ))
        })?;
        let compiled = Compiled::new(client, program, "predict")?;
        let mut state = Vec::with_capacity(compiled.program.inputs.len());
        let mut x_index = None;
        for (j, slot) in compiled.program.inputs.iter().enumerate() {
            match (&slot.kind, state_name(&slot.kind)) {
                (SlotKind::Images, _) => {
                    x_index = Some(j);
                    state.push(None);
                }
                (SlotKind::Param(_) | SlotKind::Buffer(_), Some(name)) => {
                    let t = tensors.get(name).ok_or_else(|| {
                        Error::Invalid(format!("{what}: no tensor {name} (model {})", spec.name))
                    })?;
                    if t.shape != slot.dims {
                        return Err(Error::Invalid(format!(
                            "{what}: tensor {name} has shape {:?}, the model needs {:?}",
                            t.shape, slot.dims
                        )));
                    }
                    let dims: Vec<i64> = slot.dims.iter().map(|&d| d as i64).collect();
                    let buf = match &t.data {
                        TensorData::F32(v) => client.buffer(v, &dims),
                        TensorData::I32(v) => client.buffer(v, &dims),
                    }
                    .map_err(|e| Error::device(format!("uploading {name}"), e))?;
                    state.push(Some(buf));
                }
                (kind, _) => {
                    return Err(Error::Invalid(format!(
                        "predict program input {j} ({kind:?}) is unexpected"
                    )))
                }
            }
        }
        let x_index =
            x_index.ok_or_else(|| Error::Invalid("predict program: no images input".into()))?;
        let logits_index = compiled
            .program
            .output_index(&SlotKind::Logits)
            .ok_or_else(|| Error::Invalid("predict program: no logits output".into()))?;
        let x_dims = compiled.program.inputs[x_index].dims.clone();
        Ok(Predictor {
            client: client.clone(),
            compiled,
            state,
            x_index,
            logits_index,
            x_dims,
            classes: spec.num_classes,
        })
    }

    /// The program's batch size (rows per run).
    pub fn batch(&self) -> usize {
        self.x_dims[0]
    }

    /// `[B, C, H, W]` of one run.
    pub fn x_dims(&self) -> &[usize] {
        &self.x_dims
    }

    pub fn compile_time(&self) -> Duration {
        self.compiled.compile_time
    }

    /// The StableHLO of the predict program.
    pub fn program(&self) -> &nn::Program {
        &self.compiled.program
    }

    /// Logits `[n, classes]` (row-major) of `n` images `[n, C, H, W]` (`x.len()` a multiple of one
    /// image), run batch by batch.
    pub fn logits(&self, x: &[f32]) -> Result<Vec<f32>> {
        let per: usize = self.x_dims[1..].iter().product();
        if per == 0 || x.len() % per != 0 {
            return Err(Error::Invalid(format!(
                "predict: {} values are not whole images of {:?}",
                x.len(),
                &self.x_dims[1..]
            )));
        }
        let n = x.len() / per;
        let b = self.batch();
        let dims: Vec<i64> = self.x_dims.iter().map(|&d| d as i64).collect();
        let mut out = Vec::with_capacity(n * self.classes);
        let mut padded = Vec::new();
        for start in (0..n).step_by(b) {
            let rows = b.min(n - start);
            let chunk = &x[start * per..(start + rows) * per];
            let chunk = if rows < b {
                padded.clear();
                padded.extend_from_slice(chunk);
                padded.resize(b * per, 0.0);
                &padded[..]
            } else {
                chunk
            };
            let xb = self
                .client
                .buffer(chunk, &dims)
                .map_err(|e| Error::device("uploading images", e))?;
            let args: Vec<Arg<'_>> = self
                .state
                .iter()
                .enumerate()
                .map(|(j, s)| match s {
                    Some(buf) => Arg::Keep(buf),
                    None => {
                        debug_assert_eq!(j, self.x_index);
                        Arg::Keep(&xb)
                    }
                })
                .collect();
            let outs = self
                .compiled
                .exe
                .execute(args)
                .map_err(|e| Error::device("running the predict program", e))?;
            let logits: Vec<f32> = outs[self.logits_index]
                .to_vec()
                .map_err(|e| Error::device("reading the logits", e))?;
            out.extend_from_slice(&logits[..rows * self.classes]);
        }
        Ok(out)
    }
}

/// Softmax of each row of `logits` (`classes` wide), in f64 for a stable sum.
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(classes) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| (v / s) as f32));
    }
    out
}
