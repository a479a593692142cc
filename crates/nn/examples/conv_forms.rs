//! Times one convolution's three parts (forward `y`, input cotangent `dx`, kernel cotangent `dw`) on
//! the CPU plugin, in several formulations, so that the lowering can pick what XLA:CPU runs fastest.
//!
//! `cargo run --release -p nn --example conv_forms -- B C O HW K [STRIDE] [REPS]`
//!
//! Each row is one small module (inputs `x`, `w`, `ct`), compiled once and run `REPS` times
//! (median ms). The forms:
//! - `nchw`:  `stablehlo.convolution` on NCHW/OIHW (the lowering's form), `dx`/`dw` by autodiff;
//! - `nhwc`:  the same on NHWC/HWIO operands (XLA:CPU's native convolution layout);
//! - `nhwc-oihw`: NHWC activations with the OIHW kernel as it is stored;
//! - `im2col`: `nn::ops::conv_patches` (NHWC patches of the live taps, one matrix product);
//! - `taps`:  `dw` as k² `dot_general`s of shifted NHWC input slices with the cotangent;
//! - `patch`: `dw` as one `dot_general` of a `[B·H·W, k²·C]` patch matrix with the cotangent.
//!
//! `XLA_FLAGS` passes through to the plugin (e.g. `--xla_cpu_experimental_ynn_fusion_type=`).

use std::time::Instant;

use graph::{ConvDims, ConvSpec, DType, DotDims, Graph, TensorType, Value};

struct Case {
    b: usize,
    c: usize,
    o: usize,
    hw: usize,
    k: usize,
    s: usize,
}

impl Case {
    fn out(&self) -> usize {
        let p = (self.k - 1) / 2;
        (self.hw + 2 * p - self.k) / self.s + 1
    }
    fn flops(&self) -> f64 {
        let m = self.out();
        2.0 * (self.b * m * m * self.o * self.c * self.k * self.k) as f64
    }
}

/// NHWC input and output with an OIHW kernel.
fn nhwc_oihw() -> ConvDims {
    ConvDims {
        input_batch: 0,
        input_feature: 3,
        input_spatial: vec![1, 2],
        kernel_out: 0,
        kernel_in: 1,
        kernel_spatial: vec![2, 3],
        output_batch: 0,
        output_feature: 3,
        output_spatial: vec![1, 2],
    }
}

/// Builds `loss = Σ conv(x, w)·ct` and returns the module whose outputs are `part` of
/// (`y`, `dx`, `dw`).
fn autodiff_module(case: &Case, layout: &str, part: &str) -> String {
    let Case { b, c, o, hw, k, s } = *case;
    let m = case.out();
    let p = ((k - 1) / 2) as i64;
    let mut g = Graph::new("conv");
    let f32t = |d: &[usize]| TensorType::new(DType::F32, d);
    let (xd, wd, yd, dims) = match layout {
        "nhwc" => (
            vec![b, hw, hw, c],
            vec![k, k, c, o],
            vec![b, m, m, o],
            ConvDims::nhwc(2),
        ),
        "nhwc-oihw" | "im2col" => (
            vec![b, hw, hw, c],
            vec![o, c, k, k],
            vec![b, m, m, o],
            nhwc_oihw(),
        ),
        _ => (
            vec![b, c, hw, hw],
            vec![o, c, k, k],
            vec![b, o, m, m],
            ConvDims::nchw(2),
        ),
    };
    let x = g.parameter(f32t(&xd));
    let w = g.parameter(f32t(&wd));
    let ct = g.parameter(f32t(&yd));
    let spec = ConvSpec::new(dims)
        .strides(&[s, s])
        .padding(&[(p, p), (p, p)]);
    let y = if layout == "im2col" {
        nn::ops::conv_patches(&mut g, x, w, s, p as usize).unwrap()
    } else {
        g.convolution(x, w, &spec).unwrap()
    };
    let out = match part {
        "y" => y,
        _ => {
            let l = g.mul(y, ct).unwrap();
            let all: Vec<usize> = (0..4).collect();
            let l = g.sum(l, &all).unwrap();
            let gr = graph::grad(&mut g, l, &[x, w]).unwrap();
            if part == "dx" {
                gr[0]
            } else {
                gr[1]
            }
        }
    };
    g.set_outputs(&[out]).unwrap();
    graph::print_module(&g).unwrap()
}

/// `dw[i, j, c, o] = Σ_{b,h,w} xpad[b, s·h + i, s·w + j, c] · ct[b, h, w, o]` (NHWC / HWIO), either
/// one `dot_general` per tap (`patch == false`) or one over the concatenated patches.
fn wgrad_module(case: &Case, patch: bool) -> String {
    let Case { b, c, o, hw, k, s } = *case;
    let m = case.out();
    let p = (k - 1) / 2;
    let mut g = Graph::new("wgrad");
    let f32t = |d: &[usize]| TensorType::new(DType::F32, d);
    let x = g.parameter(f32t(&[b, hw, hw, c]));
    let _w = g.parameter(f32t(&[k, k, c, o]));
    let ct = g.parameter(f32t(&[b, m, m, o]));
    let zero = g.scalar(0.0, DType::F32).unwrap();
    let pi = p as i64;
    let xp = g
        .pad(x, zero, &[0, pi, pi, 0], &[0, pi, pi, 0], &[0, 0, 0, 0])
        .unwrap();
    let ct2 = g.reshape(ct, &[b * m * m, o]).unwrap();
    let dd = DotDims {
        lhs_batch: vec![],
        rhs_batch: vec![],
        lhs_contract: vec![0],
        rhs_contract: vec![0],
    };
    let mut taps: Vec<Value> = Vec::new();
    for i in 0..k {
        for j in 0..k {
            let lim = [b, i + (m - 1) * s + 1, j + (m - 1) * s + 1, c];
            let xs = g.slice(xp, &[0, i, j, 0], &lim, &[1, s, s, 1]).unwrap();
            taps.push(g.reshape(xs, &[b * m * m, c]).unwrap());
        }
    }
    let dw = if patch {
        let pm = g.concatenate(&taps, 1).unwrap(); // [BMM, k²C]
        let d = g.dot_general(pm, ct2, &dd).unwrap(); // [k²C, O]
        g.reshape(d, &[k, k, c, o]).unwrap()
    } else {
        let mut outs = Vec::new();
        for t in taps {
            let d = g.dot_general(t, ct2, &dd).unwrap(); // [C, O]
            outs.push(g.reshape(d, &[1, c, o]).unwrap());
        }
        let d = g.concatenate(&outs, 0).unwrap();
        g.reshape(d, &[k, k, c, o]).unwrap()
    };
    g.set_outputs(&[dw]).unwrap();
    graph::print_module(&g).unwrap()
}

fn time(client: &pjrt::Client, mlir: &str, reps: usize) -> (f64, f64) {
    let t = Instant::now();
    let exe = client.compile(mlir).expect("compiling");
    let compile = t.elapsed().as_secs_f64();
    let params = exe.params().expect("signature").to_vec();
    let bufs: Vec<pjrt::Buffer> = params
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let ty = p.ty.as_ref().expect("tensor parameter");
            let dims: Vec<i64> = ty.dims.iter().map(|d| d.unwrap_or(1)).collect();
            let n: i64 = dims.iter().product();
            let v: Vec<f32> = (0..n as usize)
                .map(|i| (((i * 7919 + pi * 31) % 1000) as f32) / 1000.0 - 0.5)
                .collect();
            client.buffer(&v, &dims).unwrap()
        })
        .collect();
    let refs: Vec<&pjrt::Buffer> = bufs.iter().collect();
    exe.run(&refs).unwrap();
    let mut ts: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let out = exe.run(&refs).unwrap();
            drop(out);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (ts[ts.len() / 2], compile)
}

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("numbers: B C O HW K [STRIDE] [REPS]"))
        .collect();
    let case = Case {
        b: a.first().copied().unwrap_or(128),
        c: a.get(1).copied().unwrap_or(32),
        o: a.get(2).copied().unwrap_or(32),
        hw: a.get(3).copied().unwrap_or(28),
        k: a.get(4).copied().unwrap_or(3),
        s: a.get(5).copied().unwrap_or(1),
    };
    let reps = a.get(6).copied().unwrap_or(10);
    let client = pjrt::Client::cpu().expect("PJRT CPU plugin (run scripts/setup/plugin.sh)");
    let gf = case.flops() / 1e9;
    println!(
        "B={} C={} O={} HW={} k={} s={}: {:.3} GFLOP per part",
        case.b, case.c, case.o, case.hw, case.k, case.s, gf
    );
    let mut rows: Vec<(String, String)> = Vec::new();
    for part in ["y", "dx", "dw"] {
        for layout in ["nchw", "nhwc", "nhwc-oihw", "im2col"] {
            let name = format!("{part:>2} {layout}");
            rows.push((name, autodiff_module(&case, layout, part)));
        }
    }
    rows.push(("dw taps".into(), wgrad_module(&case, false)));
    rows.push(("dw patch".into(), wgrad_module(&case, true)));
    for (name, mlir) in rows {
        let (ms, compile) = time(&client, &mlir, reps);
        println!(
            "{name:<13} {ms:>9.2} ms  {:>6.1} GFLOP/s  (compile {compile:.2} s)",
            gf / (ms / 1e3)
        );
    }
}
