//! [`shield`]: protect a task from the cancellation of its awaiter.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::task_like::TaskLike;

/// Awaits a task or promise that the caller's cancellation does not reach
/// (asyncio's `shield`).
///
/// Dropping the returned [`Shield`] (the awaiter was cancelled, or a
/// [`crate::wait_for`] around it timed out) lets the task run to its end:
/// a [`crate::Task`] handed over is detached, a `&mut Task` or a promise is
/// left to its owner, who can still await it. If the task is cancelled by
/// other means, the awaiter gets a cancelled [`crate::JoinError`].
/// Otherwise `shield(t).await` is `t.await`; something already done gives
/// its output at the first poll, without suspending.
///
/// asyncio's `shield(coroutine)` wraps the coroutine in a task; in ringloop
/// spawn it first: `shield(spawn(f))`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let (tx, rx) = std::sync::mpsc::channel();
///     let slow = ringloop::spawn(async move {
///         ringloop::sleep(Duration::from_millis(20)).await;
///         tx.send("finished anyway").unwrap();
///     });
///     let r = ringloop::wait_for(ringloop::shield(slow), Some(Duration::from_millis(1))).await;
///     assert!(r.is_err()); // the wait timed out...
///     ringloop::sleep(Duration::from_millis(40)).await;
///     assert_eq!(rx.try_recv().unwrap(), "finished anyway"); // ...the shielded work did not stop
///
///     // A task its owner keeps: shield a borrow, await the task later.
///     let mut task = ringloop::spawn(async {
///         ringloop::sleep(Duration::from_millis(5)).await;
///         7
///     });
///     let r = ringloop::wait_for(ringloop::shield(&mut task), Some(Duration::from_millis(1))).await;
///     assert!(r.is_err());
///     assert_eq!(task.await.unwrap(), 7);
/// })
/// .unwrap();
/// ```
pub fn shield<A: TaskLike>(task: A) -> Shield<A> {
    Shield { task: Some(task) }
}

/// The future of [`shield`]: the task's (or promise's) output, or why it
/// has none.
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<A: TaskLike> {
    task: Option<A>,
}

impl<A: TaskLike> Future for Shield<A> {
    type Output = A::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self.task.as_mut().expect("Shield polled after completion");
        let out = std::task::ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(out)
    }
}

impl<A: TaskLike> Drop for Shield<A> {
    fn drop(&mut self) {
        // The awaiter going away does not cancel the task.
        if let Some(task) = self.task.take() {
            task.release();
        }
    }
}

impl<A: TaskLike + fmt::Debug> fmt::Debug for Shield<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield").field("task", &self.task).finish()
    }
}
