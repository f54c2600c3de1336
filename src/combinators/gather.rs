//! [`gather`]: run children concurrently, results in argument order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::task_like::ChildTask;
use crate::task::{JoinError, Task};

/// Runs every future concurrently (each spawned as a task) and returns
/// their outputs in argument order.
///
/// Faithful to asyncio without `return_exceptions`: the first child error
/// (a panic, or a cancellation from outside) is returned at once and the
/// other children are **not** cancelled, they keep running. Use
/// [`Gather::return_exceptions`] to collect every outcome in place, or
/// [`crate::task_group`] for the structured version that cancels the rest.
/// Dropping the gather before it finishes cancels every child not yet done.
///
/// A promise, or anything else its owner keeps, can be gathered through a
/// future that awaits a clone or a borrow of it: the spawned wrapper is
/// what gets cancelled, never the promise.
///
/// Children of different types: [`gather!`](crate::gather!).
///
/// # Panics
///
/// Called outside a running loop (it spawns).
///
/// # Examples
///
/// ```
/// async fn add(x: i32, y: i32) -> i32 { x + y }
/// let sums = ringloop::run(async {
///     ringloop::gather([(2, 3), (4, 5), (5, 5), (7, 2)].map(|(x, y)| add(x, y))).await
/// })
/// .unwrap();
/// assert_eq!(sums.unwrap(), vec![5, 9, 10, 9]);
/// ```
pub fn gather<I>(children: I) -> Gather<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future + 'static,
{
    gather_tasks(children.into_iter().map(crate::spawn))
}

/// [`gather`] over tasks already spawned (a cancelled one counts as that
/// child failing with `Cancelled`).
///
/// The tasks are [`Task`]s handed over (cancelled if the gather is dropped
/// before they finish, detached when it returns an error early) or
/// `&mut Task`s their owner keeps (never cancelled or detached: dropping
/// the gather leaves them running and their owner can still await them).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let mut a = ringloop::spawn(async {
///         ringloop::sleep(Duration::from_millis(5)).await;
///         1
///     });
///     let mut b = ringloop::spawn(async { 2 });
///     let late = ringloop::wait_for(
///         ringloop::gather_tasks([&mut a, &mut b]),
///         Some(Duration::from_millis(1)),
///     )
///     .await;
///     assert!(late.is_err()); // timed out, but `a` and `b` are still ours
///     assert_eq!(a.await.unwrap() + b.await.unwrap(), 3);
/// })
/// .unwrap();
/// ```
pub fn gather_tasks<C: ChildTask>(tasks: impl IntoIterator<Item = C>) -> Gather<C::Value, C> {
    let children: Vec<Option<C>> = tasks.into_iter().map(Some).collect();
    Gather {
        pending: (0..children.len()).collect(),
        children,
        _output: std::marker::PhantomData,
    }
}

/// The future of [`gather`] and [`gather_tasks`]; resolves to
/// `Result<Vec<T>, JoinError>`.
///
/// A child's output is taken only when the gather returns (the failed
/// child's, or everyone's): a gather dropped earlier leaves every output
/// in its task, for a task's owner to await.
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<T, C = Task<T>> {
    /// The children, in argument order (`None` once let go of).
    children: Vec<Option<C>>,
    /// Indexes of children not yet finished (polled on each wake-up).
    pending: Vec<usize>,
    _output: std::marker::PhantomData<fn() -> T>,
}

impl<T, C> Unpin for Gather<T, C> {}

impl<T, C: ChildTask<Value = T>> Gather<T, C> {
    /// asyncio's `return_exceptions=True`: wait for every child and return
    /// each outcome in place, errors included.
    pub fn return_exceptions(self) -> GatherAll<T, C> {
        GatherAll { inner: self }
    }

    /// Polls the pending children, without taking their outputs. Returns
    /// the index of the first finished child that `failed` says failed,
    /// stopping there.
    fn poll_children(
        &mut self,
        cx: &mut Context<'_>,
        failed: impl Fn(&Task<T>) -> bool,
    ) -> Option<usize> {
        let mut i = 0;
        while i < self.pending.len() {
            let idx = self.pending[i];
            let task = self.children[idx]
                .as_ref()
                .expect("pending children are held")
                .task();
            if task.poll_finished(cx).is_pending() {
                i += 1;
                continue;
            }
            self.pending.swap_remove(i);
            if failed(task) {
                return Some(idx);
            }
        }
        None
    }

    /// Takes child `idx`'s output (it has finished).
    fn take(&mut self, idx: usize, cx: &mut Context<'_>) -> Result<T, JoinError> {
        let mut child = self.children[idx].take().expect("taken once");
        match Pin::new(&mut child).poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => unreachable!("a finished task has its output"),
        }
    }

    /// Takes every child's output, in argument order (all have finished),
    /// collected by the caller straight into what it returns.
    fn take_all<'a>(
        &'a mut self,
        cx: &'a mut Context<'_>,
    ) -> impl Iterator<Item = Result<T, JoinError>> + 'a {
        (0..self.children.len()).map(move |i| self.take(i, cx))
    }

    /// Lets the other children go without cancelling them: tasks handed
    /// over run on unobserved (an output already there is dropped), kept
    /// ones stay with their owner.
    fn release_rest(&mut self) {
        self.pending.clear();
        for child in self.children.drain(..).flatten() {
            child.release();
        }
    }
}

impl<T, C: ChildTask<Value = T>> Future for Gather<T, C> {
    type Output = Result<Vec<T>, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(idx) = this.poll_children(cx, Task::failed) {
            // The first error is returned; the others keep running.
            let e = this.take(idx, cx).err();
            this.release_rest();
            return Poll::Ready(Err(e.expect("the failed child's output is an error")));
        }
        if !this.pending.is_empty() {
            return Poll::Pending;
        }
        let out = this.take_all(cx).collect();
        Poll::Ready(out)
    }
}

impl<T, C> fmt::Debug for Gather<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("children", &self.children.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// The future of [`Gather::return_exceptions`]: every child's outcome, in
/// argument order.
#[must_use = "futures do nothing unless awaited"]
pub struct GatherAll<T, C = Task<T>> {
    inner: Gather<T, C>,
}

impl<T, C: ChildTask<Value = T>> Future for GatherAll<T, C> {
    type Output = Vec<Result<T, JoinError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let g = &mut self.inner;
        g.poll_children(cx, |_| false);
        if !g.pending.is_empty() {
            return Poll::Pending;
        }
        Poll::Ready(g.take_all(cx).collect())
    }
}

impl<T, C> fmt::Debug for GatherAll<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GatherAll").field(&self.inner).finish()
    }
}

/// Why [`try_gather`] failed: a child returned `Err`, or panicked or was
/// cancelled.
#[derive(Debug)]
pub enum GatherError<E> {
    /// A child returned this error.
    Failed(E),
    /// A child panicked or was cancelled.
    Join(JoinError),
}

impl<E: fmt::Display> fmt::Display for GatherError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatherError::Failed(e) => write!(f, "a gathered child failed: {e}"),
            GatherError::Join(e) => write!(f, "a gathered child did not finish: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for GatherError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GatherError::Failed(e) => Some(e),
            GatherError::Join(e) => Some(e),
        }
    }
}

/// [`gather`] for children returning `Result`: the first `Err` (or panic,
/// or cancellation) is returned at once and the other children keep
/// running, as in asyncio's `gather`; [`crate::task_group`] cancels them
/// instead.
///
/// # Panics
///
/// Called outside a running loop (it spawns).
///
/// # Examples
///
/// ```
/// let r = ringloop::run(async {
///     ringloop::try_gather([Ok(1), Err("bad"), Ok(3)].map(|r| async move { r })).await
/// })
/// .unwrap();
/// assert!(matches!(r, Err(ringloop::GatherError::Failed("bad"))));
/// ```
pub fn try_gather<I, T, E>(children: I) -> TryGather<T, E>
where
    I: IntoIterator,
    I::Item: Future<Output = Result<T, E>> + 'static,
{
    TryGather {
        inner: gather(children),
    }
}

/// The future of [`try_gather`].
#[must_use = "futures do nothing unless awaited"]
pub struct TryGather<T, E> {
    inner: Gather<Result<T, E>>,
}

impl<T, E> Future for TryGather<T, E> {
    type Output = Result<Vec<T>, GatherError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let g = &mut self.inner;
        if let Some(idx) = g.poll_children(cx, |t| {
            t.failed() || t.peek_output(|r| matches!(r, Ok(Err(_)))).unwrap_or(false)
        }) {
            let failure = match g.take(idx, cx) {
                Ok(Err(e)) => GatherError::Failed(e),
                Err(e) => GatherError::Join(e),
                Ok(Ok(_)) => unreachable!("the failed child's output is a failure"),
            };
            g.release_rest();
            return Poll::Ready(Err(failure));
        }
        if !g.pending.is_empty() {
            return Poll::Pending;
        }
        let out = g
            .take_all(cx)
            .map(|r| match r {
                Ok(Ok(v)) => v,
                _ => unreachable!("every child finished with Ok"),
            })
            .collect();
        Poll::Ready(Ok(out))
    }
}

impl<T, E> fmt::Debug for TryGather<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TryGather").field(&self.inner).finish()
    }
}

/// One child of a heterogeneous gather (see [`gather!`](crate::gather!)).
#[doc(hidden)]
#[derive(Debug)]
pub struct TupleSlot<T> {
    task: Option<Task<T>>,
    out: Option<T>,
}

impl<T> TupleSlot<T> {
    #[doc(hidden)]
    pub fn new(task: Task<T>) -> Self {
        TupleSlot {
            task: Some(task),
            out: None,
        }
    }

    /// Polls the child; `Err` if it failed.
    #[doc(hidden)]
    pub fn poll_slot(&mut self, cx: &mut Context<'_>) -> Result<bool, JoinError> {
        if let Some(task) = &mut self.task {
            match Pin::new(task).poll(cx) {
                Poll::Pending => return Ok(false),
                Poll::Ready(r) => {
                    self.task = None;
                    self.out = Some(r?);
                }
            }
        }
        Ok(true)
    }

    #[doc(hidden)]
    pub fn detach(&mut self) {
        if let Some(t) = self.task.take() {
            t.detach();
        }
    }

    #[doc(hidden)]
    pub fn take(&mut self) -> T {
        self.out.take().expect("child finished")
    }
}

/// Polling logic shared by the tuples of [`gather!`](crate::gather!).
#[doc(hidden)]
pub trait GatherTuple {
    type Output;
    fn poll_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::Output, JoinError>>;
}

macro_rules! impl_gather_tuple {
    ($($T:ident $i:tt),+) => {
        impl<$($T),+> GatherTuple for ($(TupleSlot<$T>,)+) {
            type Output = ($($T,)+);
            fn poll_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::Output, JoinError>> {
                let mut all = true;
                let mut failed = None;
                $(
                    if failed.is_none() {
                        match self.$i.poll_slot(cx) {
                            Ok(done) => all &= done,
                            Err(e) => failed = Some(e),
                        }
                    }
                )+
                if let Some(e) = failed {
                    $( self.$i.detach(); )+
                    return Poll::Ready(Err(e));
                }
                if !all {
                    return Poll::Pending;
                }
                Poll::Ready(Ok(($(self.$i.take(),)+)))
            }
        }
    };
}

impl_gather_tuple!(A 0);
impl_gather_tuple!(A 0, B 1);
impl_gather_tuple!(A 0, B 1, C 2);
impl_gather_tuple!(A 0, B 1, C 2, D 3);
impl_gather_tuple!(A 0, B 1, C 2, D 3, E 4);
impl_gather_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
impl_gather_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
impl_gather_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
impl_gather_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
impl_gather_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
impl_gather_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
impl_gather_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// Awaits a tuple of [`TupleSlot`]s (what [`gather!`](crate::gather!) builds).
#[doc(hidden)]
pub fn gather_tuple<S: GatherTuple>(
    slots: S,
) -> impl Future<Output = Result<S::Output, JoinError>> {
    let mut slots = Some(slots);
    std::future::poll_fn(move |cx| {
        let s = slots.as_mut().expect("polled after completion");
        let r = s.poll_all(cx);
        if r.is_ready() {
            slots = None;
        }
        r
    })
}

/// Gathers up to 12 futures of different types, each spawned as a task;
/// resolves to `Result<(A, B, ...), JoinError>` in argument order, with
/// [`gather`]'s semantics (first error returned, the others keep running).
///
/// # Examples
///
/// ```
/// let (n, s) = ringloop::run(async {
///     ringloop::gather!(async { 1 + 1 }, async { "two" }).await
/// })
/// .unwrap()
/// .unwrap();
/// assert_eq!((n, s), (2, "two"));
/// ```
#[macro_export]
macro_rules! gather {
    ($($fut:expr),+ $(,)?) => {
        $crate::combinators::gather_tuple(
            ($($crate::combinators::TupleSlot::new($crate::spawn($fut)),)+)
        )
    };
}
