//! Times netspec's oneDNN convolution kernels on their own (outside any XLA program): the three passes
//! of a 3×3, pad-1 convolution per layer, batch B, NHWC/HWIO, 15 timed calls after 3 warm ones.
//!
//!     cargo run --release -p pjrt --example onednn_conv -- [B] [C->O@HW ...]
//!
//! Default: mnist-cnn's layers at batch 128 (1->32@28 32->32@28 32->64@14 64->64@14). Prints the oneDNN
//! implementation chosen for each pass and the mean and fastest call (BENCHMARKS.md, "Session 7").
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let b: i64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(128);
    let layers: Vec<(i64, i64, i64)> = if args.len() > 1 {
        args[1..]
            .iter()
            .map(|s| {
                let (co, hw) = s.split_once('@').expect("C->O@HW");
                let (c, o) = co.split_once("->").expect("C->O@HW");
                (c.parse().unwrap(), o.parse().unwrap(), hw.parse().unwrap())
            })
            .collect()
    } else {
        vec![(1, 32, 28), (32, 32, 28), (32, 64, 14), (64, 64, 14)]
    };
    if let Err(e) = pjrt::onednn::init() {
        eprintln!("oneDNN unavailable: {e}");
        std::process::exit(1);
    }
    for (c, o, hw) in layers {
        let g: pjrt::onednn::Geometry = [b, hw, hw, c, o, 3, 3, 1, 1, 1, 1, 1, 1];
        let n = |d: &[i64]| d.iter().product::<i64>() as usize;
        let (x, w, y) = (n(&[b, hw, hw, c]), n(&[3, 3, c, o]), n(&[b, hw, hw, o]));
        let fill = |len: usize, k: usize| {
            (0..len)
                .map(|i| ((i % k) as f32) * 0.1)
                .collect::<Vec<f32>>()
        };
        let (xs, ws, ys) = (fill(x, 7), fill(w, 3), fill(y, 5));
        print!("{c}->{o}@{hw}");
        for pass in 0..3 {
            let (a, bb, mut out) = match pass {
                0 => (&xs, &ws, vec![0f32; y]),
                1 => (&ys, &ws, vec![0f32; x]),
                _ => (&xs, &ys, vec![0f32; w]),
            };
            let name = pjrt::onednn::implementation(pass, &g).unwrap_or_else(|e| e);
            for _ in 0..3 {
                pjrt::onednn::conv(pass, &g, a, bb, &mut out).expect("convolution");
            }
            let mut times = Vec::new();
            for _ in 0..15 {
                let t = Instant::now();
                pjrt::onednn::conv(pass, &g, a, bb, &mut out).expect("convolution");
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            let min = times.iter().cloned().fold(f64::MAX, f64::min);
            print!("  pass {pass} {name} {mean:.2} ms (min {min:.2})");
        }
        println!();
    }
}
