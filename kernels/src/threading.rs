//! Thread counts, and splitting a call's work across them.

use crate::team::Team;
use crate::KernelError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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
fn team(threads: usize) -> Option<Arc<Team>> {
    // A refusal is remembered too, so a failing thread count is not retried on every call.
    static TEAMS: OnceLock<Mutex<HashMap<usize, Option<Arc<Team>>>>> = OnceLock::new();
    let mut teams = TEAMS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    teams.entry(threads).or_insert_with(|| Team::new(threads - 1).map(Arc::new)).clone()
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
/// output, in safe code. Callers size chunks so there are at most `threads` of them.
pub(crate) fn for_each_chunk_mut<T: Send>(
    threads: usize,
    buf: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    // Each chunk sits behind its own lock, taken once by the one task that owns it.
    let chunks: Vec<Mutex<&mut [T]>> = buf.chunks_mut(chunk_len.max(1)).map(Mutex::new).collect();
    for_each_task(threads, chunks.len(), |i| {
        let mut chunk = chunks[i].lock().unwrap_or_else(|e| e.into_inner());
        f(i, &mut chunk)
    });
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

/// Splits `0..len` into `parts` ranges whose starts are multiples of `align`.
pub(crate) fn split_aligned(len: usize, parts: usize, align: usize) -> Vec<(usize, usize)> {
    let units = len.div_ceil(align);
    let parts = parts.clamp(1, units.max(1));
    (0..parts)
        .map(|p| {
            let lo = (units * p / parts * align).min(len);
            let hi = (units * (p + 1) / parts * align).min(len);
            (lo, hi)
        })
        .filter(|(lo, hi)| hi > lo)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_aligned_covers_exactly_once() {
        for len in [0, 1, 5, 6, 7, 97, 256, 1000] {
            for parts in 1..5 {
                for align in [1, 6, 16] {
                    let r = split_aligned(len, parts, align);
                    assert!(r.len() <= parts);
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
