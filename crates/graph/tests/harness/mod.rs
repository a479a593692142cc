//! Shared harness for tests that run modules through the CPU PJRT plugin: one client per test binary,
//! a seeded generator, and host-side helpers.
#![allow(dead_code)]

use std::sync::OnceLock;

use graph::{DType, TensorType};

/// The CPU client, shared by all tests of a binary. Fails the test with a clear message if the plugin is
/// missing.
pub fn client() -> &'static pjrt::Client {
    static CLIENT: OnceLock<pjrt::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        pjrt::Client::cpu().unwrap_or_else(|e| {
            panic!(
                "graph's numerical tests need the CPU PJRT plugin and could not open it: {e}\n\
                 Install it with `./scripts/setup.sh plugin` or point NETSPEC_PJRT_PLUGIN at the .so file."
            )
        })
    })
}

/// SplitMix64: small, seeded, identical on every platform.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Uniform integer in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
    /// A random permutation of 0..n.
    pub fn perm(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.range(0, i);
            p.swap(i, j);
        }
        p
    }
}

/// A device buffer of type `ty` from f64 host values (converted to the element type).
pub fn buffer(ty: &TensorType, data: &[f64]) -> pjrt::Buffer {
    let c = client();
    let dims: Vec<i64> = ty.dims.iter().map(|&d| d as i64).collect();
    let r = match ty.dtype {
        DType::F64 => c.buffer::<f64>(data, &dims),
        DType::F32 => c.buffer::<f32>(&data.iter().map(|&x| x as f32).collect::<Vec<_>>(), &dims),
        DType::I32 => c.buffer::<i32>(&data.iter().map(|&x| x as i32).collect::<Vec<_>>(), &dims),
        DType::U64 => c.buffer::<u64>(&data.iter().map(|&x| x as u64).collect::<Vec<_>>(), &dims),
        other => panic!("test harness: no buffers of {other}"),
    };
    r.unwrap_or_else(|e| panic!("buffer {ty}: {e}"))
}

/// Host copy of a float output as f64.
pub fn to_f64(b: &pjrt::Buffer, dtype: DType) -> Vec<f64> {
    match dtype {
        DType::F64 => b.to_vec::<f64>().unwrap(),
        DType::F32 => b
            .to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(|x| x as f64)
            .collect(),
        other => panic!("test harness: cannot read {other} as f64"),
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Compiles `text` and runs it on `args`.
pub fn run(text: &str, args: &[pjrt::Buffer]) -> Vec<pjrt::Buffer> {
    let exe = client()
        .compile(text)
        .unwrap_or_else(|e| panic!("compile failed: {e}\n{text}"));
    let refs: Vec<&pjrt::Buffer> = args.iter().collect();
    exe.run(&refs)
        .unwrap_or_else(|e| panic!("run failed: {e}\n{text}"))
}
