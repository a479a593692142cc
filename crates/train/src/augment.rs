//! Preprocessing and augmentation: a stored `u8` CHW image becomes an `f32` CHW network input.
//!
//! For an image of C×H×W and an output of C×OH×OW (OH ≤ H, OW ≤ W):
//! 1. **Crop offset** `(dy, dx)`: with `random_crop`, two draws from the sample's stream
//!    ([`crate::order::augment_rng`]): `dy = below(H − OH + 1)`, then `dx = below(W − OW + 1)`;
//!    otherwise the center, `dy = ⌊(H − OH)/2⌋`, `dx = ⌊(W − OW)/2⌋` (zero when the sizes agree).
//! 2. **Flip**: with `hflip`, one more draw; the image is mirrored left–right when its top bit is 1.
//! 3. **Value**: `out[c][y][x] = (src[c][dy + y][dx + x'] / 255 − mean[c]) / std[c]` in `f32`, where
//!    `x' = OW − 1 − x` when flipped, else `x`; no mean/std means `src / 255`.
//!
//! Draws happen in that order and only for the enabled operations.

use crate::data::{Dataset, DatasetKind};
use crate::order::SplitMix64;
use crate::{Error, Result};

/// ImageNet channel means (R, G, B), used for Imagenette.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (R, G, B).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// CIFAR-10 training-set channel means, for the optional CIFAR standardisation.
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10 training-set channel standard deviations.
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// How a stored image becomes a network input (see the module doc for the exact rules).
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// Output height and width.
    pub out_h: usize,
    pub out_w: usize,
    /// Per-channel mean and std applied after `/255`; both empty for plain `x/255`.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Random crop (training) instead of the center crop.
    pub random_crop: bool,
    /// Random horizontal flip with probability 1/2.
    pub hflip: bool,
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
        }
    }

    /// The recipes netspec uses (lean4-mlir's): MNIST-like `x/255`, no augmentation; CIFAR-10 `x/255`,
    /// flip when training with `augment`; Imagenette ImageNet mean/std, 224×224 output, random crop
    /// and flip when training with `augment`, else the center crop.
    pub fn for_kind(kind: DatasetKind, training: bool, augment: bool) -> Preprocess {
        let aug = training && augment;
        match kind {
            DatasetKind::Mnist | DatasetKind::FashionMnist => Preprocess::plain(28, 28),
            DatasetKind::Cifar10 => Preprocess {
                hflip: aug,
                ..Preprocess::plain(32, 32)
            },
            DatasetKind::Imagenette => Preprocess {
                out_h: 224,
                out_w: 224,
                mean: IMAGENET_MEAN.to_vec(),
                std: IMAGENET_STD.to_vec(),
                random_crop: aug,
                hflip: aug,
            },
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
        if self.out_h == 0 || self.out_w == 0 || self.out_h > ds.h || self.out_w > ds.w {
            return Err(Error::Invalid(format!(
                "preprocess: output {}x{} must be non-empty and fit in the {}x{} images",
                self.out_h, self.out_w, ds.h, ds.w
            )));
        }
        if self.mean.len() != self.std.len() || !(self.mean.is_empty() || self.mean.len() == ds.c) {
            return Err(Error::Invalid(format!(
                "preprocess: {} means and {} stds for {} channels (need both empty or one per channel)",
                self.mean.len(),
                self.std.len(),
                ds.c
            )));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Invalid(format!(
                "preprocess: std {s} is not a positive number"
            )));
        }
        Ok(())
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

    /// Preprocesses one image (`src`: C·H·W bytes) into `out` (C·OH·OW floats), drawing from `rng`.
    /// `tables` comes from [`Preprocess::tables`]; [`Preprocess::check`] must have passed.
    pub(crate) fn apply(
        &self,
        src: &[u8],
        (c, h, w): (usize, usize, usize),
        tables: &[[f32; 256]],
        rng: &mut SplitMix64,
        out: &mut [f32],
    ) {
        let (oh, ow) = (self.out_h, self.out_w);
        let (dy, dx) = if self.random_crop {
            let dy = rng.below((h - oh + 1) as u64) as usize;
            let dx = rng.below((w - ow + 1) as u64) as usize;
            (dy, dx)
        } else {
            ((h - oh) / 2, (w - ow) / 2)
        };
        let flip = self.hflip && rng.coin();
        for ch in 0..c {
            let t = &tables[ch];
            for y in 0..oh {
                let row = &src[(ch * h + dy + y) * w + dx..][..ow];
                let dst = &mut out[(ch * oh + y) * ow..][..ow];
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
            ds.image(index),
            (ds.c, ds.h, ds.w),
            &self.tables(ds.c),
            &mut rng,
            &mut out,
        );
        Ok(out)
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
}
