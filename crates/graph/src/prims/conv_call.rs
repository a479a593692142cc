//! A 2-D convolution computed by a kernel library instead of the compiler: one of its three products
//! (forward, input cotangent, kernel cotangent), printed as `stablehlo.custom_call` to a handler the
//! runtime registers (oneDNN on XLA:CPU, `crates/pjrt/src/onednn.rs`). Same mathematics as the
//! `stablehlo.convolution` it replaces ([`expand_conv_call`] builds that convolution; the tests compare
//! both). Layouts are the lowering's: activations NHWC, kernel HWIO, f32.
//!
//! The three products are one trilinear form `⟨conv(x, w), dy⟩`, so each one's VJP is the other two:
//! - `y = Forward(x, w)`:         x̄ = BackwardData(ȳ, w),   w̄ = BackwardWeights(x, ȳ);
//! - `dx = BackwardData(dy, w)`:  dȳ = Forward(d̄x, w),      w̄ = BackwardWeights(d̄x, dy);
//! - `dw = BackwardWeights(x, dy)`: x̄ = BackwardData(dy, d̄w), dȳ = Forward(x, d̄w).

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::conv::vjp_convolution;
use crate::prims::{ConvDims, ConvSpec, OpText, Prim, VjpArgs};
use crate::types::{DType, TensorType};

/// Which product of the convolution a [`ConvCall`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPass {
    /// `(x, w) -> y`.
    Forward,
    /// `(dy, w) -> dx`: the input cotangent.
    BackwardData,
    /// `(x, dy) -> dw`: the kernel cotangent.
    BackwardWeights,
}

impl ConvPass {
    /// The custom call's target name (the handler the runtime registers under it).
    pub fn target(self) -> &'static str {
        match self {
            ConvPass::Forward => "netspec_conv2d_forward",
            ConvPass::BackwardData => "netspec_conv2d_backward_data",
            ConvPass::BackwardWeights => "netspec_conv2d_backward_weights",
        }
    }
}

/// One product of the 2-D convolution of `x: f32[N, H, W, C]` with `w: f32[KH, KW, C, O]`, window
/// strides `strides`, zero padding `padding` (low, high) per spatial dim; `y: f32[N, OH, OW, O]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvCall {
    pub pass: ConvPass,
    /// `[N, H, W, C]`.
    pub input: [usize; 4],
    /// `[KH, KW, C, O]`.
    pub kernel: [usize; 4],
    pub strides: [usize; 2],
    pub padding: [(usize, usize); 2],
}

impl ConvCall {
    /// `[N, OH, OW, O]`, or an error when the window does not fit.
    pub fn output(&self) -> Result<[usize; 4]> {
        let [n, h, w, c] = self.input;
        let [kh, kw, kc, o] = self.kernel;
        if kc != c || self.strides.contains(&0) || [n, h, w, c, kh, kw, o].contains(&0) {
            bail!(
                "conv_call",
                "input [N, H, W, C] {:?} and kernel [KH, KW, C, O] {:?} with strides {:?} do not form a convolution",
                self.input,
                self.kernel,
                self.strides
            );
        }
        let out = |n: usize, k: usize, s: usize, (lo, hi): (usize, usize)| {
            (n + lo + hi).checked_sub(k).map(|r| r / s + 1)
        };
        match (
            out(h, kh, self.strides[0], self.padding[0]),
            out(w, kw, self.strides[1], self.padding[1]),
        ) {
            (Some(oh), Some(ow)) => Ok([n, oh, ow, o]),
            _ => bail!(
                "conv_call",
                "padded input {:?} (padding {:?}) is smaller than the kernel {:?}",
                self.input,
                self.padding,
                self.kernel
            ),
        }
    }

    /// The same call computing another product.
    fn with(&self, pass: ConvPass) -> ConvCall {
        ConvCall {
            pass,
            ..self.clone()
        }
    }

    /// The `stablehlo.convolution` form of the forward product (what [`expand_conv_call`] emits).
    pub fn spec(&self) -> ConvSpec {
        ConvSpec::new(ConvDims::nhwc(2))
            .strides(&self.strides)
            .padding(&self.padding.map(|(l, h)| (l as i64, h as i64)))
    }

    /// Operand and result shapes for this call's pass.
    fn types(&self) -> Result<([usize; 4], [usize; 4], [usize; 4])> {
        let (x, w, y) = (self.input, self.kernel, self.output()?);
        Ok(match self.pass {
            ConvPass::Forward => (x, w, y),
            ConvPass::BackwardData => (y, w, x),
            ConvPass::BackwardWeights => (x, y, w),
        })
    }
}

impl Graph {
    /// Appends `call` applied to `a` and `b` (see [`ConvPass`] for which operands).
    pub fn conv_call(&mut self, call: &ConvCall, a: Value, b: Value) -> Result<Value> {
        self.push1(Prim::ConvCall(call.clone()), vec![a, b])
    }
}

pub(crate) fn shape_conv_call(ins: &[&TensorType], c: &ConvCall) -> Result<TensorType> {
    let (a, b, out) = c.types()?;
    for (i, (t, want)) in ins.iter().zip([a, b]).enumerate() {
        if t.dtype != DType::F32 || t.dims != want {
            bail!(
                c.pass.target(),
                "operand {i} is {t}, expected tensor<{}xf32>",
                want.map(|d| d.to_string()).join("x")
            );
        }
    }
    Ok(TensorType::new(DType::F32, &out))
}

/// `stablehlo.custom_call @target(a, b)` with the window in the typed-FFI attribute dictionary.
pub(crate) fn print_conv_call(c: &ConvCall, t: &OpText) -> String {
    format!(
        "{} = stablehlo.custom_call @{}({}, {}) {{api_version = 4 : i32, backend_config = {{pad_h_hi = {} : i64, pad_h_lo = {} : i64, pad_w_hi = {} : i64, pad_w_lo = {} : i64, stride_h = {} : i64, stride_w = {} : i64}}}} : {}",
        t.res,
        c.pass.target(),
        t.args[0],
        t.args[1],
        c.padding[0].1,
        c.padding[0].0,
        c.padding[1].1,
        c.padding[1].0,
        c.strides[0],
        c.strides[1],
        t.fn_type()
    )
}

/// The two other products of the trilinear form (module doc).
pub(crate) fn vjp_conv_call(
    g: &mut Graph,
    c: &ConvCall,
    a: &VjpArgs,
) -> Result<Vec<Option<Value>>> {
    let (p, q, ct) = (a.inputs[0], a.inputs[1], a.ct());
    let need = |i: usize| a.needs[i];
    use ConvPass::*;
    let (dp, dq) = match c.pass {
        Forward => (
            need(0)
                .then(|| g.conv_call(&c.with(BackwardData), ct, q))
                .transpose()?,
            need(1)
                .then(|| g.conv_call(&c.with(BackwardWeights), p, ct))
                .transpose()?,
        ),
        BackwardData => (
            need(0)
                .then(|| g.conv_call(&c.with(Forward), ct, q))
                .transpose()?,
            need(1)
                .then(|| g.conv_call(&c.with(BackwardWeights), ct, p))
                .transpose()?,
        ),
        BackwardWeights => (
            need(0)
                .then(|| g.conv_call(&c.with(BackwardData), q, ct))
                .transpose()?,
            need(1)
                .then(|| g.conv_call(&c.with(Forward), p, ct))
                .transpose()?,
        ),
    };
    Ok(vec![dp, dq])
}

/// `call(a, b)` as `stablehlo.convolution`s: the forward convolution, or the input or kernel
/// cotangent that `stablehlo.convolution`'s own VJP rule emits. Used where no handler runs the call
/// (other compilers, the reference interpreter) and by the tests that check the handler.
pub fn expand_conv_call(g: &mut Graph, c: &ConvCall, a: Value, b: Value) -> Result<Value> {
    let spec = c.spec();
    // The VJP rule reads only the type of the operand whose cotangent it does not compute.
    let zeros = |g: &mut Graph, dims: &[usize]| -> Result<Value> {
        let z = g.scalar(0.0, DType::F32)?;
        g.broadcast_in_dim(z, dims, &[])
    };
    let out = match c.pass {
        ConvPass::Forward => return g.convolution(a, b, &spec),
        ConvPass::BackwardData => {
            let x = zeros(g, &c.input)?;
            let y = g.convolution(x, b, &spec)?;
            vjp_convolution(
                g,
                &spec,
                &VjpArgs {
                    inputs: &[x, b],
                    outputs: &[y],
                    cts: &[Some(a)],
                    needs: &[true, false],
                },
            )?[0]
        }
        ConvPass::BackwardWeights => {
            let w = zeros(g, &c.kernel)?;
            let y = g.convolution(a, w, &spec)?;
            vjp_convolution(
                g,
                &spec,
                &VjpArgs {
                    inputs: &[a, w],
                    outputs: &[y],
                    cts: &[Some(b)],
                    needs: &[false, true],
                },
            )?[1]
        }
    };
    match out {
        Some(v) => Ok(v),
        None => bail!(
            "conv_call",
            "the convolution VJP rule returned no cotangent"
        ),
    }
}
