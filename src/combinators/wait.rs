//! [`wait`] and [`as_completed`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Waker;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;

use crate::task::{JoinError, Task};
use crate::time::{Sleep, sleep};

/// When [`wait`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task finishes.
    FirstCompleted,
    /// As soon as any task finishes by panicking, or when all finish.
    FirstException,
    /// When every task has finished.
    AllCompleted,
}

/// Waits for `tasks` as `return_when` says, or until `timeout`, and returns
/// `(done, pending)` (asyncio's `wait`, SEMANTICS WA1). Nothing is
/// cancelled: a timeout just returns, and the pending tasks keep running.
/// Await a done task for its output (it returns at once).
///
/// If the `wait` future itself is dropped, its tasks are detached (they keep
/// running), as asyncio's `wait` holds no ownership of them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringloop::{ReturnWhen, sleep, spawn, wait};
/// ringloop::run(async {
///     let fast = spawn(async { sleep(Duration::from_millis(1)).await; 1 });
///     let slow = spawn(async { sleep(Duration::from_secs(60)).await; 2 });
///     let (done, pending) = wait(vec![fast, slow], ReturnWhen::FirstCompleted, None).await;
///     assert_eq!((done.len(), pending.len()), (1, 1));
/// })
/// .unwrap();
/// ```
pub async fn wait<T>(
    tasks: impl IntoIterator<Item = Task<T>>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> (Vec<Task<T>>, Vec<Task<T>>) {
    let mut guard = Detach(tasks.into_iter().collect());
    let mut timer: Option<Sleep> = timeout.map(sleep);
    poll_fn(|cx| {
        let tasks = &guard.0;
        let mut done = 0;
        let mut panicked = false;
        for t in tasks {
            if t.poll_finished(cx).is_ready() {
                done += 1;
                panicked |= t.is_panicked();
            }
        }
        let finished = match return_when {
            ReturnWhen::FirstCompleted => done > 0,
            ReturnWhen::FirstException => panicked || done == tasks.len(),
            ReturnWhen::AllCompleted => done == tasks.len(),
        };
        if finished || tasks.is_empty() {
            return Poll::Ready(());
        }
        match timer.as_mut().map(|t| Pin::new(t).poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    })
    .await;
    std::mem::take(&mut guard.0)
        .into_iter()
        .partition(|t| t.is_done())
}

/// Detaches the tasks it still holds when dropped.
struct Detach<T>(Vec<Task<T>>);

impl<T> Drop for Detach<T> {
    fn drop(&mut self) {
        for t in self.0.drain(..) {
            t.detach();
        }
    }
}

/// What [`as_completed`] yields instead of an output.
#[derive(Debug)]
pub enum AsCompletedError {
    /// The timeout passed before this child finished (it keeps running).
    Timeout,
    /// The child panicked or was cancelled.
    Join(JoinError),
}

impl fmt::Display for AsCompletedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsCompletedError::Timeout => f.write_str("deadline has elapsed"),
            AsCompletedError::Join(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AsCompletedError {}

/// Spawns every future and yields their outputs in completion order
/// (asyncio's `as_completed`, SEMANTICS WA2). With a `timeout`, each child
/// not done by then yields [`AsCompletedError::Timeout`] (and is detached:
/// it keeps running).
///
/// # Panics
///
/// Called outside a running loop (it spawns).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use futures_util::StreamExt;
/// ringloop::run(async {
///     let delays = [30u64, 10, 20];
///     let mut order = Vec::new();
///     let mut results = ringloop::as_completed(
///         delays.map(|ms| async move {
///             ringloop::sleep(Duration::from_millis(ms)).await;
///             ms
///         }),
///         None,
///     );
///     while let Some(r) = results.next().await {
///         order.push(r.unwrap());
///     }
///     assert_eq!(order, vec![10, 20, 30]);
/// })
/// .unwrap();
/// ```
pub fn as_completed<I>(
    children: I,
    timeout: Option<Duration>,
) -> AsCompleted<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future + 'static,
{
    as_completed_tasks(children.into_iter().map(crate::spawn), timeout)
}

/// [`as_completed`] over tasks already spawned.
pub fn as_completed_tasks<T>(
    tasks: impl IntoIterator<Item = Task<T>>,
    timeout: Option<Duration>,
) -> AsCompleted<T> {
    let order = Rc::new(Order::default());
    let pending: Vec<Option<Task<T>>> = tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            // Done callbacks run in the order the tasks finished (T10): they
            // record the completion order, even within one loop turn.
            let order = order.clone();
            t.add_done_callback(move |_| order.push(i));
            Some(t)
        })
        .collect();
    AsCompleted {
        left: pending.len(),
        pending,
        order,
        timer: timeout.map(sleep),
        timed_out: false,
    }
}

/// Indexes of finished children, in the order they finished.
#[derive(Default)]
struct Order {
    done: RefCell<VecDeque<usize>>,
    waker: Cell<Option<Waker>>,
}

impl Order {
    fn push(&self, i: usize) {
        self.done.borrow_mut().push_back(i);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The stream of [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T> {
    pending: Vec<Option<Task<T>>>,
    /// Children not yet yielded.
    left: usize,
    order: Rc<Order>,
    timer: Option<Sleep>,
    timed_out: bool,
}

impl<T> Unpin for AsCompleted<T> {}

impl<T> Stream for AsCompleted<T> {
    type Item = Result<T, AsCompletedError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.left == 0 {
            return Poll::Ready(None);
        }
        if this.timed_out {
            // Children done by the deadline still yield their outputs (their
            // done callbacks may not have run yet); every other child yields
            // Timeout and keeps running (detached).
            if let Some(slot) = this
                .pending
                .iter_mut()
                .find(|t| t.as_ref().is_some_and(Task::is_done))
            {
                let mut t = slot.take().expect("found above");
                this.left -= 1;
                let r = match Pin::new(&mut t).poll(cx) {
                    Poll::Ready(r) => r,
                    Poll::Pending => unreachable!("a done task has its output"),
                };
                return Poll::Ready(Some(r.map_err(AsCompletedError::Join)));
            }
            let t = this.pending.iter_mut().find_map(Option::take);
            this.left -= 1;
            if let Some(t) = t {
                t.detach();
            }
            return Poll::Ready(Some(Err(AsCompletedError::Timeout)));
        }
        let next = this.order.done.borrow_mut().pop_front();
        if let Some(i) = next {
            if let Some(mut t) = this.pending[i].take() {
                this.left -= 1;
                // Finished (its done callback ran): its output is ready.
                let r = match Pin::new(&mut t).poll(cx) {
                    Poll::Ready(r) => r,
                    Poll::Pending => unreachable!("a task whose done callback ran is finished"),
                };
                return Poll::Ready(Some(r.map_err(AsCompletedError::Join)));
            }
            // Already yielded (as a timeout): look again.
            return self.poll_next(cx);
        }
        this.order.waker.set(Some(cx.waker().clone()));
        if let Some(timer) = this.timer.as_mut() {
            if Pin::new(timer).poll(cx).is_ready() {
                this.timed_out = true;
                return self.poll_next(cx);
            }
        }
        Poll::Pending
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        // Like asyncio, abandoning the iteration does not cancel the rest.
        for t in self.pending.drain(..).flatten() {
            t.detach();
        }
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.left)
            .field("timed_out", &self.timed_out)
            .finish()
    }
}
