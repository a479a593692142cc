//! The training loop on the reference interpreter (`Executor::Reference`, no plugin involved in the
//! run) against the same run on the CPU plugin: mnist-mlp on a 512-image subset of Fashion-MNIST,
//! 8 steps of batch 64; the f64 interpreter's trace and the f32 one each agree with XLA's under
//! `strict` (atol 1e-4, rtol 1e-3), and the final evaluation counts agree.
//!
//! Needs Fashion-MNIST (`scripts/setup/data.sh`) and, for the XLA side, the CPU plugin.
mod common;

use std::path::Path;

use common::TempDir;
use spec::RunConfig;
use train::data::{self, DatasetKind, Split};
use train::run::{self, Options};
use train::trace::{self, DiffMode};

/// The first `n` train and test images of Fashion-MNIST as IDX files in `dir`.
fn subset(dir: &Path, n: usize) {
    let src = DatasetKind::FashionMnist.default_dir().unwrap();
    for (split, prefix) in [(Split::Train, "train"), (Split::Test, "t10k")] {
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

#[test]
fn reference_interpreter_trains_like_xla() {
    let dir = TempDir::new("reference");
    subset(dir.path(), 512);
    let spec = spec::zoo::get("mnist-mlp").unwrap();
    let cfg = RunConfig {
        batch_size: 64,
        ..spec::zoo::recipe("mnist-mlp").unwrap()
    };
    let run_on = |tag: &str, reference: Option<interp::Precision>| {
        let t = dir.path().join(format!("{tag}.jsonl"));
        let o = Options {
            data_dir: Some(dir.path().to_path_buf()),
            max_steps: Some(8),
            trace: Some(t.clone()),
            reference,
            ..Options::default()
        };
        let s = run::train(&spec, &cfg, &o, &mut run::Quiet).unwrap();
        assert_eq!(s.step, 8);
        (
            trace::read(&t).unwrap(),
            s.test.expect("the test split").correct,
        )
    };
    let (xla, xla_correct) = run_on("xla", None);
    for p in [interp::Precision::F64, interp::Precision::F32] {
        let (r, correct) = run_on(&format!("{p:?}"), Some(p));
        let d = trace::diff(&r, &xla, DiffMode::Strict);
        assert_eq!(d.compared, 8);
        assert_eq!(d.differing, 0, "{p:?}: {:?}", d);
        assert!(
            correct.abs_diff(xla_correct) <= 2,
            "{p:?}: {correct} vs {xla_correct} correct"
        );
    }
}
