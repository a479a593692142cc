//! safetensors checkpoints, written atomically and read with validation.
//!
//! The format: an 8-byte little-endian `u64` header length `N`; `N` bytes of a JSON object mapping
//! each tensor name to `{"dtype","shape","data_offsets":[begin,end]}` (offsets relative to the data
//! buffer), plus an optional `"__metadata__"` object of string values; then the data buffer, each
//! tensor little-endian and row-major. The buffer must be covered exactly: no gaps, no overlaps, no
//! trailing bytes. netspec writes `F32` and `I32`, in the order given, and pads the header with spaces
//! to a multiple of 8 so that tensors are aligned. The reader returns tensors in buffer order (the
//! order they were written in).
//!
//! Writes go to a temporary file in the same directory, which is flushed to disk (`fsync`) and then
//! renamed over the target, so a reader sees the old file or the new one, never a partial one.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl DataRef<'_> {
    fn len(&self) -> usize {
        match self {
            DataRef::F32(d) => d.len(),
            DataRef::I32(d) => d.len(),
        }
    }
    fn dtype(&self) -> &'static str {
        match self {
            DataRef::F32(_) => "F32",
            DataRef::I32(_) => "I32",
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
/// A header larger than this is treated as corrupt rather than allocated.
const MAX_HEADER: u64 = 100 << 20;

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
            }
        }
        Ok(())
    })
}

/// The JSON header, space-padded to a multiple of 8 bytes; `Err` names the bad tensor.
fn header_bytes(
    tensors: &[View<'_>],
    metadata: &BTreeMap<String, String>,
) -> std::result::Result<Vec<u8>, String> {
    let mut seen = HashSet::new();
    let mut parts = Vec::with_capacity(tensors.len() + 1);
    if !metadata.is_empty() {
        let m: serde_json::Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        parts.push(format!("{}:{}", Value::from(METADATA), Value::Object(m)));
    }
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
        let end = offset + 4 * t.data.len();
        parts.push(format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":{},\"data_offsets\":[{offset},{end}]}}",
            Value::from(t.name),
            t.data.dtype(),
            Value::from(t.shape.to_vec())
        ));
        offset = end;
    }
    let mut h = format!("{{{}}}", parts.join(",")).into_bytes();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
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
    let bad = |offset: u64, msg: String| Error::format(path, offset, msg);
    if bytes.len() < 8 {
        return Err(bad(
            0,
            format!(
                "file has {} bytes, fewer than the 8-byte header length",
                bytes.len()
            ),
        ));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let avail = bytes.len() as u64 - 8;
    if n > avail || n > MAX_HEADER {
        return Err(bad(
            0,
            format!("header length {n} runs past the end of the file ({avail} bytes follow it) or is absurd"),
        ));
    }
    let data_start = 8 + n as usize;
    let text = std::str::from_utf8(&bytes[8..data_start])
        .map_err(|e| bad(8 + e.valid_up_to() as u64, "header is not UTF-8".into()))?;
    let json: Value = serde_json::from_str(text.trim_end_matches(' '))
        .map_err(|e| bad(8, format!("header is not valid JSON: {e}")))?;
    let obj = json
        .as_object()
        .ok_or_else(|| bad(8, "header is not a JSON object".into()))?;

    let mut metadata = BTreeMap::new();
    let mut entries = Vec::new(); // (begin, end, name, shape, dtype)
    for (name, v) in obj {
        if name == METADATA {
            let m = v
                .as_object()
                .ok_or_else(|| bad(8, "__metadata__ is not an object".into()))?;
            for (k, v) in m {
                let s = v.as_str().ok_or_else(|| {
                    bad(8, format!("__metadata__ value of \"{k}\" is not a string"))
                })?;
                metadata.insert(k.clone(), s.to_string());
            }
            continue;
        }
        let entry = |msg: &str| bad(8, format!("tensor \"{name}\": {msg}"));
        let dtype = v
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| entry("missing string \"dtype\""))?;
        let shape: Vec<usize> = v
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| entry("\"shape\" is not an array of non-negative integers"))?;
        let offs: Vec<u64> = v
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect())
            .filter(|o: &Vec<u64>| o.len() == 2 && o[0] <= o[1])
            .ok_or_else(|| entry("\"data_offsets\" is not [begin, end] with begin <= end"))?;
        if dtype != "F32" && dtype != "I32" {
            return Err(entry(&format!(
                "dtype {dtype} is not supported (netspec reads F32 and I32)"
            )));
        }
        let need = shape.iter().try_fold(4u64, |a, &d| a.checked_mul(d as u64));
        if need != Some(offs[1] - offs[0]) {
            return Err(entry(&format!(
                "shape {shape:?} of {dtype} needs {} bytes but data_offsets [{}, {}] span {}",
                need.map_or("too many".into(), |v| v.to_string()),
                offs[0],
                offs[1],
                offs[1] - offs[0]
            )));
        }
        entries.push((offs[0], offs[1], name.clone(), shape, dtype == "F32"));
    }
    entries.sort_by_key(|e| (e.0, e.1));

    let buffer = &bytes[data_start..];
    let mut at = 0u64;
    let mut tensors = Vec::with_capacity(entries.len());
    for (begin, end, name, shape, is_f32) in entries {
        let file_at = data_start as u64 + begin;
        if begin != at {
            let what = if begin > at {
                "a gap before"
            } else {
                "an overlap with"
            };
            return Err(bad(
                file_at,
                format!("tensor \"{name}\" starts at buffer byte {begin}: {what} the previous tensor (ending at {at})"),
            ));
        }
        if end > buffer.len() as u64 {
            return Err(bad(
                file_at,
                format!(
                    "tensor \"{name}\" ends at buffer byte {end}, past the end of the data ({} bytes): truncated file",
                    buffer.len()
                ),
            ));
        }
        let raw = &buffer[begin as usize..end as usize];
        let words = raw
            .chunks_exact(4)
            .map(|c| <[u8; 4]>::try_from(c).expect("4 bytes"));
        let data = if is_f32 {
            TensorData::F32(words.map(f32::from_le_bytes).collect())
        } else {
            TensorData::I32(words.map(i32::from_le_bytes).collect())
        };
        tensors.push(Tensor { name, shape, data });
        at = end;
    }
    if at != buffer.len() as u64 {
        return Err(bad(
            data_start as u64 + at,
            format!(
                "{} trailing bytes after the last tensor",
                buffer.len() as u64 - at
            ),
        ));
    }
    Ok(Checkpoint { tensors, metadata })
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
