//! In-memory datasets and their loaders.
//!
//! Images stay `u8` in memory (N·C·H·W, CHW order per image, one byte per pixel and channel); they
//! become `f32` only per batch (see [`crate::augment`]). Three on-disk formats are read:
//!
//! - **IDX** (MNIST, Fashion-MNIST), plain or gzip (detected by the magic bytes `1f 8b`, not by the
//!   name): a big-endian header, magic 2051 for images (`u8`, 3 dimensions: count, rows, cols) and 2049
//!   for labels (`u8`, 1 dimension: count), then the bytes. The two counts must agree.
//! - **CIFAR-10 binary**: records of 3,073 bytes, one label byte then the R, G and B planes of 32×32;
//!   `data_batch_1.bin` … `data_batch_5.bin` (train) and `test_batch.bin` (test) in one directory.
//! - **Imagenette** as lean4-mlir preprocesses it: a little-endian `u32` count, then per image one
//!   label byte and 3·S·S bytes CHW; `train.bin` has S = 256, `val.bin` S = 224.
//!
//! Malformed files give [`Error::Format`] naming the file, the byte offset and what was expected
//! there. For a gzip file the offset counts decompressed bytes.
//!
//! Data of any other shape is streamed from disk instead of held here: image folders ([`folder`]) and
//! array files ([`arrays`]); [`Source`] is what the batch producers read, whichever of the three it is.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::{Error, Result};

pub mod arrays;
pub mod decode;
pub mod folder;
mod source;
pub mod write;

pub use source::{load_image, Source, Subset};

/// A labelled image set held in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// N·C·H·W bytes: image after image, each in CHW order.
    pub images: Vec<u8>,
    /// One class index per image, each `< classes`.
    pub labels: Vec<u8>,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub classes: usize,
}

impl Dataset {
    /// Checks that the sizes agree and every label is a class index.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        c: usize,
        h: usize,
        w: usize,
        classes: usize,
    ) -> Result<Dataset> {
        let per = c * h * w;
        if per == 0 || classes == 0 {
            return Err(Error::Invalid(format!(
                "dataset: empty image shape {c}x{h}x{w} or no classes ({classes})"
            )));
        }
        if images.len() != labels.len() * per {
            return Err(Error::Invalid(format!(
                "dataset: {} image bytes for {} labels of {c}x{h}x{w} (expected {})",
                images.len(),
                labels.len(),
                labels.len() * per
            )));
        }
        if let Some(i) = labels.iter().position(|&l| l as usize >= classes) {
            return Err(Error::Invalid(format!(
                "dataset: label {} of image {i} is not below the class count {classes}",
                labels[i]
            )));
        }
        Ok(Dataset {
            images,
            labels,
            c,
            h,
            w,
            classes,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (C·H·W).
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The CHW bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// How many images each class has.
    pub fn label_histogram(&self) -> Vec<usize> {
        let mut h = vec![0; self.classes];
        for &l in &self.labels {
            h[l as usize] += 1;
        }
        h
    }
}

/// The datasets netspec knows how to find and load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    Mnist,
    FashionMnist,
    Cifar10,
    Imagenette,
}

/// Which part of a dataset. For Imagenette, `Test` is the validation set (`val.bin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl DatasetKind {
    pub const ALL: [DatasetKind; 4] = [
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
        DatasetKind::Imagenette,
    ];

    /// The name used in traces and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Imagenette => "imagenette",
        }
    }

    /// The run configuration's name for this format.
    pub fn dataset(self) -> spec::Dataset {
        match self {
            DatasetKind::Mnist => spec::Dataset::Mnist,
            DatasetKind::FashionMnist => spec::Dataset::FashionMnist,
            DatasetKind::Cifar10 => spec::Dataset::Cifar10,
            DatasetKind::Imagenette => spec::Dataset::Imagenette,
        }
    }

    /// The loader of a run configuration's dataset; `None` for folders and arrays (streamed, see
    /// [`Source`]).
    pub fn of(d: spec::Dataset) -> Option<DatasetKind> {
        match d {
            spec::Dataset::Mnist => Some(DatasetKind::Mnist),
            spec::Dataset::FashionMnist => Some(DatasetKind::FashionMnist),
            spec::Dataset::Cifar10 => Some(DatasetKind::Cifar10),
            spec::Dataset::Imagenette => Some(DatasetKind::Imagenette),
            spec::Dataset::Folder | spec::Dataset::Arrays => None,
        }
    }

    /// Whether `dir` holds this dataset's training file (by its name: `train-images-idx3-ubyte[.gz]`,
    /// `data_batch_1.bin`, `train.bin`).
    pub fn found_in(self, dir: &Path) -> bool {
        let names: &[&str] = match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => {
                &["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
            }
            DatasetKind::Cifar10 => &["data_batch_1.bin"],
            DatasetKind::Imagenette => &["train.bin"],
        };
        names.iter().any(|n| dir.join(n).is_file())
    }

    pub fn classes(self) -> usize {
        match self {
            DatasetKind::Mnist
            | DatasetKind::FashionMnist
            | DatasetKind::Cifar10
            | DatasetKind::Imagenette => 10,
        }
    }

    /// The (C, H, W) of the images as stored for `split`.
    pub fn stored_shape(self, split: Split) -> (usize, usize, usize) {
        match (self, split) {
            (DatasetKind::Mnist | DatasetKind::FashionMnist, _) => (1, 28, 28),
            (DatasetKind::Cifar10, _) => (3, 32, 32),
            (DatasetKind::Imagenette, Split::Train) => {
                (3, IMAGENETTE_TRAIN_SIZE, IMAGENETTE_TRAIN_SIZE)
            }
            (DatasetKind::Imagenette, Split::Test) => (3, IMAGENETTE_VAL_SIZE, IMAGENETTE_VAL_SIZE),
        }
    }

    /// Where the dataset is installed by default, if anywhere: Fashion-MNIST comes from the Debian
    /// package `dataset-fashion-mnist` (see `scripts/setup/data.sh`).
    pub fn default_dir(self) -> Option<PathBuf> {
        match self {
            DatasetKind::FashionMnist => Some(PathBuf::from(FASHION_MNIST_DIR)),
            DatasetKind::Mnist | DatasetKind::Cifar10 | DatasetKind::Imagenette => None,
        }
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<DatasetKind> {
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = DatasetKind::ALL.iter().map(|k| k.name()).collect();
                Error::Invalid(format!(
                    "unknown dataset '{s}' (expected one of: {})",
                    names.join(", ")
                ))
            })
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Debian's `dataset-fashion-mnist` installs here.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Side of the stored Imagenette training images (random crops of 224 are taken from them).
pub const IMAGENETTE_TRAIN_SIZE: usize = 256;
/// Side of the stored Imagenette validation images.
pub const IMAGENETTE_VAL_SIZE: usize = 224;
/// Bytes in one CIFAR-10 record: the label, then 3·32·32 pixels.
pub const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;

const IDX_IMAGES_MAGIC: u32 = 2051;
const IDX_LABELS_MAGIC: u32 = 2049;

/// Loads `split` of `kind` from `dir` (file names as the datasets ship them, see the module doc).
pub fn load(dir: &Path, kind: DatasetKind, split: Split) -> Result<Dataset> {
    match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            let prefix = match split {
                Split::Train => "train",
                Split::Test => "t10k",
            };
            let images = find_idx(dir, &format!("{prefix}-images-idx3-ubyte"))?;
            let labels = find_idx(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
            load_idx(&images, &labels, kind.classes())
        }
        DatasetKind::Cifar10 => {
            let files: Vec<PathBuf> = match split {
                Split::Train => (1..=5)
                    .map(|i| dir.join(format!("data_batch_{i}.bin")))
                    .collect(),
                Split::Test => vec![dir.join("test_batch.bin")],
            };
            load_cifar10_files(&files)
        }
        DatasetKind::Imagenette => {
            let (name, size) = match split {
                Split::Train => ("train.bin", IMAGENETTE_TRAIN_SIZE),
                Split::Test => ("val.bin", IMAGENETTE_VAL_SIZE),
            };
            load_imagenette_file(&dir.join(name), size)
        }
    }
}

/// `name.gz` if present, else `name`.
fn find_idx(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    if gz.is_file() {
        Ok(gz)
    } else if plain.is_file() {
        Ok(plain)
    } else {
        Err(Error::io(
            &gz,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "not found (nor {}); for Fashion-MNIST run scripts/setup/data.sh",
                    plain.display()
                ),
            ),
        ))
    }
}

/// Loads an IDX image file (magic 2051) and its IDX label file (magic 2049).
pub fn load_idx(images_path: &Path, labels_path: &Path, classes: usize) -> Result<Dataset> {
    let mut img = Reader::open(images_path)?;
    let magic = img.u32_be("the magic number")?;
    if magic != IDX_IMAGES_MAGIC {
        return Err(img.err_at(
            0,
            format!("magic number {magic} (0x{magic:08x}); expected {IDX_IMAGES_MAGIC} (0x00000803: IDX images, u8, 3 dimensions)"),
        ));
    }
    let n = img.u32_be("the image count")? as usize;
    let rows = img.u32_be("the row count")? as usize;
    let cols = img.u32_be("the column count")? as usize;
    if rows == 0 || cols == 0 {
        return Err(img.err_at(8, format!("image size {rows}x{cols} is empty")));
    }
    let total = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| {
            img.err_at(
                4,
                format!("{n} images of {rows}x{cols} overflow the address space"),
            )
        })?;
    let images = img.bytes(total, &format!("pixel data ({n} images of {rows}x{cols})"))?;
    img.expect_end()?;

    let mut lab = Reader::open(labels_path)?;
    let magic = lab.u32_be("the magic number")?;
    if magic != IDX_LABELS_MAGIC {
        return Err(lab.err_at(
            0,
            format!("magic number {magic} (0x{magic:08x}); expected {IDX_LABELS_MAGIC} (0x00000801: IDX labels, u8, 1 dimension)"),
        ));
    }
    let m = lab.u32_be("the label count")? as usize;
    if m != n {
        return Err(lab.err_at(
            4,
            format!(
                "{m} labels, but the image file {} holds {n} images",
                images_path.display()
            ),
        ));
    }
    let labels = lab.bytes(n, &format!("{n} labels"))?;
    lab.expect_end()?;
    check_labels(&lab, &labels, 8, 1, classes)?;
    Dataset::new(images, labels, 1, rows, cols, classes)
}

/// Loads CIFAR-10 binary files, concatenated in the order given.
pub fn load_cifar10_files(files: &[PathBuf]) -> Result<Dataset> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut rec = vec![0u8; CIFAR_RECORD];
    for path in files {
        let mut src = Reader::open(path)?;
        let first = labels.len();
        loop {
            let at = src.offset;
            let got = src.fill(&mut rec)?;
            if got == 0 {
                break;
            }
            if got < CIFAR_RECORD {
                return Err(src.err_at(
                    at,
                    format!(
                        "truncated record {}: expected {CIFAR_RECORD} bytes (label + 3x32x32), the file ends at byte {}",
                        labels.len() - first,
                        at + got as u64
                    ),
                ));
            }
            labels.push(rec[0]);
            images.extend_from_slice(&rec[1..]);
        }
        if labels.len() == first {
            return Err(src.err_at(0, "no records: expected 3,073-byte CIFAR-10 records"));
        }
        check_labels(&src, &labels[first..], 0, CIFAR_RECORD as u64, 10)?;
    }
    Dataset::new(images, labels, 3, 32, 32, 10)
}

/// Loads one of lean4-mlir's Imagenette files whose images are `size`×`size`.
pub fn load_imagenette_file(path: &Path, size: usize) -> Result<Dataset> {
    let mut src = Reader::open(path)?;
    let mut head = [0u8; 4];
    src.exact(&mut head, "the little-endian u32 image count")?;
    let n = u32::from_le_bytes(head) as usize;
    let pixels = 3 * size * size;
    let rec_len = 1 + pixels;
    // Cap the first allocation: a corrupt count must not reserve gigabytes before we notice.
    let mut images = Vec::with_capacity(n.saturating_mul(pixels).min(1 << 26));
    let mut labels = Vec::with_capacity(n.min(1 << 20));
    let mut rec = vec![0u8; rec_len];
    for i in 0..n {
        let at = src.offset;
        let got = src.fill(&mut rec)?;
        if got < rec_len {
            return Err(src.err_at(
                at,
                format!(
                    "truncated record {i} of {n}: expected {rec_len} bytes (label + 3x{size}x{size}), the file ends at byte {}",
                    at + got as u64
                ),
            ));
        }
        labels.push(rec[0]);
        images.extend_from_slice(&rec[1..]);
    }
    src.expect_end()?;
    check_labels(&src, &labels, 4, rec_len as u64, 10)?;
    Dataset::new(images, labels, 3, size, size, 10)
}

/// Every label must be a class index; the error names the label's byte offset.
fn check_labels(
    src: &Reader,
    labels: &[u8],
    first: u64,
    stride: u64,
    classes: usize,
) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= classes) {
        None => Ok(()),
        Some(i) => Err(src.err_at(
            first + i as u64 * stride,
            format!(
                "label {} of image {i} is not a class index (expected 0..{})",
                labels[i],
                classes - 1
            ),
        )),
    }
}

/// A file being read front to back that knows its byte offset, so errors can say where.
struct Reader {
    path: PathBuf,
    inner: Box<dyn Read>,
    offset: u64,
    gzip: bool,
}

impl Reader {
    fn open(path: &Path) -> Result<Reader> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut buf = BufReader::with_capacity(1 << 16, file);
        let magic = {
            use std::io::BufRead;
            let b = buf.fill_buf().map_err(|e| Error::io(path, e))?;
            b.len() >= 2 && b[0] == 0x1f && b[1] == 0x8b
        };
        let inner: Box<dyn Read> = if magic {
            Box::new(BufReader::with_capacity(1 << 16, GzDecoder::new(buf)))
        } else {
            Box::new(buf)
        };
        Ok(Reader {
            path: path.to_path_buf(),
            inner,
            offset: 0,
            gzip: magic,
        })
    }

    fn err_at(&self, offset: u64, msg: impl Into<String>) -> Error {
        let mut msg = msg.into();
        if self.gzip {
            msg.push_str(" (offsets count decompressed bytes)");
        }
        Error::format(&self.path, offset, msg)
    }

    /// Reads until `buf` is full or the file ends; returns how many bytes were read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(got, e)),
            }
        }
        self.offset += got as u64;
        Ok(got)
    }

    fn read_error(&self, got: usize, e: std::io::Error) -> Error {
        if self.gzip {
            self.err_at(
                self.offset + got as u64,
                format!("the gzip stream is corrupt or truncated: {e}"),
            )
        } else {
            Error::io(&self.path, e)
        }
    }

    /// Fills `buf` or fails naming `what` was expected.
    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let at = self.offset;
        let got = self.fill(buf)?;
        if got < buf.len() {
            return Err(self.err_at(
                at,
                format!(
                    "truncated: expected {} bytes of {what}, the file ends at byte {}",
                    buf.len(),
                    at + got as u64
                ),
            ));
        }
        Ok(())
    }

    fn u32_be(&mut self, what: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b, &format!("{what} (big-endian u32)"))?;
        Ok(u32::from_be_bytes(b))
    }

    /// Reads exactly `n` bytes into a new vector, growing it chunk by chunk so that a corrupt count
    /// cannot make us reserve more than the file holds.
    fn bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>> {
        let at = self.offset;
        let mut v = Vec::with_capacity(n.min(1 << 26));
        while v.len() < n {
            let start = v.len();
            let chunk = (n - start).min(1 << 20);
            v.resize(start + chunk, 0);
            let got = self.fill(&mut v[start..])?;
            if got < chunk {
                return Err(self.err_at(
                    at,
                    format!(
                        "truncated: expected {n} bytes of {what}, the file ends at byte {}",
                        self.offset
                    ),
                ));
            }
        }
        Ok(v)
    }

    /// The file must end here.
    fn expect_end(&mut self) -> Result<()> {
        let at = self.offset;
        let mut b = [0u8; 1];
        if self.fill(&mut b)? != 0 {
            return Err(self.err_at(at, "unexpected trailing data: expected the end of the file"));
        }
        Ok(())
    }
}
