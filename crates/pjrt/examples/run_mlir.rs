//! Times any StableHLO module on a plugin, with the state loop a training step has: every input that
//! carries `tf.aliasing_output = k` is donated and replaced by output `k` after each call, the others
//! are kept. Inputs are synthetic (f32 noise in [−0.5, 0.5), integers `i mod 10`, scalars 0 except f32
//! scalars 1e-3). For comparing modules from different emitters on one XLA, e.g. JAX's lowered step
//! against netspec's: `cargo run --release -p pjrt --example run_mlir -- FILE.mlir [STEPS]`.

use std::time::Instant;

use pjrt::{Arg, Buffer, Client, ElementType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: run_mlir FILE.mlir [STEPS]")?;
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let mlir = std::fs::read_to_string(&path)?;
    let client = Client::cpu()?;
    let t = Instant::now();
    let exe = client.compile(&mlir)?;
    let compile_s = t.elapsed().as_secs_f64();
    let params = exe
        .params()
        .ok_or("cannot read @main's signature")?
        .to_vec();
    let mut inputs: Vec<Option<Buffer>> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let ty = p.ty.as_ref().ok_or("a parameter that is not a tensor")?;
        let dims: Vec<i64> = ty.dims.iter().map(|d| d.unwrap_or(1)).collect();
        let n = dims.iter().product::<i64>() as usize;
        let b = match ty.element_type {
            ElementType::F32 if dims.is_empty() => client.scalar(1e-3f32)?,
            ElementType::F32 => {
                let v: Vec<f32> = (0..n)
                    .map(|k| ((k * 7919 + i * 31) % 1000) as f32 / 1000.0 - 0.5)
                    .collect();
                client.buffer(&v, &dims)?
            }
            ElementType::S32 if dims.is_empty() => client.scalar(0i32)?,
            ElementType::S32 => {
                let v: Vec<i32> = (0..n).map(|k| (k % 10) as i32).collect();
                client.buffer(&v, &dims)?
            }
            other => return Err(format!("input {i}: element type {other:?} not handled").into()),
        };
        inputs.push(Some(b));
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps + 5 {
        let t = Instant::now();
        let args: Vec<Arg> = params
            .iter()
            .zip(inputs.iter_mut())
            .map(|(p, b)| match p.aliasing_output {
                Some(_) => Arg::Donate(b.take().expect("refilled after every call")),
                None => Arg::Keep(b.as_ref().expect("kept inputs stay")),
            })
            .collect();
        let outs = exe.execute(args)?;
        let mut outs: Vec<Option<Buffer>> = outs.into_iter().map(Some).collect();
        for (p, b) in params.iter().zip(inputs.iter_mut()) {
            if let Some(k) = p.aliasing_output {
                *b = outs[k].take();
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut steady = times[5..].to_vec();
    steady.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{path}: compile {compile_s:.2} s, median {:.3} ms, min {:.3} ms over {steps} calls",
        steady[steady.len() / 2],
        steady[0]
    );
    Ok(())
}
