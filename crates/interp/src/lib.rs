//! interp: a reference interpreter for `graph::Graph`, netspec's third executor (beside XLA through PJRT
//! and IREE in the tests). It evaluates every primitive from its definition in the StableHLO spec, with
//! no XLA and no `unsafe`, so a fault in XLA or in how netspec prints a module that XLA happens to accept
//! shows up as a disagreement.
//!
//! - [`Precision::F64`]: every float computed and kept in f64, whatever its declared type (the referee).
//! - [`Precision::F32`]: every op's float results rounded to their declared type (f32 / bf16) as the device
//!   stores them; within an op (sums of reductions, dot products, convolutions) accumulation is in f64, so
//!   results are the correctly rounded ones rather than XLA's (whose summation order is its own).
//!
//! Integers wrap as XLA's do; `rng_bit_generator` reproduces XLA's THREE_FRY and PHILOX bit for bit.
//! One function per primitive family (`elementwise`, `layout`, `reduce`, `dot`, `conv`, `rng`), each
//! citing the spec's semantics; `eval` holds the exhaustive `match` over `Prim`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![forbid(unsafe_code)]

mod conv;
mod dot;
mod elementwise;
mod error;
mod eval;
mod layout;
mod reduce;
mod rng;
mod tensor;

pub use error::{Error, Result};
pub use tensor::{Data, Tensor};

use graph::Graph;

/// How floats are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Every float value computed and held in f64 (declared f32 / bf16 types are not rounded).
    F64,
    /// Every op's float results rounded to their declared element type (f64 values stay f64).
    F32,
}

/// Evaluation options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub precision: Precision,
    /// Threads for large matrix products and convolutions (scoped threads; 1 = none).
    pub threads: usize,
}

impl Options {
    /// The given precision with one thread per available core.
    pub fn new(precision: Precision) -> Options {
        Options {
            precision,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// Evaluates `g` on `args` (one tensor per parameter, of its type) and returns its outputs, in order.
///
/// Errors: wrong argument count or types; an op the interpreter does not evaluate (dot_general,
/// convolution and select_and_scatter on integer operands), each naming the node.
pub fn run(g: &Graph, args: &[Tensor], opts: &Options) -> Result<Vec<Tensor>> {
    eval::run(g, args, opts)
}
