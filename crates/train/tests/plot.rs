//! Plots: real PNG and SVG files from a trace.

mod common;

use std::io::Read;

use common::{msg, TempDir};
use serde_json::json;
use train::trace::{EpochLine, Header, Step, Trace};

fn trace(steps: usize, epochs: u64) -> Trace {
    let header = Header {
        phase: "phase3".into(),
        netspec_name: "mnist-mlp".into(),
        netspec_hash: "00".into(),
        config: json!({}),
        total_params: 669_706,
        dataset: "fashion-mnist".into(),
        emitter_version: "1".into(),
        extra: Default::default(),
    };
    let per = (steps as u64 / epochs.max(1)).max(1);
    let steps = (0..steps)
        .map(|i| {
            let t = i as f64;
            let noise = ((i * 7919) % 13) as f64 / 40.0;
            Step::new(
                i as u64 + 1,
                i as u64 / per,
                2.3 * (-t / 300.0).exp() + 0.3 + noise,
                1e-3,
            )
        })
        .collect();
    let epochs = (0..epochs)
        .map(|e| EpochLine {
            epoch: e,
            test_acc: Some(0.84 + 0.005 * e as f64),
            train_acc: Some(0.85 + 0.006 * e as f64),
            ..Default::default()
        })
        .collect();
    Trace {
        header,
        steps,
        epochs,
    }
}

/// Walks the PNG chunks, checks every CRC, and returns (width, height, raw scanlines).
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let (mut at, mut w, mut h, mut idat, mut ended) = (8, 0, 0, Vec::new(), false);
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        let crc = u32::from_be_bytes(bytes[at + 8 + len..at + 12 + len].try_into().unwrap());
        let mut c = flate2::Crc::new();
        c.update(kind);
        c.update(data);
        assert_eq!(
            c.sum(),
            crc,
            "CRC of chunk {}",
            String::from_utf8_lossy(kind)
        );
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(&data[8..13], &[8, 2, 0, 0, 0], "8-bit RGB");
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => ended = true,
            other => panic!("unexpected chunk {other:?}"),
        }
        at += 12 + len;
    }
    assert!(ended && at == bytes.len());
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(raw.len(), h * (1 + 3 * w));
    (w, h, raw)
}

#[test]
fn png_is_a_real_image_with_the_curves() {
    let d = TempDir::new("plot");
    let p = d.join("curves.png");
    train::plot::plot(&trace(937, 2), &p).unwrap();
    let (w, h, raw) = decode_png(&std::fs::read(&p).unwrap());
    assert_eq!((w, h), (1100, 470));
    let pixels: Vec<[u8; 3]> = raw
        .chunks(1 + 3 * w)
        .flat_map(|row| {
            row[1..]
                .chunks(3)
                .map(|c| [c[0], c[1], c[2]])
                .collect::<Vec<_>>()
        })
        .collect();
    let inked = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    assert!(
        inked > 5_000 && inked < w * h / 2,
        "{inked} non-white pixels"
    );
    // The smoothed loss (dark blue) and the test accuracy (orange) are drawn.
    assert!(pixels.contains(&[25, 85, 175]), "no smoothed loss line");
    assert!(pixels.contains(&[215, 100, 15]), "no test accuracy line");
}

#[test]
fn svg_is_well_formed() {
    let d = TempDir::new("plot-svg");
    let p = d.join("curves.svg");
    train::plot::plot(&trace(5000, 12), &p).unwrap();
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(
        s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
            && s.trim_end().ends_with("</svg>")
    );
    // Every element is self-closed or closed by its own end tag, in order.
    let mut stack = Vec::new();
    for tag in s.split('<').skip(1) {
        let tag = &tag[..tag.find('>').expect("unclosed tag")];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.to_string()));
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(
        s.contains("<polyline")
            && s.contains("loss per step")
            && s.contains("mnist-mlp on fashion-mnist")
    );
    // 5000 steps are thinned to an envelope: the file stays small.
    assert!(s.len() < 200_000, "{} bytes", s.len());
}

#[test]
fn traces_without_epochs_or_steps_still_plot() {
    let d = TempDir::new("plot-empty");
    let svg = train::plot::svg(&trace(0, 0));
    assert!(svg.contains("no steps") && svg.contains("no accuracy in epoch lines"));
    train::plot::plot(&trace(1, 0), &d.join("one.png")).unwrap();
    let e = msg(train::plot::plot(&trace(3, 1), &d.join("curves.jpg")));
    assert!(e.contains("name the file .svg or .png"), "{e}");
}
