//! safetensors checkpoints through the `safetensors` crate, written atomically and read with
//! validation.
//!
//! The format: an 8-byte little-endian `u64` header length `N`; `N` bytes of a JSON object mapping
//! each tensor name to `{"dtype","shape","data_offsets":[begin,end]}` (offsets relative to the data
//! buffer), plus an optional `"__metadata__"` object of string values; then the data buffer, each
//! tensor little-endian and row-major, covered exactly (no gaps, no overlaps, no trailing bytes).
//!
//! The crate parses and validates headers ([`SafeTensors::read_metadata`]) and builds and serializes
//! them ([`Metadata::new`]). netspec writes `F32` and `I32` tensors **in the order given** (the
//! crate's `serialize` would sort them by dtype and name; the ABI order is more useful to a reader),
//! with the header space-padded to a multiple of 8 as the crate does. The reader returns tensors in
//! buffer order. The crate's errors name no tensor for a size mismatch, a truncated or an overlong
//! buffer; [`explain`] finds the tensor in the header and says what is wrong with it, so every
//! error names the file and, where there is one, the tensor.
//!
//! Writes go to a temporary file in the same directory, which is flushed to disk (`fsync`) and then
//! renamed over the target, so a reader sees the old file or the new one, never a partial one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde_json::Value;

use crate::{Error, Result};

/// Owned tensor data.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

/// Borrowed tensor data, for writing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DataRef<'a> {
    F32(&'a [f32]),
    I32(&'a [i32]),
    /// Written only (PyTorch's `num_batches_tracked` is an i64 scalar); [`read`] rejects I64.
    I64(&'a [i64]),
}

impl DataRef<'_> {
    fn len(&self) -> usize {
        match self {
            DataRef::F32(d) => d.len(),
            DataRef::I32(d) => d.len(),
            DataRef::I64(d) => d.len(),
        }
    }
    fn dtype(&self) -> Dtype {
        match self {
            DataRef::F32(_) => Dtype::F32,
            DataRef::I32(_) => Dtype::I32,
            DataRef::I64(_) => Dtype::I64,
        }
    }
    fn bytes(&self) -> usize {
        match self {
            DataRef::F32(_) | DataRef::I32(_) => 4 * self.len(),
            DataRef::I64(_) => 8 * self.len(),
        }
    }
}

/// A tensor to write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub data: DataRef<'a>,
}

/// A tensor as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// A whole file as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// In buffer order.
    pub tensors: Vec<Tensor>,
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

const METADATA: &str = "__metadata__";

/// Writes `tensors` and `metadata` to `path` atomically.
pub fn write(path: &Path, tensors: &[View<'_>], metadata: &BTreeMap<String, String>) -> Result<()> {
    let header = header_bytes(tensors, metadata)
        .map_err(|m| Error::Invalid(format!("{}: {m}", path.display())))?;
    write_atomic(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        for t in tensors {
            match t.data {
                DataRef::F32(d) => d.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?,
                DataRef::I32(d) => d.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?,
                DataRef::I64(d) => d.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?,
            }
        }
        Ok(())
    })
}

/// The JSON header (the crate's [`Metadata`], tensors in the order given), space-padded to a
/// multiple of 8 bytes; `Err` names the bad tensor.
fn header_bytes(
    tensors: &[View<'_>],
    metadata: &BTreeMap<String, String>,
) -> std::result::Result<Vec<u8>, String> {
    let mut seen = HashSet::new();
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0usize;
    for t in tensors {
        if t.name.is_empty() || t.name == METADATA || !seen.insert(t.name) {
            return Err(format!(
                "tensor name \"{}\" is empty, reserved or repeated",
                t.name
            ));
        }
        let count = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count != Some(t.data.len()) {
            return Err(format!(
                "tensor \"{}\": shape {:?} does not hold {} values",
                t.name,
                t.shape,
                t.data.len()
            ));
        }
        let end = offset + t.data.bytes();
        infos.push((
            t.name.to_string(),
            TensorInfo {
                dtype: t.data.dtype(),
                shape: t.shape.to_vec(),
                data_offsets: (offset, end),
            },
        ));
        offset = end;
    }
    let meta = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>()
    });
    let header = Metadata::new(meta, infos).map_err(|e| format!("safetensors header: {e}"))?;
    let mut h = serde_json::to_vec(&header).map_err(|e| format!("safetensors header: {e}"))?;
    h.resize(h.len().next_multiple_of(8), b' ');
    Ok(h)
}

/// Writes a file through `fill` atomically: a temporary file beside `path`, `fsync`, rename over
/// `path`, then `fsync` of the directory. If anything fails, `path` is untouched and the temporary
/// file is removed.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a file path", path.display())))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    // Make the rename itself durable. Some file systems refuse to fsync a directory; the data is
    // already safe then, so that refusal is not an error.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads and validates a safetensors file.
pub fn read(path: &Path) -> Result<Checkpoint> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path)
}

/// Validates and decodes safetensors bytes; `path` is only used in error messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    parse_skipping(bytes, path, &|_| false)
}

/// Reads a file as [`read`] does, except that tensors whose name satisfies `skip` are validated
/// but neither decoded nor returned, whatever their dtype (e.g. PyTorch's i64
/// `num_batches_tracked` in a file of f32 weights).
pub fn read_skipping(path: &Path, skip: &dyn Fn(&str) -> bool) -> Result<Checkpoint> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_skipping(&bytes, path, skip)
}

fn parse_skipping(bytes: &[u8], path: &Path, skip: &dyn Fn(&str) -> bool) -> Result<Checkpoint> {
    let (n, meta) = SafeTensors::read_metadata(bytes).map_err(|e| crate_error(bytes, path, e))?;
    let data_start = 8 + n;
    let buffer = &bytes[data_start..];
    let mut tensors = Vec::with_capacity(meta.tensors().len());
    for name in meta.offset_keys() {
        if skip(&name) {
            continue;
        }
        let info = meta.info(&name).ok_or_else(|| {
            Error::format(
                path,
                0,
                format!("the header lists tensor {name} without its entry"),
            )
        })?;
        let (begin, end) = info.data_offsets;
        let raw = &buffer[begin..end];
        let words = raw.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
        let data = match info.dtype {
            Dtype::F32 => TensorData::F32(words.map(f32::from_le_bytes).collect()),
            Dtype::I32 => TensorData::I32(words.map(i32::from_le_bytes).collect()),
            other => {
                return Err(Error::format(
                    path,
                    8,
                    format!("tensor \"{name}\": {}", unsupported(other)),
                ))
            }
        };
        let shape = info.shape.clone();
        tensors.push(Tensor { name, shape, data });
    }
    let metadata = meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(Checkpoint { tensors, metadata })
}

fn unsupported(d: Dtype) -> String {
    format!("dtype {d:?} is not supported (netspec reads F32 and I32)")
}

/// The error for a file the crate rejected: the crate's reason, made specific (byte offset, the
/// tensor concerned and what is wrong with it) from the header where it can be read.
fn crate_error(bytes: &[u8], path: &Path, e: SafeTensorError) -> Error {
    let bad = |offset: u64, msg: String| Error::format(path, offset, msg);
    let n = bytes
        .get(..8)
        .and_then(|h| <[u8; 8]>::try_from(h).ok())
        .map(u64::from_le_bytes);
    let header = n.and_then(|n| {
        let end = usize::try_from(n).ok()?.checked_add(8)?;
        std::str::from_utf8(bytes.get(8..end)?).ok()
    });
    match e {
        SafeTensorError::HeaderTooSmall => bad(
            0,
            format!(
                "file has {} bytes, fewer than the 8-byte header length",
                bytes.len()
            ),
        ),
        SafeTensorError::HeaderTooLarge | SafeTensorError::InvalidHeaderLength => bad(
            0,
            format!(
                "header length {} runs past the end of the file ({} bytes follow it) or is absurd",
                n.unwrap_or(0),
                bytes.len().saturating_sub(8)
            ),
        ),
        SafeTensorError::InvalidHeader(u) => {
            bad(8 + u.valid_up_to() as u64, "header is not UTF-8".into())
        }
        SafeTensorError::InvalidHeaderDeserialization(j) => {
            // Valid JSON of the wrong structure gets a specific reason.
            let reason = header
                .and_then(explain_structure)
                .unwrap_or_else(|| format!("header is not valid JSON: {j}"));
            bad(8, reason)
        }
        other => {
            let data_start = 8 + n.unwrap_or(0);
            let (offset, msg) = header
                .and_then(|h| explain(h, bytes.len() as u64 - data_start))
                .map(|(at, m)| (data_start + at, m))
                .unwrap_or((8, format!("invalid safetensors file: {other}")));
            bad(offset, msg)
        }
    }
}

/// What is wrong with a header that is JSON but not a safetensors header.
fn explain_structure(header: &str) -> Option<String> {
    let v: Value = serde_json::from_str(header.trim_end_matches(' ')).ok()?;
    let obj = match v.as_object() {
        Some(o) => o,
        None => return Some("header is not a JSON object".into()),
    };
    for (name, v) in obj {
        if name == METADATA {
            let m = match v.as_object() {
                Some(m) => m,
                None => return Some("__metadata__ is not an object".into()),
            };
            if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Some(format!("__metadata__ value of \"{k}\" is not a string"));
            }
        } else if let Err(e) = serde_json::from_value::<TensorInfo>(v.clone()) {
            return Some(format!(
                "tensor \"{name}\": {e} (want {{\"dtype\", \"shape\", \"data_offsets\": [begin, end]}})"
            ));
        }
    }
    None
}

/// The tensor a header gets wrong and how, given the data buffer's length: `(buffer offset, message)`.
/// Walks the tensors in offset order as the crate's validation does.
fn explain(header: &str, buffer_len: u64) -> Option<(u64, String)> {
    let mut entries: Vec<(String, TensorInfo)> =
        serde_json::from_str::<HashMap<String, Value>>(header.trim_end_matches(' '))
            .ok()?
            .into_iter()
            .filter(|(k, _)| k != METADATA)
            .map(|(k, v)| Some((k, serde_json::from_value::<TensorInfo>(v).ok()?)))
            .collect::<Option<_>>()?;
    entries.sort_by_key(|(_, i)| i.data_offsets);
    let mut at = 0u64;
    for (name, info) in &entries {
        let (begin, end) = (info.data_offsets.0 as u64, info.data_offsets.1 as u64);
        if end < begin {
            return Some((
                begin,
                format!("tensor \"{name}\": data_offsets [{begin}, {end}] end before they begin"),
            ));
        }
        let need = info
            .shape
            .iter()
            .try_fold(info.dtype.bitsize() as u64, |a, &d| a.checked_mul(d as u64))
            .map(|bits| bits.div_ceil(8));
        if need != Some(end - begin) {
            if info.dtype != Dtype::F32 && info.dtype != Dtype::I32 {
                let msg = format!("tensor \"{name}\": {}", unsupported(info.dtype));
                return Some((begin, msg));
            }
            return Some((
                begin,
                format!(
                    "tensor \"{name}\": shape {:?} of {:?} needs {} bytes but data_offsets [{begin}, {end}] span {}",
                    info.shape,
                    info.dtype,
                    need.map_or("too many".into(), |v| v.to_string()),
                    end - begin
                ),
            ));
        }
        if begin != at {
            let what = if begin > at {
                "a gap before"
            } else {
                "an overlap with"
            };
            return Some((
                begin,
                format!("tensor \"{name}\" starts at buffer byte {begin}: {what} the previous tensor (ending at {at})"),
            ));
        }
        if end > buffer_len {
            return Some((
                begin,
                format!(
                    "tensor \"{name}\" ends at buffer byte {end}, past the end of the data ({buffer_len} bytes): truncated file"
                ),
            ));
        }
        at = end;
    }
    (at != buffer_len).then(|| {
        (
            at,
            format!("{} trailing bytes after the last tensor", buffer_len - at),
        )
    })
}
/// Saves a named list of `f32` tensors `(name, shape, values)` with metadata, atomically.
pub fn save_f32(
    path: &Path,
    tensors: &[(&str, &[usize], &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let views: Vec<View<'_>> = tensors
        .iter()
        .map(|&(name, shape, data)| View {
            name,
            shape,
            data: DataRef::F32(data),
        })
        .collect();
    write(path, &views, metadata)
}

/// A named `f32` tensor as loaded by [`load_f32`].
pub type NamedF32 = (String, Vec<usize>, Vec<f32>);

/// Loads a file whose tensors are all `f32`, in the order they were written.
pub fn load_f32(path: &Path) -> Result<(Vec<NamedF32>, BTreeMap<String, String>)> {
    let ck = read(path)?;
    let tensors = ck
        .tensors
        .into_iter()
        .map(|t| match t.data {
            TensorData::F32(d) => Ok((t.name, t.shape, d)),
            TensorData::I32(_) => Err(Error::Invalid(format!(
                "{}: tensor \"{}\" is I32, expected F32",
                path.display(),
                t.name
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((tensors, ck.metadata))
}
