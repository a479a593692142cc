//! `netspec bench-data` through the real binary: the memory test of the streaming sources (a folder larger
//! than the stated bound streams, every file read twice, with the peak resident set growing by less than
//! the bound) and the JSON report.

use std::path::{Path, PathBuf};
use std::process::Command;

fn netspec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netspec"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("netspec-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bytes_below(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                bytes_below(&p)
            } else {
                std::fs::metadata(&p).unwrap().len()
            }
        })
        .sum()
}

#[test]
fn a_folder_larger_than_the_memory_bound_streams_with_peak_rss_under_it() {
    let dir = TempDir::new("bench-data-memory");
    let data = dir.0.to_str().unwrap();
    // 1,200 BMPs of 128×128..192 (about 60 KB each, 72 MB in all); 160 batches of 16 = 2,560 samples, so
    // every file is read at least twice. Two producer threads, random-resized crops to 64×64.
    let (code, out, err) = netspec(&[
        "bench-data",
        data,
        "--generate",
        "1200",
        "--format",
        "bmp",
        "--short-side",
        "128",
        "--threads",
        "2",
        "--size",
        "64",
        "--batch-size",
        "16",
        "--batches",
        "160",
        "--warmup",
        "2",
    ]);
    assert_eq!(code, 0, "stderr: {err}");
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let j: serde_json::Value = serde_json::from_str(line).unwrap();
    let get = |k: &str| j[k].as_u64().unwrap_or_else(|| panic!("{k} in {line}"));
    let (before, peak, bound) = (
        get("rss_before_bytes"),
        get("rss_peak_bytes"),
        get("bound_bytes"),
    );
    let folder = bytes_below(&dir.0);
    eprintln!(
        "folder {:.1} MB, bound {:.1} MB, RSS before {:.1} MB, peak {:.1} MB (reset: {})",
        folder as f64 / 1e6,
        bound as f64 / 1e6,
        before as f64 / 1e6,
        peak as f64 / 1e6,
        j["peak_reset"]
    );
    assert_eq!(j["images"], 2560);
    assert!(
        folder > 4 * bound,
        "the folder ({folder} bytes) must be much larger than the bound ({bound})"
    );
    assert!(
        peak <= before + bound,
        "peak RSS {peak} > {before} + bound {bound}"
    );
    assert!(peak < folder, "the process held as much as the folder");
}

#[test]
fn bad_arguments_and_data_are_errors_that_say_what_to_change() {
    let dir = TempDir::new("bench-data-bad");
    let (code, _, err) = netspec(&["bench-data", dir.0.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not a directory"), "{err}");
    std::fs::create_dir_all(dir.0.join("cat")).unwrap();
    std::fs::write(dir.0.join("cat/x.png"), b"garbage").unwrap();
    let (code, _, err) = netspec(&["bench-data", dir.0.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cat/x.png") && err.contains("not an image"),
        "{err}"
    );
    let (code, _, err) = netspec(&["bench-data", dir.0.to_str().unwrap(), "--augment", "zoom"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown augmentation 'zoom'"), "{err}");
}
