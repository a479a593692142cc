//! train: everything around the compiled train step that is not the step itself.
//!
//! This crate is the data side of training (see ARCHITECTURE.md, "train (data side)"):
//! - [`data`]: in-memory datasets and their loaders (IDX, CIFAR-10 binary, lean4-mlir's Imagenette binary),
//!   image folders and array files streamed from disk, and [`data::Source`], what the producers read;
//! - [`augment`]: normalisation, crops and flips that turn `u8` images into `f32` NCHW batches;
//! - [`order`]: the seeded PRNG, the per-epoch shuffle and the per-sample augmentation streams
//!   (fully specified so that the JAX export reproduces them bit for bit);
//! - [`batch`]: prefetching batch producers on background threads, resumable at any (epoch, batch);
//! - [`schedule`]: learning-rate schedules;
//! - [`trace`]: JSONL traces (writer, reader, tolerance diff);
//! - [`checkpoint`]: safetensors files, written atomically;
//! - [`exchange`]: weights in torchvision/timm names (export and `--init`);
//! - [`plot`]: loss and accuracy curves as SVG or PNG;
//! - [`bench`]: timing of the compiled train step (`netspec bench`);
//! - [`bench_data`]: timing of the batch producers on folders and arrays (`netspec bench-data`).
//!
//! The training loop lives beside these modules and uses them:
//! - [`device`]: the executor (today a PJRT client): compile, upload, execute with donation, read back;
//! - [`runner`]: the one step runner: compiled train/eval steps with the state resident on the
//!   devices; training, evaluation, checkpoint evaluation and the bench all step through it;
//! - [`predict`]: the compiled predict program with a model's weights on the device;
//! - [`run`]: a whole run (its configuration, data, code generation, the step loop, evaluation,
//!   traces, checkpoints, resume, interruption, divergence) and checkpoint evaluation.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod augment;
pub mod batch;
pub mod bench;
pub mod bench_data;
pub mod checkpoint;
pub mod data;
pub mod device;
mod error;
pub mod exchange;
pub mod order;
pub mod plot;
mod png;
pub mod predict;
pub mod run;
pub mod runner;
pub mod schedule;
pub mod trace;

pub use error::{Error, Result};
