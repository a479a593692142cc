//! `netspec bench-data`: how fast the batch producers turn a source (an image folder, array files) into
//! preprocessed batches, with nothing else running: per thread and in all, wall time and CPU time, and
//! how much memory the stream held against its stated bound ([`crate::batch::memory_bound`]).
//!
//! Method: a [`Batcher`] over the source (training order, the given preprocessing, `prefetch = 2·threads`)
//! is drained by a consumer that drops each batch. After `warmup` batches (thread start, first file
//! reads), the peak-RSS counter is reset (`/proc/self/clear_refs`, Linux) and `batches` batches are timed:
//! wall time, this process's CPU time (all threads, `/proc/self/stat`) and the peak resident set.
//! `bench/data_compare.py` runs this beside PyTorch's `DataLoader` on the same files (BENCHMARKS.md).

use std::time::Instant;

use serde_json::{json, Value};

use crate::augment::Preprocess;
use crate::batch::{held_batches, memory_bound, BatchConfig, Batcher, Mode, Position};
use crate::bench::process_cpu_time;
use crate::data::Source;
use crate::{Error, Result};

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub batch_size: usize,
    /// Timed batches.
    pub batches: usize,
    /// Untimed batches before them.
    pub warmup: usize,
    pub threads: usize,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            batch_size: 32,
            batches: 32,
            warmup: 2,
            threads: 2,
            seed: 0,
        }
    }
}

/// One measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub threads: usize,
    pub batch_size: usize,
    pub images: usize,
    pub wall_s: f64,
    /// CPU time of the whole process over the timed batches (all threads); `None` off Linux.
    pub cpu_s: Option<f64>,
    /// The resident set before the batcher started (the source's index and the program), bytes.
    pub rss_before: Option<u64>,
    /// The peak resident set while timing, bytes (since the reset; since start when the reset failed).
    pub rss_peak: Option<u64>,
    /// Whether the peak counter could be reset after the warm-up.
    pub peak_reset: bool,
    /// [`memory_bound`] for this source, preprocessing and configuration, bytes.
    pub bound: u64,
    /// Batches held at most ([`held_batches`]).
    pub held_batches: u64,
    pub source: String,
}

impl Report {
    pub fn img_per_s(&self) -> f64 {
        self.images as f64 / self.wall_s
    }

    /// Milliseconds of CPU per image (all threads).
    pub fn cpu_ms_per_image(&self) -> Option<f64> {
        self.cpu_s.map(|c| c * 1e3 / self.images as f64)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "threads": self.threads,
            "batch_size": self.batch_size,
            "images": self.images,
            "wall_s": self.wall_s,
            "img_per_s": self.img_per_s(),
            "img_per_s_per_thread": self.img_per_s() / self.threads as f64,
            "cpu_s": self.cpu_s,
            "cpu_ms_per_image": self.cpu_ms_per_image(),
            "rss_before_bytes": self.rss_before,
            "rss_peak_bytes": self.rss_peak,
            "peak_reset": self.peak_reset,
            "bound_bytes": self.bound,
            "held_batches": self.held_batches,
            "source": self.source,
        })
    }

    pub fn line(&self) -> String {
        let mib = |b: Option<u64>| {
            b.map_or("?".into(), |b| {
                format!("{:.1}", b as f64 / (1 << 20) as f64)
            })
        };
        format!(
            "threads {:>2}: {:>7.1} img/s ({:>6.1} per thread), {} ms CPU per image; RSS {} -> peak {} MiB (bound: +{:.1} MiB)",
            self.threads,
            self.img_per_s(),
            self.img_per_s() / self.threads as f64,
            self.cpu_ms_per_image().map_or("?".into(), |c| format!("{c:.2}")),
            mib(self.rss_before),
            mib(self.rss_peak),
            self.bound as f64 / (1 << 20) as f64,
        )
    }
}

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmHWM`).
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Resets the peak resident set (`VmHWM`) to the current one (Linux ≥ 4.0).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Drains `opts.warmup + opts.batches` batches of `source` preprocessed by `pre`; see the module doc.
pub fn run(source: &Source, pre: &Preprocess, opts: &Options) -> Result<Report> {
    if opts.batches == 0 || opts.threads == 0 || opts.batch_size == 0 {
        return Err(Error::Invalid(
            "bench-data: batches, threads and the batch size must be at least 1".into(),
        ));
    }
    let cfg = BatchConfig {
        batch_size: opts.batch_size,
        seed: opts.seed,
        shuffle: true,
        mode: Mode::Train,
        start: Position::default(),
        epochs: None,
        prefetch: 2 * opts.threads,
        threads: opts.threads,
        pad_last: false,
    };
    let bound = memory_bound(source, pre, &cfg);
    let rss_before = proc_status_bytes("VmRSS");
    let mut batcher = Batcher::plain(source.clone(), pre.clone(), cfg.clone())?;
    let mut next = || -> Result<()> {
        let b = batcher
            .next_batch()
            .ok_or_else(|| Error::Producer("the batch stream ended".into()))??;
        drop(std::hint::black_box(b));
        Ok(())
    };
    for _ in 0..opts.warmup {
        next()?;
    }
    let peak_reset = reset_peak_rss();
    let (t0, c0) = (Instant::now(), process_cpu_time());
    for _ in 0..opts.batches {
        next()?;
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = match (c0, process_cpu_time()) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64()),
        _ => None,
    };
    let rss_peak = proc_status_bytes("VmHWM");
    drop(batcher);
    Ok(Report {
        threads: opts.threads,
        batch_size: opts.batch_size,
        images: opts.batches * opts.batch_size,
        wall_s,
        cpu_s,
        rss_before,
        rss_peak,
        peak_reset,
        bound,
        held_batches: held_batches(&cfg),
        source: source.describe(),
    })
}
