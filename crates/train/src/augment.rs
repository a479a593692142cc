//! Preprocessing and augmentation: a stored image becomes an `f32` CHW network input.
//!
//! A stored image is C×H×W bytes (`u8`, the built-in datasets, decoded files, `u8` arrays) or floats
//! (`f32` arrays); the output is C×OH×OW. Per sample, in this order:
//! 1. **Geometry** ([`Fit`]), drawing from the sample's stream ([`crate::order::augment_rng`]):
//!    - [`Fit::Crop`] (the built-in datasets, `crop-flip` without `--resize`): needs H ≥ OH and W ≥ OW.
//!      With `random_crop`, two draws: `dy = below(H − OH + 1)`, then `dx = below(W − OW + 1)`; otherwise
//!      the center, `dy = ⌊(H − OH)/2⌋`, `dx = ⌊(W − OW)/2⌋` (zero when the sizes agree).
//!    - [`Fit::Exact`]: the image must be OH×OW; no draws. Any other size is an error naming the size and
//!      what to change (never a silent crop).
//!    - [`Fit::ResizeShorter`]`(S)`: the image is resized so that its shorter side is `S` and its longer side
//!      `⌊S·long/short⌋` (H′×W′, needs H′ ≥ OH and W′ ≥ OW), then cropped as `Crop` does in the resized
//!      image (same draws). It is computed as one resampling of the source rectangle that the crop covers,
//!      `(dy·H/H′, dx·W/W′, OH·H/H′, OW·W/W′)`; when H′×W′ = H×W nothing is resampled.
//!    - [`Fit::RandomResized`] (`scale = [s0, s1]`, `ratio = [r0, r1]`; torchvision's
//!      `RandomResizedCrop` algorithm): with `A = H·W`, up to 10 tries of `t = A·(s0 + (s1 − s0)·u)`,
//!      `a = exp(ln r0 + (ln r1 − ln r0)·u)` (`u` = [`SplitMix64::uniform`], one draw each),
//!      `cw = round(√(t·a))`, `ch = round(√(t/a))`; the first try with `1 ≤ cw ≤ W`, `1 ≤ ch ≤ H` draws
//!      `top = below(H − ch + 1)`, `left = below(W − cw + 1)`. If none fits: the centered crop of the whole
//!      image clamped to the ratio range (`W/H < r0`: `cw = W`, `ch = round(W/r0)`; `W/H > r1`: `ch = H`,
//!      `cw = round(H·r1)`; else the whole image). The rectangle is resampled to OH×OW.
//!
//!    Resampling is bilinear with a support widened by the scale factor when shrinking (antialiased, as
//!    Pillow's `BILINEAR` that torchvision uses), by `fast_image_resize`, on 8-bit or `f32` samples.
//! 2. **Flip**: with `hflip`, one more draw; the image is mirrored left–right when its top bit is 1.
//! 3. **Value**: `u8` samples `v` give `(v/255 − mean[c]) / std[c]` in `f32` (`v/255` without mean/std);
//!    `f32` samples are taken as they are (already scaled): `(v − mean[c]) / std[c]`, or `v`.
//!
//! Draws happen in that order and only for the enabled operations, so the built-in datasets' batches are
//! exactly those of earlier versions (the JAX export reproduces them).

use std::cell::RefCell;

use crate::data::Dataset;
use crate::data::DatasetKind;
use crate::order::SplitMix64;
use crate::{Error, Result};

pub use spec::{Augment, CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD};

/// torchvision's `RandomResizedCrop` defaults.
pub const RRC_SCALE: [f32; 2] = [0.08, 1.0];
pub const RRC_RATIO: [f32; 2] = [3.0 / 4.0, 4.0 / 3.0];
/// The tries of the random-resized crop before its fallback.
const RRC_TRIES: usize = 10;

/// How a stored image of any size is brought to the output size (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub enum Fit {
    /// Crop from images at least as large (centre, or random with `random_crop`).
    Crop,
    /// The image must have the output size.
    Exact,
    /// Resize the shorter side to this many pixels, then crop as `Crop`.
    ResizeShorter(usize),
    /// torchvision's random-resized crop (training only).
    RandomResized { scale: [f32; 2], ratio: [f32; 2] },
}

/// The shorter side evaluation resizes to after random-resized-crop training: the output's longer side
/// times 256/224, rounded (256 for 224, torchvision's ImageNet evaluation).
pub fn eval_resize_for(out_h: usize, out_w: usize) -> usize {
    (out_h.max(out_w) as f64 * 256.0 / 224.0).round() as usize
}

/// How a stored image becomes a network input (see the module doc for the exact rules).
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// Output height and width.
    pub out_h: usize,
    pub out_w: usize,
    /// Per-channel mean and std applied after `/255`; both empty for plain `x/255`.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Random crop (training) instead of the center crop (`Fit::Crop` and `Fit::ResizeShorter`).
    pub random_crop: bool,
    /// Random horizontal flip with probability 1/2.
    pub hflip: bool,
    /// How images of another size reach the output size.
    pub fit: Fit,
}

/// Where the output comes from in the stored image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Geom {
    /// The OH×OW window at (dy, dx), no resampling.
    Crop { dy: usize, dx: usize },
    /// The rectangle (top, left, height, width), in source pixels, resampled to OH×OW.
    Resample {
        top: f64,
        left: f64,
        height: f64,
        width: f64,
    },
}

/// Stored samples: bytes or floats.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pix<'a> {
    U8(&'a [u8]),
    F32(&'a [f32]),
}

/// One stored image: C×H×W, planar (CHW) or interleaved (HWC, 8-bit with 1 or 3 channels).
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a> {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub hwc: bool,
    pub pix: Pix<'a>,
}

thread_local! {
    static RESIZER: RefCell<fast_image_resize::Resizer> = RefCell::new(fast_image_resize::Resizer::new());
}

impl Preprocess {
    /// `x/255`, no crop, no flip, at the stored size.
    pub fn plain(h: usize, w: usize) -> Preprocess {
        Preprocess {
            out_h: h,
            out_w: w,
            mean: vec![],
            std: vec![],
            random_crop: false,
            hflip: false,
            fit: Fit::Crop,
        }
    }

    /// The built-in datasets' preprocessing (lean4-mlir's): MNIST-like `x/255`, no augmentation;
    /// CIFAR-10 `x/255`, flip when training with `augment`; Imagenette ImageNet mean/std, 224×224
    /// output, random crop and flip when training with `augment`, else the center crop. It is
    /// [`Preprocess::for_config`] of the dataset's recipe, so there is one definition of each.
    pub fn for_kind(kind: DatasetKind, training: bool, augment: bool) -> Preprocess {
        let dataset = kind.dataset();
        let config = spec::RunConfig {
            dataset,
            augment: if augment {
                dataset.augmentation()
            } else {
                Augment::None
            },
            ..spec::RunConfig::default()
        };
        #[allow(
            clippy::expect_used,
            reason = "a DatasetKind is one of the built-in datasets, each with its input size"
        )]
        let [_, h, w] = dataset
            .input()
            .expect("a built-in dataset has an input size");
        Preprocess::for_config(&config, h, w, training)
    }

    /// The preprocessing of a run's training (`training`) or evaluation batches for a network input
    /// of `out_h`×`out_w`: [`Preprocess::for_images`] of the run's augmentation and `resize`, then its
    /// normalisation ([`spec::RunConfig::normalization`]). The built-in datasets store images at a
    /// fixed size and define their input as a crop of it (Imagenette: 256 → 224), so where the
    /// table says `Exact` they take `Crop` (the centre, or random with `crop-flip`); whether the
    /// network's input is the dataset's is checked where the data is loaded
    /// (`run::feed::load_data`), so that this is never a silent crop.
    pub fn for_config(
        config: &spec::RunConfig,
        out_h: usize,
        out_w: usize,
        training: bool,
    ) -> Preprocess {
        let mut p = Preprocess::for_images(config.augment, out_h, out_w, config.resize, training);
        if config.dataset.is_built_in() && p.fit == Fit::Exact {
            p.fit = Fit::Crop;
        }
        let n = config.normalization();
        p.with_mean_std(&n.mean, &n.std)
    }

    /// What `netspec predict` does to an image of any size with this (evaluation) preprocessing: an
    /// image the preprocessing takes as it is stays so; other sizes have their shorter side resized
    /// (to the `resize` of this preprocessing, else the input's longer side) and are centre-cropped,
    /// instead of being refused. An image of exactly the input size is not resampled either way.
    pub fn any_size(&self) -> Preprocess {
        let fit = match &self.fit {
            Fit::Exact | Fit::Crop => Fit::ResizeShorter(self.out_h.max(self.out_w)),
            Fit::ResizeShorter(s) => Fit::ResizeShorter(*s),
            Fit::RandomResized { .. } => {
                Fit::ResizeShorter(eval_resize_for(self.out_h, self.out_w))
            }
        };
        Preprocess {
            fit,
            random_crop: false,
            hflip: false,
            ..self.clone()
        }
    }

    /// The preprocessing of image folders and arrays for an output of `out_h`×`out_w`:
    ///
    /// | `augment` | training | evaluation |
    /// |---|---|---|
    /// | `none` | `Exact` (with `resize`: `ResizeShorter`, centre crop) | the same |
    /// | `flip` | as `none`, plus the flip | as `none` |
    /// | `crop-flip` | random crop (`Crop`, or `ResizeShorter` with `resize`), flip | centre crop |
    /// | `random-resized-crop` | `RandomResized` (torchvision's defaults), flip | `ResizeShorter(resize or` [`eval_resize_for`]`)`, centre crop |
    ///
    /// Values are `x/255`; add a normalisation with [`Preprocess::with_mean_std`].
    pub fn for_images(
        augment: Augment,
        out_h: usize,
        out_w: usize,
        resize: Option<usize>,
        training: bool,
    ) -> Preprocess {
        let sized = match resize {
            Some(s) => Fit::ResizeShorter(s),
            None => Fit::Exact,
        };
        let (fit, random_crop, hflip) = match (augment, training) {
            (Augment::None, _) | (Augment::Flip, false) => (sized, false, false),
            (Augment::Flip, true) => (sized, false, true),
            (Augment::CropFlip, _) => (
                match resize {
                    Some(s) => Fit::ResizeShorter(s),
                    None => Fit::Crop,
                },
                training,
                training,
            ),
            (Augment::RandomResizedCrop, true) => (
                Fit::RandomResized {
                    scale: RRC_SCALE,
                    ratio: RRC_RATIO,
                },
                false,
                true,
            ),
            (Augment::RandomResizedCrop, false) => (
                Fit::ResizeShorter(resize.unwrap_or_else(|| eval_resize_for(out_h, out_w))),
                false,
                false,
            ),
        };
        Preprocess {
            out_h,
            out_w,
            mean: vec![],
            std: vec![],
            random_crop,
            hflip,
            fit,
        }
    }

    /// The same with a per-channel standardisation after `/255`.
    pub fn with_mean_std(self, mean: &[f32], std: &[f32]) -> Preprocess {
        Preprocess {
            mean: mean.to_vec(),
            std: std.to_vec(),
            ..self
        }
    }

    /// Checks that this preprocessing fits the dataset's images.
    pub fn check(&self, ds: &Dataset) -> Result<()> {
        self.check_channels(ds.c)?;
        self.fits(ds.h, ds.w)
            .map_err(|e| Error::Invalid(format!("preprocess: {e}")))
    }

    /// Checks the output size, the normalisation against `c` channels and the fit's parameters.
    pub fn check_channels(&self, c: usize) -> Result<()> {
        if self.out_h == 0 || self.out_w == 0 {
            return Err(Error::Invalid(format!(
                "preprocess: output {}x{} is empty",
                self.out_h, self.out_w
            )));
        }
        if self.mean.len() != self.std.len() || !(self.mean.is_empty() || self.mean.len() == c) {
            return Err(Error::Invalid(format!(
                "preprocess: {} means and {} stds for {} channels (need both empty or one per channel)",
                self.mean.len(),
                self.std.len(),
                c
            )));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Invalid(format!(
                "preprocess: std {s} is not a positive number"
            )));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(Error::Invalid(format!(
                "preprocess: mean {m} is not a number"
            )));
        }
        match &self.fit {
            Fit::Crop | Fit::Exact => Ok(()),
            Fit::ResizeShorter(s) if *s >= self.out_h.min(self.out_w) => Ok(()),
            Fit::ResizeShorter(s) => Err(Error::Invalid(format!(
                "preprocess: resizing the shorter side to {s} cannot cover the {}x{} output (need at least {})",
                self.out_w,
                self.out_h,
                self.out_h.max(self.out_w)
            ))),
            Fit::RandomResized { scale, ratio } => {
                // Written as "valid" so that NaN is invalid.
                let scale_ok = scale[0] > 0.0 && scale[0] <= scale[1] && scale[1] <= 1.0;
                let ratio_ok = ratio[0] > 0.0 && ratio[0] <= ratio[1] && ratio[1].is_finite();
                if !(scale_ok && ratio_ok) {
                    return Err(Error::Invalid(format!(
                        "preprocess: random-resized crop scale {scale:?} must lie in (0, 1] in increasing order and ratio {ratio:?} be positive and increasing"
                    )));
                }
                Ok(())
            }
        }
    }

    /// Whether an `h`×`w` image can become the output; the error says why not and what to change.
    pub fn fits(&self, h: usize, w: usize) -> std::result::Result<(), String> {
        let (oh, ow) = (self.out_h, self.out_w);
        match &self.fit {
            Fit::Crop if h >= oh && w >= ow => Ok(()),
            Fit::Crop => Err(format!(
                "the image is {w}x{h} (W x H), smaller than the model's {ow}x{oh} input: resize the images or use --resize"
            )),
            Fit::Exact if h == oh && w == ow => Ok(()),
            Fit::Exact => Err(format!(
                "the image is {w}x{h} (W x H) and the model takes {ow}x{oh}, and no transform was asked to change the size: pass --resize {} (shorter side, then the centre crop), --augment crop-flip or random-resized-crop, or resize the images",
                oh.max(ow)
            )),
            Fit::ResizeShorter(s) => {
                let (rh, rw) = resized(h, w, *s);
                if rh >= oh && rw >= ow {
                    Ok(())
                } else {
                    Err(format!(
                        "the image is {w}x{h} (W x H); with its shorter side resized to {s} it is {rw}x{rh}, smaller than the model's {ow}x{oh} input: use a larger --resize"
                    ))
                }
            }
            Fit::RandomResized { .. } => Ok(()),
        }
    }

    /// Floats per output image.
    pub fn out_len(&self, c: usize) -> usize {
        c * self.out_h * self.out_w
    }

    /// Per-channel lookup tables from byte to output value (the exact `f32` formula, precomputed).
    pub(crate) fn tables(&self, c: usize) -> Vec<[f32; 256]> {
        (0..c)
            .map(|ch| {
                let mut t = [0f32; 256];
                for (v, slot) in t.iter_mut().enumerate() {
                    let x = v as f32 / 255.0;
                    *slot = if self.mean.is_empty() {
                        x
                    } else {
                        (x - self.mean[ch]) / self.std[ch]
                    };
                }
                t
            })
            .collect()
    }

    /// The geometry and the flip of one sample of `h`×`w`: all the draws it makes, in order.
    pub(crate) fn draw(
        &self,
        h: usize,
        w: usize,
        rng: &mut SplitMix64,
    ) -> std::result::Result<(Geom, bool), String> {
        self.fits(h, w)?;
        let (oh, ow) = (self.out_h, self.out_w);
        let crop = |h: usize, w: usize, rng: &mut SplitMix64| {
            if self.random_crop {
                let dy = rng.below((h - oh + 1) as u64) as usize;
                let dx = rng.below((w - ow + 1) as u64) as usize;
                (dy, dx)
            } else {
                ((h - oh) / 2, (w - ow) / 2)
            }
        };
        let geom = match &self.fit {
            Fit::Crop | Fit::Exact => {
                let (dy, dx) = crop(h, w, rng);
                Geom::Crop { dy, dx }
            }
            Fit::ResizeShorter(s) => {
                let (rh, rw) = resized(h, w, *s);
                let (dy, dx) = crop(rh, rw, rng);
                if (rh, rw) == (h, w) {
                    Geom::Crop { dy, dx }
                } else {
                    let (fy, fx) = (h as f64 / rh as f64, w as f64 / rw as f64);
                    Geom::Resample {
                        top: dy as f64 * fy,
                        left: dx as f64 * fx,
                        height: oh as f64 * fy,
                        width: ow as f64 * fx,
                    }
                }
            }
            Fit::RandomResized { scale, ratio } => {
                let (top, left, ch, cw) = random_resized(h, w, *scale, *ratio, rng);
                if (ch, cw) == (oh, ow) {
                    Geom::Crop { dy: top, dx: left }
                } else {
                    Geom::Resample {
                        top: top as f64,
                        left: left as f64,
                        height: ch as f64,
                        width: cw as f64,
                    }
                }
            }
        };
        let flip = self.hflip && rng.coin();
        Ok((geom, flip))
    }

    /// Preprocesses one stored image into `out` (C·OH·OW floats), drawing from `rng`. `tables` comes
    /// from [`Preprocess::tables`]; [`Preprocess::check_channels`] must have passed for `v.c`.
    pub(crate) fn apply(
        &self,
        v: View<'_>,
        tables: &[[f32; 256]],
        rng: &mut SplitMix64,
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        let (geom, flip) = self.draw(v.h, v.w, rng)?;
        match geom {
            Geom::Crop { dy, dx } => {
                self.write(v, dy, dx, flip, tables, out);
                Ok(())
            }
            Geom::Resample {
                top,
                left,
                height,
                width,
            } => {
                let (oh, ow) = (self.out_h, self.out_w);
                match resample(v, (top, left, height, width), (oh, ow))? {
                    Resampled::U8(buf) => self.write(
                        View {
                            h: oh,
                            w: ow,
                            pix: Pix::U8(&buf),
                            ..v
                        },
                        0,
                        0,
                        flip,
                        tables,
                        out,
                    ),
                    Resampled::F32(buf) => self.write(
                        View {
                            h: oh,
                            w: ow,
                            pix: Pix::F32(&buf),
                            ..v
                        },
                        0,
                        0,
                        flip,
                        tables,
                        out,
                    ),
                }
                Ok(())
            }
        }
    }

    /// Writes the OH×OW window at (dy, dx) of `v`, mirrored if `flip`, as output values.
    fn write(
        &self,
        v: View<'_>,
        dy: usize,
        dx: usize,
        flip: bool,
        tables: &[[f32; 256]],
        out: &mut [f32],
    ) {
        let (oh, ow) = (self.out_h, self.out_w);
        let (c, h, w) = (v.c, v.h, v.w);
        for ch in 0..c {
            for y in 0..oh {
                let dst = &mut out[(ch * oh + y) * ow..][..ow];
                match (v.pix, v.hwc) {
                    (Pix::U8(src), false) => {
                        let t = &tables[ch];
                        let row = &src[(ch * h + dy + y) * w + dx..][..ow];
                        if flip {
                            for (d, s) in dst.iter_mut().zip(row.iter().rev()) {
                                *d = t[*s as usize];
                            }
                        } else {
                            for (d, s) in dst.iter_mut().zip(row) {
                                *d = t[*s as usize];
                            }
                        }
                    }
                    (Pix::U8(src), true) => {
                        let t = &tables[ch];
                        let row = &src[((dy + y) * w + dx) * c..][..ow * c];
                        let px = row.chunks_exact(c).map(|p| p[ch]);
                        if flip {
                            for (d, s) in dst.iter_mut().zip(px.rev()) {
                                *d = t[s as usize];
                            }
                        } else {
                            for (d, s) in dst.iter_mut().zip(px) {
                                *d = t[s as usize];
                            }
                        }
                    }
                    (Pix::F32(src), hwc) => {
                        let (m, s) = match self.mean.is_empty() {
                            true => (0.0, 1.0),
                            false => (self.mean[ch], self.std[ch]),
                        };
                        let norm = |x: f32| if self.mean.is_empty() { x } else { (x - m) / s };
                        for (x, d) in dst.iter_mut().enumerate() {
                            let sx = dx + if flip { ow - 1 - x } else { x };
                            let at = if hwc {
                                ((dy + y) * w + sx) * c + ch
                            } else {
                                (ch * h + dy + y) * w + sx
                            };
                            *d = norm(src[at]);
                        }
                    }
                }
            }
        }
    }

    /// Preprocesses image `index` of `ds` as the sample at `position` of `epoch` with `seed`
    /// (the stream of [`crate::order::augment_rng`]). Convenience for tests and single images.
    pub fn image(
        &self,
        ds: &Dataset,
        index: usize,
        seed: u64,
        epoch: u64,
        position: u64,
    ) -> Result<Vec<f32>> {
        self.check(ds)?;
        if index >= ds.len() {
            return Err(Error::Invalid(format!(
                "image {index} is out of range (dataset has {})",
                ds.len()
            )));
        }
        let mut out = vec![0f32; self.out_len(ds.c)];
        let mut rng = crate::order::augment_rng(seed, epoch, position);
        self.apply(
            View {
                c: ds.c,
                h: ds.h,
                w: ds.w,
                hwc: false,
                pix: Pix::U8(ds.image(index)),
            },
            &self.tables(ds.c),
            &mut rng,
            &mut out,
        )
        .map_err(Error::Invalid)?;
        Ok(out)
    }
}

/// The size (H′, W′) of an `h`×`w` image whose shorter side is resized to `s`.
pub fn resized(h: usize, w: usize, s: usize) -> (usize, usize) {
    if h <= w {
        (s, (s as u64 * w as u64 / h as u64) as usize)
    } else {
        ((s as u64 * h as u64 / w as u64) as usize, s)
    }
}

/// The random-resized crop's rectangle (top, left, height, width) in an `h`×`w` image (module doc).
fn random_resized(
    h: usize,
    w: usize,
    scale: [f32; 2],
    ratio: [f32; 2],
    rng: &mut SplitMix64,
) -> (usize, usize, usize, usize) {
    let area = (h * w) as f64;
    let (s0, s1) = (scale[0] as f64, scale[1] as f64);
    let (l0, l1) = ((ratio[0] as f64).ln(), (ratio[1] as f64).ln());
    for _ in 0..RRC_TRIES {
        let target = area * (s0 + (s1 - s0) * rng.uniform());
        let aspect = (l0 + (l1 - l0) * rng.uniform()).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw >= 1.0 && ch >= 1.0 && cw <= w as f64 && ch <= h as f64 {
            let (cw, ch) = (cw as usize, ch as usize);
            let top = rng.below((h - ch + 1) as u64) as usize;
            let left = rng.below((w - cw + 1) as u64) as usize;
            return (top, left, ch, cw);
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (ch, cw) = if in_ratio < ratio[0] as f64 {
        (
            ((w as f64 / ratio[0] as f64).round() as usize).clamp(1, h),
            w,
        )
    } else if in_ratio > ratio[1] as f64 {
        (
            h,
            ((h as f64 * ratio[1] as f64).round() as usize).clamp(1, w),
        )
    } else {
        (h, w)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

enum Resampled {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

/// Resamples the rectangle `(top, left, height, width)` of `v` to `oh`×`ow`, in `v`'s layout.
fn resample(
    v: View<'_>,
    (top, left, height, width): (f64, f64, f64, f64),
    (oh, ow): (usize, usize),
) -> std::result::Result<Resampled, String> {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions};
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(left, top, width, height);
    let fail = |e: &dyn std::fmt::Display| format!("resampling failed: {e}");
    let (c, h, w) = (v.c, v.h, v.w);
    let one = |src: &[u8], ty: PixelType| -> std::result::Result<Vec<u8>, String> {
        let src = ImageRef::new(w as u32, h as u32, src, ty).map_err(|e| fail(&e))?;
        let mut dst = Image::new(ow as u32, oh as u32, ty);
        RESIZER
            .with(|r| r.borrow_mut().resize(&src, &mut dst, &opts))
            .map_err(|e| fail(&e))?;
        Ok(dst.into_vec())
    };
    match (v.pix, v.hwc, c) {
        (Pix::U8(src), true, 1) => Ok(Resampled::U8(one(src, PixelType::U8)?)),
        (Pix::U8(src), true, 3) => Ok(Resampled::U8(one(src, PixelType::U8x3)?)),
        (Pix::U8(src), false, _) => {
            let mut out = Vec::with_capacity(c * oh * ow);
            for plane in src.chunks_exact(h * w).take(c) {
                out.extend(one(plane, PixelType::U8)?);
            }
            Ok(Resampled::U8(out))
        }
        (Pix::F32(src), false, _) => {
            let mut out = Vec::with_capacity(c * oh * ow);
            for plane in src.chunks_exact(h * w).take(c) {
                let bytes = one(bytemuck::cast_slice(plane), PixelType::F32)?;
                out.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
            Ok(Resampled::F32(out))
        }
        (Pix::U8(_) | Pix::F32(_), true, _) => Err(format!(
            "resampling interleaved images of {c} channels ({}) is not supported",
            match v.pix {
                Pix::U8(_) => "u8",
                Pix::F32(_) => "f32",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> Dataset {
        let n = c * h * w;
        Dataset::new(
            (0..n).map(|i| (i % 251) as u8).collect(),
            vec![0],
            c,
            h,
            w,
            1,
        )
        .unwrap()
    }

    #[test]
    fn plain_is_x_over_255() {
        let ds = ramp(1, 3, 4);
        let out = Preprocess::plain(3, 4).image(&ds, 0, 0, 0, 0).unwrap();
        let want: Vec<f32> = ds.images.iter().map(|&v| v as f32 / 255.0).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn center_crop_and_mean_std() {
        let ds = ramp(3, 6, 6);
        let p = Preprocess {
            out_h: 4,
            out_w: 2,
            ..Preprocess::plain(6, 6)
        }
        .with_mean_std(&IMAGENET_MEAN, &IMAGENET_STD);
        let out = p.image(&ds, 0, 0, 0, 0).unwrap();
        // Center: dy = (6-4)/2 = 1, dx = (6-2)/2 = 2.
        for ch in 0..3 {
            for y in 0..4 {
                for x in 0..2 {
                    let v = ds.images[(ch * 6 + 1 + y) * 6 + 2 + x] as f32;
                    let want = (v / 255.0 - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch];
                    assert_eq!(out[(ch * 4 + y) * 2 + x], want);
                }
            }
        }
    }

    #[test]
    fn random_crop_and_flip_follow_the_documented_draws() {
        let ds = ramp(2, 8, 8);
        let p = Preprocess {
            out_h: 5,
            out_w: 3,
            random_crop: true,
            hflip: true,
            ..Preprocess::plain(8, 8)
        };
        let mut flips = [0usize; 2];
        for pos in 0..64u64 {
            let out = p.image(&ds, 0, 9, 2, pos).unwrap();
            let mut r = crate::order::augment_rng(9, 2, pos);
            let dy = r.below(4) as usize;
            let dx = r.below(6) as usize;
            let flip = r.coin();
            flips[flip as usize] += 1;
            for ch in 0..2 {
                for y in 0..5 {
                    for x in 0..3 {
                        let sx = if flip { dx + 2 - x } else { dx + x };
                        let v = ds.images[(ch * 8 + dy + y) * 8 + sx] as f32 / 255.0;
                        assert_eq!(out[(ch * 5 + y) * 3 + x], v, "pos {pos}");
                    }
                }
            }
        }
        assert!(flips[0] > 10 && flips[1] > 10, "flip frequencies {flips:?}");
    }

    #[test]
    fn check_rejects_bad_configs() {
        let ds = ramp(3, 4, 4);
        assert!(Preprocess::plain(5, 4).check(&ds).is_err());
        assert!(Preprocess::plain(4, 4)
            .with_mean_std(&[0.5], &[0.5])
            .check(&ds)
            .is_err());
        assert!(Preprocess::plain(4, 4)
            .with_mean_std(&[0.5; 3], &[0.5, 0.0, 0.5])
            .check(&ds)
            .is_err());
        assert!(Preprocess::plain(4, 4)
            .with_mean_std(&[0.5; 3], &[0.5; 3])
            .check(&ds)
            .is_ok());
    }

    fn view(c: usize, h: usize, w: usize, data: &[u8]) -> View<'_> {
        View {
            c,
            h,
            w,
            hwc: false,
            pix: Pix::U8(data),
        }
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut r = SplitMix64::new(seed);
        (0..n).map(|_| r.below(256) as u8).collect()
    }

    #[test]
    fn random_resized_crop_follows_the_documented_draws() {
        // The module doc, transcribed independently of `random_resized`.
        let p = Preprocess {
            fit: Fit::RandomResized {
                scale: RRC_SCALE,
                ratio: RRC_RATIO,
            },
            hflip: true,
            ..Preprocess::plain(16, 16)
        };
        let (mut fallbacks, mut flips) = (0, 0);
        for pos in 0..400u64 {
            let (h, w) = (20 + (pos % 17) as usize * 7, 30 + (pos % 23) as usize * 5);
            let (h, w) = if pos % 50 == 0 { (200, 8) } else { (h, w) }; // no try fits: the fallback
            let (g, flip) = p
                .draw(h, w, &mut crate::order::augment_rng(3, 1, pos))
                .unwrap();
            let mut r = crate::order::augment_rng(3, 1, pos);
            let area = (h * w) as f64;
            let mut rect = None;
            for _ in 0..10 {
                let t = area * (0.08 + (1.0 - 0.08) * r.uniform());
                let (l0, l1) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
                let a = (l0 + (l1 - l0) * r.uniform()).exp();
                let (cw, ch) = ((t * a).sqrt().round(), (t / a).sqrt().round());
                if cw >= 1.0 && ch >= 1.0 && cw <= w as f64 && ch <= h as f64 {
                    let (cw, ch) = (cw as usize, ch as usize);
                    let top = r.below((h - ch + 1) as u64) as usize;
                    let left = r.below((w - cw + 1) as u64) as usize;
                    assert!((ch * cw) as f64 >= 0.07 * area && ch * cw <= h * w);
                    rect = Some((top, left, ch, cw));
                    break;
                }
            }
            let (top, left, ch, cw) = rect.unwrap_or_else(|| {
                fallbacks += 1;
                let ratio = w as f64 / h as f64;
                let (ch, cw) = if ratio < 0.75 {
                    ((w as f64 / 0.75).round() as usize, w)
                } else if ratio > 4.0 / 3.0 {
                    (h, (h as f64 * 4.0 / 3.0).round() as usize)
                } else {
                    (h, w)
                };
                ((h - ch) / 2, (w - cw) / 2, ch, cw)
            });
            let want = if (ch, cw) == (16, 16) {
                Geom::Crop { dy: top, dx: left }
            } else {
                Geom::Resample {
                    top: top as f64,
                    left: left as f64,
                    height: ch as f64,
                    width: cw as f64,
                }
            };
            assert_eq!(g, want, "position {pos}, {h}x{w}");
            assert_eq!(flip, r.coin());
            flips += flip as usize;
        }
        assert!(fallbacks >= 8, "{fallbacks} fallbacks");
        assert!((120..280).contains(&flips), "{flips} flips");
    }

    #[test]
    fn resize_shorter_to_the_shorter_side_is_a_plain_crop() {
        let (c, h, w) = (3, 24, 31);
        let img = noise(c * h * w, 1);
        let crop = Preprocess {
            out_h: 20,
            out_w: 20,
            random_crop: true,
            hflip: true,
            ..Preprocess::plain(h, w)
        };
        let resize = Preprocess {
            fit: Fit::ResizeShorter(24),
            ..crop.clone()
        };
        for pos in 0..20 {
            let (mut a, mut b) = (vec![0f32; c * 400], vec![0f32; c * 400]);
            let t = crop.tables(c);
            crop.apply(
                view(c, h, w, &img),
                &t,
                &mut crate::order::augment_rng(0, 0, pos),
                &mut a,
            )
            .unwrap();
            resize
                .apply(
                    view(c, h, w, &img),
                    &t,
                    &mut crate::order::augment_rng(0, 0, pos),
                    &mut b,
                )
                .unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn resize_shorter_then_centre_crop_equals_resizing_the_whole_image_then_cropping() {
        use fast_image_resize::images::{Image, ImageRef};
        use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions};
        // A smooth image (resampling differs most at sharp edges), 3 planes.
        let (c, h, w) = (3, 37, 53);
        let img: Vec<u8> = (0..c * h * w)
            .map(|k| {
                let (p, y, x) = (k / (h * w), (k / w) % h, k % w);
                (60.0 + 50.0 * ((x as f32 / 7.0 + p as f32).sin() + (y as f32 / 5.0).cos())) as u8
            })
            .collect();
        let p = Preprocess::for_images(Augment::None, 20, 20, Some(24), false);
        assert_eq!(p.fit, Fit::ResizeShorter(24));
        let mut got = vec![0f32; c * 400];
        p.apply(
            view(c, h, w, &img),
            &p.tables(c),
            &mut SplitMix64::new(0),
            &mut got,
        )
        .unwrap();
        let (rh, rw) = resized(h, w, 24);
        assert_eq!((rh, rw), (24, 34));
        let (dy, dx) = ((rh - 20) / 2, (rw - 20) / 2);
        let mut worst = 0f32;
        for ch in 0..c {
            let src = ImageRef::new(
                w as u32,
                h as u32,
                &img[ch * h * w..][..h * w],
                PixelType::U8,
            )
            .unwrap();
            let mut dst = Image::new(rw as u32, rh as u32, PixelType::U8);
            fast_image_resize::Resizer::new()
                .resize(
                    &src,
                    &mut dst,
                    &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
                )
                .unwrap();
            let full = dst.buffer();
            for y in 0..20 {
                for x in 0..20 {
                    let want = full[(dy + y) * rw + dx + x] as f32 / 255.0;
                    worst = worst.max((got[(ch * 20 + y) * 20 + x] - want).abs());
                }
            }
        }
        assert!(
            worst <= 2.0 / 255.0,
            "largest difference {} levels",
            worst * 255.0
        );
    }

    #[test]
    fn f32_samples_are_used_as_they_are() {
        let img: Vec<f32> = (0..2 * 3 * 4).map(|k| k as f32 * 0.5 - 3.0).collect();
        let p = Preprocess::plain(3, 4).with_mean_std(&[1.0, -1.0], &[2.0, 4.0]);
        let mut out = vec![0f32; 24];
        let v = View {
            c: 2,
            h: 3,
            w: 4,
            hwc: false,
            pix: Pix::F32(&img),
        };
        p.apply(v, &p.tables(2), &mut SplitMix64::new(0), &mut out)
            .unwrap();
        for k in 0..24 {
            let (m, s) = if k < 12 { (1.0, 2.0) } else { (-1.0, 4.0) };
            assert_eq!(out[k], (img[k] - m) / s);
        }
    }

    #[test]
    fn image_transforms_by_augmentation_and_phase() {
        let f = |a, r, t| {
            let p = Preprocess::for_images(a, 224, 224, r, t);
            (p.fit, p.random_crop, p.hflip)
        };
        assert_eq!(f(Augment::None, None, true), (Fit::Exact, false, false));
        assert_eq!(f(Augment::Flip, None, true), (Fit::Exact, false, true));
        assert_eq!(
            f(Augment::Flip, Some(256), false),
            (Fit::ResizeShorter(256), false, false)
        );
        assert_eq!(f(Augment::CropFlip, None, true), (Fit::Crop, true, true));
        assert_eq!(
            f(Augment::CropFlip, Some(256), false),
            (Fit::ResizeShorter(256), false, false)
        );
        assert_eq!(
            f(Augment::RandomResizedCrop, None, true),
            (
                Fit::RandomResized {
                    scale: RRC_SCALE,
                    ratio: RRC_RATIO
                },
                false,
                true
            )
        );
        assert_eq!(
            f(Augment::RandomResizedCrop, None, false),
            (Fit::ResizeShorter(256), false, false)
        );
        assert_eq!(eval_resize_for(28, 28), 32);
        let e = Preprocess::for_images(Augment::None, 20, 20, None, true)
            .fits(20, 21)
            .unwrap_err();
        assert!(e.contains("21x20") && e.contains("--resize"), "{e}");
        assert!("crop".parse::<Augment>().is_err());
        assert_eq!(
            "random-resized-crop".parse::<Augment>().unwrap(),
            Augment::RandomResizedCrop
        );
    }
}
