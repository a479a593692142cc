//! Training curves from a trace: loss per step (raw and smoothed) and accuracy per epoch.
//!
//! One layout is drawn to either backend: SVG text, or a PNG rasterised by this crate (`png.rs`;
//! its bitmap font draws capitals only). Smoothing is an exponential moving average with bias
//! correction: with window `w = clamp(n/50, 1, 200)` and `β = 1 − 2/(w + 1)`,
//! `m_t = β·m_{t−1} + (1 − β)·x_t` (`m_0 = 0`) and the plotted value is `m_t / (1 − β^t)`;
//! non-finite losses are skipped.

use std::fmt::Write as _;
use std::path::Path;

use crate::checkpoint::write_atomic;
use crate::png::{Canvas, Rgb, TEXT_ADVANCE};
use crate::trace::Trace;
use crate::{Error, Result};

const WIDTH: f32 = 1100.0;
const HEIGHT: f32 = 470.0;
const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [30, 30, 30];
const AXIS: Rgb = [90, 90, 90];
const GRID: Rgb = [228, 228, 228];
const RAW: Rgb = [165, 195, 235];
const SMOOTH: Rgb = [25, 85, 175];
const TEST: Rgb = [215, 100, 15];
const TRAIN: Rgb = [40, 145, 60];
const VAL: Rgb = [140, 60, 170];

/// Writes the curves of `trace` to `path`, as SVG or PNG by its extension.
pub fn plot(trace: &Trace, path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("svg") => svg(trace).into_bytes(),
        Some("png") => png(trace),
        _ => {
            return Err(Error::Invalid(format!(
                "{}: cannot tell the image format; name the file .svg or .png",
                path.display()
            )))
        }
    };
    write_atomic(path, |w| w.write_all(&bytes))
}

/// The curves as an SVG document.
pub fn svg(trace: &Trace) -> String {
    let scene = layout(trace);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">"
    );
    for item in &scene {
        match item {
            Item::Rect { x, y, w, h, fill } => {
                let _ = writeln!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                    hex(*fill)
                );
            }
            Item::Line { pts, color, width } => {
                let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = writeln!(
                    s,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\" stroke-linejoin=\"round\"/>",
                    p.join(" "),
                    hex(*color)
                );
            }
            Item::Dots { pts, color, r } => {
                for (x, y) in pts {
                    let _ = writeln!(
                        s,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" fill=\"{}\"/>",
                        hex(*color)
                    );
                }
            }
            Item::Text {
                x,
                y,
                size,
                anchor,
                text,
                color,
            } => {
                let a = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let _ = writeln!(
                    s,
                    "<text x=\"{x:.1}\" y=\"{y:.1}\" font-family=\"sans-serif\" font-size=\"{size}\" text-anchor=\"{a}\" fill=\"{}\">{}</text>",
                    hex(*color),
                    escape(text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The curves as PNG file bytes.
pub fn png(trace: &Trace) -> Vec<u8> {
    let mut c = Canvas::new(WIDTH as usize, HEIGHT as usize, WHITE);
    for item in &layout(trace) {
        match item {
            Item::Rect { x, y, w, h, fill } => c.fill_rect(*x, *y, *w, *h, *fill),
            Item::Line { pts, color, width } => {
                for seg in pts.windows(2) {
                    c.line(seg[0], seg[1], *width, *color);
                }
            }
            Item::Dots { pts, color, r } => pts.iter().for_each(|p| c.disc(*p, *r, *color)),
            Item::Text {
                x,
                y,
                size,
                anchor,
                text,
                color,
            } => {
                let scale = ((*size / 11.0).floor() as usize).max(1);
                let wide = (text.chars().count() * TEXT_ADVANCE * scale) as f32;
                let left = match anchor {
                    Anchor::Start => *x,
                    Anchor::Middle => x - wide / 2.0,
                    Anchor::End => x - wide,
                };
                c.text(left, *y, scale, text, *color);
            }
        }
    }
    c.to_png()
}

/// The smoothed series (see the module doc); non-finite inputs give non-finite outputs and are
/// left out of the average.
pub fn smooth(values: &[f64]) -> Vec<f64> {
    let w = (values.len() / 50).clamp(1, 200) as f64;
    let beta = 1.0 - 2.0 / (w + 1.0);
    let (mut m, mut t) = (0.0, 0i32);
    values
        .iter()
        .map(|&x| {
            if !x.is_finite() {
                return f64::NAN;
            }
            t += 1;
            m = beta * m + (1.0 - beta) * x;
            m / (1.0 - beta.powi(t))
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Anchor {
    Start,
    Middle,
    End,
}

/// What both backends draw.
enum Item {
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        fill: Rgb,
    },
    Line {
        pts: Vec<(f32, f32)>,
        color: Rgb,
        width: f32,
    },
    Dots {
        pts: Vec<(f32, f32)>,
        color: Rgb,
        r: f32,
    },
    Text {
        x: f32,
        y: f32,
        size: f32,
        anchor: Anchor,
        text: String,
        color: Rgb,
    },
}

fn text(x: f32, y: f32, size: f32, anchor: Anchor, t: impl Into<String>, color: Rgb) -> Item {
    Item::Text {
        x,
        y,
        size,
        anchor,
        text: t.into(),
        color,
    }
}

struct Series {
    name: &'static str,
    pts: Vec<(f64, f64)>,
    color: Rgb,
    width: f32,
    dots: bool,
}

fn layout(trace: &Trace) -> Vec<Item> {
    let h = &trace.header;
    let mut items = vec![Item::Rect {
        x: 0.0,
        y: 0.0,
        w: WIDTH,
        h: HEIGHT,
        fill: WHITE,
    }];
    items.push(text(
        WIDTH / 2.0,
        30.0,
        22.0,
        Anchor::Middle,
        format!(
            "{} on {} ({}, {} params)",
            h.netspec_name, h.dataset, h.phase, h.total_params
        ),
        INK,
    ));

    // Loss: the raw line (thinned to an envelope when long) and the smoothed line.
    let steps: Vec<(f64, f64)> = trace
        .steps
        .iter()
        .map(|s| (s.step as f64, s.loss))
        .collect();
    let smoothed = smooth(&steps.iter().map(|p| p.1).collect::<Vec<_>>());
    let stride = steps.len().div_ceil(1000).max(1);
    let smooth_pts: Vec<(f64, f64)> = steps
        .iter()
        .zip(&smoothed)
        .enumerate()
        .filter(|(i, _)| i % stride == 0 || *i + 1 == steps.len())
        .map(|(_, (p, s))| (p.0, *s))
        .collect();
    let loss = [
        Series {
            name: "loss",
            pts: envelope(&steps, stride),
            color: RAW,
            width: 1.0,
            dots: false,
        },
        Series {
            name: "smoothed",
            pts: smooth_pts,
            color: SMOOTH,
            width: 2.0,
            dots: false,
        },
    ];
    panel(
        &mut items,
        (70.0, 70.0, 440.0, 330.0),
        "loss per step",
        "step",
        &loss,
        false,
    );

    let acc = |f: fn(&crate::trace::EpochLine) -> Option<f64>| -> Vec<(f64, f64)> {
        trace
            .epochs
            .iter()
            .filter_map(|e| f(e).map(|a| ((e.epoch + 1) as f64, 100.0 * a)))
            .collect()
    };
    let accuracy = [
        Series {
            name: "validation",
            pts: acc(|e| e.val_acc),
            color: VAL,
            width: 2.0,
            dots: true,
        },
        Series {
            name: "test",
            pts: acc(|e| e.test_acc),
            color: TEST,
            width: 2.0,
            dots: true,
        },
        Series {
            name: "train",
            pts: acc(|e| e.train_acc),
            color: TRAIN,
            width: 2.0,
            dots: true,
        },
    ];
    panel(
        &mut items,
        (630.0, 70.0, 440.0, 330.0),
        "accuracy (%) per epoch",
        "epochs done",
        &accuracy,
        true,
    );
    items
}

/// Long series become, per bucket of `stride` points, their minimum and maximum (in step order).
fn envelope(pts: &[(f64, f64)], stride: usize) -> Vec<(f64, f64)> {
    if stride <= 1 {
        return pts.to_vec();
    }
    let mut out = Vec::new();
    for b in pts.chunks(stride) {
        let finite = b.iter().filter(|p| p.1.is_finite());
        let lo = finite.clone().min_by(|a, c| a.1.total_cmp(&c.1));
        let hi = finite.max_by(|a, c| a.1.total_cmp(&c.1));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo.0 <= hi.0 {
                out.extend([*lo, *hi]);
            } else {
                out.extend([*hi, *lo]);
            }
        }
    }
    out
}

/// One framed chart with grid, ticks, legend and series.
fn panel(
    items: &mut Vec<Item>,
    (px, py, pw, ph): (f32, f32, f32, f32),
    title: &str,
    xlabel: &str,
    series: &[Series],
    percent: bool,
) {
    items.push(text(px, py - 12.0, 16.0, Anchor::Start, title, INK));
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.pts.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    if finite().next().is_none() {
        frame(items, px, py, pw, ph);
        let what = if percent {
            "no accuracy in epoch lines"
        } else {
            "no steps"
        };
        items.push(text(
            px + pw / 2.0,
            py + ph / 2.0,
            14.0,
            Anchor::Middle,
            what,
            AXIS,
        ));
        return;
    }
    let (mut x0, mut x1) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (mut y0, mut y1) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    if x1 - x0 < 1.0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let pad = if y1 > y0 {
        0.05 * (y1 - y0)
    } else {
        0.5f64.max(0.05 * y0.abs())
    };
    y0 -= pad;
    y1 += pad;
    if percent {
        y0 = y0.max(0.0);
        y1 = y1.min(100.0);
    }
    let sx = move |x: f64| px + ((x - x0) / (x1 - x0)) as f32 * pw;
    let sy = move |y: f64| py + ph - ((y - y0) / (y1 - y0)) as f32 * ph;

    for t in ticks(y0, y1) {
        let y = sy(t.0);
        items.push(Item::Line {
            pts: vec![(px, y), (px + pw, y)],
            color: GRID,
            width: 1.0,
        });
        items.push(text(px - 6.0, y + 4.0, 12.0, Anchor::End, t.1, AXIS));
    }
    for t in ticks(x0, x1) {
        let x = sx(t.0);
        items.push(Item::Line {
            pts: vec![(x, py), (x, py + ph)],
            color: GRID,
            width: 1.0,
        });
        items.push(text(x, py + ph + 18.0, 12.0, Anchor::Middle, t.1, AXIS));
    }
    items.push(text(
        px + pw / 2.0,
        py + ph + 42.0,
        14.0,
        Anchor::Middle,
        xlabel,
        INK,
    ));
    frame(items, px, py, pw, ph);

    for s in series {
        // Break the line at non-finite values.
        let mut run = Vec::new();
        for &(x, y) in s.pts.iter().chain(std::iter::once(&(f64::NAN, f64::NAN))) {
            if x.is_finite() && y.is_finite() {
                run.push((sx(x), sy(y)));
            } else if !run.is_empty() {
                let pts = std::mem::take(&mut run);
                if s.dots {
                    items.push(Item::Dots {
                        pts: pts.clone(),
                        color: s.color,
                        r: 3.0,
                    });
                }
                items.push(Item::Line {
                    pts,
                    color: s.color,
                    width: s.width,
                });
            }
        }
    }

    // The legend sits top right for falling curves (loss) and bottom right for rising ones
    // (accuracy), on a white box so that curves passing under it do not hide it.
    let shown: Vec<&Series> = series.iter().filter(|s| !s.pts.is_empty()).collect();
    let lx = px + pw - 110.0;
    let mut ly = if percent {
        py + ph - 18.0 * shown.len() as f32
    } else {
        py + 20.0
    };
    items.push(Item::Rect {
        x: lx - 8.0,
        y: ly - 15.0,
        w: 112.0,
        h: 18.0 * shown.len() as f32 + 4.0,
        fill: WHITE,
    });
    for s in shown {
        items.push(Item::Line {
            pts: vec![(lx, ly - 4.0), (lx + 24.0, ly - 4.0)],
            color: s.color,
            width: 2.0,
        });
        items.push(text(lx + 30.0, ly, 12.0, Anchor::Start, s.name, INK));
        ly += 18.0;
    }
}

fn frame(items: &mut Vec<Item>, x: f32, y: f32, w: f32, h: f32) {
    let pts = vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)];
    items.push(Item::Line {
        pts,
        color: AXIS,
        width: 1.0,
    });
}

/// About five round tick values (1, 2 or 5 times a power of ten) in `[lo, hi]`, with labels.
fn ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let raw = (hi - lo) / 5.0;
    if !(raw.is_finite() && raw > 0.0) {
        return vec![];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = mag
        * match raw / mag {
            n if n < 1.5 => 1.0,
            n if n < 3.0 => 2.0,
            n if n < 7.0 => 5.0,
            _ => 10.0,
        };
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let mut out = Vec::new();
    let mut k = (lo / step).ceil();
    while k * step <= hi + step * 1e-9 {
        let v = k * step;
        out.push((
            v,
            format!("{:.*}", decimals, if v == 0.0 { 0.0 } else { v }),
        ));
        k += 1.0;
    }
    out
}

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        let t: Vec<String> = ticks(0.23, 2.31).into_iter().map(|t| t.1).collect();
        assert_eq!(t, ["0.5", "1.0", "1.5", "2.0"]);
        let t: Vec<String> = ticks(1.0, 7020.0).into_iter().map(|t| t.1).collect();
        assert_eq!(t, ["1000", "2000", "3000", "4000", "5000", "6000", "7000"]);
    }

    #[test]
    fn smoothing_of_a_constant_is_the_constant() {
        let s = smooth(&[2.0; 300]);
        assert!(s.iter().all(|v| (v - 2.0).abs() < 1e-12));
        let s = smooth(&[1.0, f64::NAN, 1.0]);
        assert!(s[1].is_nan() && (s[2] - 1.0).abs() < 1e-12);
    }
}
