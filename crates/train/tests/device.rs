//! `train::device::Executor` on several CPU devices: values placed per device (replicated or split
//! along the batch), one partitioned execution with per-device donation, results read per device.
//! The program is hand-written (a data-parallel step with `mhlo.sharding` attributes), since `nn`
//! does not emit partitioned programs yet.

use train::checkpoint::TensorData;
use train::device::{Arg, Executor, HostSlice, Placement};

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
    nn::Program { mlir, ..any }
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
