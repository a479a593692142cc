//! Program signatures and lowering coverage, without a plugin: every zoo model lowers in both modes
//! with every parameter and buffer consumed exactly once (the lowering checks this and errors
//! otherwise), the train-step signature follows ARCHITECTURE.md's ABI slot by slot, state inputs are
//! aliased to the same output index, emission is deterministic, and bad configurations are refused
//! with an error naming the problem.

use graph::{DType, Graph, TensorType};
use nn::lower::{self, Inputs, Mode};
use nn::{ElemType, Error, SlotKind};
use spec::{Optimizer, RunConfig};

fn cfg(opt: Optimizer) -> RunConfig {
    RunConfig {
        batch_size: 2,
        optimizer: opt,
        weight_decay: 1e-4,
        label_smoothing: 0.1,
        ..RunConfig::default()
    }
}

#[test]
fn every_zoo_model_lowers_consuming_each_parameter_and_buffer_once() {
    for name in spec::zoo::names() {
        let spec = spec::zoo::get(name).unwrap();
        let ps = spec::params(&spec).unwrap();
        let bs = spec::buffers(&spec).unwrap();
        for mode in [Mode::Train, Mode::Eval] {
            let mut g = Graph::new("t");
            let pv: Vec<_> = ps
                .iter()
                .map(|p| g.parameter(TensorType::new(DType::F32, &p.shape)))
                .collect();
            let bv: Vec<_> = bs
                .iter()
                .map(|p| g.parameter(TensorType::new(DType::F32, &p.shape)))
                .collect();
            let [c, h, w] = spec.input;
            let x = g.parameter(TensorType::new(DType::F32, &[2, c, h, w]));
            let step = g.parameter(TensorType::scalar(DType::I32));
            let rng = Some(lower::rng_key(&mut g, step).unwrap());
            let f = lower::lower(
                &mut g,
                &spec,
                mode,
                x,
                Inputs {
                    params: &pv,
                    buffers: &bv,
                    rng,
                },
            )
            .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            assert_eq!(g.dims(f.logits), &[2, spec.num_classes], "{name} {mode:?}");
            match mode {
                Mode::Train => {
                    assert_eq!(f.batch_stats.len(), bs.len(), "{name}");
                    for (s, b) in f.batch_stats.iter().zip(&bs) {
                        assert_eq!(
                            g.dims(*s),
                            &b.shape[..],
                            "{name}: batch statistic of {}",
                            b.name
                        );
                    }
                }
                Mode::Eval => assert!(f.batch_stats.is_empty()),
            }
        }
    }
}

#[test]
fn lowering_refuses_a_parameter_list_of_the_wrong_length() {
    let spec = spec::zoo::get("mnist-mlp").unwrap();
    let mut g = Graph::new("t");
    let x = g.parameter(TensorType::new(DType::F32, &[2, 1, 28, 28]));
    let e = lower::lower(
        &mut g,
        &spec,
        Mode::Eval,
        x,
        Inputs {
            params: &[],
            buffers: &[],
            rng: None,
        },
    )
    .err()
    .unwrap();
    assert!(matches!(e, Error::Abi(_)), "{e}");
    assert!(e.to_string().contains("parameter"), "{e}");
}

#[test]
fn dropout_in_training_needs_an_rng_state() {
    let spec = spec::zoo::get("efficientnet-b0").unwrap();
    let ps = spec::params(&spec).unwrap();
    let mut g = Graph::new("t");
    let pv: Vec<_> = ps
        .iter()
        .map(|p| g.parameter(TensorType::new(DType::F32, &p.shape)))
        .collect();
    let x = g.parameter(TensorType::new(DType::F32, &[2, 3, 224, 224]));
    let e = lower::lower(
        &mut g,
        &spec,
        Mode::Train,
        x,
        Inputs {
            params: &pv,
            buffers: &[],
            rng: None,
        },
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("RNG"), "{e}");
}

#[test]
fn train_step_signature_follows_the_abi() {
    let spec = spec::zoo::get("resnet18").unwrap();
    let ps = spec::params(&spec).unwrap();
    let bs = spec::buffers(&spec).unwrap();
    for (opt, moments) in [
        (Optimizer::Sgd, 0),
        (Optimizer::Momentum { mu: 0.9 }, 1),
        (Optimizer::ADAM, 2),
        (Optimizer::ADAMW, 2),
    ] {
        let p = nn::train_step(&spec, &cfg(opt)).unwrap();
        let np = ps.len();
        let n_state = np * (1 + moments) + bs.len() + 1;
        assert_eq!(p.inputs.len(), n_state + 3);
        assert_eq!(p.outputs.len(), n_state + 2);
        for (i, ps) in ps.iter().enumerate() {
            assert_eq!(p.inputs[i].kind, SlotKind::Param(ps.name.clone()));
            assert_eq!(p.inputs[i].dims, ps.shape);
            for (k, m) in ["m", "v"][..moments].iter().enumerate() {
                let s = &p.inputs[np * (1 + k) + i];
                assert_eq!(s.kind, SlotKind::OptState(format!("opt.{m}.{}", ps.name)));
                assert_eq!(s.dims, ps.shape);
            }
        }
        for (j, b) in bs.iter().enumerate() {
            assert_eq!(
                p.inputs[np * (1 + moments) + j].kind,
                SlotKind::Buffer(b.name.clone())
            );
        }
        let tail: Vec<_> = p.inputs[n_state - 1..]
            .iter()
            .map(|s| (s.kind.clone(), s.elem, s.dims.clone()))
            .collect();
        assert_eq!(
            tail,
            vec![
                (SlotKind::Step, ElemType::I32, vec![]),
                (SlotKind::Images, ElemType::F32, vec![2, 3, 224, 224]),
                (SlotKind::Labels, ElemType::I32, vec![2]),
                (SlotKind::LearningRate, ElemType::F32, vec![]),
            ]
        );
        assert_eq!(p.outputs[..n_state], p.inputs[..n_state]);
        assert_eq!(
            (p.outputs[n_state].kind.clone(), p.outputs[n_state].elem),
            (SlotKind::Loss, ElemType::F32)
        );
        assert_eq!(
            (
                p.outputs[n_state + 1].kind.clone(),
                p.outputs[n_state + 1].elem
            ),
            (SlotKind::Correct, ElemType::I32)
        );
        for (i, a) in p.aliases.iter().enumerate() {
            assert_eq!(*a, (i < n_state).then_some(i), "alias of input {i}");
        }
        // The module carries one aliasing attribute per state input.
        assert_eq!(p.mlir.matches("tf.aliasing_output").count(), n_state);
        assert!(p.mlir.contains(&format!(
            "%arg{}: tensor<i32> {{tf.aliasing_output = {} : i32}}",
            n_state - 1,
            n_state - 1
        )));
        assert!(p.flops > 0);
    }
}

#[test]
fn other_programs_have_their_signatures() {
    let spec = spec::zoo::get("mnist-cnn").unwrap();
    let np = spec::params(&spec).unwrap().len();
    let nb = spec::buffers(&spec).unwrap().len();
    let e = nn::eval_step(&spec, 5).unwrap();
    assert_eq!(e.inputs.len(), np + nb + 2);
    assert_eq!(e.inputs[np + nb].dims, vec![5, 1, 28, 28]);
    assert_eq!(
        e.outputs.iter().map(|s| s.kind.clone()).collect::<Vec<_>>(),
        vec![SlotKind::Loss, SlotKind::Correct]
    );
    assert!(e.aliases.iter().all(|a| a.is_none()));
    let p = nn::predict(&spec, 5).unwrap();
    assert_eq!(p.inputs.len(), np + nb + 1);
    assert_eq!(p.outputs[0].kind, SlotKind::Logits);
    assert_eq!(p.outputs[0].dims, vec![5, 10]);
    let f = nn::forward(&spec, 5).unwrap();
    assert_eq!(f.inputs.len(), np + 1);
    let g = nn::grads(&spec, 5, 0.0).unwrap();
    assert_eq!(g.inputs.len(), np + 2);
    assert_eq!(g.outputs.len(), np + 1);
    for (s, p) in g.outputs[1..].iter().zip(spec::params(&spec).unwrap()) {
        assert_eq!(s.kind, SlotKind::Grad(p.name.clone()));
        assert_eq!(s.dims, p.shape);
    }
}

#[test]
fn emission_is_deterministic() {
    for name in ["mobilenet-v3-large", "vit-tiny"] {
        let spec = spec::zoo::get(name).unwrap();
        let a = nn::train_step(&spec, &cfg(Optimizer::ADAMW)).unwrap();
        let b = nn::train_step(&spec, &cfg(Optimizer::ADAMW)).unwrap();
        assert!(a.mlir == b.mlir, "{name}: two emissions differ");
        assert_eq!(a.flops, b.flops);
    }
}

#[test]
fn bad_configurations_are_refused() {
    let spec = spec::zoo::get("mnist-mlp").unwrap();
    let bad = [
        (
            RunConfig {
                batch_size: 0,
                ..cfg(Optimizer::Sgd)
            },
            "batch size",
        ),
        (
            RunConfig {
                label_smoothing: 1.0,
                ..cfg(Optimizer::Sgd)
            },
            "label smoothing",
        ),
        (
            RunConfig {
                weight_decay: -1.0,
                ..cfg(Optimizer::Sgd)
            },
            "weight decay",
        ),
        (
            RunConfig {
                weight_decay: f32::NAN,
                ..cfg(Optimizer::Sgd)
            },
            "weight decay",
        ),
        (
            cfg(Optimizer::Adam {
                beta1: 1.0,
                beta2: 0.999,
                eps: 1e-8,
            }),
            "beta1",
        ),
        (
            cfg(Optimizer::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 0.0,
            }),
            "eps",
        ),
        (cfg(Optimizer::Momentum { mu: -0.5 }), "momentum"),
    ];
    for (c, what) in bad {
        let e = nn::train_step(&spec, &c)
            .err()
            .unwrap_or_else(|| panic!("{c:?} accepted"));
        assert!(
            matches!(e, Error::Config(_)) && e.to_string().contains(what),
            "{c:?}: {e}"
        );
    }
    assert!(nn::eval_step(&spec, 0).is_err());
    assert!(nn::grads(&spec, 2, -0.1).is_err());
}

#[test]
fn a_bad_spec_is_a_spec_error() {
    let mut spec = spec::zoo::get("mnist-mlp").unwrap();
    spec.layers.remove(0); // dense on an image
    let e = nn::train_step(&spec, &cfg(Optimizer::Sgd)).err().unwrap();
    assert!(matches!(e, Error::Spec(_)), "{e}");
    assert!(e.to_string().contains("flatten"), "{e}");
}

/// The programs for N devices: the same body and slots as for one; only the module's
/// `mhlo.num_partitions` and each argument's `mhlo.sharding` differ (images and labels split along
/// the batch, everything else replicated). A batch the devices do not divide is refused.
#[test]
fn partitioned_programs_differ_only_in_their_sharding_attributes() {
    let spec = spec::zoo::get("mnist-cnn").unwrap();
    let c = RunConfig {
        batch_size: 8,
        ..cfg(Optimizer::ADAMW)
    };
    type Emit = fn(&spec::NetSpec, &RunConfig, usize) -> nn::Result<nn::Program>;
    let programs: [(&str, Emit); 3] = [
        ("train", |s, c, n| nn::train_step_on(s, c, n)),
        ("eval", |s, c, n| nn::eval_step_on(s, c.batch_size, n)),
        ("predict", |s, c, n| nn::predict_on(s, c.batch_size, n)),
    ];
    for (what, emit) in programs {
        let one = emit(&spec, &c, 1).unwrap();
        assert_eq!(one.partitions, 1);
        assert!(!one.mlir.contains("mhlo.sharding"), "{what}");
        for n in [2usize, 4] {
            let p = emit(&spec, &c, n).unwrap();
            assert_eq!(p.partitions, n);
            assert_eq!(
                (&p.inputs, &p.outputs, &p.aliases),
                (&one.inputs, &one.outputs, &one.aliases)
            );
            // Every argument has a sharding: the batch split over n, the rest replicated.
            let header = p.mlir.lines().nth(1).unwrap();
            let split4 = format!("mhlo.sharding = \"{{devices=[{n},1,1,1]<=[{n}]}}\"");
            let split1 = format!("mhlo.sharding = \"{{devices=[{n}]<=[{n}]}}\"");
            let replicated = "mhlo.sharding = \"{replicated}\"";
            let labels = usize::from(what != "predict");
            assert_eq!(header.matches(&split4).count(), 1, "{what}: {header}");
            assert_eq!(header.matches(&split1).count(), labels, "{what}: {header}");
            assert_eq!(
                header.matches(replicated).count(),
                p.inputs.len() - 1 - labels,
                "{what}"
            );
            // Without those attributes the module is the 1-device one.
            let plain = p
                .mlir
                .replace(&format!(", {split4}"), "")
                .replace(&format!(" {{{split4}}}"), "")
                .replace(&format!(" {{{split1}}}"), "")
                .replace(&format!(", {replicated}"), "")
                .replace(&format!(" {{{replicated}}}"), "")
                .replace(
                    &format!("mhlo.num_partitions = {n} : i32"),
                    "mhlo.num_partitions = 1 : i32",
                );
            assert_eq!(plain, one.mlir, "{what} on {n} devices");
        }
    }
    let c6 = RunConfig {
        batch_size: 6,
        ..c.clone()
    };
    let e = nn::train_step_on(&spec, &c6, 4).unwrap_err().to_string();
    assert!(e.contains("batch of 6") && e.contains("4 devices"), "{e}");
    let e = nn::eval_step_on(&spec, 10, 4).unwrap_err().to_string();
    assert!(e.contains("batch of 10") && e.contains("4 devices"), "{e}");
    let e = nn::predict_on(&spec, 8, 0).unwrap_err().to_string();
    assert!(e.contains("at least 1"), "{e}");
}
