//! A blocking job and its result: [`BlockingTask`] (the awaiting side) and
//! the cell the pool runs.
//!
//! One allocation per job: a [`JobCell`] holds the closure, then its result,
//! the awaiter's waker and the job's place in its loop's count of
//! outstanding jobs. The pool sees it as a [`Job`], the awaiter as an
//! [`Output`]; both are `Arc`s of the same cell.
//!
//! The cell's stages: `Queued(f)` → `Running` → `Done(result)` → `Taken`.
//! When the [`BlockingTask`] is dropped first (`detached`), the job still
//! runs and its result is dropped on the pool thread as soon as it is made.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::count::JobGuard;
use crate::loom::{Mutex, lock};
use crate::task::JoinError;

/// What the pool does with a queued job.
///
/// Jobs are shared through `std::sync::Arc`: their methods take `&self`, and
/// the reference count is no part of the pool's hand-off (which loom
/// models with its own `Arc`).
pub(crate) trait Job: Send + Sync {
    /// Runs the job on the calling (pool) thread and stores its result;
    /// the returned [`Delivery`] tells the awaiter.
    fn run(&self) -> Delivery;
    /// The pool will never run this job: its awaiter gets a cancelled
    /// [`JoinError`].
    fn abandon(&self);
}

/// Telling a job's awaiter that its result is ready: the pool thread does
/// it after counting itself idle (see `handoff.rs`).
#[must_use]
pub(crate) struct Delivery {
    waker: Option<Waker>,
    /// Released after the wake: once the loop's count reaches zero, its
    /// shutdown may return.
    count: Option<JobGuard>,
}

impl Delivery {
    #[cfg(all(test, loom))]
    pub(crate) fn waking(waker: Waker) -> Delivery {
        Delivery {
            waker: Some(waker),
            count: None,
        }
    }

    /// Whether there is an awaiter to wake.
    pub(crate) fn wakes(&self) -> bool {
        self.waker.is_some()
    }

    pub(crate) fn deliver(self) {
        if let Some(w) = self.waker {
            w.wake();
        }
        drop(self.count);
    }
}

/// What a [`BlockingTask`] asks of its job.
trait Output<R>: Send + Sync {
    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Result<R, JoinError>>;
    fn detach(&self);
    fn is_finished(&self) -> bool;
}

enum Stage<F, R> {
    Queued(F),
    Running,
    Done(Result<R, JoinError>),
    Taken,
}

struct Inner<F, R> {
    stage: Stage<F, R>,
    waker: Option<Waker>,
    /// The [`BlockingTask`] was dropped: nobody wants the result.
    detached: bool,
    /// Released once the result is delivered (the submitting loop's
    /// shutdown waits for it); `None` for a job no loop counts.
    count: Option<JobGuard>,
}

/// A job: closure `F` returning `R`.
pub(crate) struct JobCell<F, R> {
    inner: Mutex<Inner<F, R>>,
}

/// Makes the cell for `f`: the pool's side and the awaiter's side.
pub(crate) fn new_job<F, R>(f: F, count: Option<JobGuard>) -> (Arc<dyn Job>, BlockingTask<R>)
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let cell = Arc::new(JobCell {
        inner: Mutex::new(Inner {
            stage: Stage::Queued(f),
            waker: None,
            detached: false,
            count,
        }),
    });
    let task = BlockingTask { cell: cell.clone() };
    (cell, task)
}

impl<F, R> JobCell<F, R> {
    /// Stores (or, if detached, drops) the result.
    fn finish(&self, out: Result<R, JoinError>) -> Delivery {
        let mut g = lock(&self.inner);
        let count = g.count.take();
        let (waker, discarded) = if g.detached {
            g.stage = Stage::Taken;
            (None, Some(out))
        } else {
            g.stage = Stage::Done(out);
            (g.waker.take(), None)
        };
        drop(g);
        // Outside the lock: `R`'s drop is user code.
        drop(discarded);
        Delivery { waker, count }
    }

    /// Moves the stage to `Running` and returns the closure, if queued.
    fn start(&self) -> Option<F> {
        let mut g = lock(&self.inner);
        match std::mem::replace(&mut g.stage, Stage::Running) {
            Stage::Queued(f) => Some(f),
            other => {
                g.stage = other;
                None
            }
        }
    }
}

impl<F, R> Job for JobCell<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    fn run(&self) -> Delivery {
        let Some(f) = self.start() else {
            return Delivery {
                waker: None,
                count: None,
            };
        };
        // A panic becomes the awaiter's error; the pool thread lives on.
        let out = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panicked);
        self.finish(out)
    }

    fn abandon(&self) {
        let Some(f) = self.start() else { return };
        drop(f);
        self.finish(Err(JoinError::cancelled())).deliver();
    }
}

impl<F, R> Output<R> for JobCell<F, R>
where
    F: Send,
    R: Send,
{
    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Result<R, JoinError>> {
        let mut g = lock(&self.inner);
        match std::mem::replace(&mut g.stage, Stage::Taken) {
            Stage::Done(out) => Poll::Ready(out),
            Stage::Taken => panic!("BlockingTask polled after it returned its output"),
            pending => {
                g.stage = pending;
                match &g.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => g.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    fn detach(&self) {
        let mut g = lock(&self.inner);
        g.detached = true;
        let waker = g.waker.take();
        let out = match std::mem::replace(&mut g.stage, Stage::Taken) {
            Stage::Done(out) => Some(out),
            other => {
                g.stage = other;
                None
            }
        };
        drop(g);
        // A finished result is dropped here, by its owner, outside the lock.
        drop(out);
        drop(waker);
    }

    fn is_finished(&self) -> bool {
        matches!(lock(&self.inner).stage, Stage::Done(_) | Stage::Taken)
    }
}

/// The result of a job on a blocking pool: resolves to the closure's
/// return value, or to a [`JoinError`] if it panicked.
///
/// Made by [`to_thread`](crate::to_thread),
/// [`spawn_blocking`](crate::spawn_blocking),
/// [`BlockingPool::spawn`](crate::BlockingPool::spawn) and
/// [`EventLoop::run_in_executor`](crate::EventLoop::run_in_executor). The
/// job is queued when the call is made, not when the `BlockingTask` is
/// first polled.
///
/// It is `Send` and needs no event loop: any executor can await it (the
/// pool thread wakes the awaiter's `Waker`). Dropping it does not stop the
/// job: the job runs to completion and its result is dropped. The
/// error is cancelled, not panicked, only when the pool could not start a
/// single thread to run the job.
///
/// # Panics
///
/// Polling it again after it returned its output panics.
pub struct BlockingTask<R> {
    cell: Arc<dyn Output<R>>,
}

impl<R> BlockingTask<R> {
    /// Whether the job has finished (its result may already be taken).
    pub fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}

impl<R> Future for BlockingTask<R> {
    type Output = Result<R, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell.poll_output(cx)
    }
}

impl<R> Drop for BlockingTask<R> {
    fn drop(&mut self) {
        self.cell.detach();
    }
}

impl<R> fmt::Debug for BlockingTask<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTask")
            .field("finished", &self.is_finished())
            .finish()
    }
}
