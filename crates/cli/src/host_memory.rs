//! Host memory: how the process allocates, for XLA:CPU's per-step buffers and a long run's resident set.
//!
//! **The allocator is mimalloc** (the `mimalloc` feature, on by default), linked with its `override`
//! option: it defines `malloc`, `free`, `posix_memalign`… in the executable, so the dynamically loaded
//! PJRT plugin allocates from it too. XLA:CPU allocates each execution's temporary buffer with
//! `posix_memalign` (136 MB for a mnist-cnn train step at batch 128) and frees it when the step ends.
//! glibc serves a block that large from a fresh `mmap` and unmaps it on `free`, so every step the kernel
//! faulted the block in again and zeroed it (`perf`, steady state, mnist-cnn: 19 % of the step in the
//! kernel, `clear_page_erms` and `exc_page_fault` on top); transparent huge pages (below) cut the faults
//! but not the zeroing, and when the kernel finds no free 2 MiB page the faults come back 4 KiB at a time
//! (measured here: 34 k or 930 k page faults over the same 26-step run, depending on the moment).
//! mimalloc keeps freed memory for reuse and returns it to the kernel only after it has stayed unused for
//! `PURGE_DELAY_MS`; a step frees its buffer and the next step takes it back well within that, so the
//! buffer is faulted once per run. Measurements: BENCHMARKS.md, "Host memory: the allocator".
//!
//! **Without the feature** (glibc's malloc), `netspec` re-executes itself once with
//! `glibc.malloc.hugetlb=1` (transparent huge pages on malloc's mappings: 512× fewer faults when the kernel
//! has huge pages to give) and `glibc.malloc.arena_max` = the number of cores added to `GLIBC_TUNABLES`:
//! glibc gives threads up to 8 arenas per core and a run that starts threads every epoch (evaluation's
//! batch producers) grew its resident set 31.1 MiB over 20 mnist-mlp epochs with 16 arenas and 0 with 2
//! (`scripts/soak.sh`). `NETSPEC_MALLOC=system` skips the re-execution (glibc's defaults, for comparisons).
//! Tunables are read when the process starts, hence the re-execution; a user's own `hugetlb` or
//! `arena_max` setting is kept.

use std::os::unix::process::CommandExt;

const TUNABLE: &str = "glibc.malloc.hugetlb";
const ARENA_MAX: &str = "glibc.malloc.arena_max";

/// Re-executes the current program with `glibc.malloc.hugetlb=1` and `glibc.malloc.arena_max=<cores>`
/// in `GLIBC_TUNABLES` when they are not set yet (glibc on Linux only). Returns only when no
/// re-execution happens or it failed.
#[cfg_attr(feature = "mimalloc", allow(dead_code))]
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

/// How long (ms) mimalloc keeps freed memory before returning it to the kernel. mimalloc's default is
/// 10 ms: between two train steps netspec reads the loss back and does its host work, and under load that
/// gap exceeded 10 ms, so the buffer was purged and faulted in again (BENCHMARKS.md). One second covers
/// any gap between steps and still gives memory back when a run goes idle (evaluation, checkpoints).
#[cfg(feature = "mimalloc")]
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// `mi_option_purge_delay` in the mimalloc 3 header (`mi_option_t`, pinned by Cargo.lock through
/// libmimalloc-sys, which does not name it); `tests::purge_delay_option_is_the_one_mimalloc_reads`
/// checks it against the environment variable mimalloc reads for it.
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The process's malloc, as `netspec bench` reports it.
#[cfg(feature = "mimalloc")]
pub const ALLOCATOR: &str = "mimalloc";
#[cfg(not(feature = "mimalloc"))]
pub const ALLOCATOR: &str = "glibc";

/// Sets the process's allocation policy; call first thing in `main`, before the plugin is loaded.
pub fn configure() {
    #[cfg(feature = "mimalloc")]
    {
        // A user's MIMALLOC_PURGE_DELAY wins (mimalloc read it at start-up).
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: sets one integer option; mimalloc reads options atomically.
            unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
        }
    }
    #[cfg(not(feature = "mimalloc"))]
    use_huge_pages();
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    use super::*;

    /// Option 15 is the purge delay: its value is mimalloc's documented default (10 ms) unless the
    /// environment names one (`MIMALLOC_PURGE_DELAY`, read at start-up), and `configure` sets it.
    #[test]
    fn purge_delay_option_is_the_one_mimalloc_reads() {
        let from_env = std::env::var("MIMALLOC_PURGE_DELAY").ok().and_then(|v| v.parse().ok());
        // SAFETY: reads one integer option.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(before, from_env.unwrap_or(10));
        configure();
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, from_env.unwrap_or(PURGE_DELAY_MS));
    }
}
