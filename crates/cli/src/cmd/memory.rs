//! The training-memory estimate of `netspec summary` (torchinfo-style): parameters, gradients,
//! optimizer state, BN statistics and activations at a batch size, all f32.
//!
//! Formula (bytes; P = trainable parameters, S = BN running-statistics values, m = optimizer moments
//! per parameter: SGD 0, momentum 1, Adam/AdamW 2):
//! * parameters `4·P`, gradients `4·P`, optimizer state `4·m·P`, BN statistics `4·S`;
//! * activations: the sum of the sizes of every intermediate value of the training-mode forward graph
//!   at batch `B` (`nn::forward_graph`: every primitive's result except parameters and constants).
//!   Reverse mode may keep all of them for the backward pass; XLA fuses elementwise chains and frees
//!   dead buffers, so the real peak is lower: this is an upper estimate of what the forward keeps.
//!
//! The backward pass's own temporaries and XLA's workspace are not counted.

use graph::{DType, Prim};

pub struct Memory {
    pub batch: usize,
    pub trainable: u64,
    pub non_trainable: u64,
    pub moments: u64,
    pub activations: u64,
}

impl Memory {
    pub fn total(&self) -> u64 {
        4 * self.trainable * (2 + self.moments) + 4 * self.non_trainable + self.activations
    }
}

fn bytes(d: DType) -> u64 {
    match d {
        DType::F64 | DType::I64 | DType::U64 => 8,
        DType::F32 | DType::I32 | DType::U32 => 4,
        DType::BF16 => 2,
        DType::U8 | DType::Pred => 1,
    }
}

/// The estimate for `spec` at batch `batch` with an optimizer of `moments` moments per parameter.
pub fn estimate(spec: &spec::NetSpec, batch: usize, moments: u64) -> anyhow::Result<Memory> {
    let trainable = spec::params(spec)?.iter().map(|p| p.numel() as u64).sum();
    let non_trainable = spec::buffers(spec)?.iter().map(|p| p.numel() as u64).sum();
    let g = nn::forward_graph(spec, batch)?;
    let live = g.live_nodes();
    let mut activations = 0u64;
    for (node, _) in g.nodes().iter().zip(&live).filter(|(_, l)| **l) {
        let counted = match node.prim {
            Prim::Parameter { .. } | Prim::Constant { .. } | Prim::CustomVjp(_) => false,
            Prim::Iota { .. }
            | Prim::Convert { .. }
            | Prim::Unary(_)
            | Prim::Binary(_)
            | Prim::Compare(_)
            | Prim::Select
            | Prim::BroadcastInDim { .. }
            | Prim::Reshape { .. }
            | Prim::Transpose { .. }
            | Prim::Slice { .. }
            | Prim::Pad { .. }
            | Prim::Concatenate { .. }
            | Prim::Reverse { .. }
            | Prim::Barrier
            | Prim::Reduce { .. }
            | Prim::ReduceWindow { .. }
            | Prim::SelectAndScatter { .. }
            | Prim::DotGeneral(_)
            | Prim::Convolution(_)
            | Prim::ConvCall(_)
            | Prim::MatMulCall(_)
            | Prim::AdamCall(_)
            | Prim::RngBitGenerator { .. } => true,
        };
        if counted {
            activations += node
                .outs
                .iter()
                .map(|t| t.numel() as u64 * bytes(t.dtype))
                .sum::<u64>();
        }
    }
    Ok(Memory {
        batch,
        trainable,
        non_trainable,
        moments,
        activations,
    })
}

/// `12.3 MB` (decimal units).
pub fn human(b: u64) -> String {
    let x = b as f64;
    for (s, u) in [(1e9, "GB"), (1e6, "MB"), (1e3, "kB")] {
        if x >= s {
            return format!("{:.2} {u}", x / s);
        }
    }
    format!("{b} B")
}

/// The report lines (ending with a newline).
pub fn report(m: &Memory, optimizer: &str) -> String {
    let t = spec::summary::thousands;
    let p4 = 4 * m.trainable;
    let mut s = String::new();
    s.push_str(&format!(
        "trainable params: {} ({}); non-trainable params: {} (BN running statistics, {})\n",
        t(m.trainable),
        human(p4),
        t(m.non_trainable),
        human(4 * m.non_trainable)
    ));
    s.push_str(&format!(
        "training memory estimate at batch {} (f32, {optimizer}: {} moment(s) per parameter):\n",
        m.batch, m.moments
    ));
    let rows = [
        ("parameters", p4, "4 B x trainable".to_string()),
        ("gradients", p4, "4 B x trainable".to_string()),
        (
            "optimizer state",
            p4 * m.moments,
            format!("4 B x {} x trainable", m.moments),
        ),
        (
            "BN statistics",
            4 * m.non_trainable,
            "4 B x non-trainable".into(),
        ),
        (
            "activations",
            m.activations,
            "every intermediate of the training-mode forward graph (an upper estimate)".into(),
        ),
        ("total", m.total(), String::new()),
    ];
    for (name, b, how) in rows {
        s.push_str(format!("  {name:<16} {:>10}  {how}", human(b)).trim_end());
        s.push('\n');
    }
    s
}
