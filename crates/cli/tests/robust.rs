//! The binary never panics and fails early: a closed stdout, bad input files (the corpus in
//! `tests/bad_inputs/`, each case's exact message pinned), signals (SIGTERM, repeated interrupts)
//! and temporary files left by a killed save.

use std::process::{Command, Stdio};

/// A command whose stdout is a pipe nobody reads (the reader closed it before the first write) ends
/// quietly with status 141, as `netspec zoo | head -1` does once `head` has left.
#[test]
fn closed_stdout_ends_quietly_with_status_141() {
    for args in [
        &["zoo"][..],
        &["zoo", "mnist-mlp"],
        &["summary", "mnist-mlp"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_netspec"))
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}");
    }
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use train::checkpoint::{self, DataRef, TensorData, View};
use train::run::{CheckpointMeta, EpochSums, META_KEY};

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netspec-robust-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the binary in `dir`: (status, stdout, stderr).
fn netspec_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netspec"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A checkpoint's tensors and metadata, to be damaged by a corpus case before writing.
struct Ck {
    tensors: Vec<(String, Vec<usize>, TensorData)>,
    meta: serde_json::Value,
}

/// mnist-mlp's training state at `step` as its recipe's train step has it (values 0.01; the
/// preflight checks do not look at what the numbers mean), and its metadata.
fn mlp_checkpoint(step: u64) -> Ck {
    let spec = spec::zoo::get("mnist-mlp").unwrap();
    let config = spec::RunConfig::default_for(&spec);
    let program = nn::train_step(&spec, &config).unwrap();
    let mut tensors = Vec::new();
    for slot in &program.inputs {
        let Some(name) = train::runner::state_name(&slot.kind) else {
            continue;
        };
        let n: usize = slot.dims.iter().product();
        let data = match slot.elem {
            nn::ElemType::F32 => TensorData::F32(vec![0.01; n]),
            nn::ElemType::I32 => TensorData::I32(vec![step as i32; n]),
        };
        tensors.push((name.to_string(), slot.dims.clone(), data));
    }
    let per_epoch = 60_000 / config.batch_size as u64;
    let sums = EpochSums {
        loss: 0.5 * (step % per_epoch) as f64,
        correct: 10 * (step % per_epoch),
        steps: step % per_epoch,
    };
    let meta = CheckpointMeta::at(&spec, &config, step, per_epoch, sums);
    Ck {
        tensors,
        meta: serde_json::to_value(&meta).unwrap(),
    }
}

impl Ck {
    fn write(&self, path: &Path) {
        let views: Vec<View<'_>> = self
            .tensors
            .iter()
            .map(|(name, shape, data)| View {
                name,
                shape,
                data: match data {
                    TensorData::F32(v) => DataRef::F32(v),
                    TensorData::I32(v) => DataRef::I32(v),
                },
            })
            .collect();
        let md = BTreeMap::from([(META_KEY.to_string(), self.meta.to_string())]);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        checkpoint::write(path, &views, &md).unwrap();
    }

    fn f32_mut(&mut self, name: &str) -> &mut Vec<f32> {
        match self.tensors.iter_mut().find(|t| t.0 == name) {
            Some((_, _, TensorData::F32(v))) => v,
            _ => panic!("no F32 tensor {name}"),
        }
    }

    fn remove(&mut self, name: &str) {
        self.tensors.retain(|t| t.0 != name);
    }
}

/// Parameters only (an init file): the checkpoint without optimizer state and step.
fn init_of(mut ck: Ck) -> Ck {
    ck.tensors
        .retain(|t| !t.0.starts_with("opt.") && t.0 != "step");
    ck.meta = serde_json::Value::Null;
    ck
}

fn write_init(ck: &Ck, path: &Path) {
    let views: Vec<View<'_>> = ck
        .tensors
        .iter()
        .map(|(name, shape, data)| View {
            name,
            shape,
            data: match data {
                TensorData::F32(v) => DataRef::F32(v),
                TensorData::I32(v) => DataRef::I32(v),
            },
        })
        .collect();
    checkpoint::write(path, &views, &BTreeMap::new()).unwrap();
}

fn plugin() -> PathBuf {
    pjrt::find_plugin(pjrt::Device::Cpu, None).expect("the CPU plugin (scripts/setup.sh plugin)")
}

/// One corpus case: it prepares files in its directory and returns the command's arguments.
type Case = (&'static str, fn(&Path) -> Vec<String>);

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn resume_with(dir: &Path, damage: fn(&mut Ck)) -> Vec<String> {
    let mut ck = mlp_checkpoint(100);
    damage(&mut ck);
    ck.write(&dir.join("ck/last.safetensors"));
    args(&["train", "mnist-mlp", "--checkpoint-dir", "ck", "--resume"])
}

fn eval_with(dir: &Path, damage: fn(&mut Ck)) -> Vec<String> {
    let mut ck = mlp_checkpoint(100);
    damage(&mut ck);
    ck.write(&dir.join("ck/last.safetensors"));
    args(&["eval", "mnist-mlp", "--checkpoint", "ck"])
}

fn init_with(dir: &Path, damage: fn(&mut Ck)) -> Vec<String> {
    let mut ck = init_of(mlp_checkpoint(0));
    damage(&mut ck);
    write_init(&ck, &dir.join("init.safetensors"));
    args(&[
        "train",
        "mnist-mlp",
        "--init",
        "init.safetensors",
        "--checkpoint-dir",
        "ck",
    ])
}

fn plugin_with(dir: &Path, bytes: Vec<u8>) -> Vec<String> {
    std::fs::write(dir.join("plugin.so"), bytes).unwrap();
    args(&[
        "train",
        "mnist-mlp",
        "--plugin",
        "plugin.so",
        "--checkpoint-dir",
        "ck",
    ])
}

/// The bad-input corpus: each case's directory, command and (in `tests/bad_inputs/<case>.err`) the
/// exact error it must give. Every one is found before the data is loaded or anything compiled.
const CASES: &[Case] = &[
    ("checkpoint_dir_under_a_file", |d| {
        std::fs::write(d.join("file"), "x").unwrap();
        args(&["train", "mnist-mlp", "--checkpoint-dir", "file/ck"])
    }),
    ("trace_directory_missing", |_| {
        args(&[
            "train",
            "mnist-mlp",
            "--checkpoint-dir",
            "ck",
            "--trace",
            "no/such/dir/t.jsonl",
        ])
    }),
    ("trace_is_a_directory", |d| {
        std::fs::create_dir_all(d.join("traces")).unwrap();
        args(&[
            "train",
            "mnist-mlp",
            "--checkpoint-dir",
            "ck",
            "--trace",
            "traces",
        ])
    }),
    ("resume_missing_tensor", |d| {
        resume_with(d, |ck| ck.remove("opt.v.l2.w"))
    }),
    ("resume_wrong_shape", |d| {
        resume_with(d, |ck| {
            let t = ck.tensors.iter_mut().find(|t| t.0 == "l3.b").unwrap();
            t.1 = vec![5, 2];
        })
    }),
    ("resume_wrong_dtype", |d| {
        resume_with(d, |ck| {
            let t = ck.tensors.iter_mut().find(|t| t.0 == "l3.b").unwrap();
            t.2 = TensorData::I32(vec![0; 10]);
        })
    }),
    ("resume_nan_weight", |d| {
        resume_with(d, |ck| ck.f32_mut("l1.w")[17] = f32::NAN)
    }),
    ("resume_infinite_moment", |d| {
        resume_with(d, |ck| ck.f32_mut("opt.m.l1.b")[0] = f32::INFINITY)
    }),
    ("resume_extra_tensor", |d| {
        resume_with(d, |ck| {
            ck.tensors
                .push(("l9.w".into(), vec![2], TensorData::F32(vec![0.0; 2])))
        })
    }),
    ("resume_step_tensor_disagrees", |d| {
        resume_with(d, |ck| {
            let t = ck.tensors.iter_mut().find(|t| t.0 == "step").unwrap();
            t.2 = TensorData::I32(vec![7]);
        })
    }),
    ("resume_negative_step", |d| {
        resume_with(d, |ck| {
            let t = ck.tensors.iter_mut().find(|t| t.0 == "step").unwrap();
            t.2 = TensorData::I32(vec![-3]);
        })
    }),
    ("resume_position_disagrees", |d| {
        resume_with(d, |ck| ck.meta["position"]["batch"] = 99.into())
    }),
    ("resume_epoch_sums_disagree", |d| {
        resume_with(d, |ck| ck.meta["epoch_sums"]["steps"] = 3.into())
    }),
    ("resume_step_past_the_end", |d| {
        let mut ck = mlp_checkpoint(100);
        ck.meta["step"] = 1_000_000.into();
        ck.meta["position"] = serde_json::json!({"epoch": 2136, "batch": 352});
        ck.meta["epoch_sums"]["steps"] = 352.into();
        let t = ck.tensors.iter_mut().find(|t| t.0 == "step").unwrap();
        t.2 = TensorData::I32(vec![1_000_000]);
        ck.write(&d.join("ck/last.safetensors"));
        args(&["train", "mnist-mlp", "--checkpoint-dir", "ck", "--resume"])
    }),
    ("resume_zero_steps_per_epoch", |d| {
        resume_with(d, |ck| ck.meta["steps_per_epoch"] = 0.into())
    }),
    ("resume_metadata_not_json", |d| {
        resume_with(d, |ck| {
            ck.meta = serde_json::Value::String("{\"format\":".into())
        })
    }),
    ("resume_truncated_file", |d| {
        mlp_checkpoint(100).write(&d.join("ck/last.safetensors"));
        let p = d.join("ck/last.safetensors");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
        args(&["train", "mnist-mlp", "--checkpoint-dir", "ck", "--resume"])
    }),
    ("init_nan_weight", |d| {
        init_with(d, |ck| ck.f32_mut("l2.w")[3] = f32::NAN)
    }),
    ("init_i32_tensor", |d| {
        init_with(d, |ck| {
            let t = ck.tensors.iter_mut().find(|t| t.0 == "l3.b").unwrap();
            t.2 = TensorData::I32(vec![0; 10]);
        })
    }),
    ("init_missing_parameter", |d| {
        init_with(d, |ck| ck.remove("l1.w"))
    }),
    ("init_and_resume", |d| {
        mlp_checkpoint(100).write(&d.join("ck/last.safetensors"));
        write_init(&init_of(mlp_checkpoint(0)), &d.join("init.safetensors"));
        args(&[
            "train",
            "mnist-mlp",
            "--checkpoint-dir",
            "ck",
            "--resume",
            "--init",
            "init.safetensors",
        ])
    }),
    ("eval_nan_weight", |d| {
        eval_with(d, |ck| ck.f32_mut("l1.b")[2] = f32::NAN)
    }),
    ("eval_missing_tensor", |d| {
        eval_with(d, |ck| ck.remove("l2.w"))
    }),
    ("eval_step_disagrees", |d| {
        eval_with(d, |ck| ck.meta["step"] = 101.into())
    }),
    ("plugin_missing", |_| {
        args(&[
            "train",
            "mnist-mlp",
            "--plugin",
            "nowhere.so",
            "--checkpoint-dir",
            "ck",
        ])
    }),
    ("plugin_text_file", |d| {
        plugin_with(d, "not a library, just text: ".repeat(8).into_bytes())
    }),
    ("plugin_empty", |d| plugin_with(d, Vec::new())),
    ("plugin_truncated", |d| {
        let mut bytes = vec![0u8; 1 << 20];
        let mut f = std::fs::File::open(plugin()).unwrap();
        std::io::Read::read_exact(&mut f, &mut bytes).unwrap();
        plugin_with(d, bytes)
    }),
    ("plugin_32_bit", |d| {
        let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_netspec")).unwrap()[..4096].to_vec();
        bytes[4] = 1;
        plugin_with(d, bytes)
    }),
    ("plugin_without_get_pjrt_api", |d| {
        plugin_with(d, std::fs::read(env!("CARGO_BIN_EXE_netspec")).unwrap())
    }),
];

/// Every corpus case fails with exit status 1, before loading data (no `data:` line), with exactly
/// the message in its `.err` file (`UPDATE_EXPECT=1` rewrites them).
#[test]
fn bad_input_corpus() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let root = tmp("corpus");
    let mut failures = Vec::new();
    for (name, make) in CASES {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let a = make(&dir);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let t0 = Instant::now();
        let (code, _, err) = netspec_in(&dir, &a);
        let took = t0.elapsed();
        // Paths inside the case's directory are pinned relative to it.
        let prefix = format!("{}/", dir.display());
        let got: String = err
            .lines()
            .filter(|l| l.starts_with("error: "))
            .map(|l| format!("{}\n", l.replace(&prefix, "")))
            .collect();
        assert_eq!(code, 1, "{name}: {err}");
        assert!(
            !err.lines().any(|l| l.starts_with("data: ")),
            "{name}: found only after loading the data: {err}"
        );
        assert!(took < Duration::from_secs(20), "{name}: {took:?}");
        let file = golden.join(format!("{name}.err"));
        if update {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&file, &got).unwrap();
        } else {
            let want = std::fs::read_to_string(&file).unwrap_or_default();
            if want != got {
                failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first `n_train` / `n_test` Fashion-MNIST images as plain IDX files in `dir`.
fn subset(dir: &Path, n_train: usize, n_test: usize) {
    use train::data::{self, DatasetKind, Split};
    let src = DatasetKind::FashionMnist.default_dir().unwrap();
    for (split, prefix, n) in [
        (Split::Train, "train", n_train),
        (Split::Test, "t10k", n_test),
    ] {
        let ds = data::load(&src, DatasetKind::FashionMnist, split)
            .expect("Fashion-MNIST (scripts/setup/data.sh)");
        let mut img = Vec::new();
        for v in [2051u32, n as u32, ds.h as u32, ds.w as u32] {
            img.extend_from_slice(&v.to_be_bytes());
        }
        img.extend_from_slice(&ds.images[..n * ds.image_len()]);
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
        let mut lab = Vec::new();
        for v in [2049u32, n as u32] {
            lab.extend_from_slice(&v.to_be_bytes());
        }
        lab.extend_from_slice(&ds.labels[..n]);
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
    }
}

fn step_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| l.contains("\"kind\":\"step\""))
                .count()
        })
        .unwrap_or(0)
}

/// A long mnist-mlp run in `dir` (30 steps per epoch, 20 epochs), started in the background.
fn start_run(dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_netspec"))
        .args([
            "train",
            "mnist-mlp",
            "--data",
            ".",
            "--batch-size",
            "100",
            "--epochs",
            "20",
            "--trace",
            "t.jsonl",
            "--checkpoint-dir",
            "ck",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_steps(dir: &Path, n: usize) {
    let t0 = Instant::now();
    while step_lines(&dir.join("t.jsonl")) < n {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no {n} steps within 300 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// The step a checkpoint file holds (its metadata), if the file exists.
fn saved_step(path: &Path) -> Option<u64> {
    path.is_file()
        .then(|| train::run::resume_info(path).unwrap().1.step)
}

/// No temporary file of a save is left in the checkpoint directory.
fn no_temporaries(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        let left: Vec<_> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// SIGTERM (what schedulers and `docker stop` send) is Ctrl-C: the run finishes its step, saves,
/// exits 1 naming the file, and the file holds the step the message names.
#[test]
fn sigterm_finishes_the_step_and_saves() {
    signal_finishes_the_step_and_saves("-TERM", "sigterm");
}

/// SIGHUP (the terminal or ssh session went away) is handled the same way.
#[test]
fn sighup_finishes_the_step_and_saves() {
    signal_finishes_the_step_and_saves("-HUP", "sighup");
}

fn signal_finishes_the_step_and_saves(sig: &str, tag: &str) {
    let dir = tmp(tag);
    subset(&dir, 3000, 500);
    let child = start_run(&dir);
    wait_for_steps(&dir, 3);
    signal(&child, sig);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    let step: u64 = last
        .strip_prefix("error: interrupted after step ")
        .and_then(|r| r.split(';').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        last.ends_with("saved ck/last.safetensors (continue with --resume ck/last.safetensors)"),
        "{last}"
    );
    assert_eq!(saved_step(&dir.join("ck/last.safetensors")), Some(step));
    no_temporaries(&dir.join("ck"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two interrupts in a row: the process ends at once (130) or after its save (1), and its last
/// line says truthfully what is on disk: before any epoch end, nothing (and no file exists); after
/// one, the step the file holds.
#[test]
fn a_second_interrupt_says_truthfully_what_was_saved() {
    for (tag, wait_steps) in [("before-save", 3), ("after-epoch", 35)] {
        let dir = tmp(&format!("double-{tag}"));
        subset(&dir, 3000, 500);
        let child = start_run(&dir);
        wait_for_steps(&dir, wait_steps);
        signal(&child, "-INT");
        signal(&child, "-TERM");
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        let file = dir.join("ck/last.safetensors");
        let on_disk = saved_step(&file);
        println!(
            "{tag}: status {:?}, on disk {on_disk:?}: {last}",
            out.status.code()
        );
        match out.status.code() {
            Some(130) => match on_disk {
                None => assert!(
                    last.ends_with("exiting now; this run saved nothing"),
                    "{tag}: {err}"
                ),
                Some(s) => assert!(
                    last.contains(&format!(
                        "ck/last.safetensors holds step {s}, saved by this run"
                    )),
                    "{tag}: {s}: {err}"
                ),
            },
            Some(1) => {
                let s = on_disk.unwrap_or_else(|| panic!("{tag}: {err}"));
                assert!(
                    last.starts_with(&format!(
                        "error: interrupted after step {s}; saved ck/last.safetensors"
                    )),
                    "{tag}: {err}"
                );
            }
            other => panic!("{tag}: status {other:?}: {err}"),
        }
        if wait_steps > 30 {
            assert!(on_disk.is_some_and(|s| s >= 30), "{tag}: {err}");
        }
        no_temporaries(&dir.join("ck"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Temporary files that a killed save left (a `kill -9` between the write and the rename) are
/// removed when the next run starts, and said so; a live process's temporary file is kept.
#[test]
fn stale_temporaries_are_removed_at_the_next_start() {
    let dir = tmp("stale");
    std::fs::create_dir_all(dir.join("ck")).unwrap();
    let dead = dir.join("ck/.last.safetensors.tmp-99999999-0");
    let trace_tmp = dir.join(".t.jsonl.tmp-99999998-3");
    let live = dir.join(format!("ck/.last.safetensors.tmp-{}-0", std::process::id()));
    for p in [&dead, &trace_tmp, &live] {
        std::fs::write(p, b"half a checkpoint").unwrap();
    }
    // The run stops at the missing data, after the checks.
    let (code, _, err) = netspec_in(
        &dir,
        &[
            "train",
            "mnist-mlp",
            "--data",
            "nodata",
            "--checkpoint-dir",
            "ck",
            "--trace",
            "t.jsonl",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!dead.exists() && !trace_tmp.exists(), "{err}");
    assert!(live.exists(), "a live process's temporary file was removed");
    assert!(
        err.contains("removed ck/.last.safetensors.tmp-99999999-0, a temporary file left by a save that was killed"),
        "{err}"
    );
    assert!(
        err.contains("removed ./.t.jsonl.tmp-99999998-3")
            || err.contains("removed .t.jsonl.tmp-99999998-3"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
