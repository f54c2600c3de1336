//! [`task_group`]: structured concurrency (asyncio's `TaskGroup`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;

use crate::runtime::RuntimeError;
use crate::task::{JoinError, Task, TaskHandle};

/// Why a [`task_group`] child (or the group's body) failed.
#[derive(Debug)]
pub enum ChildError<E> {
    /// The child, or the body, returned this error.
    Failed(E),
    /// The child panicked.
    Panicked(JoinError),
}

impl<E: fmt::Display> fmt::Display for ChildError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Failed(e) => e.fmt(f),
            ChildError::Panicked(e) => e.fmt(f),
        }
    }
}

/// Every error of a failed [`task_group`] (asyncio's `ExceptionGroup`), in
/// the order they happened.
#[derive(Debug)]
pub struct TaskGroupError<E> {
    errors: Vec<ChildError<E>>,
}

impl<E> TaskGroupError<E> {
    /// The errors, first one first.
    pub fn errors(&self) -> &[ChildError<E>] {
        &self.errors
    }

    /// The errors, by value.
    pub fn into_errors(self) -> Vec<ChildError<E>> {
        self.errors
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} task group child(ren) failed", self.errors.len())?;
        for e in &self.errors {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskGroupError<E> {}

struct Inner<E> {
    children: RefCell<Vec<Task<()>>>,
    errors: RefCell<Vec<ChildError<E>>>,
    /// A child failed: the group is shutting down.
    aborting: Cell<bool>,
    /// The group has returned.
    finished: Cell<bool>,
    /// The group's future is being polled (spawning from the body need not
    /// wake it: it polls the new child before it returns).
    polling: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl<E> Inner<E> {
    fn fail(&self, e: ChildError<E>) {
        self.errors.borrow_mut().push(e);
        self.aborting.set(true);
        self.wake();
    }

    fn wake(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The handle a [`task_group`] body (and its children) spawn children with.
pub struct TaskGroup<E> {
    inner: Rc<Inner<E>>,
}

impl<E> Clone for TaskGroup<E> {
    fn clone(&self) -> Self {
        TaskGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E: 'static> TaskGroup<E> {
    /// Spawns a child (as a task). Its `Ok` value is kept in the returned
    /// handle; an `Err` (or a panic) makes the whole group fail. Children
    /// may be added at any time while the group runs.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] if the group already finished or is shutting
    /// down after a failure (asyncio raises `RuntimeError` too); the future
    /// is dropped without running.
    pub fn spawn<T, F>(&self, future: F) -> Result<ChildHandle<T>, RuntimeError>
    where
        T: 'static,
        F: Future<Output = Result<T, E>> + 'static,
    {
        if self.inner.finished.get() || self.inner.aborting.get() {
            return Err(RuntimeError::Closed);
        }
        let slot = Rc::new(Cell::new(None));
        let inner = self.inner.clone();
        let out = slot.clone();
        let task = crate::spawn(async move {
            // Panics are caught here, in the child, so failures are recorded
            // in the order they happen whatever their kind.
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(Ok(v)) => out.set(Some(v)),
                Ok(Err(e)) => inner.fail(ChildError::Failed(e)),
                Err(payload) => inner.fail(ChildError::Panicked(JoinError::panicked(payload))),
            }
        });
        let handle = task.handle();
        self.inner.children.borrow_mut().push(task);
        if !self.inner.polling.get() {
            // Spawned from elsewhere (a child): the group must look at it.
            self.inner.wake();
        }
        Ok(ChildHandle { handle, slot })
    }
}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("children", &self.inner.children.borrow().len())
            .field("aborting", &self.inner.aborting.get())
            .finish()
    }
}

/// A child of a [`task_group`]: its state, and its value once done.
/// Dropping it does not cancel the child (the group owns the children).
pub struct ChildHandle<T> {
    handle: TaskHandle,
    slot: Rc<Cell<Option<T>>>,
}

impl<T> ChildHandle<T> {
    /// Takes the child's `Ok` value, once it finished with one.
    pub fn take_result(&self) -> Option<T> {
        self.slot.take()
    }

    /// Cancels the child. A child cancelled this way is not a group error.
    pub fn cancel(&self) -> bool {
        self.handle.cancel()
    }

    /// Whether the child finished.
    pub fn is_done(&self) -> bool {
        self.handle.is_done()
    }

    /// Whether the child was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.handle.is_cancelled()
    }

    /// The child task's name.
    pub fn name(&self) -> String {
        self.handle.name()
    }
}

impl<T> fmt::Debug for ChildHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChildHandle").field(&self.handle).finish()
    }
}

/// Cancels (drops) every child still held when the group future is dropped.
struct CancelChildren<E>(Rc<Inner<E>>);

impl<E> Drop for CancelChildren<E> {
    fn drop(&mut self) {
        let children = std::mem::take(&mut *self.0.children.borrow_mut());
        drop(children);
        self.0.finished.set(true);
    }
}

/// Structured concurrency (asyncio's `TaskGroup`): runs `body` with a
/// [`TaskGroup`] to spawn children with, and returns the body's `Ok` value
/// once the body **and every child** have finished.
///
/// The first failure, a child's or the body's own (an `Err` or a panic of
/// a child, an `Err` of the body), cancels every other child and the body,
/// waits for them to finish cancelling, and returns every error that
/// occurred, in order: the body's `Err` is one of them, as asyncio puts the
/// body's exception into the group's `ExceptionGroup`. A nested group's
/// [`TaskGroupError`] returned by the body (with `?`, when `E` converts
/// from it) or by a child is one error of the outer group. A child
/// cancelled from outside is not a failure. Dropping the group's future
/// cancels all children.
///
/// The body is polled in place (it may borrow); children are spawned as
/// tasks (`'static`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let r = ringloop::task_group(|tg| async move {
///         let a = tg.spawn(async { Ok::<_, String>(1) }).unwrap();
///         let b = tg.spawn(async {
///             ringloop::sleep(Duration::from_millis(1)).await;
///             Ok(2)
///         })
///         .unwrap();
///         Ok((a, b))
///     })
///     .await;
///     let (a, b) = r.unwrap();
///     assert_eq!((a.take_result(), b.take_result()), (Some(1), Some(2)));
/// })
/// .unwrap();
/// ```
pub async fn task_group<E, R, B, Fut>(body: B) -> Result<R, TaskGroupError<E>>
where
    E: 'static,
    B: FnOnce(TaskGroup<E>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    let inner = Rc::new(Inner {
        children: RefCell::new(Vec::new()),
        errors: RefCell::new(Vec::new()),
        aborting: Cell::new(false),
        finished: Cell::new(false),
        polling: Cell::new(false),
        waker: Cell::new(None),
    });
    let guard = CancelChildren(inner.clone());
    let mut body = pin!(Some(body(TaskGroup {
        inner: inner.clone(),
    })));
    let mut output = None;
    let mut cancelled_rest = false;
    poll_fn(|cx| {
        inner.waker.set(Some(cx.waker().clone()));
        inner.polling.set(true);
        let r = poll_group(&inner, cx, &mut body, &mut output, &mut cancelled_rest);
        inner.polling.set(false);
        r
    })
    .await;
    drop(guard);
    let errors = std::mem::take(&mut *inner.errors.borrow_mut());
    if errors.is_empty() {
        Ok(output.expect("the body finished"))
    } else {
        Err(TaskGroupError { errors })
    }
}

/// One poll of the group: the body, then the children.
fn poll_group<E, R, Fut: Future<Output = Result<R, E>>>(
    inner: &Inner<E>,
    cx: &mut std::task::Context<'_>,
    body: &mut Pin<&mut Option<Fut>>,
    output: &mut Option<R>,
    cancelled_rest: &mut bool,
) -> Poll<()> {
    {
        loop {
            if !inner.aborting.get() {
                if let Some(b) = body.as_mut().as_pin_mut() {
                    if let Poll::Ready(v) = b.poll(cx) {
                        body.set(None);
                        match v {
                            Ok(v) => *output = Some(v),
                            // The body failing fails the group like a child.
                            Err(e) => inner.fail(ChildError::Failed(e)),
                        }
                    }
                }
            }
            poll_children(inner, cx);
            if inner.aborting.get() && !*cancelled_rest {
                // Cancel the body and every other child, at once: their
                // cleanup has run when this returns.
                *cancelled_rest = true;
                body.set(None);
                let rest = std::mem::take(&mut *inner.children.borrow_mut());
                for child in &rest {
                    child.cancel_now();
                }
                // A child whose cleanup panicked failed too: its error
                // joins the others (read by `poll_children`).
                inner.children.borrow_mut().extend(rest);
                poll_children(inner, cx);
                // Their cancellation may have let new failures in: re-check.
                continue;
            }
            let children_left = !inner.children.borrow().is_empty();
            let body_left = body.is_some();
            return if children_left || body_left {
                Poll::Pending
            } else {
                Poll::Ready(())
            };
        }
    }
}

/// Polls the children, dropping finished ones and recording panics.
fn poll_children<E>(inner: &Inner<E>, cx: &mut std::task::Context<'_>) {
    let mut children = std::mem::take(&mut *inner.children.borrow_mut());
    children.retain_mut(|t| match Pin::new(t).poll(cx) {
        Poll::Pending => true,
        Poll::Ready(Ok(())) => false,
        Poll::Ready(Err(e)) => {
            if e.is_panic() {
                inner.fail(ChildError::Panicked(e));
            }
            false
        }
    });
    // Children spawned while we polled went into the emptied vector.
    let mut current = inner.children.borrow_mut();
    children.append(&mut current);
    *current = children;
}
