//! The exported script: determinism and errors (pure Rust), then one Python run that checks the
//! script's independent re-implementations against netspec's Rust reference: every zoo model
//! traces with exactly the ABI parameters, `spec::init` bit for bit, the data order of
//! `train::order` and the schedule of `train::schedule`.

mod common;

use serde_json::{json, Value};
use spec::{NetSpec, RunConfig};

fn recipe(name: &str) -> RunConfig {
    spec::zoo::recipe(name).unwrap_or_default()
}

#[test]
fn every_zoo_model_exports_deterministically() {
    for name in spec::zoo::names() {
        let net = spec::zoo::get(name).unwrap();
        let a = jaxgen::export(&net, &recipe(name)).unwrap();
        let b = jaxgen::export(&net, &recipe(name)).unwrap();
        assert_eq!(a, b, "{name}: export is not deterministic");
        // Every parameter of the ABI is in the table, in ABI order.
        let mut at = 0;
        for p in spec::params(&net).unwrap() {
            let key = format!("(\"{}\", ", p.name);
            let pos = a[at..]
                .find(&key)
                .unwrap_or_else(|| panic!("{name}: {} missing or out of order", p.name));
            at += pos + key.len();
        }
        assert!(a.contains("def forward(c, x):"), "{name}");
    }
}

#[test]
fn bad_spec_and_bad_recipe_are_errors() {
    let mut net = spec::zoo::get("mnist-mlp").unwrap();
    net.layers.remove(0); // no flatten: dense on an image
    let e = jaxgen::export(&net, &RunConfig::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("layer 0 (dense)"), "{msg}");

    let net = spec::zoo::get("mnist-mlp").unwrap();
    let e = jaxgen::export(
        &net,
        &RunConfig {
            batch_size: 0,
            ..RunConfig::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("batch size"), "{e}");
    let e = jaxgen::export(
        &net,
        &RunConfig {
            warmup_epochs: 5,
            epochs: 2,
            ..RunConfig::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("warmup"), "{e}");
    // What the script cannot reproduce is refused, naming it.
    for (c, what) in [
        (
            RunConfig {
                dataset: spec::Dataset::Folder,
                ..RunConfig::default()
            },
            "folder",
        ),
        (
            RunConfig {
                val_split: Some(0.1),
                ..RunConfig::default()
            },
            "--val-split",
        ),
        (
            RunConfig {
                augment: spec::Augment::RandomResizedCrop,
                ..RunConfig::default()
            },
            "random-resized-crop",
        ),
    ] {
        let e = jaxgen::export(&net, &c).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }
}

/// A small network with every kind of init: He-normal kernels, Normal(0.02) cls/pos, zeros, ones,
/// a constant (layer scale), BN buffers.
const INIT_SPEC: &str = "name init-check\ninput 3 8 8\nclasses 10\n\
convBn 4 kernel=3\nscale 0.25\npatchEmbed 8 patch=4\ntransformer heads=2 mlp=16 blocks=1\ndense 10\n";

#[test]
fn python_side_matches_the_rust_reference() {
    let dir = common::scratch("export");
    let mut jobs = Vec::new();
    // 1. every zoo model traces (abstractly) with exactly its ABI parameters.
    for name in spec::zoo::names() {
        let net = spec::zoo::get(name).unwrap();
        let path = dir.join(format!("{name}.py"));
        std::fs::write(&path, jaxgen::export(&net, &recipe(name)).unwrap()).unwrap();
        jobs.push(json!({"kind": "shapes", "script": path, "batch": 2}));
    }
    // 2. spec::init, bit for bit.
    let net: NetSpec = spec::parse_checked(INIT_SPEC.as_bytes()).unwrap();
    let init_script = dir.join("init-check.py");
    std::fs::write(
        &init_script,
        jaxgen::export(&net, &RunConfig::default()).unwrap(),
    )
    .unwrap();
    let init_out = dir.join("init.safetensors");
    let seed = 314_159u64;
    jobs.push(json!({"kind": "init", "script": init_script, "seed": seed, "out": init_out}));
    // 3. data order: shuffled epochs 0 and 7, and the identity.
    let orders = [
        (1000usize, 42u64, 0u64, true),
        (1000, 42, 7, true),
        (257, 3, 1, true),
        (10, 42, 0, false),
    ];
    for (n, s, e, sh) in orders {
        jobs.push(json!({"kind": "order", "script": init_script, "n": n, "seed": s, "epoch": e, "shuffle": sh}));
    }
    // 4. the schedule: warmup 4, cosine to 12, past the end; and constant.
    jobs.push(json!({"kind": "schedule", "script": init_script, "steps": 14, "peak": 1e-3, "schedule": "cosine", "warmup": 4, "total": 12}));
    jobs.push(json!({"kind": "schedule", "script": init_script, "steps": 3, "peak": 0.1, "schedule": "constant", "warmup": 0, "total": 3}));

    let results = common::run_jobs(&dir, &jobs);

    // init
    let got = common::read_f32(&init_out);
    let params = spec::params(&net).unwrap();
    let values = spec::init(&net, seed).unwrap();
    let buffers = spec::buffers(&net).unwrap();
    let buffer_values = spec::init_buffers(&net).unwrap();
    assert_eq!(got.len(), params.len() + buffers.len());
    for (p, v) in params
        .iter()
        .zip(&values)
        .chain(buffers.iter().zip(&buffer_values))
    {
        let (shape, g) = &got[&p.name];
        assert_eq!(shape, &p.shape, "{}", p.name);
        let differ = g
            .iter()
            .zip(v)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            differ,
            0,
            "{}: {differ} of {} values differ from spec::init",
            p.name,
            v.len()
        );
    }
    // order
    let first = spec::zoo::names().len() + 1;
    for (k, (n, s, e, sh)) in orders.into_iter().enumerate() {
        let want: Vec<Value> = train::order::epoch_order(n, s, e, sh)
            .into_iter()
            .map(Value::from)
            .collect();
        assert_eq!(
            results[first + k]["order"],
            Value::Array(want),
            "order n={n} seed={s} epoch={e}"
        );
    }
    // schedule
    let sched = [
        (
            train::schedule::Schedule::WarmupCosine {
                peak: 1e-3,
                warmup_steps: 4,
                total_steps: 12,
            },
            14,
        ),
        (train::schedule::Schedule::Constant { lr: 0.1 }, 3),
    ];
    for (k, (s, steps)) in sched.into_iter().enumerate() {
        let got = results[first + orders.len() + k]["lr"].as_array().unwrap();
        for step in 0..steps {
            let g = got[step as usize].as_f64().unwrap() as f32;
            assert_eq!(
                g.to_bits(),
                s.lr(step).to_bits(),
                "lr({step}) of {s:?}: {g} vs {}",
                s.lr(step)
            );
        }
    }
}
