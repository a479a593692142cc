//! How slow the reference interpreter is: one zoo model's train step (AdamW, the recipe's optimizer) at a
//! given batch, timed on the interpreter (f64 and f32 modes) and on XLA (CPU plugin) side by side.
//!
//! `cargo run --release -p interp --example step_time -- MODEL [BATCH] [STEPS] [THREADS]`. Prints wall and
//! process CPU time per step (CPU time is the fairer ratio on a loaded machine).

use std::time::Instant;

use interp::{Options, Precision, Tensor};
use nn::SlotKind;

/// CPU seconds used by this process so far (user + system, from /proc/self/stat; Linux only, else 0).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the command name.
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("mnist-mlp");
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let spec = spec::zoo::get(name).unwrap_or_else(|| panic!("no zoo model {name}"));
    let mut cfg = spec::zoo::recipe(name).unwrap_or_default();
    cfg.batch_size = batch;
    let p = nn::train_step(&spec, &cfg).unwrap();
    let params = spec::init(&spec, 0).unwrap();
    let buffers = spec::init_buffers(&spec).unwrap();
    let [c, h, w] = spec.input;
    let x: Vec<f32> = (0..batch * c * h * w)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let y: Vec<i32> = (0..batch).map(|i| (i % spec.num_classes) as i32).collect();
    let (mut pi, mut bi) = (params.iter(), buffers.iter());
    let inputs: Vec<Tensor> = p
        .inputs
        .iter()
        .map(|s| match &s.kind {
            SlotKind::Param(_) => Tensor::from_f32(&s.dims, pi.next().unwrap()).unwrap(),
            SlotKind::OptState(_) => {
                Tensor::from_f32(&s.dims, &vec![0.0; s.dims.iter().product()]).unwrap()
            }
            SlotKind::Buffer(_) => Tensor::from_f32(&s.dims, bi.next().unwrap()).unwrap(),
            SlotKind::Step => Tensor::from_i32(&[], &[0]).unwrap(),
            SlotKind::Images => Tensor::from_f32(&s.dims, &x).unwrap(),
            SlotKind::Labels => Tensor::from_i32(&s.dims, &y).unwrap(),
            SlotKind::LearningRate => Tensor::from_f32(&[], &[1e-3]).unwrap(),
            other => panic!("unexpected input {other:?}"),
        })
        .collect();
    let threads: usize = args
        .get(4)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Options::new(Precision::F64).threads);

    let client = pjrt::Client::cpu().expect("CPU plugin");
    let t = Instant::now();
    let exe = client.compile(&p.mlir).unwrap();
    let compile = t.elapsed().as_secs_f64();
    let bufs: Vec<pjrt::Buffer> = inputs
        .iter()
        .map(|t| {
            let dims: Vec<i64> = t.ty.dims.iter().map(|&d| d as i64).collect();
            match (t.floats(), t.ints()) {
                (Some(_), _) => client.buffer::<f32>(&t.to_f32().unwrap(), &dims).unwrap(),
                (_, Some(v)) => client
                    .buffer::<i32>(&v.iter().map(|&a| a as i32).collect::<Vec<_>>(), &dims)
                    .unwrap(),
                _ => unreachable!(),
            }
        })
        .collect();
    let refs: Vec<&pjrt::Buffer> = bufs.iter().collect();
    let mut xla = Vec::new();
    let xla_steps = 50;
    let c0 = cpu_seconds();
    for _ in 0..xla_steps {
        let t = Instant::now();
        exe.run(&refs).unwrap();
        xla.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let xla_cpu = (cpu_seconds() - c0) * 1e3 / xla_steps as f64;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let xla_ms = median(&mut xla);
    println!(
        "{name} train step, batch {batch}, {:.2} GFLOP: XLA {xla_ms:.1} ms wall, {xla_cpu:.1} ms CPU (compile {compile:.1} s)",
        p.flops as f64 / 1e9
    );
    for precision in [Precision::F64, Precision::F32] {
        let opts = Options { precision, threads };
        let mut ms = Vec::new();
        let c0 = cpu_seconds();
        for _ in 0..steps {
            let t = Instant::now();
            interp::run(&p.graph, &inputs, &opts).unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let cpu = (cpu_seconds() - c0) * 1e3 / steps as f64;
        let m = median(&mut ms);
        println!(
            "  interpreter {precision:?}, {threads} thread(s): {m:.0} ms wall ({:.0}x XLA), {cpu:.0} ms CPU ({:.0}x XLA's CPU), {:.2} GFLOP per CPU-second",
            m / xla_ms,
            cpu / xla_cpu,
            p.flops as f64 / 1e6 / cpu
        );
    }
}
