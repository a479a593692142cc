//! What a run checks before anything expensive: after code generation (milliseconds) and before the
//! data is loaded, the plugin opened or any program compiled, so that a bad input costs no epoch.
//!
//! - the checkpoint directory is created and written to (a probe file, removed again), and
//!   temporary files that a killed save left beside `last.safetensors` (or beside the trace) are
//!   removed;
//! - the trace's directory exists and takes a file;
//! - a `--resume` checkpoint against the train program's state slots (every tensor there, with the
//!   slot's dtype and shape, finite, nothing else) and its metadata against itself and its `step`
//!   tensor ([`check_meta`]);
//! - an `--init` file read and converted as training will use it, every value finite;
//! - the plugin file ([`pjrt::check_plugin`]: ELF header, segments inside the file, `GetPjrtApi`).
//!
//! `netspec eval` checks its checkpoint the same way against the eval program ([`check_state`]).
//! Every error names the file, and the tensor or field at fault.

use std::path::{Path, PathBuf};

use spec::NetSpec;

use super::checkpoints::{CheckpointMeta, InitSource, LAST};
use super::config::Options;
use super::Observer;
use crate::checkpoint::{Checkpoint, TensorData};
use crate::runner::state_name;
use crate::{Error, Result};

/// The checks of the module doc for a training run; returns the `--init` file, read.
pub fn check_run(
    spec: &NetSpec,
    opts: &Options,
    train_program: &nn::Program,
    resume: Option<(&Path, &Checkpoint, &CheckpointMeta)>,
    obs: &mut dyn Observer,
) -> Result<Option<InitSource>> {
    if let Some(dir) = &opts.checkpoint_dir {
        writable_dir(dir, "--checkpoint-dir")?;
        for p in remove_stale_temporaries(&dir.join(LAST)) {
            obs.info(&format!(
                "removed {}, a temporary file left by a save that was killed",
                p.display()
            ));
        }
    }
    if let Some(t) = &opts.trace {
        trace_target(t)?;
        for p in remove_stale_temporaries(t) {
            obs.info(&format!(
                "removed {}, a temporary file left by a trace rewrite that was killed",
                p.display()
            ));
        }
    }
    if let Some((file, ck, meta)) = resume {
        check_state(ck, file, train_program, true)?;
        check_meta(meta, ck, file)?;
    }
    let init = match (&opts.init, resume) {
        (Some(p), None) => Some(InitSource::read(spec, p)?),
        (Some(p), Some((file, _, _))) => {
            return Err(Error::Invalid(format!(
                "--init {} and --resume {}: a resumed run continues its checkpoint; drop --init",
                p.display(),
                file.display()
            )))
        }
        (None, _) => None,
    };
    if opts.reference.is_none() {
        let plugin = pjrt::find_plugin(opts.device, opts.plugin.as_deref())
            .map_err(|e| Error::device(format!("opening the {} device", opts.device), e))?;
        pjrt::check_plugin(&plugin)
            .map_err(|e| Error::device(format!("opening the {} device", opts.device), e))?;
    }
    Ok(init)
}

/// Creates `dir` if needed and writes (and removes) a probe file in it; `flag` is the flag to change.
pub fn writable_dir(dir: &Path, flag: &str) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        Error::Invalid(format!("{}: {what} ({e}); change {flag}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot create this directory", e))?;
    let probe = dir.join(format!(".netspec-write-check-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"netspec"));
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| fail("cannot write a file in this directory", e))
}

/// The trace file can be written: its directory exists (and takes a file), and it is not a directory.
pub fn trace_target(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: --trace names a directory; give a file name (e.g. {})",
            path.display(),
            path.join("trace.jsonl").display()
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: the trace's directory {} does not exist; create it or change --trace",
            path.display(),
            dir.display()
        )));
    }
    writable_dir(dir, "--trace")
}

/// Removes the temporary files that [`crate::checkpoint::write_atomic`] leaves beside `target` when
/// its process is killed during a write (`.<name>.tmp-<pid>-<n>`), unless process `<pid>` still
/// runs (another process writing the same file). Returns the files removed.
pub fn remove_stale_temporaries(target: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid
            .is_some_and(|p| p != std::process::id() && Path::new(&format!("/proc/{p}")).exists());
        if !alive && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed.sort();
    removed
}

/// Checks a checkpoint's tensors against the state slots of `program` (train or eval): each slot's
/// tensor is there with the slot's dtype and shape and finite values; with `whole`, the file holds
/// nothing else (a train checkpoint is exactly the train step's state).
pub fn check_state(ck: &Checkpoint, file: &Path, program: &nn::Program, whole: bool) -> Result<()> {
    let what = file.display();
    let mut wanted = Vec::new();
    for slot in &program.inputs {
        let Some(name) = state_name(&slot.kind) else {
            continue;
        };
        wanted.push(name);
        let t = ck.get(name).ok_or_else(|| {
            Error::Invalid(format!(
                "{what}: the checkpoint has no tensor {name}, which this model's state needs ({} {:?})",
                elem_name(slot.elem),
                slot.dims
            ))
        })?;
        let elem = match &t.data {
            TensorData::F32(_) => nn::ElemType::F32,
            TensorData::I32(_) => nn::ElemType::I32,
        };
        if elem != slot.elem {
            return Err(Error::Invalid(format!(
                "{what}: tensor {name} is {}, this model needs {}",
                elem_name(elem),
                elem_name(slot.elem)
            )));
        }
        if t.shape != slot.dims {
            return Err(Error::Invalid(format!(
                "{what}: tensor {name} has shape {:?}, this model needs {:?}",
                t.shape, slot.dims
            )));
        }
        finite(file, name, &t.data)?;
    }
    if whole {
        if let Some(t) = ck
            .tensors
            .iter()
            .find(|t| !wanted.contains(&t.name.as_str()))
        {
            return Err(Error::Invalid(format!(
                "{what}: tensor {} is not part of this model's training state",
                t.name
            )));
        }
    }
    Ok(())
}

/// Every value of a float tensor is finite (a checkpoint never holds NaN/Inf: saving refuses it).
pub fn finite(file: &Path, name: &str, data: &TensorData) -> Result<()> {
    if let TensorData::F32(v) = data {
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::Invalid(format!(
                "{}: tensor {name} holds {} at index {i} of {}: weights and optimizer state must be finite",
                file.display(),
                v[i],
                v.len()
            )));
        }
    }
    Ok(())
}

/// A checkpoint's metadata agrees with itself and with its `step` tensor: steps per epoch > 0, the
/// step within the run (`epochs × steps_per_epoch`), the position the step's, the epoch sums those
/// of `position.batch` steps.
pub fn check_meta(meta: &CheckpointMeta, ck: &Checkpoint, file: &Path) -> Result<()> {
    let bad = |msg: String| Err(Error::Invalid(format!("{}: {msg}", file.display())));
    if let Some(t) = ck.get("step") {
        match &t.data {
            TensorData::I32(v) if v.len() == 1 => {
                if v[0] < 0 {
                    return bad(format!(
                        "tensor step holds {}, and a step counter is never negative",
                        v[0]
                    ));
                }
                if v[0] as u64 != meta.step {
                    return bad(format!(
                        "tensor step holds {}, but the metadata says step {}",
                        v[0], meta.step
                    ));
                }
            }
            _ => return bad("tensor step is not one I32 value".into()),
        }
    }
    let p = meta.steps_per_epoch;
    if p == 0 {
        return bad("the metadata's steps_per_epoch is 0".into());
    }
    let total = meta.config.epochs.saturating_mul(p);
    if meta.step > total {
        return bad(format!(
            "the metadata's step {} is past the end of its run ({} epochs of {p} steps = {total})",
            meta.step, meta.config.epochs
        ));
    }
    let (epoch, batch) = (meta.step / p, meta.step % p);
    if meta.position.epoch != epoch || meta.position.batch != batch {
        return bad(format!(
            "the metadata's position (epoch {}, batch {}) is not step {} (epoch {epoch}, batch {batch} of {p})",
            meta.position.epoch, meta.position.batch, meta.step
        ));
    }
    let sums = &meta.epoch_sums;
    if sums.steps != batch {
        return bad(format!(
            "the metadata's epoch_sums count {} steps, but step {} is batch {batch} of its epoch",
            sums.steps, meta.step
        ));
    }
    let most = sums.steps.saturating_mul(meta.config.batch_size as u64);
    if sums.correct > most || !sums.loss.is_finite() || sums.loss < 0.0 {
        return bad(format!(
            "the metadata's epoch_sums (loss {}, correct {}) cannot come from {} steps of batch {}",
            sums.loss, sums.correct, sums.steps, meta.config.batch_size
        ));
    }
    Ok(())
}

fn elem_name(e: nn::ElemType) -> &'static str {
    match e {
        nn::ElemType::F32 => "F32",
        nn::ElemType::I32 => "I32",
    }
}
