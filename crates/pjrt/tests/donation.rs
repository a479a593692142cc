//! Donation: outputs reuse donated inputs' memory, donated handles are consumed, and a 1,000-step loop
//! that feeds donated outputs back as inputs (no host copies) keeps process memory flat.

mod common;
use common::client;
use pjrt::{Arg, Buffer};

const N: i64 = 1 << 20; // 1M f32 = 4 MiB of state

fn step_module() -> String {
    // state' = state + lr, step' = step + 1; state and step are aliased to outputs 0 and 1.
    format!(
        r#"
func.func @main(%state: tensor<{N}xf32> {{tf.aliasing_output = 0 : i32}}, %step: tensor<i32> {{tf.aliasing_output = 1 : i32}}, %lr: tensor<f32>) -> (tensor<{N}xf32>, tensor<i32>) {{
  %b = stablehlo.broadcast_in_dim %lr, dims = [] : (tensor<f32>) -> tensor<{N}xf32>
  %s = stablehlo.add %state, %b : tensor<{N}xf32>
  %one = stablehlo.constant dense<1> : tensor<i32>
  %t = stablehlo.add %step, %one : tensor<i32>
  return %s, %t : tensor<{N}xf32>, tensor<i32>
}}"#
    )
}

/// Resident set size of this process in bytes (VmRSS from /proc/self/status).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn donated_input_memory_is_reused_and_the_handle_consumed() {
    let c = client();
    let exe = c.compile(&step_module()).unwrap();
    let lr = c.scalar(0.5f32).unwrap();
    let state = c.buffer(&vec![1.0f32; N as usize], &[N]).unwrap();
    let step = c.scalar(0i32).unwrap();

    // Kept: the output gets new memory and the input stays valid and unchanged.
    let in_ptr = state.device_pointer().unwrap();
    let (out, consumed) = exe
        .execute_report(vec![Arg::Keep(&state), Arg::Keep(&step), Arg::Keep(&lr)])
        .unwrap();
    assert_eq!(consumed, [false, false, false]);
    assert_ne!(out[0].device_pointer().unwrap(), in_ptr);
    assert_eq!(state.to_vec::<f32>().unwrap()[..3], [1.0, 1.0, 1.0]);
    assert_eq!(out[0].to_vec::<f32>().unwrap()[..3], [1.5, 1.5, 1.5]);

    // Donated: the plugin deletes the input and output 0 lives at the input's address.
    let (out2, consumed) = exe
        .execute_report(vec![Arg::Donate(state), Arg::Donate(step), Arg::Keep(&lr)])
        .unwrap();
    assert_eq!(
        consumed,
        [true, true, false],
        "donated inputs are consumed, the kept one is not"
    );
    assert_eq!(
        out2[0].device_pointer().unwrap(),
        in_ptr,
        "output 0 reuses the donated state's memory"
    );
    assert_eq!(out2[0].to_vec::<f32>().unwrap()[..3], [1.5, 1.5, 1.5]);
    assert_eq!(out2[1].scalar::<i32>().unwrap(), 1);
    assert_eq!(lr.scalar::<f32>().unwrap(), 0.5);
}

#[test]
fn donating_an_input_without_an_alias_just_consumes_the_handle() {
    let c = client();
    let exe = c
        .compile(
            r#"
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = stablehlo.negate %x : tensor<4xf32>
  return %0 : tensor<4xf32>
}"#,
        )
        .unwrap();
    let x = c.buffer(&[1f32, 2., 3., 4.], &[4]).unwrap();
    let (out, consumed) = exe.execute_report(vec![Arg::Donate(x)]).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![-1., -2., -3., -4.]);
    // Without `tf.aliasing_output` the plugin does not take the buffer over; our handle is dropped.
    assert_eq!(consumed, [false]);
}

#[test]
fn thousand_donated_steps_keep_memory_flat() {
    let c = client();
    let exe = c.compile(&step_module()).unwrap();
    let lr = c.scalar(0.5f32).unwrap();
    let mut state: Buffer = c.buffer(&vec![0.0f32; N as usize], &[N]).unwrap();
    let mut step: Buffer = c.scalar(0i32).unwrap();
    let run = |state: Buffer, step: Buffer| -> (Buffer, Buffer) {
        let mut out = exe
            .execute(vec![Arg::Donate(state), Arg::Donate(step), Arg::Keep(&lr)])
            .unwrap();
        let step = out.pop().unwrap();
        (out.pop().unwrap(), step)
    };
    // Warm-up: first executions allocate thread pools and caches.
    for _ in 0..50 {
        (state, step) = run(state, step);
    }
    let ptr = state.device_pointer().unwrap();
    let before = rss_bytes();
    let mut moved = 0;
    for _ in 0..1000 {
        (state, step) = run(state, step);
        if state.device_pointer().unwrap() != ptr {
            moved += 1;
        }
    }
    let after = rss_bytes();
    let growth = after as i64 - before as i64;
    eprintln!(
        "RSS before {} KiB, after {} KiB, growth {} KiB",
        before / 1024,
        after / 1024,
        growth / 1024
    );
    assert_eq!(
        moved, 0,
        "with donation the state never moves in device memory"
    );
    // A leak of one 4 MiB buffer per step would grow RSS by ~4 GiB.
    assert!(
        growth < 16 << 20,
        "RSS grew by {} KiB over 1000 donated steps",
        growth / 1024
    );
    assert_eq!(step.scalar::<i32>().unwrap(), 1050);
    // 1050 additions of 0.5 to 0.0 are exact in f32.
    let s = state.to_vec::<f32>().unwrap();
    assert!(s.iter().all(|&v| v == 525.0), "state = {:?}…", &s[..4]);
}
