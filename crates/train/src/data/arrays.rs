//! Images and labels from array files (safetensors, `.npy`, `.npz`), streamed from disk.
//!
//! **Where the arrays are.** `--data` names a file or a directory:
//! - a `.safetensors` or `.npz` file holding, per split `S` (`train`, `val`, `test`), an image array named
//!   `x_S` or `S_images` and a label array `y_S` or `S_labels` (Keras' `mnist.npz` uses `x_train`,
//!   `y_train`, `x_test`, `y_test`); a file with only `images`/`labels` (or `x`/`y`) is a training split;
//! - a directory holding, per split, `S.safetensors` or `S.npz` (arrays `images`/`labels` or `x`/`y`), or
//!   the `.npy` pairs `S_images.npy` + `S_labels.npy` or `x_S.npy` + `y_S.npy`.
//!
//! **Images**: `u8` or `f32` (either byte order in `.npy`), `[N, C, H, W]`, `[N, H, W, C]` or, for one
//! channel, `[N, H, W]`; the layout is told by which axis has the network's channel count (an array where
//! both could, e.g. `[N, 3, 7, 3]` for 3 channels, is refused as ambiguous). `u8` samples are scaled by
//! `1/255`, `f32` ones are used as they are (see [`crate::augment`]). Any image size: the transform brings
//! it to the network's input or says why it cannot. **Labels**: any integer type, `[N]` or `[N, 1]`; each
//! must be in `0..classes` (checked against the network's class count before the compile, naming the
//! file, the array and the first bad index). Labels stay in memory (4 bytes each).
//!
//! **Streaming.** Image bytes are read per sample at their file offset (`pread`), never mapped or loaded
//! whole, so memory does not grow with the file. The one exception: a compressed (deflated) `.npz` member
//! (`np.savez_compressed`) cannot be read at an offset, so it is decompressed into memory when opened;
//! `np.savez` (stored members) streams. `.npy` headers are parsed by the `npyz` crate, `.npz` containers
//! by `zip`, safetensors headers by the `safetensors` crate (its `Metadata`, which checks every offset).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::augment::{Pix, Preprocess, View};
use crate::{Error, Result};

/// Element types of array files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// Anything else (named, for the error).
    Other,
}

impl Ty {
    fn size(self) -> usize {
        match self {
            Ty::U8 | Ty::I8 | Ty::Other => 1,
            Ty::U16 | Ty::I16 => 2,
            Ty::U32 | Ty::I32 | Ty::F32 => 4,
            Ty::U64 | Ty::I64 | Ty::F64 => 8,
        }
    }

    fn is_int(self) -> bool {
        match self {
            Ty::U8 | Ty::I8 | Ty::U16 | Ty::I16 | Ty::U32 | Ty::I32 | Ty::U64 | Ty::I64 => true,
            Ty::F32 | Ty::F64 | Ty::Other => false,
        }
    }
}

/// Where an array's bytes are.
#[derive(Clone, Debug)]
enum Backing {
    /// In a file, from this byte offset.
    File(Arc<File>, u64),
    /// In memory (a decompressed `.npz` member), from this byte offset.
    Memory(Arc<Vec<u8>>, usize),
}

/// One array found in a file: enough to read any part of it.
#[derive(Clone, Debug)]
struct Tensor {
    file: PathBuf,
    name: String,
    shape: Vec<usize>,
    ty: Ty,
    /// The type as the file spells it (for errors).
    ty_name: String,
    big_endian: bool,
    backing: Backing,
}

impl Tensor {
    fn what(&self) -> String {
        format!("array '{}' ({} {:?})", self.name, self.ty_name, self.shape)
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::data(&self.file, format!("{}: {}", self.what(), msg.into()))
    }

    /// Reads `buf.len()` bytes at byte `at` of the array's data.
    fn read(&self, at: u64, buf: &mut [u8]) -> Result<()> {
        match &self.backing {
            Backing::File(f, base) => read_exact_at(f, buf, base + at).map_err(|e| {
                Error::data(
                    &self.file,
                    format!(
                        "{}: cannot read {} bytes at data byte {at}: {e}",
                        self.what(),
                        buf.len()
                    ),
                )
            }),
            Backing::Memory(v, base) => {
                let s = base + at as usize;
                match v.get(s..s + buf.len()) {
                    Some(src) => {
                        buf.copy_from_slice(src);
                        Ok(())
                    }
                    None => Err(self.err("the data ends early")),
                }
            }
        }
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
}

#[cfg(windows)]
fn read_exact_at(f: &File, mut buf: &mut [u8], mut at: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(f, buf, at) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A reader that counts the bytes it gave out (to find where an `.npy` header ends).
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

/// Parses an `.npy` header from `r`: (shape, type, type name, big endian, header length).
fn npy_header(
    r: impl Read,
    file: &Path,
    name: &str,
) -> Result<(Vec<usize>, Ty, String, bool, u64)> {
    let mut c = Counting { inner: r, n: 0 };
    let h = npyz::NpyHeader::from_reader(&mut c).map_err(|e| {
        Error::data(
            file,
            format!("array '{name}': not a readable .npy header: {e}"),
        )
    })?;
    if h.order() == npyz::Order::Fortran {
        return Err(Error::data(
            file,
            format!(
                "array '{name}' is stored in Fortran order: save np.ascontiguousarray(a) instead"
            ),
        ));
    }
    let (ty, ty_name, big) = match h.dtype() {
        npyz::DType::Plain(ts) => {
            use npyz::TypeChar as C;
            let ty = match (ts.type_char(), ts.size_field()) {
                (C::Uint, 1) => Ty::U8,
                (C::Int, 1) => Ty::I8,
                (C::Uint, 2) => Ty::U16,
                (C::Int, 2) => Ty::I16,
                (C::Uint, 4) => Ty::U32,
                (C::Int, 4) => Ty::I32,
                (C::Uint, 8) => Ty::U64,
                (C::Int, 8) => Ty::I64,
                (C::Float, 4) => Ty::F32,
                (C::Float, 8) => Ty::F64,
                _ => Ty::Other,
            };
            (ty, ts.to_string(), ts.endianness() == npyz::Endianness::Big)
        }
        other => (Ty::Other, format!("{other:?}"), false),
    };
    let shape = h
        .shape()
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                Error::data(file, format!("array '{name}': dimension {d} is too large"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((shape, ty, ty_name, big, c.n))
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path, e))
}

/// The arrays of an `.npy` file.
fn npy_file(path: &Path) -> Result<Tensor> {
    let f = open_file(path)?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_string();
    let (shape, ty, ty_name, big, header) = npy_header(std::io::BufReader::new(&f), path, &name)?;
    let t = Tensor {
        file: path.to_path_buf(),
        name,
        shape,
        ty,
        ty_name,
        big_endian: big,
        backing: Backing::File(Arc::new(f), header),
    };
    check_length(
        &t,
        std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len()
            - header,
    )?;
    Ok(t)
}

/// The data must hold the shape's bytes.
fn check_length(t: &Tensor, available: u64) -> Result<()> {
    let need = t
        .shape
        .iter()
        .try_fold(t.ty.size() as u64, |a, &d| a.checked_mul(d as u64))
        .ok_or_else(|| t.err("its size overflows"))?;
    if available < need {
        return Err(t.err(format!(
            "the file holds {available} bytes of data, the shape needs {need} (truncated?)"
        )));
    }
    Ok(())
}

/// Every array of an `.npz` file, by name (member name without `.npy`).
fn npz_file(path: &Path) -> Result<Vec<Tensor>> {
    let f = Arc::new(open_file(path)?);
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(
        File::try_clone(&f).map_err(|e| Error::io(path, e))?,
    ))
    .map_err(|e| Error::data(path, format!("not a readable .npz (zip) file: {e}")))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut m = zip
            .by_index(i)
            .map_err(|e| Error::data(path, format!("cannot read member {i} of the .npz: {e}")))?;
        let member = m
            .name()
            .map_err(|e| {
                Error::data(
                    path,
                    format!("member {i} of the .npz has an unreadable name: {e}"),
                )
            })?
            .to_string();
        let Some(name) = member.strip_suffix(".npy").map(str::to_string) else {
            continue;
        };
        let stored = m.compression() == zip::CompressionMethod::Stored;
        let t = if stored {
            let start = m.data_start().ok_or_else(|| {
                Error::data(
                    path,
                    format!("member '{name}.npy': no data offset in the zip directory"),
                )
            })?;
            let size = m.size();
            let (shape, ty, ty_name, big, header) = npy_header(&mut m, path, &name)?;
            let t = Tensor {
                file: path.to_path_buf(),
                name,
                shape,
                ty,
                ty_name,
                big_endian: big,
                backing: Backing::File(f.clone(), start + header),
            };
            check_length(&t, size.saturating_sub(header))?;
            t
        } else {
            let mut bytes = Vec::with_capacity((m.size() as usize).min(1 << 30));
            m.read_to_end(&mut bytes).map_err(|e| {
                Error::data(path, format!("member '{name}.npy': cannot decompress: {e}"))
            })?;
            let (shape, ty, ty_name, big, header) = npy_header(&bytes[..], path, &name)?;
            let avail = bytes.len() as u64 - header;
            let t = Tensor {
                file: path.to_path_buf(),
                name,
                shape,
                ty,
                ty_name,
                big_endian: big,
                backing: Backing::Memory(Arc::new(bytes), header as usize),
            };
            check_length(&t, avail)?;
            t
        };
        out.push(t);
    }
    Ok(out)
}

/// Every tensor of a safetensors file.
fn safetensors_file(path: &Path) -> Result<Vec<Tensor>> {
    let f = open_file(path)?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = [0u8; 8];
    read_exact_at(&f, &mut head, 0).map_err(|e| {
        Error::data(
            path,
            format!("not a safetensors file (no 8-byte header length): {e}"),
        )
    })?;
    let n = u64::from_le_bytes(head);
    if n > 100 << 20 || 8 + n > len {
        return Err(Error::data(
            path,
            format!("not a safetensors file: header length {n} for a file of {len} bytes"),
        ));
    }
    let mut header = vec![0u8; n as usize];
    read_exact_at(&f, &mut header, 8).map_err(|e| Error::io(path, e))?;
    let meta: safetensors::tensor::Metadata = serde_json::from_slice(&header)
        .map_err(|e| Error::data(path, format!("not a readable safetensors header: {e}")))?;
    let data_len = meta.data_len() as u64;
    if 8 + n + data_len != len {
        return Err(Error::data(
            path,
            format!("the header describes {data_len} bytes of tensor data but the file holds {} (truncated?)", len - 8 - n),
        ));
    }
    let f = Arc::new(f);
    let mut out = Vec::new();
    let mut names: Vec<(String, &safetensors::tensor::TensorInfo)> =
        meta.tensors().into_iter().collect();
    names.sort_by_key(|(_, i)| i.data_offsets.0);
    for (name, info) in names {
        use safetensors::Dtype as D;
        let ty = match info.dtype {
            D::U8 => Ty::U8,
            D::I8 => Ty::I8,
            D::U16 => Ty::U16,
            D::I16 => Ty::I16,
            D::U32 => Ty::U32,
            D::I32 => Ty::I32,
            D::U64 => Ty::U64,
            D::I64 => Ty::I64,
            D::F32 => Ty::F32,
            D::F64 => Ty::F64,
            _ => Ty::Other,
        };
        out.push(Tensor {
            file: path.to_path_buf(),
            name,
            shape: info.shape.clone(),
            ty,
            ty_name: format!("{:?}", info.dtype),
            big_endian: false,
            backing: Backing::File(f.clone(), 8 + n + info.data_offsets.0 as u64),
        });
    }
    Ok(out)
}

/// One split of an array dataset: the images stay on disk, the labels in memory.
#[derive(Clone, Debug)]
pub struct ArraySet {
    images: Tensor,
    labels_from: String,
    labels: Vec<u32>,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    hwc: bool,
}

/// The splits found at a path (see the module doc).
#[derive(Clone, Debug)]
pub struct ArraySplits {
    pub path: PathBuf,
    pub train: ArraySet,
    pub val: Option<ArraySet>,
    pub test: Option<ArraySet>,
}

/// Whether `path` looks like array data: an array file, or a directory holding one of the split files.
pub fn is_array_path(path: &Path) -> bool {
    let ext = |p: &Path, e: &str| p.extension().is_some_and(|x| x.eq_ignore_ascii_case(e));
    if path.is_file() {
        return ["safetensors", "npz", "npy"].iter().any(|e| ext(path, e));
    }
    path.is_dir()
        && [
            "train.safetensors",
            "train.npz",
            "train_images.npy",
            "x_train.npy",
        ]
        .iter()
        .any(|f| path.join(f).is_file())
}

const SPLITS: [&str; 3] = ["train", "val", "test"];

/// Opens the splits at `path` for a network taking `channels` channels.
pub fn open(path: &Path, channels: usize) -> Result<ArraySplits> {
    let mut found: [Option<ArraySet>; 3] = [None, None, None];
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if path.is_file() {
        let tensors = match ext.as_deref() {
            Some("safetensors") => safetensors_file(path)?,
            Some("npz") => npz_file(path)?,
            Some("npy") => {
                return Err(Error::data(
                    path,
                    "a .npy file holds one array: put train_images.npy and train_labels.npy (or x_train.npy and y_train.npy; val_/test_ for the other splits) in a directory and pass the directory",
                ))
            }
            _ => return Err(Error::data(path, "not an array file (.safetensors, .npz or .npy)")),
        };
        for (k, split) in SPLITS.iter().enumerate() {
            found[k] = pair(
                &tensors,
                &[format!("x_{split}"), format!("{split}_images")],
                &[format!("y_{split}"), format!("{split}_labels")],
                channels,
            )?;
        }
        if found[0].is_none() {
            found[0] = pair(
                &tensors,
                &["images".into(), "x".into()],
                &["labels".into(), "y".into()],
                channels,
            )?;
        }
        if found[0].is_none() {
            let names: Vec<_> = tensors.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::data(
                path,
                format!(
                    "no training arrays: expected x_train/y_train, train_images/train_labels or images/labels; the file holds {names:?}"
                ),
            ));
        }
    } else if path.is_dir() {
        for (k, split) in SPLITS.iter().enumerate() {
            let st = path.join(format!("{split}.safetensors"));
            let npz = path.join(format!("{split}.npz"));
            let plain = [
                &["images".to_string(), "x".to_string()][..],
                &["labels".to_string(), "y".to_string()][..],
            ];
            found[k] = if st.is_file() {
                let ts = safetensors_file(&st)?;
                Some(
                    pair(&ts, plain[0], plain[1], channels)?
                        .ok_or_else(|| Error::data(&st, "no images/labels (or x/y) arrays"))?,
                )
            } else if npz.is_file() {
                let ts = npz_file(&npz)?;
                Some(
                    pair(&ts, plain[0], plain[1], channels)?
                        .ok_or_else(|| Error::data(&npz, "no images/labels (or x/y) arrays"))?,
                )
            } else {
                let pairs = [
                    (format!("{split}_images.npy"), format!("{split}_labels.npy")),
                    (format!("x_{split}.npy"), format!("y_{split}.npy")),
                ];
                match pairs.iter().find(|(x, _)| path.join(x).is_file()) {
                    Some((x, y)) => {
                        let (xp, yp) = (path.join(x), path.join(y));
                        if !yp.is_file() {
                            return Err(Error::data(
                                &xp,
                                format!("its labels file {y} is missing"),
                            ));
                        }
                        Some(ArraySet::new(npy_file(&xp)?, &npy_file(&yp)?, channels)?)
                    }
                    None => None,
                }
            };
        }
        if found[0].is_none() {
            return Err(Error::data(
                path,
                "no training arrays: expected train.safetensors, train.npz, train_images.npy + train_labels.npy or x_train.npy + y_train.npy",
            ));
        }
    } else {
        return Err(Error::data(path, "no such file or directory"));
    }
    let [Some(train), val, test] = found else {
        return Err(Error::data(path, "no training arrays"));
    };
    Ok(ArraySplits {
        path: path.to_path_buf(),
        train,
        val,
        test,
    })
}

/// The split whose image array has one of `xs`' names and label array one of `ys`'.
fn pair(
    tensors: &[Tensor],
    xs: &[String],
    ys: &[String],
    channels: usize,
) -> Result<Option<ArraySet>> {
    let find = |names: &[String]| {
        names
            .iter()
            .find_map(|n| tensors.iter().find(|t| t.name == *n))
    };
    match (find(xs), find(ys)) {
        (Some(x), Some(y)) => Ok(Some(ArraySet::new(x.clone(), y, channels)?)),
        (Some(x), None) => Err(x.err(format!("no label array beside it (expected one of {ys:?})"))),
        (None, _) => Ok(None),
    }
}

impl ArraySet {
    fn new(images: Tensor, labels: &Tensor, channels: usize) -> Result<ArraySet> {
        if !matches!(images.ty, Ty::U8 | Ty::F32) {
            return Err(images
                .err("images must be u8 or f32: convert the array (e.g. a.astype(np.float32))"));
        }
        let s = &images.shape;
        let (n, c, h, w, hwc) = match s.len() {
            3 if channels == 1 => (s[0], 1, s[1], s[2], false),
            4 => {
                let (first, last) = (s[1] == channels, s[3] == channels);
                match (first, last) {
                    (true, false) => (s[0], s[1], s[2], s[3], false),
                    (false, true) => (s[0], s[3], s[1], s[2], true),
                    (true, true) => {
                        return Err(images.err(format!(
                            "ambiguous layout: both [N, C, H, W] and [N, H, W, C] read {channels} channels; store images with H and W different from {channels}"
                        )))
                    }
                    (false, false) => {
                        return Err(images.err(format!(
                            "the network takes {channels} channels: expected [N, {channels}, H, W] or [N, H, W, {channels}]"
                        )))
                    }
                }
            }
            _ => {
                return Err(images.err(format!(
                    "expected images as [N, C, H, W] or [N, H, W, C]{} for a network taking {channels} channels",
                    if channels == 1 { " or [N, H, W]" } else { "" }
                )))
            }
        };
        if n == 0 || c * h * w == 0 {
            return Err(images.err("no images (an empty dimension)"));
        }
        if !labels.ty.is_int() {
            return Err(labels.err("labels must be integers (class indices)"));
        }
        let ln = match labels.shape[..] {
            [m] | [m, 1] => m,
            _ => return Err(labels.err("labels must be [N] or [N, 1]")),
        };
        if ln != n {
            return Err(labels.err(format!(
                "{ln} labels for {n} images (array '{}')",
                images.name
            )));
        }
        let size = labels.ty.size();
        let mut raw = vec![0u8; n * size];
        labels.read(0, &mut raw)?;
        let mut out = Vec::with_capacity(n);
        for (i, b) in raw.chunks_exact(size).enumerate() {
            let mut a = [0u8; 8];
            a[..size].copy_from_slice(b);
            if labels.big_endian {
                a[..size].reverse();
            }
            let v: i128 = match labels.ty {
                Ty::U8 => a[0] as i128,
                Ty::I8 => a[0] as i8 as i128,
                Ty::U16 => u16::from_le_bytes([a[0], a[1]]) as i128,
                Ty::I16 => i16::from_le_bytes([a[0], a[1]]) as i128,
                Ty::U32 => u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as i128,
                Ty::I32 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as i128,
                Ty::U64 => u64::from_le_bytes(a) as i128,
                Ty::I64 => i64::from_le_bytes(a) as i128,
                Ty::F32 | Ty::F64 | Ty::Other => -1,
            };
            if !(0..=u32::MAX as i128 / 2).contains(&v) {
                return Err(labels.err(format!("label {v} at index {i} is not a class index")));
            }
            out.push(v as u32);
        }
        Ok(ArraySet {
            labels_from: format!("{}: array '{}'", labels.file.display(), labels.name),
            images,
            labels: out,
            n,
            c,
            h,
            w,
            hwc,
        })
    }

    /// Images in the split.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// (C, H, W) of every image.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.c, self.h, self.w)
    }

    /// Whether the file stores images channels-last.
    pub fn channels_last(&self) -> bool {
        self.hwc
    }

    /// Whether the images are `f32` (else `u8`).
    pub fn is_f32(&self) -> bool {
        self.images.ty == Ty::F32
    }

    /// The file holding the images.
    pub fn file(&self) -> &Path {
        &self.images.file
    }

    /// The label of image `i`.
    pub fn label(&self, i: usize) -> u32 {
        self.labels[i]
    }

    /// One more than the largest label.
    pub fn label_bound(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m as usize + 1)
    }

    /// Every label must be below `classes`; the error names the file, the array and the index.
    pub fn check_labels(&self, classes: usize) -> Result<()> {
        match self.labels.iter().position(|&l| l as usize >= classes) {
            None => Ok(()),
            Some(i) => Err(Error::Invalid(format!(
                "{}: label {} at index {i} is not below the network's {classes} classes",
                self.labels_from, self.labels[i]
            ))),
        }
    }

    /// Checks the images' size and channels against `pre`.
    pub fn check(&self, pre: &Preprocess) -> Result<()> {
        pre.check_channels(self.c)?;
        pre.fits(self.h, self.w).map_err(|e| self.images.err(e))
    }

    /// Bytes of one stored image.
    pub fn image_bytes(&self) -> usize {
        self.c * self.h * self.w * self.images.ty.size()
    }

    /// Reads image `i` and preprocesses it into `out`.
    pub(crate) fn write(
        &self,
        i: usize,
        pre: &Preprocess,
        tables: &[[f32; 256]],
        rng: &mut crate::order::SplitMix64,
        out: &mut [f32],
    ) -> Result<()> {
        let per = self.c * self.h * self.w;
        let mut raw = vec![0u8; self.image_bytes()];
        self.images.read(i as u64 * raw.len() as u64, &mut raw)?;
        let (c, h, w) = (self.c, self.h, self.w);
        // To CHW (the view the transform reads; interleaved views are for decoded files only).
        let chw = |at: usize| -> usize {
            if self.hwc {
                let (ch, rest) = (at / (h * w), at % (h * w));
                rest * c + ch
            } else {
                at
            }
        };
        let res = match self.images.ty {
            Ty::U8 => {
                let planar: Vec<u8> = if self.hwc {
                    (0..per).map(|k| raw[chw(k)]).collect()
                } else {
                    raw
                };
                pre.apply(
                    View {
                        c,
                        h,
                        w,
                        hwc: false,
                        pix: Pix::U8(&planar),
                    },
                    tables,
                    rng,
                    out,
                )
            }
            _ => {
                let big = self.images.big_endian;
                let val = |k: usize| {
                    let b = &raw[4 * chw(k)..][..4];
                    let b = [b[0], b[1], b[2], b[3]];
                    if big {
                        f32::from_be_bytes(b)
                    } else {
                        f32::from_le_bytes(b)
                    }
                };
                let planar: Vec<f32> = (0..per).map(val).collect();
                pre.apply(
                    View {
                        c,
                        h,
                        w,
                        hwc: false,
                        pix: Pix::F32(&planar),
                    },
                    tables,
                    rng,
                    out,
                )
            }
        };
        res.map_err(|e| self.images.err(format!("image {i}: {e}")))
    }
}
