//! nn: lowers a [`spec::NetSpec`] to `graph` primitives and assembles the step programs.
//!
//! Layers are compositions of primitives; none has a backward rule of its own. The train step is one
//! StableHLO function: forward + loss + backward (from `graph::grad`) + optimizer + BN running statistics +
//! metrics. Its ABI (see ARCHITECTURE.md, "Train-step ABI") is described by [`Program::inputs`] and
//! [`Program::outputs`], which the training loop follows slot by slot.

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
    /// Logits `[B, classes]` (predict).
    Logits,
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
    /// FLOPs of one execution, counted from the graph.
    pub flops: u64,
}

/// Optimizer of the train step. All updates happen in-graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `p ← p − lr·(g + wd·p)` (weight decay coupled, kernels only).
    Sgd,
    /// Heavy ball: `m ← μ·m + g`, `p ← p − lr·m` (weight decay coupled, kernels only).
    Momentum { mu: f32 },
    /// Adam with bias correction from the step counter; weight decay coupled into the gradient (kernels only).
    Adam { beta1: f32, beta2: f32, eps: f32 },
    /// AdamW: Adam with decoupled decay `p ← p − lr·(m̂/(√v̂+ε) + wd·p)` on kernels only.
    AdamW { beta1: f32, beta2: f32, eps: f32 },
}

/// Everything about the train step that is baked into the program (the learning rate is an input).
#[derive(Clone, Debug, PartialEq)]
pub struct StepConfig {
    pub batch_size: usize,
    pub optimizer: Optimizer,
    pub weight_decay: f32,
    pub label_smoothing: f32,
}

// Entry points (implemented with the lowering):
//   pub fn train_step(spec: &spec::NetSpec, cfg: &StepConfig) -> Result<Program, Error>
//   pub fn eval_step(spec: &spec::NetSpec, batch_size: usize) -> Result<Program, Error>
//   pub fn predict(spec: &spec::NetSpec, batch_size: usize) -> Result<Program, Error>
// Inputs/outputs follow ARCHITECTURE.md's ABI; `Program::inputs`/`outputs` list them in order.
