//! Several CPU devices in one client (`cpu_device_count`) and one program partitioned over them by
//! XLA's SPMD partitioner: buffers placed per device, one sharded execute with donation per device,
//! results equal to the host's, and every wrong call refused in Rust, quickly, before the plugin
//! sees it (a wrong call that reached the plugin would leave the other devices waiting in a
//! collective and abort the process).

use std::time::{Duration, Instant};

use pjrt::{Arg, Buffer, Client, ClientOptions, CompileOptions, Device, Executable};

fn client(n: usize) -> Client {
    let opts = ClientOptions {
        cpu_device_count: Some(n as i64),
        ..ClientOptions::default()
    };
    Client::open_with(Device::Cpu, None, &opts).unwrap_or_else(|e| {
        panic!("these tests need the PJRT CPU plugin (./scripts/setup.sh plugin): {e}")
    })
}

/// One data-parallel step: `w` (replicated, donated) and a batch `x` of `rows` rows cut into `n`
/// tiles. `w' = w − ½·Σ_rows x`, `loss = Σ x·w`; the partitioner inserts the all-reduces.
fn step_module(n: usize, rows: usize) -> String {
    format!(
        r#"module @dp attributes {{mhlo.num_partitions = {n} : i32, mhlo.num_replicas = 1 : i32}} {{
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
    )
}

fn compile(c: &Client, n: usize, rows: usize) -> Executable {
    c.compile_with(&step_module(n, rows), &CompileOptions::spmd(n))
        .unwrap_or_else(|e| panic!("compiling the {n}-partition step: {e}"))
}

/// The host's step: `(w', loss)`.
fn host_step(w: &[f32], x: &[f32]) -> (Vec<f32>, f32) {
    let mut g = [0f32; 3];
    let mut loss = 0f32;
    for row in x.chunks(3) {
        for j in 0..3 {
            g[j] += row[j];
            loss += row[j] * w[j];
        }
    }
    ((0..3).map(|j| w[j] - 0.5 * g[j]).collect(), loss)
}

/// `x`'s rows cut into `n` tiles, tile `d` on device `d`.
fn shards(c: &Client, x: &[f32], n: usize) -> Vec<Buffer> {
    let rows = x.len() / 3;
    (0..n)
        .map(|d| {
            let tile = &x[d * rows / n * 3..(d + 1) * rows / n * 3];
            c.buffer_on(d, tile, &[(rows / n) as i64, 3]).unwrap()
        })
        .collect()
}

fn quick<T>(what: &str, f: impl FnOnce() -> pjrt::Result<T>) -> String {
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

fn data_parallel_steps(n: usize) {
    let c = client(n);
    assert_eq!(c.device_count(), n);
    for d in 0..n {
        let b = c.buffer_on(d, &[1f32, 2.], &[2]).unwrap();
        assert_eq!(b.device().unwrap(), d);
    }
    assert!(c.buffer_on(n, &[1f32], &[1]).is_err());

    let exe = compile(&c, n, 8);
    assert_eq!(exe.devices(), (0..n).collect::<Vec<_>>());
    let x: Vec<f32> = (0..24).map(|i| (i % 7) as f32 - 3.0).collect();
    let mut w_host = vec![0.5f32, -1.0, 2.0];
    let mut w: Vec<Buffer> = (0..n)
        .map(|d| c.buffer_on(d, &w_host, &[3]).unwrap())
        .collect();
    let xs = shards(&c, &x, n);
    for step in 0..2 {
        let lists = w
            .into_iter()
            .zip(&xs)
            .map(|(w, x)| vec![Arg::Donate(w), Arg::Keep(x)])
            .collect();
        let (outs, consumed) = exe.execute_sharded_report(lists).unwrap();
        // Donation per device: each device's w became its w'.
        assert!(
            consumed.iter().all(|c| c[..] == [true, false]),
            "{consumed:?}"
        );
        let (want_w, want_loss) = host_step(&w_host, &x);
        for (d, o) in outs.iter().enumerate() {
            assert_eq!(o[0].device().unwrap(), d);
            assert_eq!(
                o[0].to_vec::<f32>().unwrap(),
                want_w,
                "step {step} device {d}"
            );
            assert_eq!(
                o[1].scalar::<f32>().unwrap(),
                want_loss,
                "step {step} device {d}"
            );
        }
        w_host = want_w;
        w = outs.into_iter().map(|mut o| o.swap_remove(0)).collect();
    }

    // Wrong calls: refused in Rust, in well under a second.
    let ws = |c: &Client| -> Vec<Buffer> {
        (0..n)
            .map(|d| c.buffer_on(d, &w_host, &[3]).unwrap())
            .collect()
    };
    let w = ws(&c);
    let e = quick("one list", || {
        exe.execute_sharded(vec![vec![Arg::Keep(&w[0]), Arg::Keep(&xs[0])]])
    });
    assert!(
        e.contains(&format!("runs on {n} devices, 1 argument lists")),
        "{e}"
    );
    let e = quick("execute", || {
        exe.execute(vec![Arg::Keep(&w[0]), Arg::Keep(&xs[0])])
    });
    assert!(e.contains("execute_sharded"), "{e}");
    // Device 0's list holds device 1's tile.
    let e = quick("misplaced", || {
        let lists = (0..n)
            .map(|d| vec![Arg::Keep(&w[d]), Arg::Keep(&xs[(d + 1) % n])])
            .collect();
        exe.execute_sharded(lists)
    });
    assert!(
        e.contains("for device 0") && e.contains("client device 1"),
        "{e}"
    );
    // The whole batch on every device instead of its tile.
    let whole: Vec<Buffer> = (0..n)
        .map(|d| c.buffer_on(d, &x, &[8, 3]).unwrap())
        .collect();
    let e = quick("global shape", || {
        let lists = (0..n)
            .map(|d| vec![Arg::Keep(&w[d]), Arg::Keep(&whole[d])])
            .collect();
        exe.execute_sharded(lists)
    });
    assert!(e.contains("its shard") && e.contains("[8, 3]"), "{e}");
    // Donated on one device, kept on the others.
    let e = quick("donation", || {
        let mut w = ws(&c).into_iter();
        let first = w.next().unwrap();
        let rest: Vec<Buffer> = w.collect();
        let mut lists = vec![vec![Arg::Donate(first), Arg::Keep(&xs[0])]];
        for (d, b) in rest.iter().enumerate() {
            lists.push(vec![Arg::Keep(b), Arg::Keep(&xs[d + 1])]);
        }
        exe.execute_sharded(lists)
    });
    assert!(e.contains("donated on some devices"), "{e}");
    // A missing argument.
    let e = quick("arity", || {
        exe.execute_sharded((0..n).map(|d| vec![Arg::Keep(&w[d])]).collect())
    });
    assert!(e.contains("takes 2 arguments"), "{e}");

    // After all of that, the devices still run the program.
    let lists = (0..n)
        .map(|d| vec![Arg::Keep(&w[d]), Arg::Keep(&xs[d])])
        .collect();
    let outs = exe.execute_sharded(lists).unwrap();
    assert_eq!(
        outs[n - 1][1].scalar::<f32>().unwrap(),
        host_step(&w_host, &x).1
    );
}

#[test]
fn two_devices_run_one_partitioned_step() {
    data_parallel_steps(2);
}

#[test]
fn four_devices_run_one_partitioned_step() {
    data_parallel_steps(4);
}

#[test]
fn a_batch_the_devices_do_not_divide_is_refused() {
    // 6 rows over 4 partitions: XLA compiles it (padding the tiles); execute refuses to guess the
    // tiles' shapes.
    let c = client(4);
    let exe = compile(&c, 4, 6);
    let w: Vec<Buffer> = (0..4)
        .map(|d| c.buffer_on(d, &[0f32; 3], &[3]).unwrap())
        .collect();
    let x: Vec<Buffer> = (0..4)
        .map(|d| c.buffer_on(d, &[0f32; 6], &[2, 3]).unwrap())
        .collect();
    let e = quick("6 rows on 4 devices", || {
        exe.execute_sharded(
            (0..4)
                .map(|d| vec![Arg::Keep(&w[d]), Arg::Keep(&x[d])])
                .collect(),
        )
    });
    assert!(e.contains("does not fit its sharding"), "{e}");
}
