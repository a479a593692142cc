//! Self-checks with timings, shared by `netspec doctor` and `examples/bench.rs`: a tiny module whose
//! exact result is known, a donated loop shaped like a training step, and a data-parallel step
//! partitioned over several devices.

use crate::error::{Error, ErrorKind, Result};
use crate::executable::Arg;
use crate::{Buffer, Client, CompileOptions};
use std::time::{Duration, Instant};

/// `(a @ b, sum(a @ b))` for `a: f32[2,3]`, `b: f32[3,2]`.
pub const TINY_MODULE: &str = r#"
module @netspec_doctor {
  func.func public @main(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> (tensor<2x2xf32>, tensor<f32>) {
    %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x2xf32>
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %1 = stablehlo.reduce(%0 init: %zero) applies stablehlo.add across dimensions = [0, 1] : (tensor<2x2xf32>, tensor<f32>) -> tensor<f32>
    return %0, %1 : tensor<2x2xf32>, tensor<f32>
  }
}"#;

/// Inputs 0..6 for both operands: [[0,1,2],[3,4,5]] @ [[0,1],[2,3],[4,5]] = [[10,13],[28,40]], sum 91.
const TINY_INPUT: [f32; 6] = [0., 1., 2., 3., 4., 5.];
const TINY_PRODUCT: [f32; 4] = [10., 13., 28., 40.];
const TINY_SUM: f32 = 91.;

/// Timings of the tiny module.
#[derive(Debug, Clone)]
pub struct TinyReport {
    pub compile: Duration,
    /// The first execution (includes one-time setup in the plugin).
    pub first_execute: Duration,
    /// Median over `runs` executions with inputs already on the device.
    pub execute_median: Duration,
    /// Median of host -> device (both inputs) + execute + device -> host (both outputs).
    pub round_trip_median: Duration,
    pub runs: usize,
}

fn mismatch(what: &str, got: String, want: String) -> Error {
    Error::new(
        ErrorKind::SelfTest,
        "checking the tiny module's result",
        format!("{what} is {got}, expected {want}"),
    )
}

/// Compiles and runs [`TINY_MODULE`], checks the exact result, and times it.
pub fn tiny(client: &Client, runs: usize) -> Result<TinyReport> {
    let t = Instant::now();
    let exe = client.compile(TINY_MODULE)?;
    let compile = t.elapsed();
    let a = client.buffer(&TINY_INPUT, &[2, 3])?;
    let b = client.buffer(&TINY_INPUT, &[3, 2])?;
    let t = Instant::now();
    let out = exe.run(&[&a, &b])?;
    let first_execute = t.elapsed();
    let product = out[0].to_vec::<f32>()?;
    if product != TINY_PRODUCT || out[0].dims() != [2, 2] {
        return Err(mismatch(
            "a @ b",
            format!("{product:?} {:?}", out[0].dims()),
            format!("{TINY_PRODUCT:?} [2, 2]"),
        ));
    }
    let sum = out[1].scalar::<f32>()?;
    if sum != TINY_SUM {
        return Err(mismatch(
            "sum(a @ b)",
            sum.to_string(),
            TINY_SUM.to_string(),
        ));
    }
    let mut exec = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let out = exe.run(&[&a, &b])?;
        exec.push(t.elapsed());
        drop(out);
    }
    let mut round = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let a = client.buffer(&TINY_INPUT, &[2, 3])?;
        let b = client.buffer(&TINY_INPUT, &[3, 2])?;
        let out = exe.run(&[&a, &b])?;
        let p = out[0].to_vec::<f32>()?;
        let s = out[1].scalar::<f32>()?;
        round.push(t.elapsed());
        if p != TINY_PRODUCT || s != TINY_SUM {
            return Err(mismatch(
                "a repeated run",
                format!("{p:?}, {s}"),
                format!("{TINY_PRODUCT:?}, {TINY_SUM}"),
            ));
        }
    }
    Ok(TinyReport {
        compile,
        first_execute,
        execute_median: median(&mut exec),
        round_trip_median: median(&mut round),
        runs,
    })
}

/// Timings of [`donated_loop`].
#[derive(Debug, Clone)]
pub struct LoopReport {
    pub compile: Duration,
    pub state_bytes: usize,
    pub steps: usize,
    /// Mean wall time per step over `steps` (after 20 warm-up steps).
    pub per_step: Duration,
    /// Steps after which the state was still at the same device address (donation worked): `steps`.
    pub steps_in_place: usize,
}

/// A training-step-shaped loop: `state' = state * 0.5 + x` over `state: f32[n]` (donated, aliased to
/// output 0), a small batch `x: f32[n]` kept on the device, and a step counter; only scalars would come
/// back in a real step. Checks the final state and counter exactly.
pub fn donated_loop(client: &Client, n: i64, steps: usize) -> Result<LoopReport> {
    let module = format!(
        r#"
func.func @main(%state: tensor<{n}xf32> {{tf.aliasing_output = 0 : i32}}, %step: tensor<i32> {{tf.aliasing_output = 1 : i32}}, %x: tensor<{n}xf32>) -> (tensor<{n}xf32>, tensor<i32>) {{
  %half = stablehlo.constant dense<0.5> : tensor<{n}xf32>
  %m = stablehlo.multiply %state, %half : tensor<{n}xf32>
  %s = stablehlo.add %m, %x : tensor<{n}xf32>
  %one = stablehlo.constant dense<1> : tensor<i32>
  %t = stablehlo.add %step, %one : tensor<i32>
  return %s, %t : tensor<{n}xf32>, tensor<i32>
}}"#
    );
    let t = Instant::now();
    let exe = client.compile(&module)?;
    let compile = t.elapsed();
    let len = usize::try_from(n)
        .map_err(|_| Error::invalid("running the donated loop", "negative size"))?;
    // With x = 1 the state converges to the fixed point 2 (s = s/2 + 1), reached exactly in f32.
    let x = client.buffer(&vec![1.0f32; len], &[n])?;
    let mut state = client.buffer(&vec![0.0f32; len], &[n])?;
    let mut step = client.scalar(0i32)?;
    let run = |state, step| -> Result<(Buffer, Buffer)> {
        let out = exe.execute(vec![Arg::Donate(state), Arg::Donate(step), Arg::Keep(&x)])?;
        let [state, step]: [Buffer; 2] = out.try_into().map_err(|v: Vec<Buffer>| {
            mismatch("the number of outputs", v.len().to_string(), "2".into())
        })?;
        Ok((state, step))
    };
    let warmup = 20;
    for _ in 0..warmup {
        (state, step) = run(state, step)?;
    }
    let address = state.device_pointer().ok();
    let mut in_place = 0;
    let t = Instant::now();
    for _ in 0..steps {
        (state, step) = run(state, step)?;
        if address.is_some() && state.device_pointer().ok() == address {
            in_place += 1;
        }
    }
    let elapsed = t.elapsed();
    let count = step.scalar::<i32>()?;
    if count as usize != warmup + steps {
        return Err(mismatch(
            "the step counter",
            count.to_string(),
            (warmup + steps).to_string(),
        ));
    }
    let s = state.to_vec::<f32>()?;
    if warmup + steps >= 30 {
        if let Some(bad) = s.iter().find(|&&v| v != 2.0) {
            return Err(mismatch("the converged state", bad.to_string(), "2".into()));
        }
    }
    Ok(LoopReport {
        compile,
        state_bytes: len * 4,
        steps,
        per_step: elapsed / steps.max(1) as u32,
        steps_in_place: in_place,
    })
}

/// Timings of [`partitioned`].
#[derive(Debug, Clone)]
pub struct PartitionedReport {
    pub devices: usize,
    pub compile: Duration,
    /// Median of `runs` executions (state donated on every device, batch tiles kept).
    pub execute_median: Duration,
    pub runs: usize,
}

/// A data-parallel step partitioned over the client's first `n` devices by XLA's SPMD partitioner:
/// `w' = w − ½·Σ_rows x` with `w: f32[3]` replicated and donated on every device and the `4n` rows
/// of `x` split into one tile per device, `loss = Σ x·w`. The partitioner inserts the all-reduces.
/// Runs it `runs` times and checks every device's `w'` and loss exactly against the host (all
/// values are small integers and halves, exact in f32 in any summation order).
pub fn partitioned(client: &Client, n: usize, runs: usize) -> Result<PartitionedReport> {
    let ctx = "running a partitioned step";
    if n < 2 || client.device_count() < n {
        return Err(Error::invalid(
            ctx,
            format!(
                "needs 2 or more devices, asked for {n}, the client has {}",
                client.device_count()
            ),
        ));
    }
    let rows = 4 * n;
    let module = format!(
        r#"module @netspec_doctor_dp attributes {{mhlo.num_partitions = {n} : i32, mhlo.num_replicas = 1 : i32}} {{
  func.func public @main(%w: tensor<3xf32> {{mhlo.sharding = "{{replicated}}", tf.aliasing_output = 0 : i32}}, %x: tensor<{rows}x3xf32> {{mhlo.sharding = "{{devices=[{n},1]<=[{n}]}}"}}) -> (tensor<3xf32>, tensor<f32>) {{
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %g = stablehlo.reduce(%x init: %zero) applies stablehlo.add across dimensions = [0] : (tensor<{rows}x3xf32>, tensor<f32>) -> tensor<3xf32>
    %h = stablehlo.constant dense<0.5> : tensor<3xf32>
    %s = stablehlo.multiply %g, %h : tensor<3xf32>
    %w2 = stablehlo.subtract %w, %s : tensor<3xf32>
    %wb = stablehlo.broadcast_in_dim %w, dims = [1] : (tensor<3xf32>) -> tensor<{rows}x3xf32>
    %p = stablehlo.multiply %x, %wb : tensor<{rows}x3xf32>
    %l = stablehlo.reduce(%p init: %zero) applies stablehlo.add across dimensions = [0, 1] : (tensor<{rows}x3xf32>, tensor<f32>) -> tensor<f32>
    return %w2, %l : tensor<3xf32>, tensor<f32>
  }}
}}"#
    );
    let t = Instant::now();
    let exe = client.compile_with(&module, &CompileOptions::spmd(n))?;
    let compile = t.elapsed();
    let x: Vec<f32> = (0..rows * 3).map(|i| (i % 7) as f32 - 3.0).collect();
    let tile = rows / n * 3;
    let xs: Vec<Buffer> = (0..n)
        .map(|d| client.buffer_on(d, &x[d * tile..(d + 1) * tile], &[(rows / n) as i64, 3]))
        .collect::<Result<_>>()?;
    let mut w_host = vec![0.5f32, -1.0, 2.0];
    let mut w: Vec<Buffer> = (0..n)
        .map(|d| client.buffer_on(d, &w_host, &[3]))
        .collect::<Result<_>>()?;
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs.max(1) {
        let (mut g, mut loss) = ([0f32; 3], 0f32);
        for row in x.chunks(3) {
            for j in 0..3 {
                g[j] += row[j];
                loss += row[j] * w_host[j];
            }
        }
        let lists = w
            .into_iter()
            .zip(&xs)
            .map(|(w, x)| vec![Arg::Donate(w), Arg::Keep(x)])
            .collect();
        let t = Instant::now();
        let outs = exe.execute_sharded(lists)?;
        times.push(t.elapsed());
        w_host = (0..3).map(|j| w_host[j] - 0.5 * g[j]).collect();
        let mut next = Vec::with_capacity(n);
        for (d, o) in outs.into_iter().enumerate() {
            let [w2, l]: [Buffer; 2] = o.try_into().map_err(|v: Vec<Buffer>| {
                mismatch("the number of outputs", v.len().to_string(), "2".into())
            })?;
            let got = w2.to_vec::<f32>()?;
            if got != w_host {
                return Err(mismatch(
                    &format!("w' on device {d} after run {}", run + 1),
                    format!("{got:?}"),
                    format!("{w_host:?}"),
                ));
            }
            let got = l.scalar::<f32>()?;
            if got != loss {
                return Err(mismatch(
                    &format!("the loss on device {d} in run {}", run + 1),
                    got.to_string(),
                    loss.to_string(),
                ));
            }
            next.push(w2);
        }
        w = next;
    }
    Ok(PartitionedReport {
        devices: n,
        compile,
        execute_median: median(&mut times),
        runs: runs.max(1),
    })
}

fn median(v: &mut [Duration]) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[v.len() / 2]
}

/// `1.23 ms`, `45.6 µs`, `1.20 s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}
