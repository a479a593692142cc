//! `spec`: neural networks as plain data, in a small language of their own.
//!
//! * [`NetSpec`] — a network as its spec file says it (`ast.rs`): header, block definitions, layers.
//! * The language's core (`core.rs`): the built-in layers ([`Layer`], one row each in [`CORE`]) and
//!   the combinators `seq`, `add`, `parallel`, `repeat`; the prelude (`prelude.ns`) defines the zoo's
//!   composite blocks (convBn, residual, mbConv, transformer, …) in the language itself.
//! * [`analyze`] — the one walk (`elab.rs`): every block expanded into a tree of [`Node`]s with
//!   shapes, parameters (names, shapes, init, decay), BN buffers and FLOPs. The lowering (`nn`) and
//!   the JAX export (`jaxgen`) read that tree; [`infer_shapes`], [`params`], [`buffers`],
//!   [`param_count`] summarise it. Errors name the layer, the path inside it and the line.
//! * [`init`], [`init_buffers`] — deterministic initialisation.
//! * [`parse`], [`parse_checked`], [`print`] — the spec text format (`text.rs` documents it).
//! * [`RunConfig`] — one training run's configuration (optimizer, schedule, batch, dataset, …; the
//!   zoo's recipes are `RunConfig`s); [`zoo`] — the reference models (`zoo/*.ns`); [`summary`] — the
//!   tables printed by `netspec summary`, `netspec zoo` and `netspec layers`.
//!
//! This crate knows nothing about MLIR, graphs or devices.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod analyze;
mod ast;
mod config;
mod core;
mod elab;
mod error;
mod init;
pub mod prelude;
pub mod summary;
pub use summary::summary;
mod text;
pub mod zoo;

pub use analyze::{
    analyze, buffers, infer_shapes, param_count, params, Init, LayerInfo, ParamSpec, Shape,
    MAX_BLOCKS, MAX_DIM, MAX_ELEMS,
};
pub use ast::{
    make_divisible, real_text, Act, BinOp, BlockDef, Call, Expr, Join, NetSpec, Param, Pos, Stmt,
    Ty, Value,
};
pub use config::{
    Augment, Dataset, Normalize, Optimizer, Precision, RunConfig, Schedule, CIFAR10_MEAN,
    CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD,
};
pub use core::{sig, Arg, Def, Inferred, Layer, Sig, CORE};
pub use elab::{Node, Op, MAX_DEPTH, MAX_NODES};
pub use error::{ParseError, SpecError};
pub use init::{init, init_buffers, init_tensor, SplitMix64};
pub use text::{parse, parse_checked, print, print_block, print_layer};

impl NetSpec {
    /// Shape-checks the spec: `Ok(output shape of every layer)` or the first error.
    pub fn check(&self) -> Result<Vec<Shape>, SpecError> {
        infer_shapes(self)
    }
}

impl std::fmt::Display for NetSpec {
    /// The spec in the text format (same as [`print`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&print(self))
    }
}
