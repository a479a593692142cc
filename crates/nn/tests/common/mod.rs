//! Shared test helpers: one PJRT CPU client per test binary, uploads of host tensors by slot, runs.
#![allow(dead_code)]

use std::sync::OnceLock;

use nn::{ElemType, Program, Slot};

/// The CPU client shared by every test of this binary. Fails (never skips) when the plugin is missing.
pub fn client() -> &'static pjrt::Client {
    static C: OnceLock<pjrt::Client> = OnceLock::new();
    C.get_or_init(|| match pjrt::Client::cpu() {
        Ok(c) => c,
        Err(e) => panic!("these tests need the PJRT CPU plugin (run scripts/setup/plugin.sh): {e}"),
    })
}

/// A host tensor for one slot.
#[derive(Clone, Debug)]
pub enum Host {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl Host {
    pub fn f32(&self) -> &[f32] {
        match self {
            Host::F32(v) => v,
            Host::I32(_) => panic!("expected an f32 tensor"),
        }
    }
    pub fn i32(&self) -> &[i32] {
        match self {
            Host::I32(v) => v,
            Host::F32(_) => panic!("expected an i32 tensor"),
        }
    }
}

pub fn upload(slot: &Slot, h: &Host) -> pjrt::Buffer {
    let dims: Vec<i64> = slot.dims.iter().map(|&d| d as i64).collect();
    let n: usize = slot.dims.iter().product();
    match (slot.elem, h) {
        (ElemType::F32, Host::F32(v)) => {
            assert_eq!(v.len(), n, "slot {:?}", slot.kind);
            client().buffer(v, &dims).unwrap()
        }
        (ElemType::I32, Host::I32(v)) => {
            assert_eq!(v.len(), n, "slot {:?}", slot.kind);
            client().buffer(v, &dims).unwrap()
        }
        (e, h) => panic!("slot {:?} is {e:?}, host tensor {h:?}", slot.kind),
    }
}

pub fn download(slot: &Slot, b: &pjrt::Buffer) -> Host {
    let dims: Vec<i64> = slot.dims.iter().map(|&d| d as i64).collect();
    assert_eq!(
        b.dims(),
        dims,
        "output {:?} has dims {:?}",
        slot.kind,
        b.dims()
    );
    match slot.elem {
        ElemType::F32 => Host::F32(b.to_vec::<f32>().unwrap()),
        ElemType::I32 => Host::I32(b.to_vec::<i32>().unwrap()),
    }
}

/// Compiles a program (panics with the MLIR head on failure).
pub fn compile(p: &Program) -> pjrt::Executable {
    match client().compile(&p.mlir) {
        Ok(e) => e,
        Err(e) => panic!("compile failed: {e}\n{}", &p.mlir[..p.mlir.len().min(4000)]),
    }
}

/// Uploads, runs (nothing donated) and downloads.
pub fn run(p: &Program, exe: &pjrt::Executable, args: &[Host]) -> Vec<Host> {
    assert_eq!(args.len(), p.inputs.len());
    let bufs: Vec<pjrt::Buffer> = p
        .inputs
        .iter()
        .zip(args)
        .map(|(s, h)| upload(s, h))
        .collect();
    let refs: Vec<&pjrt::Buffer> = bufs.iter().collect();
    let outs = exe.run(&refs).unwrap();
    assert_eq!(outs.len(), p.outputs.len());
    p.outputs
        .iter()
        .zip(&outs)
        .map(|(s, b)| download(s, b))
        .collect()
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut r = spec::SplitMix64::new(seed);
    (0..n)
        .map(|_| ((r.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0)
        .collect()
}
