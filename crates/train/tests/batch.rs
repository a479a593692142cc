//! The batch producers: resume equivalence, thread independence, partial batches, error and panic
//! propagation, shutdown, and the data-wait measurement.

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::msg;
use train::augment::Preprocess;
use train::batch::{
    batches_per_epoch, build_batch, BatchConfig, Batcher, HostBatch, Mode, Position,
};
use train::data::Dataset;
use train::Error;

/// 103 images of 2×5×5 whose bytes encode their index, labels `index % 10`.
fn dataset() -> Arc<Dataset> {
    let n = 103;
    let images = (0..n * 50).map(|i| ((i / 50) * 2 + i % 7) as u8).collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    Arc::new(Dataset::new(images, labels, 2, 5, 5, 10).unwrap())
}

/// Random 3×4 crops and flips, so that augmentation randomness is part of every comparison.
fn augmenting() -> Preprocess {
    Preprocess {
        out_h: 3,
        out_w: 4,
        random_crop: true,
        hflip: true,
        ..Preprocess::plain(5, 5)
    }
}

fn cfg(threads: usize, start: Position, epochs: u64) -> BatchConfig {
    BatchConfig {
        batch_size: 10,
        seed: 5,
        threads,
        start,
        epochs: Some(epochs),
        prefetch: 4,
        ..BatchConfig::default()
    }
}

fn collect(ds: &Arc<Dataset>, c: BatchConfig) -> Vec<HostBatch> {
    Batcher::plain(ds.clone(), augmenting(), c)
        .unwrap()
        .map(|r| r.unwrap().value)
        .collect()
}

/// Runs `f` on another thread and fails if it takes longer than `secs` (a hang is a failure).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("timed out: the batcher hangs")
}

#[test]
fn training_drops_the_partial_batch_and_visits_each_sample_once() {
    let ds = dataset();
    let all = collect(&ds, cfg(2, Position::default(), 3));
    assert_eq!(batches_per_epoch(103, 10, Mode::Train), 10);
    assert_eq!(all.len(), 30);
    for (i, b) in all.iter().enumerate() {
        assert_eq!((b.epoch, b.index), (i as u64 / 10, i as u64 % 10));
        assert_eq!((b.rows, b.shape), (10, [10, 2, 3, 4]));
        assert_eq!(b.x.len(), 10 * 24);
        let want: Vec<i32> = b.indices.iter().map(|&i| (i % 10) as i32).collect();
        assert_eq!(b.y, want);
    }
    for e in 0..3 {
        let mut seen: Vec<u32> = all[e * 10..e * 10 + 10]
            .iter()
            .flat_map(|b| b.indices.clone())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100, "epoch {e} repeats a sample");
    }
    assert_ne!(
        all[0].indices, all[10].indices,
        "epochs are shuffled differently"
    );
}

#[test]
fn resuming_at_any_position_yields_the_same_batches() {
    let ds = dataset();
    let whole = collect(&ds, cfg(1, Position::default(), 3));
    for (start, threads) in [
        (Position { epoch: 1, batch: 4 }, 3),
        (Position { epoch: 2, batch: 0 }, 2),
        (Position { epoch: 0, batch: 9 }, 1),
    ] {
        let skip = (start.epoch * 10 + start.batch) as usize;
        let resumed = collect(&ds, cfg(threads, start, 3));
        assert_eq!(resumed.len(), whole.len() - skip, "from {start:?}");
        assert!(
            resumed == whole[skip..],
            "resuming at {start:?} with {threads} threads changed the batches"
        );
    }
    // And a single batch built synchronously is the same too.
    let one = build_batch(
        &ds,
        &augmenting(),
        &cfg(1, Position::default(), 3),
        Position { epoch: 2, batch: 7 },
    )
    .unwrap();
    assert_eq!(one, whole[27]);
}

#[test]
fn same_seed_same_stream_other_seed_other_stream() {
    let ds = dataset();
    let a = collect(&ds, cfg(2, Position::default(), 1));
    let b = collect(&ds, cfg(3, Position::default(), 1));
    let c = collect(
        &ds,
        BatchConfig {
            seed: 6,
            ..cfg(2, Position::default(), 1)
        },
    );
    assert!(a == b);
    assert!(a != c);
    let ordered = collect(
        &ds,
        BatchConfig {
            shuffle: false,
            ..cfg(2, Position::default(), 1)
        },
    );
    assert_eq!(ordered[3].indices, (30..40).collect::<Vec<u32>>());
}

#[test]
fn evaluation_keeps_the_partial_batch() {
    let ds = dataset();
    let c = BatchConfig {
        mode: Mode::Eval,
        shuffle: false,
        epochs: None,
        ..cfg(2, Position::default(), 0)
    };
    let pre = Preprocess::plain(5, 5);
    let all: Vec<HostBatch> = Batcher::plain(ds.clone(), pre.clone(), c.clone())
        .unwrap()
        .map(|r| r.unwrap().value)
        .collect();
    assert_eq!(all.len(), 11);
    assert_eq!(all.iter().map(|b| b.rows).sum::<usize>(), 103);
    let last = &all[10];
    assert_eq!(
        (last.rows, last.shape, last.indices.clone()),
        (3, [3, 2, 5, 5], vec![100, 101, 102])
    );
    // Plain preprocessing is x/255 of the stored bytes.
    assert_eq!(
        last.x[..50],
        ds.image(100)
            .iter()
            .map(|&v| v as f32 / 255.0)
            .collect::<Vec<_>>()[..]
    );

    let padded: Vec<HostBatch> = Batcher::plain(
        ds,
        pre,
        BatchConfig {
            pad_last: true,
            ..c
        },
    )
    .unwrap()
    .map(|r| r.unwrap().value)
    .collect();
    let last = &padded[10];
    assert_eq!((last.rows, last.shape), (3, [10, 2, 5, 5]));
    assert_eq!(last.y[3..], [-1; 7]);
    assert!(last.x[3 * 50..].iter().all(|&v| v == 0.0));
    assert_eq!(last.x[..3 * 50], all[10].x[..]);
}

#[test]
fn hook_runs_on_producer_threads_and_its_output_arrives_in_order() {
    let ds = dataset();
    let b = Batcher::new(
        ds,
        augmenting(),
        cfg(3, Position::default(), 2),
        |hb: HostBatch| {
            let name = std::thread::current().name().unwrap_or("").to_string();
            Ok((hb.epoch, hb.index, name))
        },
    )
    .unwrap();
    let got: Vec<_> = b.map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), 20);
    for (i, r) in got.iter().enumerate() {
        assert_eq!((r.epoch, r.index), (i as u64 / 10, i as u64 % 10));
        assert_eq!((r.value.0, r.value.1), (r.epoch, r.index));
        assert!(
            r.value.2.starts_with("netspec-batch-"),
            "hook ran on {:?}",
            r.value.2
        );
    }
}

#[test]
fn hook_errors_reach_the_consumer_in_place_then_the_stream_ends() {
    let ds = dataset();
    let got = within(30, move || {
        let b = Batcher::new(
            ds,
            augmenting(),
            cfg(3, Position::default(), 3),
            |hb: HostBatch| {
                if (hb.epoch, hb.index) == (1, 2) {
                    Err(Error::Invalid("device upload failed".into()))
                } else {
                    Ok(hb.index)
                }
            },
        )
        .unwrap();
        b.map(|r| r.map(|x| x.value).map_err(|e| e.to_string()))
            .collect::<Vec<_>>()
    });
    assert_eq!(got.len(), 13, "12 batches, then the error, then the end");
    assert!(got[..12].iter().all(|r| r.is_ok()));
    assert_eq!(got[12], Err("device upload failed".to_string()));
}

#[test]
fn a_panicking_producer_becomes_an_error() {
    let ds = dataset();
    let got = within(30, move || {
        let mut b = Batcher::new(
            ds,
            augmenting(),
            cfg(2, Position::default(), 1),
            |hb: HostBatch| {
                if hb.index == 3 {
                    panic!("boom in the hook");
                }
                Ok(())
            },
        )
        .unwrap();
        let mut out = Vec::new();
        while let Some(r) = b.next_batch() {
            out.push(r.map(|_| ()).map_err(|e| e.to_string()));
        }
        out
    });
    assert_eq!(got.len(), 4);
    let e = got[3].clone().unwrap_err();
    assert!(
        e.contains("panicked at epoch 0 batch 3") && e.contains("boom in the hook"),
        "{e}"
    );
}

#[test]
fn dropping_an_endless_batcher_stops_its_threads() {
    let ds = dataset();
    within(30, move || {
        let c = BatchConfig {
            epochs: None,
            ..cfg(2, Position::default(), 0)
        };
        let mut b = Batcher::plain(ds, augmenting(), c).unwrap();
        assert_eq!(b.len_hint(), None);
        for _ in 0..25 {
            b.next_batch().unwrap().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50)); // let the producers fill their queues and block
        drop(b);
    });
}

#[test]
fn data_wait_counts_time_spent_waiting_for_slow_producers() {
    let ds = dataset();
    let t0 = Instant::now();
    let mut b = Batcher::new(
        ds,
        augmenting(),
        cfg(1, Position::default(), 1),
        |hb: HostBatch| {
            std::thread::sleep(Duration::from_millis(20));
            Ok(hb.rows)
        },
    )
    .unwrap();
    let mut n = 0;
    while let Some(r) = b.next_batch() {
        r.unwrap();
        n += 1;
    }
    let total = t0.elapsed();
    assert_eq!((n, b.delivered()), (10, 10));
    // Ten 20 ms batches on one producer thread: the consumer waited for nearly all of them.
    assert!(
        b.data_wait() >= Duration::from_millis(150),
        "data wait {:?}",
        b.data_wait()
    );
    assert!(b.data_wait() <= total);
}

#[test]
fn bad_configurations_are_errors() {
    let ds = dataset();
    let e = msg(Batcher::plain(
        ds.clone(),
        augmenting(),
        BatchConfig {
            batch_size: 0,
            ..cfg(1, Position::default(), 1)
        },
    ));
    assert!(e.contains("batch size"), "{e}");
    let e = msg(Batcher::plain(
        ds.clone(),
        augmenting(),
        BatchConfig {
            batch_size: 200,
            ..cfg(1, Position::default(), 1)
        },
    ));
    assert!(e.contains("103 samples make no batch of 200"), "{e}");
    let e = msg(Batcher::plain(
        ds.clone(),
        Preprocess::plain(6, 5),
        cfg(1, Position::default(), 1),
    ));
    assert!(
        e.contains("is 5x5 (W x H), smaller than the model's 5x6 input"),
        "{e}"
    );
    let e = msg(Batcher::plain(
        ds,
        augmenting(),
        BatchConfig {
            threads: 0,
            ..cfg(1, Position::default(), 1)
        },
    ));
    assert!(e.contains("thread"), "{e}");
}
