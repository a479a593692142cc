//! `spec`: neural networks as plain data.
//!
//! * [`NetSpec`], [`Layer`], [`Act`] — the model; `layer.rs` is the reference definition of every
//!   block (the lowering and the JAX export implement exactly what its doc comments say).
//! * [`infer_shapes`] / [`NetSpec::check`] — shape inference with errors that name the layer.
//! * [`params`], [`buffers`], [`param_count`], [`init`], [`init_buffers`] — the parameter ABI
//!   (names, shapes, order, init, weight-decay flag) and deterministic initialisation.
//! * [`analyze`] — per-layer output shape, parameters and forward FLOPs.
//! * [`parse`], [`parse_checked`], [`print`] — the spec text format (`text.rs` documents it).
//! * [`RunConfig`] — one training run's configuration (optimizer, schedule, batch, dataset, …; the
//!   zoo's recipes are `RunConfig`s); [`zoo`] — the 16 reference models; [`summary`] — the table
//!   printed by `netspec summary`.
//!
//! This crate knows nothing about MLIR, graphs or devices.

mod analyze;
mod config;
mod error;
mod init;
mod layer;
pub mod summary;
pub use summary::summary;
mod text;
pub mod zoo;

pub use analyze::{
    analyze, buffers, infer_shapes, param_count, params, Init, LayerInfo, ParamSpec, Shape,
    MAX_BLOCKS, MAX_DIM, MAX_ELEMS,
};
pub use config::{Augment, Dataset, Optimizer, RunConfig, Schedule};
pub use error::{ParseError, SpecError};
pub use init::{init, init_buffers, init_tensor, SplitMix64};
pub use layer::{make_divisible, Act, Layer, NetSpec, LAYER_KINDS};
pub use text::{parse, parse_checked, print, print_layer};

impl NetSpec {
    /// Shape-checks the spec: `Ok(output shape of every layer)` or the first error.
    pub fn check(&self) -> Result<Vec<Shape>, SpecError> {
        infer_shapes(self)
    }
}
