//! Thread counts, and splitting a call's work across them.

use crate::team::Team;
use crate::KernelError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The environment variable that sets the default thread count.
pub const THREADS_ENV: &str = "SIMDNN_THREADS";

static DEFAULT_THREADS: AtomicUsize = AtomicUsize::new(0);

/// The most threads one call may use.
pub const MAX_THREADS: usize = 256;

/// Parses a thread count: an integer from 1 to [`MAX_THREADS`].
pub fn parse_threads(s: &str) -> Result<usize, KernelError> {
    match s.trim().parse::<usize>() {
        Ok(n) => check_threads(n),
        _ => Err(KernelError::BadThreadCount { given: s.to_string() }),
    }
}

/// `n` if it is a valid thread count (1 to [`MAX_THREADS`]).
pub fn check_threads(n: usize) -> Result<usize, KernelError> {
    if (1..=MAX_THREADS).contains(&n) {
        Ok(n)
    } else {
        Err(KernelError::BadThreadCount { given: n.to_string() })
    }
}

/// The default thread count: set by [`set_default_threads`], else `SIMDNN_THREADS`, else the
/// number of CPUs this process may use.
pub fn default_threads() -> Result<usize, KernelError> {
    match DEFAULT_THREADS.load(Ordering::Relaxed) {
        0 => match std::env::var(THREADS_ENV) {
            Ok(v) if !v.trim().is_empty() => parse_threads(&v),
            _ => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        },
        n => Ok(n),
    }
}

/// Overrides the default thread count for this process.
pub fn set_default_threads(n: usize) -> Result<(), KernelError> {
    DEFAULT_THREADS.store(check_threads(n)?, Ordering::Relaxed);
    Ok(())
}

/// The helper team of a `threads`-way split: `threads - 1` helpers, since the calling
/// thread takes a share itself.
fn team(threads: usize) -> Option<&'static Team> {
    // One slot per thread count, filled on first use: no lock and no allocation afterwards.
    // A refusal is remembered too, so a failing thread count is not retried on every call.
    static TEAMS: [OnceLock<Option<Team>>; MAX_THREADS + 1] = [const { OnceLock::new() }; MAX_THREADS + 1];
    TEAMS[threads.min(MAX_THREADS)].get_or_init(|| Team::new(threads - 1)).as_ref()
}

/// Runs `task(0..n_tasks)` on up to `threads` threads: task 0 on the calling thread, the
/// others on helpers; inline when one thread suffices. Callers split work into at most
/// `threads` tasks; any beyond that run on the calling thread too.
pub(crate) fn for_each_task(threads: usize, n_tasks: usize, task: impl Fn(usize) + Sync + Send) {
    if threads <= 1 || n_tasks <= 1 {
        (0..n_tasks).for_each(task);
        return;
    }
    match team(threads) {
        Some(t) => {
            let shared = n_tasks.min(threads);
            t.run(shared, &task);
            (shared..n_tasks).for_each(&task);
        }
        // The OS refused the threads: still correct, only slower.
        None => (0..n_tasks).for_each(task),
    }
}

/// Runs `f(i, chunk)` for the `chunk_len`-long chunks of `buf` (the last may be shorter),
/// one task per chunk on up to `threads` threads: parallel work on disjoint parts of one
/// output, allocating nothing. Callers size chunks so there are at most `threads` of them.
pub(crate) fn for_each_chunk_mut<T: Send>(
    threads: usize,
    buf: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let chunks = DisjointChunks::new(buf, chunk_len);
    for_each_task(threads, chunks.len(), |i| {
        // SAFETY: `for_each_task` runs each index once, so each chunk is taken once.
        f(i, unsafe { chunks.take(i) })
    });
}

/// A buffer cut into `chunk_len`-long chunks (the last may be shorter) that tasks take by
/// index, each chunk by one task: what `chunks_mut` gives, without collecting the chunks
/// into a list to share between threads.
pub(crate) struct DisjointChunks<'a, T> {
    ptr: *mut T,
    len: usize,
    chunk_len: usize,
    _buf: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a DisjointChunks hands out disjoint `&mut [T]`, so sharing it between threads is
// sharing `&mut [T]`s, which is sound for `T: Send`.
unsafe impl<T: Send> Sync for DisjointChunks<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for DisjointChunks<'_, T> {}

impl<'a, T> DisjointChunks<'a, T> {
    pub(crate) fn new(buf: &'a mut [T], chunk_len: usize) -> Self {
        DisjointChunks {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            chunk_len: chunk_len.max(1),
            _buf: std::marker::PhantomData,
        }
    }

    /// The number of chunks.
    pub(crate) fn len(&self) -> usize {
        self.len.div_ceil(self.chunk_len)
    }

    /// Chunk `i` (empty past the end).
    ///
    /// # Safety
    /// Each `i` may be taken at most once while the chunks live.
    pub(crate) unsafe fn take(&self, i: usize) -> &'a mut [T] {
        let start = i.saturating_mul(self.chunk_len).min(self.len);
        let end = start.saturating_add(self.chunk_len).min(self.len);
        // SAFETY: `start..end` lies within the buffer, which the `'a` borrow keeps alive and
        // exclusive to this value; the caller takes each chunk once, so no two `&mut`
        // overlap.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), end - start) }
    }
}

/// [`for_each_chunk_mut`] for fallible work: every chunk runs, and one of the errors (if any)
/// is returned.
pub(crate) fn try_for_each_chunk_mut<T: Send, E: Send>(
    threads: usize,
    buf: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) -> Result<(), E> + Sync + Send,
) -> Result<(), E> {
    let failed = Mutex::new(None);
    for_each_chunk_mut(threads, buf, chunk_len, |i, chunk| {
        if let Err(e) = f(i, chunk) {
            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    });
    failed.into_inner().unwrap_or_else(|p| p.into_inner()).map_or(Ok(()), Err)
}

/// `0..len` split into at most `parts` non-empty ranges whose starts are multiples of
/// `align`, as even as that allows; computed on demand, so splitting allocates nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AlignedSplit {
    len: usize,
    align: usize,
    units: usize,
    parts: usize,
}

impl AlignedSplit {
    pub(crate) fn new(len: usize, parts: usize, align: usize) -> AlignedSplit {
        let align = align.max(1);
        let units = len.div_ceil(align);
        // At most one range per unit, so none is empty.
        AlignedSplit { len, align, units, parts: parts.clamp(1, units.max(1)) }
    }

    /// The number of ranges (0 when `len` is 0).
    pub(crate) fn len(&self) -> usize {
        if self.len == 0 {
            0
        } else {
            self.parts
        }
    }

    /// Range `i < self.len()`, as `(start, end)`.
    pub(crate) fn get(&self, i: usize) -> (usize, usize) {
        let at = |p: usize| (self.units * p / self.parts * self.align).min(self.len);
        (at(i), at(i + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_aligned_covers_exactly_once() {
        for len in [0, 1, 5, 6, 7, 97, 256, 1000] {
            for parts in 1..5 {
                for align in [1, 6, 16] {
                    let split = AlignedSplit::new(len, parts, align);
                    let r: Vec<_> = (0..split.len()).map(|i| split.get(i)).collect();
                    assert_eq!(r.len(), parts.min(len.div_ceil(align)), "every part used");
                    let mut next = 0;
                    for &(lo, hi) in &r {
                        assert_eq!(lo, next, "{len} {parts} {align}: {r:?}");
                        assert!(lo % align == 0 && hi > lo);
                        next = hi;
                    }
                    assert_eq!(next, len, "{len} {parts} {align}: {r:?}");
                }
            }
        }
    }

    #[test]
    fn thread_counts_parse() {
        assert_eq!(parse_threads(" 3 "), Ok(3));
        for bad in ["0", "-1", "two", ""] {
            assert!(matches!(parse_threads(bad), Err(KernelError::BadThreadCount { .. })), "{bad}");
        }
    }

    #[test]
    fn every_task_runs_once() {
        use std::sync::atomic::AtomicUsize;
        for threads in 1..4 {
            let hits: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
            for_each_task(threads, threads, |t| {
                hits[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }
}
