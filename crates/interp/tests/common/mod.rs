//! Shared by the interpreter's agreement tests: one PJRT CPU client, host tensors ⇄ device buffers,
//! XLA runs of a graph, and the norm-wise comparison.
#![allow(dead_code)]

use std::sync::OnceLock;

use graph::{DType, Graph, TensorType};
use interp::{Data, Tensor};

/// The CPU client shared by every test of a binary. Fails (never skips) when the plugin is missing.
pub fn client() -> &'static pjrt::Client {
    static C: OnceLock<pjrt::Client> = OnceLock::new();
    C.get_or_init(|| match pjrt::Client::cpu() {
        Ok(c) => c,
        Err(e) => panic!("these tests need the PJRT CPU plugin (run scripts/setup/plugin.sh): {e}"),
    })
}

/// A device buffer holding `t`.
pub fn to_buffer(t: &Tensor) -> pjrt::Buffer {
    let c = client();
    let dims: Vec<i64> = t.ty.dims.iter().map(|&d| d as i64).collect();
    let r = match (&t.data, t.ty.dtype) {
        (Data::Float(v), DType::F32) => {
            c.buffer::<f32>(&v.iter().map(|&x| x as f32).collect::<Vec<_>>(), &dims)
        }
        (Data::Float(v), DType::F64) => c.buffer::<f64>(v, &dims),
        (Data::Int(v), DType::I32) => {
            c.buffer::<i32>(&v.iter().map(|&x| x as i32).collect::<Vec<_>>(), &dims)
        }
        (Data::Int(v), DType::I64) => c.buffer::<i64>(v, &dims),
        (Data::UInt(v), DType::U8) => {
            c.buffer::<u8>(&v.iter().map(|&x| x as u8).collect::<Vec<_>>(), &dims)
        }
        (Data::UInt(v), DType::U32) => {
            c.buffer::<u32>(&v.iter().map(|&x| x as u32).collect::<Vec<_>>(), &dims)
        }
        (Data::UInt(v), DType::U64) => c.buffer::<u64>(v, &dims),
        (Data::Pred(v), DType::Pred) => c.buffer::<bool>(v, &dims),
        (_, dt) => panic!("test harness: no buffers of {dt}"),
    };
    r.unwrap_or_else(|e| panic!("buffer {}: {e}", t.ty))
}

/// The host copy of a device buffer of type `ty`.
pub fn from_buffer(b: &pjrt::Buffer, ty: &TensorType) -> Tensor {
    let want: Vec<i64> = ty.dims.iter().map(|&d| d as i64).collect();
    assert_eq!(b.dims(), want, "buffer dims for {ty}");
    let data = match ty.dtype {
        DType::F32 => Data::Float(
            b.to_vec::<f32>()
                .unwrap()
                .into_iter()
                .map(|x| x as f64)
                .collect(),
        ),
        DType::F64 => Data::Float(b.to_vec::<f64>().unwrap()),
        DType::I32 => Data::Int(
            b.to_vec::<i32>()
                .unwrap()
                .into_iter()
                .map(|x| x as i64)
                .collect(),
        ),
        DType::I64 => Data::Int(b.to_vec::<i64>().unwrap()),
        DType::U8 => Data::UInt(
            b.to_vec::<u8>()
                .unwrap()
                .into_iter()
                .map(|x| x as u64)
                .collect(),
        ),
        DType::U32 => Data::UInt(
            b.to_vec::<u32>()
                .unwrap()
                .into_iter()
                .map(|x| x as u64)
                .collect(),
        ),
        DType::U64 => Data::UInt(b.to_vec::<u64>().unwrap()),
        DType::Pred => Data::Pred(b.to_vec::<bool>().unwrap()),
        DType::BF16 => panic!("test harness: no bf16 reads"),
    };
    Tensor::new(ty.clone(), data).unwrap()
}

/// Output types of a graph.
pub fn out_types(g: &Graph) -> Vec<TensorType> {
    g.outputs().iter().map(|&v| g.ty(v).clone()).collect()
}

/// Compiles `text` (a printing of a graph with outputs `outs`) and runs it on `args` through XLA.
pub fn run_xla_text(text: &str, outs: &[TensorType], args: &[Tensor]) -> Vec<Tensor> {
    let exe = client()
        .compile(text)
        .unwrap_or_else(|e| panic!("compile failed: {e}\n{}", &text[..text.len().min(3000)]));
    run_exe(&exe, outs, args)
}

/// Runs a compiled program (nothing donated).
pub fn run_exe(exe: &pjrt::Executable, outs: &[TensorType], args: &[Tensor]) -> Vec<Tensor> {
    let bufs: Vec<pjrt::Buffer> = args.iter().map(to_buffer).collect();
    let refs: Vec<&pjrt::Buffer> = bufs.iter().collect();
    let res = exe.run(&refs).unwrap_or_else(|e| panic!("run failed: {e}"));
    assert_eq!(res.len(), outs.len());
    res.iter()
        .zip(outs)
        .map(|(b, t)| from_buffer(b, t))
        .collect()
}

/// Prints `g` and runs it through XLA.
pub fn run_xla(g: &Graph, args: &[Tensor]) -> Vec<Tensor> {
    let text = graph::print_module(g).unwrap();
    run_xla_text(&text, &out_types(g), args)
}

/// How far `got` is from `want`: norm-wise relative error `max|got − want| / max(‖want‖∞, floor)` for
/// floats (NaN anywhere = infinite unless both are NaN at the same places); 0 or ∞ (any difference) for
/// integers and predicates.
pub fn distance(got: &Tensor, want: &Tensor, floor: f64) -> f64 {
    assert_eq!(got.ty, want.ty);
    match (&got.data, &want.data) {
        (Data::Float(a), Data::Float(b)) => {
            let mut num = 0.0f64;
            let mut den = floor;
            for (&x, &y) in a.iter().zip(b) {
                if x.is_nan() || y.is_nan() {
                    if x.is_nan() != y.is_nan() {
                        return f64::INFINITY;
                    }
                    continue;
                }
                if x.is_infinite() || y.is_infinite() {
                    if x != y {
                        return f64::INFINITY;
                    }
                    continue;
                }
                num = num.max((x - y).abs());
                den = den.max(y.abs());
            }
            num / den
        }
        (a, b) => {
            if a == b {
                0.0
            } else {
                f64::INFINITY
            }
        }
    }
}

/// SplitMix64 values in [-1, 1) (deterministic test data).
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}
