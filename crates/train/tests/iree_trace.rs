//! IREE's corner of the four-corner table (docs/ORACLE.md, "Four corners"): the first steps of a zoo
//! model's recipe run, `netspec train MODEL --max-steps N` on XLA, replayed on IREE 3.13 (llvm-cpu).
//!
//! 1. `run::train` on the CPU plugin writes `MODEL-xla.jsonl` (the run `netspec train` makes).
//! 2. The run's batches and rates are taken on the host from `run::feed::host_train_batches`, the
//!    stream `train_batches` uploads (one definition), and its initial state from
//!    `run::checkpoints::initial_state`. Replayed on XLA through the [`Runner`] they must give the
//!    trace's losses bit for bit: this proves they are the run's inputs.
//! 3. The same train step, printed for `Target::Iree`, is compiled by `iree-compile` and iterated by
//!    `tests/iree/run_iree.py` (the state fed back from each call to the next); its losses become
//!    `MODEL-iree.jsonl` (same header), which `netspec diff-traces` reads. It must agree with XLA's
//!    under `strict`.
//!
//! Ignored: compiling the batch-128 steps on IREE and the run's final evaluation take minutes on the
//! 2-core machine. Run by `scripts/iree-trace.sh [MODEL...]`. Environment: `NETSPEC_IREE_TRACE_MODELS`
//! (comma separated, default `mnist-mlp`), `NETSPEC_IREE_TRACE_STEPS` (default 20),
//! `NETSPEC_IREE_TRACE_DIR` (where the traces are kept; default a temporary directory, removed).
//! Needs Fashion-MNIST, the CPU plugin and the IREE venv (`scripts/setup/iree.sh`).
mod common;
#[path = "../../../tests/iree/locate.rs"]
mod locate;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TempDir;
use nn::{ElemType, SlotKind};
use serde_json::{json, Value};
use train::batch::{self, HostBatch, Mode, Position};
use train::checkpoint::TensorData;
use train::device::Executor;
use train::run::{self, checkpoints, feed, DataOptions};
use train::runner::{state_name, Runner};
use train::trace::{self, DiffMode, Step};

fn write_f32(path: &Path, v: &[f32]) -> Value {
    std::fs::write(
        path,
        v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
    json!({"file": path, "dtype": "f32"})
}

fn write_i32(path: &Path, v: &[i32]) -> Value {
    std::fs::write(
        path,
        v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
    json!({"file": path, "dtype": "i32"})
}

fn with_shape(mut v: Value, dims: &[usize]) -> Value {
    v["shape"] = json!(dims);
    v
}

/// Replays `steps` steps of `name`'s recipe run on XLA and IREE; returns (max |Δloss|, max relative).
fn replay(name: &str, steps: u64, out: &Path) -> (f64, f64) {
    let spec = spec::zoo::get(name).unwrap_or_else(|| panic!("no zoo model {name}"));
    let cfg = spec::zoo::recipe(name).unwrap();

    // 1. netspec's run on XLA.
    let xla_path = out.join(format!("{name}-xla.jsonl"));
    let o = run::Options {
        max_steps: Some(steps),
        trace: Some(xla_path.clone()),
        ..run::Options::default()
    };
    let s = run::train(&spec, &cfg, &o, &mut run::Quiet).unwrap();
    assert_eq!(s.step, steps);
    let xla = trace::read(&xla_path).unwrap();
    assert_eq!(xla.steps.len(), steps as usize);

    // 2. The run's batches and initial state, replayed on XLA: bit-identical losses.
    let data = run::load_data(&spec, &cfg, &DataOptions::default()).unwrap();
    let per_epoch = batch::batches_per_epoch(data.train.len(), cfg.batch_size, Mode::Train);
    let f = feed::TrainFeed {
        batch_size: cfg.batch_size,
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        epochs: cfg.epochs,
        start: Position::default(),
        per_epoch,
        schedule: run::schedule(&cfg, per_epoch),
        threads: 2,
        prefetch: 2,
    };
    let batches: Vec<(HostBatch, f32)> = feed::host_train_batches(&data, f)
        .unwrap()
        .take(steps as usize)
        .map(|r| r.unwrap().value)
        .collect();
    let program = nn::train_step_on(&spec, &cfg, 1).unwrap();
    let exec = Executor::open(pjrt::Device::Cpu, None).unwrap();
    let mut runner = Runner::new(exec, Some(program.clone()), None).unwrap();
    checkpoints::initial_state(&spec, cfg.seed, None, &mut runner).unwrap();
    let init = runner.state().unwrap();
    let slots: Vec<nn::Slot> = runner.state_slots().map(|(_, s)| s.clone()).collect();
    let up = runner.uploader();
    for (k, (b, lr)) in batches.iter().enumerate() {
        let db = up.train_batch(b).unwrap();
        let rate = up.rate(*lr).unwrap();
        let loss = runner.step(&db, &rate).unwrap().loss().unwrap();
        let want = &xla.steps[k];
        // Compared in f32, what the run wrote (serde_json's default parser may read the trace's
        // shortest decimal one f64 ulp off).
        assert!(
            loss == want.loss as f32 && *lr == want.lr as f32,
            "{name} step {}: the replayed feed gives loss {loss} at rate {lr}, the run {} at {}: \
             the host batches are not the run's",
            k + 1,
            want.loss,
            want.lr
        );
    }
    drop(runner);

    // 3. IREE: the same step, fed the same batches, its state fed back.
    let dir = out.join(format!("{name}-iree-job"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = graph::print_for(&program.graph, graph::Target::Iree).unwrap();
    let mlir = dir.join("step.mlir");
    std::fs::write(&mlir, text).unwrap();
    let mut step_inputs = Vec::new();
    for (k, (b, lr)) in batches.iter().enumerate() {
        let mut m = serde_json::Map::new();
        for (i, s) in program.inputs.iter().enumerate() {
            let v = match s.kind {
                SlotKind::Images => write_f32(&dir.join(format!("x{k}.bin")), &b.x),
                SlotKind::Labels => write_i32(&dir.join(format!("y{k}.bin")), &b.y),
                SlotKind::LearningRate => write_f32(&dir.join(format!("lr{k}.bin")), &[*lr]),
                _ => continue,
            };
            m.insert(i.to_string(), with_shape(v, &s.dims));
        }
        step_inputs.push(Value::Object(m));
    }
    let inputs: Vec<Value> = program
        .inputs
        .iter()
        .enumerate()
        .map(|(i, s)| match state_name(&s.kind) {
            Some(_) => {
                let k = slots.iter().position(|t| t.kind == s.kind).unwrap();
                let f = dir.join(format!("state{i}.bin"));
                let v = match (&init[k].data, s.elem) {
                    (TensorData::F32(v), ElemType::F32) => write_f32(&f, v),
                    (TensorData::I32(v), ElemType::I32) => write_i32(&f, v),
                    _ => panic!("state {:?}: element type", s.kind),
                };
                with_shape(v, &s.dims)
            }
            None => step_inputs[0][i.to_string()].clone(),
        })
        .collect();
    let feedback: Vec<[usize; 2]> = program
        .outputs
        .iter()
        .enumerate()
        .filter(|(_, s)| state_name(&s.kind).is_some())
        .map(|(o, s)| [o, program.input_index(&s.kind).unwrap()])
        .collect();
    assert_eq!(feedback.len(), slots.len(), "every state slot is fed back");
    let job = json!({
        "name": format!("{name} train step x{steps}"),
        "mlir": mlir, "vmfb": dir.join("step.vmfb"), "inputs": inputs, "out_dir": dir.join("out"),
        "steps": step_inputs, "feedback": feedback,
        "loss_out": program.output_index(&SlotKind::Loss).unwrap(),
    });
    let spec_file = dir.join("jobs.json");
    let res_file = dir.join("results.json");
    std::fs::write(&spec_file, json!({ "jobs": [job] }).to_string()).unwrap();
    let st = Command::new(locate::python())
        .arg(locate::script())
        .arg(&spec_file)
        .arg(&res_file)
        .status()
        .expect("starting the IREE python");
    assert!(st.success(), "run_iree.py failed ({st})");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&res_file).unwrap()).unwrap();
    let r = &r["results"][0];
    if let Some(e) = r.get("error") {
        panic!("{name} on IREE: {}", e.as_str().unwrap_or("?"));
    }
    let losses: Vec<f64> = r["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), steps as usize);
    let _ = std::fs::remove_dir_all(&dir);

    let mut t = trace::Trace {
        header: xla.header.clone(),
        steps: Vec::new(),
        epochs: Vec::new(),
    };
    t.header
        .extra
        .insert("executor".into(), json!("iree-3.13.0 llvm-cpu"));
    for (k, ((b, lr), loss)) in batches.iter().zip(&losses).enumerate() {
        t.steps
            .push(Step::new(k as u64 + 1, b.epoch, *loss, *lr as f64));
    }
    let iree_path = out.join(format!("{name}-iree.jsonl"));
    let tmp = iree_path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, trace::to_string(&t)).unwrap();
    std::fs::rename(&tmp, &iree_path).unwrap();
    let iree = trace::read(&iree_path).unwrap();

    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    for (a, b) in iree.steps.iter().zip(&xla.steps) {
        abs = abs.max((a.loss - b.loss).abs());
        rel = rel.max((a.loss - b.loss).abs() / b.loss.abs());
    }
    println!(
        "{name}: IREE vs XLA over {steps} steps: max |Δloss| {abs:.3e}, max relative {rel:.2e} \
         (IREE compile {:.1} s, {steps} steps {:.1} s); traces {} and {}",
        r["compile_s"].as_f64().unwrap_or(0.0),
        r["run_s"].as_f64().unwrap_or(0.0),
        xla_path.display(),
        iree_path.display()
    );
    let d = trace::diff(&iree, &xla, DiffMode::Strict);
    assert!(d.agrees(), "{name}: IREE vs XLA under strict: {d:?}");
    (abs, rel)
}

#[test]
#[ignore]
fn iree_replays_the_first_steps() {
    let models = std::env::var("NETSPEC_IREE_TRACE_MODELS").unwrap_or_else(|_| "mnist-mlp".into());
    let steps: u64 = std::env::var("NETSPEC_IREE_TRACE_STEPS")
        .map(|s| {
            s.parse()
                .expect("NETSPEC_IREE_TRACE_STEPS: a number of steps")
        })
        .unwrap_or(20);
    let tmp = TempDir::new("iree-trace");
    let out: PathBuf = match std::env::var_os("NETSPEC_IREE_TRACE_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            std::fs::create_dir_all(&d).unwrap();
            d
        }
        None => tmp.path().to_path_buf(),
    };
    for name in models.split(',').filter(|s| !s.is_empty()) {
        replay(name, steps, &out);
    }
}
