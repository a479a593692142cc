//! Keeps XLA:CPU's per-step temporary buffer between steps.
//!
//! XLA:CPU allocates each execution's temporary buffer with `posix_memalign` (136 MB for a mnist-cnn
//! train step at batch 128) and frees it when the step ends. glibc serves a block that large from a
//! fresh `mmap` and unmaps it on `free`, so every step the kernel maps, faults in and zeroes the whole
//! block again (`host_memory.rs` has the profile; transparent huge pages cut the faults but not the
//! zeroing, and only when the kernel has free 2 MiB pages at that moment).
//!
//! This module interposes `posix_memalign`, `free` and `realloc` in the `netspec` executable (the
//! plugin's calls bind to the executable's definitions first) and changes one thing: a block of at
//! least [`MIN_BLOCK`] bytes from `posix_memalign` is not given back to glibc when it is freed but kept
//! for the next request of the same size, so from the second step on the buffer is already mapped,
//! faulted in and (with `glibc.malloc.hugetlb=1`) backed by huge pages. Everything else goes straight
//! to glibc (`__libc_memalign`, `__libc_free`, `__libc_realloc`).
//!
//! Bounds: idle blocks never add up to more than the most large-block bytes ever live at once (the
//! high-water mark), and on a miss the least recently used idle blocks are released until the new block
//! fits under that mark beside the live ones. The kept blocks are glibc's own chunks, so
//! `malloc_usable_size` and the final `__libc_free` work on them unchanged.
//!
//! Measured (BENCHMARKS.md, "Session 6"): `compare.py --netspec-b`, this build against the one without
//! it in the same rounds: CPU time per step 0.813× (mnist-cnn), 0.923× (cifar-cnn-bn), 0.952×
//! (resnet18-32), wall 0.76×, 0.82×, 0.90×. The gain is the kept block's transparent huge pages, no longer
//! zeroed every step: with `glibc.malloc.hugetlb=0` the cache saves nothing measurable. The price can be
//! resident memory: a kept huge-page block may stay fully resident where a fresh one was only partly
//! touched (peak RSS unchanged in the compare runs, but +90–150 MiB in two standalone cifar-cnn-bn and
//! resnet18-32 runs).
//!
//! Off unless [`enable`] is called (the `netspec` binary does, unless `NETSPEC_MALLOC=system`); the
//! module is only built for glibc on Linux (`main.rs`).

#![allow(clippy::missing_safety_doc)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Blocks at least this large are kept between uses.
pub const MIN_BLOCK: usize = 8 << 20;
/// How many kept-or-live large blocks the table tracks (beyond it, blocks go to glibc as usual).
const SLOTS: usize = 16;

const EMPTY: usize = 0;
const LIVE: usize = 1;
const IDLE: usize = 2;

struct Slot {
    addr: AtomicUsize,
    len: AtomicUsize,
    state: AtomicUsize,
    /// When it last became idle (a counter), for releasing the least recently used first.
    stamp: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const NEW_SLOT: Slot = Slot {
    addr: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    state: AtomicUsize::new(EMPTY),
    stamp: AtomicUsize::new(0),
};
static CLOCK: AtomicUsize = AtomicUsize::new(0);
static TABLE: [Slot; SLOTS] = [NEW_SLOT; SLOTS];
static LOCK: AtomicBool = AtomicBool::new(false);
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Requests served by a kept block, and blocks handed to glibc for a large request (for tests and
/// `NETSPEC_BLOCK_CACHE_STATS`).
static HITS: AtomicUsize = AtomicUsize::new(0);
static MISSES: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
    fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void;
}

/// Turns the cache on (idempotent).
pub fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// (requests served by a kept block, large requests that went to glibc).
pub fn stats() -> (usize, usize) {
    (HITS.load(Ordering::Relaxed), MISSES.load(Ordering::Relaxed))
}

struct Guard;
fn lock() -> Guard {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
    Guard
}
impl Drop for Guard {
    fn drop(&mut self) {
        LOCK.store(false, Ordering::Release);
    }
}

/// The slot holding live block `p`, if any. Lock-free first look (every `free` in the process comes
/// here); callers re-check under the lock.
fn find_live(p: usize) -> Option<usize> {
    // Most frees in the process (compilation makes millions) happen with no large block live.
    if LIVE_COUNT.load(Ordering::Acquire) == 0 {
        return None;
    }
    (0..SLOTS).find(|&i| {
        TABLE[i].state.load(Ordering::Acquire) == LIVE && TABLE[i].addr.load(Ordering::Acquire) == p
    })
}

/// Bytes in tracked live blocks, in idle kept blocks, and the most ever live at once (guarded by
/// `LOCK`). Idle bytes never exceed the high-water mark: the cache keeps at most what the process
/// once needed at the same moment.
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static IDLE_BYTES: AtomicUsize = AtomicUsize::new(0);
static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);
/// Tracked live blocks (the lock-free early exit of `free`).
static LIVE_COUNT: AtomicUsize = AtomicUsize::new(0);

/// A kept block for `size` bytes: the smallest idle block of that size or of at most 1/8 more. On a
/// miss, the least recently used idle blocks are released until live + idle + the new block fit under
/// the high-water mark, so a new block never raises the peak beside idle ones.
fn take(size: usize) -> Option<*mut c_void> {
    let mut release = [0usize; SLOTS];
    let found = {
        let _g = lock();
        let r = Ordering::Relaxed;
        let fits = |i: usize| {
            let len = TABLE[i].len.load(r);
            TABLE[i].state.load(r) == IDLE && len >= size && len - size <= size / 8
        };
        match (0..SLOTS)
            .filter(|&i| fits(i))
            .min_by_key(|&i| TABLE[i].len.load(r))
        {
            Some(i) => {
                let len = TABLE[i].len.load(r);
                IDLE_BYTES.fetch_sub(len, r);
                LIVE_BYTES.fetch_add(len, r);
                LIVE_COUNT.fetch_add(1, Ordering::Release);
                TABLE[i].state.store(LIVE, Ordering::Release);
                Some(TABLE[i].addr.load(r))
            }
            None => {
                let budget = HIGH_WATER.load(r);
                release_idle(&mut release, |idle| {
                    idle + LIVE_BYTES.load(r) + size > budget
                });
                None
            }
        }
    };
    for p in release.into_iter().filter(|&p| p != 0) {
        unsafe { __libc_free(p as *mut c_void) };
    }
    found.map(|p| p as *mut c_void)
}

/// Under the lock: empties the least recently used idle slots while `over(idle bytes)` holds, writing
/// their addresses to `out` for the caller to free after unlocking.
fn release_idle(out: &mut [usize; SLOTS], over: impl Fn(usize) -> bool) {
    let r = Ordering::Relaxed;
    let mut n = 0;
    while over(IDLE_BYTES.load(r)) {
        let Some(j) = (0..SLOTS)
            .filter(|&j| TABLE[j].state.load(r) == IDLE)
            .min_by_key(|&j| TABLE[j].stamp.load(r))
        else {
            break;
        };
        IDLE_BYTES.fetch_sub(TABLE[j].len.load(r), r);
        out[n] = TABLE[j].addr.load(r);
        n += 1;
        TABLE[j].state.store(EMPTY, Ordering::Release);
    }
}

/// Records a new live large block (untracked if the table is full: it then lives and dies in glibc).
fn track(p: usize, size: usize) {
    let _g = lock();
    let r = Ordering::Relaxed;
    let free_slot = (0..SLOTS).find(|&i| TABLE[i].state.load(r) == EMPTY);
    if let Some(i) = free_slot {
        TABLE[i].addr.store(p, r);
        TABLE[i].len.store(size, r);
        LIVE_COUNT.fetch_add(1, Ordering::Release);
        TABLE[i].state.store(LIVE, Ordering::Release);
        let live = LIVE_BYTES.fetch_add(size, r) + size;
        HIGH_WATER.fetch_max(live, r);
    }
}

/// Marks live block `p` idle, then releases the least recently used idle blocks while the idle
/// bytes exceed the high-water mark. False when `p` is not a tracked live block.
fn keep(p: usize) -> bool {
    let mut release = [0usize; SLOTS];
    {
        let _g = lock();
        let r = Ordering::Relaxed;
        let Some(i) = find_live(p) else { return false };
        let len = TABLE[i].len.load(r);
        LIVE_BYTES.fetch_sub(len, r);
        IDLE_BYTES.fetch_add(len, r);
        TABLE[i].stamp.store(CLOCK.fetch_add(1, r), r);
        TABLE[i].state.store(IDLE, Ordering::Release);
        LIVE_COUNT.fetch_sub(1, Ordering::Release);
        release_idle(&mut release, |idle| idle > HIGH_WATER.load(r));
    }
    for q in release.into_iter().filter(|&q| q != 0) {
        unsafe { __libc_free(q as *mut c_void) };
    }
    true
}

/// Forgets live block `p` (it is being reallocated by glibc).
fn untrack(p: usize) {
    let _g = lock();
    if let Some(i) = find_live(p) {
        LIVE_BYTES.fetch_sub(TABLE[i].len.load(Ordering::Relaxed), Ordering::Relaxed);
        TABLE[i].state.store(EMPTY, Ordering::Release);
        LIVE_COUNT.fetch_sub(1, Ordering::Release);
    }
}

#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<usize>()) {
        return libc::EINVAL;
    }
    let large = size >= MIN_BLOCK && ENABLED.load(Ordering::Acquire);
    if large && align <= 4096 {
        if let Some(p) = take(size) {
            HITS.fetch_add(1, Ordering::Relaxed);
            *out = p;
            return 0;
        }
    }
    let p = __libc_memalign(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    if large && align <= 4096 {
        MISSES.fetch_add(1, Ordering::Relaxed);
        track(p as usize, size);
    }
    *out = p;
    0
}

#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    if find_live(p as usize).is_some() && keep(p as usize) {
        return;
    }
    __libc_free(p)
}

#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if !p.is_null() && find_live(p as usize).is_some() {
        untrack(p as usize);
    }
    __libc_realloc(p, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(size: usize) -> *mut c_void {
        let mut p = std::ptr::null_mut();
        assert_eq!(unsafe { posix_memalign(&mut p, 64, size) }, 0);
        assert!(!p.is_null());
        p
    }

    // One test, as the table is process-wide.
    #[test]
    fn large_blocks_are_kept_and_reused_small_ones_are_not() {
        enable();
        let (h0, m0) = stats();
        let a = alloc(MIN_BLOCK * 2);
        // Volatile: LLVM knows `free` by name and would drop a plain store before it.
        unsafe { std::ptr::write_volatile((a as *mut u8).add(12345), 7) };
        unsafe { free(a) };
        let b = alloc(MIN_BLOCK * 2);
        assert_eq!(a, b, "the kept block serves the same size again");
        // Its contents are whatever the last user left (malloc makes no promise; XLA writes first).
        assert_eq!(
            unsafe { std::ptr::read_volatile((b as *const u8).add(12345)) },
            7
        );
        unsafe { free(b) };
        // A different size releases the idle block and gets a fresh one.
        let c = alloc(MIN_BLOCK * 3);
        unsafe { free(c) };
        assert_eq!(stats(), (h0 + 1, m0 + 2));
        // Small blocks never enter the table.
        let s = alloc(4096);
        assert!(find_live(s as usize).is_none());
        unsafe { free(s) };
        // realloc of a kept-live block hands it back to glibc's care.
        let d = alloc(MIN_BLOCK * 3);
        assert_eq!(d, c);
        let e = unsafe { realloc(d, MIN_BLOCK * 4) };
        assert!(!e.is_null() && find_live(d as usize).is_none());
        unsafe { free(e) };
        // Bad alignment is refused as POSIX says.
        let mut p = std::ptr::null_mut();
        assert_eq!(unsafe { posix_memalign(&mut p, 3, 64) }, libc::EINVAL);
    }
}
