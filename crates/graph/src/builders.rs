//! Convenience builders composed of primitives (no new calculus).

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::ReduceOp;

impl Graph {
    /// Sum over `dims`.
    pub fn sum(&mut self, x: Value, dims: &[usize]) -> Result<Value> {
        self.reduce(x, ReduceOp::Sum, dims)
    }

    /// Maximum over `dims`.
    pub fn max_over(&mut self, x: Value, dims: &[usize]) -> Result<Value> {
        self.reduce(x, ReduceOp::Max, dims)
    }

    /// Mean over `dims` (sum times 1/count). A bf16 mean is computed in f32 and rounded once.
    pub fn mean(&mut self, x: Value, dims: &[usize]) -> Result<Value> {
        let dt = self.dtype(x);
        if dt.accumulation() != dt {
            let xa = self.convert(x, dt.accumulation())?;
            let m = self.mean(xa, dims)?;
            return self.convert(m, dt);
        }
        let count: usize = dims
            .iter()
            .map(|&d| self.dims(x).get(d).copied().unwrap_or(1))
            .product();
        let s = self.sum(x, dims)?;
        let inv = self.full_like(1.0 / count as f64, s)?;
        self.mul(s, inv)
    }

    /// NumPy-style broadcast of `x` to `out`: dims are aligned at the end; sizes must match or be 1.
    pub fn broadcast_to(&mut self, x: Value, out: &[usize]) -> Result<Value> {
        let xd = self.dims(x).to_vec();
        if xd.len() > out.len() {
            bail!(
                "broadcast_to",
                "cannot broadcast {} to a lower rank {:?}",
                self.ty(x),
                out
            );
        }
        if xd == out {
            return Ok(x);
        }
        let offset = out.len() - xd.len();
        let dims: Vec<usize> = (offset..out.len()).collect();
        self.broadcast_in_dim(x, out, &dims)
    }

    /// `x · c` for a float constant `c`.
    pub fn scale(&mut self, x: Value, c: f64) -> Result<Value> {
        let k = self.full_like(c, x)?;
        self.mul(x, k)
    }
}
