//! Throughput of the data side: Fashion-MNIST loading, batch production (Fashion-MNIST batch 128;
//! synthetic Imagenette-sized images, random crop 256→224 + flip, batch 32), and checkpoint I/O.
//!
//! `cargo run --release -p train --example data_bench`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use train::augment::Preprocess;
use train::batch::{BatchConfig, Batcher, Mode, Position};
use train::data::{self, Dataset, DatasetKind, Split};

fn drain(ds: &Arc<Dataset>, pre: &Preprocess, batch: usize, threads: usize, batches: u64) -> f64 {
    let cfg = BatchConfig {
        batch_size: batch,
        seed: 1,
        threads,
        prefetch: 4,
        mode: Mode::Train,
        start: Position::default(),
        epochs: None,
        ..BatchConfig::default()
    };
    let mut b = Batcher::plain(ds.clone(), pre.clone(), cfg).unwrap();
    let t = Instant::now();
    for _ in 0..batches {
        b.next_batch().unwrap().unwrap();
    }
    batches as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let dir = DatasetKind::FashionMnist.default_dir().unwrap();
    let t = Instant::now();
    let train = Arc::new(data::load(&dir, DatasetKind::FashionMnist, Split::Train).unwrap());
    println!(
        "load Fashion-MNIST train (60,000 gz IDX): {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let pre = Preprocess::for_kind(DatasetKind::FashionMnist, true, true);
    for threads in [1, 2] {
        let r = drain(&train, &pre, 128, threads, 2000);
        println!("fashion-mnist batch 128, {threads} thread(s): {r:.0} batches/s");
    }

    // 600 random 3x256x256 images stand in for Imagenette's train.bin.
    let n = 600;
    let mut s = 1u64;
    let images = (0..n * 3 * 256 * 256)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    let inet = Arc::new(Dataset::new(images, labels, 3, 256, 256, 10).unwrap());
    let pre = Preprocess::for_kind(DatasetKind::Imagenette, true, true);
    for threads in [1, 2] {
        let r = drain(&inet, &pre, 32, threads, 100);
        println!("imagenette-sized batch 32 (crop 224 + flip + mean/std), {threads} thread(s): {r:.1} batches/s");
    }

    // A ResNet-34-sized checkpoint: 21.8M parameters, plus Adam m and v.
    let p = std::env::temp_dir().join(format!("netspec-bench-{}.safetensors", std::process::id()));
    let w: Vec<f32> = (0..21_800_000).map(|i| i as f32 * 1e-7).collect();
    let tensors = [
        ("w", &[21_800_000usize][..], &w[..]),
        ("opt.m.w", &[21_800_000][..], &w[..]),
        ("opt.v.w", &[21_800_000][..], &w[..]),
    ];
    let t = Instant::now();
    train::checkpoint::save_f32(&p, &tensors, &BTreeMap::new()).unwrap();
    let wt = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (back, _) = train::checkpoint::load_f32(&p).unwrap();
    let rt = t.elapsed().as_secs_f64();
    assert_eq!(back[2].2.len(), w.len());
    let mb = 3.0 * 4.0 * 21.8;
    println!(
        "checkpoint {mb:.0} MB: write (with fsync) {:.0} ms, read + validate {:.0} ms",
        wt * 1e3,
        rt * 1e3
    );
    let _ = std::fs::remove_file(&p);
}
