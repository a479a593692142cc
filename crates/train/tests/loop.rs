//! The training loop end to end on Fashion-MNIST through the CPU plugin: learning, exact resume
//! (after a stop at `max_steps` and after an interrupt), divergence, bad data and bad specs.
//!
//! Needs the PJRT CPU plugin (`scripts/setup.sh plugin`) and Fashion-MNIST (`scripts/setup/data.sh`);
//! without them the tests fail with the loaders' / plugin finder's message.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::TempDir;
use spec::RunConfig;
use train::checkpoint;
use train::data::{self, DatasetKind, Split};
use train::run::{self, Observer, Options, StepReport};

/// Writes the first `n_train` / `n_test` images of Fashion-MNIST as plain IDX files into `dir`
/// (so that an epoch is short).
fn subset(dir: &Path, n_train: usize, n_test: usize) {
    let src = DatasetKind::FashionMnist.default_dir().unwrap();
    for (split, prefix, n) in [
        (Split::Train, "train", n_train),
        (Split::Test, "t10k", n_test),
    ] {
        let ds = data::load(&src, DatasetKind::FashionMnist, split)
            .expect("Fashion-MNIST (scripts/setup/data.sh)");
        let per = ds.image_len();
        let mut img = Vec::new();
        for v in [2051u32, n as u32, ds.h as u32, ds.w as u32] {
            img.extend_from_slice(&v.to_be_bytes());
        }
        img.extend_from_slice(&ds.images[..n * per]);
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
        let mut lab = Vec::new();
        for v in [2049u32, n as u32] {
            lab.extend_from_slice(&v.to_be_bytes());
        }
        lab.extend_from_slice(&ds.labels[..n]);
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
    }
}

fn mlp() -> spec::NetSpec {
    spec::zoo::get("mnist-mlp").unwrap()
}

fn config(batch: usize, epochs: u64) -> RunConfig {
    RunConfig {
        batch_size: batch,
        epochs,
        ..spec::zoo::recipe("mnist-mlp").unwrap()
    }
}

fn opts(data: &Path, ck: Option<PathBuf>, trace: Option<PathBuf>) -> Options {
    Options {
        data_dir: Some(data.to_path_buf()),
        checkpoint_dir: ck,
        trace,
        ..Options::default()
    }
}

/// The trace's lines without wall-clock fields.
fn lines_without_wall(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("wall_ms");
            v
        })
        .collect()
}

/// Sets `flag` when step `at` has been reported (a simulated Ctrl-C).
struct InterruptAt {
    at: u64,
    flag: Arc<AtomicBool>,
}

impl Observer for InterruptAt {
    fn step(&mut self, s: &StepReport) {
        if s.step == self.at {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn mlp_learns_fashion_mnist() {
    // 300 steps of batch 128 (0.64 epochs): the 10-class chance level is 10%.
    let spec = mlp();
    let h = config(128, 12);
    let o = Options {
        max_steps: Some(300),
        ..Options::default()
    };
    let s = run::train(&spec, &h, &o, &mut run::Quiet).unwrap();
    assert_eq!(s.step, 300);
    let test = s.test.expect("Fashion-MNIST has a test split");
    assert_eq!(test.total, 10_000);
    let acc = test.accuracy();
    assert!(acc >= 0.78, "test accuracy after 300 steps: {acc}");
}

#[test]
fn resume_continues_exactly() {
    // 3,000 images at batch 100: 30 steps per epoch, 3 epochs = 90 steps.
    let dir = TempDir::new("resume");
    subset(dir.path(), 3000, 1000);
    let spec = mlp();
    let h = config(100, 3);

    let full_trace = dir.join("full.jsonl");
    let full = run::train(
        &spec,
        &h,
        &opts(dir.path(), Some(dir.join("full")), Some(full_trace.clone())),
        &mut run::Quiet,
    )
    .unwrap();
    assert_eq!(full.step, 90);

    // Stop mid-epoch at step 17 (max_steps), interrupt at step 45 (mid-epoch 1), resume to the end.
    let ck = dir.join("part");
    let part_trace = dir.join("part.jsonl");
    let o = Options {
        max_steps: Some(17),
        ..opts(dir.path(), Some(ck.clone()), Some(part_trace.clone()))
    };
    assert_eq!(run::train(&spec, &h, &o, &mut run::Quiet).unwrap().step, 17);

    let flag = Arc::new(AtomicBool::new(false));
    let o = Options {
        resume: Some(ck.clone()),
        interrupt: Some(flag.clone()),
        ..opts(dir.path(), Some(ck.clone()), Some(part_trace.clone()))
    };
    let err = run::train(&spec, &h, &o, &mut InterruptAt { at: 45, flag }).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            train::Error::Interrupted {
                step: 45,
                checkpoint: Some(_)
            }
        ),
        "{text}"
    );
    assert!(text.contains("last.safetensors"), "{text}");

    let o = Options {
        resume: Some(ck.clone()),
        ..opts(dir.path(), Some(ck.clone()), Some(part_trace.clone()))
    };
    let rest = run::train(&spec, &h, &o, &mut run::Quiet).unwrap();
    assert_eq!(rest.step, 90);
    assert_eq!(rest.test, full.test);

    // The pieced-together trace is the uninterrupted one: every step (loss, lr) and epoch line.
    let (a, b) = (
        lines_without_wall(&full_trace),
        lines_without_wall(&part_trace),
    );
    assert_eq!(a.len(), 1 + 90 + 3);
    assert_eq!(a, b);

    // And the final state is bit-identical.
    let fa = checkpoint::read(&dir.join("full").join(run::LAST)).unwrap();
    let fb = checkpoint::read(&ck.join(run::LAST)).unwrap();
    assert_eq!(fa.tensors, fb.tensors);

    // The checkpoint evaluates to the run's final accuracy.
    let r = run::eval_checkpoint(
        &spec,
        &ck,
        &run::EvalData {
            path: Some(dir.path().to_path_buf()),
            ..run::EvalData::default()
        },
        None,
        100,
        pjrt::Device::Cpu,
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        (r.test.correct, r.test.total),
        (full.test.unwrap().correct, full.test.unwrap().total)
    );
    assert_eq!(r.step, Some(90));
}

#[test]
fn resume_rejects_another_configuration() {
    let dir = TempDir::new("resume-config");
    subset(dir.path(), 1000, 200);
    let spec = mlp();
    let h = config(100, 2);
    let ck = dir.join("ck");
    let o = Options {
        max_steps: Some(3),
        ..opts(dir.path(), Some(ck.clone()), None)
    };
    run::train(&spec, &h, &o, &mut run::Quiet).unwrap();
    let other = RunConfig {
        lr: 0.01,
        ..h.clone()
    };
    let o = Options {
        resume: Some(ck.clone()),
        ..opts(dir.path(), Some(ck.clone()), None)
    };
    let text = common::msg(run::train(&spec, &other, &o, &mut run::Quiet));
    assert!(
        text.contains("keeps its configuration") && text.contains("lr"),
        "{text}"
    );
}

#[test]
fn divergence_stops_and_keeps_the_last_good_checkpoint() {
    let dir = TempDir::new("nan");
    subset(dir.path(), 1000, 200);
    let spec = mlp();
    let ck = dir.join("ck");
    // A good epoch first: its checkpoint must survive the divergent run below.
    let good = config(100, 1);
    let good = RunConfig {
        schedule: spec::Schedule::Constant,
        ..good
    };
    run::train(
        &spec,
        &good,
        &opts(dir.path(), Some(ck.clone()), None),
        &mut run::Quiet,
    )
    .unwrap();
    let before = std::fs::read(ck.join(run::LAST)).unwrap();

    let absurd = RunConfig {
        optimizer: spec::Optimizer::Sgd,
        lr: 1e12,
        ..good
    };
    let trace = dir.join("nan.jsonl");
    let err = run::train(
        &spec,
        &absurd,
        &opts(dir.path(), Some(ck.clone()), Some(trace.clone())),
        &mut run::Quiet,
    )
    .unwrap_err();
    let text = err.to_string();
    match &err {
        train::Error::NonFinite {
            step,
            loss,
            checkpoint,
        } => {
            assert!(*step >= 1 && *step < 10, "{text}");
            assert!(!loss.is_finite());
            // The file on disk is the good run's, not this (fresh) run's: not named as its own.
            assert_eq!(checkpoint.as_deref(), None);
        }
        other => panic!("expected a divergence error, got: {other}"),
    }
    assert!(
        text.contains("diverged at step") && text.contains("this run wrote no checkpoint"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(ck.join(run::LAST)).unwrap(),
        before,
        "the good checkpoint was overwritten"
    );
    // The trace ends with the offending step.
    let t = train::trace::read(&trace).unwrap();
    assert!(!t.steps.last().unwrap().loss.is_finite());
}

#[test]
fn truncated_data_file_is_a_clear_error() {
    let dir = TempDir::new("truncated");
    subset(dir.path(), 500, 100);
    let path = dir.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    let text = common::msg(run::train(
        &mlp(),
        &config(100, 1),
        &opts(dir.path(), None, None),
        &mut run::Quiet,
    ));
    assert!(
        text.contains("train-images-idx3-ubyte") && text.contains("at byte"),
        "{text}"
    );
}

/// Records whether compilation was reached.
#[derive(Default)]
struct Infos(Vec<String>);
impl Observer for Infos {
    fn info(&mut self, msg: &str) {
        self.0.push(msg.to_string());
    }
}

#[test]
fn model_and_data_shapes_must_agree_before_compiling() {
    let dir = TempDir::new("mismatch");
    subset(dir.path(), 500, 100);
    // A 3-channel CIFAR model on 1-channel Fashion-MNIST.
    let spec = spec::zoo::get("cifar-cnn").unwrap();
    let h = RunConfig {
        dataset: spec::Dataset::FashionMnist,
        ..config(100, 1)
    };
    let mut infos = Infos::default();
    let text = common::msg(run::train(
        &spec,
        &h,
        &opts(dir.path(), None, None),
        &mut infos,
    ));
    assert!(
        text.contains("cifar-cnn") && text.contains("[3, 32, 32]") && text.contains("[1, 28, 28]"),
        "{text}"
    );
    assert!(
        infos.0.iter().all(|m| !m.contains("compile")),
        "compiled before checking: {:?}",
        infos.0
    );

    // Too few classes for the data's labels.
    let small = spec::zoo::get_with_classes("mnist-mlp", 5).unwrap();
    let text = common::msg(run::train(
        &small,
        &config(100, 1),
        &opts(dir.path(), None, None),
        &mut run::Quiet,
    ));
    assert!(
        text.contains("5 classes") && text.contains("has 10"),
        "{text}"
    );
}

#[test]
fn missing_dataset_names_the_fix() {
    let dir = TempDir::new("missing");
    let text = common::msg(run::train(
        &mlp(),
        &config(100, 1),
        &opts(dir.path(), None, None),
        &mut run::Quiet,
    ));
    assert!(
        text.contains("train-images-idx3-ubyte") && text.contains("data.sh"),
        "{text}"
    );
}

#[test]
fn init_file_sets_the_parameters() {
    // Parameters from a trained checkpoint as an init file: evaluating at step 0 gives the
    // checkpoint's accuracy (same parameters, nothing trained yet).
    let dir = TempDir::new("init");
    subset(dir.path(), 1000, 500);
    let spec = mlp();
    let ck = dir.join("ck");
    let o = Options {
        max_steps: Some(20),
        ..opts(dir.path(), Some(ck.clone()), None)
    };
    let trained = run::train(&spec, &config(100, 2), &o, &mut run::Quiet).unwrap();
    let o = Options {
        max_steps: Some(0),
        init: Some(ck.join(run::LAST)),
        ..opts(dir.path(), None, None)
    };
    let s = run::train(&spec, &config(100, 2), &o, &mut run::Quiet).unwrap();
    assert_eq!(s.step, 0);
    assert_eq!(s.test.unwrap().correct, trained.test.unwrap().correct);
    // A file that lacks a parameter is refused by name.
    let bad = dir.join("bad.safetensors");
    checkpoint::save_f32(&bad, &[("l0.w", &[1], &[0.0])], &Default::default()).unwrap();
    let o = Options {
        max_steps: Some(0),
        init: Some(bad),
        ..opts(dir.path(), None, None)
    };
    let text = common::msg(run::train(&spec, &config(100, 2), &o, &mut run::Quiet));
    assert!(
        text.contains("no tensor l1.w") || text.contains("l1.w"),
        "{text}"
    );
}
