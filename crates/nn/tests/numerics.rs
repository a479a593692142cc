//! Numerical checks of the step programs against independent host computations in f64:
//! a dense-relu-dense model's loss, gradients and one update under every optimizer (weight decay on
//! kernels only, label smoothing, Adam bias correction from the step counter), BN running statistics
//! and eval with running statistics, eval padding, and `grads()` of a conv+BN model against central
//! finite differences of its own loss.

mod common;

use common::{compile, noise, run, Host};
use nn::SlotKind;
use spec::NetSpec;
use spec::{Optimizer, RunConfig};

const K: usize = 4;

/// A spec from its text (header lines built from the arguments).
fn net(name: &str, input: &str, classes: usize, layers: &str) -> NetSpec {
    let text = format!("name {name}\ninput {input}\nclasses {classes}\n{layers}");
    spec::parse_checked(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn mlp() -> NetSpec {
    net(
        "tiny-mlp",
        "1 2 3",
        K,
        "flatten\ndense 5 act=relu\ndense 4\n",
    )
}

fn close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w} (err {err:e})"
        );
    }
}

/// Host model of the tiny MLP: loss and gradients in f64.
struct HostMlp {
    loss: f64,
    grads: Vec<Vec<f64>>, // w1, b1, w2, b2
    correct: i32,
}

fn host_mlp(p: &[Vec<f32>], x: &[f32], y: &[i32], ls: f64) -> HostMlp {
    let (n, hdim) = (6, 5);
    let b = y.len();
    let f = |v: &Vec<f32>| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
    let (w1, b1, w2, b2) = (f(&p[0]), f(&p[1]), f(&p[2]), f(&p[3]));
    let mut loss = 0.0;
    let mut g = vec![
        vec![0.0; n * hdim],
        vec![0.0; hdim],
        vec![0.0; hdim * K],
        vec![0.0; K],
    ];
    let mut correct = 0;
    for r in 0..b {
        let xr: Vec<f64> = x[r * n..(r + 1) * n].iter().map(|&a| a as f64).collect();
        let pre: Vec<f64> = (0..hdim)
            .map(|j| b1[j] + (0..n).map(|i| xr[i] * w1[i * hdim + j]).sum::<f64>())
            .collect();
        let h: Vec<f64> = pre.iter().map(|&a| a.max(0.0)).collect();
        let z: Vec<f64> = (0..K)
            .map(|k| b2[k] + (0..hdim).map(|j| h[j] * w2[j * K + k]).sum::<f64>())
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|&a| (a - m).exp()).sum::<f64>().ln();
        let t: Vec<f64> = (0..K)
            .map(|k| (1.0 - ls) * (k as i32 == y[r]) as i32 as f64 + ls / K as f64)
            .collect();
        loss += -(0..K).map(|k| t[k] * (z[k] - lse)).sum::<f64>() / b as f64;
        let arg = (0..K).fold(0, |a, k| if z[k] > z[a] { k } else { a });
        correct += (arg as i32 == y[r]) as i32;
        let dz: Vec<f64> = (0..K)
            .map(|k| ((z[k] - lse).exp() - t[k]) / b as f64)
            .collect();
        for j in 0..hdim {
            for k in 0..K {
                g[2][j * K + k] += h[j] * dz[k];
            }
        }
        for k in 0..K {
            g[3][k] += dz[k];
        }
        let dh: Vec<f64> = (0..hdim)
            .map(|j| {
                if pre[j] > 0.0 {
                    (0..K).map(|k| dz[k] * w2[j * K + k]).sum()
                } else {
                    0.0
                }
            })
            .collect();
        for i in 0..n {
            for j in 0..hdim {
                g[0][i * hdim + j] += xr[i] * dh[j];
            }
        }
        for j in 0..hdim {
            g[1][j] += dh[j];
        }
    }
    HostMlp {
        loss,
        grads: g,
        correct,
    }
}

/// Random parameters (biases non-zero too), a batch, and random optimizer state.
fn setup(spec: &NetSpec) -> (Vec<Vec<f32>>, Vec<f32>, Vec<i32>) {
    let ps = spec::params(spec).unwrap();
    let params: Vec<Vec<f32>> = ps
        .iter()
        .enumerate()
        .map(|(i, p)| noise(p.numel(), 100 + i as u64))
        .collect();
    let [c, h, w] = spec.input;
    let x = noise(3 * c * h * w, 5);
    (params, x, vec![1, 3, 0])
}

/// Runs one train step of the tiny MLP and compares everything with the host.
fn check_step(opt: Optimizer, wd: f32, ls: f32) {
    let spec = mlp();
    let cfg = RunConfig {
        batch_size: 3,
        optimizer: opt,
        weight_decay: wd,
        label_smoothing: ls,
        ..RunConfig::default()
    };
    let prog = nn::train_step(&spec, &cfg).unwrap();
    let exe = compile(&prog);
    let ps = spec::params(&spec).unwrap();
    let (params, x, y) = setup(&spec);
    let step = 4; // t = 5 in the bias correction
    let lr = 0.05f64;
    let n_moments = match opt {
        Optimizer::Sgd => 0,
        Optimizer::Momentum { .. } => 1,
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 2,
    };
    // m random, v random positive.
    let state: Vec<Vec<Vec<f32>>> = (0..n_moments)
        .map(|k| {
            ps.iter()
                .enumerate()
                .map(|(i, p)| {
                    noise(p.numel(), 500 + 10 * k as u64 + i as u64)
                        .iter()
                        .map(|&a| if k == 1 { a.abs() * 0.1 } else { a })
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    for s in &state {
        args.extend(s.iter().cloned().map(Host::F32));
    }
    args.push(Host::I32(vec![step]));
    args.push(Host::F32(x.clone()));
    args.push(Host::I32(y.clone()));
    args.push(Host::F32(vec![lr as f32]));
    let out = run(&prog, &exe, &args);

    let host = host_mlp(&params, &x, &y, ls as f64);
    let np = ps.len();
    let loss = out[out.len() - 2].f32()[0];
    close("loss", &[loss], &[host.loss], 1e-5);
    assert_eq!(out[out.len() - 1].i32()[0], host.correct, "correct");
    assert_eq!(out[out.len() - 3].i32()[0], step + 1, "step'");
    let wd = wd as f64;
    for i in 0..np {
        let p: Vec<f64> = params[i].iter().map(|&a| a as f64).collect();
        let g = &host.grads[i];
        let decay = if ps[i].decay { wd } else { 0.0 };
        let ge: Vec<f64> = g.iter().zip(&p).map(|(g, p)| g + decay * p).collect(); // coupled decay
        let name = &ps[i].name;
        match opt {
            Optimizer::Sgd => {
                let want: Vec<f64> = p.iter().zip(&ge).map(|(p, g)| p - lr * g).collect();
                close(&format!("sgd {name}"), out[i].f32(), &want, 1e-5);
            }
            Optimizer::Momentum { mu } => {
                let m: Vec<f64> = state[0][i]
                    .iter()
                    .zip(&ge)
                    .map(|(&m, g)| mu as f64 * m as f64 + g)
                    .collect();
                let want: Vec<f64> = p.iter().zip(&m).map(|(p, m)| p - lr * m).collect();
                close(&format!("momentum m {name}"), out[np + i].f32(), &m, 1e-5);
                close(&format!("momentum {name}"), out[i].f32(), &want, 1e-5);
            }
            Optimizer::Adam { beta1, beta2, eps } | Optimizer::AdamW { beta1, beta2, eps } => {
                let adamw = matches!(opt, Optimizer::AdamW { .. });
                let (b1, b2, eps) = (beta1 as f64, beta2 as f64, eps as f64);
                let gg = if adamw { g.clone() } else { ge.clone() };
                let m: Vec<f64> = state[0][i]
                    .iter()
                    .zip(&gg)
                    .map(|(&m, g)| b1 * m as f64 + (1.0 - b1) * g)
                    .collect();
                let v: Vec<f64> = state[1][i]
                    .iter()
                    .zip(&gg)
                    .map(|(&v, g)| b2 * v as f64 + (1.0 - b2) * g * g)
                    .collect();
                let t = step + 1;
                let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
                let want: Vec<f64> = (0..p.len())
                    .map(|j| {
                        let u = (m[j] / c1) / ((v[j] / c2).sqrt() + eps);
                        let u = if adamw { u + decay * p[j] } else { u };
                        p[j] - lr * u
                    })
                    .collect();
                close(&format!("adam m {name}"), out[np + i].f32(), &m, 1e-5);
                close(&format!("adam v {name}"), out[2 * np + i].f32(), &v, 1e-5);
                close(&format!("adam {name}"), out[i].f32(), &want, 1e-4);
            }
        }
    }
}

#[test]
fn sgd_step_matches_host() {
    check_step(Optimizer::Sgd, 0.1, 0.0);
}

#[test]
fn momentum_step_matches_host() {
    check_step(Optimizer::Momentum { mu: 0.9 }, 0.1, 0.1);
}

#[test]
fn adam_step_matches_host() {
    check_step(Optimizer::ADAM, 0.05, 0.0);
}

#[test]
fn adamw_step_matches_host() {
    check_step(
        Optimizer::AdamW {
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
        },
        0.2,
        0.2,
    );
}

#[test]
fn label_smoothing_changes_the_loss_as_specified() {
    // grads() with and without smoothing against the host loss: ls = 0.3.
    let spec = mlp();
    let (params, x, y) = setup(&spec);
    for ls in [0.0f32, 0.3] {
        let prog = nn::grads(&spec, 3, ls).unwrap();
        let exe = compile(&prog);
        let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
        args.push(Host::F32(x.clone()));
        args.push(Host::I32(y.clone()));
        let out = run(&prog, &exe, &args);
        let host = host_mlp(&params, &x, &y, ls as f64);
        close(&format!("loss ls={ls}"), out[0].f32(), &[host.loss], 1e-5);
        for i in 0..4 {
            assert_eq!(
                prog.outputs[1 + i].kind,
                SlotKind::Grad(spec::params(&spec).unwrap()[i].name.clone())
            );
            close(
                &format!("grad {i} ls={ls}"),
                out[1 + i].f32(),
                &host.grads[i],
                1e-5,
            );
        }
    }
}

#[test]
fn weight_decay_touches_kernels_only() {
    // Same step with wd = 0 and wd = 0.5 (AdamW, decoupled): biases identical, kernels differ by
    // exactly lr·wd·p.
    let spec = mlp();
    let (params, x, y) = setup(&spec);
    let lr = 0.1f32;
    let step_with = |wd: f32| {
        let cfg = RunConfig {
            batch_size: 3,
            optimizer: Optimizer::ADAMW,
            weight_decay: wd,
            label_smoothing: 0.0,
            ..RunConfig::default()
        };
        let prog = nn::train_step(&spec, &cfg).unwrap();
        let exe = compile(&prog);
        let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
        for p in &params {
            args.push(Host::F32(vec![0.0; p.len()])); // m
        }
        for p in &params {
            args.push(Host::F32(vec![0.0; p.len()])); // v
        }
        args.extend([
            Host::I32(vec![0]),
            Host::F32(x.clone()),
            Host::I32(y.clone()),
            Host::F32(vec![lr]),
        ]);
        run(&prog, &exe, &args)
    };
    let a = step_with(0.0);
    let b = step_with(0.5);
    let ps = spec::params(&spec).unwrap();
    for (i, p) in ps.iter().enumerate() {
        if p.decay {
            let want: Vec<f64> = a[i]
                .f32()
                .iter()
                .zip(&params[i])
                .map(|(&u, &w)| u as f64 - 0.1 * 0.5 * w as f64)
                .collect();
            close(&format!("decayed {}", p.name), b[i].f32(), &want, 1e-6);
        } else {
            assert_eq!(a[i].f32(), b[i].f32(), "{} must not be decayed", p.name);
        }
    }
    assert!(ps.iter().any(|p| p.decay) && ps.iter().any(|p| !p.decay));
}

/// `[B, 2, 3, 3]` → batchNorm → globalAvgPool → dense 4.
fn bn_model() -> NetSpec {
    net("tiny-bn", "2 3 3", K, "batchNorm\nglobalAvgPool\ndense 4\n")
}

#[test]
fn bn_running_statistics_update_and_eval_use() {
    let spec = bn_model();
    let cfg = RunConfig {
        batch_size: 3,
        optimizer: Optimizer::Sgd,
        weight_decay: 0.0,
        label_smoothing: 0.0,
        ..RunConfig::default()
    };
    let prog = nn::train_step(&spec, &cfg).unwrap();
    let exe = compile(&prog);
    let ps = spec::params(&spec).unwrap();
    let params: Vec<Vec<f32>> = ps
        .iter()
        .enumerate()
        .map(|(i, p)| noise(p.numel(), 40 + i as u64))
        .collect();
    let x: Vec<f32> = noise(3 * 2 * 9, 9).iter().map(|a| 2.0 * a + 0.5).collect();
    let (rm, rv) = (vec![0.3f32, -0.2], vec![1.5f32, 0.7]);
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.extend([
        Host::F32(rm.clone()),
        Host::F32(rv.clone()),
        Host::I32(vec![0]),
        Host::F32(x.clone()),
        Host::I32(vec![0, 1, 2]),
        Host::F32(vec![0.0]),
    ]);
    let out = run(&prog, &exe, &args);
    // Host batch statistics over (N, H, W), biased variance.
    let (mut mean, mut var) = (vec![0.0f64; 2], vec![0.0f64; 2]);
    for c in 0..2 {
        let vals: Vec<f64> = (0..3)
            .flat_map(|b| (0..9).map(move |s| (b, s)))
            .map(|(b, s)| x[b * 18 + c * 9 + s] as f64)
            .collect();
        mean[c] = vals.iter().sum::<f64>() / 27.0;
        var[c] = vals.iter().map(|v| (v - mean[c]).powi(2)).sum::<f64>() / 27.0;
    }
    let np = ps.len();
    let want_m: Vec<f64> = (0..2).map(|c| 0.9 * rm[c] as f64 + 0.1 * mean[c]).collect();
    let want_v: Vec<f64> = (0..2).map(|c| 0.9 * rv[c] as f64 + 0.1 * var[c]).collect();
    assert_eq!(prog.outputs[np].kind, SlotKind::Buffer("l0.mean".into()));
    close("running mean", out[np].f32(), &want_m, 1e-5);
    close("running var", out[np + 1].f32(), &want_v, 1e-5);
    // lr = 0: parameters unchanged.
    for i in 0..np {
        assert_eq!(out[i].f32(), &params[i][..]);
    }

    // Eval uses the running statistics: compare the logits of predict with the host.
    let prog = nn::predict(&spec, 3).unwrap();
    let exe = compile(&prog);
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.extend([
        Host::F32(rm.clone()),
        Host::F32(rv.clone()),
        Host::F32(x.clone()),
    ]);
    let logits = run(&prog, &exe, &args);
    let (gamma, beta, w, bias) = (&params[0], &params[1], &params[2], &params[3]);
    let mut want = Vec::new();
    for b in 0..3 {
        let pooled: Vec<f64> = (0..2)
            .map(|c| {
                let s: f64 = (0..9).map(|s| x[b * 18 + c * 9 + s] as f64).sum::<f64>() / 9.0;
                (s - rm[c] as f64) / (rv[c] as f64 + 1e-5).sqrt() * gamma[c] as f64 + beta[c] as f64
            })
            .collect();
        for k in 0..K {
            want.push(
                bias[k] as f64 + (0..2).map(|c| pooled[c] * w[c * K + k] as f64).sum::<f64>(),
            );
        }
    }
    close("eval logits", logits[0].f32(), &want, 1e-5);
}

#[test]
fn eval_ignores_padding_labels() {
    let spec = mlp();
    let (params, x3, _) = setup(&spec);
    let mut x = x3.clone();
    x.extend(noise(6, 77)); // a 4th row
    let prog = nn::eval_step(&spec, 4).unwrap();
    let exe = compile(&prog);
    let y = vec![2, 0, -1, -1];
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.extend([Host::F32(x.clone()), Host::I32(y.clone())]);
    let out = run(&prog, &exe, &args);
    // Host: the summed unsmoothed CE and hits of the first two rows only.
    let host = host_mlp(&params, &x[..12], &y[..2], 0.0);
    close("eval loss_sum", out[0].f32(), &[host.loss * 2.0], 1e-5);
    assert_eq!(out[1].i32()[0], host.correct);
    // All rows padding: nothing counts.
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.extend([Host::F32(x), Host::I32(vec![-1; 4])]);
    let out = run(&prog, &exe, &args);
    assert_eq!(out[0].f32()[0], 0.0);
    assert_eq!(out[1].i32()[0], 0);
}

/// `grads()` of `spec` at batch 3 against central finite differences (step `eps`) of its own loss:
/// along a random direction over all parameters (relative tolerance `rtol`), and at three coordinates
/// of every parameter.
fn check_grads_fd(spec: &NetSpec, seed: u64, eps: f32, rtol: f64) {
    let prog = nn::grads(spec, 3, 0.1).unwrap();
    let exe = compile(&prog);
    let ps = spec::params(spec).unwrap();
    // Random parameters near their initial regime: γ = 1 + u/5, β and biases u/5, kernels u
    // (u uniform in [−1, 1)). Random γ and β of size 1 can switch a ReLU after BN almost entirely
    // off, leaving a few activations next to the kink, where finite differences mean nothing.
    let params: Vec<Vec<f32>> = ps
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let u = noise(p.numel(), seed + i as u64);
            match p.init {
                spec::Init::Ones | spec::Init::Constant { .. } => {
                    u.iter().map(|v| 1.0 + 0.2 * v).collect()
                }
                spec::Init::Zeros => u.iter().map(|v| 0.2 * v).collect(),
                spec::Init::HeNormal { .. } | spec::Init::Normal { .. } => u,
            }
        })
        .collect();
    let [c, h, w] = spec.input;
    let x = noise(3 * c * h * w, seed + 1000);
    let y: Vec<i32> = (0..3).map(|i| (i % spec.num_classes) as i32).collect();
    let eval = |ps: &[Vec<f32>]| -> Vec<Host> {
        let mut args: Vec<Host> = ps.iter().cloned().map(Host::F32).collect();
        args.extend([Host::F32(x.clone()), Host::I32(y.clone())]);
        run(&prog, &exe, &args)
    };
    let base = eval(&params);
    // Directional derivative along a random direction: ⟨∇L, d⟩ vs (L(p + εd) − L(p − εd)) / 2ε.
    let dir: Vec<Vec<f32>> = ps
        .iter()
        .enumerate()
        .map(|(i, p)| noise(p.numel(), seed + 2000 + i as u64))
        .collect();
    let shifted = |s: f32| -> f64 {
        let q: Vec<Vec<f32>> = params
            .iter()
            .zip(&dir)
            .map(|(p, d)| p.iter().zip(d).map(|(a, b)| a + s * b).collect())
            .collect();
        eval(&q)[0].f32()[0] as f64
    };
    let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
    let analytic: f64 = (0..ps.len())
        .map(|i| {
            base[1 + i]
                .f32()
                .iter()
                .zip(&dir[i])
                .map(|(&g, &d)| g as f64 * d as f64)
                .sum::<f64>()
        })
        .sum();
    assert!(
        (fd - analytic).abs() <= rtol * (1.0 + analytic.abs()),
        "{}: directional derivative: fd {fd}, grads {analytic}",
        spec.name
    );
    // A few single coordinates of every parameter.
    for (i, p) in ps.iter().enumerate() {
        for j in [0, p.numel() / 2, p.numel() - 1] {
            let h = eps;
            let mut q = params.clone();
            q[i][j] += h;
            let up = eval(&q)[0].f32()[0] as f64;
            q[i][j] -= 2.0 * h;
            let down = eval(&q)[0].f32()[0] as f64;
            let fd = (up - down) / (2.0 * h as f64);
            let g = base[1 + i].f32()[j] as f64;
            assert!(
                (fd - g).abs() <= 3e-3 + 10.0 * rtol * g.abs(),
                "{}: {}[{j}]: finite difference {fd}, grads {g}",
                spec.name,
                p.name
            );
        }
    }
}

#[test]
fn conv_bn_grads_match_finite_differences() {
    check_grads_fd(
        &net(
            "tiny-conv-bn",
            "2 6 6",
            3,
            // depthwise 3×3 + BN, then a 1×1 (matrix-product form) + BN; a 1×1 stride 2 (strided
            // matrix-product form)
            "convBn 3 kernel=3 act=swish\nmaxPool 2\nseparableConv 4 act=relu6\n\
             convBn 4 kernel=1 stride=2 act=hswish\nconvBn 4 kernel=3\nglobalAvgPool\ndense 3\n",
        ),
        300,
        3e-4,
        2e-3,
    );
}

#[test]
fn transformer_grads_match_finite_differences() {
    // patch embedding (CLS, positions), pre-LN attention with a softmax custom VJP, GELU MLP, final LN.
    check_grads_fd(
        &net(
            "tiny-vit",
            "3 8 8",
            3,
            "patchEmbed 8 patch=4\ntransformer heads=2 mlp=16 blocks=2\ndense 3\n",
        ),
        400,
        3e-4,
        2e-3,
    );
}

#[test]
fn block_zoo_grads_match_finite_differences() {
    // The remaining layer families with smooth activations where the layer lets us choose (ReLU kinks
    // make finite differences of a deep net at batch 3 unreliable): instance/layer norm, average
    // pooling, MBConv with SE, MobileNetV3 block (hsigmoid gate), fused MBConv, UIB, the ConvNeXt
    // block (depthwise 7×7 with bias, exact GELU, layer scale, stochastic depth with a fixed mask),
    // batch norm and dropout (a fixed mask: the key of step 0) on flat features.
    check_grads_fd(
        &net(
            "tiny-blocks",
            "3 8 8",
            3,
            "conv2d 8 kernel=3 act=gelu\ninstanceNorm\navgPool 3 stride=1 pad=1\nlayerNorm\n\
             mbConv 8 expand=2 kernel=3\nmbConvV3 8 expanded=16 kernel=5 stride=2 se=true act=hswish\n\
             fusedMbConv 8 expand=2 kernel=3 blocks=2 se=true\nuib 8 expand=2 start=3 mid=3 act=swish\n\
             convnextBlock 8 drop=0.25 scaleInit=0.5\n\
             flatten\nbatchNorm\ndropout 0.25\ndense 3 act=sigmoid\n",
        ),
        500,
        3e-4,
        2e-3,
    );
}

#[test]
fn relu_blocks_grads_match_finite_differences() {
    // Blocks with fixed ReLU/ReLU6, one small net each. After BN at batch 3 many pre-activations sit
    // near a ReLU kink, and the f32 loss carries ~3e-4 of rounding noise per difference at this step,
    // so the tolerance is 2 % here (it still catches a wrong sign, a missing term or a wrong factor).
    let blocks = [
        "fire 4 expand1=4 expand3=4",
        "residual 8 stride=2",
        "bottleneck 8",
        "invertedResidual 8 expand=2",
    ];
    for (i, b) in blocks.into_iter().enumerate() {
        let spec = net(
            &format!("tiny-{i}"),
            "8 8 8",
            3,
            &format!("{b}\nglobalAvgPool\ndense 3\n"),
        );
        check_grads_fd(&spec, 600 + 10 * i as u64, 3e-4, 2e-2);
    }
}

#[test]
fn conv_forward_matches_host() {
    // conv2d 3×3 stride 2 pad 1 (a convolution) then conv2d 1×1 stride 2 (the matrix-product form),
    // both with bias, against a direct host loop.
    let spec = net(
        "tiny-conv",
        "2 7 7",
        3,
        "conv2d 3 kernel=3 stride=2 pad=1\nconv2d 2 kernel=1 stride=2\nflatten\ndense 3\n",
    );
    let ps = spec::params(&spec).unwrap();
    let params: Vec<Vec<f32>> = ps
        .iter()
        .enumerate()
        .map(|(i, p)| noise(p.numel(), 60 + i as u64))
        .collect();
    let x = noise(2 * 2 * 49, 61);
    let prog = nn::predict(&spec, 2).unwrap();
    let exe = compile(&prog);
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.push(Host::F32(x.clone()));
    let got = run(&prog, &exe, &args);
    // Host convolution: x [B, C, H, W], w [O, C, k, k], stride s, padding p, plus bias.
    let conv = |x: &[f64],
                c: usize,
                h: usize,
                w: &[f32],
                b: &[f32],
                o: usize,
                k: usize,
                s: usize,
                p: usize| {
        let ho = (h + 2 * p - k) / s + 1;
        let mut y = vec![0.0f64; 2 * o * ho * ho];
        for n in 0..2 {
            for oc in 0..o {
                for i in 0..ho {
                    for j in 0..ho {
                        let mut acc = b[oc] as f64;
                        for ic in 0..c {
                            for di in 0..k {
                                for dj in 0..k {
                                    let (r, q) = (
                                        (i * s + di) as i64 - p as i64,
                                        (j * s + dj) as i64 - p as i64,
                                    );
                                    if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < h {
                                        acc += x[((n * c + ic) * h + r as usize) * h + q as usize]
                                            * w[((oc * c + ic) * k + di) * k + dj] as f64;
                                    }
                                }
                            }
                        }
                        y[((n * o + oc) * ho + i) * ho + j] = acc;
                    }
                }
            }
        }
        (y, ho)
    };
    let xf: Vec<f64> = x.iter().map(|&a| a as f64).collect();
    let (h1, s1) = conv(&xf, 2, 7, &params[0], &params[1], 3, 3, 2, 1);
    let (h2, s2) = conv(&h1, 3, s1, &params[2], &params[3], 2, 1, 2, 0);
    assert_eq!((s1, s2), (4, 2));
    let n = 2 * s2 * s2;
    let mut want = Vec::new();
    for b in 0..2 {
        for k in 0..3 {
            want.push(
                params[5][k] as f64
                    + (0..n)
                        .map(|i| h2[b * n + i] * params[4][i * 3 + k] as f64)
                        .sum::<f64>(),
            );
        }
    }
    close("logits", got[0].f32(), &want, 1e-5);
}

/// A lowering form `form(x, w)` against a reference `reference(x, w)` on a channels-last input `x` and an
/// OIHW kernel `w` of the given dims: forward values and both cotangents, through the CPU plugin.
fn same_conv_and_cotangents(
    label: &str,
    normwise: bool,
    x_dims: &[usize],
    w_dims: &[usize],
    form: impl Fn(&mut graph::Graph, graph::Value, graph::Value) -> graph::Result<graph::Value>,
    reference: impl Fn(&mut graph::Graph, graph::Value, graph::Value) -> graph::Result<graph::Value>,
) {
    use graph::{DType, Graph, TensorType};
    let mut g = Graph::new("forms");
    let x = g.parameter(TensorType::new(DType::F32, x_dims));
    let w = g.parameter(TensorType::new(DType::F32, w_dims));
    let a = form(&mut g, x, w).unwrap();
    let r = reference(&mut g, x, w).unwrap();
    assert_eq!(g.dims(a), g.dims(r), "{label}: output dims");
    let ct = g.parameter(g.ty(a).clone());
    let ga = graph::vjp(&mut g, &[a], &[ct], &[x, w]).unwrap();
    let gr = graph::vjp(&mut g, &[r], &[ct], &[x, w]).unwrap();
    g.set_outputs(&[a, r, ga[0], gr[0], ga[1], gr[1]]).unwrap();
    let exe = common::client()
        .compile(&graph::print_module(&g).unwrap())
        .unwrap();
    let cl = common::client();
    let buffer = |dims: &[usize], seed| {
        let d: Vec<i64> = dims.iter().map(|&v| v as i64).collect();
        cl.buffer(&noise(dims.iter().product(), seed), &d).unwrap()
    };
    let (bx, bw, bc) = (buffer(x_dims, 1), buffer(w_dims, 2), buffer(g.dims(a), 3));
    let out = exe.run(&[&bx, &bw, &bc]).unwrap();
    let names = ["forward", "input cotangent", "kernel cotangent"];
    if normwise {
        close_pairs_normwise(label, &out, &names, 1e-5);
    } else {
        close_pairs(label, &out, &names, 1e-5);
    }
}

/// As [`close_pairs`], but each error is measured against the largest magnitude of the wanted output
/// (long sums of mixed-sign terms, summed in another order, differ by rounding of the terms' scale).
fn close_pairs_normwise(label: &str, out: &[pjrt::Buffer], names: &[&str], tol: f64) {
    for (i, what) in names.iter().enumerate() {
        let got = out[2 * i].to_vec::<f32>().unwrap();
        let want = out[2 * i + 1].to_vec::<f32>().unwrap();
        let scale = want
            .iter()
            .fold(0f64, |m, &v| m.max((v as f64).abs()))
            .max(1e-30);
        for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let err = (g as f64 - w as f64).abs();
            assert!(
                err <= tol * scale,
                "{label}: {what}[{j}]: got {g}, want {w} (err {err:e}, {:.2e} of the output's scale {scale:e})",
                err / scale
            );
        }
    }
}

/// Outputs come in pairs (got, want): output `2i` against `2i + 1`, named `names[i]`.
fn close_pairs(label: &str, out: &[pjrt::Buffer], names: &[&str], tol: f64) {
    for (i, what) in names.iter().enumerate() {
        let got = out[2 * i].to_vec::<f32>().unwrap();
        let want: Vec<f64> = out[2 * i + 1]
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        close(&format!("{label}: {what}"), &got, &want, tol);
    }
}

#[test]
fn depthwise_taps_equal_grouped_convolution() {
    // The lowering's depthwise form against XLA's feature-grouped convolution, values and both
    // cotangents, for several kernels, strides and paddings.
    for (k, s, p, h) in [(3, 1, 1, 6), (3, 2, 1, 7), (5, 2, 2, 9), (5, 1, 2, 5)] {
        let c = 3;
        same_conv_and_cotangents(
            &format!("depthwise k{k} s{s} p{p}"),
            false,
            &[2, h, h, c],
            &[c, 1, k, k],
            |g, x, w| nn::ops::depthwise_taps(g, x, w, s, p),
            |g, x, w| nn::ops::conv2d(g, x, w, s, p, c),
        );
    }
}

#[test]
fn conv_patches_equal_convolution() {
    // The patches form (used when the output map is smaller than the kernel) against XLA's
    // convolution, values and both cotangents: tiny maps where only some taps see the input, strides,
    // a map larger than the kernel, and a non-square kernel. With 3 input channels and kernels up to
    // 3×3 the reference `conv2d` takes its zero-padded 4-channel path, so that path is checked too.
    for (kh, kw, s, p, h, w) in [
        (3, 3, 1, 1, 1, 1),
        (3, 3, 1, 1, 2, 2),
        (3, 3, 2, 1, 2, 2),
        (3, 3, 2, 1, 4, 4),
        (5, 5, 1, 2, 3, 3),
        (3, 3, 1, 1, 5, 4),
        (3, 1, 2, 1, 3, 2),
        (7, 7, 2, 3, 5, 5),
    ] {
        same_conv_and_cotangents(
            &format!("patches k{kh}x{kw} s{s} p{p} {h}x{w}"),
            false,
            &[2, h, w, 3],
            &[4, 3, kh, kw],
            |g, x, k| nn::ops::conv_patches(g, x, k, s, p),
            |g, x, k| nn::ops::conv2d(g, x, k, s, p, 1),
        );
    }
}

#[test]
fn batch_norm_custom_vjp_equals_autodiff_of_the_composite() {
    // The closed-form BN rule against differentiating the same formula primitive by primitive.
    use graph::{DType, Graph, TensorType};
    for dims in [vec![3usize, 8, 8, 2], vec![4, 5]] {
        let c = dims[dims.len() - 1];
        let mut g = Graph::new("bn");
        let x = g.parameter(TensorType::new(DType::F32, &dims));
        let gamma = g.parameter(TensorType::new(DType::F32, &[c]));
        let beta = g.parameter(TensorType::new(DType::F32, &[c]));
        let ct = g.parameter(TensorType::new(DType::F32, &dims));
        let (y1, m1, v1) = nn::ops::batch_norm_train(&mut g, x, gamma, beta, 1e-5).unwrap();
        let red = nn::ops::bn_dims(dims.len());
        let (m2, v2, xc) = nn::ops::moments(&mut g, x, &red).unwrap();
        let y2 =
            nn::ops::normalize(&mut g, xc, v2, &red, 1e-5, gamma, beta, dims.len() - 1).unwrap();
        let a = graph::vjp(&mut g, &[y1], &[ct], &[x, gamma, beta]).unwrap();
        let b = graph::vjp(&mut g, &[y2], &[ct], &[x, gamma, beta]).unwrap();
        g.set_outputs(&[y1, y2, m1, m2, v1, v2, a[0], b[0], a[1], b[1], a[2], b[2]])
            .unwrap();
        let exe = common::client()
            .compile(&graph::print_module(&g).unwrap())
            .unwrap();
        let cl = common::client();
        let d64: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        let n: usize = dims.iter().product();
        let bx = cl
            .buffer(
                &noise(n, 1)
                    .iter()
                    .map(|v| 3.0 * v + 1.0)
                    .collect::<Vec<f32>>(),
                &d64,
            )
            .unwrap();
        let bg = cl.buffer(&noise(c, 2), &[c as i64]).unwrap();
        let bb = cl.buffer(&noise(c, 3), &[c as i64]).unwrap();
        let bc = cl.buffer(&noise(n, 4), &d64).unwrap();
        let out = exe.run(&[&bx, &bg, &bb, &bc]).unwrap();
        close_pairs(
            &format!("{dims:?}"),
            &out,
            &["y", "mean", "var", "dx", "dgamma", "dbeta"],
            1e-4,
        );
    }
}

#[test]
fn drop_path_drops_whole_examples_in_training_only() {
    // [B, 1, 1, 4] → flatten → dropPath 0.5: the logits are the input, each example kept (×2) or
    // zeroed as a whole in training, untouched in eval.
    let spec = net("tiny-drop-path", "1 1 4", 4, "flatten\ndropPath 0.5\n");
    let b = 256;
    let x = vec![1.0f32; b * 4];
    let prog = nn::forward(&spec, b).unwrap();
    let got = run(&prog, &compile(&prog), &[Host::F32(x.clone())]);
    let rows: Vec<&[f32]> = got[0].f32().chunks(4).collect();
    let kept = rows.iter().filter(|r| r.iter().all(|&v| v == 2.0)).count();
    let dropped = rows.iter().filter(|r| r.iter().all(|&v| v == 0.0)).count();
    assert_eq!(
        kept + dropped,
        b,
        "every example is kept or dropped whole: {rows:?}"
    );
    assert!((96..=160).contains(&kept), "{kept} of {b} kept at rate 0.5");
    let prog = nn::predict(&spec, b).unwrap();
    let got = run(&prog, &compile(&prog), &[Host::F32(x.clone())]);
    assert_eq!(got[0].f32(), &x[..]);
}

/// The client's oneDNN convolution handlers, or a failure saying how to get them (never a skip).
fn conv_call_client() -> &'static pjrt::Client {
    let cl = common::client();
    if let Err(e) = cl.conv_calls_status() {
        panic!("the oneDNN convolution custom calls are unavailable ({e}): run scripts/setup.sh onednn and rebuild");
    }
    cl
}

#[test]
fn conv_calls_equal_convolution() {
    // The oneDNN custom calls (forward, and through their VJP rule the backward-data and
    // backward-weights calls) against XLA's convolution: values and both cotangents, over strides,
    // paddings, non-square kernels and maps, one and three input channels, a map the stride does not
    // divide.
    conv_call_client();
    for (c, o, kh, kw, s, p, h, w) in [
        (3, 4, 3, 3, 1, 1, 6, 6),
        (1, 8, 3, 3, 1, 1, 5, 7),
        (5, 6, 3, 3, 2, 1, 9, 9),
        (4, 4, 3, 3, 2, 1, 8, 8),
        (2, 3, 5, 5, 1, 2, 6, 5),
        (3, 2, 3, 1, 2, 1, 7, 4),
        (8, 16, 7, 7, 2, 3, 16, 16),
        (6, 5, 3, 3, 1, 0, 5, 5),
        (64, 64, 3, 3, 1, 1, 4, 4),
        (512, 512, 3, 3, 1, 1, 4, 4),
        (128, 128, 3, 3, 2, 1, 8, 8),
        (128, 128, 3, 3, 2, 1, 16, 16),
        (256, 256, 3, 3, 1, 1, 4, 4),
        (64, 64, 3, 3, 1, 1, 16, 16),
        (3, 64, 7, 7, 2, 3, 32, 32),
    ] {
        let label = format!("conv call {c}->{o} k{kh}x{kw} s{s} p{p} {h}x{w}");
        let mut printed = String::new();
        same_conv_and_cotangents(
            &label,
            true,
            &[2, h, w, c],
            &[o, c, kh, kw],
            |g, x, k| nn::with_conv_calls(true, || nn::ops::conv(g, x, k, s, p, 1)),
            |g, x, k| nn::ops::conv2d(g, x, k, s, p, 1),
        );
        // The form under test really is the custom call (else this compared XLA with itself).
        let mut g = graph::Graph::new("probe");
        let x = g.parameter(graph::TensorType::new(graph::DType::F32, &[2, h, w, c]));
        let k = g.parameter(graph::TensorType::new(graph::DType::F32, &[o, c, kh, kw]));
        let y = nn::with_conv_calls(true, || nn::ops::conv(&mut g, x, k, s, p, 1)).unwrap();
        g.set_outputs(&[y]).unwrap();
        printed.push_str(&graph::print_module(&g).unwrap());
        assert!(
            printed.contains("@netspec_conv2d_forward"),
            "{label}: no custom call emitted"
        );
    }
}

#[test]
fn conv_call_vjp_rules_are_closed_and_exact() {
    // Second order: the VJPs of the backward-data and backward-weights calls (each the other two
    // products of the trilinear form) against differentiating XLA's convolution twice.
    use graph::{DType, Graph, TensorType};
    let cl = conv_call_client();
    let (xd, wd, s, p) = ([2usize, 7, 7, 3], [4usize, 3, 3, 3], 2, 1);
    let mut g = Graph::new("second_order");
    let x = g.parameter(TensorType::new(DType::F32, &xd));
    let w = g.parameter(TensorType::new(DType::F32, &wd));
    let a = nn::with_conv_calls(true, || nn::ops::conv(&mut g, x, w, s, p, 1)).unwrap();
    let r = nn::ops::conv2d(&mut g, x, w, s, p, 1).unwrap();
    let ct = g.parameter(g.ty(a).clone());
    let ga = graph::vjp(&mut g, &[a], &[ct], &[x, w]).unwrap();
    let gr = graph::vjp(&mut g, &[r], &[ct], &[x, w]).unwrap();
    let cx = g.parameter(g.ty(ga[0]).clone());
    let cw = g.parameter(g.ty(ga[1]).clone());
    // d(dx)/d(ct, w) and d(dw)/d(x, ct).
    let ha = graph::vjp(&mut g, &[ga[0], ga[1]], &[cx, cw], &[x, w, ct]).unwrap();
    let hr = graph::vjp(&mut g, &[gr[0], gr[1]], &[cx, cw], &[x, w, ct]).unwrap();
    g.set_outputs(&[ha[0], hr[0], ha[1], hr[1], ha[2], hr[2]])
        .unwrap();
    let text = graph::print_module(&g).unwrap();
    for t in ["forward", "backward_data", "backward_weights"] {
        assert!(
            text.contains(&format!("@netspec_conv2d_{t}")),
            "no {t} call in the second-order graph"
        );
    }
    let exe = cl.compile(&text).unwrap();
    let buffer = |dims: &[usize], seed| {
        let d: Vec<i64> = dims.iter().map(|&v| v as i64).collect();
        cl.buffer(&noise(dims.iter().product(), seed), &d).unwrap()
    };
    let cdims = g.dims(ct).to_vec();
    let (bx, bw, bc) = (buffer(&xd, 1), buffer(&wd, 2), buffer(&cdims, 3));
    let (bcx, bcw) = (buffer(&xd, 4), buffer(&wd, 5));
    let out = exe.run(&[&bx, &bw, &bc, &bcx, &bcw]).unwrap();
    close_pairs_normwise(
        "second order",
        &out,
        &[
            "x cotangent",
            "kernel cotangent",
            "output-cotangent cotangent",
        ],
        1e-5,
    );
}

#[test]
#[ignore]
fn conv_call_precision_probe() {
    use graph::{DType, Graph, TensorType};
    let cl = conv_call_client();
    for (c, o, h, s) in [
        (128usize, 128usize, 16usize, 2usize),
        (256, 256, 4, 1),
        (64, 64, 16, 1),
    ] {
        let (xd, wd) = ([2usize, h, h, c], [o, c, 3, 3]);
        let mut g = Graph::new("probe");
        let x = g.parameter(TensorType::new(DType::F32, &xd));
        let w = g.parameter(TensorType::new(DType::F32, &wd));
        let a = nn::with_conv_calls(true, || nn::ops::conv(&mut g, x, w, s, 1, 1)).unwrap();
        let r = nn::ops::conv2d(&mut g, x, w, s, 1, 1).unwrap();
        let ct = g.parameter(g.ty(a).clone());
        let ga = graph::vjp(&mut g, &[a], &[ct], &[x, w]).unwrap();
        let gr = graph::vjp(&mut g, &[r], &[ct], &[x, w]).unwrap();
        g.set_outputs(&[a, r, ga[0], gr[0], ga[1], gr[1]]).unwrap();
        let exe = cl.compile(&graph::print_module(&g).unwrap()).unwrap();
        let dims = [xd.to_vec(), wd.to_vec(), g.dims(a).to_vec()];
        let hosts: Vec<Vec<f32>> = dims
            .iter()
            .enumerate()
            .map(|(i, d)| noise(d.iter().product(), i as u64 + 1))
            .collect();
        let bufs: Vec<pjrt::Buffer> = hosts
            .iter()
            .zip(&dims)
            .map(|(v, d)| {
                cl.buffer(v, &d.iter().map(|&x| x as i64).collect::<Vec<_>>())
                    .unwrap()
            })
            .collect();
        let out = exe.run(&bufs.iter().collect::<Vec<_>>()).unwrap();
        let ts: Vec<interp::Tensor> = hosts
            .iter()
            .zip(&dims)
            .map(|(v, d)| interp::Tensor::from_f32(d, v).unwrap())
            .collect();
        let exact = interp::run(&g, &ts, &interp::Options::new(interp::Precision::F64)).unwrap();
        for (k, name) in ["fwd", "dx", "dw"].iter().enumerate() {
            let e = exact[2 * k].floats().unwrap();
            let scale = e.iter().fold(0f64, |m, v| m.max(v.abs()));
            let err = |o: &pjrt::Buffer| {
                o.to_vec::<f32>()
                    .unwrap()
                    .iter()
                    .zip(e)
                    .fold(0f64, |m, (&g, &w)| m.max((g as f64 - w).abs()))
                    / scale
            };
            eprintln!(
                "{c}->{o} {h}x{h} s{s} {name}: onednn {:.2e} xla {:.2e}",
                err(&out[2 * k]),
                err(&out[2 * k + 1])
            );
        }
    }
}

/// A weight read by the backward pass after its gradient is known (the input cotangent `δ·Wᵀ`) is
/// ordered before the weight's in-place update by an optimization barrier that carries the gradient
/// with those reads: one per dense layer after the first (the first layer's input has no cotangent).
/// The numbers are untouched: the step tests above run these programs.
#[test]
fn train_step_orders_late_weight_reads_before_updates() {
    let barriers = |src: &str| {
        let spec: NetSpec = spec::parse(src.as_bytes()).unwrap();
        let cfg = RunConfig {
            batch_size: 4,
            ..RunConfig::default()
        };
        let p = nn::train_step(&spec, &cfg).unwrap();
        p.mlir
            .lines()
            .filter(|l| l.contains("stablehlo.optimization_barrier"))
            .map(|l| l.split(" : ").next().unwrap_or("").matches('%').count())
            .collect::<Vec<_>>()
    };
    let mlp =
        "name m\ninput 1 4 4\nclasses 3\nflatten\ndense 8 act=relu\ndense 6 act=relu\ndense 3\n";
    // Each barrier: its result name, then the gradient and one late read.
    assert_eq!(barriers(mlp), vec![3, 3]);
    let one = "name m\ninput 1 4 4\nclasses 3\nflatten\ndense 3\n";
    assert_eq!(barriers(one), Vec::<usize>::new());
}

#[test]
fn matmul_calls_equal_dot_general() {
    // The oneDNN matrix-product calls (row tiles on XLA's threads) against XLA's dot_general: the
    // value, both cotangents (themselves calls, through the VJP rule) and, second order, the
    // cotangents of those, for each transposition and shapes no tile count divides.
    use graph::{DType, Graph, MatMulCall, TensorType};
    let cl = conv_call_client();
    for (m, k, n) in [(128, 784, 512), (37, 9, 10), (5, 3, 70)] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let call = MatMulCall {
                trans_a: ta,
                trans_b: tb,
            };
            let ad = if ta { [k, m] } else { [m, k] };
            let bd = if tb { [n, k] } else { [k, n] };
            let mut g = Graph::new("matmul_call");
            let a = g.parameter(TensorType::new(DType::F32, &ad));
            let b = g.parameter(TensorType::new(DType::F32, &bd));
            let ct = g.parameter(TensorType::new(DType::F32, &[m, n]));
            let got = g.matmul_call(call, a, b).unwrap();
            let want = g.dot_general(a, b, &call.dot_dims()).unwrap();
            let gg = graph::vjp(&mut g, &[got], &[ct], &[a, b]).unwrap();
            let gw = graph::vjp(&mut g, &[want], &[ct], &[a, b]).unwrap();
            let ca = g.parameter(TensorType::new(DType::F32, &ad));
            let cb = g.parameter(TensorType::new(DType::F32, &bd));
            let hg = graph::vjp(&mut g, &[gg[0], gg[1]], &[ca, cb], &[a, b, ct]).unwrap();
            let hw = graph::vjp(&mut g, &[gw[0], gw[1]], &[ca, cb], &[a, b, ct]).unwrap();
            g.set_outputs(&[
                got, want, gg[0], gw[0], gg[1], gw[1], hg[0], hw[0], hg[1], hw[1], hg[2], hw[2],
            ])
            .unwrap();
            let text = graph::print_module(&g).unwrap();
            let label = format!("{m}x{k}x{n} trans ({ta}, {tb})");
            // Every product of the first graph is a call (else this compared XLA with itself).
            assert!(
                text.matches("@netspec_matmul").count() >= 7,
                "{label}: calls missing"
            );
            let exe = cl.compile(&text).unwrap();
            let buffer = |dims: &[usize], seed| {
                let d: Vec<i64> = dims.iter().map(|&v| v as i64).collect();
                cl.buffer(&noise(dims.iter().product(), seed), &d).unwrap()
            };
            let args = [
                buffer(&ad, 1),
                buffer(&bd, 2),
                buffer(&[m, n], 3),
                buffer(&ad, 4),
                buffer(&bd, 5),
            ];
            let out = exe.run(&args.iter().collect::<Vec<_>>()).unwrap();
            close_pairs_normwise(
                &label,
                &out,
                &[
                    "product",
                    "lhs cotangent",
                    "rhs cotangent",
                    "second order: lhs",
                    "second order: rhs",
                    "second order: output cotangent",
                ],
                1e-5,
            );
        }
    }
}

#[test]
fn adam_calls_equal_their_expansion() {
    // The in-place Adam kernel (`@netspec_adam`, element ranges on XLA's threads) against XLA's
    // fusions of `AdamCall::expand`, the update's definition: new parameter and both moments, with and
    // without decoupled decay, for sizes below, at and across the kernel's tiles, with moments in
    // the range where they decay into denormals.
    use graph::{AdamCall, DType, Graph, TensorType};
    let cl = conv_call_client();
    for n in [1usize, 10, 16384, 40_000] {
        for decay in [0.0, 0.5] {
            let call = AdamCall {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                decay,
                product: None,
            };
            let t = TensorType::new(DType::F32, &[n]);
            let s = TensorType::new(DType::F32, &[]);
            let mut g = Graph::new("adam_call");
            let ins: Vec<_> = (0..7)
                .map(|i| g.parameter(if i < 4 { t.clone() } else { s.clone() }))
                .collect();
            let d = [n as i64];
            let (w, m, v) = adam_state(n);
            let gr: Vec<f32> = noise(n, 3)
                .iter()
                .enumerate()
                .map(|(i, x)| x * 10f32.powi(-((i % 23) as i32)))
                .collect();
            let args = [cl.buffer(&gr, &d).unwrap()];
            let o = run_adam_call(cl, call, g, ins, (&w, &m, &v), &d, &args);
            check_adam(
                &format!("n {n}, decay {decay}"),
                &o,
                (&w, &m, &v, &gr),
                decay,
            );
        }
    }
}

#[test]
fn adam_product_calls_equal_their_expansion() {
    // An Adam call whose gradient is a dense layer's weight-gradient product `xᵀ·δ`, computed by the
    // kernel a tile of rows at a time and never stored (`AdamCall::product`), against XLA's dot and
    // fusions of the expansion: a parameter of 200 × 300 (tiles of 64 rows, the last partial), with
    // and without decay. The factors are multiples of 1/16 with small numerators, so the gradient is
    // exact in f32 whatever the summation order and the bounds are the plain update's.
    use graph::{AdamCall, DType, Graph, MatMulCall, TensorType};
    let cl = conv_call_client();
    let (b, rows, cols) = (64usize, 200usize, 300usize);
    let steps = |n: usize, seed: u64| -> Vec<f32> {
        noise(n, seed)
            .iter()
            .map(|x| (x * 40.0).round() / 16.0)
            .collect()
    };
    let (x, dy) = (steps(b * rows, 4), steps(b * cols, 5));
    let mut gr = vec![0f32; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            gr[i * cols + j] = (0..b).map(|l| x[l * rows + i] * dy[l * cols + j]).sum();
        }
    }
    for decay in [0.0, 0.5] {
        let call = AdamCall {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decay,
            product: Some(MatMulCall {
                trans_a: true,
                trans_b: false,
            }),
        };
        let mut g = Graph::new("adam_product_call");
        let t = TensorType::new(DType::F32, &[rows, cols]);
        let mut ins: Vec<_> = (0..3).map(|_| g.parameter(t.clone())).collect();
        ins.push(g.parameter(TensorType::new(DType::F32, &[b, rows])));
        ins.push(g.parameter(TensorType::new(DType::F32, &[b, cols])));
        for _ in 0..3 {
            ins.push(g.parameter(TensorType::new(DType::F32, &[])));
        }
        let (w, m, v) = adam_state(rows * cols);
        let args = [
            cl.buffer(&x, &[b as i64, rows as i64]).unwrap(),
            cl.buffer(&dy, &[b as i64, cols as i64]).unwrap(),
        ];
        let d = [rows as i64, cols as i64];
        let o = run_adam_call(cl, call, g, ins, (&w, &m, &v), &d, &args);
        check_adam(
            &format!("product, decay {decay}"),
            &o,
            (&w, &m, &v, &gr),
            decay,
        );
    }
}

/// A parameter and moments of `n` elements, the moments spanning normal values down to the denormal
/// range (1e-39 < 2^-126).
fn adam_state(n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let w = noise(n, 1);
    let m: Vec<f32> = noise(n, 2)
        .iter()
        .enumerate()
        .map(|(i, x)| x * 10f32.powi(-((i % 40) as i32)))
        .collect();
    let v: Vec<f32> = m.iter().map(|x| x * x + 1e-39).collect();
    (w, m, v)
}

/// Runs `call` on the parameters `ins` of `g` (w, m, v, the gradient's operands, lr, r1, r2) next to
/// its expansion, with `w, m, v` of dims `d`, the gradient's operands `grad` and lr = 1e-3, r1 =
/// 1/0.19, r2 = 1/0.002: the outputs `[w' call, w' expansion, m' …, m' …, v' …, v' …]`.
fn run_adam_call(
    cl: &pjrt::Client,
    call: graph::AdamCall,
    mut g: graph::Graph,
    ins: Vec<graph::Value>,
    (w, m, v): (&[f32], &[f32], &[f32]),
    d: &[i64],
    grad: &[pjrt::Buffer],
) -> Vec<Vec<f32>> {
    let got = g.adam_call(call, &ins).unwrap();
    let want = call.expand(&mut g, &ins).unwrap();
    g.set_outputs(&[got[0], want[0], got[1], want[1], got[2], want[2]])
        .unwrap();
    let text = graph::print_module(&g).unwrap();
    assert_eq!(
        text.matches("@netspec_adam").count(),
        1,
        "the call is missing"
    );
    let exe = cl.compile(&text).unwrap();
    let args = [
        cl.buffer(w, d).unwrap(),
        cl.buffer(m, d).unwrap(),
        cl.buffer(v, d).unwrap(),
    ];
    let scalars = [
        cl.buffer(&[1e-3f32], &[]).unwrap(),
        cl.buffer(&[1.0 / 0.19f32], &[]).unwrap(),
        cl.buffer(&[1.0 / 0.002f32], &[]).unwrap(),
    ];
    let mut refs: Vec<&pjrt::Buffer> = args.iter().collect();
    refs.extend(grad.iter());
    refs.extend(scalars.iter());
    let out = exe.run(&refs).unwrap();
    out.iter().map(|b| b.to_vec::<f32>().unwrap()).collect()
}

/// Checks [`run_adam_call`]'s outputs `o` elementwise, for the update of `w, m, v` by the gradient
/// `gr` (exact) with decoupled decay `decay`.
fn check_adam(
    label: &str,
    o: &[Vec<f32>],
    (w, m, v, gr): (&[f32], &[f32], &[f32], &[f32]),
    decay: f64,
) {
    // Elementwise bounds: XLA may contract a product and a sum into one rounding (FMA) where
    // the kernel rounds twice, so each result may differ by a few roundings of its terms'
    // magnitudes (not of the result's, which cancellation can make much smaller).
    let e = 4.0 * f32::EPSILON as f64;
    let (b1, b2) = (0.9f64, 0.999f64);
    for j in 0..w.len() {
        let (wj, mj, vj, gj) = (w[j] as f64, m[j] as f64, v[j] as f64, gr[j] as f64);
        let tm = b1 * mj.abs() + (1.0 - b1) * gj.abs();
        let tv = b2 * vj + (1.0 - b2) * gj * gj;
        let mn = b1 * mj + (1.0 - b1) * gj;
        let vn = b2 * vj + (1.0 - b2) * gj * gj;
        let u = (mn / 0.19) / ((vn / 0.002).sqrt() + 1e-8);
        let rel_u = e * tm / mn.abs().max(1e-300) + 2.0 * e;
        let tw = e * (wj.abs() + 1e-3 * decay * wj.abs()) + 1e-3 * u.abs() * rel_u;
        for (i, what, bound) in [
            (0, "parameter", tw),
            (1, "first moment", e * tm),
            (2, "second moment", e * tv),
        ] {
            let (x, y) = (o[2 * i][j] as f64, o[2 * i + 1][j] as f64);
            // Flushed denormals: either side may read a denormal as zero.
            let floor = f32::MIN_POSITIVE as f64;
            assert!(
                (x - y).abs() <= bound.max(floor),
                "{label}: {what}[{j}]: call {x:e}, expansion {y:e} (bound {bound:e})"
            );
        }
    }
}

#[test]
fn weight_gradients_fuse_into_adam_calls() {
    // With every call on, each dense layer's weight-gradient product goes into its Adam call
    // (`AdamCall::product`) and is no longer a product of its own; where the gradient is not the bare
    // product (coupled weight decay adds `λw`) or the update is not Adam, the product stays.
    let spec = spec::zoo::get("mnist-mlp").unwrap();
    let count = |optimizer: Optimizer, weight_decay: f32| {
        let cfg = RunConfig {
            optimizer,
            weight_decay,
            ..RunConfig::default()
        };
        let p = nn::with_calls(nn::Calls::ALL, || nn::train_step(&spec, &cfg)).unwrap();
        let calls: Vec<&str> = p
            .mlir
            .lines()
            .filter(|l| l.contains("@netspec_adam("))
            .collect();
        let fused = calls.iter().filter(|l| l.contains("trans_a = 1")).count();
        let barriers = p.mlir.matches("stablehlo.optimization_barrier").count();
        let products = p.mlir.matches("@netspec_matmul(").count();
        (calls.len(), fused, products, barriers)
    };
    // Three layers: 3 forward products, 2 input cotangents (none for the images), 3 weight gradients;
    // the second and third layers' updates still wait behind a barrier for their weight's late read.
    assert_eq!(count(Optimizer::ADAMW, 1e-4), (6, 3, 5, 2), "AdamW");
    assert_eq!(count(Optimizer::ADAM, 0.0), (6, 3, 5, 2), "Adam, no decay");
    assert_eq!(count(Optimizer::ADAM, 1e-4), (6, 0, 8, 2), "Adam, decay");
    assert_eq!(count(Optimizer::Sgd, 0.0), (0, 0, 8, 2), "SGD");
}
