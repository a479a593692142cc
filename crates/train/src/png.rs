//! A small RGB canvas (anti-aliased lines, discs, rectangles, a 5×7 bitmap font) and a PNG encoder.
//!
//! PNG: the 8-byte signature, then chunks `length (u32 BE) | type | data | CRC-32 of type+data`:
//! `IHDR` (width, height, bit depth 8, colour type 2 = RGB, no interlace), one `IDAT` holding the
//! zlib stream of the scanlines (each preceded by filter byte 0), and `IEND`.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::{Compression, Crc};

pub(crate) type Rgb = [u8; 3];

pub(crate) struct Canvas {
    pub w: usize,
    pub h: usize,
    pix: Vec<Rgb>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, bg: Rgb) -> Canvas {
        Canvas {
            w,
            h,
            pix: vec![bg; w * h],
        }
    }

    /// Blends `c` into pixel (x, y) with coverage `a` in 0..1.
    fn blend(&mut self, x: i64, y: i64, c: Rgb, a: f32) {
        if x < 0 || y < 0 || x >= self.w as i64 || y >= self.h as i64 || a <= 0.0 {
            return;
        }
        let a = a.min(1.0);
        let p = &mut self.pix[y as usize * self.w + x as usize];
        for k in 0..3 {
            p[k] = (p[k] as f32 * (1.0 - a) + c[k] as f32 * a).round() as u8;
        }
    }

    /// A segment of `width` pixels: coverage falls off linearly over the last half pixel of the
    /// distance from the pixel centre to the segment.
    pub fn line(&mut self, (x0, y0): (f32, f32), (x1, y1): (f32, f32), width: f32, c: Rgb) {
        if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
            return;
        }
        let r = width / 2.0;
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = dx * dx + dy * dy;
        let xa = (x0.min(x1) - r - 1.0).floor().max(0.0) as i64;
        let xb = (x0.max(x1) + r + 1.0).ceil().min(self.w as f32) as i64;
        let ya = (y0.min(y1) - r - 1.0).floor().max(0.0) as i64;
        let yb = (y0.max(y1) + r + 1.0).ceil().min(self.h as f32) as i64;
        for py in ya..yb {
            for px in xa..xb {
                let (cx, cy) = (px as f32 + 0.5, py as f32 + 0.5);
                let t = if len2 > 0.0 {
                    (((cx - x0) * dx + (cy - y0) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (x0 + t * dx - cx, y0 + t * dy - cy);
                let d = (qx * qx + qy * qy).sqrt();
                self.blend(px, py, c, r + 0.5 - d);
            }
        }
    }

    pub fn disc(&mut self, (x, y): (f32, f32), r: f32, c: Rgb) {
        self.line((x, y), (x, y), 2.0 * r, c);
    }

    pub fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, c: Rgb) {
        let (xa, xb) = (
            x.round().max(0.0) as i64,
            (x + w).round().min(self.w as f32) as i64,
        );
        let (ya, yb) = (
            y.round().max(0.0) as i64,
            (y + h).round().min(self.h as f32) as i64,
        );
        for py in ya..yb {
            for px in xa..xb {
                self.blend(px, py, c, 1.0);
            }
        }
    }

    /// Text in the 5×7 font, `scale` pixels per font dot; (x, y) is the left end of the baseline.
    /// Lower-case letters are drawn as capitals; characters without a glyph as a hollow box.
    pub fn text(&mut self, x: f32, y: f32, scale: usize, s: &str, c: Rgb) {
        let top = y.round() as i64 - 7 * scale as i64;
        let mut left = x.round() as i64;
        for ch in s.chars() {
            let rows = glyph(ch.to_ascii_uppercase());
            for (ry, row) in rows.iter().enumerate() {
                for (rx, dot) in row.bytes().enumerate() {
                    if dot == b'#' {
                        for sy in 0..scale {
                            for sx in 0..scale {
                                let px = left + (rx * scale + sx) as i64;
                                let py = top + (ry * scale + sy) as i64;
                                self.blend(px, py, c, 1.0);
                            }
                        }
                    }
                }
            }
            left += (TEXT_ADVANCE * scale) as i64;
        }
    }

    /// The PNG file bytes.
    #[allow(
        clippy::expect_used,
        reason = "zlib into a Vec<u8> cannot fail: writing to memory"
    )]
    pub fn to_png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.h * (1 + 3 * self.w));
        for row in self.pix.chunks(self.w) {
            raw.push(0); // filter: none
            for p in row {
                raw.extend_from_slice(p);
            }
        }
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&raw).expect("writing to memory");
        let idat = z.finish().expect("writing to memory");

        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&(self.w as u32).to_be_bytes());
        ihdr.extend_from_slice(&(self.h as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // depth 8, RGB, deflate, filter 0, no interlace

        let mut out = PNG_SIGNATURE.to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &idat);
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

pub(crate) const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
/// Font dots from one character's left edge to the next one's.
pub(crate) const TEXT_ADVANCE: usize = 6;

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// The 5×7 dot pattern of `c` ('#' = ink), drawn for this crate.
fn glyph(c: char) -> [&'static str; 7] {
    match c {
        ' ' => [
            ".....", ".....", ".....", ".....", ".....", ".....", ".....",
        ],
        '0' => [
            ".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###.",
        ],
        '1' => [
            "..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
        '2' => [
            ".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####",
        ],
        '3' => [
            "####.", "....#", "....#", ".###.", "....#", "....#", "####.",
        ],
        '4' => [
            "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#.",
        ],
        '5' => [
            "#####", "#....", "####.", "....#", "....#", "#...#", ".###.",
        ],
        '6' => [
            "..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###.",
        ],
        '7' => [
            "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#...",
        ],
        '8' => [
            ".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###.",
        ],
        '9' => [
            ".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##..",
        ],
        'A' => [
            ".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
        'B' => [
            "####.", "#...#", "#...#", "####.", "#...#", "#...#", "####.",
        ],
        'C' => [
            ".###.", "#...#", "#....", "#....", "#....", "#...#", ".###.",
        ],
        'D' => [
            "####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####.",
        ],
        'E' => [
            "#####", "#....", "#....", "####.", "#....", "#....", "#####",
        ],
        'F' => [
            "#####", "#....", "#....", "####.", "#....", "#....", "#....",
        ],
        'G' => [
            ".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####",
        ],
        'H' => [
            "#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
        'I' => [
            ".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
        'J' => [
            "..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##..",
        ],
        'K' => [
            "#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#",
        ],
        'L' => [
            "#....", "#....", "#....", "#....", "#....", "#....", "#####",
        ],
        'M' => [
            "#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#",
        ],
        'N' => [
            "#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#",
        ],
        'O' => [
            ".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.",
        ],
        'P' => [
            "####.", "#...#", "#...#", "####.", "#....", "#....", "#....",
        ],
        'Q' => [
            ".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#",
        ],
        'R' => [
            "####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#",
        ],
        'S' => [
            ".####", "#....", "#....", ".###.", "....#", "....#", "####.",
        ],
        'T' => [
            "#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#..",
        ],
        'U' => [
            "#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.",
        ],
        'V' => [
            "#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#..",
        ],
        'W' => [
            "#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#.",
        ],
        'X' => [
            "#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#",
        ],
        'Y' => [
            "#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#..",
        ],
        'Z' => [
            "#####", "....#", "...#.", "..#..", ".#...", "#....", "#####",
        ],
        '.' => [
            ".....", ".....", ".....", ".....", ".....", ".##..", ".##..",
        ],
        ',' => [
            ".....", ".....", ".....", ".....", ".##..", "..#..", ".#...",
        ],
        ':' => [
            ".....", ".##..", ".##..", ".....", ".##..", ".##..", ".....",
        ],
        '-' => [
            ".....", ".....", ".....", "#####", ".....", ".....", ".....",
        ],
        '+' => [
            ".....", "..#..", "..#..", "#####", "..#..", "..#..", ".....",
        ],
        '=' => [
            ".....", ".....", "#####", ".....", "#####", ".....", ".....",
        ],
        '_' => [
            ".....", ".....", ".....", ".....", ".....", ".....", "#####",
        ],
        '/' => [
            ".....", "....#", "...#.", "..#..", ".#...", "#....", ".....",
        ],
        '(' => [
            "...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#.",
        ],
        ')' => [
            ".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#...",
        ],
        '%' => [
            "##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##",
        ],
        '[' => [
            ".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###.",
        ],
        ']' => [
            ".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###.",
        ],
        '\'' => [
            "..#..", "..#..", ".#...", ".....", ".....", ".....", ".....",
        ],
        '·' | '*' => [
            ".....", ".....", "..#..", ".###.", "..#..", ".....", ".....",
        ],
        _ => [
            "#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_are_5_by_7() {
        for c in (' '..='~').chain(['·']) {
            for row in glyph(c.to_ascii_uppercase()) {
                assert_eq!(row.len(), 5, "glyph {c:?}");
                assert!(row.bytes().all(|b| b == b'#' || b == b'.'), "glyph {c:?}");
            }
        }
    }

    #[test]
    fn png_has_signature_and_chunks() {
        let mut c = Canvas::new(3, 2, [255, 255, 255]);
        c.fill_rect(0.0, 0.0, 1.0, 1.0, [0, 0, 0]);
        let png = c.to_png();
        assert_eq!(&png[..8], &PNG_SIGNATURE);
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
    }
}
