//! Checkpoints and resume: the run's metadata in a checkpoint ([`CheckpointMeta`], serde), writing
//! the state (never a non-finite one), the sources of a runner's initial state (seeded init, an
//! init file, a checkpoint), and cutting a resumed run's trace back to its checkpoint.
//!
//! A checkpoint is `<dir>/last.safetensors`: the state tensors in ABI order under their checkpoint
//! names ([`crate::runner::state_name`]), and under the metadata key [`META_KEY`] the JSON of
//! [`CheckpointMeta`]: `format`, `spec_name`, `spec_hash`, `config` (the run's `spec::RunConfig`,
//! as in the trace header), `step`, `position {epoch, batch}`, `steps_per_epoch`, `epoch_sums`
//! (`loss_bits`: the running loss sum's f64 bits in hex, `correct`, `steps`) and `spec` (the spec's
//! text). The keys are those netspec has always written, so older checkpoints resume. Three keys
//! appear only when they apply: `best` (the best validation result so far: `epoch`, `step`, `correct`,
//! `total`, `loss_bits` of its mean loss), `epochs_since_best` (the early-stopping patience used up)
//! and `class_names` (an image folder's classes, index = label; what `netspec predict` prints).
//!
//! With a validation split, `<dir>/best.safetensors` ([`BEST`]) is the state after the epoch with the
//! best validation accuracy, with the same metadata as `last.safetensors` at that step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use spec::{NetSpec, RunConfig};

use crate::batch::Position;
use crate::checkpoint::{self, DataRef, TensorData, View};
use crate::runner::{HostTensor, Runner};
use crate::{Error, Result};

/// The checkpoint file inside a checkpoint directory.
pub const LAST: &str = "last.safetensors";
/// The best checkpoint (by validation accuracy) inside a checkpoint directory.
pub const BEST: &str = "best.safetensors";
/// The metadata key holding the run's JSON in a checkpoint.
pub const META_KEY: &str = "netspec";
/// The value of [`CheckpointMeta::format`].
pub const FORMAT: &str = "netspec-checkpoint-1";

/// The run's JSON in a checkpoint's metadata (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always [`FORMAT`] (reading refuses any other).
    pub format: String,
    pub spec_name: String,
    pub spec_hash: String,
    pub config: RunConfig,
    /// Updates done (the global step reached).
    pub step: u64,
    /// The next batch to train on.
    pub position: Position,
    pub steps_per_epoch: u64,
    /// The running sums of the current epoch so far (so that a resumed run reports the same epoch
    /// line).
    pub epoch_sums: EpochSums,
    /// The spec's text (`spec::print`).
    pub spec: String,
    /// The best validation result so far (runs with a validation split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<Best>,
    /// Epochs since `best` improved (what `--early-stop` counts).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epochs_since_best: u64,
    /// The class names, index = label (image folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The epoch with the best validation accuracy so far (the first one, on ties).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// The epoch (0-based) after which it was measured, and the global step.
    pub epoch: u64,
    pub step: u64,
    /// Correct predictions and size of the validation split.
    pub correct: u64,
    pub total: u64,
    /// Mean validation loss (written as its bits, as `EpochSums::loss`).
    #[serde(rename = "loss_bits", with = "f64_bits")]
    pub loss: f64,
}

impl Best {
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Sums over the steps of the current epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    /// Written as its bits (`loss_bits`, hex): a decimal round trip through JSON is not
    /// guaranteed exact, and a resumed epoch line must equal the uninterrupted one.
    #[serde(rename = "loss_bits", with = "f64_bits")]
    pub loss: f64,
    pub correct: u64,
    pub steps: u64,
}

/// An `f64` as the 16 hex digits of its bits.
mod f64_bits {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:016x}", v.to_bits()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let hex = String::deserialize(d)?;
        u64::from_str_radix(&hex, 16)
            .map(f64::from_bits)
            .map_err(|_| D::Error::custom(format!("\"{hex}\" is not the hex bits of an f64")))
    }
}

impl CheckpointMeta {
    /// The metadata of `spec` trained with `config`, at global `step` of epochs of `per_epoch` steps.
    pub fn at(
        spec: &NetSpec,
        config: &RunConfig,
        step: u64,
        per_epoch: u64,
        epoch_sums: EpochSums,
    ) -> CheckpointMeta {
        CheckpointMeta {
            format: FORMAT.into(),
            spec_name: spec.name.clone(),
            spec_hash: super::spec_hash(spec),
            config: config.clone(),
            step,
            position: Position {
                epoch: step / per_epoch,
                batch: step % per_epoch,
            },
            steps_per_epoch: per_epoch,
            epoch_sums,
            spec: spec::print(spec),
            best: None,
            epochs_since_best: 0,
            class_names: None,
        }
    }

    /// Reads the metadata of a checkpoint file (`path` names it in errors).
    pub fn from_checkpoint(ck: &checkpoint::Checkpoint, path: &Path) -> Result<CheckpointMeta> {
        let what = path.display();
        let text = ck.metadata.get(META_KEY).ok_or_else(|| {
            Error::Invalid(format!(
                "{what}: no \"{META_KEY}\" metadata: not a netspec training checkpoint"
            ))
        })?;
        let meta: CheckpointMeta = serde_json::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "{what}: the checkpoint's \"{META_KEY}\" metadata: {e}"
            ))
        })?;
        if meta.format != FORMAT {
            return Err(Error::Invalid(format!(
                "{what}: checkpoint format \"{}\", this netspec reads \"{FORMAT}\"",
                meta.format
            )));
        }
        Ok(meta)
    }
}

/// `path` itself, or `path/last.safetensors` when `path` is a directory.
pub fn checkpoint_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(LAST)
    } else {
        path.to_path_buf()
    }
}

/// Reads the metadata of the checkpoint at `path` (a file or a checkpoint directory): the file's
/// path and what it says (for `--resume`, whose configuration is the checkpoint's).
pub fn resume_info(path: &Path) -> Result<(PathBuf, CheckpointMeta)> {
    let file = checkpoint_file(path);
    let ck = checkpoint::read(&file)?;
    let meta = CheckpointMeta::from_checkpoint(&ck, &file)?;
    Ok((file, meta))
}

/// A checkpoint's (or init file's) tensor for a state slot, if its shape fits.
fn tensor_for(t: &checkpoint::Tensor, slot: &nn::Slot, file: &Path) -> Result<TensorData> {
    if t.shape != slot.dims {
        return Err(Error::Invalid(format!(
            "{}: tensor {} has shape {:?}, the model needs {:?}",
            file.display(),
            t.name,
            t.shape,
            slot.dims
        )));
    }
    Ok(t.data.clone())
}

/// An init file read for a spec (netspec, torchvision or timm names, converted to netspec's) and
/// checked: parameters and buffers F32, every value finite.
#[derive(Debug)]
pub struct InitSource {
    pub path: PathBuf,
    pub file: crate::exchange::InitFile,
}

impl InitSource {
    /// Reads and checks `path` for `spec` ([`crate::exchange::read_init`], then dtypes and values).
    pub fn read(spec: &NetSpec, path: &Path) -> Result<InitSource> {
        let file = crate::exchange::read_init(spec, path)?;
        for (name, t) in &file.tensors {
            if let TensorData::I32(_) = t.data {
                return Err(Error::Invalid(format!(
                    "{}: tensor {} is I32, this model needs F32",
                    path.display(),
                    t.name
                )));
            }
            super::preflight::finite(path, name, &t.data)?;
        }
        Ok(InitSource {
            path: path.to_path_buf(),
            file,
        })
    }
}

/// Sets the runner's initial state: parameters from `init` (or `spec::init(seed)`), zero optimizer
/// state, BN buffers from `init` (or `spec::init_buffers`), step 0. An init file may use netspec,
/// torchvision or timm names ([`crate::exchange::read_init`]); returns the line saying how it was
/// read (a classifier of another class count keeps its fresh values).
pub fn initial_state(
    spec: &NetSpec,
    seed: u64,
    init: Option<&InitSource>,
    runner: &mut Runner,
) -> Result<Option<String>> {
    let spec_err = |e: spec::SpecError| Error::Invalid(format!("{}: {e}", spec.name));
    let mut fresh: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let params = spec::params(spec).map_err(spec_err)?;
    let values = spec::init(spec, seed).map_err(spec_err)?;
    fresh.extend(params.into_iter().map(|p| p.name).zip(values));
    let bufs = spec::buffers(spec).map_err(spec_err)?;
    let bvals = spec::init_buffers(spec).map_err(spec_err)?;
    fresh.extend(bufs.into_iter().map(|p| p.name).zip(bvals));
    // An init file in netspec, torchvision or timm names (crate::exchange), converted to netspec's.
    let file = init.map(|i| (&i.path, &i.file));
    let described = file.as_ref().map(|(p, f)| f.describe(p));
    runner.set_state(|name, slot| {
        let from_file = file
            .as_ref()
            .and_then(|(p, f)| f.tensors.get(name).map(|t| (p, t)));
        let fresh_head = file
            .as_ref()
            .is_some_and(|(_, f)| f.fresh_head.iter().any(|n| n == name));
        match (&slot.kind, from_file) {
            (nn::SlotKind::Param(_) | nn::SlotKind::Buffer(_), Some((p, t))) => {
                tensor_for(t, slot, p)
            }
            (nn::SlotKind::Param(_), None) if file.is_some() && !fresh_head => {
                Err(Error::Invalid(format!(
                    "{}: the init file has no tensor {name}",
                    file.as_ref()
                        .map(|(p, _)| p.display().to_string())
                        .unwrap_or_default()
                )))
            }
            (nn::SlotKind::Param(_) | nn::SlotKind::Buffer(_), None) => fresh
                .get(name)
                .map(|v| TensorData::F32(v.clone()))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the program has state {name}, which the spec does not know"
                    ))
                }),
            (nn::SlotKind::OptState(_), _) => {
                Ok(TensorData::F32(vec![0.0; slot.dims.iter().product()]))
            }
            (nn::SlotKind::Step, _) => Ok(TensorData::I32(vec![0])),
            (
                nn::SlotKind::Images
                | nn::SlotKind::Labels
                | nn::SlotKind::LearningRate
                | nn::SlotKind::Loss
                | nn::SlotKind::Correct
                | nn::SlotKind::Logits
                | nn::SlotKind::Grad(_),
                _,
            ) => Err(Error::Invalid(format!("slot {name} is not state"))),
        }
    })?;
    Ok(described)
}

/// Sets every state tensor of the runner from a checkpoint (`file` names it in errors): the whole
/// training state for a train runner, parameters and BN buffers for an eval-only one.
pub fn state_from_checkpoint(
    runner: &mut Runner,
    ck: &checkpoint::Checkpoint,
    file: &Path,
) -> Result<()> {
    runner.set_state(|name, slot| {
        let t = ck.get(name).ok_or_else(|| {
            Error::Invalid(format!(
                "{}: the checkpoint has no tensor {name}",
                file.display()
            ))
        })?;
        tensor_for(t, slot, file)
    })
}

/// The last checkpoint this process saved (file, step); its lock is held during every save, so a
/// reader ([`last_saved`]) waits for a save in progress.
static SAVED: Mutex<Option<(PathBuf, u64)>> = Mutex::new(None);

/// The last checkpoint this process saved and its step, after waiting for a save in progress (a
/// signal handler that ends the process holds this lock, so no save starts after it has answered).
/// `f` runs with the lock held.
pub fn with_last_saved<T>(f: impl FnOnce(Option<&(PathBuf, u64)>) -> T) -> T {
    let saved = SAVED.lock().unwrap_or_else(|p| p.into_inner());
    f(saved.as_ref())
}

/// Sets every state tensor of the runner from host copies taken by [`Runner::state`].
pub fn state_from_host(runner: &mut Runner, state: &[HostTensor]) -> Result<()> {
    runner.set_state(|name, _| {
        state
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.data.clone())
            .ok_or_else(|| Error::Invalid(format!("no kept state tensor {name}")))
    })
}

/// Writes the runner's state (device 0's copy) as a checkpoint, refusing a state with a NaN/Inf
/// anywhere, or one whose copies on several devices differ. Nothing in it depends on the device
/// count: a run may resume on another.
pub fn save_checkpoint(runner: &Runner, path: &Path, meta: &CheckpointMeta) -> Result<()> {
    let mut saved = SAVED.lock().unwrap_or_else(|p| p.into_inner());
    if runner.devices() > 1 {
        runner.check_replicas()?;
    }
    let state: Vec<HostTensor> = runner.state()?;
    for t in &state {
        if let TensorData::F32(v) = &t.data {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::Invalid(format!(
                    "not saving step {}: state tensor {} holds {} at index {i}",
                    meta.step, t.name, v[i]
                )));
            }
        }
    }
    let views: Vec<View<'_>> = state
        .iter()
        .map(|t| View {
            name: &t.name,
            shape: &t.dims,
            data: match &t.data {
                TensorData::F32(v) => DataRef::F32(v),
                TensorData::I32(v) => DataRef::I32(v),
            },
        })
        .collect();
    let json = serde_json::to_string(meta).map_err(|e| {
        Error::Invalid(format!(
            "writing the checkpoint metadata of step {}: {e}",
            meta.step
        ))
    })?;
    let md = BTreeMap::from([(META_KEY.to_string(), json)]);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            err: e,
        })?;
    }
    checkpoint::write(path, &views, &md)?;
    *saved = Some((path.to_path_buf(), meta.step));
    Ok(())
}

/// Keeps a trace's header, its step lines up to `step` and its epoch lines before `epoch`, so that
/// a resumed run can append the rest. (Lines are matched as this crate writes them.)
pub fn cut_trace(path: &Path, step: u64, epoch: u64) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        err: e,
    })?;
    let num_after = |line: &str, key: &str| -> Option<u64> {
        let rest = line.strip_prefix(key)?;
        rest[..rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len())]
            .parse()
            .ok()
    };
    let mut kept = String::new();
    for line in text.lines() {
        let keep = if let Some(s) = num_after(line, "{\"kind\":\"step\",\"step\":") {
            s <= step
        } else if let Some(e) = num_after(line, "{\"kind\":\"epoch\",\"epoch\":") {
            e < epoch
        } else {
            true
        };
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    checkpoint::write_atomic(path, |w| w.write_all(kept.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_reads_what_netspec_wrote_before_serde() {
        let spec = spec::zoo::get("mnist-mlp").unwrap();
        let config = RunConfig {
            optimizer: spec::Optimizer::Momentum { mu: 0.95 },
            ..spec::zoo::recipe("mnist-mlp").unwrap()
        };
        let sums = EpochSums {
            loss: 0.1 + 0.2,
            correct: 7,
            steps: 3,
        };
        let meta = CheckpointMeta::at(&spec, &config, 45, 30, sums);
        assert_eq!(
            meta.position,
            Position {
                epoch: 1,
                batch: 15
            }
        );
        let ck = |json: String| checkpoint::Checkpoint {
            tensors: Vec::new(),
            metadata: BTreeMap::from([(META_KEY.to_string(), json)]),
        };
        let path = Path::new("ck.safetensors");
        let text = serde_json::to_string(&meta).unwrap();
        assert!(
            text.contains("\"loss_bits\":\"3fd3333333333334\""),
            "{text}"
        );
        let back = CheckpointMeta::from_checkpoint(&ck(text), path).unwrap();
        assert_eq!(back, meta);
        assert_eq!(back.epoch_sums.loss.to_bits(), (0.1f64 + 0.2).to_bits());

        // Written by netspec before its metadata went through serde (keys in BTreeMap order).
        let old = r#"{"config":{"augment":false,"batch_size":100,"dataset":"fashion-mnist","epochs":3,"label_smoothing":0.0,"lr":0.001,"optimizer":"adamw","schedule":"cosine","seed":314159,"shuffle":true,"warmup_epochs":1,"weight_decay":0.0001},"epoch_sums":{"correct":1234,"loss_bits":"4024000000000000","steps":15},"format":"netspec-checkpoint-1","position":{"batch":15,"epoch":1},"spec":"name mnist-mlp\n","spec_hash":"abc","spec_name":"mnist-mlp","step":45,"steps_per_epoch":30}"#;
        let m = CheckpointMeta::from_checkpoint(&ck(old.into()), path).unwrap();
        assert_eq!(
            (m.step, m.position, m.steps_per_epoch, m.epoch_sums),
            (
                45,
                Position {
                    epoch: 1,
                    batch: 15
                },
                30,
                EpochSums {
                    loss: 10.0,
                    correct: 1234,
                    steps: 15
                }
            )
        );
        assert_eq!(
            m.config,
            RunConfig {
                batch_size: 100,
                epochs: 3,
                ..RunConfig::default()
            }
        );
    }

    #[test]
    fn bad_metadata_names_the_file_and_the_field() {
        let ck = |json: &str| checkpoint::Checkpoint {
            tensors: Vec::new(),
            metadata: BTreeMap::from([(META_KEY.to_string(), json.to_string())]),
        };
        let path = Path::new("ck.safetensors");
        let spec = spec::zoo::get("mnist-mlp").unwrap();
        let meta = CheckpointMeta::at(&spec, &RunConfig::default(), 1, 10, EpochSums::default());
        let mut v = serde_json::to_value(&meta).unwrap();
        v["config"].as_object_mut().unwrap().remove("seed");
        let e = CheckpointMeta::from_checkpoint(&ck(&v.to_string()), path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ck.safetensors") && e.contains("seed"), "{e}");
        let mut v = serde_json::to_value(&meta).unwrap();
        v["format"] = "netspec-checkpoint-9".into();
        let e = CheckpointMeta::from_checkpoint(&ck(&v.to_string()), path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("netspec-checkpoint-9"), "{e}");
        let mut v = serde_json::to_value(&meta).unwrap();
        v["epoch_sums"]["loss_bits"] = "xyz".into();
        let e = CheckpointMeta::from_checkpoint(&ck(&v.to_string()), path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("xyz"), "{e}");
        let e = CheckpointMeta::from_checkpoint(&ck("{"), path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ck.safetensors"), "{e}");
    }

    #[test]
    fn cut_trace_keeps_what_precedes_the_checkpoint() {
        let dir = std::env::temp_dir().join(format!("netspec-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.jsonl");
        let text = [
            r#"{"kind":"header","phase":"phase3"}"#,
            r#"{"kind":"step","step":1,"epoch":0,"loss":2.0,"lr":0.1}"#,
            r#"{"kind":"step","step":2,"epoch":0,"loss":1.5,"lr":0.1}"#,
            r#"{"kind":"epoch","epoch":0,"test_acc":0.5}"#,
            r#"{"kind":"step","step":3,"epoch":1,"loss":1.2,"lr":0.1}"#,
            r#"{"kind":"step","step":13,"epoch":1,"loss":NaN,"lr":0.1}"#,
        ]
        .join("\n");
        std::fs::write(&p, text).unwrap();
        cut_trace(&p, 2, 1).unwrap();
        let kept = std::fs::read_to_string(&p).unwrap();
        assert_eq!(kept.lines().count(), 4, "{kept}");
        assert!(kept.ends_with("\"test_acc\":0.5}\n"), "{kept}");
        cut_trace(&p, 1, 0).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
