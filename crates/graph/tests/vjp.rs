//! Numerical verification of every primitive's VJP through the CPU PJRT plugin, in f64.
//!
//! For each case (a primitive on a random shape and configuration, seeded), one module computes
//! f(x + εt), f(x − εt), the VJP Jᵀc at x for a random cotangent c, and, for linear / bilinear primitives,
//! f with the linear operand(s) replaced by t (= J·t). The host then checks
//!   (a) ⟨(f(x+εt) − f(x−εt)) / 2ε, c⟩ ≈ ⟨t, Jᵀc⟩                (central differences, ε = 1e-6)
//!   (b) ⟨J·t, c⟩ = ⟨t, Jᵀc⟩                                     (exact adjoint identity)
//! Inputs avoid non-differentiable points: positive operands for log/sqrt/rsqrt/pow, |x| ≥ 0.5 for
//! abs/sign/division, values ≥ 0.2 away from integers for floor/ceil/round, and pairwise distinct values
//! (spacing 0.05 ≫ ε) for max/min reductions, windows and select_and_scatter, so no ties occur.
//! Third check, on the same modules: the reference interpreter (`interp`, f32 mode: every op rounded to its
//! declared type, so f64 stays f64) evaluates each module on the same inputs, and every output must agree
//! with XLA's norm-wise within `INTERP_TOL` (a few f64 ulps; `INTERP_TOL_F32` for the convert cases).
//! Run with `--nocapture` to see the per-primitive table.

mod cases;
mod harness;

use std::collections::BTreeMap;

use cases::{all_cases, build, Draw, Inst};
use harness::{buffer, dot, run, to_f64, Rng};

struct Outcome {
    fd_err: f64,
    adj_err: Option<f64>,
    /// Interpreter vs XLA: the largest norm-wise relative difference over the module's outputs.
    interp_err: f64,
}

/// Interpreter vs XLA on the f64 modules: XLA's and Rust's libm differ in the last bits of exp, log, tanh…
const INTERP_TOL: f64 = 1e-13;
/// The convert cases carry f32 values.
const INTERP_TOL_F32: f64 = 1e-6;

/// max|a − b| / ‖b‖∞ (0 when both are zero; ∞ when only one side is NaN).
fn normwise(a: &[f64], b: &[f64]) -> f64 {
    let mut num = 0.0f64;
    let mut den = 1e-300f64;
    for (&x, &y) in a.iter().zip(b) {
        if x.is_nan() != y.is_nan() {
            return f64::INFINITY;
        }
        if !x.is_nan() {
            num = num.max((x - y).abs());
            den = den.max(y.abs());
        }
    }
    num / den
}

/// The interpreter's outputs for the check module (f32 mode) against XLA's.
fn interp_vs_xla(
    g: &graph::Graph,
    params: &[(&graph::TensorType, &[f64])],
    res: &[pjrt::Buffer],
) -> std::result::Result<f64, String> {
    let args: Vec<interp::Tensor> = params
        .iter()
        .map(|(ty, d)| interp::Tensor::new((*ty).clone(), interp::Data::Float(d.to_vec())))
        .collect::<interp::Result<_>>()
        .map_err(|e| e.to_string())?;
    let outs = interp::run(g, &args, &interp::Options::new(interp::Precision::F32))
        .map_err(|e| e.to_string())?;
    let mut worst = 0.0f64;
    for (o, b) in outs.iter().zip(res) {
        let got = o.floats().ok_or("non-float output")?;
        worst = worst.max(normwise(got, &to_f64(b, o.ty.dtype)));
    }
    Ok(worst)
}

/// |a − b| relative to the larger magnitude (absolute below 1e-8, where both sides are ~0).
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-8)
}

fn check(rng: &mut Rng, c: &Inst) -> std::result::Result<Outcome, String> {
    let chk = build(c)?;
    let text = graph::print_module(&chk.graph).map_err(|e| e.to_string())?;
    let yty = chk.out.clone();
    let diff = &chk.diff;
    let draw = Draw::new(rng, c, diff, &yty);
    let (tdata, cdata) = (&draw.t, &draw.c);
    let bufs: Vec<pjrt::Buffer> = draw
        .params(c, diff, &yty)
        .into_iter()
        .map(|(ty, d)| buffer(ty, d))
        .collect();
    let res = run(&text, &bufs);
    let interp_err = interp_vs_xla(&chk.graph, &draw.params(c, diff, &yty), &res)?;
    let fp = to_f64(&res[0], yty.dtype);
    let fm = to_f64(&res[1], yty.dtype);
    let fd: Vec<f64> = fp
        .iter()
        .zip(&fm)
        .map(|(p, m)| (p - m) / (2.0 * c.eps))
        .collect();
    let lhs = dot(&fd, &cdata);
    // ⟨t, Jᵀc⟩, rounding t as the device saw it (f32 inputs).
    let rounded = |i: usize, d: &[f64]| -> Vec<f64> {
        d.iter()
            .map(|&x| graph::round_to(x, c.inputs[i].ty.dtype))
            .collect()
    };
    let jtc: Vec<Vec<f64>> = (0..diff.len())
        .map(|k| to_f64(&res[2 + k], c.inputs[diff[k]].ty.dtype))
        .collect();
    let rhs: f64 = (0..diff.len())
        .map(|k| dot(&rounded(diff[k], &tdata[k]), &jtc[k]))
        .sum();
    if lhs.is_nan() || rhs.is_nan() {
        return Err(format!("NaN: fd {lhs}, vjp {rhs}"));
    }
    let fd_err = rel(lhs, rhs);
    let mut adj_err = None;
    for (gi, group) in c.linear.iter().enumerate() {
        let jt = to_f64(&res[2 + diff.len() + gi], yty.dtype);
        let l = dot(&jt, &cdata);
        let r: f64 = group
            .iter()
            .map(|&i| {
                let k = diff.iter().position(|&d| d == i).unwrap_or(0);
                dot(&rounded(i, &tdata[k]), &jtc[k])
            })
            .sum();
        let e = rel(l, r);
        adj_err = Some(adj_err.unwrap_or(0.0f64).max(e));
    }
    Ok(Outcome {
        fd_err,
        adj_err,
        interp_err,
    })
}

#[derive(Default)]
struct Row {
    shapes: usize,
    fd_max: f64,
    adj_max: Option<f64>,
    interp_max: f64,
}

#[test]
fn every_primitive_vjp_matches_finite_differences_and_adjoint() {
    let mut rng = Rng(0x5EED_2026);
    let cases = all_cases(&mut rng);

    let mut table: BTreeMap<String, Row> = BTreeMap::new();
    let mut failures = Vec::new();
    for (name, c) in &cases {
        match check(&mut rng, c) {
            Ok(o) => {
                let row = table.entry(name.clone()).or_default();
                row.shapes += 1;
                row.fd_max = row.fd_max.max(o.fd_err);
                row.interp_max = row.interp_max.max(o.interp_err);
                let f32s = c.inputs.iter().any(|i| i.ty.dtype == graph::DType::F32);
                let itol = if f32s { INTERP_TOL_F32 } else { INTERP_TOL };
                if !(o.interp_err <= itol) {
                    failures.push(format!(
                        "{name} {}: interpreter and XLA disagree, norm-wise rel diff {:.3e}",
                        c.label, o.interp_err
                    ));
                }
                if let Some(a) = o.adj_err {
                    row.adj_max = Some(row.adj_max.unwrap_or(0.0f64).max(a));
                }
                if o.fd_err > c.tol_fd {
                    failures.push(format!(
                        "{name} {}: finite differences disagree, rel err {:.3e}",
                        c.label, o.fd_err
                    ));
                }
                if o.adj_err.map(|a| a > c.tol_adj).unwrap_or(false) {
                    failures.push(format!(
                        "{name} {}: adjoint identity fails, rel err {:.3e}",
                        c.label,
                        o.adj_err.unwrap_or(0.0)
                    ));
                }
            }
            Err(e) => failures.push(format!("{name} {}: {e}", c.label)),
        }
    }
    println!(
        "{:<28} {:>6} {:>12} {:>12} {:>14}",
        "primitive", "cases", "max fd err", "max adj err", "interp vs XLA"
    );
    for (name, r) in &table {
        let adj = r
            .adj_max
            .map(|a| format!("{a:.1e}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<28} {:>6} {:>12.1e} {:>12} {:>14.1e}",
            name, r.shapes, r.fd_max, adj, r.interp_max
        );
    }
    println!("{} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
