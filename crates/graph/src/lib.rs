//! graph: the typed primitive IR of netspec, its StableHLO printer, and reverse-mode autodiff at
//! generation time.
//!
//! - [`Graph`] is an append-only list of StableHLO-shaped primitives ([`Prim`]) with builder methods that
//!   check shape/dtype rules and return [`Value`] handles (`Result<Value>`; errors name the op and shapes).
//! - [`print_module`] prints a graph as one module with a public `@main` (pure, deterministic).
//! - [`vjp`] / [`grad`] append the backward pass to the same graph, using one VJP rule per primitive
//!   (next to its shape rule and printing in `prims/*`). [`Graph::custom_vjp`] lets a composite supply
//!   its own rule.
//! - Constants are folded and de-duplicated while building; dead nodes are never printed;
//!   [`Graph::flops`] counts floating-point work.
//!
//! This crate does no IO and knows nothing about layers, files or PJRT.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod autodiff;
mod builders;
mod error;
mod fold;
mod graph;
mod literal;
mod prims;
mod printer;
mod target;
mod types;

pub use autodiff::{grad, vjp, CustomVjp, CustomVjpCtx, VjpRule};
pub use error::{Error, Result};
pub use graph::{ArgAttrs, Graph, Node, Value};
pub use literal::{round_to, Literal};
pub use prims::{
    expand_conv_call, AdamCall, BinaryOp, CmpDir, ConvCall, ConvDims, ConvPass, ConvSpec, DotDims,
    MatMulCall, Prim, ReduceOp, RngAlgorithm, UnaryOp, Window,
};
pub use printer::{print_module, print_module_with, PrintOptions};
pub use target::{for_target, print_for, Target};
pub use types::{DType, TensorType};
