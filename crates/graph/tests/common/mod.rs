//! Graphs shared by the golden-text and compile tests.
#![allow(dead_code)]

use graph::{
    grad, CmpDir, ConvDims, ConvSpec, DType, Graph, ReduceOp, Result, TensorType, Value, Window,
};

fn t(dtype: DType, dims: &[usize]) -> TensorType {
    TensorType::new(dtype, dims)
}

/// Mean softmax cross-entropy of `logits` [B, K] against integer labels [B].
fn softmax_xent(g: &mut Graph, logits: Value, labels: Value) -> Result<Value> {
    let (b, k) = (g.dims(logits)[0], g.dims(logits)[1]);
    let m = g.max_over(logits, &[1])?;
    let mb = g.broadcast_in_dim(m, &[b, k], &[0])?;
    let z = g.sub(logits, mb)?;
    let e = g.exp(z)?;
    let s = g.sum(e, &[1])?;
    let lse = g.log(s)?;
    let lse = g.broadcast_in_dim(lse, &[b, k], &[0])?;
    let logp = g.sub(z, lse)?;
    let classes = g.iota(&t(DType::I32, &[b, k]), 1)?;
    let lb = g.broadcast_in_dim(labels, &[b, k], &[0])?;
    let onehot = g.compare(classes, lb, CmpDir::Eq)?;
    let onehot = g.convert(onehot, DType::F32)?;
    let picked = g.mul(onehot, logp)?;
    let total = g.sum(picked, &[0, 1])?;
    let mean = g.scale(total, -1.0 / b as f64)?;
    Ok(mean)
}

/// A 6→5→3 MLP train step with SGD: params donated into the updated params; outputs (w1', b1', w2', b2', loss).
pub fn mlp_step() -> Result<Graph> {
    let mut g = Graph::new("mlp_step");
    let w1 = g.parameter(t(DType::F32, &[6, 5]));
    let b1 = g.parameter(t(DType::F32, &[5]));
    let w2 = g.parameter(t(DType::F32, &[5, 3]));
    let b2 = g.parameter(t(DType::F32, &[3]));
    let x = g.parameter(t(DType::F32, &[4, 6]));
    let y = g.parameter(t(DType::I32, &[4]));
    let lr = g.parameter(t(DType::F32, &[]));
    let h = g.matmul(x, w1)?;
    let bb = g.broadcast_in_dim(b1, &[4, 5], &[1])?;
    let h = g.add(h, bb)?;
    let zero = g.zeros_like(h)?;
    let h = g.max(h, zero)?;
    let o = g.matmul(h, w2)?;
    let bb = g.broadcast_in_dim(b2, &[4, 3], &[1])?;
    let o = g.add(o, bb)?;
    let loss = softmax_xent(&mut g, o, y)?;
    let params = [w1, b1, w2, b2];
    let grads = grad(&mut g, loss, &params)?;
    let mut outs = Vec::new();
    for (i, (&p, &gr)) in params.iter().zip(&grads).enumerate() {
        let dims = g.dims(p).to_vec();
        let lrb = g.broadcast_in_dim(lr, &dims, &[])?;
        let step = g.mul(lrb, gr)?;
        outs.push(g.sub(p, step)?);
        g.set_aliasing_output(p, i)?;
    }
    outs.push(loss);
    g.set_outputs(&outs)?;
    Ok(g)
}

/// conv 3×3 (pad 1) → relu → 2×2 max pool (stride 2) → 2×2 average pool; forward only.
pub fn conv_pool() -> Result<Graph> {
    let mut g = Graph::new("conv_pool");
    let x = g.parameter(t(DType::F32, &[2, 3, 8, 8]));
    let w = g.parameter(t(DType::F32, &[4, 3, 3, 3]));
    let c = g.convolution(
        x,
        w,
        &ConvSpec::new(ConvDims::nchw(2)).padding(&[(1, 1), (1, 1)]),
    )?;
    let zero = g.zeros_like(c)?;
    let r = g.max(c, zero)?;
    let p = g.reduce_window(
        r,
        ReduceOp::Max,
        &Window::new(&[1, 1, 2, 2]).strides(&[1, 1, 2, 2]),
    )?;
    let a = g.reduce_window(
        p,
        ReduceOp::Sum,
        &Window::new(&[1, 1, 2, 2]).strides(&[1, 1, 2, 2]),
    )?;
    let a = g.scale(a, 0.25)?;
    g.set_outputs(&[a])?;
    Ok(g)
}

/// Gradient of sum(maxpool(relu(conv(x, w, stride 2)))) w.r.t. x and w (f64).
pub fn conv_pool_grad() -> Result<Graph> {
    let mut g = Graph::new("conv_pool_grad");
    let x = g.parameter(t(DType::F64, &[2, 2, 9, 9]));
    let w = g.parameter(t(DType::F64, &[4, 2, 3, 3]));
    let spec = ConvSpec::new(ConvDims::nchw(2))
        .strides(&[2, 2])
        .padding(&[(1, 1), (1, 1)]);
    let c = g.convolution(x, w, &spec)?;
    let zero = g.zeros_like(c)?;
    let r = g.max(c, zero)?;
    let p = g.reduce_window(
        r,
        ReduceOp::Max,
        &Window::new(&[1, 1, 3, 3]).strides(&[1, 1, 2, 2]).padding(&[
            (0, 0),
            (0, 0),
            (1, 1),
            (1, 1),
        ]),
    )?;
    let loss = g.sum(p, &[0, 1, 2, 3])?;
    let grads = grad(&mut g, loss, &[x, w])?;
    g.set_outputs(&[loss, grads[0], grads[1]])?;
    Ok(g)
}
