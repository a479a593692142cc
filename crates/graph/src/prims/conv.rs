//! `stablehlo.convolution` with general dimension numbers, strides, padding, lhs/rhs dilation and
//! feature/batch groups. Bilinear: both VJPs are convolutions (derivations at `vjp_convolution`).

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::{check_dims, list, OpText, Prim, VjpArgs};
use crate::types::TensorType;

/// Which tensor dim plays which role, for input (lhs), kernel (rhs) and output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvDims {
    pub input_batch: usize,
    pub input_feature: usize,
    pub input_spatial: Vec<usize>,
    pub kernel_in: usize,
    pub kernel_out: usize,
    pub kernel_spatial: Vec<usize>,
    pub output_batch: usize,
    pub output_feature: usize,
    pub output_spatial: Vec<usize>,
}

impl ConvDims {
    /// NCHW input and output with an OIHW kernel (`[b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1]`), for
    /// `n_spatial` spatial dims.
    pub fn nchw(n_spatial: usize) -> ConvDims {
        let sp: Vec<usize> = (2..2 + n_spatial).collect();
        ConvDims {
            input_batch: 0,
            input_feature: 1,
            input_spatial: sp.clone(),
            kernel_out: 0,
            kernel_in: 1,
            kernel_spatial: sp.clone(),
            output_batch: 0,
            output_feature: 1,
            output_spatial: sp,
        }
    }

    /// Channels-last input and output with a spatial-first kernel (`[b, 0, 1, f]x[0, 1, i, o]->[b, 0,
    /// 1, f]`: NHWC / HWIO for 2 spatial dims), XLA:CPU's native convolution layout.
    pub fn nhwc(n_spatial: usize) -> ConvDims {
        let sp: Vec<usize> = (1..1 + n_spatial).collect();
        let ks: Vec<usize> = (0..n_spatial).collect();
        ConvDims {
            input_batch: 0,
            input_feature: n_spatial + 1,
            input_spatial: sp.clone(),
            kernel_in: n_spatial,
            kernel_out: n_spatial + 1,
            kernel_spatial: ks,
            output_batch: 0,
            output_feature: n_spatial + 1,
            output_spatial: sp,
        }
    }
}

/// All attributes of a convolution. Build with [`ConvSpec::new`] and the chaining setters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvSpec {
    pub dims: ConvDims,
    pub strides: Vec<usize>,
    /// (low, high) padding per spatial dim; negative values crop.
    pub padding: Vec<(i64, i64)>,
    pub lhs_dilation: Vec<usize>,
    pub rhs_dilation: Vec<usize>,
    pub feature_group_count: usize,
    pub batch_group_count: usize,
}

impl ConvSpec {
    /// Unit strides and dilations, no padding, one group.
    pub fn new(dims: ConvDims) -> ConvSpec {
        let n = dims.input_spatial.len();
        ConvSpec {
            dims,
            strides: vec![1; n],
            padding: vec![(0, 0); n],
            lhs_dilation: vec![1; n],
            rhs_dilation: vec![1; n],
            feature_group_count: 1,
            batch_group_count: 1,
        }
    }
    /// Sets the window strides.
    pub fn strides(mut self, s: &[usize]) -> ConvSpec {
        self.strides = s.to_vec();
        self
    }
    /// Sets the (low, high) padding per spatial dim.
    pub fn padding(mut self, p: &[(i64, i64)]) -> ConvSpec {
        self.padding = p.to_vec();
        self
    }
    /// Sets the input (lhs) dilation.
    pub fn lhs_dilation(mut self, d: &[usize]) -> ConvSpec {
        self.lhs_dilation = d.to_vec();
        self
    }
    /// Sets the kernel (rhs) dilation.
    pub fn rhs_dilation(mut self, d: &[usize]) -> ConvSpec {
        self.rhs_dilation = d.to_vec();
        self
    }
    /// Sets `feature_group_count` (C for depthwise).
    pub fn feature_groups(mut self, g: usize) -> ConvSpec {
        self.feature_group_count = g;
        self
    }
    /// Sets `batch_group_count` (no VJP rule when > 1).
    pub fn batch_groups(mut self, g: usize) -> ConvSpec {
        self.batch_group_count = g;
        self
    }
}

impl Graph {
    /// `stablehlo.convolution` of input `lhs` with kernel `rhs`.
    /// bf16 operands accumulate in f32 (the primitive's result type) and the result is rounded back
    /// to bf16, as in [`Graph::dot_general`].
    pub fn convolution(&mut self, lhs: Value, rhs: Value, spec: &ConvSpec) -> Result<Value> {
        let dt = self.dtype(lhs);
        let r = self.push1(Prim::Convolution(spec.clone()), vec![lhs, rhs])?;
        self.convert(r, dt)
    }
}

/// Per spatial dim: dilated input size, dilated kernel size and output size.
struct Geometry {
    nd: i64,
    ke: i64,
    m: i64,
}

fn geometry(n: usize, k: usize, s: usize, (lo, hi): (i64, i64), ld: usize, rd: usize) -> Geometry {
    let nd = if n == 0 {
        0
    } else {
        (n as i64 - 1) * ld as i64 + 1
    };
    let ke = if k == 0 {
        0
    } else {
        (k as i64 - 1) * rd as i64 + 1
    };
    let np = nd + lo + hi;
    let m = if np < ke {
        -1
    } else {
        (np - ke) / s as i64 + 1
    };
    Geometry { nd, ke, m }
}

pub(crate) fn shape_convolution(ins: &[&TensorType], c: &ConvSpec) -> Result<TensorType> {
    let (x, w) = (ins[0], ins[1]);
    let d = &c.dims;
    let op = "convolution";
    let ns = d.input_spatial.len();
    if x.dtype != w.dtype {
        bail!(op, "element types differ: input {x}, kernel {w}");
    }
    if x.rank() != ns + 2
        || w.rank() != ns + 2
        || d.kernel_spatial.len() != ns
        || d.output_spatial.len() != ns
    {
        bail!(
            op,
            "input {x} and kernel {w} must have rank {} for {ns} spatial dims",
            ns + 2
        );
    }
    for (what, v) in [
        ("strides", &c.strides),
        ("lhs_dilation", &c.lhs_dilation),
        ("rhs_dilation", &c.rhs_dilation),
    ] {
        if v.len() != ns || v.contains(&0) {
            bail!(op, "{what} {v:?} must have {ns} positive entries");
        }
    }
    if c.padding.len() != ns {
        bail!(op, "padding {:?} must have {ns} entries", c.padding);
    }
    let in_dims: Vec<usize> = [d.input_batch, d.input_feature]
        .iter()
        .chain(&d.input_spatial)
        .copied()
        .collect();
    let k_dims: Vec<usize> = [d.kernel_in, d.kernel_out]
        .iter()
        .chain(&d.kernel_spatial)
        .copied()
        .collect();
    let out_dims: Vec<usize> = [d.output_batch, d.output_feature]
        .iter()
        .chain(&d.output_spatial)
        .copied()
        .collect();
    check_dims(op, "input dimension number", &in_dims, x.rank())?;
    check_dims(op, "kernel dimension number", &k_dims, w.rank())?;
    check_dims(op, "output dimension number", &out_dims, x.rank())?;
    let (fg, bg) = (c.feature_group_count, c.batch_group_count);
    if fg == 0 || bg == 0 || (fg > 1 && bg > 1) {
        bail!(
            op,
            "feature_group_count {fg} and batch_group_count {bg} must be positive and not both > 1"
        );
    }
    let (n, cin) = (x.dims[d.input_batch], x.dims[d.input_feature]);
    let (kin, kout) = (w.dims[d.kernel_in], w.dims[d.kernel_out]);
    if cin % fg != 0 || cin / fg != kin {
        bail!(op, "input features {cin} (input {x}) must equal kernel input features {kin} (kernel {w}) x feature_group_count {fg}");
    }
    if kout % fg != 0 || kout % bg != 0 || n % bg != 0 {
        bail!(op, "kernel output features {kout} (kernel {w}) and batch {n} (input {x}) must divide by the group counts (feature {fg}, batch {bg})");
    }
    let mut dims = vec![0; x.rank()];
    dims[d.output_batch] = n / bg;
    dims[d.output_feature] = kout;
    for i in 0..ns {
        let (xs, ks) = (x.dims[d.input_spatial[i]], w.dims[d.kernel_spatial[i]]);
        let geo = geometry(
            xs,
            ks,
            c.strides[i],
            c.padding[i],
            c.lhs_dilation[i],
            c.rhs_dilation[i],
        );
        if geo.m < 0 || ks == 0 {
            bail!(op, "spatial dim {i}: padded input ({} after dilation and padding {:?}) is smaller than the dilated window {} (input {x}, kernel {w})", geo.nd + c.padding[i].0 + c.padding[i].1, c.padding[i], geo.ke);
        }
        dims[d.output_spatial[i]] = geo.m as usize;
    }
    Ok(TensorType {
        dtype: x.dtype.accumulation(),
        dims,
    })
}

/// `[b, f, 0, 1]` labels for a layout.
fn labels(rank: usize, a: (usize, &str), b: (usize, &str), spatial: &[usize]) -> String {
    let mut l = vec![String::new(); rank];
    l[a.0] = a.1.to_string();
    l[b.0] = b.1.to_string();
    for (i, &s) in spatial.iter().enumerate() {
        l[s] = i.to_string();
    }
    format!("[{}]", l.join(", "))
}

pub(crate) fn print_convolution(c: &ConvSpec, t: &OpText) -> String {
    let d = &c.dims;
    let r = t.ins[0].rank();
    let dn = format!(
        "{}x{}->{}",
        labels(
            r,
            (d.input_batch, "b"),
            (d.input_feature, "f"),
            &d.input_spatial
        ),
        labels(
            r,
            (d.kernel_out, "o"),
            (d.kernel_in, "i"),
            &d.kernel_spatial
        ),
        labels(
            r,
            (d.output_batch, "b"),
            (d.output_feature, "f"),
            &d.output_spatial
        ),
    );
    let pad: Vec<String> = c
        .padding
        .iter()
        .map(|(l, h)| format!("[{l}, {h}]"))
        .collect();
    format!(
        "{} = stablehlo.convolution({}, {}) dim_numbers = {}, window = {{stride = [{}], pad = [{}], lhs_dilate = [{}], rhs_dilate = [{}]}} {{batch_group_count = {} : i64, feature_group_count = {} : i64}} : {}",
        t.res, t.args[0], t.args[1], dn, list(&c.strides), pad.join(", "), list(&c.lhs_dilation), list(&c.rhs_dilation),
        c.batch_group_count, c.feature_group_count, t.fn_type()
    )
}

/// Per spatial dim (n input, k kernel, m output, stride s, padding lo/hi, dilations ld/rd;
/// nd = (n−1)·ld + 1, ke = (k−1)·rd + 1, xp = pad(dilate(x, ld), lo, hi)):
///   y[p] = Σ_j xp[p·s + j·rd] · w[j].
///
/// Input VJP. ct_xp[q] = Σ_{p·s + j·rd = q} ct[p] w[j] = Σ_j ctd[q − j·rd] w[j] with ctd = dilate(ct, s).
/// With the reversed kernel wr[j'] = w[k−1−j'] this is Σ_j' ctd[q − (ke−1) + j'·rd] wr[j'], a correlation of
/// ctd padded by ke−1−lo in front (so that q runs over xp's positions lo + i·ld of real inputs), read with
/// stride ld: convolution(ct, wr; lhs_dilation = s, rhs_dilation = rd, stride = ld,
/// padding = (ke−1−lo, nd + lo − (m−1)·s − 1)). Feature roles swap: the kernel's out dim becomes its in dim.
/// With G feature groups the kernel [O, I, …] is regrouped to [O/G, G·I, …] so group g of ct (O/G features)
/// produces group g of the input features.
///
/// Kernel VJP. ct_w[j] = Σ_b Σ_p xp[p·s + j·rd] · ct[p]: a convolution of x (batch and feature roles
/// swapped, so the batch is contracted) with ct as the kernel (batch as its in-feature dim) dilated by s,
/// read with stride rd: convolution(x, ct; lhs_dilation = ld, rhs_dilation = s, stride = rd,
/// padding = (lo, (k−1)·rd + (m−1)·s + 1 − nd − lo)), which yields exactly k positions. With G feature
/// groups, batch_group_count = G pairs input-feature group g with output-feature group g.
pub(crate) fn vjp_convolution(
    g: &mut Graph,
    c: &ConvSpec,
    a: &VjpArgs,
) -> Result<Vec<Option<Value>>> {
    let (x, w) = (a.inputs[0], a.inputs[1]);
    let ct = g.convert(a.ct(), g.dtype(x))?;
    if c.batch_group_count != 1 {
        bail!("vjp", "convolution with batch_group_count {} > 1 has no VJP rule (only feature groups are supported)", c.batch_group_count);
    }
    let d = &c.dims;
    let ns = d.input_spatial.len();
    let (xt, wt) = (g.ty(x).clone(), g.ty(w).clone());
    let geo: Vec<Geometry> = (0..ns)
        .map(|i| {
            geometry(
                xt.dims[d.input_spatial[i]],
                wt.dims[d.kernel_spatial[i]],
                c.strides[i],
                c.padding[i],
                c.lhs_dilation[i],
                c.rhs_dilation[i],
            )
        })
        .collect();
    let fg = c.feature_group_count;

    let dx = if a.needs[0] {
        let (kernel, kin, kout, ksp) = if fg == 1 {
            (w, d.kernel_out, d.kernel_in, d.kernel_spatial.clone())
        } else {
            // Canonical [O, I, spatial…], then [G, O/G, I, …] → [O/G, G, I, …] → [O/G, G·I, …].
            let mut perm = vec![d.kernel_out, d.kernel_in];
            perm.extend(&d.kernel_spatial);
            let wc = g.transpose(w, &perm)?;
            let (o, i) = (wt.dims[d.kernel_out], wt.dims[d.kernel_in]);
            let sp: Vec<usize> = d.kernel_spatial.iter().map(|&s| wt.dims[s]).collect();
            let mut s1 = vec![fg, o / fg, i];
            s1.extend(&sp);
            let w1 = g.reshape(wc, &s1)?;
            let mut p2 = vec![1, 0];
            p2.extend(2..ns + 3);
            let w2 = g.transpose(w1, &p2)?;
            let mut s3 = vec![o / fg, fg * i];
            s3.extend(&sp);
            let w3 = g.reshape(w2, &s3)?;
            (w3, 0, 1, (2..2 + ns).collect())
        };
        let kernel = g.reverse(kernel, &ksp)?;
        let spec = ConvSpec {
            dims: ConvDims {
                input_batch: d.output_batch,
                input_feature: d.output_feature,
                input_spatial: d.output_spatial.clone(),
                kernel_in: kin,
                kernel_out: kout,
                kernel_spatial: ksp,
                output_batch: d.input_batch,
                output_feature: d.input_feature,
                output_spatial: d.input_spatial.clone(),
            },
            strides: c.lhs_dilation.clone(),
            padding: (0..ns)
                .map(|i| {
                    let (lo, s, q) = (c.padding[i].0, c.strides[i] as i64, &geo[i]);
                    (q.ke - 1 - lo, q.nd + lo - (q.m - 1) * s - 1)
                })
                .collect(),
            lhs_dilation: c.strides.clone(),
            rhs_dilation: c.rhs_dilation.clone(),
            feature_group_count: fg,
            batch_group_count: 1,
        };
        Some(g.convolution(ct, kernel, &spec)?)
    } else {
        None
    };

    let dw = if a.needs[1] {
        let spec = ConvSpec {
            dims: ConvDims {
                input_batch: d.input_feature,
                input_feature: d.input_batch,
                input_spatial: d.input_spatial.clone(),
                kernel_in: d.output_batch,
                kernel_out: d.output_feature,
                kernel_spatial: d.output_spatial.clone(),
                output_batch: d.kernel_in,
                output_feature: d.kernel_out,
                output_spatial: d.kernel_spatial.clone(),
            },
            strides: c.rhs_dilation.clone(),
            padding: (0..ns)
                .map(|i| {
                    let (lo, s, q) = (c.padding[i].0, c.strides[i] as i64, &geo[i]);
                    (lo, q.ke - 1 + (q.m - 1) * s + 1 - q.nd - lo)
                })
                .collect(),
            lhs_dilation: c.lhs_dilation.clone(),
            rhs_dilation: c.strides.clone(),
            feature_group_count: 1,
            batch_group_count: fg,
        };
        Some(g.convolution(x, ct, &spec)?)
    } else {
        None
    };
    Ok(vec![dx, dw])
}
