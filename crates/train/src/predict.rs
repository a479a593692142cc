//! The compiled predict program with a model's weights on the device: images in, logits out.
//!
//! `nn::predict(spec, batch)` is `(params…, bn_running…, x) -> logits` (eval-mode BN with the
//! running statistics, no dropout). A [`Predictor`] compiles it once, uploads every parameter and
//! BN statistic once (found by walking `Program::inputs`, named as in checkpoints), and then runs
//! any number of batches; a short last batch is padded with zero images and its padding rows are
//! dropped from the result. Used by `netspec predict`, the logit-parity and the ONNX checks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nn::SlotKind;
use spec::NetSpec;

use crate::checkpoint::{Tensor, TensorData};
use crate::device::{Arg, DeviceTensor, Executable, Executor, HostSlice, Placement};
use crate::runner::state_name;
use crate::{Error, Result};

/// The predict program of a spec, compiled, with its state uploaded.
pub struct Predictor {
    exec: Executor,
    program: nn::Program,
    exe: Executable,
    compile_time: Duration,
    /// One entry per program input: the uploaded state, `None` at the images input.
    state: Vec<Option<DeviceTensor>>,
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
        exec: &Executor,
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
        let t0 = Instant::now();
        let exe = exec.compile(&program, "predict")?;
        let compile_time = t0.elapsed();
        let mut state = Vec::with_capacity(program.inputs.len());
        let mut x_index = None;
        for (j, slot) in program.inputs.iter().enumerate() {
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
                    let buf = exec.upload(
                        HostSlice::from(&t.data),
                        &slot.dims,
                        Placement::Replicated,
                        name,
                    )?;
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
        let logits_index = program
            .output_index(&SlotKind::Logits)
            .ok_or_else(|| Error::Invalid("predict program: no logits output".into()))?;
        let x_dims = program.inputs[x_index].dims.clone();
        Ok(Predictor {
            exec: exec.clone(),
            program,
            exe,
            compile_time,
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
        self.compile_time
    }

    /// The predict program.
    pub fn program(&self) -> &nn::Program {
        &self.program
    }

    /// Logits `[n, classes]` (row-major) of `n` images `[n, C, H, W]` (`x.len()` a multiple of one
    /// image), run batch by batch.
    pub fn logits(&self, x: &[f32]) -> Result<Vec<f32>> {
        let per: usize = self.x_dims[1..].iter().product();
        if per == 0 || !x.len().is_multiple_of(per) {
            return Err(Error::Invalid(format!(
                "predict: {} values are not whole images of {:?}",
                x.len(),
                &self.x_dims[1..]
            )));
        }
        let n = x.len() / per;
        let b = self.batch();
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
            let xb = self.exec.upload(
                HostSlice::F32(chunk),
                &self.x_dims,
                Placement::Batch,
                "images",
            )?;
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
            let outs = self.exec.execute(&self.exe, args)?;
            let logits = match outs[self.logits_index].to_host()? {
                TensorData::F32(v) => v,
                TensorData::I32(_) => {
                    return Err(Error::Invalid("predict program: logits are not f32".into()))
                }
            };
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

/// [`crate::exchange::check_weights`] with BN running statistics calibrated: the training-mode batch
/// statistics of 8 N(0, 1) images (`nn::batch_stats`, compiled once), then perturbed (means shifted
/// by up to ±0.2 standard deviations, variances scaled by 0.7–1.4) so that eval-mode BN is neither
/// the identity nor the batch statistics. Calibrated statistics keep activations at unit scale
/// through the whole depth, as in a trained network; with uncalibrated ones the deep models'
/// activations grow to 1e8 and two correct float32 implementations disagree in the logits' leading
/// digits (efficientnet-v2-s: 0.64 relative between XLA and onnxruntime), so no 1e-5 comparison is
/// meaningful.
pub fn calibrated_check_weights(
    exec: &Executor,
    spec: &NetSpec,
    seed: u64,
) -> Result<BTreeMap<String, Tensor>> {
    let mut w = crate::exchange::check_weights(spec, seed)?;
    let bufs = spec::buffers(spec).map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?;
    if bufs.is_empty() {
        return Ok(w);
    }
    const B: usize = 8;
    let program = exec.codegen(|| nn::batch_stats(spec, B)).map_err(|e| {
        Error::Invalid(format!(
            "generating the batch statistics of {}: {e}",
            spec.name
        ))
    })?;
    let exe = exec.compile(&program, "batch statistics")?;
    let [c, h, ww] = spec.input;
    let mut rng = spec::SplitMix64::new(seed ^ 0x6361_6c69_6272_6174);
    let mut u = || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let x: Vec<f32> = (0..B * c * h * ww)
        .map(|_| {
            let (a, b) = (u(), u());
            ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()) as f32
        })
        .collect();
    let xb = exec.upload(
        HostSlice::F32(&x),
        &[B, c, h, ww],
        Placement::Batch,
        "images",
    )?;
    let mut bufs_in = Vec::new();
    for slot in &program.inputs {
        match &slot.kind {
            SlotKind::Param(name) => {
                let t = &w[name.as_str()];
                let b = exec.upload(
                    HostSlice::from(&t.data),
                    &slot.dims,
                    Placement::Replicated,
                    name,
                )?;
                bufs_in.push(Some(b));
            }
            _ => bufs_in.push(None),
        }
    }
    let args: Vec<Arg<'_>> = bufs_in
        .iter()
        .map(|b| Arg::Keep(b.as_ref().unwrap_or(&xb)))
        .collect();
    let outs = exec.execute(&exe, args)?;
    let mut stats: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for (slot, buf) in program.outputs.iter().zip(&outs) {
        if let (SlotKind::Buffer(name), TensorData::F32(v)) = (&slot.kind, buf.to_host()?) {
            stats.insert(name.clone(), v);
        }
    }
    let mut prng = spec::SplitMix64::new(seed ^ 0x7065_7274_7572_6221);
    let mut uni =
        |lo: f32, hi: f32| lo + (hi - lo) * ((prng.next_u64() >> 40) as f32 / (1u64 << 24) as f32);
    for name in stats.keys().filter(|n| n.ends_with(".mean")) {
        let Some(base) = name.strip_suffix(".mean") else {
            continue;
        };
        let var_name = format!("{base}.var");
        let (mean, var) = (&stats[name], &stats[&var_name]);
        let new_mean: Vec<f32> = mean
            .iter()
            .zip(var)
            .map(|(&m, &v)| m + uni(-0.2, 0.2) * (v + 1e-5).sqrt())
            .collect();
        let new_var: Vec<f32> = var.iter().map(|&v| v * uni(0.7, 1.4)).collect();
        for (n, v) in [(name.clone(), new_mean), (var_name, new_var)] {
            if let Some(t) = w.get_mut(&n) {
                t.data = TensorData::F32(v);
            }
        }
    }
    Ok(w)
}

/// The class names of a dataset, in label order.
pub fn class_names(kind: crate::data::DatasetKind) -> &'static [&'static str] {
    use crate::data::DatasetKind;
    match kind {
        DatasetKind::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        DatasetKind::FashionMnist => &[
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
        DatasetKind::Cifar10 => &[
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ],
        DatasetKind::Imagenette => &[
            "tench",
            "English springer",
            "cassette player",
            "chain saw",
            "church",
            "French horn",
            "garbage truck",
            "gas pump",
            "golf ball",
            "parachute",
        ],
    }
}

/// Image files netspec reads for prediction (by extension, case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The image files named on a command line: files as given, directories expanded to their image
/// files (by extension, sorted by name, not recursive).
pub fn image_files(args: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        if a.is_dir() {
            let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(a)
                .map_err(|e| Error::io(a, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                        })
                })
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(Error::Invalid(format!(
                    "{}: no .png, .jpg or .jpeg files in this directory",
                    a.display()
                )));
            }
            out.extend(v);
        } else if a.is_file() {
            out.push(a.clone());
        } else {
            return Err(Error::io(
                a,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        }
    }
    Ok(out)
}

/// The preprocessing `netspec predict` gives images of any size for a model trained with
/// `config` (input `[C, H, W]` = `input`): the run's evaluation transform
/// (`Preprocess::for_config(config, H, W, false)`, its normalisation included) made to take any
/// size. A built-in dataset's images are stored larger than or equal to the input and centre-cropped
/// (Imagenette: 256 → 224), so other sizes have their shorter side resized to the stored size first;
/// an image folder's or arrays' run is [`Preprocess::any_size`]. An image of the size the run's
/// evaluation takes is never resampled, so predict on such images matches `netspec eval`. The images
/// are read by the one loader, [`crate::data::load_image`].
pub fn preprocess(config: &spec::RunConfig, input: [usize; 3]) -> crate::augment::Preprocess {
    use crate::augment::{Fit, Preprocess};
    let [_, h, w] = input;
    let pre = Preprocess::for_config(config, h, w, false);
    match crate::data::DatasetKind::of(config.dataset) {
        Some(kind) if pre.fit == Fit::Crop => {
            let (_, sh, sw) = kind.stored_shape(crate::data::Split::Test);
            Preprocess {
                fit: Fit::ResizeShorter(sh.min(sw)),
                ..pre
            }
        }
        Some(_) | None => pre.any_size(),
    }
}
