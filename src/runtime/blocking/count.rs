//! A loop's count of outstanding blocking jobs, and the future its shutdown
//! awaits until the count is zero.
//!
//! Submitting a job from a loop takes a [`JobGuard`]; the job releases it on
//! its pool thread once its result is delivered (or the job is abandoned).
//! The count is one atomic; the lock is taken only by the waiter and by the
//! release that brings the count to zero. The waiter stores its waker, then
//! reads the count; a release decrements, then takes the waker. Both take
//! the lock in between, so either the waiter reads zero or the release finds
//! its waker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::loom::{Arc, AtomicUsize, Mutex, Ordering, lock};

/// Jobs a loop submitted that have not finished yet.
pub(crate) struct JobCount {
    outstanding: AtomicUsize,
    waiter: Mutex<Option<Waker>>,
}

impl JobCount {
    pub(crate) fn new() -> Arc<JobCount> {
        Arc::new(JobCount {
            outstanding: AtomicUsize::new(0),
            waiter: Mutex::new(None),
        })
    }

    /// Counts one more job (`this`: a plain `&Arc` receiver, as loom's `Arc`
    /// cannot be a method receiver) until the returned guard is dropped.
    pub(crate) fn acquire(this: &Arc<JobCount>) -> JobGuard {
        this.outstanding.fetch_add(1, Ordering::Relaxed);
        JobGuard(this.clone())
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Resolves once no job is outstanding.
    pub(crate) fn all_done(this: &Arc<JobCount>) -> AllDone {
        AllDone(this.clone())
    }
}

/// One outstanding job; dropping it releases it (from any thread).
pub(crate) struct JobGuard(Arc<JobCount>);

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.0.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waker = lock(&self.0.waiter).take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// See [`JobCount::all_done`].
pub(crate) struct AllDone(Arc<JobCount>);

impl Future for AllDone {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *lock(&self.0.waiter) = Some(cx.waker().clone());
        if self.0.outstanding() == 0 {
            lock(&self.0.waiter).take();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
