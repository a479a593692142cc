//! nn: lowers a [`spec::NetSpec`] to `graph` primitives and assembles the step programs.
//!
//! Layers are compositions of primitives; none has a backward rule of its own. The train step is one
//! StableHLO function: forward + loss + backward (from `graph::grad`) + optimizer + BN running statistics +
//! metrics. Its ABI (see ARCHITECTURE.md, "Train-step ABI") is described by [`Program::inputs`] and
//! [`Program::outputs`], which the training loop follows slot by slot.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod lower;
pub mod ops;
pub use ops::{with_calls, with_conv_calls, Calls};
mod step;

pub use error::{Error, Result};
pub use lower::Mode;
pub use step::{
    batch_stats, compute_dtype, eval_step, eval_step_in, eval_step_on, eval_step_with, forward,
    forward_graph, grads, grads_in, predict, predict_graph, predict_in, predict_on, predict_with,
    train_step, train_step_on, BN_MOMENTUM,
};

// The train step bakes in the step part of the run's configuration: `spec::RunConfig` (batch size,
// `spec::Optimizer`, weight decay, label smoothing); the learning rate is an input.

/// Element type of a program slot (what the host must upload / will download).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    F32,
    I32,
}

/// What a slot of a program's signature holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// A trainable parameter, by its `spec` name (e.g. `l1.conv.w`).
    Param(String),
    /// Optimizer state for a parameter: `opt.m.<name>` / `opt.v.<name>`.
    OptState(String),
    /// A BN running statistic, by its `spec` buffer name (e.g. `l1.bn.mean`).
    Buffer(String),
    /// Completed-steps counter (i32 scalar).
    Step,
    /// Input images, f32 `[B, C, H, W]`.
    Images,
    /// Labels, i32 `[B]`; in eval, `-1` marks padding that is not counted.
    Labels,
    /// Learning rate, f32 scalar.
    LearningRate,
    /// Mean loss of the batch (train) or sum of losses (eval), f32 scalar.
    Loss,
    /// Number of correct top-1 predictions, i32 scalar.
    Correct,
    /// Logits `[B, classes]` (predict, forward).
    Logits,
    /// Gradient of the loss with respect to the named parameter (the `grads` program).
    Grad(String),
}

/// One input or output of a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub kind: SlotKind,
    pub elem: ElemType,
    pub dims: Vec<usize>,
}

/// A compiled-to-text step program and its signature.
#[derive(Clone, Debug)]
pub struct Program {
    /// The StableHLO module (one public `@main`).
    pub mlir: String,
    pub inputs: Vec<Slot>,
    pub outputs: Vec<Slot>,
    /// For each input, the output it is aliased to (`tf.aliasing_output`), i.e. donated state.
    pub aliases: Vec<Option<usize>>,
    /// FLOPs of one execution, counted from the graph (the whole batch, all devices together).
    pub flops: u64,
    /// The graph `mlir` was printed from (for the reference interpreter and other printers).
    pub graph: graph::Graph,
    /// The devices one execution runs on (`mhlo.num_partitions`): 1, or N for a program emitted
    /// by [`train_step_on`], [`eval_step_on`] or [`predict_on`], whose images and labels are split
    /// along the batch over N devices and every other argument is replicated (the slot dims above
    /// stay the global ones).
    pub partitions: usize,
}

impl Program {
    /// Index of the first input slot of `kind`.
    pub fn input_index(&self, kind: &SlotKind) -> Option<usize> {
        self.inputs.iter().position(|s| &s.kind == kind)
    }

    /// Index of the first output slot of `kind`.
    pub fn output_index(&self, kind: &SlotKind) -> Option<usize> {
        self.outputs.iter().position(|s| &s.kind == kind)
    }
}
