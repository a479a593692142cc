//! Windowed primitives: `reduce_window` (sum, max, min) and `select_and_scatter` (select GE, scatter add).
//! Both have no pretty form and print in generic form.

use crate::error::{bail, Result};
use crate::graph::{Graph, Value};
use crate::prims::{list, CmpDir, OpText, Prim, ReduceOp, VjpArgs};
use crate::types::{DType, TensorType};

/// A window over every dim of the operand (use size 1 for dims that are not pooled).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub dims: Vec<usize>,
    pub strides: Vec<usize>,
    pub padding: Vec<(usize, usize)>,
    pub base_dilation: Vec<usize>,
    pub window_dilation: Vec<usize>,
}

impl Window {
    /// Window of size `dims`, unit strides and dilations, no padding.
    pub fn new(dims: &[usize]) -> Window {
        let r = dims.len();
        Window {
            dims: dims.to_vec(),
            strides: vec![1; r],
            padding: vec![(0, 0); r],
            base_dilation: vec![1; r],
            window_dilation: vec![1; r],
        }
    }
    /// Sets the window strides.
    pub fn strides(mut self, s: &[usize]) -> Window {
        self.strides = s.to_vec();
        self
    }
    /// Sets the (low, high) padding per dim (padded with the reduction's identity).
    pub fn padding(mut self, p: &[(usize, usize)]) -> Window {
        self.padding = p.to_vec();
        self
    }
    /// Sets the operand (base) dilation.
    pub fn base_dilation(mut self, d: &[usize]) -> Window {
        self.base_dilation = d.to_vec();
        self
    }
    /// Sets the window dilation.
    pub fn window_dilation(mut self, d: &[usize]) -> Window {
        self.window_dilation = d.to_vec();
        self
    }

    fn undilated(&self) -> bool {
        self.base_dilation
            .iter()
            .chain(&self.window_dilation)
            .all(|&d| d == 1)
    }

    /// Per dim: dilated operand size nd, dilated window size ke, output size m (None if the window does not fit).
    fn geometry(&self, n: usize, d: usize) -> Option<(i64, i64, i64)> {
        let nd = if n == 0 {
            0
        } else {
            (n as i64 - 1) * self.base_dilation[d] as i64 + 1
        };
        let ke = (self.dims[d] as i64 - 1) * self.window_dilation[d] as i64 + 1;
        let np = nd + self.padding[d].0 as i64 + self.padding[d].1 as i64;
        (np >= ke).then(|| (nd, ke, (np - ke) / self.strides[d] as i64 + 1))
    }
}

impl Graph {
    /// `stablehlo.reduce_window` of `x` with `op` (init = `op`'s identity, also used for padding).
    pub fn reduce_window(&mut self, x: Value, op: ReduceOp, window: &Window) -> Result<Value> {
        let dt = self.dtype(x);
        if op == ReduceOp::Sum && dt.accumulation() != dt {
            // A bf16 window sum accumulates in f32 and is rounded back once.
            let xa = self.convert(x, dt.accumulation())?;
            let s = self.reduce_window(xa, op, window)?;
            return self.convert(s, dt);
        }
        let init = self.constant(&TensorType::scalar(dt), op.identity(dt)?)?;
        self.push1(
            Prim::ReduceWindow {
                op,
                window: window.clone(),
            },
            vec![x, init],
        )
    }

    /// `stablehlo.select_and_scatter`: for each window of `operand`, add the matching `source` element at the
    /// window's first maximum (select `GE`, scatter `add`, init 0). Window dilations must be 1.
    pub fn select_and_scatter(
        &mut self,
        operand: Value,
        source: Value,
        window: &Window,
    ) -> Result<Value> {
        let zero = self.scalar(0.0, self.dtype(source))?;
        self.push1(
            Prim::SelectAndScatter {
                window: window.clone(),
            },
            vec![operand, source, zero],
        )
    }
}

fn window_output(op: &str, x: &TensorType, w: &Window) -> Result<TensorType> {
    let r = x.rank();
    if w.dims.len() != r
        || w.strides.len() != r
        || w.padding.len() != r
        || w.base_dilation.len() != r
        || w.window_dilation.len() != r
    {
        bail!(
            op,
            "window {w:?} must have one entry per dim of operand {x}"
        );
    }
    let all = w
        .dims
        .iter()
        .chain(&w.strides)
        .chain(&w.base_dilation)
        .chain(&w.window_dilation);
    if all.into_iter().any(|&v| v == 0) {
        bail!(
            op,
            "window sizes, strides and dilations must be positive: {w:?}"
        );
    }
    let mut dims = Vec::new();
    for d in 0..r {
        match w.geometry(x.dims[d], d) {
            Some((_, _, m)) => dims.push(m as usize),
            None => bail!(
                op,
                "dim {d}: window {} (dilated) does not fit operand {x} with padding {:?}",
                w.dims[d],
                w.padding[d]
            ),
        }
    }
    Ok(TensorType {
        dtype: x.dtype,
        dims,
    })
}

fn scalar_of(op: &str, init: &TensorType, x: &TensorType) -> Result<()> {
    if init.rank() != 0 || init.dtype != x.dtype {
        bail!(
            op,
            "init value {init} must be a scalar of the operand's element type ({x})"
        );
    }
    Ok(())
}

pub(crate) fn shape_reduce_window(
    op: ReduceOp,
    ins: &[&TensorType],
    w: &Window,
) -> Result<TensorType> {
    scalar_of("reduce_window", ins[1], ins[0])?;
    if ins[0].dtype == DType::Pred {
        bail!(
            "reduce_window",
            "{} over i1 operand {} is not supported",
            op.mlir(),
            ins[0]
        );
    }
    window_output("reduce_window", ins[0], w)
}

pub(crate) fn shape_select_and_scatter(ins: &[&TensorType], w: &Window) -> Result<TensorType> {
    let (x, src) = (ins[0], ins[1]);
    scalar_of("select_and_scatter", ins[2], src)?;
    if !w.undilated() {
        bail!(
            "select_and_scatter",
            "base and window dilations must be 1, got {:?} / {:?}",
            w.base_dilation,
            w.window_dilation
        );
    }
    let expect = window_output("select_and_scatter", x, w)?;
    if src.dtype != x.dtype || src.dims != expect.dims {
        bail!("select_and_scatter", "source {src} must have the windowed operand's type {expect} (operand {x}) (select_and_scatter_c1)");
    }
    Ok(x.clone())
}

fn window_attrs(w: &Window, with_dilation: bool) -> String {
    let pad: Vec<String> = w
        .padding
        .iter()
        .map(|(l, h)| format!("[{l}, {h}]"))
        .collect();
    let dil = if with_dilation {
        format!(
            "base_dilations = array<i64: {}>, window_dilations = array<i64: {}>, ",
            list(&w.base_dilation),
            list(&w.window_dilation)
        )
    } else {
        String::new()
    };
    format!(
        "window_dimensions = array<i64: {}>, window_strides = array<i64: {}>, {}padding = dense<[{}]> : tensor<{}x2xi64>",
        list(&w.dims), list(&w.strides), dil, pad.join(", "), w.dims.len()
    )
}

/// A region `^bb0(%a, %b): %r = <body>; return %r`, with names unique to op `id`.
fn region(id: usize, tag: &str, scalar: &TensorType, body: &str, ret_ty: &TensorType) -> String {
    let (a, b, r) = (
        format!("%{tag}{id}a"),
        format!("%{tag}{id}b"),
        format!("%{tag}{id}r"),
    );
    let body = body.replace("$a", &a).replace("$b", &b);
    format!(
        "^bb0({a}: {scalar}, {b}: {scalar}):\n  {r} = {body}\n  stablehlo.return {r} : {ret_ty}"
    )
}

pub(crate) fn print_reduce_window(op: ReduceOp, w: &Window, t: &OpText) -> String {
    let s = TensorType::scalar(t.ins[0].dtype);
    let body = format!("stablehlo.{} $a, $b : {s}", op.mlir());
    format!(
        "{} = \"stablehlo.reduce_window\"({}, {}) ({{\n{}\n}}) {{{}}} : {}",
        t.res,
        t.args[0],
        t.args[1],
        region(t.id, "rw", &s, &body, &s),
        window_attrs(w, true),
        t.fn_type()
    )
}

pub(crate) fn print_select_and_scatter(w: &Window, t: &OpText) -> String {
    let s = TensorType::scalar(t.ins[0].dtype);
    let p = TensorType::scalar(DType::Pred);
    let kind = if s.dtype.is_float() {
        "FLOAT"
    } else if s.dtype.is_signed_int() {
        "SIGNED"
    } else {
        "UNSIGNED"
    };
    let select = format!("stablehlo.compare GE, $a, $b, {kind} : ({s}, {s}) -> {p}");
    let scatter = format!("stablehlo.add $a, $b : {s}");
    format!(
        "{} = \"stablehlo.select_and_scatter\"({}, {}, {}) ({{\n{}\n}}, {{\n{}\n}}) {{{}}} : {}",
        t.res,
        t.args[0],
        t.args[1],
        t.args[2],
        region(t.id, "sel", &s, &select, &p),
        region(t.id, "sct", &s, &scatter, &s),
        window_attrs(w, false),
        t.fn_type()
    )
}

/// reduce_window(sum), per dim (nd = dilated operand size, ke = dilated window, m outputs, stride s):
/// y[o] = Σ_j xp[o·s + j·wd], so ct_xp[p] = Σ_{o·s + j·wd = p} ct[o] = Σ_j' P[p + j'·wd] where P is ct
/// dilated by s and padded by ke−1 in front (the all-ones window is its own reverse). Restricting p to the
/// operand's span [lo, lo + nd) gives: pad(ct, lo' = ke−1−lo, hi' = nd+lo−(m−1)·s−1, interior = s−1),
/// reduce_window(sum, window k, window dilation wd, stride 1) → nd positions, then a stride-bd slice picks
/// the real (undilated) operand positions.
///
/// reduce_window(max) without dilation → select_and_scatter (first maximum gets the cotangent, as XLA's
/// GE select). Max with dilation, and min: the same first-extremum rule built from strided slices.
pub(crate) fn vjp_reduce_window(
    g: &mut Graph,
    op: ReduceOp,
    w: &Window,
    a: &VjpArgs,
) -> Result<Vec<Option<Value>>> {
    let (x, y, ct) = (a.inputs[0], a.outputs[0], a.ct());
    if !g.dtype(x).is_float() {
        return Ok(vec![None, None]);
    }
    let xdims = g.dims(x).to_vec();
    let r = xdims.len();
    match op {
        ReduceOp::Sum => {
            let mut lo = Vec::new();
            let mut hi = Vec::new();
            for (d, &n) in xdims.iter().enumerate() {
                let (nd, ke, m) = w.geometry(n, d).unwrap_or((0, 0, 0));
                let l = w.padding[d].0 as i64;
                lo.push(ke - 1 - l);
                hi.push(nd + l - (m - 1) * w.strides[d] as i64 - 1);
            }
            let interior: Vec<usize> = w.strides.iter().map(|s| s - 1).collect();
            let zero = g.scalar(0.0, g.dtype(ct))?;
            let p = g.pad(ct, zero, &lo, &hi, &interior)?;
            let back = Window::new(&w.dims).window_dilation(&w.window_dilation);
            let s = g.reduce_window(p, ReduceOp::Sum, &back)?;
            let sdims = g.dims(s).to_vec();
            Ok(vec![
                Some(g.slice(s, &vec![0; r], &sdims, &w.base_dilation)?),
                None,
            ])
        }
        ReduceOp::Max if w.undilated() => Ok(vec![Some(g.select_and_scatter(x, ct, w)?), None]),
        ReduceOp::Max | ReduceOp::Min => Ok(vec![
            Some(scatter_to_first_extremum(g, x, ct, y, op, w)?),
            None,
        ]),
    }
}

/// Adds each `src` element (shaped like the windowed result) to the operand position of its window's
/// first extremum (`op` = max or min; `y` = the windowed extremum of `x`): select_and_scatter's
/// semantics for max with `GE`, built from strided slices, compares, selects and pads only. It is the VJP
/// of dilated max and of min windows, and the max-pool backward for targets without
/// `select_and_scatter` (see `crate::Target`).
pub(crate) fn scatter_to_first_extremum(
    g: &mut Graph,
    x: Value,
    src: Value,
    y: Value,
    op: ReduceOp,
    w: &Window,
) -> Result<Value> {
    let xdims = g.dims(x).to_vec();
    let r = xdims.len();
    let fill = g.constant(&TensorType::scalar(g.dtype(x)), op.identity(g.dtype(x))?)?;
    let lo: Vec<i64> = w.padding.iter().map(|p| p.0 as i64).collect();
    let hi: Vec<i64> = w.padding.iter().map(|p| p.1 as i64).collect();
    let interior: Vec<usize> = w.base_dilation.iter().map(|b| b - 1).collect();
    let xp = g.pad(x, fill, &lo, &hi, &interior)?;
    let xpdims = g.dims(xp).to_vec();
    let zero = g.scalar(0.0, g.dtype(src))?;
    let mut acc: Option<Value> = None;
    for (start, sel) in first_extremum(g, xp, y, w)? {
        // The transpose of the strided slice at `start` is a pad back to xp's shape.
        let part = g.zeros_like(src)?;
        let part = g.select(sel, src, part)?;
        let lo: Vec<i64> = start.iter().map(|&s| s as i64).collect();
        let out = g.dims(src).to_vec();
        let hi: Vec<i64> = (0..r)
            .map(|d| (xpdims[d] - start[d] - ((out[d] - 1) * w.strides[d] + 1)) as i64)
            .collect();
        let interior: Vec<usize> = w.strides.iter().map(|s| s - 1).collect();
        let part = g.pad(part, zero, &lo, &hi, &interior)?;
        acc = Some(match acc {
            Some(v) => g.add(v, part)?,
            None => part,
        });
    }
    let acc = match acc {
        Some(a) => a,
        None => g.full(0.0, &TensorType::new(g.dtype(src), &xpdims))?,
    };
    let start: Vec<usize> = w.padding.iter().map(|p| p.0).collect();
    let limit: Vec<usize> = (0..r)
        .map(|d| start[d] + (xdims[d] - 1) * w.base_dilation[d] + 1)
        .collect();
    g.slice(acc, &start, &limit, &w.base_dilation)
}

/// For each window offset j (row-major over the window), the start of the strided slice of `xp` that holds
/// element j of every window, and the mask "j is the first position in its window where xp equals y".
/// `xp` is the padded (and base-dilated) operand, `y` the windowed max/min.
fn first_extremum(
    g: &mut Graph,
    xp: Value,
    y: Value,
    w: &Window,
) -> Result<Vec<(Vec<usize>, Value)>> {
    let r = w.dims.len();
    let out = g.dims(y).to_vec();
    let total: usize = w.dims.iter().product();
    let mut taken: Option<Value> = None;
    let mut res = Vec::new();
    for flat in 0..total {
        let mut j = vec![0; r];
        let mut rem = flat;
        for d in (0..r).rev() {
            j[d] = rem % w.dims[d];
            rem /= w.dims[d];
        }
        let start: Vec<usize> = (0..r).map(|d| j[d] * w.window_dilation[d]).collect();
        let limit: Vec<usize> = (0..r)
            .map(|d| start[d] + (out[d] - 1) * w.strides[d] + 1)
            .collect();
        let xj = g.slice(xp, &start, &limit, &w.strides)?;
        let hit = g.compare(xj, y, CmpDir::Eq)?;
        let sel = match taken {
            Some(t) => {
                let free = g.not(t)?;
                g.and(hit, free)?
            }
            None => hit,
        };
        taken = Some(match taken {
            Some(t) => g.or(t, sel)?,
            None => sel,
        });
        res.push((start, sel));
    }
    Ok(res)
}

/// select_and_scatter is linear in `source`; its transpose gathers the cotangent at each window's selected
/// position: Σ_j [j is the window's first max] · slice_j(pad(ct)). Operand: piecewise constant (no
/// cotangent); init: the builder's constant 0.
pub(crate) fn vjp_select_and_scatter(
    g: &mut Graph,
    w: &Window,
    a: &VjpArgs,
) -> Result<Vec<Option<Value>>> {
    let (x, src, ct) = (a.inputs[0], a.inputs[1], a.ct());
    if !g.dtype(src).is_float() || !a.needs[1] {
        return Ok(vec![None, None, None]);
    }
    let y = g.reduce_window(x, ReduceOp::Max, w)?;
    let fill = g.constant(
        &TensorType::scalar(g.dtype(x)),
        ReduceOp::Max.identity(g.dtype(x))?,
    )?;
    let lo: Vec<i64> = w.padding.iter().map(|p| p.0 as i64).collect();
    let hi: Vec<i64> = w.padding.iter().map(|p| p.1 as i64).collect();
    let r = lo.len();
    let xp = g.pad(x, fill, &lo, &hi, &vec![0; r])?;
    let zero = g.scalar(0.0, g.dtype(ct))?;
    let ctp = g.pad(ct, zero, &lo, &hi, &vec![0; r])?;
    let src_zero = g.zeros_like(src)?;
    let mut acc: Option<Value> = None;
    for (start, sel) in first_extremum(g, xp, y, w)? {
        let out = g.dims(src).to_vec();
        let limit: Vec<usize> = (0..r)
            .map(|d| start[d] + (out[d] - 1) * w.strides[d] + 1)
            .collect();
        let cj = g.slice(ctp, &start, &limit, &w.strides)?;
        let part = g.select(sel, cj, src_zero)?;
        acc = Some(match acc {
            Some(v) => g.add(v, part)?,
            None => part,
        });
    }
    Ok(vec![None, acc, None])
}
