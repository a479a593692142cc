//! [`Source`]: what the batch producers read samples from, whatever holds them.
//!
//! A source is a list of `len()` labelled samples addressed by index; the producers ([`crate::batch`])
//! ask it to write sample `i`, preprocessed, into a slice of the batch. Three kinds:
//! - [`Source::Memory`]: a [`Dataset`] read whole (the built-in formats: IDX, CIFAR-10 binary, Imagenette
//!   binary), `u8` CHW;
//! - [`Source::Folder`]: an [`ImageFolder`] split, each file read and decoded when its batch is built;
//! - [`Source::Arrays`]: an [`ArraySet`] split, each image read at its file offset when needed;
//!
//! and [`Source::Subset`]: some samples of another source, in a given order (a validation split held
//! out of a training split: `run::feed::split_per_class`).
//!
//! Decoding, resizing, cropping, flipping and normalising all happen on the producer thread that builds the
//! batch, so they run `threads` wide and ahead of the training step. A sample depends only on (source,
//! preprocessing, seed, epoch, position), never on the thread or on what was read before.

use std::path::Path;
use std::sync::Arc;

use super::arrays::ArraySet;
use super::decode;
use super::folder::ImageFolder;
use super::Dataset;
use crate::augment::{Pix, Preprocess, View};
use crate::order::SplitMix64;
use crate::{Error, Result};

/// Labelled samples the batch producers read (see the module doc).
#[derive(Clone, Debug)]
pub enum Source {
    Memory(Arc<Dataset>),
    Folder(Arc<ImageFolder>),
    Arrays(Arc<ArraySet>),
    Subset(Arc<Subset>),
}

/// Samples `indices[0], indices[1], …` of `source`, as samples `0, 1, …`.
#[derive(Clone, Debug)]
pub struct Subset {
    pub source: Source,
    pub indices: Vec<usize>,
}

impl From<Arc<Dataset>> for Source {
    fn from(d: Arc<Dataset>) -> Source {
        Source::Memory(d)
    }
}

impl From<&Arc<Dataset>> for Source {
    fn from(d: &Arc<Dataset>) -> Source {
        Source::Memory(d.clone())
    }
}

impl From<Dataset> for Source {
    fn from(d: Dataset) -> Source {
        Source::Memory(Arc::new(d))
    }
}

impl From<ImageFolder> for Source {
    fn from(f: ImageFolder) -> Source {
        Source::Folder(Arc::new(f))
    }
}

impl From<ArraySet> for Source {
    fn from(a: ArraySet) -> Source {
        Source::Arrays(Arc::new(a))
    }
}

impl From<&Source> for Source {
    fn from(s: &Source) -> Source {
        s.clone()
    }
}

impl Source {
    /// Samples in the source.
    pub fn len(&self) -> usize {
        match self {
            Source::Memory(d) => d.len(),
            Source::Folder(f) => f.len(),
            Source::Arrays(a) => a.len(),
            Source::Subset(s) => s.indices.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of sample `i`.
    pub fn label(&self, i: usize) -> i32 {
        match self {
            Source::Memory(d) => d.labels[i] as i32,
            Source::Folder(f) => f.label(i) as i32,
            Source::Arrays(a) => a.label(i) as i32,
            Source::Subset(s) => s.source.label(s.indices[i]),
        }
    }

    /// The channels of every sample.
    pub fn channels(&self) -> usize {
        match self {
            Source::Memory(d) => d.c,
            Source::Folder(f) => f.channels(),
            Source::Arrays(a) => a.shape().0,
            Source::Subset(s) => s.source.channels(),
        }
    }

    /// The class count the source needs: its class list (folders), its declared count (built-ins), or
    /// one more than its largest label (arrays).
    pub fn classes(&self) -> usize {
        match self {
            Source::Memory(d) => d.classes,
            Source::Folder(f) => f.classes().len(),
            Source::Arrays(a) => a.label_bound(),
            Source::Subset(s) => s.source.classes(),
        }
    }

    /// The class names (index = label), where the data has them (image folders).
    pub fn class_names(&self) -> Option<&[String]> {
        match self {
            Source::Folder(f) => Some(f.classes()),
            Source::Subset(s) => s.source.class_names(),
            Source::Memory(_) | Source::Arrays(_) => None,
        }
    }

    /// Where the samples come from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Memory(d) => format!("{} images of {}x{}x{} in memory", d.len(), d.c, d.h, d.w),
            Source::Folder(f) => format!(
                "{} images in {} ({} classes)",
                f.len(),
                f.dir().display(),
                f.classes().len()
            ),
            Source::Arrays(a) => {
                let (c, h, w) = a.shape();
                format!(
                    "{} {} images of {c}x{h}x{w} in {}",
                    a.len(),
                    if a.is_f32() { "f32" } else { "u8" },
                    a.file().display()
                )
            }
            Source::Subset(s) => format!("{} of the {}", s.indices.len(), s.source.describe()),
        }
    }

    /// The bytes one producer thread holds while preparing one sample (the file or stored image, the
    /// decoded pixels, the resampled image), at most; see the memory bound in [`crate::batch`].
    pub fn sample_scratch_bytes(&self, pre: &Preprocess) -> u64 {
        let c = self.channels() as u64;
        let out = c * (pre.out_h * pre.out_w) as u64;
        match self {
            Source::Memory(_) => out * 4,
            Source::Folder(f) => f.max_file_bytes() + 2 * f.max_pixels() * c + out * 5,
            Source::Arrays(a) => {
                2 * a.image_bytes() as u64
                    + (a.shape().0 * a.shape().1 * a.shape().2) as u64 * 4
                    + out * 4
            }
            Source::Subset(s) => s.source.sample_scratch_bytes(pre),
        }
    }

    /// Checks, before anything runs, that `pre` can make every sample (sizes, channels, normalisation).
    pub fn check(&self, pre: &Preprocess) -> Result<()> {
        match self {
            Source::Memory(d) => pre.check(d),
            Source::Folder(f) => f.check(pre),
            Source::Arrays(a) => a.check(pre),
            Source::Subset(s) => s.source.check(pre),
        }
    }

    /// Checks that every label is a class index of a network with `classes` classes.
    pub fn check_classes(&self, classes: usize) -> Result<()> {
        match self {
            Source::Arrays(a) => a.check_labels(classes),
            Source::Subset(s) => s.source.check_classes(classes),
            Source::Memory(_) | Source::Folder(_) if self.classes() <= classes => Ok(()),
            Source::Memory(_) | Source::Folder(_) => Err(Error::Invalid(format!(
                "the data has {} classes ({}), the network {classes}: give the network {} classes",
                self.classes(),
                self.describe(),
                self.classes()
            ))),
        }
    }

    /// Writes sample `i`, preprocessed by `pre` with the draws of `rng`, into `out` (C·OH·OW floats).
    /// `tables` is `pre.tables(channels)`.
    pub(crate) fn write(
        &self,
        i: usize,
        pre: &Preprocess,
        tables: &[[f32; 256]],
        rng: &mut SplitMix64,
        out: &mut [f32],
    ) -> Result<()> {
        match self {
            Source::Memory(d) => pre
                .apply(
                    View {
                        c: d.c,
                        h: d.h,
                        w: d.w,
                        hwc: false,
                        pix: Pix::U8(d.image(i)),
                    },
                    tables,
                    rng,
                    out,
                )
                .map_err(|e| Error::Invalid(format!("image {i}: {e}"))),
            Source::Folder(f) => {
                let px = f.decode(i)?;
                pre.apply(pixels_view(&px), tables, rng, out)
                    .map_err(|e| Error::data(&f.path(i), e))
            }
            Source::Arrays(a) => a.write(i, pre, tables, rng, out),
            Source::Subset(s) => s.source.write(s.indices[i], pre, tables, rng, out),
        }
    }
}

fn pixels_view(px: &decode::Pixels) -> View<'_> {
    View {
        c: px.c,
        h: px.h,
        w: px.w,
        hwc: true,
        pix: Pix::U8(&px.data),
    }
}

/// Loads one image file as a network input of `channels` channels: decoded, converted to the channels,
/// and preprocessed by `pre` (use an evaluation preprocessing: centre crop, no flip) into `f32` CHW,
/// `channels·out_h·out_w` floats. This is what evaluation does to each image of a folder.
pub fn load_image(path: &Path, channels: usize, pre: &Preprocess) -> Result<Vec<f32>> {
    pre.check_channels(channels)?;
    let px = decode::decode_file(path, channels).map_err(|e| Error::data(path, e))?;
    let mut out = vec![0f32; pre.out_len(channels)];
    let mut rng = SplitMix64::new(0);
    pre.apply(pixels_view(&px), &pre.tables(channels), &mut rng, &mut out)
        .map_err(|e| Error::data(path, e))?;
    Ok(out)
}
