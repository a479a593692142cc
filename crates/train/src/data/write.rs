//! Writing image folders: a dataset in memory as one (tests, the folder-vs-IDX comparison) and synthetic
//! images at a chosen size (the data benchmark, the memory test). Encoding is the `image` crate's.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::Dataset;
use crate::order::{mix64, SplitMix64};
use crate::{Error, Result};

/// Fashion-MNIST's classes, prefixed with their index so that the folders sort in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "0-t-shirt",
    "1-trouser",
    "2-pullover",
    "3-dress",
    "4-coat",
    "5-sandal",
    "6-shirt",
    "7-sneaker",
    "8-bag",
    "9-ankle-boot",
];

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

fn save(img: image::DynamicImage, path: &Path, format: ImageFormat) -> Result<()> {
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(f);
    let r = match format {
        ImageFormat::Jpeg { quality } => img.write_with_encoder(
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, quality),
        ),
        ImageFormat::Png => img.write_to(&mut w, image::ImageFormat::Png),
        ImageFormat::Bmp => img.write_to(&mut w, image::ImageFormat::Bmp),
    };
    r.map_err(|e| Error::data(path, format!("cannot encode: {e}")))?;
    std::io::Write::flush(&mut w).map_err(|e| Error::io(path, e))
}

/// The file formats written here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg { quality: u8 },
    Png,
    Bmp,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg { .. } => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Bmp => "bmp",
        }
    }
}

/// Writes images `indices` of `ds` (1 or 3 channels) as `dir/<class name>/<index, 5 digits>.png`;
/// `classes[l]` names label `l`. Returns the files written.
pub fn dataset_as_folder(
    ds: &Dataset,
    indices: impl IntoIterator<Item = usize>,
    dir: &Path,
    classes: &[&str],
) -> Result<Vec<PathBuf>> {
    if classes.len() < ds.classes {
        return Err(Error::Invalid(format!(
            "{} class names for {} classes",
            classes.len(),
            ds.classes
        )));
    }
    for c in &classes[..ds.classes] {
        create_dir(&dir.join(c))?;
    }
    let (w, h) = (ds.w as u32, ds.h as u32);
    let mut out = Vec::new();
    for i in indices {
        let img = ds.image(i);
        let dynimg = match ds.c {
            1 => {
                image::GrayImage::from_raw(w, h, img.to_vec()).map(image::DynamicImage::ImageLuma8)
            }
            3 => {
                let plane = (w * h) as usize;
                let hwc: Vec<u8> = (0..plane)
                    .flat_map(|p| [img[p], img[plane + p], img[2 * plane + p]])
                    .collect();
                image::RgbImage::from_raw(w, h, hwc).map(image::DynamicImage::ImageRgb8)
            }
            c => {
                return Err(Error::Invalid(format!(
                    "image folders hold 1 or 3 channels, the dataset has {c}"
                )))
            }
        }
        .ok_or_else(|| Error::Invalid("image buffer size".into()))?;
        let path = dir
            .join(classes[ds.labels[i] as usize])
            .join(format!("{i:05}.png"));
        save(dynimg, &path, ImageFormat::Png)?;
        out.push(path);
    }
    Ok(out)
}

/// Synthetic photographs, deterministic from `seed`: what the data benchmark and the memory test read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synthetic {
    /// Images in all.
    pub count: usize,
    /// Class folders (image `i` goes to class `i mod classes`).
    pub classes: usize,
    /// The shorter side (imagenette2-320 has 320).
    pub short_side: usize,
    /// The longer side is drawn from `short_side ..= short_side·max_aspect/100`.
    pub max_aspect_pct: usize,
    pub format: ImageFormat,
    pub seed: u64,
    /// Amplitude of the per-pixel noise (0–255): sets how much detail, hence JPEG size and decode work.
    pub noise: u8,
}

impl Default for Synthetic {
    /// Imagenette-like: 320-pixel shorter side, up to 3:2, JPEG quality 90, about 27 KB per image
    /// (imagenette2-320 averages about 25 KB: 13,394 images in its 326 MB archive).
    fn default() -> Synthetic {
        Synthetic {
            count: 1000,
            classes: 10,
            short_side: 320,
            max_aspect_pct: 150,
            format: ImageFormat::Jpeg { quality: 90 },
            seed: 0,
            noise: 5,
        }
    }
}

impl Synthetic {
    /// Image `i`: a two-color gradient, ellipses whose palette depends on the class, and noise.
    pub fn image(&self, i: usize) -> image::RgbImage {
        let mut r = SplitMix64::new(mix64(self.seed ^ mix64(i as u64)));
        let class = (i % self.classes.max(1)) as u64;
        let short = self.short_side as u32;
        let long = short
            + r.below(
                (self.short_side * self.max_aspect_pct.max(100) / 100 - self.short_side + 1) as u64,
            ) as u32;
        let (w, h) = if r.coin() {
            (long, short)
        } else {
            (short, long)
        };
        let color = |bias: u64, r: &mut SplitMix64| -> [f32; 3] {
            let mut c = [0f32; 3];
            for (k, v) in c.iter_mut().enumerate() {
                let hue = ((class * 37 + k as u64 * 91 + bias) % 256) as f32;
                *v = 0.6 * hue + 0.4 * r.below(256) as f32;
            }
            c
        };
        let (a, b) = (color(0, &mut r), color(128, &mut r));
        let ellipses: Vec<([f32; 3], f32, f32, f32, f32)> = (0..6)
            .map(|k| {
                let c = color(40 * k, &mut r);
                let cx = r.below(w as u64) as f32;
                let cy = r.below(h as u64) as f32;
                let rx = 10.0 + r.below((w / 3) as u64) as f32;
                let ry = 10.0 + r.below((h / 3) as u64) as f32;
                (c, cx, cy, rx, ry)
            })
            .collect();
        let noise = self.noise as u64;
        image::RgbImage::from_fn(w, h, |x, y| {
            let t = (x + y) as f32 / (w + h) as f32;
            let mut p = [0f32; 3];
            for k in 0..3 {
                p[k] = a[k] * (1.0 - t) + b[k] * t;
            }
            for (c, cx, cy, rx, ry) in &ellipses {
                let (dx, dy) = ((x as f32 - cx) / rx, (y as f32 - cy) / ry);
                if dx * dx + dy * dy < 1.0 {
                    p = *c;
                }
            }
            let mut px = [0u8; 3];
            for k in 0..3 {
                let n = if noise > 0 {
                    r.below(2 * noise + 1) as f32 - noise as f32
                } else {
                    0.0
                };
                px[k] = (p[k] + n).clamp(0.0, 255.0) as u8;
            }
            image::Rgb(px)
        })
    }

    /// Writes the images as `dir/class-<k>/img-<i, 6 digits>.<ext>`; returns the bytes written.
    pub fn write(&self, dir: &Path) -> Result<u64> {
        let classes = self.classes.max(1);
        for k in 0..classes {
            create_dir(&dir.join(format!("class-{k}")))?;
        }
        let mut bytes = 0;
        for i in 0..self.count {
            let path = dir
                .join(format!("class-{}", i % classes))
                .join(format!("img-{i:06}.{}", self.format.extension()));
            save(
                image::DynamicImage::ImageRgb8(self.image(i)),
                &path,
                self.format,
            )?;
            bytes += std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
        }
        Ok(bytes)
    }
}
