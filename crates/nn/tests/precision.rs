//! Mixed precision (`RunConfig::precision = Bf16`), the code generator's casts:
//! - every zoo model's bf16 programs (train, eval, predict, grads) keep the f32 ABI slot for slot,
//!   every matrix product and convolution of the train step takes bf16 operands and has an f32
//!   result (f32 accumulation), and f32 programs hold no bf16 at all (no plugin needed);
//! - a bf16 train step and eval step of mnist-cnn and of a small ViT run on the CPU plugin: finite
//!   loss near the f32 step's, every new parameter and moment f32 and finite, the state donated back;
//! - (ignored, `scripts/zoo-bf16.sh`) every zoo model's bf16 train step compiles and takes two
//!   steps, at the small inputs of `tests/zoo.rs`.

mod common;

use std::time::Instant;

use common::{client, compile, download, noise, upload, Host};
use nn::{Program, SlotKind};
use pjrt::Arg;
use spec::{NetSpec, Optimizer, Precision, RunConfig};

const B: usize = 2;
const SIDE: usize = 64;

/// The zoo model at an input side of at most `SIDE` (doubled until the spec type-checks), as
/// `tests/zoo.rs` sizes it.
fn small(name: &str) -> NetSpec {
    let spec = spec::zoo::get(name).unwrap();
    let [c0, h0, w0] = spec.input;
    let mut side = SIDE;
    loop {
        let mut t = spec.clone();
        t.input = [c0, h0.min(side), w0.min(side)];
        if spec::params(&t).is_ok() || side >= h0.max(w0) {
            return t;
        }
        side *= 2;
    }
}

fn cfg(precision: Precision) -> RunConfig {
    RunConfig {
        batch_size: B,
        optimizer: Optimizer::ADAMW,
        weight_decay: 1e-4,
        label_smoothing: 0.1,
        precision,
        ..RunConfig::default()
    }
}

/// The element types of one StableHLO op line's function type: operands and results.
fn types_of(line: &str) -> (Vec<String>, Vec<String>) {
    let sig = line.rsplit_once(" : ").map(|(_, s)| s).unwrap_or("");
    let (ins, outs) = sig.split_once("->").unwrap_or((sig, ""));
    let elems = |s: &str| -> Vec<String> {
        s.split("tensor<")
            .skip(1)
            .map(|t| {
                let t = t.split('>').next().unwrap_or("");
                t.rsplit('x').next().unwrap_or(t).to_string()
            })
            .collect()
    };
    (elems(ins), elems(outs))
}

#[test]
fn bf16_programs_keep_the_abi_and_accumulate_in_f32() {
    for &name in spec::zoo::names() {
        let spec = small(name);
        let f32p = nn::train_step(&spec, &cfg(Precision::F32)).unwrap();
        let bf = nn::train_step(&spec, &cfg(Precision::Bf16)).unwrap();
        assert_eq!(f32p.inputs, bf.inputs, "{name}: train inputs");
        assert_eq!(f32p.outputs, bf.outputs, "{name}: train outputs");
        assert_eq!(f32p.aliases, bf.aliases, "{name}: aliases");
        assert!(!f32p.mlir.contains("bf16"), "{name}: bf16 in the f32 step");
        let mut products = 0;
        for line in bf.mlir.lines() {
            if line.contains("stablehlo.convolution") || line.contains("stablehlo.dot_general") {
                let (ins, outs) = types_of(line);
                assert_eq!(ins, ["bf16", "bf16"], "{name}: {line}");
                assert_eq!(outs, ["f32"], "{name}: {line}");
                products += 1;
            }
            // Reductions that add are f32 (the bf16 sums accumulate in f32).
            if line.contains("stablehlo.reduce(") && line.contains("stablehlo.add") {
                let (ins, _) = types_of(line);
                assert!(!ins.contains(&"bf16".to_string()), "{name}: {line}");
            }
        }
        assert!(products > 0, "{name}: no products in the bf16 step");
        for (a, b) in [
            (
                nn::eval_step(&spec, B).unwrap(),
                nn::eval_step_in(&spec, B, Precision::Bf16).unwrap(),
            ),
            (
                nn::predict(&spec, B).unwrap(),
                nn::predict_in(&spec, B, Precision::Bf16).unwrap(),
            ),
            (
                nn::grads(&spec, B, 0.1).unwrap(),
                nn::grads_in(&spec, B, 0.1, Precision::Bf16).unwrap(),
            ),
        ] {
            assert_eq!(a.inputs, b.inputs, "{name}");
            assert_eq!(a.outputs, b.outputs, "{name}");
            assert!(
                b.mlir.contains("bf16") && !a.mlir.contains("bf16"),
                "{name}"
            );
        }
    }
}

/// Rounds to the nearest bf16 value (ties to even), kept as f32.
fn to_bf16(v: &[f32]) -> Vec<f32> {
    v.iter()
        .map(|&f| {
            let b = f.to_bits();
            f32::from_bits((b + 0x7fff + ((b >> 16) & 1)) & 0xffff_0000)
        })
        .collect()
}

/// The first losses of one model: f32, bf16, and f32 at the bf16-rounded point (parameters and
/// images rounded to bf16, the rest in f32: how far rounding the inputs alone moves the loss, a
/// lower bound of bf16's effect), and the bf16 train step's compile time.
struct Losses {
    f32: f32,
    bf16: f32,
    f32_rounded: f32,
    compile_s: f64,
}

/// Two donated train steps and an eval step of `spec` in f32 and in bf16 (and one f32 step from the
/// bf16-rounded point).
fn steps(name: &str, spec: &NetSpec) -> Losses {
    let params = spec::init(spec, 7).unwrap();
    let buffers = spec::init_buffers(spec).unwrap();
    let [c, h, w] = spec.input;
    let x = noise(B * c * h * w, 11);
    let y = vec![3i32, 7];
    let mut first_loss = Vec::new();
    let mut compile_s = 0.0;
    let mut f32_rounded = f32::NAN;
    for precision in [Precision::F32, Precision::Bf16] {
        let t = Instant::now();
        let p: Program = nn::train_step(spec, &cfg(precision)).unwrap();
        let exe = compile(&p);
        if precision == Precision::Bf16 {
            compile_s = t.elapsed().as_secs_f64();
        }
        let n_state = p.aliases.iter().filter(|a| a.is_some()).count();
        let state_of = |params: &[Vec<f32>]| -> Vec<pjrt::Buffer> {
            let (mut pi, mut bi) = (params.iter(), buffers.iter());
            p.inputs[..n_state]
                .iter()
                .map(|s| {
                    let h = match &s.kind {
                        SlotKind::Param(_) => Host::F32(pi.next().unwrap().clone()),
                        SlotKind::OptState(_) => Host::F32(vec![0.0; s.dims.iter().product()]),
                        SlotKind::Buffer(_) => Host::F32(bi.next().unwrap().clone()),
                        SlotKind::Step => Host::I32(vec![0]),
                        other => panic!("{name}: unexpected state slot {other:?}"),
                    };
                    upload(s, &h)
                })
                .collect()
        };
        let mut state = state_of(&params);
        let xb = upload(&p.inputs[n_state], &Host::F32(x.clone()));
        let yb = upload(&p.inputs[n_state + 1], &Host::I32(y.clone()));
        let lrb = client().scalar(1e-3f32).unwrap();
        for step in 0..2 {
            let mut args: Vec<Arg> = state.drain(..).map(Arg::Donate).collect();
            args.extend([Arg::Keep(&xb), Arg::Keep(&yb), Arg::Keep(&lrb)]);
            let mut outs = exe.execute(args).unwrap();
            let tail = outs.split_off(n_state);
            let loss = download(&p.outputs[n_state], &tail[0]).f32()[0];
            assert!(
                loss.is_finite(),
                "{name} {precision:?}: step {step} loss {loss}"
            );
            if step == 0 {
                first_loss.push(loss);
                for (s, b) in p.outputs[..n_state].iter().zip(&outs) {
                    if let Host::F32(v) = download(s, b) {
                        assert!(v.iter().all(|x| x.is_finite()), "{name}: {:?}", s.kind);
                    }
                }
            }
            state = outs;
        }
        if precision == Precision::F32 {
            let rounded: Vec<Vec<f32>> = params.iter().map(|v| to_bf16(v)).collect();
            let xr = upload(&p.inputs[n_state], &Host::F32(to_bf16(&x)));
            let mut args: Vec<Arg> = state_of(&rounded).into_iter().map(Arg::Donate).collect();
            args.extend([Arg::Keep(&xr), Arg::Keep(&yb), Arg::Keep(&lrb)]);
            let mut outs = exe.execute(args).unwrap();
            let tail = outs.split_off(n_state);
            f32_rounded = download(&p.outputs[n_state], &tail[0]).f32()[0];
        }
        let e = nn::eval_step_in(spec, B, precision).unwrap();
        let ee = compile(&e);
        let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
        args.extend(buffers.iter().cloned().map(Host::F32));
        args.extend([Host::F32(x.clone()), Host::I32(y.clone())]);
        let out = common::run(&e, &ee, &args);
        assert!(out[0].f32()[0].is_finite(), "{name}: eval loss");
    }
    let l = Losses {
        f32: first_loss[0],
        bf16: first_loss[1],
        f32_rounded,
        compile_s,
    };
    eprintln!(
        "{name}: first loss f32 {} bf16 {} (rel. {:.2e}), f32 at the bf16-rounded point {} (rel. {:.2e}); \
         bf16 train step compiled in {:.1} s",
        l.f32,
        l.bf16,
        ((l.bf16 - l.f32) / l.f32).abs(),
        l.f32_rounded,
        ((l.f32_rounded - l.f32) / l.f32).abs(),
        l.compile_s
    );
    l
}

/// The first bf16 loss within `rtol` of the f32 one.
fn loss_near_f32(name: &str, l: &Losses, rtol: f32) -> Result<(), String> {
    let d = (l.bf16 - l.f32).abs();
    if d <= rtol * l.f32.abs() {
        Ok(())
    } else {
        Err(format!(
            "{name}: bf16 loss {} vs f32 {} (f32 at the bf16-rounded point {}): |Δ| {d:.3e} > {rtol}·|f32|",
            l.bf16, l.f32, l.f32_rounded
        ))
    }
}

#[test]
fn bf16_steps_run_near_the_f32_step() {
    // bf16 rounds activations and operands to 8 significant bits (2⁻⁸ relative); the loss of an
    // initialised net (≈ ln 10) moves by far less than 5 %.
    // bf16 rounds activations and operands to 8 significant bits (2⁻⁸ relative); the loss of these
    // initialised nets (≈ ln 10) moves by far less than 5 %.
    loss_near_f32("mnist-cnn", &steps("mnist-cnn", &small("mnist-cnn")), 0.05).unwrap();
    let vit = spec::parse_checked(
        b"name tiny-vit\ninput 3 16 16\nclasses 10\npatchEmbed 32 patch=4\ntransformer heads=2 mlp=64 blocks=2\ndense 10\n",
    )
    .unwrap();
    loss_near_f32("tiny-vit", &steps("tiny-vit", &vit), 0.05).unwrap();
}

/// The zoo sweep's bound on the first loss: a sanity bound against gross errors, not an accuracy
/// test (the bf16 JAX oracle is that, docs/ORACLE.md). At batch 2 the deep BN nets are chaotic in
/// their inputs: rounding only the parameters and images to bf16 moves mobilenet-v2's f32 loss by
/// 7.3 % and bf16 moves it by 15.3 %; JAX's own bf16 loss of resnet50 at 64², batch 2, is 9.0 % off
/// its f32 loss at the same point (measured, docs/ORACLE.md, "bf16").
const ZOO_LOSS_RTOL: f32 = 0.25;

#[test]
#[ignore = "compiles every zoo model's bf16 train step (minutes); scripts/zoo-bf16.sh"]
fn every_zoo_model_bf16_train_step_compiles() {
    // Every model is tried (a failure does not stop the sweep); the failures are listed at the end.
    let t0 = Instant::now();
    let mut total = 0.0;
    let mut failures = Vec::new();
    for &name in spec::zoo::names() {
        let spec = small(name);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| steps(name, &spec))) {
            Ok(l) => {
                total += l.compile_s;
                if let Err(e) = loss_near_f32(name, &l, ZOO_LOSS_RTOL) {
                    failures.push(e);
                }
            }
            Err(_) => failures.push(format!("{name}: failed (see the panic above)")),
        }
    }
    eprintln!(
        "{} zoo models: bf16 train steps compiled in {total:.1} s; the sweep took {:.0} s; {} failed",
        spec::zoo::names().len(),
        t0.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
