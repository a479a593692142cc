//! The measurement behind the image crates `train` uses (ARCHITECTURE.md, "Image sources"):
//!
//! ```sh
//! cargo run --release -p train --example image_codecs -- [IMAGES] [PASSES]
//! ```
//!
//! On one thread, over IMAGES synthetic 320-pixel JPEGs (quality 90, as `netspec bench-data --generate`
//! writes them), the median over PASSES of the mean time per image of:
//! - decoding to RGB: the `image` crate (`load_from_memory` + `into_rgb8`) against `zune-jpeg` called
//!   directly (the decoder `image` wraps);
//! - a random-resized crop to 224×224 (the rectangle drawn as `augment` draws it): `fast_image_resize`
//!   (bilinear convolution, SIMD) against `image::imageops::resize` (triangle filter) on the cropped view.

use std::io::Cursor;
use std::time::Instant;

use train::data::write::Synthetic;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time_per_image(passes: usize, n: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    median(
        (0..passes)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3 / n as f64
            })
            .collect(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(48, |s| s.parse().expect("IMAGES"));
    let passes: usize = args.get(2).map_or(5, |s| s.parse().expect("PASSES"));
    let synth = Synthetic::default();
    let jpegs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut v = Cursor::new(Vec::new());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut v, 90)
                .encode_image(&synth.image(i))
                .unwrap();
            v.into_inner()
        })
        .collect();
    let kb = jpegs.iter().map(|j| j.len()).sum::<usize>() as f64 / n as f64 / 1024.0;
    println!("{n} JPEGs, 320-pixel shorter side, {kb:.1} KB on average; ms per image, one thread, median of {passes} passes");

    let image_ms = time_per_image(passes, n, || {
        for j in &jpegs {
            std::hint::black_box(image::load_from_memory(j).unwrap().into_rgb8());
        }
    });
    let zune_ms = time_per_image(passes, n, || {
        for j in &jpegs {
            std::hint::black_box(train::data::decode::decode(j, 3).unwrap());
        }
    });
    println!("decode  image::load_from_memory + into_rgb8   {image_ms:7.3}");
    println!("decode  zune-jpeg directly (netspec's path)   {zune_ms:7.3}");

    let decoded: Vec<train::data::decode::Pixels> = jpegs
        .iter()
        .map(|j| train::data::decode::decode(j, 3).unwrap())
        .collect();
    // One crop rectangle per image, as the random-resized crop draws them (a fixed stream here).
    let mut r = train::order::SplitMix64::new(7);
    let rects: Vec<(u32, u32, u32, u32)> = decoded
        .iter()
        .map(|p| {
            let area = (p.w * p.h) as f64 * (0.08 + 0.92 * r.uniform());
            let aspect =
                ((0.75f64).ln() + ((4.0f64 / 3.0).ln() - (0.75f64).ln()) * r.uniform()).exp();
            let cw = ((area * aspect).sqrt().round() as usize).clamp(1, p.w);
            let ch = ((area / aspect).sqrt().round() as usize).clamp(1, p.h);
            let top = r.below((p.h - ch + 1) as u64) as u32;
            let left = r.below((p.w - cw + 1) as u64) as u32;
            (left, top, cw as u32, ch as u32)
        })
        .collect();
    let mut resizer = fast_image_resize::Resizer::new();
    let fir_ms = time_per_image(passes, n, || {
        use fast_image_resize::images::{Image, ImageRef};
        use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions};
        for (p, &(l, t, w, h)) in decoded.iter().zip(&rects) {
            let src = ImageRef::new(p.w as u32, p.h as u32, &p.data, PixelType::U8x3).unwrap();
            let mut dst = Image::new(224, 224, PixelType::U8x3);
            let o = ResizeOptions::new()
                .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
                .crop(l as f64, t as f64, w as f64, h as f64);
            resizer.resize(&src, &mut dst, &o).unwrap();
            std::hint::black_box(dst);
        }
    });
    let rgb: Vec<image::RgbImage> = decoded
        .iter()
        .map(|p| image::RgbImage::from_raw(p.w as u32, p.h as u32, p.data.clone()).unwrap())
        .collect();
    let img_ms = time_per_image(passes, n, || {
        for (p, &(l, t, w, h)) in rgb.iter().zip(&rects) {
            let view = image::imageops::crop_imm(p, l, t, w, h);
            std::hint::black_box(image::imageops::resize(
                &*view,
                224,
                224,
                image::imageops::FilterType::Triangle,
            ));
        }
    });
    println!("resize  fast_image_resize, bilinear (netspec) {fir_ms:7.3}");
    println!("resize  image::imageops::resize, triangle     {img_ms:7.3}");
}
