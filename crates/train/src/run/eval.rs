//! Evaluation on the test split: the pass run after every epoch of training ([`evaluate`], on the
//! training runner's state) and `netspec eval` ([`eval_checkpoint`]: an eval-only runner whose
//! state comes from a checkpoint or init file). Both run the eval program through the one step
//! runner, so a checkpoint evaluates to exactly the epoch line of the run that wrote it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spec::NetSpec;

use super::checkpoints::{checkpoint_file, state_from_checkpoint, CheckpointMeta};
use super::config::{dataset_kind, spec_hash};
use super::feed::{load_data, test_batches, Data};
use crate::checkpoint;
use crate::data::DatasetKind;
use crate::device::Executor;
use crate::runner::{EvalOut, Runner};
use crate::{Error, Result};

/// One evaluation pass over the test split, batches uploaded by the producers.
pub fn evaluate(runner: &Runner, data: &Data, threads: usize, prefetch: usize) -> Result<EvalOut> {
    runner.evaluate(test_batches(data, runner.uploader(), threads, prefetch)?)
}

/// The result of evaluating a checkpoint.
#[derive(Clone, Debug)]
pub struct EvalReport {
    pub checkpoint: PathBuf,
    pub step: Option<u64>,
    pub dataset: DatasetKind,
    pub test: EvalOut,
    pub compile_time: Duration,
    /// Devices the evaluation ran on.
    pub devices: usize,
}

/// Evaluates the parameters and BN buffers of a checkpoint (or init file) on the test split, on
/// `devices` devices (`None`: [`Executor::open_run`]'s default), the batch of `batch_size` split
/// over them. `dataset` overrides the one recorded in the checkpoint, and `precision` the
/// checkpoint's run precision (`f32` for a file without one).
#[allow(clippy::too_many_arguments)]
pub fn eval_checkpoint(
    spec: &NetSpec,
    path: &Path,
    dataset: Option<spec::Dataset>,
    precision: Option<spec::Precision>,
    data_dir: Option<&Path>,
    batch_size: usize,
    device: pjrt::Device,
    devices: Option<usize>,
    plugin: Option<&Path>,
) -> Result<EvalReport> {
    spec.check()
        .map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?;
    let check_split = |n: usize| {
        if n == 0 || !batch_size.is_multiple_of(n) {
            return Err(Error::Invalid(format!(
                "--batch-size {batch_size} cannot be split evenly over {n} devices (--devices {n}): \
                 the batch is the global batch, so it must be a multiple of the device count"
            )));
        }
        Ok(())
    };
    if let Some(n) = devices {
        check_split(n)?;
    }
    let exec = Executor::open_run(device, plugin, devices)?;
    let n = exec.devices();
    check_split(n)?;
    let file = checkpoint_file(path);
    let ck = checkpoint::read(&file)?;
    let meta = CheckpointMeta::from_checkpoint(&ck, &file).ok();
    if let Some(m) = &meta {
        if m.spec_hash != spec_hash(spec) {
            return Err(Error::Invalid(format!(
                "{}: the checkpoint is of model {}, which differs from this {}",
                file.display(),
                m.spec_name,
                spec.name
            )));
        }
    }
    let dataset = match (dataset, &meta) {
        (Some(d), _) => d,
        (None, Some(m)) => m.config.dataset,
        (None, None) => spec::Dataset::for_input(spec.input).ok_or_else(|| {
            Error::Invalid(format!(
                "no dataset known for input {:?}: pass --dataset",
                spec.input
            ))
        })?,
    };
    let kind = dataset_kind(dataset);
    let data = load_data(spec, kind, data_dir, false)?;
    let precision = precision
        .or(meta.as_ref().map(|m| m.config.precision))
        .unwrap_or_default();
    let eval = nn::eval_step_with(spec, batch_size, n, precision)
        .map_err(|e| Error::Invalid(format!("generating the eval step of {}: {e}", spec.name)))?;
    let mut runner = Runner::new(exec, None, Some(eval))?;
    state_from_checkpoint(&mut runner, &ck, &file)?;
    let test = evaluate(&runner, &data, 2, 4)?;
    Ok(EvalReport {
        checkpoint: file,
        step: meta.map(|m| m.step),
        dataset: kind,
        test,
        compile_time: runner.compile_times().1,
        devices: n,
    })
}
