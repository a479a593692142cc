//! `stablehlo.rng_bit_generator`: two results (new state, random bits). Not differentiable.

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::{OpText, Prim};
use crate::types::{DType, TensorType};

/// RNG algorithm of `rng_bit_generator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RngAlgorithm {
    Default,
    ThreeFry,
    Philox,
}

impl RngAlgorithm {
    fn mlir(self) -> &'static str {
        match self {
            RngAlgorithm::Default => "DEFAULT",
            RngAlgorithm::ThreeFry => "THREE_FRY",
            RngAlgorithm::Philox => "PHILOX",
        }
    }
}

impl Graph {
    /// `stablehlo.rng_bit_generator`: from a `ui64` state vector, returns `(new_state, bits)` with `bits` of
    /// type `out` (an integer type). The bits carry no gradient.
    pub fn rng_bit_generator(
        &mut self,
        state: Value,
        algorithm: RngAlgorithm,
        out: &TensorType,
    ) -> Result<(Value, Value)> {
        let r = self.push(
            Prim::RngBitGenerator {
                algorithm,
                out: out.clone(),
            },
            vec![state],
        )?;
        Ok((r[0], r[1]))
    }
}

pub(crate) fn shape_rng(
    ins: &[&TensorType],
    algorithm: RngAlgorithm,
    out: &TensorType,
) -> Result<Vec<TensorType>> {
    let s = ins[0];
    let ok_len = match algorithm {
        RngAlgorithm::ThreeFry => s.dims == [2],
        RngAlgorithm::Philox => s.dims == [2] || s.dims == [3],
        RngAlgorithm::Default => s.rank() == 1 && s.dims[0] >= 1,
    };
    if s.dtype != DType::U64 || !ok_len {
        bail!("rng_bit_generator", "state {s} must be a ui64 vector of the size {} needs (2 for THREE_FRY, 2 or 3 for PHILOX) (rng_bit_generator_c2)", algorithm.mlir());
    }
    if !out.dtype.is_int() {
        bail!(
            "rng_bit_generator",
            "output type {out} must have an integer element type"
        );
    }
    Ok(vec![s.clone(), out.clone()])
}

pub(crate) fn print_rng(algorithm: RngAlgorithm, t: &OpText) -> String {
    format!(
        "{} = stablehlo.rng_bit_generator {}, algorithm = {} : {}",
        t.res,
        t.args[0],
        algorithm.mlir(),
        t.fn_type()
    )
}

pub(crate) fn vjp_rng() -> Result<Vec<Option<Value>>> {
    bail!(
        "vjp",
        "rng_bit_generator is not differentiable (its state and bits are integers)"
    )
}
