//! [`shield`]: protect a task from the cancellation of its awaiter.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::task::{JoinError, Task};

/// Runs `future` as a task that the caller's cancellation does not reach
/// (asyncio's `shield`, SEMANTICS SH1–SH3).
///
/// Dropping the returned [`Shield`] (the awaiter was cancelled, or a
/// [`crate::wait_for`] around it timed out) lets the task run to its end
/// (SH1). If the task is cancelled by other means, the awaiter gets a
/// cancelled [`JoinError`] (SH2). Otherwise `shield(f).await` is `f`'s
/// output (SH3), as `Ok`.
///
/// # Panics
///
/// Called outside a running loop (it spawns).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let (tx, rx) = std::sync::mpsc::channel();
///     let slow = async move {
///         ringloop::sleep(Duration::from_millis(20)).await;
///         tx.send("finished anyway").unwrap();
///     };
///     let r = ringloop::wait_for(ringloop::shield(slow), Some(Duration::from_millis(1))).await;
///     assert!(r.is_err()); // the wait timed out...
///     ringloop::sleep(Duration::from_millis(40)).await;
///     assert_eq!(rx.try_recv().unwrap(), "finished anyway"); // ...the shielded work did not stop
/// })
/// .unwrap();
/// ```
pub fn shield<F>(future: F) -> Shield<F::Output>
where
    F: Future + 'static,
{
    shield_task(crate::spawn(future))
}

/// [`shield`] for a task already spawned.
pub fn shield_task<T>(task: Task<T>) -> Shield<T> {
    Shield { task: Some(task) }
}

/// The future of [`shield`]: the task's output, or why it has none.
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<T> {
    task: Option<Task<T>>,
}

impl<T> Future for Shield<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self.task.as_mut().expect("Shield polled after completion");
        let out = std::task::ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(out)
    }
}

impl<T> Drop for Shield<T> {
    fn drop(&mut self) {
        // SH1: the awaiter going away does not cancel the task.
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for Shield<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield").field("task", &self.task).finish()
    }
}
