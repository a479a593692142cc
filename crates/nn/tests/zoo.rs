//! Every zoo model, at batch 2 on the CPU plugin: the eval forward (predict) and the train-mode forward
//! compile and give finite logits of the right shape; one train step compiles and gives a finite loss
//! with outputs shaped like the state; the outputs are donated back for a second step (ABI coherence).

mod common;

use std::time::Instant;

use common::{client, compile, download, noise, upload, Host};
use nn::{ElemType, SlotKind};
use pjrt::Arg;
use spec::{Optimizer, RunConfig};

const B: usize = 2;

fn check_logits(name: &str, what: &str, out: &Host, classes: usize) {
    let v = out.f32();
    assert_eq!(v.len(), B * classes, "{name} {what}: logits length");
    assert!(
        v.iter().all(|x| x.is_finite()),
        "{name} {what}: non-finite logits {v:?}"
    );
}

fn run_model(name: &str) {
    let spec = spec::zoo::get(name).unwrap();
    let k = spec.num_classes;
    let params = spec::init(&spec, 7).unwrap();
    let buffers = spec::init_buffers(&spec).unwrap();
    let [c, h, w] = spec.input;
    let x = noise(B * c * h * w, 11);
    let y = vec![3i32, 7];

    // Eval-mode forward.
    let t = Instant::now();
    let p = nn::predict(&spec, B).unwrap();
    let exe = compile(&p);
    let compile_predict = t.elapsed().as_secs_f64();
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.extend(buffers.iter().cloned().map(Host::F32));
    args.push(Host::F32(x.clone()));
    let out = common::run(&p, &exe, &args);
    assert_eq!(p.outputs[0].dims, vec![B, k]);
    check_logits(name, "predict", &out[0], k);

    // Train-mode forward.
    let t = Instant::now();
    let p = nn::forward(&spec, B).unwrap();
    let exe = compile(&p);
    let compile_forward = t.elapsed().as_secs_f64();
    let mut args: Vec<Host> = params.iter().cloned().map(Host::F32).collect();
    args.push(Host::F32(x.clone()));
    let out = common::run(&p, &exe, &args);
    check_logits(name, "forward", &out[0], k);

    // Train step, twice, donating the state back.
    let cfg = RunConfig {
        batch_size: B,
        optimizer: Optimizer::ADAMW,
        weight_decay: 1e-4,
        label_smoothing: 0.1,
        ..RunConfig::default()
    };
    let t = Instant::now();
    let p = nn::train_step(&spec, &cfg).unwrap();
    let exe = compile(&p);
    let compile_train = t.elapsed().as_secs_f64();
    let n_state = p.aliases.iter().filter(|a| a.is_some()).count();
    assert_eq!(n_state, p.inputs.len() - 3);
    let mut state: Vec<pjrt::Buffer> = Vec::new();
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
    }
    let xb = upload(&p.inputs[n_state], &Host::F32(x));
    let yb = upload(&p.inputs[n_state + 1], &Host::I32(y));
    let lrb = client().scalar(1e-3f32).unwrap();
    let t = Instant::now();
    let mut losses = Vec::new();
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
    eprintln!(
        "{name}: compile predict {compile_predict:.1}s forward {compile_forward:.1}s train {compile_train:.1}s; \
         2 steps {:.2}s; losses {losses:?}; train-step GFLOP {:.2}",
        t.elapsed().as_secs_f64(),
        p.flops as f64 / 1e9
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
}
