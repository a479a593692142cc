//! Evaluation on the test split: the pass run after every epoch of training ([`evaluate`], on the
//! training runner's state) and `netspec eval` ([`eval_checkpoint`]: an eval-only runner whose
//! state comes from a checkpoint or init file). Both run the eval program through the one step
//! runner, so a checkpoint evaluates to exactly the epoch line of the run that wrote it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spec::NetSpec;

use super::checkpoints::{checkpoint_file, state_from_checkpoint, CheckpointMeta, META_KEY};
use super::preflight;
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
}

/// Evaluates the parameters and BN buffers of a checkpoint (or init file) on the test split.
/// `dataset` overrides the one recorded in the checkpoint.
pub fn eval_checkpoint(
    spec: &NetSpec,
    path: &Path,
    dataset: Option<spec::Dataset>,
    data_dir: Option<&Path>,
    batch_size: usize,
    device: pjrt::Device,
    plugin: Option<&Path>,
) -> Result<EvalReport> {
    spec.check()
        .map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?;
    let file = checkpoint_file(path);
    let ck = checkpoint::read(&file)?;
    // An init file has no run metadata; a checkpoint's must be readable and consistent.
    let meta = match ck.metadata.contains_key(META_KEY) {
        true => Some(CheckpointMeta::from_checkpoint(&ck, &file)?),
        false => None,
    };
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
    // The file against the eval program (and the plugin file) before the data and the compile.
    let eval = nn::eval_step(spec, batch_size)
        .map_err(|e| Error::Invalid(format!("generating the eval step of {}: {e}", spec.name)))?;
    preflight::check_state(&ck, &file, &eval, false)?;
    if let Some(m) = &meta {
        preflight::check_meta(m, &ck, &file)?;
    }
    pjrt::find_plugin(device, plugin)
        .and_then(|p| pjrt::check_plugin(&p))
        .map_err(|e| Error::device(format!("opening the {device} device"), e))?;
    let data = load_data(spec, kind, data_dir, false)?;
    let exec = Executor::open(device, plugin)?;
    let mut runner = Runner::new(exec, None, Some(eval))?;
    state_from_checkpoint(&mut runner, &ck, &file)?;
    let test = evaluate(&runner, &data, 2, 4)?;
    Ok(EvalReport {
        checkpoint: file,
        step: meta.map(|m| m.step),
        dataset: kind,
        test,
        compile_time: runner.compile_times().1,
    })
}
