//! Timing of the compiled train step (`netspec bench`).
//!
//! [`run`] generates the train step of a spec ([`nn::train_step`]), compiles it into the one step
//! runner ([`Runner`], as training does), sets the initial state, puts one batch on the device, and
//! times `steps` steps after `warmup` steps. Each step is [`Runner::step`], the training loop's: it
//! donates the whole state, keeps the batch and the learning rate, takes the aliased outputs as the
//! next state; the timed loop then reads the loss back, so a step's time is the time until its
//! result is on the host. With [`Options::e2e`] the same step is also fed from the crate's prefetching
//! [`Batcher`], whose hook uploads each batch on a producer thread; step-only and fed blocks alternate
//! ([`E2E_ROUNDS`] of each, the timed steps split between them), so that drift in the machine's speed
//! falls on both alike, and the fed throughput is reported beside the step-only one.
//!
//! **Devices.** On an executor with N > 1 devices the step is the train program partitioned over
//! them ([`nn::train_step_on`]: the batch `B` split into N tiles of `B/N`), and a baseline is timed
//! beside it: the same model's step at batch `B/N` on the first device alone, the two in alternated
//! blocks ([`SCALING_ROUNDS`]). The report gives the total img/s, img/s per device, the baseline's
//! img/s and the weak-scaling efficiency `img/s(N devices) / (N · img/s(1 device at B/N))`: 1.0 when
//! N devices do N times the work of one in the same time.
//!
//! FLOPs per step come from the graph ([`nn::Program::flops`]); GFLOP/s = FLOPs / median step time.
//! Peak host memory is the process's `VmHWM` (Linux only; `None` elsewhere).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spec::{NetSpec, RunConfig};

use crate::augment::Preprocess;
use crate::batch::{BatchConfig, Batcher, Mode, Position};
use crate::data::{self, Dataset, DatasetKind, Source, Split};
use crate::device::{DeviceTensor, Executor};
use crate::run::checkpoints::initial_state;
use crate::runner::{DeviceBatch, Runner, Uploader};
use crate::{Error, Result};

/// Where the batches of the end-to-end phase come from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// Fashion-MNIST's training split from this directory (the spec's input must be `[1, 28, 28]`).
    FashionMnist(std::path::PathBuf),
    /// `n` random `u8` images of the spec's input shape, generated in memory (seeded).
    Synthetic(usize),
    /// The training split of an image folder or array files, read as `netspec train --data` reads
    /// it (streamed, with the run configuration's augmentation and normalisation).
    Files(std::path::PathBuf),
}

/// What to time.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Timed steps (at least 1).
    pub steps: usize,
    /// Untimed steps first (the first execution of an executable pays one-time costs).
    pub warmup: usize,
    /// Also time steps fed by the batch producers (see the module doc).
    pub e2e: bool,
    /// Data of the end-to-end phase.
    pub data: DataSource,
    /// Producer threads and prefetch depth of the end-to-end phase.
    pub threads: usize,
    pub prefetch: usize,
    /// Learning rate fed to the step (the value changes nothing about the timing).
    pub lr: f32,
    /// Seed of the initial parameters and of the batch.
    pub seed: u64,
    /// Compile this StableHLO text instead of the generated module (for experiments with a
    /// hand-edited step). It must have the generated module's signature; FLOPs and the ABI are
    /// still those of the generated program.
    pub mlir: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            steps: 50,
            warmup: 5,
            e2e: false,
            data: DataSource::Synthetic(4096),
            threads: 2,
            prefetch: 4,
            lr: 1e-3,
            seed: 0,
            mlir: None,
        }
    }
}

/// Order statistics of a list of durations, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

impl Stats {
    /// Statistics of `samples` (must not be empty). Percentiles are the nearest-rank values
    /// (index `round(q·(n−1))` of the sorted list); the median of an even count is the mean of the
    /// two middle values.
    pub fn of(samples: &[Duration]) -> Stats {
        assert!(!samples.is_empty(), "Stats::of needs at least one sample");
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let at = |q: f64| ms[((q * (n - 1) as f64).round() as usize).min(n - 1)];
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Stats {
            median,
            p10: at(0.1),
            p90: at(0.9),
            min: ms[0],
            max: ms[n - 1],
            mean: ms.iter().sum::<f64>() / n as f64,
        }
    }
}

/// The end-to-end phase's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct E2e {
    /// `fashion-mnist` or `synthetic`.
    pub source: String,
    /// Per step: waiting for the next uploaded batch + the step.
    pub step: Stats,
    /// Whole-phase throughput: `steps · B / wall time`.
    pub img_per_s: f64,
    /// Time the consumer spent waiting for batches, over the timed steps.
    pub data_wait_ms: f64,
}

/// The single-device baseline of an N-device bench (module doc, "Devices").
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    /// `B / N`: one device's share of the global batch.
    pub batch_size: usize,
    pub step: Stats,
    /// `batch_size / median step time`.
    pub img_per_s: f64,
}

/// Everything `netspec bench` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub model: String,
    /// The global batch (split over [`Report::devices`] devices).
    pub batch_size: usize,
    /// Devices each step runs on.
    pub devices: usize,
    pub optimizer: String,
    /// `f32` or `bf16` (`RunConfig::precision`).
    pub precision: String,
    /// The PJRT platform name (`cpu`, `cuda`).
    pub platform: String,
    pub codegen_ms: f64,
    pub compile_s: f64,
    pub steps: usize,
    pub warmup: usize,
    pub step: Stats,
    /// Process CPU time (user + system, all threads) per timed step, in ms: on a loaded machine this
    /// moves much less than wall time (it excludes waiting for a core). `None` where unknown.
    pub cpu_ms_per_step: Option<f64>,
    /// `B / median step time`.
    pub img_per_s: f64,
    /// `steps · B / wall time of the timed loop` (the like of [`E2e::img_per_s`]).
    pub img_per_s_wall: f64,
    pub flops_per_step: u64,
    /// `flops_per_step / median step time`, in 10⁹ FLOP/s.
    pub gflops: f64,
    /// Bytes of the state kept on the device (parameters, optimizer state, BN statistics, counter).
    pub state_bytes: u64,
    /// The loss of the last timed step (a finite value shows that the step really computed).
    pub last_loss: f32,
    pub peak_rss_mib: Option<f64>,
    /// `GLIBC_TUNABLES` of the process (the `netspec` binary adds `glibc.malloc.hugetlb=1`, see
    /// ARCHITECTURE.md "Host memory"); `None` when unset (glibc's defaults).
    pub glibc_tunables: Option<String>,
    /// True when [`Options::mlir`] replaced the generated module.
    pub mlir_replaced: bool,
    pub e2e: Option<E2e>,
    /// With more than one device: the single-device baseline.
    pub baseline: Option<Baseline>,
}

impl Report {
    /// Total images per second over the devices per device.
    pub fn img_per_s_per_device(&self) -> f64 {
        self.img_per_s / self.devices as f64
    }

    /// `img/s on N devices / (N · img/s of one device at B/N)` (module doc, "Devices").
    pub fn scaling_efficiency(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .map(|b| self.img_per_s / (self.devices as f64 * b.img_per_s))
    }
}

impl Report {
    /// The JSON line of `netspec bench` (keys documented in BENCHMARKS.md).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "model": self.model,
            "batch_size": self.batch_size,
            "devices": self.devices,
            "optimizer": self.optimizer,
            "precision": self.precision,
            "platform": self.platform,
            "codegen_ms": round(self.codegen_ms, 3),
            "compile_s": round(self.compile_s, 3),
            "steps": self.steps,
            "warmup": self.warmup,
            "ms_per_step_median": round(self.step.median, 4),
            "ms_per_step_p10": round(self.step.p10, 4),
            "ms_per_step_p90": round(self.step.p90, 4),
            "ms_per_step_min": round(self.step.min, 4),
            "ms_per_step_max": round(self.step.max, 4),
            "cpu_ms_per_step": self.cpu_ms_per_step.map(|c| round(c, 3)),
            "img_per_s": round(self.img_per_s, 1),
            "img_per_s_per_device": round(self.img_per_s_per_device(), 1),
            "img_per_s_wall": round(self.img_per_s_wall, 1),
            "flops_per_step": self.flops_per_step,
            "gflops": round(self.gflops, 2),
            "state_mib": round(self.state_bytes as f64 / (1 << 20) as f64, 2),
            "last_loss": self.last_loss,
            "peak_rss_mib": self.peak_rss_mib.map(|m| round(m, 1)),
            "mlir": if self.mlir_replaced { "file" } else { "generated" },
            "glibc_tunables": self.glibc_tunables,
        });
        if let (Some(b), Some(eff)) = (&self.baseline, self.scaling_efficiency()) {
            v["baseline_batch_size"] = json!(b.batch_size);
            v["baseline_ms_per_step_median"] = json!(round(b.step.median, 4));
            v["baseline_img_per_s"] = json!(round(b.img_per_s, 1));
            v["scaling_efficiency"] = json!(round(eff, 4));
        }
        if let Some(e) = &self.e2e {
            v["e2e_source"] = json!(e.source);
            v["e2e_ms_per_step_median"] = json!(round(e.step.median, 4));
            v["e2e_ms_per_step_p10"] = json!(round(e.step.p10, 4));
            v["e2e_ms_per_step_p90"] = json!(round(e.step.p90, 4));
            v["e2e_img_per_s"] = json!(round(e.img_per_s, 1));
            v["e2e_data_wait_ms"] = json!(round(e.data_wait_ms, 3));
            // Like with like: wall-clock throughputs, and median step times.
            v["e2e_vs_step_only"] = json!(round(e.img_per_s / self.img_per_s_wall, 4));
            v["e2e_vs_step_only_median"] = json!(round(self.step.median / e.step.median, 4));
        }
        v
    }

    /// A readable table (what `netspec bench` prints on stderr).
    pub fn table(&self) -> String {
        let s = &self.step;
        let mut t = String::new();
        let mut row = |k: &str, v: String| t.push_str(&format!("{k:<22} {v}\n"));
        row(
            "model",
            format!(
                "{} (batch {}, {}, {}, {})",
                self.model, self.batch_size, self.optimizer, self.precision, self.platform
            ),
        );
        if self.devices > 1 {
            row(
                "devices",
                format!(
                    "{} ({} images per device per step)",
                    self.devices,
                    self.batch_size / self.devices
                ),
            );
        }
        row("code generation", format!("{:.1} ms", self.codegen_ms));
        if self.mlir_replaced {
            row("module", "from --mlir (not the generated one)".into());
        }
        row("XLA compile", format!("{:.2} s", self.compile_s));
        row(
            "step (state donated)",
            format!(
                "median {:.3} ms  p10 {:.3}  p90 {:.3}  min {:.3}  max {:.3}  ({} steps after {} warm-up)",
                s.median, s.p10, s.p90, s.min, s.max, self.steps, self.warmup
            ),
        );
        if let Some(c) = self.cpu_ms_per_step {
            row("CPU time per step", format!("{c:.3} ms (all threads)"));
        }
        if self.devices > 1 {
            row(
                "throughput",
                format!(
                    "{:.1} img/s in all, {:.1} img/s per device",
                    self.img_per_s,
                    self.img_per_s_per_device()
                ),
            );
        } else {
            row("throughput", format!("{:.1} img/s", self.img_per_s));
        }
        if let (Some(b), Some(eff)) = (&self.baseline, self.scaling_efficiency()) {
            row(
                "1-device baseline",
                format!(
                    "batch {}: median {:.3} ms/step, {:.1} img/s (alternated with the {}-device blocks)",
                    b.batch_size, b.step.median, b.img_per_s, self.devices
                ),
            );
            row(
                "scaling efficiency",
                format!(
                    "{:.3} = {:.1} / ({} × {:.1}) img/s",
                    eff, self.img_per_s, self.devices, b.img_per_s
                ),
            );
        }
        row(
            "FLOPs per step",
            format!(
                "{:.4} GFLOP (from the graph)",
                self.flops_per_step as f64 / 1e9
            ),
        );
        row("achieved", format!("{:.1} GFLOP/s", self.gflops));
        row(
            "state on device",
            format!("{:.2} MiB", self.state_bytes as f64 / (1 << 20) as f64),
        );
        row("last loss", format!("{}", self.last_loss));
        if let Some(m) = self.peak_rss_mib {
            row("peak host memory", format!("{m:.1} MiB (VmHWM)"));
        }
        if let Some(e) = &self.e2e {
            row(
                "end to end",
                format!(
                    "median {:.3} ms/step, {:.1} img/s ({:.1}% of step-only's {:.1} img/s over the \
                     same wall time), data wait {:.1} ms in all ({})",
                    e.step.median,
                    e.img_per_s,
                    100.0 * e.img_per_s / self.img_per_s_wall,
                    self.img_per_s_wall,
                    e.data_wait_ms,
                    e.source
                ),
            );
        }
        t
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// CPU time (user + system) of this process so far, all threads, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s: USER_HZ is 100 in Linux's user ABI).
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3, so utime (14) and stime (15) are f[11] and f[12].
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The process's peak resident set (`VmHWM` of `/proc/self/status`) in MiB; `None` where there is none.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// A deterministic batch of the program's image shape: values in [0, 1), labels `i mod classes`.
fn synthetic_batch(dims: &[usize], classes: usize, seed: u64) -> (Vec<f32>, Vec<i32>) {
    let n: usize = dims.iter().product();
    let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
    let x = (0..n)
        .map(|_| {
            // xorshift64*: enough for timing data; the values only need to be ordinary floats.
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let y = (0..dims[0]).map(|i| (i % classes.max(1)) as i32).collect();
    (x, y)
}

/// The StableHLO text of the train step that [`run`] compiles on `exec` (for `--dump-mlir`).
pub fn emit(net: &NetSpec, cfg: &RunConfig, exec: &Executor) -> Result<String> {
    let devices = exec.devices();
    check_split(cfg.batch_size, devices)?;
    exec.codegen(|| nn::train_step_on(net, cfg, devices))
        .map(|p| p.mlir)
        .map_err(|e| Error::Invalid(format!("generating the train step of {}: {e}", net.name)))
}

fn check_split(batch: usize, devices: usize) -> Result<()> {
    if devices == 0 || !batch.is_multiple_of(devices) {
        return Err(Error::Invalid(format!(
            "bench: --batch-size {batch} cannot be split evenly over {devices} devices \
             (--devices {devices}): the batch is the global batch, so it must be a multiple of the \
             device count"
        )));
    }
    Ok(())
}

/// Steps of the single-device baseline: a runner on the first device alone at batch `B/N`.
struct Single {
    runner: Runner,
    batch: DeviceBatch,
    lr: DeviceTensor,
    batch_size: usize,
}

impl Single {
    fn new(net: &NetSpec, cfg: &RunConfig, exec: &Executor, opts: &Options) -> Result<Single> {
        let batch_size = cfg.batch_size / exec.devices();
        let cfg = RunConfig {
            batch_size,
            ..cfg.clone()
        };
        let program = exec.codegen(|| nn::train_step(net, &cfg)).map_err(|e| {
            Error::Invalid(format!(
                "generating the baseline train step of {}: {e}",
                net.name
            ))
        })?;
        let mut runner = Runner::new(exec.first_device(), Some(program), None)?;
        initial_state(net, opts.seed, None, &mut runner)?;
        let up = runner.uploader();
        let dims = up.train_dims()?.to_vec();
        let (x, y) = synthetic_batch(&dims, net.num_classes, opts.seed);
        let batch = up.upload(&x, &y, &dims)?;
        let lr = up.rate(opts.lr)?;
        for _ in 0..opts.warmup {
            runner.step(&batch, &lr)?.loss()?;
        }
        Ok(Single {
            runner,
            batch,
            lr,
            batch_size,
        })
    }

    fn block(&mut self, n: usize, times: &mut Vec<Duration>) -> Result<()> {
        for _ in 0..n {
            let t = Instant::now();
            self.runner.step(&self.batch, &self.lr)?.loss()?;
            times.push(t.elapsed());
        }
        Ok(())
    }
}

/// Step-only blocks of an N-device bench and of its single-device baseline, alternated.
pub const SCALING_ROUNDS: usize = 3;

/// Generates, compiles and times the train step of `net` on `exec`'s devices (see the module doc).
pub fn run(net: &NetSpec, cfg: &RunConfig, exec: &Executor, opts: &Options) -> Result<Report> {
    if opts.steps == 0 {
        return Err(Error::Invalid("bench: --steps must be at least 1".into()));
    }
    cfg.check_step()
        .map_err(|e| Error::Invalid(format!("bench: {e}")))?;
    let devices = exec.devices();
    check_split(cfg.batch_size, devices)?;
    let t0 = Instant::now();
    let program = exec
        .codegen(|| nn::train_step_on(net, cfg, devices))
        .map_err(|e| Error::Invalid(format!("generating the train step of {}: {e}", net.name)))?;
    let codegen = t0.elapsed();
    let flops = program.flops;
    let program = match &opts.mlir {
        Some(text) => nn::Program {
            mlir: text.clone(),
            ..program
        },
        None => program,
    };
    let mut runner = Runner::new(exec.clone(), Some(program), None)?;
    let compile = runner.compile_times().0;
    initial_state(net, opts.seed, None, &mut runner)?;

    let up = runner.uploader();
    let x_dims = up.train_dims()?.to_vec();
    let (x, y) = synthetic_batch(&x_dims, net.num_classes, opts.seed);
    let batch = up.upload(&x, &y, &x_dims)?;
    let lr = up.rate(opts.lr)?;

    for _ in 0..opts.warmup {
        runner.step(&batch, &lr)?.loss()?;
    }
    let mut feed = if opts.e2e {
        let mut f = Feed::new(net, cfg, up, &x_dims, opts)?;
        f.block(&mut runner, &lr, opts.warmup)?;
        Some(f)
    } else {
        None
    };
    let mut single = if devices > 1 {
        Some(Single::new(net, cfg, exec, opts)?)
    } else {
        None
    };
    let rounds = match (&feed, &single) {
        (None, None) => 1,
        (Some(_), _) => E2E_ROUNDS.min(opts.steps),
        (None, Some(_)) => SCALING_ROUNDS.min(opts.steps),
    };
    let mut single_times = Vec::new();
    let mut times = Vec::with_capacity(opts.steps);
    let mut last_loss = f32::NAN;
    let (mut loop_wall, mut cpu) = (Duration::ZERO, Some(Duration::ZERO));
    let (mut fed_times, mut fed_wall) = (Vec::new(), Duration::ZERO);
    let mut fed_wait = Duration::ZERO;
    for r in 0..rounds {
        let n = opts.steps * (r + 1) / rounds - opts.steps * r / rounds;
        let cpu0 = process_cpu_time();
        let loop_start = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            last_loss = runner.step(&batch, &lr)?.loss()?;
            times.push(t.elapsed());
        }
        loop_wall += loop_start.elapsed();
        cpu = match (cpu, cpu0, process_cpu_time()) {
            (Some(c), Some(a), Some(b)) => Some(c + (b - a)),
            _ => None,
        };
        if let Some(f) = feed.as_mut() {
            let wait0 = f.batcher.data_wait();
            let start = Instant::now();
            fed_times.extend(f.block(&mut runner, &lr, n)?);
            fed_wall += start.elapsed();
            fed_wait += f.batcher.data_wait() - wait0;
        }
        if let Some(s) = single.as_mut() {
            s.block(n, &mut single_times)?;
        }
    }
    let baseline = single.map(|s| {
        let step = Stats::of(&single_times);
        Baseline {
            batch_size: s.batch_size,
            step,
            img_per_s: s.batch_size as f64 / step.median * 1e3,
        }
    });
    let cpu_ms_per_step = cpu.map(|c| c.as_secs_f64() * 1e3 / opts.steps as f64);
    let stats = Stats::of(&times);
    let b = cfg.batch_size as f64;
    let e2e = feed.map(|f| E2e {
        source: f.source.into(),
        step: Stats::of(&fed_times),
        img_per_s: (opts.steps * cfg.batch_size) as f64 / fed_wall.as_secs_f64(),
        data_wait_ms: fed_wait.as_secs_f64() * 1e3,
    });
    Ok(Report {
        model: net.name.clone(),
        batch_size: cfg.batch_size,
        devices,
        optimizer: cfg.optimizer.name().into(),
        precision: cfg.precision.name().into(),
        platform: exec.platform(),
        codegen_ms: codegen.as_secs_f64() * 1e3,
        compile_s: compile.as_secs_f64(),
        steps: opts.steps,
        warmup: opts.warmup,
        step: stats,
        cpu_ms_per_step,
        img_per_s: b / stats.median * 1e3,
        img_per_s_wall: b * opts.steps as f64 / loop_wall.as_secs_f64(),
        flops_per_step: flops,
        gflops: flops as f64 / stats.median / 1e6,
        state_bytes: runner.state_bytes(),
        last_loss,
        peak_rss_mib: peak_rss_mib(),
        glibc_tunables: std::env::var("GLIBC_TUNABLES").ok(),
        mlir_replaced: opts.mlir.is_some(),
        e2e,
        baseline,
    })
}

/// Step-only and fed blocks of the end-to-end comparison, alternated.
pub const E2E_ROUNDS: usize = 3;

/// The batch producers of the end-to-end blocks (uploads in their hook).
struct Feed {
    batcher: Batcher<DeviceBatch>,
    source: &'static str,
}

impl Feed {
    fn new(
        net: &NetSpec,
        cfg: &RunConfig,
        up: Uploader,
        x_dims: &[usize],
        opts: &Options,
    ) -> Result<Feed> {
        let [c, h, w] = net.input;
        let (ds, pre, source): (Source, Preprocess, &'static str) = match &opts.data {
            DataSource::FashionMnist(dir) => {
                if net.input != [1, 28, 28] {
                    return Err(Error::Invalid(format!(
                        "bench --e2e: Fashion-MNIST images are 1×28×28, {} takes {c}×{h}×{w}",
                        net.name
                    )));
                }
                let ds = data::load(dir, DatasetKind::FashionMnist, Split::Train)?;
                (
                    Arc::new(ds).into(),
                    Preprocess::for_kind(DatasetKind::FashionMnist, true, false),
                    "fashion-mnist",
                )
            }
            DataSource::Synthetic(n) => {
                let (x, _) = synthetic_batch(&[*n, c, h, w], 1, opts.seed ^ 1);
                let images: Vec<u8> = x.iter().map(|v| (v * 255.0) as u8).collect();
                let labels: Vec<u8> = (0..*n).map(|i| (i % net.num_classes) as u8).collect();
                (
                    Arc::new(Dataset::new(images, labels, c, h, w, net.num_classes)?).into(),
                    Preprocess::plain(h, w),
                    "synthetic",
                )
            }
            DataSource::Files(path) => {
                let mut config = cfg.clone();
                config.switch_dataset(crate::run::detect_dataset(path, config.dataset));
                let d = crate::run::load_data(
                    net,
                    &config,
                    &crate::run::DataOptions {
                        path: Some(path.clone()),
                        skip_bad: false,
                    },
                )?;
                (d.train, d.pre_train, "files")
            }
        };
        let batch = x_dims[0];
        let total = opts.warmup + opts.steps;
        let per_epoch = crate::batch::batches_per_epoch(ds.len(), batch, Mode::Train) as usize;
        if per_epoch == 0 {
            return Err(Error::Invalid(format!(
                "bench --e2e: the data has {} images, fewer than one batch of {batch}",
                ds.len()
            )));
        }
        let cfg = BatchConfig {
            batch_size: batch,
            seed: opts.seed,
            shuffle: true,
            mode: Mode::Train,
            start: Position::default(),
            epochs: Some(total.div_ceil(per_epoch) as u64),
            prefetch: opts.prefetch,
            threads: opts.threads,
            pad_last: false,
        };
        let batcher = Batcher::new(ds, pre, cfg, move |b| up.train_batch(&b))?;
        Ok(Feed { batcher, source })
    }

    /// `n` steps on the producers' batches; per step: waiting for the batch + the step.
    fn block(&mut self, runner: &mut Runner, lr: &DeviceTensor, n: usize) -> Result<Vec<Duration>> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let ready = self
                .batcher
                .next_batch()
                .ok_or_else(|| Error::Producer("the batch stream ended early".into()))??;
            runner.step(&ready.value, lr)?.loss()?;
            times.push(t.elapsed());
        }
        Ok(times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_order_statistics() {
        let d: Vec<Duration> = [5u64, 1, 4, 2, 3, 10, 6, 7, 9, 8]
            .iter()
            .map(|&m| Duration::from_millis(m))
            .collect();
        let s = Stats::of(&d);
        assert_eq!(s.median, 5.5);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 10.0);
        assert_eq!(s.mean, 5.5);
        // round(0.1·9) = 1 → 2nd smallest; round(0.9·9) = 8 → 9th.
        assert_eq!(s.p10, 2.0);
        assert_eq!(s.p90, 9.0);
        let one = Stats::of(&[Duration::from_micros(1500)]);
        assert_eq!((one.median, one.p10, one.p90), (1.5, 1.5, 1.5));
    }

    #[test]
    fn synthetic_batch_is_deterministic_and_in_range() {
        let (x, y) = synthetic_batch(&[4, 1, 3, 3], 3, 7);
        assert_eq!(x.len(), 36);
        assert!(x.iter().all(|v| (0.0..1.0).contains(v)));
        assert_eq!(y, vec![0, 1, 2, 0]);
        assert_eq!(synthetic_batch(&[4, 1, 3, 3], 3, 7).0, x);
        assert_ne!(synthetic_batch(&[4, 1, 3, 3], 3, 8).0, x);
        // Not constant: the batch must exercise the network.
        assert!(x.iter().any(|&v| v != x[0]));
    }

    #[test]
    fn cpu_time_grows_with_work() {
        if cfg!(target_os = "linux") {
            let a = process_cpu_time().expect("/proc/self/stat");
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < Duration::from_millis(300) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            let b = process_cpu_time().unwrap();
            // 300 ms of busy wall time is at least one 10 ms tick of CPU time, even on a loaded machine.
            assert!(b > a, "{a:?} -> {b:?}");
        }
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let m = peak_rss_mib().expect("VmHWM in /proc/self/status");
            assert!(m > 1.0 && m < 1e6, "{m}");
        }
    }
}
