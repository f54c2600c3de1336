//! The hand-off between submitters and a pool's worker threads.
//!
//! Everything below is under the one lock of [`State`]:
//!
//! - `threads`: workers started and not yet exiting; never above
//!   `max_threads`.
//! - `idle`: workers in [`idle_wait`], waiting for a job or their idle
//!   timeout.
//! - `notified`: wake-ups sent to idle workers and not yet taken; never
//!   above `idle` outside the lock.
//!
//! [`Shared::submit`] queues the job, then wakes an idle worker that nobody
//! has woken yet (`idle > notified`), else starts a thread if below the
//! bound, else leaves the job to the busy workers. A worker takes jobs until
//! the queue is empty and only then goes idle; it counts itself idle
//! before it wakes a job's awaiter, so the awaiter's next job finds it
//! instead of starting another thread. A worker coming out of
//! [`idle_wait`] takes a pending wake-up if there is one, even when its own
//! wait timed out (the timeout may have raced the notify), and exits only
//! when it timed out with none pending. So a queued job always has a worker
//! that will see it: a busy one (it checks the queue before it sleeps), a
//! woken one, or a new one. The loom model at the bottom of this file checks
//! this with timeouts that fire at once (the racy case) and that never do.
//!
//! [`Shared::shutdown`] (the last pool handle is gone): workers finish the
//! queue, then exit instead of idling.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

#[cfg(loom)]
use loom::thread;
#[cfg(not(loom))]
use std::thread;

use super::task::Job;
use crate::loom::{Arc, Condvar, Mutex, MutexGuard, lock};

/// Job queue entries (see [`Job`] for why this `Arc` is std's).
pub(super) type QueuedJob = std::sync::Arc<dyn Job>;

/// A pool's threads and queue, shared by its handles and its workers.
pub(super) struct Shared {
    state: Mutex<State>,
    /// Idle workers wait here for a job.
    work: Condvar,
    pub(super) max_threads: usize,
    pub(super) idle_timeout: Duration,
    pub(super) thread_name: Box<str>,
}

/// The hand-off state (see the module docs).
struct State {
    queue: VecDeque<QueuedJob>,
    threads: usize,
    idle: usize,
    notified: usize,
    shutdown: bool,
}

/// Counts for `BlockingPool`'s accessors and `Debug`.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub(super) threads: usize,
    pub(super) idle: usize,
    pub(super) queued: usize,
}

impl Shared {
    pub(super) fn new(max_threads: usize, idle_timeout: Duration, thread_name: Box<str>) -> Shared {
        Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
                shutdown: false,
            }),
            work: Condvar::new(),
            max_threads,
            idle_timeout,
            thread_name,
        }
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let st = lock(&self.state);
        Snapshot {
            threads: st.threads,
            idle: st.idle,
            queued: st.queue.len(),
        }
    }

    /// No more jobs will come: idle workers exit, busy ones once the queue
    /// is empty.
    pub(super) fn shutdown(&self) {
        lock(&self.state).shutdown = true;
        self.work.notify_all();
    }

    pub(super) fn submit(this: &Arc<Shared>, job: QueuedJob) {
        let mut st = lock(&this.state);
        st.queue.push_back(job);
        if st.idle > st.notified {
            st.notified += 1;
            drop(st);
            this.work.notify_one();
        } else if st.threads < this.max_threads {
            st.threads += 1;
            drop(st);
            Shared::start_worker(this);
        }
        // Else every thread is busy (or already woken): one of them will
        // take the job when it looks at the queue again.
    }

    /// Starts a thread already counted in `threads`.
    fn start_worker(this: &Arc<Shared>) {
        let shared = this.clone();
        let started = thread::Builder::new()
            .name(this.thread_name.to_string())
            .spawn(move || worker(shared));
        if started.is_ok() {
            return;
        }
        // No thread (EAGAIN: thread or memory limits). Others may still
        // serve the queue; if none is left, nothing would ever run it.
        let mut st = lock(&this.state);
        st.threads -= 1;
        let stranded = if st.threads == 0 {
            std::mem::take(&mut st.queue)
        } else {
            VecDeque::new()
        };
        drop(st);
        for job in stranded {
            job.abandon();
        }
    }
}

/// A worker thread's life: run jobs until the queue is empty, wait idle,
/// exit after an idle timeout with no job (or at shutdown).
fn worker(shared: Arc<Shared>) {
    let mut st = lock(&shared.state);
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            let delivery = contain(move || {
                let delivery = job.run();
                drop(job);
                delivery
            });
            match delivery {
                Some(delivery) if delivery.wakes() => {
                    // Counted idle before the awaiter hears of its result:
                    // the awaiter's next job then wakes this thread (or
                    // finds it here) instead of starting another one.
                    st = lock(&shared.state);
                    st.idle += 1;
                    drop(st);
                    contain(|| delivery.deliver());
                    st = lock(&shared.state);
                    st.idle -= 1;
                    if st.notified > 0 {
                        st.notified -= 1;
                    }
                }
                // Nobody to wake; the count's release may wake a shutdown,
                // so it too runs outside the lock.
                other => {
                    contain(|| drop(other));
                    st = lock(&shared.state);
                }
            }
            continue;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        let (guard, timed_out) = idle_wait(&shared, st);
        st = guard;
        st.idle -= 1;
        if st.notified > 0 {
            st.notified -= 1;
        } else if timed_out {
            break;
        }
    }
    st.threads -= 1;
}

/// Runs `f`, containing a panic. Jobs catch their closures' panics; this
/// catches one from a result's or closure's `Drop` or a waker, so the
/// thread and the counts survive even that. The payload is leaked: dropping
/// it could panic again.
fn contain<T>(f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(payload) => {
            std::mem::forget(payload);
            None
        }
    }
}

/// Waits on `work` until notified or the idle timeout passes; true if it
/// timed out.
#[cfg(not(loom))]
fn idle_wait<'a>(shared: &Shared, st: MutexGuard<'a, State>) -> (MutexGuard<'a, State>, bool) {
    let (st, res) = shared
        .work
        .wait_timeout(st, shared.idle_timeout)
        .unwrap_or_else(|p| p.into_inner());
    (st, res.timed_out())
}

/// loom's `wait_timeout` never times out, so the model's timeout is picked
/// by configuration: a zero idle timeout times out at once, after releasing
/// the lock (so a submit can slip into the window a real timeout leaves);
/// any other waits for a notification.
#[cfg(loom)]
fn idle_wait<'a>(shared: &'a Shared, st: MutexGuard<'a, State>) -> (MutexGuard<'a, State>, bool) {
    if shared.idle_timeout.is_zero() {
        drop(st);
        (lock(&shared.state), true)
    } else {
        (
            shared.work.wait(st).unwrap_or_else(|p| p.into_inner()),
            false,
        )
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! `RUSTFLAGS="--cfg loom" cargo test --release --lib blocking`

    use std::time::Duration;

    use super::super::task::Delivery;
    use super::*;

    /// Counts completed jobs; the model's main thread waits for them.
    struct Done {
        count: Mutex<usize>,
        cv: Condvar,
    }

    /// A job whose awaiter is "woken" by counting it done, through the
    /// same [`Delivery`] as a real job (so after the worker counted itself
    /// idle).
    struct Mark(Arc<Done>);

    struct Signal(Arc<Done>);

    impl std::task::Wake for Signal {
        fn wake(self: std::sync::Arc<Self>) {
            *lock(&self.0.count) += 1;
            self.0.cv.notify_all();
        }
    }

    impl Job for Mark {
        fn run(&self) -> Delivery {
            let signal = std::sync::Arc::new(Signal(self.0.clone()));
            Delivery::waking(std::task::Waker::from(signal))
        }
        fn abandon(&self) {
            panic!("job abandoned: the model never fails to start a thread");
        }
    }

    fn wait_for(done: &Done, n: usize) {
        let mut c = lock(&done.count);
        while *c < n {
            c = done.cv.wait(c).unwrap();
        }
    }

    /// Main submits a job, waits for it, submits another, while a second
    /// thread submits a third. A lost job or a worker asleep beside a
    /// queued job hangs `wait_for` (loom reports the deadlock); so does a
    /// worker that never exits after the shutdown.
    fn model(max_threads: usize, idle_timeout: Duration) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(move || {
            let shared = Arc::new(Shared::new(max_threads, idle_timeout, "model".into()));
            let done = Arc::new(Done {
                count: Mutex::new(0),
                cv: Condvar::new(),
            });
            let submit = |shared: &Arc<Shared>, done: &Arc<Done>| {
                Shared::submit(shared, std::sync::Arc::new(Mark(done.clone())));
            };
            let other = {
                let (shared, done) = (shared.clone(), done.clone());
                loom::thread::spawn(move || submit(&shared, &done))
            };
            submit(&shared, &done);
            wait_for(&done, 1);
            submit(&shared, &done);
            other.join().unwrap();
            wait_for(&done, 3);
            let st = lock(&shared.state);
            assert!(st.threads <= max_threads);
            assert!(st.queue.is_empty());
            drop(st);
            // What the last pool handle's drop does; a worker that never
            // exits leaves loom with a deadlock.
            shared.shutdown();
        });
    }

    #[test]
    fn blocking_handoff_timeouts_fire_at_once() {
        model(1, Duration::ZERO);
    }

    #[test]
    fn blocking_handoff_no_timeouts() {
        model(1, Duration::from_secs(10));
    }

    #[test]
    fn blocking_handoff_two_threads_racing_timeouts() {
        model(2, Duration::ZERO);
    }
}
