//! A run's configuration as the loop uses it: the run's mathematics is one [`spec::RunConfig`]
//! (written, by serde, as the `config` of trace headers and checkpoints); everything else about a
//! run (where the data and files are, the device, threads, when to stop early) is [`Options`].
//! Also the glue between the two and the rest of the crate: the per-step schedule, the spec's hash,
//! the config's JSON value and how two configs differ.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};
use spec::{NetSpec, RunConfig};

use crate::schedule::Schedule;

/// Version string written into trace headers.
pub const EMITTER_VERSION: &str = concat!("netspec ", env!("CARGO_PKG_VERSION"));

/// Everything about a run that is not its configuration: none of it changes what is computed, so
/// none of it is in checkpoints, and a resumed run may change any of it.
#[derive(Clone, Debug)]
pub struct Options {
    /// Dataset directory; `None`: the dataset's default location.
    pub data_dir: Option<PathBuf>,
    /// Stop after this global step (counting from the start of training, not of this process).
    pub max_steps: Option<u64>,
    pub device: pjrt::Device,
    /// Run on the reference interpreter in this precision instead of `device` (no plugin needed).
    pub reference: Option<interp::Precision>,
    /// Devices each step runs on (data parallel: the batch split over them, the state replicated);
    /// `None`: the default of [`crate::device::Executor::open_run`] (1 on CPU, every GPU on CUDA).
    /// Checkpoints do not depend on it: a run may resume on another count.
    pub devices: Option<usize>,
    pub plugin: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    /// Where `last.safetensors` goes; `None`: no checkpoints.
    pub checkpoint_dir: Option<PathBuf>,
    /// A checkpoint file to continue from.
    pub resume: Option<PathBuf>,
    /// A safetensors file with initial parameters (and optionally BN buffers).
    pub init: Option<PathBuf>,
    /// Set (e.g. by a Ctrl-C handler) to stop after the current step and save.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Batch producer threads and batches prepared ahead.
    pub threads: usize,
    pub prefetch: usize,
    /// Batch size of the eval program; `None`: the training batch size.
    pub eval_batch_size: Option<usize>,
    /// Leave bad image files out (and count them) instead of failing (`--skip-bad`).
    pub skip_bad: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            data_dir: None,
            max_steps: None,
            device: pjrt::Device::Cpu,
            reference: None,
            devices: None,
            plugin: None,
            trace: None,
            checkpoint_dir: None,
            resume: None,
            init: None,
            interrupt: None,
            threads: 2,
            prefetch: 4,
            eval_batch_size: None,
            skip_bad: false,
        }
    }
}

/// The per-step learning-rate schedule of `cfg` for epochs of `per_epoch` steps.
pub fn schedule(cfg: &RunConfig, per_epoch: u64) -> Schedule {
    match cfg.schedule {
        spec::Schedule::Constant => Schedule::Constant { lr: cfg.lr as f64 },
        spec::Schedule::Cosine => {
            Schedule::warmup_cosine_epochs(cfg.lr as f64, cfg.warmup_epochs, cfg.epochs, per_epoch)
        }
    }
}

/// SHA-256 (hex) of the spec's canonical text (`spec::print`).
pub fn spec_hash(spec: &NetSpec) -> String {
    let digest = Sha256::digest(spec::print(spec).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The configuration as a JSON value (a trace header's `config`). It goes through the text form,
/// where `f32`s are their shortest decimal (`0.001`): `serde_json::to_value` would widen them to
/// `f64` first (`0.0010000000474974513`).
#[allow(
    clippy::expect_used,
    reason = "a RunConfig holds only finite numbers, strings and enums: serializing it cannot fail"
)]
pub fn config_json(cfg: &RunConfig) -> Value {
    let text = serde_json::to_string(cfg).expect("a RunConfig always serializes");
    serde_json::from_str(&text).expect("serde_json reads back what it wrote")
}

/// `key: a b, this b` for every key whose value differs between two configurations.
pub fn config_diff(a: &RunConfig, a_name: &str, b: &RunConfig, b_name: &str) -> Vec<String> {
    let (a, b) = (config_json(a), config_json(b));
    let (Value::Object(a), Value::Object(b)) = (&a, &b) else {
        unreachable!("a RunConfig serializes to an object")
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
            format!(
                "{k}: {a_name} {}, {b_name} {}",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_per_step() {
        let c = spec::zoo::recipe("mnist-mlp").unwrap();
        let s = schedule(&c, 10);
        // Warmup over the first epoch (10 steps), peak at step 9 and 10, zero at 12 epochs.
        assert!((s.lr(0) - 1e-4).abs() < 1e-10, "{}", s.lr(0));
        assert_eq!(s.lr(9), c.lr);
        assert_eq!(s.lr(10), c.lr);
        assert!(s.lr(119) > 0.0 && s.lr(119) < 1e-5);
        assert_eq!(s.lr(120), 0.0);
    }

    #[test]
    fn config_json_keeps_shortest_decimals_and_diff_names_keys() {
        let c = spec::zoo::recipe("mnist-mlp").unwrap();
        let text = config_json(&c).to_string();
        assert!(text.contains("\"lr\":0.001,"), "{text}");
        let d = RunConfig {
            lr: 0.01,
            optimizer: spec::Optimizer::MOMENTUM,
            ..c.clone()
        };
        let diff = config_diff(&c, "checkpoint", &d, "this run");
        assert_eq!(
            diff,
            [
                "lr: checkpoint 0.001, this run 0.01",
                "momentum: checkpoint (none), this run 0.9",
                "optimizer: checkpoint \"adamw\", this run \"momentum\""
            ]
        );
        assert!(config_diff(&c, "a", &c, "b").is_empty());
    }
}
