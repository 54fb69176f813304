//! A global allocator that counts allocations, for the tests that prove a hot path
//! allocates nothing. It sees every thread of its test binary, so such a binary holds
//! only those tests, each taking [`serial`]: include this file with `#[path]` and declare
//! the allocator there.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

pub struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, SeqCst);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, SeqCst);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Held by each test of a counting binary for its whole run: the count sees every thread,
/// so tests must not run side by side.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Allocations made (by any thread) while `f` runs.
pub fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.load(SeqCst);
    let out = f();
    (ALLOCATIONS.load(SeqCst) - before, out)
}

/// The fewest allocations `f` made in `tries` runs: the count sees every thread, the test
/// harness's own included (it may record another test's end while `f` runs), and an
/// allocation of `f`'s own shows in every run.
// Not every test binary that includes this module uses it.
#[allow(dead_code)]
pub fn fewest_allocations(tries: usize, mut f: impl FnMut()) -> usize {
    (0..tries.max(1)).map(|_| allocations(&mut f).0).min().unwrap_or(0)
}
