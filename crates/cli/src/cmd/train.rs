//! `netspec train MODEL|FILE`: train on the CPU or a GPU through PJRT, with traces and checkpoints.
//!
//! Defaults come from the model's recipe (`spec::zoo::recipe`; a spec file gets the MNIST recipe and
//! the dataset its input shape implies). With `--resume` the checkpoint's configuration is the
//! default instead, and a flag that contradicts it is an error (the resumed run must be the same run).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use train::run::{self, EpochReport, Observer, Options, StepReport};

use super::config::{RunFlags, StepFlags};

/// `--device`: a PJRT device, or the reference interpreter.
#[derive(Clone, Copy, Debug)]
pub enum DeviceArg {
    Pjrt(pjrt::Device),
    Reference,
}

impl std::str::FromStr for DeviceArg {
    type Err = String;
    fn from_str(s: &str) -> Result<DeviceArg, String> {
        match s {
            "reference" => Ok(DeviceArg::Reference),
            other => other
                .parse::<pjrt::Device>()
                .map(DeviceArg::Pjrt)
                .map_err(|e| format!("{e} (or `reference`)")),
        }
    }
}

fn parse_reference_precision(s: &str) -> Result<interp::Precision, String> {
    match s {
        "f64" => Ok(interp::Precision::F64),
        "f32" => Ok(interp::Precision::F32),
        other => Err(format!(
            "reference precision `{other}`: expected f64 or f32"
        )),
    }
}

/// Train a model; one line per epoch with test accuracy (validation accuracy with a validation
/// split), the last line states the final test accuracy (with a validation split: the best epoch,
/// its validation accuracy and the test accuracy of its state).
#[derive(clap::Args)]
pub struct Args {
    /// A zoo model name (see `netspec zoo`) or a spec file.
    pub model: String,
    /// Dataset directory (default: the dataset's installed location).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub step: StepFlags,
    /// Stop after this many steps in all (counting from the start of training), saving a checkpoint.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// cpu, cuda, or reference (the reference interpreter: no plugin, slow; see --reference-precision).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceArg,
    /// With --device reference: f64 (every float in f64, the referee) or f32 (every op rounded to f32).
    #[arg(long, default_value = "f64", value_parser = parse_reference_precision)]
    pub reference_precision: interp::Precision,
    /// Devices to train on, data parallel: each step's batch (--batch-size, the global batch) is
    /// split over them and BN uses the global batch's statistics (default: 1 on CPU, every visible
    /// GPU on CUDA). A checkpoint resumes on any count.
    #[arg(long)]
    pub devices: Option<usize>,
    /// The PJRT plugin file (default: found as `netspec doctor` finds it).
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// Write a JSONL trace here (a resumed run continues it).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Where `last.safetensors` is written (default: checkpoints/<model name>).
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from a checkpoint file, or a directory's last.safetensors (no value: the checkpoint dir).
    #[arg(long, num_args = 0..=1)]
    pub resume: Option<Option<PathBuf>>,
    /// Initial parameters (and BN buffers) from a safetensors file instead of the seeded init.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Batch size of the evaluation program (default: the training batch size).
    #[arg(long)]
    pub eval_batch_size: Option<usize>,
    /// Batch producer threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Leave out unreadable or corrupt image files (counted and reported) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
}

/// Progress: a bar on a terminal, plain lines otherwise; epoch lines on stdout.
struct Progress {
    bar: Option<ProgressBar>,
    t0: Instant,
    last_line: Instant,
    epochs: u64,
    per_epoch: u64,
    first: u64,
}

impl Observer for Progress {
    fn info(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => note!("{msg}"),
        }
    }

    fn start(&mut self, first: u64, last: u64, per_epoch: u64) {
        self.per_epoch = per_epoch;
        self.first = first;
        self.t0 = Instant::now();
        if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(last);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps  epoch {prefix}  {msg}  [{elapsed_precise}<{eta}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_position(first);
            self.bar = Some(b);
        }
    }

    fn step(&mut self, s: &StepReport) {
        let done = s.step - self.first;
        let ips = (done * s.batch_size as u64) as f64 / self.t0.elapsed().as_secs_f64().max(1e-9);
        match &self.bar {
            Some(b) => {
                b.set_position(s.step);
                b.set_prefix(format!("{}/{}", s.epoch + 1, self.epochs));
                b.set_message(format!(
                    "loss {:.4}  lr {:.2e}  {ips:.0} img/s",
                    s.loss, s.lr
                ));
            }
            None => {
                if self.last_line.elapsed().as_secs_f64() >= 10.0 {
                    self.last_line = Instant::now();
                    note!(
                        "step {} (epoch {}, batch {}/{}): loss {:.4}, lr {:.3e}, {ips:.0} img/s",
                        s.step,
                        s.epoch + 1,
                        (s.step - 1) % self.per_epoch + 1,
                        self.per_epoch,
                        s.loss,
                        s.lr
                    );
                }
            }
        }
    }

    fn epoch(&mut self, e: &EpochReport) {
        let split = |name: &str, r: &train::runner::EvalOut| {
            format!(
                "{name} loss {:.4}, {name} acc {:.2}% ({}/{})",
                r.mean_loss(),
                100.0 * r.accuracy(),
                r.correct,
                r.total
            )
        };
        let mut evals = Vec::new();
        if let Some(v) = &e.val {
            evals.push(split("val", v));
        }
        if let Some(t) = &e.test {
            evals.push(split("test", t));
        }
        let mark = match (&e.val, e.improved) {
            (Some(_), true) => " (best so far)".to_string(),
            (Some(_), false) => format!(
                " ({} epoch{} since the best)",
                e.epochs_since_best,
                if e.epochs_since_best == 1 { "" } else { "s" }
            ),
            (None, _) => String::new(),
        };
        let line = format!(
            "epoch {}/{}: train loss {:.4}, train acc {:.2}%, {}{mark}; \
             {:.1} s train + {:.1} s eval, data wait {:.3} s, {:.0} img/s",
            e.epoch + 1,
            self.epochs,
            e.train_loss,
            100.0 * e.train_acc,
            evals.join(", "),
            e.train_time.as_secs_f64(),
            e.eval_time.as_secs_f64(),
            e.data_wait.as_secs_f64(),
            e.images_per_sec
        );
        match &self.bar {
            Some(b) => b.println(&line),
            None => {
                // Not `outln!`: a closed stdout must not end a run before it saves.
                let _ = std::io::Write::write_fmt(&mut std::io::stdout(), format_args!("{line}\n"));
            }
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = super::summary::load(&args.model)?;
    let ck_dir = args
        .checkpoint_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("checkpoints").join(&spec.name));
    let resume = args
        .resume
        .as_ref()
        .map(|p| p.clone().unwrap_or_else(|| ck_dir.clone()));
    // Flags over a base configuration: the recipe's, or the resumed checkpoint's.
    let mut resumed_from: Option<(PathBuf, u64)> = None;
    let mut config = match &resume {
        Some(p) => {
            let (file, meta) = run::resume_info(p).with_context(|| {
                format!("reading the checkpoint to resume from ({})", p.display())
            })?;
            resumed_from = Some((file, meta.step));
            meta.config
        }
        None => spec::RunConfig::default_for(&spec),
    };
    args.run.apply(&mut config, args.data.as_deref())?;
    args.step.apply(&mut config)?;

    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    // SIGINT, SIGTERM and SIGHUP (ctrlc's `termination` feature): the first finishes the step and
    // saves; a later one exits at once (status 130) after any save in progress, saying what is on
    // disk: the last checkpoint this process saved, else the one it resumed from.
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            run::checkpoints::with_last_saved(|saved| {
                let state = match (saved, &resumed_from) {
                    (Some((p, step)), _) => format!(
                        "{} holds step {step}, saved by this run (continue with --resume {})",
                        p.display(),
                        p.display()
                    ),
                    (None, Some((p, step))) => format!(
                        "this run saved nothing; {} still holds step {step}, where it resumed",
                        p.display()
                    ),
                    (None, None) => "this run saved nothing".to_string(),
                };
                note!("\nsecond interrupt: exiting now; {state}");
                // `_exit`, not `exit`: running the C++ runtime's static destructors while XLA's
                // threads are mid-step can crash the process (seen: killed by a signal instead of
                // status 130). Nothing needs flushing: every save is atomic and under this lock.
                // SAFETY: `_exit` takes a plain status and never returns.
                unsafe { libc::_exit(130) }
            })
        }
        note!("\ninterrupt: finishing the current step and saving a checkpoint (interrupt again to quit at once)");
    })
    .context("installing the signal handler")?;

    let opts = Options {
        data_dir: args.data.clone(),
        max_steps: args.max_steps,
        device: match args.device {
            DeviceArg::Pjrt(d) => d,
            DeviceArg::Reference => pjrt::Device::Cpu,
        },
        reference: match args.device {
            DeviceArg::Pjrt(_) => None,
            DeviceArg::Reference => Some(args.reference_precision),
        },
        devices: args.devices,
        plugin: args.plugin.clone(),
        trace: args.trace.clone(),
        checkpoint_dir: Some(ck_dir),
        resume,
        init: args.init.clone(),
        interrupt: Some(interrupt),
        threads: args.threads.max(1),
        prefetch: 2 * args.threads.max(1),
        eval_batch_size: args.eval_batch_size,
        skip_bad: args.skip_bad,
    };
    note!(
        "training {} on {} ({}): {}",
        spec.name,
        config.dataset,
        match args.device {
            DeviceArg::Pjrt(d) => d.to_string(),
            DeviceArg::Reference =>
                format!("reference interpreter, {:?}", args.reference_precision),
        },
        run::config_json(&config)
    );
    let mut progress = Progress {
        bar: None,
        t0: Instant::now(),
        last_line: Instant::now(),
        epochs: config.epochs,
        per_epoch: 1,
        first: 0,
    };
    let result = run::train(&spec, &config, &opts, &mut progress);
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    let s = result?;
    let secs_per_epoch: Vec<String> = s
        .epochs
        .iter()
        .map(|e| format!("{:.1}", e.train_time.as_secs_f64()))
        .collect();
    outln!(
        "done: {} steps in {:.1} s (code generation {:.1} ms, compile {:.2} s + {:.2} s, data wait {:.3} s; train s/epoch: [{}]){}",
        s.step,
        s.wall.as_secs_f64(),
        s.codegen_time.as_secs_f64() * 1e3,
        s.compile_time.0.as_secs_f64(),
        s.compile_time.1.as_secs_f64(),
        s.data_wait.as_secs_f64(),
        secs_per_epoch.join(", "),
        s.checkpoint.as_ref().map(|p| format!("; checkpoint {}", p.display())).unwrap_or_default()
    );
    if let Some(e) = s.stopped_early {
        outln!(
            "stopped early after epoch {} (--early-stop {})",
            e + 1,
            config.early_stop.unwrap_or_default()
        );
    }
    let acc = |r: &train::runner::EvalOut| {
        format!("{:.2}% ({}/{})", 100.0 * r.accuracy(), r.correct, r.total)
    };
    match (&s.best, &s.test) {
        (Some(b), test) => outln!(
            "best epoch {}: validation accuracy {:.2}% ({}/{}), test accuracy {} of its state{}; after {} steps",
            b.epoch + 1,
            100.0 * b.accuracy(),
            b.correct,
            b.total,
            test.as_ref().map(acc).unwrap_or_else(|| "n/a (no test split)".into()),
            s.best_checkpoint
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default(),
            s.step
        ),
        (None, Some(t)) => outln!("test accuracy: {} after {} steps", acc(t), s.step),
        (None, None) => outln!(
            "no test split and no finished epoch on a validation split: nothing evaluated after {} steps",
            s.step
        ),
    }
    if s.devices > 1 {
        outln!(
            "devices: {}, their states bit-identical after step {}",
            s.devices,
            s.step
        );
    }
    Ok(())
}
