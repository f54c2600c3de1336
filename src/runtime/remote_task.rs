//! [`RemoteTask`]: a task started on a loop from any thread, and awaited or
//! waited for from any thread (asyncio's `concurrent.futures.Future` from
//! `run_coroutine_threadsafe`).
//!
//! [`Handle::spawn`](super::Handle::spawn) queues a closure on the target
//! loop (the same queue as `call_soon_threadsafe`). On the loop, the closure
//! spawns the user's future as an ordinary task plus a small *bridge* task
//! that awaits it and publishes the result into state shared with the
//! `RemoteTask`: a mutex, a condvar for plain threads that `wait()`, and
//! the waker of whoever awaits. `cancel()` from any thread sets a flag and
//! wakes the bridge, which cancels the task on its own loop; the result is
//! published only after the task's future was dropped, so its cleanup has
//! run when the waiter sees the cancellation. If the loop closes first, the
//! closure or the bridge is dropped and publishes "cancelled": a waiter
//! never hangs on a dead loop.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::loom::{Arc, Condvar, Mutex, lock};
use crate::task::{JoinError, Task};

struct State<T> {
    result: Option<Result<T, JoinError>>,
    /// The result was published (it may have been taken since).
    finished: bool,
    taken: bool,
    cancel_requested: bool,
    /// Whoever awaits the `RemoteTask`.
    awaiter: Option<Waker>,
    /// The bridge task, to deliver a cancellation request.
    bridge: Option<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    done: Condvar,
}

impl<T> Shared<T> {
    fn new() -> Arc<Shared<T>> {
        Arc::new(Shared {
            state: Mutex::new(State {
                result: None,
                finished: false,
                taken: false,
                cancel_requested: false,
                awaiter: None,
                bridge: None,
            }),
            done: Condvar::new(),
        })
    }

    /// Publishes `result` (the first call wins) and wakes every waiter.
    fn finish(&self, result: Result<T, JoinError>) {
        let awaiter = {
            let mut st = lock(&self.state);
            if st.finished {
                return;
            }
            st.finished = true;
            st.result = Some(result);
            st.bridge = None;
            st.awaiter.take()
        };
        self.done.notify_all();
        if let Some(w) = awaiter {
            w.wake();
        }
    }
}

/// Publishes "cancelled" if dropped before the result was published: the
/// loop closed with the work still queued, or tore the bridge down.
struct FinishOnDrop<T>(Arc<Shared<T>>);

impl<T> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        self.0.finish(Err(JoinError::cancelled()));
    }
}

/// The loop-side half: what [`Handle::spawn`](super::Handle::spawn) sends to
/// the loop. Call [`RemoteStart::start`] on the loop's thread while it runs.
pub(crate) struct RemoteStart<F: Future> {
    future: F,
    guard: FinishOnDrop<F::Output>,
}

impl<F> RemoteStart<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    /// Spawns the future and its bridge on the running loop.
    pub(crate) fn start(self) {
        let RemoteStart { future, guard } = self;
        if lock(&guard.0.state).cancel_requested {
            // Cancelled before it started: the future never runs.
            drop(future);
            return; // `guard` publishes the cancellation.
        }
        let task: Task<F::Output> = crate::runtime::spawn(future);
        crate::runtime::spawn(async move {
            let mut task = std::pin::pin!(task);
            let shared = guard.0.clone();
            let result = poll_fn(|cx| {
                {
                    let mut st = lock(&shared.state);
                    if st.cancel_requested {
                        st.cancel_requested = false;
                        drop(st);
                        task.cancel();
                    } else if !st.bridge.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        st.bridge = Some(cx.waker().clone());
                    }
                }
                task.as_mut().poll(cx)
            })
            .await;
            guard.0.finish(result);
        })
        .detach();
    }
}

/// A future started on a loop by [`Handle::spawn`](super::Handle::spawn) or
/// [`run_coroutine_threadsafe`](crate::run_coroutine_threadsafe), usable
/// from any thread: await it on any loop (or any executor), or block a
/// plain thread with [`wait`](RemoteTask::wait) /
/// [`wait_timeout`](RemoteTask::wait_timeout). Its output is the task's:
/// `Ok(value)`, or a [`JoinError`] if it panicked or was cancelled (also
/// when its loop closed before it finished).
///
/// Dropping a `RemoteTask` does not cancel the task (unlike
/// [`Task`](crate::Task), as with asyncio's `concurrent.futures.Future`);
/// call [`cancel`](RemoteTask::cancel) for that.
///
/// # Examples
///
/// ```
/// let lp = ringloop::EventLoop::new()?;
/// let handle = lp.handle();
/// let worker = std::thread::spawn(move || {
///     let answer = handle.spawn(async { 6 * 7 }).unwrap();
///     answer.wait().unwrap()
/// });
/// // Run the loop until the other thread got its answer.
/// lp.run_until_complete(async {
///     while !worker.is_finished() {
///         ringloop::sleep(std::time::Duration::from_millis(1)).await;
///     }
/// })?;
/// assert_eq!(worker.join().unwrap(), 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a RemoteTask does nothing unless waited for, awaited or cancelled"]
pub struct RemoteTask<T> {
    shared: Arc<Shared<T>>,
    /// Tells the loop's own thread, which must not block on its own work.
    sched: std::sync::Arc<crate::task::sched::Scheduler>,
}

impl<T> RemoteTask<T> {
    pub(crate) fn new<F>(
        future: F,
        sched: std::sync::Arc<crate::task::sched::Scheduler>,
    ) -> (RemoteTask<T>, RemoteStart<F>)
    where
        F: Future<Output = T>,
    {
        let shared = Shared::new();
        let start = RemoteStart {
            future,
            guard: FinishOnDrop(shared.clone()),
        };
        (RemoteTask { shared, sched }, start)
    }

    /// Requests cancellation (any thread): the task's future is dropped on
    /// its loop, then the result becomes a cancelled [`JoinError`]. Returns
    /// false if the result was already published.
    pub fn cancel(&self) -> bool {
        let bridge = {
            let mut st = lock(&self.shared.state);
            if st.finished {
                return false;
            }
            st.cancel_requested = true;
            st.bridge.take()
        };
        if let Some(w) = bridge {
            w.wake();
        }
        true
    }

    /// Whether the result was published (value, panic or cancellation).
    pub fn is_done(&self) -> bool {
        lock(&self.shared.state).finished
    }

    /// Whether it finished cancelled.
    pub fn is_cancelled(&self) -> bool {
        lock(&self.shared.state)
            .result
            .as_ref()
            .is_some_and(|r| r.as_ref().is_err_and(JoinError::is_cancelled))
    }

    fn check_not_own_loop(&self) {
        assert!(
            !self.sched.is_owner_thread(),
            "RemoteTask::wait called on the thread of the loop that runs the task: \
             the loop could never run it (deadlock); `.await` it instead"
        );
    }

    fn take(st: &mut State<T>) -> Result<T, JoinError> {
        st.taken = true;
        st.result
            .take()
            .expect("a finished RemoteTask holds its result until taken")
    }

    /// Blocks this thread until the result is published and returns it.
    ///
    /// # Panics
    ///
    /// When called on the thread of the loop that runs the task (it could
    /// never run: a deadlock), like tokio's `block_on` inside a runtime.
    pub fn wait(self) -> Result<T, JoinError> {
        self.check_not_own_loop();
        let mut st = lock(&self.shared.state);
        while !st.finished {
            st = self.shared.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        Self::take(&mut st)
    }

    /// Like [`wait`](RemoteTask::wait), for at most `timeout`: `Err(self)`
    /// gives the task back if it had not finished (it keeps running).
    ///
    /// # Panics
    ///
    /// As for [`wait`](RemoteTask::wait).
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, RemoteTask<T>> {
        self.check_not_own_loop();
        let deadline = Instant::now().checked_add(timeout);
        {
            let mut st = lock(&self.shared.state);
            while !st.finished {
                let left = match deadline {
                    Some(d) => d.saturating_duration_since(Instant::now()),
                    None => Duration::from_secs(3600),
                };
                if left.is_zero() {
                    break;
                }
                st = self
                    .shared
                    .done
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if st.finished {
                return Ok(Self::take(&mut st));
            }
        }
        Err(self)
    }
}

impl<T> Future for RemoteTask<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = lock(&self.shared.state);
        if st.finished {
            assert!(!st.taken, "RemoteTask polled after it returned its output");
            return Poll::Ready(Self::take(&mut st));
        }
        if !st.awaiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.awaiter = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for RemoteTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.shared.state);
        f.debug_struct("RemoteTask")
            .field("done", &st.finished)
            .field("cancel_requested", &st.cancel_requested)
            .finish()
    }
}
