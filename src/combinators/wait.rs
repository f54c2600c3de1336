//! [`wait`] and [`as_completed`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::Stream;

use super::task_like::{ChildTask, TaskLike};
use crate::task::{JoinError, Task};
use crate::time::{Sleep, sleep};

/// When [`wait`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task finishes.
    FirstCompleted,
    /// As soon as any task has failed (also before the call), or when all
    /// finish. Failing is panicking for [`wait`], and also returning `Err`
    /// for [`try_wait`]; a cancelled task has not failed.
    FirstException,
    /// When every task has finished.
    AllCompleted,
}

/// Waits for `tasks` as `return_when` says, or until `timeout`, and returns
/// `(done, pending)` (asyncio's `wait`). Nothing is cancelled: a timeout
/// just returns, and the pending tasks keep running. Await a done task for
/// its output (it returns at once).
/// `timeout` is a [`Duration`] or an `Option<Duration>` (`None`: no
/// limit).
///
/// The tasks are [`Task`]s handed over, or `&mut Task`s their owner keeps
/// ([`ChildTask`]); either way they come back in `done` and `pending`. If
/// the `wait` future itself is dropped, tasks handed over are detached
/// (they keep running), as asyncio's `wait` holds no ownership of them, and
/// kept ones are simply left to their owner.
///
/// Failing, for [`ReturnWhen::FirstException`], is panicking; for tasks
/// returning `Result`, [`try_wait`] also counts `Err`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringloop::{ReturnWhen, sleep, spawn, wait};
/// ringloop::run(async {
///     let mut fast = spawn(async { sleep(Duration::from_millis(1)).await; 1 });
///     let mut slow = spawn(async { sleep(Duration::from_secs(60)).await; 2 });
///     let (done, pending) = wait([&mut fast, &mut slow], ReturnWhen::FirstCompleted, None).await;
///     assert_eq!((done.len(), pending.len()), (1, 1));
///     assert_eq!(fast.await.unwrap(), 1); // still ours
/// })
/// .unwrap();
/// ```
pub async fn wait<C: ChildTask>(
    tasks: impl IntoIterator<Item = C>,
    return_when: ReturnWhen,
    timeout: impl Into<Option<Duration>>,
) -> (Vec<C>, Vec<C>) {
    wait_with(tasks, return_when, timeout.into(), |t| t.is_panicked()).await
}

/// [`wait`] for tasks returning `Result`: for
/// [`ReturnWhen::FirstException`], a task that returned `Err` has failed as
/// well as one that panicked (the notion of failure of [`crate::try_gather`]
/// and [`crate::task_group`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringloop::{ReturnWhen, sleep, spawn, try_wait};
/// ringloop::run(async {
///     let bad = spawn(async { Err::<u8, &str>("bad") });
///     let slow = spawn(async { sleep(Duration::from_secs(60)).await; Ok(2) });
///     let (done, pending) = try_wait([bad, slow], ReturnWhen::FirstException, None).await;
///     assert_eq!((done.len(), pending.len()), (1, 1));
/// })
/// .unwrap();
/// ```
pub async fn try_wait<C, U, E>(
    tasks: impl IntoIterator<Item = C>,
    return_when: ReturnWhen,
    timeout: impl Into<Option<Duration>>,
) -> (Vec<C>, Vec<C>)
where
    C: ChildTask<Value = Result<U, E>>,
{
    wait_with(tasks, return_when, timeout.into(), |t| {
        t.is_panicked() || t.peek_output(|r| matches!(r, Ok(Err(_)))).unwrap_or(false)
    })
    .await
}

/// [`wait`] with `failed` telling whether a done task failed.
async fn wait_with<C: ChildTask>(
    tasks: impl IntoIterator<Item = C>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
    failed: impl Fn(&Task<C::Value>) -> bool,
) -> (Vec<C>, Vec<C>) {
    let mut guard = Release(tasks.into_iter().collect());
    let mut timer: Option<Sleep> = timeout.map(sleep);
    poll_fn(|cx| {
        let tasks = &guard.0;
        let mut done = 0;
        let mut any_failed = false;
        for t in tasks {
            if t.task().poll_finished(cx).is_ready() {
                done += 1;
                any_failed = any_failed || failed(t.task());
            }
        }
        let finished = match return_when {
            ReturnWhen::FirstCompleted => done > 0,
            ReturnWhen::FirstException => any_failed || done == tasks.len(),
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
        .partition(|t| TaskLike::is_done(t))
}

/// Releases (detaches owned, leaves kept) the tasks it still holds when
/// dropped.
struct Release<C: TaskLike>(Vec<C>);

impl<C: TaskLike> Drop for Release<C> {
    fn drop(&mut self) {
        for t in self.0.drain(..) {
            t.release();
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
/// (asyncio's `as_completed`). With a `timeout`, each child not done by
/// then yields [`AsCompletedError::Timeout`] (and is detached: it keeps
/// running). The timeout's timer is disarmed as soon as the last child
/// finishes, even while the stream is still held.
/// `timeout` is a [`Duration`] or an `Option<Duration>` (`None`: no
/// limit).
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
    timeout: impl Into<Option<Duration>>,
) -> AsCompleted<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future + 'static,
{
    as_completed_tasks(children.into_iter().map(crate::spawn), timeout)
}

/// [`as_completed`] over tasks already spawned: [`Task`]s handed over
/// (detached when they time out or the stream is dropped) or `&mut Task`s
/// their owner keeps (left running and awaitable by their owner).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use futures_util::StreamExt;
/// ringloop::run(async {
///     let mut slow = ringloop::spawn(async {
///         ringloop::sleep(Duration::from_millis(10)).await;
///         "slow"
///     });
///     let mut results = ringloop::as_completed_tasks([&mut slow], Some(Duration::from_millis(1)));
///     assert!(results.next().await.unwrap().is_err()); // timed out...
///     drop(results);
///     assert_eq!(slow.await.unwrap(), "slow"); // ...and still ours
/// })
/// .unwrap();
/// ```
pub fn as_completed_tasks<C: ChildTask>(
    tasks: impl IntoIterator<Item = C>,
    timeout: impl Into<Option<Duration>>,
) -> AsCompleted<C::Value, C> {
    let order = Rc::new(Order::default());
    let pending: Vec<Option<C>> = tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            // Done callbacks run in the order the tasks finished: they
            // record the completion order, even within one loop turn. They
            // hold the order weakly: a dropped stream stops listening.
            let order = Rc::downgrade(&order);
            t.task().add_done_callback(move |_| {
                if let Some(order) = order.upgrade() {
                    order.push(i);
                }
            });
            Some(t)
        })
        .collect();
    order.unfinished.set(pending.len());
    if !pending.is_empty() {
        *order.timer.borrow_mut() = timeout.into().map(sleep);
    }
    AsCompleted {
        left: pending.len(),
        pending,
        order,
        timed_out: false,
        _output: std::marker::PhantomData,
    }
}

/// Indexes of finished children, in the order they finished; and the
/// timeout's timer, disarmed when the last child finishes.
#[derive(Default)]
struct Order {
    done: RefCell<VecDeque<usize>>,
    /// Children whose done callback has not run yet.
    unfinished: Cell<usize>,
    timer: RefCell<Option<Sleep>>,
    waker: Cell<Option<Waker>>,
}

impl Order {
    fn push(&self, i: usize) {
        self.done.borrow_mut().push_back(i);
        let left = self.unfinished.get().saturating_sub(1);
        self.unfinished.set(left);
        if left == 0 {
            // Nothing left to time out: the loop must not keep a timer for it.
            let timer = self.timer.borrow_mut().take();
            drop(timer);
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The stream of [`as_completed`] and [`as_completed_tasks`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T, C: TaskLike = Task<T>> {
    pending: Vec<Option<C>>,
    /// Children not yet yielded.
    left: usize,
    order: Rc<Order>,
    timed_out: bool,
    _output: std::marker::PhantomData<fn() -> T>,
}

impl<T, C: TaskLike> Unpin for AsCompleted<T, C> {}

impl<T, C: ChildTask<Value = T>> AsCompleted<T, C> {
    /// Yields child `slot`'s output (it is finished).
    fn yield_done(
        &mut self,
        slot: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<T, AsCompletedError>>> {
        let mut t = self.pending[slot].take().expect("not yielded yet");
        self.left -= 1;
        let r = match Pin::new(&mut t).poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => unreachable!("a finished task has its output"),
        };
        Poll::Ready(Some(r.map_err(AsCompletedError::Join)))
    }
}

impl<T, C: ChildTask<Value = T>> Stream for AsCompleted<T, C> {
    type Item = Result<T, AsCompletedError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.left == 0 {
            return Poll::Ready(None);
        }
        if this.timed_out {
            // Children done by the deadline still yield their outputs (their
            // done callbacks may not have run yet); every other child yields
            // Timeout and keeps running (released).
            if let Some(slot) = this
                .pending
                .iter()
                .position(|t| t.as_ref().is_some_and(|t| t.task().is_done()))
            {
                return this.yield_done(slot, cx);
            }
            let t = this.pending.iter_mut().find_map(Option::take);
            this.left -= 1;
            if let Some(t) = t {
                t.release();
            }
            return Poll::Ready(Some(Err(AsCompletedError::Timeout)));
        }
        loop {
            let next = this.order.done.borrow_mut().pop_front();
            let Some(i) = next else { break };
            // Already yielded (as a timeout): look again.
            if this.pending[i].is_some() {
                // Finished (its done callback ran): its output is ready.
                return this.yield_done(i, cx);
            }
        }
        this.order.waker.set(Some(cx.waker().clone()));
        let expired = match this.order.timer.borrow_mut().as_mut() {
            Some(timer) => Pin::new(timer).poll(cx).is_ready(),
            None => false,
        };
        if expired {
            this.order.timer.borrow_mut().take();
            this.timed_out = true;
            return self.poll_next(cx);
        }
        Poll::Pending
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T, C: TaskLike> Drop for AsCompleted<T, C> {
    fn drop(&mut self) {
        // Like asyncio, abandoning the iteration does not cancel the rest.
        self.order.timer.borrow_mut().take();
        for t in self.pending.drain(..).flatten() {
            t.release();
        }
    }
}

impl<T, C: TaskLike> fmt::Debug for AsCompleted<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.left)
            .field("timed_out", &self.timed_out)
            .finish()
    }
}
