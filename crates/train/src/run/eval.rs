//! Evaluation: the passes run after every epoch of training ([`evaluate`], on the training runner's
//! state, over the validation or test split) and `netspec eval` ([`eval_checkpoint`]: an eval-only
//! runner whose state comes from a checkpoint or init file). Both run the eval program through the
//! one step runner, so a checkpoint evaluates to exactly the epoch line of the run that wrote it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spec::NetSpec;

use super::checkpoints::{checkpoint_file, state_from_checkpoint, CheckpointMeta, META_KEY};
use super::config::spec_hash;
use super::feed::{detect_dataset, eval_batches, load_data, DataOptions};
use super::preflight;
use crate::augment::Preprocess;
use crate::checkpoint;
use crate::data::Source;
use crate::device::Executor;
use crate::runner::{EvalOut, Runner};
use crate::{Error, Result};

/// One evaluation pass over `source` preprocessed by `pre`, batches uploaded by the producers.
pub fn evaluate(
    runner: &Runner,
    source: &Source,
    pre: &Preprocess,
    threads: usize,
    prefetch: usize,
) -> Result<EvalOut> {
    runner.evaluate(eval_batches(
        source,
        pre,
        runner.uploader(),
        threads,
        prefetch,
    )?)
}

/// Which split `netspec eval` evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalSplit {
    Train,
    Val,
    Test,
}

impl EvalSplit {
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Train => "train",
            EvalSplit::Val => "validation",
            EvalSplit::Test => "test",
        }
    }
}

impl std::str::FromStr for EvalSplit {
    type Err = Error;
    fn from_str(s: &str) -> Result<EvalSplit> {
        match s {
            "train" => Ok(EvalSplit::Train),
            "val" | "validation" => Ok(EvalSplit::Val),
            "test" => Ok(EvalSplit::Test),
            _ => Err(Error::Invalid(format!(
                "unknown split '{s}' (expected train, val or test)"
            ))),
        }
    }
}

/// The result of evaluating a checkpoint.
#[derive(Clone, Debug)]
pub struct EvalReport {
    pub checkpoint: PathBuf,
    pub step: Option<u64>,
    pub dataset: spec::Dataset,
    /// The split evaluated, and where it came from.
    pub split: EvalSplit,
    pub split_from: String,
    pub test: EvalOut,
    pub compile_time: Duration,
    /// Devices the evaluation ran on.
    pub devices: usize,
}

/// What `netspec eval` evaluates: where the data is and which of its splits.
#[derive(Clone, Debug, Default)]
pub struct EvalData {
    /// `--data`: the data path (`None`: the dataset's default location).
    pub path: Option<PathBuf>,
    /// `--dataset`: overrides the dataset recorded in the checkpoint (and what `path` looks like).
    pub dataset: Option<spec::Dataset>,
    /// `None`: the test split if the data has one, else the validation split.
    pub split: Option<EvalSplit>,
    pub skip_bad: bool,
}

/// Evaluates the parameters and BN buffers of a checkpoint (or init file) on a split of the data,
/// on `devices` devices (`None`: [`Executor::open_run`]'s default), the batch of `batch_size` split
/// over them. The data is read as the run that wrote the checkpoint read it (its configuration:
/// dataset, resize, normalisation, validation split), with the evaluation transform; `--data`
/// naming a folder or arrays switches the dataset as `netspec train` does ([`detect_dataset`]).
/// `precision` overrides the checkpoint's run precision (`f32` for a file without one).
#[allow(clippy::too_many_arguments)]
pub fn eval_checkpoint(
    spec: &NetSpec,
    path: &Path,
    what: &EvalData,
    precision: Option<spec::Precision>,
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
    let mut config = match &meta {
        Some(m) => m.config.clone(),
        None => spec::RunConfig::default_for(spec),
    };
    // Evaluation needs no early stop; the validation split stays (it defines what `val` is).
    config.early_stop = None;
    let dataset = match (what.dataset, &what.path) {
        (Some(d), _) => d,
        (None, Some(p)) => detect_dataset(p, config.dataset),
        (None, None) => config.dataset,
    };
    config.switch_dataset(dataset);
    if meta.is_none() && !dataset.is_built_in() && what.dataset.is_none() && what.path.is_none() {
        return Err(Error::Invalid(format!(
            "{}: no run recorded in this file: pass --data (and --dataset)",
            file.display()
        )));
    }
    // The file against the eval program before the data and the compile.
    let precision = precision.unwrap_or(config.precision);
    let eval = exec
        .codegen(|| nn::eval_step_with(spec, batch_size, n, precision))
        .map_err(|e| Error::Invalid(format!("generating the eval step of {}: {e}", spec.name)))?;
    preflight::check_state(&ck, &file, &eval, false)?;
    if let Some(m) = &meta {
        preflight::check_meta(m, &ck, &file)?;
    }
    let data = load_data(
        spec,
        &config,
        &DataOptions {
            path: what.path.clone(),
            skip_bad: what.skip_bad,
        },
    )?;
    if let (Some(was), Some(names)) = (
        meta.as_ref().and_then(|m| m.class_names.as_ref()),
        &data.class_names,
    ) {
        if was != names {
            return Err(Error::Invalid(format!(
                "{}: the checkpoint was trained on the classes {was:?}, the data at {} has {names:?}",
                file.display(),
                data.path.display()
            )));
        }
    }
    let split = what.split.unwrap_or(if data.test.is_some() {
        EvalSplit::Test
    } else {
        EvalSplit::Val
    });
    let (source, split_from) = match split {
        EvalSplit::Train => (
            Some(&data.train),
            format!("the training split of {}", data.path.display()),
        ),
        EvalSplit::Val => (data.val.as_ref(), data.val_from.clone()),
        EvalSplit::Test => (data.test.as_ref(), data.test_from.clone()),
    };
    let source = source.ok_or_else(|| {
        Error::Invalid(format!(
            "{} has no {} split{}",
            data.path.display(),
            split.name(),
            if split == EvalSplit::Val {
                " (pass --val-split FRACTION to hold one out of the training split)"
            } else {
                ""
            }
        ))
    })?;
    let mut runner = Runner::new(exec, None, Some(eval))?;
    state_from_checkpoint(&mut runner, &ck, &file)?;
    let test = evaluate(&runner, source, &data.pre_eval, 2, 4)?;
    Ok(EvalReport {
        checkpoint: file,
        step: meta.map(|m| m.step),
        dataset,
        split,
        split_from,
        test,
        compile_time: runner.compile_times().1,
        devices: n,
    })
}
