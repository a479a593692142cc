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
//! Tunables are read when the process starts, so `netspec` re-executes itself once with the tunable
//! added to `GLIBC_TUNABLES`, unless it is already there (a user's `glibc.malloc.hugetlb=0` is kept) or
//! `NETSPEC_MALLOC=system` asks for glibc's defaults (for comparisons).

use std::os::unix::process::CommandExt;

const TUNABLE: &str = "glibc.malloc.hugetlb";

/// Re-executes the current program with `glibc.malloc.hugetlb=1` in `GLIBC_TUNABLES` when that is
/// not set yet (glibc on Linux only). Returns only when no re-execution happens or it failed.
pub fn use_huge_pages() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    if std::env::var_os("NETSPEC_MALLOC").is_some_and(|v| v == "system") {
        return;
    }
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.split(':').any(|t| t.starts_with(TUNABLE)) {
        return;
    }
    let tunables = if current.is_empty() {
        format!("{TUNABLE}=1")
    } else {
        format!("{current}:{TUNABLE}=1")
    };
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
