//! Logit parity with the reference PyTorch models, and the weights round trip through their names.
//!
//! For every zoo model that is a torchvision or timm model (a `train::exchange` family fits it; the
//! set is checked against the models the zoo's doc claims), one Python process
//! (`tests/parity/torch_parity.py`) builds the reference with random weights (BN statistics calibrated
//! and perturbed), writes its `state_dict()` with `safetensors.torch.save_file`, random images, and its
//! eval-mode logits in float64 and float32. Then, per model: the state dict is read as `netspec train
//! --init` reads it (names recognised, layouts converted), netspec's predict program runs at batch 2
//! on the same images, and its logits must be within 1e-5 of the float64 reference relative to its
//! largest logit, or within twice PyTorch's own float32 error where that is larger (resnet50); the weights exported again in the
//! reference's names (`netspec export --names`) must equal the state dict tensor for tensor, bit for bit.
//!
//! Needs the PyTorch venv (`scripts/setup/parity.sh`, 2.4 GB of wheels): run with `scripts/parity.sh`.
//! The test is `#[ignore]`d so that the suite does not download PyTorch (README, "PyTorch parity").

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::TempDir;
use serde_json::{json, Value};
use train::checkpoint::{self, Checkpoint, TensorData};
use train::exchange::{self, Family};
use train::predict::Predictor;

/// The zoo models whose doc (`spec::zoo`'s table) names a torchvision or timm reference.
const CLAIMED: [&str; 10] = [
    "resnet18",
    "resnet34",
    "resnet50",
    "squeezenet-1.1",
    "mobilenet-v2",
    "mobilenet-v3-large",
    "efficientnet-b0",
    "efficientnet-v2-s",
    "mobilenet-v4-medium",
    "vit-tiny",
];
const BATCH: usize = 2;
const RTOL: f64 = 1e-5;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("NETSPEC_PARITY_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("NETSPEC_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("netspec")
        });
    let p = home.join("parity/torch-2.15.0-tv-0.29.2-timm-1.0.31/bin/python");
    assert!(
        p.is_file(),
        "the PyTorch parity interpreter is missing: {} not found.\nFix: run scripts/setup/parity.sh \
         (or set NETSPEC_PARITY_PYTHON)",
        p.display()
    );
    p
}

fn read_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap();
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn read_f64(path: &Path) -> Vec<f64> {
    let b = std::fs::read(path).unwrap();
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Every tensor's name, dtype and shape, sorted by name.
fn header(path: &Path) -> Vec<(String, String, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut v: Vec<_> = meta
        .tensors()
        .into_iter()
        .map(|(n, i)| (n, format!("{:?}", i.dtype), i.shape.clone()))
        .collect();
    v.sort();
    v
}

/// Tensor values by their bits, by name.
fn bits(c: &Checkpoint) -> BTreeMap<String, (Vec<usize>, Vec<u32>)> {
    c.tensors
        .iter()
        .map(|t| {
            let v = match &t.data {
                TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
                TensorData::I32(v) => v.iter().map(|&x| x as u32).collect(),
            };
            (t.name.clone(), (t.shape.clone(), v))
        })
        .collect()
}

#[test]
#[ignore = "needs the PyTorch venv (scripts/setup/parity.sh); run scripts/parity.sh"]
fn zoo_logits_match_the_reference_models_and_weights_round_trip() {
    let py = python();
    // NETSPEC_PARITY_DIR keeps the files (weights, inputs, logits) for inspection;
    // NETSPEC_PARITY_MODELS=a,b checks only those models.
    let tmp = TempDir::new("parity");
    let dir = std::env::var_os("NETSPEC_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let only: Option<Vec<String>> = std::env::var("NETSPEC_PARITY_MODELS")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    let client = train::device::Executor::open(pjrt::Device::Cpu, None)
        .expect("CPU plugin (scripts/setup.sh plugin)");

    // Which zoo models have a family: exactly the claimed ones.
    let mut families: BTreeMap<&str, Family> = BTreeMap::new();
    for &name in spec::zoo::names() {
        let spec = spec::zoo::get(name).unwrap();
        let fits: Vec<Family> = Family::ALL
            .into_iter()
            .filter(|&f| exchange::name_map(&spec, f).unwrap().is_some())
            .collect();
        assert!(fits.len() <= 1, "{name}: several families fit: {fits:?}");
        if let Some(f) = fits.first() {
            families.insert(name, *f);
        }
    }
    let fitted: Vec<&str> = families.keys().copied().collect();
    let mut claimed = CLAIMED.to_vec();
    claimed.sort();
    assert_eq!(
        fitted, claimed,
        "zoo models with a torchvision/timm name map"
    );

    let jobs: Vec<Value> = CLAIMED
        .iter()
        .filter(|&&name| only.as_ref().is_none_or(|o| o.iter().any(|m| m == name)))
        .map(|&name| {
            let spec = spec::zoo::get(name).unwrap();
            json!({
                "model": name,
                "classes": spec.num_classes,
                "batch": BATCH,
                "input": spec.input,
                "weights": dir.join(format!("{name}.safetensors")),
                "x": dir.join(format!("{name}.x")),
                "logits": dir.join(format!("{name}.logits64")),
                "logits32": dir.join(format!("{name}.logits32")),
            })
        })
        .collect();
    let jobs_file = dir.join("jobs.json");
    std::fs::write(&jobs_file, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let results_file = dir.join("results.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/parity/torch_parity.py");
    let t0 = std::time::Instant::now();
    let st = Command::new(&py)
        .arg(&script)
        .arg(&jobs_file)
        .arg(&results_file)
        .status()
        .expect("running the parity script");
    assert!(st.success(), "{} failed", script.display());
    eprintln!("python (all models): {:.1} s", t0.elapsed().as_secs_f64());
    let res: Value = serde_json::from_slice(&std::fs::read(&results_file).unwrap()).unwrap();
    eprintln!(
        "torch {} torchvision {} timm {} ({} threads)",
        res["torch"], res["torchvision"], res["timm"], res["threads"]
    );

    let mut failures = Vec::new();
    for (r, job) in res["results"].as_array().unwrap().iter().zip(&jobs) {
        let name = r["model"].as_str().unwrap();
        if r["ok"] != true {
            failures.push(format!("{name}: {}", r["error"].as_str().unwrap_or("?")));
            continue;
        }
        let spec = spec::zoo::get(name).unwrap();
        let path = |k: &str| PathBuf::from(job[k].as_str().unwrap());

        // The reference's state dict, read as `netspec train --init` reads it.
        let weights = path("weights");
        let init = exchange::read_init(&spec, &weights).unwrap();
        assert_eq!(init.convention, families[name].convention(), "{name}");
        assert_eq!(init.family, Some(families[name]), "{name}");
        assert!(init.fresh_head.is_empty(), "{name}");

        // netspec's eval logits on the reference's input vs the reference's (float64) logits.
        let t0 = std::time::Instant::now();
        let p = Predictor::new(&client, &spec, BATCH, &init.tensors, name).unwrap();
        let x = read_f32(&path("x"));
        let got = p.logits(&x).unwrap();
        let want = read_f64(&path("logits"));
        let want32 = read_f32(&path("logits32"));
        let ref_max = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let rel = |a: &[f32]| {
            a.iter()
                .zip(&want)
                .map(|(&g, &w)| (g as f64 - w).abs())
                .fold(0.0, f64::max)
                / ref_max
        };
        let (rel_netspec, rel_torch) = (rel(&got), rel(&want32));
        eprintln!(
            "{name:20} max|ref| {ref_max:9.3e}  netspec rel {rel_netspec:.2e}  torch f32 rel {rel_torch:.2e}  \
             compile {:.1} s, predict {:.1} s; python {:.1} s",
            p.compile_time().as_secs_f64(),
            t0.elapsed().as_secs_f64() - p.compile_time().as_secs_f64(),
            r["seconds"].as_f64().unwrap()
        );
        // 1e-5, unless PyTorch's own float32 logits of this model are further than half of that
        // from float64: then netspec may be as far as twice PyTorch's own float32 error (resnet50:
        // PyTorch float32 alone is 7.5e-6 to 2.2e-5 off, depending on the random weights; netspec 1.1e-5
        // on the seeded draw).
        let tol = RTOL.max(2.0 * rel_torch);
        if rel_netspec.is_nan() || rel_netspec > tol {
            failures.push(format!(
                "{name}: logits differ by {rel_netspec:.2e} relative (> {tol:.2e})"
            ));
        }

        // torchvision/timm -> netspec -> torchvision/timm: the same tensors, bit for bit, and the
        // same names (with every BN's num_batches_tracked).
        let ck = Checkpoint {
            tensors: init.tensors.into_values().collect(),
            metadata: Default::default(),
        };
        let back = exchange::export(&spec, &ck, &weights, init.convention, 7).unwrap();
        let again = dir.join(format!("{name}.again.safetensors"));
        back.write(&again).unwrap();
        if header(&weights) != header(&again) {
            failures.push(format!(
                "{name}: the round trip changed names, dtypes or shapes"
            ));
        }
        let skip = |n: &str| n.ends_with(exchange::BATCHES_TRACKED);
        let a = checkpoint::read_skipping(&weights, &skip).unwrap();
        let b = checkpoint::read_skipping(&again, &skip).unwrap();
        if bits(&a) != bits(&b) {
            failures.push(format!("{name}: the round trip changed tensor values"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
