//! A team of helper threads that stay awake between calls.
//!
//! Kernels split one call into a handful of equal tasks, one per thread, and the calling
//! thread runs the first. Waking a sleeping thread costs tens of microseconds on the
//! virtual machines here (a rayon pool measured 54 µs median per two-thread call, against
//! well under one for spinning helpers), which would swamp products of a few hundred
//! microseconds. So helpers spin for a while after each job (as OpenBLAS's threads do)
//! and only then sleep on a condition variable.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

/// The job of one call, on the caller's stack.
struct Job<'a> {
    task: &'a (dyn Fn(usize) + Sync),
    n_tasks: usize,
}

struct Shared {
    /// Bumped once per job; helpers run each epoch once.
    epoch: AtomicU64,
    /// The current job; valid while `pending > 0` (the caller waits for that).
    job: AtomicPtr<Job<'static>>,
    /// Helpers that have not finished the current epoch.
    pending: AtomicUsize,
    /// Helpers asleep (or about to be) on `wake`.
    sleeping: AtomicUsize,
    lock: Mutex<Option<Box<dyn Any + Send>>>,
    wake: Condvar,
}

/// `helpers` threads plus the caller.
pub(crate) struct Team {
    helpers: usize,
    shared: Arc<Shared>,
    /// One job at a time; a caller that finds the team busy runs its tasks itself.
    submit: Mutex<()>,
}

impl Team {
    /// Starts `helpers` threads; `None` if the OS refuses one.
    pub(crate) fn new(helpers: usize) -> Option<Team> {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            pending: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            lock: Mutex::new(None),
            wake: Condvar::new(),
        });
        for index in 1..=helpers {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("simdnn-{index}"))
                .spawn(move || helper_loop(&shared, index))
                .ok()?;
        }
        Some(Team { helpers, shared, submit: Mutex::new(()) })
    }

    /// Runs `task(0..n_tasks)`, `n_tasks <= helpers + 1`: task 0 on the calling thread, task
    /// `i` on helper `i`. Returns when all are done; a panic in a task is resumed here.
    pub(crate) fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        debug_assert!(n_tasks <= self.helpers + 1);
        let Ok(_busy) = self.submit.try_lock() else {
            (0..n_tasks).for_each(task); // another caller has the team (or we are inside it)
            return;
        };
        let sh = &*self.shared;
        let job = Job { task, n_tasks };
        // SAFETY (lifetime): helpers read the job only between the epoch bump below and their
        // decrement of `pending`, and this function waits for `pending == 0` before `job`
        // goes out of scope.
        sh.job.store(&job as *const Job as *mut Job<'static>, SeqCst);
        sh.pending.store(self.helpers, SeqCst);
        sh.epoch.fetch_add(1, SeqCst);
        if sh.sleeping.load(SeqCst) > 0 {
            let _guard = sh.lock.lock().unwrap_or_else(|e| e.into_inner());
            sh.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| task(0)));
        let mut spins = 0u32;
        while sh.pending.load(SeqCst) != 0 {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(4096) {
                std::thread::yield_now(); // a helper may have been descheduled
            } else {
                std::hint::spin_loop();
            }
        }
        sh.job.store(std::ptr::null_mut(), SeqCst);
        let theirs = sh.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if let Some(p) = theirs {
            resume_unwind(p);
        }
    }
}

fn helper_loop(sh: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        seen = wait_for_epoch(sh, seen);
        // SAFETY: the caller keeps the job alive until every helper has decremented
        // `pending` for this epoch, which happens below, after the last use.
        let job = unsafe { &*sh.job.load(SeqCst) };
        if index < job.n_tasks {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| (job.task)(index))) {
                *sh.lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
        }
        sh.pending.fetch_sub(1, SeqCst);
    }
}

/// Spins, then sleeps, until the epoch moves past `seen`; returns the new epoch.
fn wait_for_epoch(sh: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let e = sh.epoch.load(SeqCst);
        if e != seen {
            return e;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1024) && start.elapsed() > SPIN {
            break;
        }
        std::hint::spin_loop();
    }
    // Announce the sleep, then re-check under the lock: a caller that bumps the epoch either
    // sees `sleeping > 0` and notifies under the lock, or we see its new epoch here.
    let mut guard = sh.lock.lock().unwrap_or_else(|e| e.into_inner());
    sh.sleeping.fetch_add(1, SeqCst);
    let mut e = sh.epoch.load(SeqCst);
    while e == seen {
        guard = sh.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        e = sh.epoch.load(SeqCst);
    }
    sh.sleeping.fetch_sub(1, SeqCst);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn runs_every_task_once_many_times() {
        let team = Team::new(2).unwrap();
        for round in 0..2000 {
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            team.run(3, &|t| {
                hits[t].fetch_add(1, SeqCst);
            });
            assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "round {round}");
            if round % 500 == 0 {
                std::thread::sleep(SPIN * 2); // let the helpers fall asleep, then wake them
            }
        }
    }

    #[test]
    fn concurrent_and_nested_callers_complete() {
        let team = Arc::new(Team::new(1).unwrap());
        let total = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (team, total) = (team.clone(), total.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        team.run(2, &|_| {
                            // A nested call finds the team busy and runs inline.
                            team.run(2, &|_| {
                                total.fetch_add(1, SeqCst);
                            });
                        });
                    }
                })
            })
            .collect();
        callers.into_iter().for_each(|c| c.join().unwrap());
        assert_eq!(total.load(SeqCst), 4 * 500 * 2 * 2);
    }

    #[test]
    fn a_panicking_task_panics_the_caller_and_the_team_survives() {
        let team = Team::new(1).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| team.run(2, &|t| assert!(t == 0, "task {t} fails"))));
        assert!(r.is_err());
        let hits = AtomicUsize::new(0);
        team.run(2, &|_| {
            hits.fetch_add(1, SeqCst);
        });
        assert_eq!(hits.load(SeqCst), 2);
    }
}
