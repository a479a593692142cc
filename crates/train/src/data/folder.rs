//! Image folders in torchvision's `ImageFolder` convention, streamed from disk.
//!
//! **Layout.** `ROOT/<class>/…/<image>`: every subfolder of `ROOT` is a class, its name the class name, classes
//! indexed in byte order of their names (torchvision sorts them the same way); images may sit at any depth
//! below their class folder. When `ROOT/train/` exists, `ROOT` holds splits instead: `train/`, and `val/`
//! and/or `test/` beside it, each a class tree; the classes are `train/`'s, and a class folder in `val/` or
//! `test/` that `train/` lacks is an error (its label would mean nothing). Imagenette as distributed
//! (`imagenette2-320/{train,val}`) is such a root. Files directly in `ROOT` (or in a split folder) are not
//! samples and are ignored, as are names starting with `.`.
//!
//! **Order.** Samples are indexed by class, then by path (byte order) within the class: the index is a
//! pure function of the tree, so the seeded order ([`crate::order`]) and `--resume` see the same samples.
//!
//! **The scan** ([`scan`]) runs before anything is compiled: it lists the tree and reads every file's
//! header (not its pixels), so a file that is not an image (by extension: [`decode::EXTENSIONS`], any case),
//! an unreadable or corrupt header, an empty class folder, or (later, [`ImageFolder::check`]) an image whose
//! size the transform cannot bring to the network's input is reported before the compile, naming the file
//! and what to change. With `skip_bad`, bad files are left out and counted instead ([`ImageFolder::skipped`]),
//! and empty class folders keep their index with no samples. Pixel data is decoded only when a batch needs
//! it; a file whose header reads but whose pixels are corrupt fails that batch with an error naming the file.
//!
//! **Memory.** The index keeps one relative path (in one string buffer), the label and the size of each image:
//! about 20 bytes plus the path's length per image. Nothing else stays in memory; see
//! [`crate::batch`] for the bound on what the producers hold.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::decode;
use crate::augment::Preprocess;
use crate::{Error, Result};

/// How to scan a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOptions {
    /// The channels images decode to (the network's input channels, 1 or 3).
    pub channels: usize,
    /// Leave out (and count) bad files and keep empty class folders, instead of failing.
    pub skip_bad: bool,
    /// Threads reading headers.
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            channels: 3,
            skip_bad: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// One image of the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// The relative path is `names[start..end]`.
    start: u32,
    end: u32,
    label: u32,
    w: u32,
    h: u32,
}

/// A file left out by a scan with `skip_bad`, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// One split of an image folder: the index of its images (see the module doc).
#[derive(Clone, Debug)]
pub struct ImageFolder {
    dir: PathBuf,
    classes: Arc<Vec<String>>,
    names: String,
    entries: Vec<Entry>,
    channels: usize,
    skipped: Vec<Skipped>,
    empty_classes: Vec<String>,
    max_file_bytes: u64,
    total_bytes: u64,
    max_pixels: u64,
}

/// The splits found under a root (see the module doc).
#[derive(Clone, Debug)]
pub struct FolderSplits {
    pub root: PathBuf,
    /// The class names, index = label.
    pub classes: Arc<Vec<String>>,
    pub train: ImageFolder,
    pub val: Option<ImageFolder>,
    pub test: Option<ImageFolder>,
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_none_or(|s| s.starts_with('.'))
}

/// The subfolders of `dir` (not hidden), sorted by name.
fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name();
        if is_hidden(&name) {
            continue;
        }
        let path = e.path();
        if path.is_dir() {
            let name = name.into_string().map_err(|n| {
                Error::data(
                    &path,
                    format!("the class folder name {n:?} is not UTF-8: rename it"),
                )
            })?;
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Every file below `dir` (hidden names skipped), as paths relative to `base`, sorted.
fn files_below(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<()> {
    let mut here = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        if is_hidden(&e.file_name()) {
            continue;
        }
        here.push(e.path());
    }
    here.sort();
    for p in here {
        if p.is_dir() {
            files_below(&p, base, out)?;
        } else {
            let rel = p.strip_prefix(base).unwrap_or(&p);
            let rel = rel
                .to_str()
                .ok_or_else(|| Error::data(&p, "the file name is not UTF-8: rename it"))?;
            out.push(rel.to_string());
        }
    }
    Ok(())
}

/// Lists and checks `root`'s splits (see the module doc); reads every image's header, nothing more.
pub fn scan(root: &Path, opts: &ScanOptions) -> Result<FolderSplits> {
    if opts.channels != 1 && opts.channels != 3 {
        return Err(Error::Invalid(format!(
            "image folders give 1 or 3 channels; the network takes {}",
            opts.channels
        )));
    }
    if !root.is_dir() {
        return Err(Error::data(root, "not a directory"));
    }
    let train_dir = root.join("train");
    let split_layout = train_dir.is_dir();
    let train_root = if split_layout {
        train_dir
    } else {
        root.to_path_buf()
    };
    let class_dirs = subdirs(&train_root)?;
    if class_dirs.is_empty() {
        return Err(Error::data(
            &train_root,
            "no class folders: an image folder holds one subfolder per class (ROOT/<class>/<image>), or train/ and val/ or test/ folders that do",
        ));
    }
    let classes: Arc<Vec<String>> = Arc::new(class_dirs.iter().map(|(n, _)| n.clone()).collect());
    let train = ImageFolder::scan_split(&train_root, &classes, opts)?;
    let other = |name: &str| -> Result<Option<ImageFolder>> {
        let dir = root.join(name);
        if split_layout && dir.is_dir() {
            Ok(Some(ImageFolder::scan_split(&dir, &classes, opts)?))
        } else {
            Ok(None)
        }
    };
    Ok(FolderSplits {
        root: root.to_path_buf(),
        val: other("val")?,
        test: other("test")?,
        classes,
        train,
    })
}

impl ImageFolder {
    /// Scans one split folder whose class folders must be among `classes`.
    pub fn scan_split(
        dir: &Path,
        classes: &Arc<Vec<String>>,
        opts: &ScanOptions,
    ) -> Result<ImageFolder> {
        let mut listed: Vec<(u32, String)> = Vec::new();
        let mut per_class = vec![0usize; classes.len()];
        for (name, path) in subdirs(dir)? {
            let Some(label) = classes.iter().position(|c| *c == name) else {
                return Err(Error::data(
                    &path,
                    format!(
                        "class folder '{name}' is not a class of the training split (whose {} classes are its folders: {}{})",
                        classes.len(),
                        classes.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                        if classes.len() > 5 { ", …" } else { "" }
                    ),
                ));
            };
            let mut files = Vec::new();
            files_below(&path, dir, &mut files)?;
            per_class[label] += files.len();
            listed.extend(files.into_iter().map(|f| (label as u32, f)));
        }
        listed.sort();

        // Headers, read in parallel; results land at each file's index.
        let results: Vec<std::result::Result<decode::Header, String>> = {
            let next = AtomicUsize::new(0);
            let slots: Vec<std::sync::Mutex<Option<std::result::Result<decode::Header, String>>>> =
                (0..listed.len())
                    .map(|_| std::sync::Mutex::new(None))
                    .collect();
            std::thread::scope(|s| {
                for _ in 0..opts.threads.clamp(1, 64) {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= listed.len() {
                            break;
                        }
                        let path = dir.join(&listed[i].1);
                        let r = if decode::has_image_extension(&path) {
                            decode::probe(&path)
                        } else {
                            Err(format!(
                                "not an image file by its name (image folders take {})",
                                decode::EXTENSIONS.join(", ")
                            ))
                        };
                        *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    });
                }
            });
            slots
                .into_iter()
                .map(|m| {
                    m.into_inner()
                        .unwrap_or_else(|p| p.into_inner())
                        .unwrap_or_else(|| Err("not scanned".into()))
                })
                .collect()
        };

        let mut folder = ImageFolder {
            dir: dir.to_path_buf(),
            classes: classes.clone(),
            names: String::new(),
            entries: Vec::with_capacity(listed.len()),
            channels: opts.channels,
            skipped: Vec::new(),
            empty_classes: Vec::new(),
            max_file_bytes: 0,
            total_bytes: 0,
            max_pixels: 0,
        };
        let mut good = vec![0usize; classes.len()];
        let bad_count = results.iter().filter(|r| r.is_err()).count();
        for ((label, rel), r) in listed.into_iter().zip(results) {
            match r {
                Ok(hd) => {
                    let start = folder.names.len();
                    folder.names.push_str(&rel);
                    let (start, end) = (start as u32, folder.names.len() as u32);
                    if folder.names.len() > u32::MAX as usize {
                        return Err(Error::data(
                            dir,
                            "the relative paths of this folder exceed 4 GiB",
                        ));
                    }
                    folder.entries.push(Entry {
                        start,
                        end,
                        label,
                        w: hd.w as u32,
                        h: hd.h as u32,
                    });
                    good[label as usize] += 1;
                    folder.max_file_bytes = folder.max_file_bytes.max(hd.bytes);
                    folder.total_bytes += hd.bytes;
                    folder.max_pixels = folder.max_pixels.max(hd.w as u64 * hd.h as u64);
                }
                Err(reason) => {
                    let path = dir.join(&rel);
                    if !opts.skip_bad {
                        let others = bad_count - 1;
                        return Err(Error::data(
                            &path,
                            format!(
                                "{reason}{}; fix or remove it (or pass --skip-bad to leave bad files out and count them)",
                                if others > 0 {
                                    format!(" ({others} more files in {} cannot be used either)", dir.display())
                                } else {
                                    String::new()
                                }
                            ),
                        ));
                    }
                    folder.skipped.push(Skipped { path, reason });
                }
            }
        }
        for (label, n) in good.iter().enumerate() {
            let class_dir = dir.join(&classes[label]);
            if *n == 0 && (class_dir.is_dir() || per_class[label] > 0) {
                if !opts.skip_bad {
                    return Err(Error::data(
                        &class_dir,
                        format!(
                            "class folder '{}' holds no usable image{}: add images or remove the folder (or pass --skip-bad to keep it as an empty class)",
                            classes[label],
                            if per_class[label] > 0 { format!(" ({} files, none readable)", per_class[label]) } else { String::new() }
                        ),
                    ));
                }
                folder.empty_classes.push(classes[label].clone());
            }
        }
        if folder.entries.is_empty() {
            return Err(Error::data(dir, "no usable images in any class folder"));
        }
        Ok(folder)
    }

    /// The folder this split was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The class names, index = label.
    pub fn classes(&self) -> &Arc<Vec<String>> {
        &self.classes
    }

    /// Images in the split.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The channels images decode to.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The path of image `i`.
    pub fn path(&self, i: usize) -> PathBuf {
        let e = &self.entries[i];
        self.dir.join(&self.names[e.start as usize..e.end as usize])
    }

    /// The label of image `i`.
    pub fn label(&self, i: usize) -> u32 {
        self.entries[i].label
    }

    /// The (width, height) of image `i`, from its header.
    pub fn size(&self, i: usize) -> (usize, usize) {
        let e = &self.entries[i];
        (e.w as usize, e.h as usize)
    }

    /// Files left out by a `skip_bad` scan.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Class folders without a usable image (kept, with no samples, by a `skip_bad` scan).
    pub fn empty_classes(&self) -> &[String] {
        &self.empty_classes
    }

    /// The largest file, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// The bytes of all images in the split.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The most pixels in one image.
    pub fn max_pixels(&self) -> u64 {
        self.max_pixels
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut n = vec![0; self.classes.len()];
        for e in &self.entries {
            n[e.label as usize] += 1;
        }
        n
    }

    /// Checks every image's size against `pre` (from the headers; no file is read): the first image
    /// whose size no transform of `pre` resolves is an error naming it, with the count of the others.
    pub fn check(&self, pre: &Preprocess) -> Result<()> {
        pre.check_channels(self.channels)?;
        let mut bad = (0..self.entries.len()).filter_map(|i| {
            let (w, h) = self.size(i);
            pre.fits(h, w).err().map(|e| (i, e))
        });
        if let Some((i, e)) = bad.next() {
            let more = bad.count();
            return Err(Error::data(
                &self.path(i),
                format!(
                    "{e}{}",
                    if more > 0 {
                        format!(" ({more} more images of this split do not fit either)")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Decodes image `i` to the split's channels (HWC bytes).
    pub fn decode(&self, i: usize) -> Result<decode::Pixels> {
        let path = self.path(i);
        let px = decode::decode_file(&path, self.channels).map_err(|e| Error::data(&path, e))?;
        let (w, h) = self.size(i);
        if (px.w, px.h) != (w, h) {
            return Err(Error::data(
                &path,
                format!(
                    "decoded as {}x{} but its header said {w}x{h} when the folder was scanned (was the file changed?)",
                    px.w, px.h
                ),
            ));
        }
        Ok(px)
    }
}
