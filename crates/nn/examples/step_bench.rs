//! Times the train step of a model on the CPU plugin: emission, compilation and steady-state
//! milliseconds per step, with the state donated back every step as the training loop does.
//!
//! `cargo run --release -p nn --example step_bench -- MODEL [BATCH] [STEPS] [FILE.ns]`
//! (MODEL a zoo name; or `-` and a spec file as the fourth argument).

use std::time::Instant;

use nn::SlotKind;
use pjrt::Arg;
use spec::{Optimizer, RunConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).map(String::as_str).unwrap_or("mnist-cnn");
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let spec = match args.get(4) {
        Some(path) => spec::parse_checked(&std::fs::read(path).expect("reading the spec file"))
            .expect("parsing"),
        None => spec::zoo::get(model).unwrap_or_else(|| panic!("unknown zoo model {model}")),
    };
    let client = pjrt::Client::cpu().expect("PJRT CPU plugin (run scripts/setup/plugin.sh)");
    let cfg = RunConfig {
        batch_size: batch,
        optimizer: Optimizer::ADAMW,
        weight_decay: 1e-4,
        label_smoothing: 0.0,
        ..RunConfig::default()
    };
    let t = Instant::now();
    let prog = nn::train_step(&spec, &cfg).expect("emitting");
    let emit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // NN_XLA_OPT_LEVEL=N sets XLA's backend optimization level (compile time vs step time).
    let mut opts = pjrt::CompileOptions::default();
    if let Some(l) = std::env::var("NN_XLA_OPT_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.xla_options.push((
            "xla_backend_optimization_level".into(),
            pjrt::OptionValue::Int(l),
        ));
    }
    let exe = client.compile_with(&prog.mlir, &opts).expect("compiling");
    let compile_s = t.elapsed().as_secs_f64();
    let params = spec::init(&spec, 1).unwrap();
    let buffers = spec::init_buffers(&spec).unwrap();
    let n_state = prog.aliases.iter().filter(|a| a.is_some()).count();
    let (mut pi, mut bi) = (params.iter(), buffers.iter());
    let mut state: Vec<pjrt::Buffer> = prog.inputs[..n_state]
        .iter()
        .map(|s| {
            let dims: Vec<i64> = s.dims.iter().map(|&d| d as i64).collect();
            match &s.kind {
                SlotKind::Param(_) => client.buffer(pi.next().unwrap(), &dims),
                SlotKind::Buffer(_) => client.buffer(bi.next().unwrap(), &dims),
                SlotKind::OptState(_) => client.buffer(&vec![0f32; s.dims.iter().product()], &dims),
                SlotKind::Step => client.scalar(0i32),
                other => panic!("unexpected state slot {other:?}"),
            }
            .unwrap()
        })
        .collect();
    let [c, h, w] = spec.input;
    let x: Vec<f32> = (0..batch * c * h * w)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let y: Vec<i32> = (0..batch).map(|i| (i % spec.num_classes) as i32).collect();
    let xb = client
        .buffer(&x, &[batch as i64, c as i64, h as i64, w as i64])
        .unwrap();
    let yb = client.buffer(&y, &[batch as i64]).unwrap();
    let lr = client.scalar(1e-3f32).unwrap();
    let mut times = Vec::new();
    let mut loss = 0.0;
    for _ in 0..steps + 1 {
        let t = Instant::now();
        let mut a: Vec<Arg> = state.drain(..).map(Arg::Donate).collect();
        a.extend([Arg::Keep(&xb), Arg::Keep(&yb), Arg::Keep(&lr)]);
        let mut outs = exe.execute(a).expect("executing");
        let tail = outs.split_off(n_state);
        loss = tail[0].scalar::<f32>().unwrap();
        if std::env::var_os("NN_BENCH_LOSSES").is_some() {
            eprintln!("loss {loss}");
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        state = outs;
    }
    let steady = &mut times[1..];
    steady.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = steady[steady.len() / 2];
    println!(
        "{} batch {batch}: emit {emit_s:.2}s ({} KiB MLIR), compile {compile_s:.1}s, first step {:.0} ms, \
         median step {median:.1} ms ({:.1} GFLOP/s of {:.2} GFLOP counted), last loss {loss:.4}",
        spec.name,
        prog.mlir.len() / 1024,
        times[0],
        prog.flops as f64 / 1e9 / (median / 1e3),
        prog.flops as f64 / 1e9
    );
}
