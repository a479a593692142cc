//! Every zoo model, at batch 2 and a small input (64×64, or the smallest power-of-two multiple that the
//! spec accepts; the test is about the programs, not the resolution), on the CPU plugin: the eval forward (predict) and the train-mode forward compile and give
//! finite logits of the right shape; one train step compiles and gives a finite loss with outputs shaped
//! like the state; the outputs are donated back for a second step (ABI coherence).
//!
//! The same compiled programs are checked against the reference interpreter (`interp`, f64): predict,
//! forward and the first train step are evaluated on the same inputs, and every output must agree with
//! XLA's within the tolerance of its kind ([`tolerance`]): XLA computes in f32, the interpreter in f64,
//! so the interpreter is the referee. `--nocapture` prints one agreement line per model (the table of
//! docs/ORACLE.md).
//!
//! Golden outputs: the predict logits, the train-mode forward logits and the two train-step losses of
//! every model (fixed init and input) are pinned in `tests/golden/zoo/<model>.txt`, so a change of the
//! lowering that changes a model's function fails here. They are compared within [`GOLDEN_RTOL`] of the
//! vector's largest magnitude (f32 rounding of a reordered computation, not more); `UPDATE_EXPECT=1`
//! rewrites the files.

mod common;

use std::time::Instant;

use common::{client, compile, download, noise, upload, Host};
use nn::{ElemType, Program, SlotKind};
use pjrt::Arg;
use spec::{Optimizer, RunConfig};

const B: usize = 2;
/// Largest input side of the test programs.
const SIDE: usize = 64;

/// Tolerance of the golden comparison, relative to the largest |value| of the compared vector.
const GOLDEN_RTOL: f64 = 1e-4;
/// The same when the programs run their convolutions as oneDNN custom calls (`nn::with_conv_calls`):
/// the goldens were pinned with XLA's convolutions, and oneDNN's f32 sums, in another order, move deep
/// nets' outputs further (measured on an AVX-512 Xeon: efficientnet-v2-s predict 2.2e-3, mobilenet-v4
/// 3.1e-4, mobilenet-v2 1.7e-4; each of these agrees with the f64 interpreter within [`tolerance`], so
/// the shift is rounding, not a different computation). The second loss (after one AdamW step at batch
/// 2, whose signs follow gradients that f32 rounding moves by percents, see [`LIMITS_CONV_CALLS`]) moved
/// by 1.6–6.5 % (resnet50, mobilenet-v2, mobilenet-v4-medium) and is then not compared.
const GOLDEN_RTOL_CONV_CALLS: f64 = 3e-3;

fn golden_line(what: &str, v: &[f32]) -> String {
    let vals: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("{what}: {}\n", vals.join(" "))
}

/// Compares (or with `UPDATE_EXPECT=1` writes) the golden outputs of one model.
fn check_golden(name: &str, got: &str, conv_calls: bool) {
    let rtol = if conv_calls {
        GOLDEN_RTOL_CONV_CALLS
    } else {
        GOLDEN_RTOL
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/zoo")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_EXPECT=1 writes it)", path.display()));
    let parse = |t: &str| -> Vec<(String, Vec<f64>)> {
        t.lines()
            .map(|l| {
                let (k, v) = l.split_once(": ").expect("`what: values`");
                (
                    k.to_string(),
                    v.split(' ').map(|x| x.parse().unwrap()).collect(),
                )
            })
            .collect()
    };
    let (w, g) = (parse(&want), parse(got));
    assert_eq!(w.len(), g.len(), "{name}: golden lines");
    for ((wk, wv), (gk, gv)) in w.iter().zip(&g) {
        assert_eq!(wk, gk);
        assert_eq!(wv.len(), gv.len(), "{name} {wk}");
        let n = if conv_calls && wk == "losses" {
            1
        } else {
            wv.len()
        };
        let (wv, gv) = (&wv[..n], &gv[..n]);
        let scale = wv.iter().fold(0f64, |m, x| m.max(x.abs()));
        let worst = wv
            .iter()
            .zip(gv)
            .map(|(a, b)| (a - b).abs())
            .fold(0f64, f64::max);
        assert!(
            worst <= rtol * scale,
            "{name} {wk}: differs from the golden output by {worst:.3e} (scale {scale:.3e}, tolerance {rtol:e} of it)\n  want {wv:?}\n  got  {gv:?}"
        );
        eprintln!(
            "{name} {wk}: max difference from golden {:.2e} of the scale",
            worst / scale.max(f64::MIN_POSITIVE)
        );
    }
}

/// Norm-wise relative agreement (`max|xla − interp| / ‖interp‖∞`) required per output kind, XLA (f32)
/// against the interpreter (f64), the referee. The bounds cover f32 arithmetic in deep nets, measured over
/// the zoo (docs/ORACLE.md): logits up to 2.4e-4 (mobilenet-v4 forward), first-layer kernel gradients up to
/// 5.3e-3 (vgg16-bn: XLA accumulates 8,192 mean-zero products in f32; the interpreter's f32 mode, which
/// rounds each op's result but sums in f64, is off by 1.2e-6 there). Moments are compared against
/// `max(‖m‖∞, 1e-3·max|m| over all parameters)` (likewise v and BN statistics). Parameters after one
/// AdamW step are compared by the step taken (`max|Δp_xla − Δp_interp| / ‖Δp_interp‖∞`, see
/// [`param_step`]) on the elements whose gradient is well above f32 noise (`|m| ≥ 1e-2·max|m|` over all
/// parameters): Adam's first step is `−lr·g/(|g| + ε)`, whose sign follows the gradient's. An output
/// beyond its bound passes only if the program is that ill-conditioned ([`agree`]).
fn tolerance(kind: &SlotKind) -> f64 {
    match kind {
        SlotKind::Logits => 1e-3,
        SlotKind::Loss => 1e-4,
        SlotKind::Correct | SlotKind::Step => 0.0,
        SlotKind::Buffer(_) => 1e-3,
        SlotKind::OptState(_) => 1e-2,
        SlotKind::Param(_) => 1e-3,
        SlotKind::Images | SlotKind::Labels | SlotKind::LearningRate | SlotKind::Grad(_) => 1e-4,
    }
}

/// Train steps whose f32 results cannot meet [`tolerance`], for measured reasons; the bound that holds
/// instead, per output kind. At batch 2 and 64×64 inputs (measured: vgg16-bn m 7.7e-2, v 1.5e-2;
/// mobilenet-v4-medium m 9.2e-2, v 2.3e-2; both parameter steps stay within 6e-5):
/// - vgg16-bn: m 7.7e-2 (IREE: 2.4e-1). Bisection over every node of the step (XLA vs f64) finds the first
///   difference at a ReLU backward (`select(x > 0, ct, 0)`) in the last stage (4×4 maps): BN outputs that
///   are 0 up to rounding fall on the other side of the kink in f32 (the interpreter's f32 mode, which
///   rounds each op, agrees with f64 to 2e-6 there, so no op is wrong; XLA fuses differently).
/// - mobilenet-v4-medium (224×224): m 3.3e-2 on `l5.expand.conv.w`; a 2⁻²⁴ change of the inputs moves
///   the f64 result by 2.5e-3 (ill-conditioned).
const LIMITS: &[(&str, &str, f64)] = &[
    ("vgg16-bn", "m", 0.3),
    ("vgg16-bn", "v", 0.5),
    ("mobilenet-v4-medium", "m", 0.3),
    ("mobilenet-v4-medium", "v", 0.2),
];

/// Further bounds for train steps whose convolutions are oneDNN custom calls, for the same reason
/// (ReLU kinks at batch 2 decided by f32 rounding): any change of summation order moves these
/// gradients by percents. `grads_probe` (ignored; `cargo test --release -p nn --test zoo grads_probe --
/// --ignored --nocapture`) measured resnet50's 159 gradients against f64 at 64×64: XLA's convolutions
/// median 2.7 %, worst 23 % (`l5.b1.conv3.w`), oneDNN's median 4.3 %, worst 40 % (`l4.b4.conv2.w`),
/// neither side worse everywhere (`l4.b5.bn3.beta`: XLA 9.9 %, oneDNN 3.3 %). Adam's first step then
/// takes the opposite sign on some elements whose |m| is above the 1e-2 filter, so the parameter step
/// of these two models is not compared (∞); the moments still are.
const LIMITS_CONV_CALLS: &[(&str, &str, f64)] = &[
    ("resnet50", "param step", f64::INFINITY),
    ("resnet50", "m", 0.5),
    ("resnet50", "v", 0.05),
    ("vgg16-bn", "param step", f64::INFINITY),
];

/// Host tensors as interpreter tensors of the program's input types.
fn interp_args(p: &Program, args: &[Host]) -> Vec<interp::Tensor> {
    p.inputs
        .iter()
        .zip(args)
        .map(|(s, h)| match h {
            Host::F32(v) => interp::Tensor::from_f32(&s.dims, v).unwrap(),
            Host::I32(v) => interp::Tensor::from_i32(&s.dims, v).unwrap(),
        })
        .collect()
}

fn as_f64(h: &Host) -> Vec<f64> {
    match h {
        Host::F32(v) => v.iter().map(|&x| x as f64).collect(),
        Host::I32(v) => v.iter().map(|&x| x as f64).collect(),
    }
}

/// `max|got − want| / max(‖want‖∞, floor)`.
fn normwise(got: &[f64], want: &[f64], floor: f64) -> f64 {
    let num = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let den = want
        .iter()
        .map(|b| b.abs())
        .fold(floor.max(1e-30), f64::max);
    if got.iter().any(|x| !x.is_finite()) {
        f64::INFINITY
    } else {
        num / den
    }
}

/// The step an optimizer took, `p' − p`, from the program's outputs and inputs.
fn param_step(new: &[f64], old: &[f32]) -> Vec<f64> {
    new.iter().zip(old).map(|(n, &o)| n - o as f64).collect()
}

/// What [`agree`] found for one program.
struct Agreement {
    /// Worst error per output kind.
    worst: Vec<(String, f64)>,
    /// Outputs accepted only within the program's own sensitivity (see [`agree`]): (slot, error, bound).
    sensitive: Vec<String>,
    /// Interpreter seconds.
    secs: f64,
    /// The interpreter's outputs.
    outs: Vec<interp::Tensor>,
}

/// The error of each output of `got` against the interpreter's `want` (f64 values per output), by kind:
/// parameters by the step taken on the elements with `|m| ≥ 1e-2·max|m|`, moments against
/// `max(‖want‖∞, 1e-3·max over all parameters)`, BN running statistics against `max(‖want‖∞, 1e-3·max
/// over all buffers)` (a batch mean that is zero in exact arithmetic, after a 1×1 convolution of BN
/// output, is ~1e-17 in f64 and ~1e-9 in f32), the rest norm-wise.
fn errors(p: &Program, args: &[Host], got: &[Vec<f64>], want: &[interp::Tensor]) -> Vec<f64> {
    let top = |prefix: &str| {
        p.outputs
            .iter()
            .zip(want)
            .filter(|(s, _)| matches!(&s.kind, SlotKind::OptState(n) if n.starts_with(prefix)))
            .flat_map(|(_, t)| t.floats().unwrap_or(&[]).iter())
            .fold(0.0f64, |a, x| a.max(x.abs()))
    };
    let (m_top, v_top) = (top("opt.m."), top("opt.v."));
    let b_top = p
        .outputs
        .iter()
        .zip(want)
        .filter(|(s, _)| matches!(s.kind, SlotKind::Buffer(_)))
        .flat_map(|(_, t)| t.floats().unwrap_or(&[]).iter())
        .fold(0.0f64, |a, x| a.max(x.abs()));
    p.outputs
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let w = want[i].floats().map(|v| v.to_vec()).unwrap_or_else(|| {
                want[i]
                    .ints()
                    .map(|v| v.iter().map(|&a| a as f64).collect())
                    .unwrap_or_default()
            });
            let g = &got[i];
            match &slot.kind {
                SlotKind::Param(n) => {
                    let j = p.input_index(&slot.kind).expect("param input");
                    let old = match &args[j] {
                        Host::F32(v) => v,
                        Host::I32(_) => panic!("f32 param"),
                    };
                    let (mut a, mut b) = (param_step(g, old), param_step(&w, old));
                    if let Some(mi) = p.output_index(&SlotKind::OptState(format!("opt.m.{n}"))) {
                        let m = want[mi].floats().expect("f32 moment");
                        for (e, &mv) in m.iter().enumerate() {
                            if mv.abs() < 1e-2 * m_top {
                                a[e] = 0.0;
                                b[e] = 0.0;
                            }
                        }
                    }
                    normwise(&a, &b, 0.0)
                }
                SlotKind::OptState(n) if n.starts_with("opt.m.") => normwise(g, &w, 1e-3 * m_top),
                SlotKind::OptState(_) => normwise(g, &w, 1e-3 * v_top),
                SlotKind::Buffer(_) => normwise(g, &w, 1e-3 * b_top),
                _ => normwise(g, &w, 0.0),
            }
        })
        .collect()
}

/// Every f32 input scaled by `1 + u`, `|u| ≤ 2⁻²⁴` (deterministic): the size of f32 rounding.
fn perturbed(args: &[interp::Tensor]) -> Vec<interp::Tensor> {
    let mut k = 0x2545_F491_4F6C_DD1Du64;
    args.iter()
        .map(|t| match (t.floats(), t.ty.dtype) {
            (Some(v), graph::DType::F32) => {
                let v = v
                    .iter()
                    .map(|&x| {
                        k ^= k << 13;
                        k ^= k >> 7;
                        k ^= k << 17;
                        let u = ((k >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0;
                        x * (1.0 + u * 5.960_464_477_539_063e-8)
                    })
                    .collect();
                interp::Tensor::new(t.ty.clone(), interp::Data::Float(v)).unwrap()
            }
            _ => t.clone(),
        })
        .collect()
}

/// Evaluates `p` on the interpreter (f64) and compares every output with XLA's `xla` ([`errors`]). An
/// output beyond [`tolerance`] is accepted only if the program itself is that sensitive: the interpreter
/// is rerun (f64) on inputs perturbed by one f32 rounding ([`perturbed`]), and the error must stay within
/// 10× the change that alone causes (mobilenet-v2's first-layer gradients at batch 2 move by 3e-2 when
/// the inputs move by 6e-8: no f32 executor can do better). Such outputs are listed in the report.
fn agree(name: &str, p: &Program, args: &[Host], xla: &[Host]) -> Agreement {
    let t = Instant::now();
    let ins = interp_args(p, args);
    let opts = interp::Options::new(interp::Precision::F64);
    let outs =
        interp::run(&p.graph, &ins, &opts).unwrap_or_else(|e| panic!("{name}: interpreter: {e}"));
    let secs = t.elapsed().as_secs_f64();
    let got: Vec<Vec<f64>> = xla.iter().map(as_f64).collect();
    let errs = errors(p, args, &got, &outs);
    let over = p
        .outputs
        .iter()
        .zip(&errs)
        .any(|(s, &e)| !(e <= tolerance(&s.kind)));
    let sens = over.then(|| {
        let moved = interp::run(&p.graph, &perturbed(&ins), &opts).unwrap();
        let moved: Vec<Vec<f64>> = moved
            .iter()
            .map(|t| {
                t.floats().map(|v| v.to_vec()).unwrap_or_else(|| {
                    t.ints()
                        .map(|v| v.iter().map(|&a| a as f64).collect())
                        .unwrap_or_default()
                })
            })
            .collect();
        errors(p, args, &moved, &outs)
    });
    let mut worst: Vec<(String, f64)> = Vec::new();
    let mut sensitive = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for (i, (slot, &err)) in p.outputs.iter().zip(&errs).enumerate() {
        let kind = match &slot.kind {
            SlotKind::Param(_) => "param step",
            SlotKind::OptState(n) if n.starts_with("opt.m.") => "m",
            SlotKind::OptState(_) => "v",
            SlotKind::Buffer(_) => "bn stats",
            SlotKind::Loss => "loss",
            SlotKind::Correct => "correct",
            SlotKind::Step => "step",
            SlotKind::Logits => "logits",
            other => panic!("{name}: unexpected output {other:?}"),
        };
        let conv_calls = p.mlir.contains("@netspec_conv2d_");
        let limit = LIMITS
            .iter()
            .chain(if conv_calls { LIMITS_CONV_CALLS } else { &[] })
            .filter(|(m, k, _)| *m == name && *k == kind && p.graph.name().ends_with("train_step"))
            .map(|l| l.2)
            .reduce(f64::max);
        let tol = tolerance(&slot.kind).max(limit.unwrap_or(0.0));
        if !(err <= tol) {
            let bound = sens.as_ref().map(|s| 10.0 * s[i]).unwrap_or(0.0);
            if err <= bound && !matches!(slot.kind, SlotKind::Correct | SlotKind::Step) {
                sensitive.push(format!(
                    "{:?} {err:.1e} (10x sensitivity {bound:.1e})",
                    slot.kind
                ));
            } else {
                failures.push(format!(
                    "output {i} ({:?}) XLA vs interpreter {err:.2e} > {tol:.0e}, and > 10x the change one \
                     f32 rounding of the inputs causes ({bound:.2e})",
                    slot.kind
                ));
            }
        } else if limit.is_some() && err > tolerance(&slot.kind) {
            sensitive.push(format!(
                "{:?} {err:.1e} (within LIMITS {tol:.0e})",
                slot.kind
            ));
        }
        match worst.iter_mut().find(|(k, _)| k == kind) {
            Some((_, w)) => *w = w.max(err),
            None => worst.push((kind.to_string(), err)),
        }
    }
    assert!(
        failures.is_empty(),
        "{name} {}: {} outputs disagree:\n{}",
        p.graph.name(),
        failures.len(),
        failures.join("\n")
    );
    Agreement {
        worst,
        sensitive,
        secs,
        outs,
    }
}

fn show(w: &[(String, f64)]) -> String {
    w.iter()
        .map(|(k, e)| format!("{k} {e:.1e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_logits(name: &str, what: &str, out: &Host, classes: usize) {
    let v = out.f32();
    assert_eq!(v.len(), B * classes, "{name} {what}: logits length");
    assert!(
        v.iter().all(|x| x.is_finite()),
        "{name} {what}: non-finite logits {v:?}"
    );
}

fn run_model(name: &str) {
    // The input side cut to SIDE, or doubled from there until the spec type-checks (mobilenet-v3's
    // 7×7 average pool needs a 7×7 map).
    let mut spec = spec::zoo::get(name).unwrap();
    let [c0, h0, w0] = spec.input;
    let mut side = SIDE;
    loop {
        let mut t = spec.clone();
        t.input = [c0, h0.min(side), w0.min(side)];
        if spec::params(&t).is_ok() || side >= h0.max(w0) {
            spec = t;
            break;
        }
        side *= 2;
    }
    let k = spec.num_classes;
    let params = spec::init(&spec, 7).unwrap();
    let buffers = spec::init_buffers(&spec).unwrap();
    let [c, h, w] = spec.input;
    let x = noise(B * c * h * w, 11);
    let y = vec![3i32, 7];

    // Train-mode forward.
    let t = Instant::now();
    let p = on_cpu(|| nn::forward(&spec, B)).unwrap();
    let exe = compile(&p);
    let compile_forward = t.elapsed().as_secs_f64();
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.push(Host::F32(x.clone()));
    let out = common::run(&p, &exe, &args);
    check_logits(name, "forward", &out[0], k);
    let golden_forward = golden_line("forward", out[0].f32());
    let a_forward = agree(name, &p, &args, &out);

    // Train step, twice, donating the state back.
    let cfg = RunConfig {
        batch_size: B,
        optimizer: Optimizer::ADAMW,
        weight_decay: 1e-4,
        label_smoothing: 0.1,
        ..RunConfig::default()
    };
    let t = Instant::now();
    let p = on_cpu(|| nn::train_step(&spec, &cfg)).unwrap();
    let exe = compile(&p);
    let compile_train = t.elapsed().as_secs_f64();
    let train_flops = p.flops;
    let n_state = p.aliases.iter().filter(|a| a.is_some()).count();
    assert_eq!(n_state, p.inputs.len() - 3);
    let mut state: Vec<pjrt::Buffer> = Vec::new();
    let mut host_args: Vec<Host> = Vec::new();
    let mut pi = params.iter();
    let mut bi = buffers.iter();
    for s in &p.inputs[..n_state] {
        let h = match &s.kind {
            SlotKind::Param(_) => Host::F32(pi.next().unwrap().clone()),
            SlotKind::OptState(_) => Host::F32(vec![0.0; s.dims.iter().product()]),
            SlotKind::Buffer(_) => Host::F32(bi.next().unwrap().clone()),
            SlotKind::Step => Host::I32(vec![0]),
            other => panic!("{name}: unexpected state slot {other:?}"),
        };
        state.push(upload(s, &h));
        host_args.push(h);
    }
    host_args.extend([
        Host::F32(x.clone()),
        Host::I32(y.clone()),
        Host::F32(vec![1e-3]),
    ]);
    let xb = upload(&p.inputs[n_state], &Host::F32(x.clone()));
    let yb = upload(&p.inputs[n_state + 1], &Host::I32(y));
    let lrb = client().scalar(1e-3f32).unwrap();
    let t_steps = Instant::now();
    let mut losses = Vec::new();
    let mut a_train: Option<Agreement> = None;
    for step in 0..2 {
        let mut args: Vec<Arg> = state.drain(..).map(Arg::Donate).collect();
        args.extend([Arg::Keep(&xb), Arg::Keep(&yb), Arg::Keep(&lrb)]);
        let mut outs = exe.execute(args).unwrap();
        assert_eq!(outs.len(), p.outputs.len());
        for (i, o) in outs.iter().enumerate() {
            let want: Vec<i64> = p.outputs[i].dims.iter().map(|&d| d as i64).collect();
            assert_eq!(
                o.dims(),
                want,
                "{name}: output {i} ({:?})",
                p.outputs[i].kind
            );
            if i < n_state {
                assert_eq!(
                    p.outputs[i].dims, p.inputs[i].dims,
                    "{name}: state {i} changes shape"
                );
                assert_eq!(p.outputs[i].kind, p.inputs[i].kind);
            }
        }
        if step == 0 {
            let host: Vec<Host> = p
                .outputs
                .iter()
                .zip(&outs)
                .map(|(s, b)| download(s, b))
                .collect();
            a_train = Some(agree(name, &p, &host_args, &host));
        }
        let tail = outs.split_off(n_state);
        let loss = download(&p.outputs[n_state], &tail[0]).f32()[0];
        let correct = download(&p.outputs[n_state + 1], &tail[1]).i32()[0];
        let st = download(&p.outputs[n_state - 1], &outs[n_state - 1]).i32()[0];
        assert!(loss.is_finite(), "{name}: step {step} loss {loss}");
        assert!((0..=B as i32).contains(&correct));
        assert_eq!(st, step + 1);
        assert_eq!(p.outputs[n_state - 1].elem, ElemType::I32);
        losses.push(loss);
        state = outs;
    }
    let steps_secs = t_steps.elapsed().as_secs_f64();
    let a_train = a_train.expect("first step compared");
    let batch_stats: Vec<Vec<f32>> = p
        .outputs
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.kind, SlotKind::Buffer(_)))
        .map(|(i, s)| {
            let j = p.input_index(&s.kind).expect("buffer input");
            let old = match &host_args[j] {
                Host::F32(v) => v,
                Host::I32(_) => panic!("f32 buffer"),
            };
            let new = a_train.outs[i].floats().expect("f32 buffer");
            new.iter()
                .zip(old)
                .map(|(n, &o)| ((n - (1.0 - nn::BN_MOMENTUM) * o as f64) / nn::BN_MOMENTUM) as f32)
                .collect()
        })
        .collect();
    assert_eq!(batch_stats.len(), buffers.len());

    // Every state output stays finite.
    for (s, b) in p.outputs[..n_state].iter().zip(&state) {
        if let Host::F32(v) = download(s, b) {
            assert!(
                v.iter().all(|x| x.is_finite()),
                "{name}: {:?} not finite after two steps",
                s.kind
            );
        }
    }
    // Eval-mode forward.
    let t = Instant::now();
    let p = on_cpu(|| nn::predict(&spec, B)).unwrap();
    let exe = compile(&p);
    let compile_predict = t.elapsed().as_secs_f64();
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    // Running statistics = this batch's statistics (from the interpreter's train step: running' =
    // 0.9·running + 0.1·batch), so that predict computes what the train-mode forward does. With the
    // init's mean 0 / variance 1 deep eval-mode nets are chaotic at init (efficientnet-v2-s's logits
    // reach 1e4 and f32 and f64 disagree in the first digit), which would test the input, not the program.
    args.extend(batch_stats.iter().cloned().map(Host::F32));
    args.push(Host::F32(x.clone()));
    let out = common::run(&p, &exe, &args);
    assert_eq!(p.outputs[0].dims, vec![B, k]);
    check_logits(name, "predict", &out[0], k);
    let a_predict = agree(name, &p, &args, &out);
    let golden =
        golden_line("predict", out[0].f32()) + &golden_forward + &golden_line("losses", &losses);
    check_golden(name, &golden, client().conv_calls());

    eprintln!(
        "{name} {}x{}: interpreter (f64) vs XLA: predict {} ({:.1} s); forward {} ({:.1} s); train step {} ({:.1} s)",
        spec.input[1],
        spec.input[2],
        show(&a_predict.worst),
        a_predict.secs,
        show(&a_forward.worst),
        a_forward.secs,
        show(&a_train.worst),
        a_train.secs
    );
    for (what, a) in [
        ("predict", &a_predict),
        ("forward", &a_forward),
        ("train step", &a_train),
    ] {
        if !a.sensitive.is_empty() {
            eprintln!(
                "{name} {what}: within the program's own sensitivity only: {}",
                a.sensitive.join("; ")
            );
        }
    }
    eprintln!(
        "{name}: compile predict {compile_predict:.1}s forward {compile_forward:.1}s train {compile_train:.1}s; \
         2 steps {:.2}s; losses {losses:?}; train-step GFLOP {:.2}",
        steps_secs,
        train_flops as f64 / 1e9
    );
}

macro_rules! zoo_tests {
    ($($test:ident => $name:literal,)*) => {
        $( #[test] fn $test() { run_model($name); } )*

        #[test]
        fn every_zoo_model_is_covered() {
            let mut covered = vec![$($name),*];
            covered.sort();
            let mut all: Vec<&str> = spec::zoo::names().to_vec();
            all.sort();
            assert_eq!(covered, all);
        }
    };
}

zoo_tests! {
    mnist_mlp => "mnist-mlp",
    mnist_cnn => "mnist-cnn",
    cifar_cnn => "cifar-cnn",
    cifar_cnn_bn => "cifar-cnn-bn",
    resnet18 => "resnet18",
    resnet34 => "resnet34",
    resnet50 => "resnet50",
    vgg16_bn => "vgg16-bn",
    squeezenet_1_1 => "squeezenet-1.1",
    mobilenet_v1 => "mobilenet-v1",
    mobilenet_v2 => "mobilenet-v2",
    mobilenet_v3_large => "mobilenet-v3-large",
    mobilenet_v4_medium => "mobilenet-v4-medium",
    efficientnet_b0 => "efficientnet-b0",
    efficientnet_v2_s => "efficientnet-v2-s",
    vit_tiny => "vit-tiny",
    convnext_tiny => "convnext-tiny",
}

/// Builds a program as the runtime does for this CPU client: with the oneDNN convolution custom calls
/// when the client registered them (`train::Executor::codegen`).
fn on_cpu<T>(f: impl FnOnce() -> T) -> T {
    nn::with_conv_calls(common::client().conv_calls(), f)
}

#[test]
#[ignore]
fn grads_probe() {
    let name = std::env::var("PROBE_MODEL").unwrap_or("resnet50".into());
    let mut spec = spec::zoo::get(&name).unwrap();
    spec.input = [spec.input[0], 64, 64];
    let params = spec::init(&spec, 7).unwrap();
    let [c, h, w] = spec.input;
    let x = noise(B * c * h * w, 11);
    let y = vec![3i32, 7];
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.push(Host::F32(x));
    args.push(Host::I32(y));
    let mut res = Vec::new();
    for on in [false, true] {
        let p = nn::with_conv_calls(on, || nn::grads(&spec, B, 0.1)).unwrap();
        let exe = compile(&p);
        res.push(common::run(&p, &exe, &args));
        if !on {
            let exact = interp::run(
                &p.graph,
                &interp_args(&p, &args),
                &interp::Options::new(interp::Precision::F64),
            )
            .unwrap();
            res.push(
                exact
                    .iter()
                    .map(|t| Host::F32(t.floats().unwrap().iter().map(|&v| v as f32).collect()))
                    .collect(),
            );
        }
    }
    let p = nn::grads(&spec, B, 0.1).unwrap();
    for (i, s) in p.outputs.iter().enumerate() {
        let e: Vec<f64> = res[1][i].f32().iter().map(|&v| v as f64).collect();
        let top = e.iter().fold(0f64, |m, v| m.max(v.abs()));
        let err = |k: usize| {
            res[k][i]
                .f32()
                .iter()
                .zip(&e)
                .fold(0f64, |m, (&g, &w)| m.max((g as f64 - w).abs()))
                / top.max(1e-30)
        };
        let (off, on) = (err(0), err(2));
        if on > 1e-4 || off > 1e-4 {
            eprintln!(
                "{:?}: xla {off:.2e} onednn {on:.2e} (scale {top:.2e})",
                s.kind
            );
        }
    }
}
