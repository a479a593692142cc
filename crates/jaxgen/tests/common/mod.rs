//! Shared by the jaxgen tests: the pinned JAX interpreter, scratch directories, the job runner
//! (`tests/oracle/run_jobs.py`, one Python process per call) and safetensors I/O.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use train::checkpoint::{self, DataRef, TensorData, View};

/// The oracle interpreter: `$NETSPEC_ORACLE_PYTHON`, else the venv of `scripts/setup/oracle.sh`.
/// Panics (the test fails) with the fix when it is missing: the oracle is part of the test suite.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("NETSPEC_ORACLE_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "NETSPEC_ORACLE_PYTHON={} does not exist",
            p.display()
        );
        return p;
    }
    let home = std::env::var_os("NETSPEC_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is not set")).join(".cache")
                });
            cache.join("netspec")
        });
    let p = home.join("oracle/jax-0.10.2/bin/python");
    assert!(
        p.is_file(),
        "the JAX oracle interpreter is missing: {} not found.\nFix: run scripts/setup/oracle.sh \
         (or set NETSPEC_ORACLE_PYTHON to a python with jax 0.10.2)",
        p.display()
    );
    p
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jaxgen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// Runs `jobs` (see run_jobs.py) in one Python process; returns one result object per job.
/// Panics if the process fails or any job reports an error.
pub fn run_jobs(dir: &Path, jobs: &[Value]) -> Vec<Value> {
    let jobs_path = dir.join("jobs.json");
    let results_path = dir.join("results.json");
    std::fs::write(
        &jobs_path,
        serde_json::to_string_pretty(&Value::Array(jobs.to_vec())).unwrap(),
    )
    .unwrap();
    let out = Command::new(python())
        .arg(repo_root().join("tests/oracle/run_jobs.py"))
        .arg(&jobs_path)
        .arg(&results_path)
        .env("JAX_PLATFORMS", "cpu")
        .output()
        .expect("starting the oracle python");
    assert!(
        out.status.success(),
        "run_jobs.py failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&results_path).unwrap()).unwrap();
    assert_eq!(results.len(), jobs.len());
    for (job, r) in jobs.iter().zip(&results) {
        assert!(
            r["ok"] == Value::Bool(true),
            "oracle job {job} failed:\n{}",
            r["error"].as_str().unwrap_or("?")
        );
    }
    results
}

/// Writes f32/i32 tensors as safetensors (netspec's writer).
pub fn write_tensors(
    path: &Path,
    f32s: &[(&str, Vec<usize>, &[f32])],
    i32s: &[(&str, Vec<usize>, &[i32])],
) {
    let mut views: Vec<View<'_>> = f32s
        .iter()
        .map(|(n, s, d)| View {
            name: n,
            shape: s,
            data: DataRef::F32(d),
        })
        .collect();
    views.extend(i32s.iter().map(|(n, s, d)| View {
        name: n,
        shape: s,
        data: DataRef::I32(d),
    }));
    checkpoint::write(path, &views, &Default::default()).expect("writing safetensors");
}

/// Reads the f32 tensors of a safetensors file by name.
pub fn read_f32(path: &Path) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let ck = checkpoint::read(path).expect("reading safetensors");
    ck.tensors
        .into_iter()
        .filter_map(|t| match t.data {
            TensorData::F32(d) => Some((t.name, (t.shape, d))),
            TensorData::I32(_) => None,
        })
        .collect()
}
