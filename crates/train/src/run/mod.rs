//! A whole training run: data, code generation, compilation, the step loop, evaluation each epoch,
//! traces, checkpoints, resume, interruption and divergence.
//!
//! **Steps and positions.** With `P` whole batches per epoch, global step `s` (0-based, = the number
//! of updates done) trains on batch `s mod P` of epoch `⌊s/P⌋` with rate `schedule.lr(s)`. A run
//! resumed from a checkpoint at step `s` therefore sees exactly the batches, rates and state an
//! uninterrupted run sees from `s` on, and (XLA:CPU being deterministic for a fixed executable and
//! inputs) writes the same trace lines.
//!
//! **Checkpoints** go to `<dir>/last.safetensors` (atomically) at each epoch end, when the run stops
//! at `max_steps`, and when interrupted. A state holding NaN/Inf is never written, so the file
//! always holds the last good state.
//!
//! **Validation** (a run whose data has a validation split, [`feed`]): each epoch is evaluated on the
//! validation split; when its correct count beats the best so far (strictly: the first best epoch
//! stays on ties), the state is also written to `<dir>/best.safetensors` (atomically, before
//! `last.safetensors`), and `--early-stop P` ends training after `P` epochs in a row without such an
//! improvement. The best result and the epochs since it are in the checkpoint metadata, so a resumed
//! run selects and stops exactly as an uninterrupted one. The test split is evaluated once, at the
//! end, with the best epoch's state: it is never used for selection. Without a validation split each
//! epoch is evaluated on the test split (the built-in datasets' behaviour before validation existed).
//!
//! The seams, one file each: [`config`] (the run's configuration and the options around it),
//! [`feed`] (loading the data, the batch producers), this file (the loop), [`checkpoints`]
//! (checkpoint metadata, saving, initial and resumed state, trace cutting), [`eval`] (the test-split
//! pass and checkpoint evaluation). Steps run through the one [`crate::runner::Runner`].

pub mod checkpoints;
pub mod config;
pub mod eval;
pub mod feed;
pub mod preflight;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use spec::{NetSpec, RunConfig};

use crate::batch::{self, Mode, Position};
use crate::checkpoint;
use crate::device::Executor;
use crate::runner::{EvalOut, Runner};
use crate::trace::{self, EpochLine, Header, Step, TraceWriter};
use crate::{Error, Result};

pub use checkpoints::{
    checkpoint_file, resume_info, Best, CheckpointMeta, EpochSums, BEST, FORMAT, LAST, META_KEY,
};
pub use config::{config_json, schedule, spec_hash, Options, EMITTER_VERSION};
pub use eval::{eval_checkpoint, evaluate, EvalData, EvalReport, EvalSplit};
pub use feed::{detect_dataset, load_data, split_per_class, Data, DataOptions};

/// One training step as reported to an [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// 1-based global step.
    pub step: u64,
    pub epoch: u64,
    pub loss: f32,
    pub lr: f32,
    pub correct: i32,
    pub batch_size: usize,
}

/// One finished epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    pub epoch: u64,
    /// Mean of the step losses of this epoch (of the steps this process ran).
    pub train_loss: f64,
    /// Fraction of correct predictions on the training batches (before each update).
    pub train_acc: f64,
    /// The validation split's result, when the data has one.
    pub val: Option<EvalOut>,
    /// The test split's result, evaluated every epoch only when there is no validation split.
    pub test: Option<EvalOut>,
    /// The validation accuracy improved on the best so far (`best.safetensors` was written).
    pub improved: bool,
    /// Epochs since the best validation accuracy (0 when `improved`).
    pub epochs_since_best: u64,
    /// Training time of the epoch (steps only) and evaluation time.
    pub train_time: Duration,
    pub eval_time: Duration,
    /// Time the loop waited for the batch producers during the epoch.
    pub data_wait: Duration,
    /// Steps this process ran in the epoch.
    pub steps: u64,
    pub images_per_sec: f64,
}

/// What a run reports as it goes. All methods have empty defaults.
pub trait Observer {
    /// A line of information (data, code generation and compile times, …).
    fn info(&mut self, _msg: &str) {}
    /// Training is about to run steps `first + 1 ..= last` (1-based) of epochs of `per_epoch` steps.
    fn start(&mut self, _first: u64, _last: u64, _per_epoch: u64) {}
    fn step(&mut self, _s: &StepReport) {}
    fn epoch(&mut self, _e: &EpochReport) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The global step reached (updates done in total).
    pub step: u64,
    pub epochs: Vec<EpochReport>,
    /// The test split's result at the end: of the best epoch's state with a validation split, else
    /// of the final state; `None` when the data has no test split.
    pub test: Option<EvalOut>,
    /// The best validation result (runs with a validation split that finished an epoch).
    pub best: Option<Best>,
    /// `best.safetensors`, when it was written.
    pub best_checkpoint: Option<PathBuf>,
    /// Training stopped early (`--early-stop`) after this epoch (0-based).
    pub stopped_early: Option<u64>,
    /// The splits' sizes and origins (for the final report).
    pub data: String,
    pub codegen_time: Duration,
    pub compile_time: (Duration, Duration),
    pub data_wait: Duration,
    pub wall: Duration,
    /// The last checkpoint written, if any.
    pub checkpoint: Option<PathBuf>,
    /// Devices each step ran on. With more than one, the run ended by checking that every device
    /// holds the same state, bit for bit ([`Runner::check_replicas`]).
    pub devices: usize,
}

/// Checks that `devices` divides the training batch and the eval batch, naming the flags.
fn check_split(config: &RunConfig, eval_batch: usize, devices: usize) -> Result<()> {
    if devices == 0 {
        return Err(Error::Invalid("--devices must be at least 1".into()));
    }
    for (batch, flag) in [
        (config.batch_size, "--batch-size"),
        (eval_batch, "--eval-batch-size"),
    ] {
        if !batch.is_multiple_of(devices) {
            return Err(Error::Invalid(format!(
                "{flag} {batch} cannot be split evenly over {devices} devices (--devices {devices}): \
                 the batch is the global batch, so it must be a multiple of the device count"
            )));
        }
    }
    Ok(())
}

/// Trains `spec` with `config` (see the module doc).
pub fn train(
    spec: &NetSpec,
    config: &RunConfig,
    opts: &Options,
    obs: &mut dyn Observer,
) -> Result<Summary> {
    let wall0 = Instant::now();
    spec.check()
        .map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?;
    config.check().map_err(Error::Invalid)?;
    let hash = spec_hash(spec);

    // Resume: the checkpoint decides the configuration; this run must agree with it.
    let resume = match &opts.resume {
        Some(p) => {
            let file = checkpoint_file(p);
            let ck = checkpoint::read(&file)?;
            let meta = CheckpointMeta::from_checkpoint(&ck, &file)?;
            if meta.spec_hash != hash {
                return Err(Error::Invalid(format!(
                    "{}: the checkpoint is of model {} (spec hash {}), not of this {} (hash {hash})",
                    file.display(),
                    meta.spec_name,
                    &meta.spec_hash[..12.min(meta.spec_hash.len())],
                    spec.name
                )));
            }
            if &meta.config != config {
                let diffs = config::config_diff(&meta.config, "checkpoint", config, "this run");
                return Err(Error::Invalid(format!(
                    "{}: a resumed run keeps its configuration, but {}",
                    file.display(),
                    diffs.join("; ")
                )));
            }
            Some((file, ck, meta))
        }
        None => None,
    };

    // The devices first: a batch they do not divide is an error before anything is loaded (before
    // the plugin is, when the count is given).
    let eval_batch = opts.eval_batch_size.unwrap_or(config.batch_size);
    if let Some(n) = opts.devices {
        check_split(config, eval_batch, n)?;
    }
    let exec = match opts.reference {
        Some(_) if opts.devices.is_some_and(|n| n > 1) => {
            return Err(Error::Invalid(
                "the reference interpreter runs on one device: drop --devices".into(),
            ))
        }
        Some(precision) => Executor::reference(precision),
        None => Executor::open_run(opts.device, opts.plugin.as_deref(), opts.devices)?,
    };
    let devices = exec.devices();
    check_split(config, eval_batch, devices)?;
    obs.info(&format!(
        "devices: {}{}",
        exec.describe(),
        if devices > 1 {
            format!(
                ", the batch of {} split into {devices} × {}",
                config.batch_size,
                config.batch_size / devices
            )
        } else {
            String::new()
        }
    ));
    // Code generation (milliseconds), then every input checked against the programs before the data
    // is loaded and anything compiled (`preflight`).
    let t0 = Instant::now();
    let train_program = exec
        .codegen(|| nn::train_step_on(spec, config, devices))
        .map_err(|e| Error::Invalid(format!("generating the train step of {}: {e}", spec.name)))?;
    let eval_program = exec
        .codegen(|| nn::eval_step_with(spec, eval_batch, devices, config.precision))
        .map_err(|e| Error::Invalid(format!("generating the eval step of {}: {e}", spec.name)))?;
    let codegen = t0.elapsed();
    let init = preflight::check_run(
        spec,
        opts,
        &train_program,
        resume.as_ref().map(|(f, ck, m)| (f.as_path(), ck, m)),
        obs,
    )?;

    let t0 = Instant::now();
    let data = load_data(
        spec,
        config,
        &DataOptions {
            path: opts.data_dir.clone(),
            skip_bad: opts.skip_bad,
        },
    )?;
    if let (Some((file, _, meta)), Some(names)) = (&resume, &data.class_names) {
        if let Some(was) = meta.class_names.as_ref().filter(|was| *was != names) {
            return Err(Error::Invalid(format!(
                "{}: the checkpoint was trained on the classes {was:?}, the data at {} has {names:?}",
                file.display(),
                data.path.display()
            )));
        }
    }
    let per_epoch = batch::batches_per_epoch(data.train.len(), config.batch_size, Mode::Train);
    if per_epoch == 0 {
        return Err(Error::Invalid(format!(
            "{} training images make no batch of {}",
            data.train.len(),
            config.batch_size
        )));
    }
    obs.info(&format!(
        "data: {} ({per_epoch} steps per epoch) in {:.2} s",
        data.describe(),
        t0.elapsed().as_secs_f64()
    ));
    for note in &data.notes {
        obs.info(note);
    }
    if let Some(v) = &data.val {
        obs.info(&format!(
            "validation: {} ({} images); test: {}",
            data.val_from,
            v.len(),
            match &data.test {
                Some(t) => format!(
                    "{} ({} images), evaluated once at the end",
                    data.test_from,
                    t.len()
                ),
                None => "none".into(),
            }
        ));
    }
    let total = config.epochs * per_epoch;
    let start = match &resume {
        Some((file, _, meta)) => {
            if meta.steps_per_epoch != per_epoch {
                return Err(Error::Invalid(format!(
                    "{}: the checkpoint was trained with {} steps per epoch, this data gives {per_epoch}",
                    file.display(),
                    meta.steps_per_epoch
                )));
            }
            meta.step
        }
        None => 0,
    };
    let end = opts.max_steps.map_or(total, |m| m.min(total));

    // Compilation.
    let platform = exec.platform();
    let flops = train_program.flops;
    let mut runner = Runner::new(exec, Some(train_program), Some(eval_program))?;
    let (ct, ce) = runner.compile_times();
    obs.info(&format!(
        "{}: code generation {:.1} ms, compile train step {:.2} s, eval step {:.2} s ({platform} device, {:.1} MFLOP per step)",
        spec.name,
        codegen.as_secs_f64() * 1e3,
        ct.as_secs_f64(),
        ce.as_secs_f64(),
        flops as f64 / 1e6
    ));
    match &resume {
        Some((file, ck, meta)) => {
            checkpoints::state_from_checkpoint(&mut runner, ck, file)?;
            obs.info(&format!(
                "resumed from {} at step {} (epoch {}, batch {})",
                file.display(),
                meta.step,
                meta.position.epoch,
                meta.position.batch
            ));
        }
        None => {
            if let Some(line) =
                checkpoints::initial_state(spec, config.seed, init.as_ref(), &mut runner)?
            {
                obs.info(&line);
            }
        }
    }

    // The trace: a fresh one, or the resumed run's, cut back to the checkpoint.
    let header = Header {
        phase: "phase3".into(),
        netspec_name: spec.name.clone(),
        netspec_hash: hash.clone(),
        config: config_json(config),
        total_params: spec::param_count(spec)
            .map_err(|e| Error::Invalid(format!("{}: {e}", spec.name)))?
            as u64,
        dataset: config.dataset.name().into(),
        emitter_version: EMITTER_VERSION.into(),
        extra: Default::default(),
    };
    let mut tracer = match &opts.trace {
        Some(p) if resume.is_some() && p.is_file() => {
            let old = trace::read(p)?;
            let same_config = serde_json::from_value::<RunConfig>(old.header.config.clone())
                .is_ok_and(|c| &c == config);
            if old.header.netspec_hash != header.netspec_hash || !same_config {
                return Err(Error::Invalid(format!(
                    "{}: this trace is of another model or configuration than the resumed run",
                    p.display()
                )));
            }
            checkpoints::cut_trace(p, start, start / per_epoch)?;
            Some(TraceWriter::append(p)?)
        }
        Some(p) => Some(TraceWriter::create(p, &header)?),
        None => None,
    };

    let ck_path = opts.checkpoint_dir.as_ref().map(|d| d.join(LAST));
    let best_path = opts.checkpoint_dir.as_ref().map(|d| d.join(BEST));
    let mut last_saved: Option<PathBuf> = None;
    // Model selection: the best validation result so far and the epochs since (from the checkpoint
    // when resumed); without a checkpoint directory the best state is kept on the host.
    let mut best: Option<Best> = resume.as_ref().and_then(|r| r.2.best);
    let mut since_best: u64 = resume.as_ref().map_or(0, |r| r.2.epochs_since_best);
    let mut best_state: Option<Vec<crate::runner::HostTensor>> = None;
    let mut best_saved: Option<PathBuf> =
        best_path.clone().filter(|p| best.is_some() && p.is_file());
    let patience_spent = |since: u64| config.early_stop.is_some_and(|p| since >= p);
    let meta_at = |step: u64, sums: EpochSums, best: Option<Best>, since: u64| CheckpointMeta {
        best,
        epochs_since_best: since,
        class_names: data.class_names.clone(),
        ..CheckpointMeta::at(spec, config, step, per_epoch, sums)
    };
    let threads = opts.threads.max(1);
    let prefetch = opts.prefetch.max(1);
    let eval_on = |runner: &Runner, source: &crate::data::Source| {
        evaluate(runner, source, &data.pre_eval, threads, prefetch)
    };

    let mut summary = Summary {
        step: start,
        epochs: Vec::new(),
        test: None,
        best: None,
        best_checkpoint: None,
        stopped_early: None,
        data: data.describe(),
        codegen_time: codegen,
        compile_time: (ct, ce),
        data_wait: Duration::ZERO,
        wall: Duration::ZERO,
        checkpoint: None,
        devices,
    };
    obs.start(start, end, per_epoch);
    let mut step = start;
    let mut final_eval = None;
    let mut end_sums = resume.as_ref().map(|r| r.2.epoch_sums).unwrap_or_default();
    if start % per_epoch == 0 && start > 0 && patience_spent(since_best) {
        // Resumed from the end of a run that stopped early: nothing left to train.
        summary.stopped_early = Some(start / per_epoch - 1);
        obs.info(&format!(
            "the run stopped early after epoch {} ({} epochs without a better validation accuracy)",
            start / per_epoch,
            since_best
        ));
    } else if step < end {
        let feed = feed::TrainFeed {
            batch_size: config.batch_size,
            seed: config.seed,
            shuffle: config.shuffle,
            epochs: config.epochs,
            start: Position {
                epoch: start / per_epoch,
                batch: start % per_epoch,
            },
            per_epoch,
            schedule: schedule(config, per_epoch),
            threads,
            prefetch,
        };
        let mut batcher = feed::train_batches(&data, feed, runner.uploader())?;

        let mut ep_t0 = Instant::now();
        let mut ep_wait0 = Duration::ZERO;
        let mut sums = end_sums;
        let mut ep_steps = 0u64;
        while step < end {
            let ready = batcher.next_batch().ok_or_else(|| {
                Error::Producer(format!("the batch stream ended before step {}", step + 1))
            })??;
            let (epoch, index) = (ready.epoch, ready.index);
            debug_assert_eq!(epoch * per_epoch + index, step);
            let b = &ready.value;
            let out = runner.step(&b.batch, &b.lr)?;
            let (loss, correct) = (out.loss()?, out.correct()?);
            step += 1;
            if !loss.is_finite() {
                if let Some(t) = tracer.as_mut() {
                    t.step(&Step::new(step, epoch, loss as f64, b.lr_value as f64))?;
                }
                return Err(Error::NonFinite {
                    step,
                    loss,
                    // Only a checkpoint this run wrote, or the one it resumed from: a file
                    // at the checkpoint path from another run is not this run's good state.
                    checkpoint: last_saved
                        .or_else(|| resume.as_ref().map(|r| r.0.clone()).filter(|p| p.is_file())),
                });
            }
            let wall_ms = wall0.elapsed().as_secs_f64() * 1e3;
            if let Some(t) = tracer.as_mut() {
                t.step(&Step {
                    wall_ms: Some(wall_ms),
                    ..Step::new(step, epoch, loss as f64, b.lr_value as f64)
                })?;
            }
            obs.step(&StepReport {
                step,
                epoch,
                loss,
                lr: b.lr_value,
                correct,
                batch_size: config.batch_size,
            });
            sums.loss += loss as f64;
            sums.correct += correct.max(0) as u64;
            sums.steps += 1;
            ep_steps += 1;

            if step % per_epoch == 0 {
                let train_time = ep_t0.elapsed();
                let wait = batcher.data_wait() - ep_wait0;
                let e0 = Instant::now();
                let val = data.val.as_ref().map(|v| eval_on(&runner, v)).transpose()?;
                let test = match (&data.val, &data.test) {
                    (None, Some(t)) => Some(eval_on(&runner, t)?),
                    (Some(_), _) | (None, None) => None,
                };
                let eval_time = e0.elapsed();
                let mut improved = false;
                if let Some(v) = &val {
                    if best.is_none_or(|b| v.correct > b.correct) {
                        best = Some(Best {
                            epoch,
                            step,
                            correct: v.correct,
                            total: v.total,
                            loss: v.mean_loss(),
                        });
                        since_best = 0;
                        improved = true;
                    } else {
                        since_best += 1;
                    }
                }
                let report = EpochReport {
                    epoch,
                    train_loss: sums.loss / sums.steps as f64,
                    train_acc: sums.correct as f64 / (sums.steps * config.batch_size as u64) as f64,
                    val,
                    test,
                    improved,
                    epochs_since_best: since_best,
                    train_time,
                    eval_time,
                    data_wait: wait,
                    steps: ep_steps,
                    images_per_sec: (ep_steps * config.batch_size as u64) as f64
                        / train_time.as_secs_f64(),
                };
                let meta = meta_at(step, EpochSums::default(), best, since_best);
                match (&best_path, improved) {
                    (Some(p), true) => {
                        checkpoints::save_checkpoint(&runner, p, &meta)?;
                        best_saved = Some(p.clone());
                    }
                    (None, true) => best_state = Some(runner.state()?),
                    (_, false) => {}
                }
                if let Some(p) = &ck_path {
                    checkpoints::save_checkpoint(&runner, p, &meta)?;
                    last_saved = Some(p.clone());
                }
                if let Some(t) = tracer.as_mut() {
                    t.epoch(&EpochLine {
                        epoch,
                        train_loss: Some(report.train_loss),
                        train_acc: Some(report.train_acc),
                        val_loss: val.map(|v| v.mean_loss()),
                        val_acc: val.map(|v| v.accuracy()),
                        val_correct: val.map(|v| v.correct),
                        val_total: val.map(|v| v.total),
                        test_loss: test.map(|t| t.mean_loss()),
                        test_acc: test.map(|t| t.accuracy()),
                        test_correct: test.map(|t| t.correct),
                        test_total: test.map(|t| t.total),
                        wall_ms: Some(wall0.elapsed().as_secs_f64() * 1e3),
                    })?;
                }
                obs.epoch(&report);
                summary.epochs.push(report);
                if step == end {
                    final_eval = test;
                }
                (sums, ep_steps) = (EpochSums::default(), 0);
                ep_t0 = Instant::now();
                ep_wait0 = batcher.data_wait();
                if patience_spent(since_best) && step < total {
                    summary.stopped_early = Some(epoch);
                    obs.info(&format!(
                        "early stop after epoch {}: {since_best} epochs without a better validation accuracy (--early-stop {})",
                        epoch + 1,
                        config.early_stop.unwrap_or_default()
                    ));
                    break;
                }
            }
            if opts
                .interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst))
            {
                let saved = match &ck_path {
                    Some(p) if last_saved.as_ref() == Some(p) && step % per_epoch == 0 => {
                        Some(p.clone())
                    }
                    Some(p) => {
                        checkpoints::save_checkpoint(
                            &runner,
                            p,
                            &meta_at(step, sums, best, since_best),
                        )?;
                        Some(p.clone())
                    }
                    None => None,
                };
                return Err(Error::Interrupted {
                    step,
                    checkpoint: saved,
                });
            }
        }
        summary.data_wait = batcher.data_wait();
        end_sums = sums;
    }
    // Stopped inside an epoch (max_steps), or nothing was trained: save the position.
    let epoch_end_saved = summary
        .epochs
        .last()
        .is_some_and(|e| (e.epoch + 1) * per_epoch == step);
    if !epoch_end_saved {
        if let Some(p) = &ck_path {
            if step != start || resume.is_none() {
                checkpoints::save_checkpoint(
                    &runner,
                    p,
                    &meta_at(step, end_sums, best, since_best),
                )?;
                last_saved = Some(p.clone());
            }
        }
    }
    if devices > 1 {
        runner.check_replicas()?;
    }
    // The test split: with a validation split, once, with the best epoch's state (the state reached
    // when no epoch has finished); without, the final state (already evaluated at an epoch end).
    summary.test = match (&data.val, &data.test) {
        (_, None) => None,
        (Some(_), Some(t)) => {
            if let Some(b) = best.filter(|b| b.step != step) {
                match (&best_saved, &best_state) {
                    (Some(file), _) => {
                        let ck = checkpoint::read(file)?;
                        checkpoints::state_from_checkpoint(&mut runner, &ck, file)?;
                    }
                    (None, Some(state)) => checkpoints::state_from_host(&mut runner, state)?,
                    (None, None) => {
                        return Err(Error::Invalid(format!(
                            "the best state (epoch {}) is neither in a checkpoint directory nor kept: cannot evaluate it on the test split",
                            b.epoch + 1
                        )))
                    }
                }
            }
            Some(eval_on(&runner, t)?)
        }
        (None, Some(t)) => match final_eval.filter(|_| step % per_epoch == 0) {
            Some(e) => Some(e),
            None => Some(eval_on(&runner, t)?),
        },
    };
    summary.step = step;
    summary.best = best;
    summary.best_checkpoint = best_saved;
    summary.checkpoint = last_saved;
    summary.wall = wall0.elapsed();
    Ok(summary)
}
