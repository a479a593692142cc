//! Transparent huge pages for XLA:CPU's per-step buffers.
//!
//! XLA:CPU allocates each execution's temporary buffer with `malloc` (136 MB for a mnist-cnn train
//! step at batch 128) and frees it when the step ends; glibc serves a block that large from a fresh
//! `mmap` and unmaps it on `free`, so every step faults the whole block in again, 4 KiB at a time:
//! `perf` put 23 % of a mnist-cnn step in the kernel (`clear_page_erms`, `exc_page_fault`,
//! `unmap_page_range`). glibc's tunable `glibc.malloc.hugetlb=1` makes it ask for transparent huge
//! pages on its mappings (`madvise`), which cuts the faults 512-fold: mnist-cnn 154–160 → 124–126
//! ms per step, resnet18 at 32×32 281–284 → 248–251 ms (`netspec bench … --batch-size 128`, quiet
//! machine, alternated), with the same peak memory. (Keeping freed memory instead, with
//! `mallopt(M_ARENA_MAX = 1, M_MMAP_MAX = 0)`, was as fast but fragmented: cifar-cnn-bn's peak RSS grew
//! from 1.35 to 2.06 GB over 150 steps.)
//!
//! **Arenas.** glibc gives threads their own malloc arenas, up to 8 per core, and keeps what is freed
//! in each for reuse. A training run starts new threads every epoch (the evaluation's batch
//! producers) besides XLA's pool, and the resident set grew in steps at epoch ends: mnist-mlp on
//! Fashion-MNIST, +31.1 MiB from epoch 1 to epoch 20 with glibc's 16 arenas on this 2-core machine
//! (`scripts/soak.sh`, BENCHMARKS.md). With `glibc.malloc.arena_max` = the number of cores (here 2)
//! the growth is 0 MiB over the same 20 epochs and the resident set 31 MiB smaller; `arena_max=1`
//! also gives 0 MiB (on a 6,000-image subset, 30 epochs: 16 arenas +26.3 MiB, 2 and 1 arenas 0 MiB).
//! Step times of `netspec bench mnist-mlp --e2e` with 16 or 2 arenas differed by less than the noise
//! of the loaded machine they were taken on (load 17–18).
//!
//! Tunables are read when the process starts, so `netspec` re-executes itself once with the tunables
//! added to `GLIBC_TUNABLES`, unless they are already there (a user's `glibc.malloc.hugetlb=0` or
//! `arena_max` is kept) or `NETSPEC_MALLOC=system` asks for glibc's defaults (for comparisons).

use std::os::unix::process::CommandExt;

const TUNABLE: &str = "glibc.malloc.hugetlb";
const ARENA_MAX: &str = "glibc.malloc.arena_max";

/// Re-executes the current program with `glibc.malloc.hugetlb=1` and `glibc.malloc.arena_max=<cores>`
/// in `GLIBC_TUNABLES` when they are not set yet (glibc on Linux only). Returns only when no
/// re-execution happens or it failed.
pub fn use_huge_pages() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    if std::env::var_os("NETSPEC_MALLOC").is_some_and(|v| v == "system") {
        return;
    }
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut tunables: Vec<String> = current
        .split(':')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    let before = tunables.len();
    for (name, value) in [(TUNABLE, "1".to_string()), (ARENA_MAX, cores.to_string())] {
        if !tunables.iter().any(|t| t.starts_with(name)) {
            tunables.push(format!("{name}={value}"));
        }
    }
    if tunables.len() == before {
        return;
    }
    let tunables = tunables.join(":");
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into());
    // `exec` only returns on failure; then we simply run with glibc's defaults.
    let _ = std::process::Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
}
