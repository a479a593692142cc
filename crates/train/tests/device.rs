//! Data parallelism on several CPU devices (`cpu_device_count`).
//!
//! - `train::device::Executor`: values placed per device (replicated or split along the batch), one
//!   partitioned execution with per-device donation, results read per device (a hand-written
//!   data-parallel step);
//! - the step programs `nn` emits for N devices, run by the one `Runner`: one SGD step on 2 and 4
//!   devices equals the step on 1 within 1e-6 (norm-wise relative) on the loss and every state
//!   tensor for an MLP, a BN CNN (synchronized BN: the global batch's statistics) and a transformer
//!   block; Adam's losses agree to 1e-6 over 20 steps, and the devices' states stay bit-identical;
//!   eval on N devices gives the same correct count;
//! - wrong calls (a batch on other devices or of another executor, a wrong tile shape, a batch the
//!   devices do not divide, a program emitted for another device count) are errors within a
//!   second, before any state is donated: the runner steps on afterwards.

use std::time::{Duration, Instant};

use spec::{NetSpec, Optimizer, RunConfig};
use train::checkpoint::TensorData;
use train::device::{Arg, Executor, HostSlice, Placement};
use train::run::checkpoints::initial_state;
use train::runner::{HostTensor, Runner};

/// `w' = w − ½·Σ_rows x` (w replicated and donated), `loss = Σ x·w`, x's 8 rows cut over `n`.
fn program(n: usize) -> nn::Program {
    let mlir = format!(
        r#"module @dp attributes {{mhlo.num_partitions = {n} : i32, mhlo.num_replicas = 1 : i32}} {{
  func.func public @main(%w: tensor<3xf32> {{mhlo.sharding = "{{replicated}}", tf.aliasing_output = 0 : i32}}, %x: tensor<8x3xf32> {{mhlo.sharding = "{{devices=[{n},1]<=[{n}]}}"}}) -> (tensor<3xf32>, tensor<f32>) {{
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %g = stablehlo.reduce(%x init: %zero) applies stablehlo.add across dimensions = [0] : (tensor<8x3xf32>, tensor<f32>) -> tensor<3xf32>
    %h = stablehlo.constant dense<0.5> : tensor<3xf32>
    %s = stablehlo.multiply %g, %h : tensor<3xf32>
    %w2 = stablehlo.subtract %w, %s : tensor<3xf32>
    %wb = stablehlo.broadcast_in_dim %w, dims = [1] : (tensor<3xf32>) -> tensor<8x3xf32>
    %p = stablehlo.multiply %x, %wb : tensor<8x3xf32>
    %l = stablehlo.reduce(%p init: %zero) applies stablehlo.add across dimensions = [0, 1] : (tensor<8x3xf32>, tensor<f32>) -> tensor<f32>
    return %w2, %l : tensor<3xf32>, tensor<f32>
  }}
}}"#
    );
    // The executor compiles `mlir` only; the rest of a generated program rides along.
    let any = nn::eval_step(&spec::zoo::get("mnist-mlp").unwrap(), 8).unwrap();
    nn::Program {
        mlir,
        partitions: n,
        ..any
    }
}

fn on_devices(n: usize) {
    let exec = Executor::open_devices(pjrt::Device::Cpu, None, n).unwrap_or_else(|e| {
        panic!("these tests need the PJRT CPU plugin (./scripts/setup.sh plugin): {e}")
    });
    assert_eq!(exec.devices(), n);
    let exe = exec.compile(&program(n), "test").unwrap();
    let x: Vec<f32> = (0..24).map(|i| (i % 5) as f32 - 2.0).collect();
    let mut w_host = vec![1.0f32, -0.5, 0.25];
    let mut w = exec
        .upload(HostSlice::F32(&w_host), &[3], Placement::Replicated, "w")
        .unwrap();
    let xs = exec
        .upload(HostSlice::F32(&x), &[8, 3], Placement::Batch, "x")
        .unwrap();
    // Each device holds its own tile of the batch.
    let tiles = xs.to_host_per_device().unwrap();
    assert_eq!(tiles.len(), n);
    for (d, t) in tiles.iter().enumerate() {
        let rows = 8 / n;
        assert_eq!(
            t,
            &TensorData::F32(x[d * rows * 3..(d + 1) * rows * 3].to_vec())
        );
    }
    for _ in 0..3 {
        let mut g = [0f32; 3];
        let mut loss = 0f32;
        for row in x.chunks(3) {
            for j in 0..3 {
                g[j] += row[j];
                loss += row[j] * w_host[j];
            }
        }
        let outs = exec
            .execute(&exe, vec![Arg::Donate(w), Arg::Keep(&xs)])
            .unwrap();
        assert_eq!(outs.len(), 2);
        assert_eq!(outs[1].scalar_f32().unwrap(), loss);
        w_host = (0..3).map(|j| w_host[j] - 0.5 * g[j]).collect();
        // Every device computed the same replicated state.
        let per_device = outs[0].to_host_per_device().unwrap();
        assert_eq!(per_device, vec![TensorData::F32(w_host.clone()); n]);
        w = outs.into_iter().next().unwrap();
    }
    // A batch the devices do not divide.
    let e = exec
        .upload(HostSlice::F32(&[0.0; 15]), &[5, 3], Placement::Batch, "x")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("[5, 3]") && e.contains(&format!("{n} devices")),
        "{e}"
    );
}

#[test]
fn two_devices() {
    on_devices(2);
}

#[test]
fn four_devices() {
    on_devices(4);
}

fn executor(n: usize) -> Executor {
    let e = if n == 1 {
        Executor::open(pjrt::Device::Cpu, None)
    } else {
        Executor::open_devices(pjrt::Device::Cpu, None, n)
    };
    e.unwrap_or_else(|e| {
        panic!("these tests need the PJRT CPU plugin (./scripts/setup.sh plugin): {e}")
    })
}

const MLP: &str = "name t-mlp\ninput 1 8 8\nclasses 3\nflatten\ndense 16 act=relu\ndense 3\n";
const BN_CNN: &str =
    "name t-bn\ninput 1 8 8\nclasses 3\nconvBn 4 kernel=3\nmaxPool 2\nconvBn 6 kernel=3\nflatten\ndense 3\n";
const TRANSFORMER: &str = "name t-vit\ninput 1 8 8\nclasses 3\npatchEmbed 16 patch=4\ntransformer heads=2 mlp=32 blocks=1\ndense 3\n";

fn net(text: &str) -> NetSpec {
    spec::parse_checked(text.as_bytes()).unwrap()
}

/// Batch `k` of `b` images of `net`'s input: deterministic values in [-1, 1), labels cycling
/// through the classes.
fn batch(net: &NetSpec, b: usize, k: u64) -> (Vec<usize>, Vec<f32>, Vec<i32>) {
    let [c, h, w] = net.input;
    let mut s = 0x2545_f491_4f6c_dd1d ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let x = (0..b * c * h * w)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let y = (0..b)
        .map(|i| ((i as u64 + k) % net.num_classes as u64) as i32)
        .collect();
    (vec![b, c, h, w], x, y)
}

/// A train runner (and eval program) for `net` on `n` devices, seeded state.
fn runner(net: &NetSpec, cfg: &RunConfig, n: usize, eval_batch: Option<usize>) -> Runner {
    let t = Instant::now();
    let train = nn::train_step_on(net, cfg, n).unwrap();
    assert_eq!(train.partitions, n);
    let eval = eval_batch.map(|b| nn::eval_step_on(net, b, n).unwrap());
    let mut r = Runner::new(executor(n), Some(train), eval).unwrap();
    initial_state(net, 7, None, &mut r).unwrap();
    eprintln!(
        "{} on {n} device(s): compiled in {:.2} s",
        net.name,
        t.elapsed().as_secs_f64()
    );
    r
}

/// Rows `perm` of a batch.
fn rows(x: &[f32], y: &[i32], perm: &[usize]) -> (Vec<f32>, Vec<i32>) {
    let per = x.len() / y.len();
    let xs = perm
        .iter()
        .flat_map(|&r| x[r * per..(r + 1) * per].to_vec())
        .collect();
    (xs, perm.iter().map(|&r| y[r]).collect())
}

/// `steps` train steps on batches 0.. at rate `lr`: the losses, and the final state.
fn train(
    r: &mut Runner,
    net: &NetSpec,
    b: usize,
    steps: u64,
    lr: f32,
) -> (Vec<f32>, Vec<HostTensor>) {
    let up = r.uploader();
    let rate = up.rate(lr).unwrap();
    let mut losses = Vec::new();
    for k in 0..steps {
        let (dims, x, y) = batch(net, b, k);
        let db = up.upload(&x, &y, &dims).unwrap();
        losses.push(r.step(&db, &rate).unwrap().loss().unwrap());
    }
    (losses, r.state().unwrap())
}

/// `max|a − b| / max|b|` (norm-wise relative difference, as the oracle compares tensors).
fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max);
    let den = b.iter().map(|y| (*y as f64).abs()).fold(0.0, f64::max);
    if num == 0.0 {
        0.0
    } else {
        num / den.max(f64::MIN_POSITIVE)
    }
}

fn f32s(t: &TensorData) -> Vec<f32> {
    match t {
        TensorData::F32(v) => v.clone(),
        TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
    }
}

/// One SGD step on 2 and 4 devices against 1: the loss within 1e-6 and every state tensor within
/// 1e-6 (norm-wise relative) — or, for a tensor whose value is a sum with cancellation (a bias or
/// BN β after one step from 0 is `−lr·Σ`), within twice the f32 floor of that sum: the difference
/// between two 1-device steps on the same batch with its rows in another order, the same
/// mathematics summed in another order. The devices' copies are bit-identical; eval's correct count
/// is the same.
fn one_sgd_step_matches(text: &str) {
    let net = net(text);
    let b = 8;
    let cfg = RunConfig {
        batch_size: b,
        optimizer: Optimizer::Sgd,
        weight_decay: 0.0,
        ..RunConfig::default()
    };
    let eval_batch = 12;
    let mut one = runner(&net, &cfg, 1, Some(eval_batch));
    let (loss1, state1) = train(&mut one, &net, b, 1, 0.1);
    let (edims, ex, ey) = batch(&net, eval_batch, 99);
    let eval1 = one
        .eval_step(&one.uploader().upload(&ex, &ey, &edims).unwrap())
        .unwrap();
    // The floor: the same step on 1 device with the batch's halves swapped.
    initial_state(&net, 7, None, &mut one).unwrap();
    let (dims, x, y) = batch(&net, b, 0);
    let (xp, yp) = rows(&x, &y, &[4, 5, 6, 7, 0, 1, 2, 3]);
    let up = one.uploader();
    one.step(&up.upload(&xp, &yp, &dims).unwrap(), &up.rate(0.1).unwrap())
        .unwrap();
    let floor: Vec<f64> = one
        .state()
        .unwrap()
        .iter()
        .zip(&state1)
        .map(|(t, t1)| rel(&f32s(&t.data), &f32s(&t1.data)))
        .collect();
    for n in [2, 4] {
        let mut r = runner(&net, &cfg, n, Some(eval_batch));
        let (loss, state) = train(&mut r, &net, b, 1, 0.1);
        let d = rel(&loss, &loss1);
        assert!(
            d <= 1e-6,
            "{} on {n} devices: loss {loss:?} vs {loss1:?} ({d:e})",
            net.name
        );
        let mut worst = (0.0, String::new(), 0.0);
        for ((t, t1), f) in state.iter().zip(&state1).zip(&floor) {
            assert_eq!(t.name, t1.name);
            let e = rel(&f32s(&t.data), &f32s(&t1.data));
            assert!(
                e <= 1e-6f64.max(2.0 * f),
                "{} on {n} devices: {} differs by {e:e} (1 device, rows reordered: {f:e})",
                net.name,
                t.name
            );
            if e > worst.0 {
                worst = (e, t.name.clone(), *f);
            }
        }
        eprintln!(
            "{} on {n} devices: loss rel {d:e}, worst state tensor {} rel {:e} (1 device, rows reordered: {:e})",
            net.name, worst.1, worst.0, worst.2
        );
        r.check_replicas().unwrap();
        // Evaluation: the same correct count (the loss sum to rounding).
        let e = r
            .eval_step(&r.uploader().upload(&ex, &ey, &edims).unwrap())
            .unwrap();
        assert_eq!(e.1, eval1.1, "{} on {n} devices: eval correct", net.name);
        assert!(rel(&[e.0], &[eval1.0]) <= 1e-6, "{e:?} vs {eval1:?}");
    }
}

#[test]
fn one_sgd_step_of_an_mlp_on_2_and_4_devices_equals_1() {
    one_sgd_step_matches(MLP);
}

#[test]
fn one_sgd_step_of_a_bn_cnn_on_2_and_4_devices_equals_1() {
    one_sgd_step_matches(BN_CNN);
}

#[test]
fn one_sgd_step_of_a_transformer_block_on_2_and_4_devices_equals_1() {
    one_sgd_step_matches(TRANSFORMER);
}

#[test]
fn adam_losses_agree_over_20_steps_and_replicas_stay_identical() {
    let net = net(BN_CNN);
    let b = 8;
    let cfg = RunConfig {
        batch_size: b,
        optimizer: Optimizer::ADAM,
        weight_decay: 0.0,
        ..RunConfig::default()
    };
    let mut one = runner(&net, &cfg, 1, None);
    let (l1, _) = train(&mut one, &net, b, 20, 1e-2);
    for n in [2, 4] {
        let mut r = runner(&net, &cfg, n, None);
        let (l, _) = train(&mut r, &net, b, 20, 1e-2);
        let worst = l
            .iter()
            .zip(&l1)
            .map(|(a, b)| rel(&[*a], &[*b]))
            .fold(0.0, f64::max);
        eprintln!(
            "Adam, {n} devices, 20 steps: worst loss rel {worst:e}; last {} vs {}",
            l[19], l1[19]
        );
        assert!(worst <= 1e-6, "{n} devices: {l:?}\nvs 1 device: {l1:?}");
        // The loss moved: the steps really trained.
        assert!(l1[19] < l1[0], "{l1:?}");
        r.check_replicas().unwrap();
    }
}

fn quick<T>(what: &str, f: impl FnOnce() -> train::Result<T>) -> String {
    let t = Instant::now();
    let e = match f() {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "{what}: took {:?}",
        t.elapsed()
    );
    e
}

#[test]
fn wrong_calls_are_errors_within_a_second_and_the_state_survives() {
    let net = net(MLP);
    let b = 8;
    let cfg = RunConfig {
        batch_size: b,
        optimizer: Optimizer::Sgd,
        ..RunConfig::default()
    };
    let mut r = runner(&net, &cfg, 2, Some(b));
    let up = r.uploader();
    let lr = up.rate(0.1).unwrap();
    let (dims, x, y) = batch(&net, b, 0);
    let good = up.upload(&x, &y, &dims).unwrap();

    // A batch of another executor with as many devices (its buffers belong to another client).
    let other = executor(2);
    let foreign = train::runner::DeviceBatch {
        x: other
            .upload(HostSlice::F32(&x), &dims, Placement::Batch, "x")
            .unwrap(),
        y: other
            .upload(HostSlice::I32(&y), &[b], Placement::Batch, "y")
            .unwrap(),
    };
    let e = quick("a foreign batch", || r.step(&foreign, &lr).map(|_| ()));
    assert!(e.contains("another executor"), "{e}");
    // A batch on one device only (misplaced: the second device's tile missing).
    let single = r.executor().first_device();
    let x1 = single
        .upload(HostSlice::F32(&x), &dims, Placement::Batch, "x")
        .unwrap();
    let y1 = single
        .upload(HostSlice::I32(&y), &[b], Placement::Batch, "y")
        .unwrap();
    let misplaced = train::runner::DeviceBatch { x: x1, y: y1 };
    let e = quick("a batch on one device", || {
        r.step(&misplaced, &lr).map(|_| ())
    });
    assert!(e.contains("1 tile(s)") && e.contains("2 tile(s)"), "{e}");
    // A wrong tile shape: a global batch of 4 for a program of 8.
    let (d4, x4, y4) = batch(&net, 4, 0);
    let small = up.upload(&x4, &y4, &d4).unwrap();
    let e = quick("a wrong tile shape", || r.step(&small, &lr).map(|_| ()));
    assert!(
        e.contains("[2, 1, 8, 8]") && e.contains("[4, 1, 8, 8]"),
        "{e}"
    );
    let e = quick("a wrong tile shape in eval", || {
        r.eval_step(&small).map(|_| ())
    });
    assert!(e.contains("eval step"), "{e}");
    // A rate of another executor.
    let foreign_lr = other
        .upload(HostSlice::F32(&[0.1]), &[], Placement::Replicated, "lr")
        .unwrap();
    let e = quick("a foreign rate", || r.step(&good, &foreign_lr).map(|_| ()));
    assert!(e.contains("learning rate"), "{e}");

    // A batch the devices do not divide: refused by the uploader and by code generation.
    let (d6, x6, y6) = batch(&net, 6, 0);
    let four = executor(4);
    let e = quick("a batch of 6 on 4 devices", || {
        four.upload(HostSlice::F32(&x6), &d6, Placement::Batch, "x")
    });
    assert!(e.contains("[6, 1, 8, 8]") && e.contains("4 devices"), "{e}");
    let e = quick("labels of 6 on 4 devices", || {
        four.upload(HostSlice::I32(&y6), &[6], Placement::Batch, "y")
    });
    assert!(e.contains("[6]") && e.contains("4 devices"), "{e}");
    let cfg6 = RunConfig {
        batch_size: 6,
        ..cfg.clone()
    };
    let e = nn::train_step_on(&net, &cfg6, 4).unwrap_err().to_string();
    assert!(e.contains("batch of 6") && e.contains("4 devices"), "{e}");
    // A program emitted for another device count.
    let p1 = nn::train_step(&net, &cfg).unwrap();
    let e = quick("a 1-device program on 2 devices", || {
        Runner::new(executor(2), Some(p1), None).map(|_| ())
    });
    assert!(e.contains("1 device(s)") && e.contains("has 2"), "{e}");

    // The loop refuses a device count the batch does not divide, and several devices on the
    // reference interpreter, before loading anything.
    let opts = train::run::Options {
        data_dir: Some("/nonexistent".into()),
        devices: Some(3),
        ..train::run::Options::default()
    };
    let e = quick("train with a batch of 8 on 3 devices", || {
        train::run::train(&net, &cfg, &opts, &mut train::run::Quiet).map(|_| ())
    });
    assert!(
        e.contains("--batch-size 8") && e.contains("3 devices"),
        "{e}"
    );
    let opts = train::run::Options {
        devices: Some(2),
        reference: Some(interp::Precision::F64),
        ..opts
    };
    let e = quick("the interpreter on 2 devices", || {
        train::run::train(&net, &cfg, &opts, &mut train::run::Quiet).map(|_| ())
    });
    assert!(
        e.contains("reference interpreter runs on one device"),
        "{e}"
    );

    // Nothing was donated by the refused steps: the runner steps on, on every device alike.
    let loss = r.step(&good, &lr).unwrap().loss().unwrap();
    assert!(loss.is_finite());
    r.check_replicas().unwrap();
}
