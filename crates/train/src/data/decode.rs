//! One image file's bytes → 8-bit pixels with the channel count the network takes.
//!
//! No codec lives here: JPEG goes to `zune-jpeg` directly (the decoder the `image` crate wraps; calling it
//! directly skips a copy and lets it write grayscale straight from the luma plane), every other format to
//! the `image` crate (PNG, BMP, PNM, WebP). The format is recognised by the file's first bytes, not by its
//! name. Measurements behind the choice: ARCHITECTURE.md, "Image sources".
//!
//! **Channels.** The result has the network's channel count, 1 or 3:
//! - to 3 channels: gray is repeated, an alpha channel is dropped (as Pillow's `convert("RGB")`);
//! - to 1 channel: color becomes `L = (19595·R + 38470·G + 7471·B + 2¹⁵) >> 16` (ITU-R 601 luma, Pillow's
//!   `convert("L")`); a JPEG gives its luma plane Y directly (the same weights, applied by the encoder);
//! - 16-bit samples become 8-bit by the `image` crate (`v / 257`, rounded).
//!
//! EXIF orientation is not applied (torchvision's `ImageFolder` loader does not apply it either).
//! Images over [`MAX_SIDE`] pixels a side or [`MAX_PIXELS`] pixels are refused before decoding.

use std::io::{Cursor, Read};
use std::path::Path;

use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

/// The longest side accepted.
pub const MAX_SIDE: usize = 1 << 15;
/// The most pixels accepted in one image (Pillow refuses about 179 million by default).
pub const MAX_PIXELS: u64 = 1 << 27;
/// Bytes read from a file's start to find its size; a file whose header lies further is read whole.
const PROBE_BYTES: usize = 64 << 10;

/// Decoded pixels: row-major, channels interleaved (HWC), `c` = 1 or 3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixels {
    pub w: usize,
    pub h: usize,
    pub c: usize,
    pub data: Vec<u8>,
}

/// What a file's header says, read without decoding the pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub w: usize,
    pub h: usize,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// The formats recognised by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    /// Anything else the `image` crate recognises (it is asked).
    Other(image::ImageFormat),
}

/// The names (lower case, no dot) of the files an image folder treats as images.
pub const EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "bmp", "ppm", "pgm", "pbm", "pnm", "webp",
];

/// Whether `path`'s extension is one of [`EXTENSIONS`] (any case).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn format_of(bytes: &[u8]) -> Result<Format, String> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    match image::guess_format(bytes) {
        Ok(f @ (image::ImageFormat::Png
        | image::ImageFormat::Bmp
        | image::ImageFormat::Pnm
        | image::ImageFormat::WebP)) => Ok(Format::Other(f)),
        Ok(f) => Err(format!(
            "a {f:?} image, which netspec does not read (use JPEG, PNG, BMP, PNM or WebP)"
        )),
        Err(_) if bytes.is_empty() => Err("an empty file, not an image".into()),
        Err(_) => Err(format!(
            "not an image in a supported format (JPEG, PNG, BMP, PNM, WebP); it starts with {:02x?}",
            &bytes[..bytes.len().min(8)]
        )),
    }
}

fn check_size(w: usize, h: usize) -> Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("the header says the image is {w}x{h}"));
    }
    if w > MAX_SIDE || h > MAX_SIDE || (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(format!(
            "the image is {w}x{h}, over the limit of {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels"
        ));
    }
    Ok(())
}

fn jpeg_options(channels: usize) -> DecoderOptions {
    DecoderOptions::default()
        .jpeg_set_out_colorspace(if channels == 1 {
            ColorSpace::Luma
        } else {
            ColorSpace::RGB
        })
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE)
        .set_strict_mode(true)
}

/// The size of the image in `bytes` (a whole file, or its first bytes), from the header only.
fn header_of(bytes: &[u8]) -> Result<(usize, usize), String> {
    match format_of(bytes)? {
        Format::Jpeg => {
            let mut d =
                zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), jpeg_options(3));
            d.decode_headers()
                .map_err(|e| format!("not a readable JPEG: {e:?}"))?;
            let (w, h) = d
                .dimensions()
                .ok_or_else(|| "not a readable JPEG: no frame header".to_string())?;
            Ok((w, h))
        }
        Format::Other(f) => {
            let (w, h) = image::ImageReader::with_format(Cursor::new(bytes), f)
                .into_dimensions()
                .map_err(|e| format!("not a readable {f:?} image: {e}"))?;
            Ok((w as usize, h as usize))
        }
    }
}

/// Reads `path`'s header (and only as much of the file as that takes): its size in pixels and bytes.
pub fn probe(path: &Path) -> Result<Header, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = f
        .metadata()
        .map_err(|e| format!("cannot read its metadata: {e}"))?
        .len();
    let mut head = Vec::with_capacity(PROBE_BYTES.min(len as usize));
    (&mut f)
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    let dims = match header_of(&head) {
        Ok(d) => d,
        Err(_) if (head.len() as u64) < len => {
            // The header lies past the first bytes (large metadata blocks): read the whole file.
            f.read_to_end(&mut head)
                .map_err(|e| format!("cannot read: {e}"))?;
            header_of(&head)?
        }
        Err(e) => return Err(e),
    };
    check_size(dims.0, dims.1)?;
    Ok(Header {
        w: dims.0,
        h: dims.1,
        bytes: len,
    })
}

/// Decodes a whole image file's bytes to `channels` (1 or 3) channels; see the module doc.
pub fn decode(bytes: &[u8], channels: usize) -> Result<Pixels, String> {
    if channels != 1 && channels != 3 {
        return Err(format!(
            "images decode to 1 or 3 channels; the network takes {channels}"
        ));
    }
    match format_of(bytes)? {
        Format::Jpeg => {
            let mut d = zune_jpeg::JpegDecoder::new_with_options(
                ZCursor::new(bytes),
                jpeg_options(channels),
            );
            d.decode_headers()
                .map_err(|e| format!("not a readable JPEG: {e:?}"))?;
            let (w, h) = d
                .dimensions()
                .ok_or_else(|| "not a readable JPEG: no frame header".to_string())?;
            check_size(w, h)?;
            let data = d
                .decode()
                .map_err(|e| format!("corrupt JPEG data: {e:?}"))?;
            if data.len() != w * h * channels {
                return Err(format!(
                    "the JPEG decoder gave {} bytes for {w}x{h}x{channels}",
                    data.len()
                ));
            }
            Ok(Pixels {
                w,
                h,
                c: channels,
                data,
            })
        }
        Format::Other(f) => {
            let mut r = image::ImageReader::with_format(Cursor::new(bytes), f);
            let mut limits = image::Limits::default();
            limits.max_image_width = Some(MAX_SIDE as u32);
            limits.max_image_height = Some(MAX_SIDE as u32);
            limits.max_alloc = Some(MAX_PIXELS * 8);
            r.limits(limits);
            let img = r
                .decode()
                .map_err(|e| format!("corrupt or unreadable {f:?} image: {e}"))?;
            let (w, h) = (img.width() as usize, img.height() as usize);
            check_size(w, h)?;
            let data = match (channels, img.color().has_color()) {
                (3, _) => img.into_rgb8().into_raw(),
                (_, false) => img.into_luma8().into_raw(),
                (_, true) => luma_601(&img.into_rgb8().into_raw()),
            };
            Ok(Pixels {
                w,
                h,
                c: channels,
                data,
            })
        }
    }
}

/// Reads and decodes the image file at `path` (errors do not name the file; callers add it).
pub fn decode_file(path: &Path, channels: usize) -> Result<Pixels, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    decode(&bytes, channels)
}

/// ITU-R 601 luma of interleaved RGB, in Pillow's fixed point.
fn luma_601(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| {
            let l = 19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32 + 0x8000;
            (l >> 16) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: image::DynamicImage, f: image::ImageFormat) -> Vec<u8> {
        let mut v = Cursor::new(Vec::new());
        img.write_to(&mut v, f).unwrap();
        v.into_inner()
    }

    fn rgb(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 9) as u8, (y * 7) as u8, 200]))
    }

    #[test]
    fn png_channels_convert_as_documented() {
        let img = rgb(5, 4);
        let png = encode(
            image::DynamicImage::ImageRgb8(img.clone()),
            image::ImageFormat::Png,
        );
        let three = decode(&png, 3).unwrap();
        assert_eq!((three.w, three.h, three.c), (5, 4, 3));
        assert_eq!(three.data, img.clone().into_raw());
        let one = decode(&png, 1).unwrap();
        let p = img.get_pixel(2, 1).0;
        let want =
            ((19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32 + 0x8000) >> 16) as u8;
        assert_eq!(one.data[5 + 2], want);
        let gray = image::GrayImage::from_fn(3, 2, |x, y| image::Luma([(x + 10 * y) as u8]));
        let png = encode(
            image::DynamicImage::ImageLuma8(gray.clone()),
            image::ImageFormat::Png,
        );
        assert_eq!(decode(&png, 1).unwrap().data, gray.clone().into_raw());
        let rep: Vec<u8> = gray.into_raw().iter().flat_map(|&v| [v, v, v]).collect();
        assert_eq!(decode(&png, 3).unwrap().data, rep);
    }

    #[test]
    fn jpeg_decodes_close_to_its_source_and_gray_is_luma() {
        let img = rgb(32, 24);
        let mut v = Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut v, 100)
            .encode_image(&img)
            .unwrap();
        let jpg = v.into_inner();
        let three = decode(&jpg, 3).unwrap();
        assert_eq!((three.w, three.h, three.c), (32, 24, 3));
        let err = three
            .data
            .iter()
            .zip(img.as_raw())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(err <= 12, "max error {err}");
        let one = decode(&jpg, 1).unwrap();
        let l = luma_601(&three.data);
        let err = one
            .data
            .iter()
            .zip(&l)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(err <= 3, "luma plane vs 601 of the RGB output: {err}");
        assert_eq!(header_of(&jpg).unwrap(), (32, 24));
    }

    #[test]
    fn bad_bytes_say_what_they_are() {
        assert!(decode(b"", 3).unwrap_err().contains("empty"));
        assert!(decode(b"hello, world", 3)
            .unwrap_err()
            .contains("not an image"));
        let png = encode(
            image::DynamicImage::ImageRgb8(rgb(8, 8)),
            image::ImageFormat::Png,
        );
        assert!(decode(&png[..png.len() / 2], 3)
            .unwrap_err()
            .contains("corrupt"));
        let mut v = Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut v, 90)
            .encode_image(&rgb(64, 64))
            .unwrap();
        let jpg = v.into_inner();
        let e = decode(&jpg[..jpg.len() / 2], 3).unwrap_err();
        assert!(e.contains("JPEG"), "{e}");
        assert!(decode(&png, 2).unwrap_err().contains("1 or 3 channels"));
    }
}
