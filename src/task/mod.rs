//! Tasks: a future scheduled on an event loop, and the handles to it.
//!
//! A task is one heap allocation (see `raw`) holding its header and its
//! future, later its output. [`Task<T>`] awaits it; dropping the `Task`
//! cancels it (asyncio's cancellation propagating through `await`), while
//! [`Task::detach`] lets it run free. A cancelled task's future is dropped at
//! its next turn on the loop (its `Drop` is the `finally`), before anyone
//! awaiting it sees [`JoinError`]'s `Cancelled`.

mod cell_cache;
mod error;
pub(crate) mod raw;
mod remote;
mod report;
pub(crate) mod sched;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

pub use error::JoinError;
pub(crate) use report::default_handler;
pub use report::{ExceptionContext, ExceptionKind};

use raw::{CANCELLED, COMPLETE, HANDLE, OUTPUT_TAKEN, PANICKED, TaskRef};
use sched::Executor;

/// The executor that owns `task` (kept alive by the `Rc`), when called on
/// its loop's thread while the loop is alive.
fn executor_of(task: &TaskRef) -> Option<Rc<Executor>> {
    task.header().sched.executor()
}

/// Names one registration of a done callback, to remove it again
/// ([`Task::remove_done_callback`], [`Promise::remove_done_callback`]).
///
/// asyncio's `remove_done_callback(fn)` finds callbacks by equality, which
/// Rust closures lack: ringloop's `add_done_callback` returns this id
/// instead, unique in the process, and removing by id removes that one
/// registration. Ignoring the id is fine: the callback just cannot be
/// removed.
///
/// [`Promise::remove_done_callback`]: crate::Promise::remove_done_callback
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let task = ringloop::spawn(async {});
///     let id = task.add_done_callback(|_| unreachable!("removed"));
///     assert_eq!(task.remove_done_callback(id), 1);
///     task.await.unwrap();
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

impl CallbackId {
    /// A fresh id, never handed out before in this process.
    pub(crate) fn next() -> CallbackId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        CallbackId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A handle to a spawned task: await it for its output.
///
/// Dropping a `Task` cancels the task: a deliberate difference from asyncio,
/// where a task runs on when its handle is dropped. It is how cancelling a
/// task that awaits another reaches that one too, as asyncio's
/// cancellation propagates through `await`. Call [`Task::detach`] to let it
/// run to completion unobserved. `Task` is `!Send`: tasks belong to the loop
/// (thread) that spawned them.
///
/// # Examples
///
/// ```
/// let out = ringloop::run(async {
///     let task = ringloop::spawn(async { 40 + 2 });
///     task.await.unwrap()
/// })
/// .unwrap();
/// assert_eq!(out, 42);
/// ```
#[must_use = "dropping a Task cancels it; call .detach() to let it run"]
pub struct Task<T> {
    raw: Option<TaskRef>,
    _output: PhantomData<Rc<T>>,
}

impl<T> Task<T> {
    pub(crate) fn from_raw(raw: TaskRef) -> Task<T> {
        Task {
            raw: Some(raw),
            _output: PhantomData,
        }
    }

    fn raw(&self) -> &TaskRef {
        self.raw.as_ref().expect("Task used after detach")
    }

    /// Requests cancellation: the task's future is dropped at its next turn
    /// on the loop and awaiting it gives a cancelled [`JoinError`].
    ///
    /// Returns false if the task had already finished (nothing changes),
    /// true otherwise.
    pub fn cancel(&self) -> bool {
        TaskHandle::cancel_raw(self.raw())
    }

    /// Whether the task has finished (with an output, a panic or cancelled).
    pub fn is_done(&self) -> bool {
        self.raw().header().has(COMPLETE)
    }

    /// Whether the task finished by being cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.raw().header().has(CANCELLED)
    }

    /// The task's name: the one given to [`crate::spawn_named`], or `Task-N`.
    pub fn name(&self) -> String {
        self.raw().header().name()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        let h = self.raw().header();
        let name = name.into().into_boxed_str();
        h.span.rename(&name);
        h.set_name(name);
    }

    /// A type-erased handle to the same task (what [`crate::all_tasks`]
    /// returns); it does not cancel the task when dropped.
    pub fn handle(&self) -> TaskHandle {
        TaskHandle::from_raw(self.raw().clone())
    }

    /// Calls `f` soon (not inline) after the task finishes; callbacks run in
    /// the order they were added, and one added to a finished task is
    /// scheduled at once. Returns the id that
    /// [`remove_done_callback`](Task::remove_done_callback) takes.
    pub fn add_done_callback(&self, f: impl FnOnce(&TaskHandle) + 'static) -> CallbackId {
        TaskHandle::add_done_callback_raw(self.raw(), Box::new(f))
    }

    /// Removes the done callback registered as `id`; returns how many
    /// registrations went (1, or 0 if `id` is not one of this task's
    /// callbacks still waiting). asyncio's `remove_done_callback`, by id
    /// rather than by function (see [`CallbackId`]). As in asyncio, a
    /// callback already scheduled (the task finished) can no longer be
    /// removed and runs.
    pub fn remove_done_callback(&self, id: CallbackId) -> usize {
        TaskHandle::remove_done_callback_raw(self.raw(), id)
    }

    /// Lets the task run to completion with nobody awaiting it. A panic in
    /// a detached task is reported to the loop's exception handler.
    pub fn detach(mut self) {
        let raw = self.raw.take().expect("Task used after detach");
        let h = raw.header();
        h.clear(HANDLE);
        if h.has(COMPLETE) {
            if let Some(exec) = executor_of(&raw) {
                exec.discard_output(&raw);
            } else {
                drop(raw.drop_output());
            }
        }
    }
}

impl<T> Task<T> {
    /// Ready once the task has finished, without taking its output.
    pub(crate) fn poll_finished(&self, cx: &mut Context<'_>) -> Poll<()> {
        let h = self.raw().header();
        if h.has(COMPLETE) {
            return Poll::Ready(());
        }
        register_join_waker(h, cx);
        Poll::Pending
    }

    /// Cancels the task now, as dropping the handle would (its future's
    /// cleanup has run when this returns, unless it is being polled right
    /// now: then the request is deferred), but keeps the handle so that the
    /// outcome (a panic of that cleanup) can still be read.
    pub(crate) fn cancel_now(&self) -> bool {
        let raw = self.raw();
        match executor_of(raw) {
            Some(exec) => exec.cancel_now(raw),
            None => TaskHandle::cancel_raw(raw),
        }
    }

    /// Whether the task finished by panicking.
    pub(crate) fn is_panicked(&self) -> bool {
        self.raw().header().has(PANICKED)
    }

    /// Whether the task finished with a [`JoinError`] (it panicked or was
    /// cancelled): what its output's `is_err()` says, read from its state
    /// bits without touching the output.
    pub(crate) fn failed(&self) -> bool {
        let h = self.raw().header();
        h.has(COMPLETE) && (h.has(PANICKED) || h.has(CANCELLED))
    }

    /// Reads the task's output in place, without taking it: `None` while
    /// the task runs or once the output was taken.
    pub(crate) fn peek_output<R>(&self, f: impl FnOnce(&Result<T, JoinError>) -> R) -> Option<R> {
        // SAFETY: owner thread (Task is !Send), and `T` is the output type
        // this task was spawned with.
        unsafe { self.raw().peek_output(f) }
    }
}

fn register_join_waker(h: &raw::Header, cx: &Context<'_>) {
    let w = h.join_waker.take();
    match w {
        Some(w) if w.will_wake(cx.waker()) => h.join_waker.set(Some(w)),
        _ => h.join_waker.set(Some(cx.waker().clone())),
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let raw = self.raw();
        let h = raw.header();
        if h.has(COMPLETE) {
            assert!(
                !h.has(OUTPUT_TAKEN),
                "Task polled after it returned its output"
            );
            h.set(OUTPUT_TAKEN);
            // SAFETY: owner thread (Task is !Send), complete, not yet taken,
            // and `T` is the output type this task was spawned with.
            return Poll::Ready(unsafe { raw.take_output::<T>() });
        }
        register_join_waker(h, cx);
        Poll::Pending
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        let Some(raw) = self.raw.take() else { return };
        let h = raw.header();
        h.clear(HANDLE);
        if !h.has(COMPLETE) {
            // Cancel synchronously: the task's cleanup has run when the
            // handle's drop returns (so `wait_for`, `gather` and `TaskGroup`
            // can drop handles and know the children are finished).
            match executor_of(&raw) {
                Some(exec) => {
                    exec.cancel_now(&raw);
                }
                None => {
                    TaskHandle::cancel_raw(&raw);
                }
            }
        } else if !h.has(OUTPUT_TAKEN) {
            h.set(OUTPUT_TAKEN);
            match executor_of(&raw) {
                Some(exec) => exec.discard_output(&raw),
                None => drop(raw.drop_output()),
            }
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.raw {
            Some(raw) => TaskHandle::fmt_raw(raw, f),
            None => f.write_str("Task(detached)"),
        }
    }
}

/// A type-erased, non-owning handle to a task: name, state, cancellation.
///
/// Returned by [`crate::current_task`] and [`crate::all_tasks`] and passed to
/// done callbacks. Dropping it does not cancel the task.
#[derive(Clone)]
pub struct TaskHandle {
    raw: TaskRef,
    _not_send: PhantomData<Rc<()>>,
}

impl TaskHandle {
    pub(crate) fn from_raw(raw: TaskRef) -> TaskHandle {
        TaskHandle {
            raw,
            _not_send: PhantomData,
        }
    }

    fn cancel_raw(raw: &TaskRef) -> bool {
        match executor_of(raw) {
            Some(exec) => exec.cancel(raw),
            None => !raw.header().has(COMPLETE),
        }
    }

    fn add_done_callback_raw(raw: &TaskRef, cb: raw::DoneCallback) -> CallbackId {
        let id = CallbackId::next();
        if let Some(exec) = executor_of(raw) {
            exec.add_done_callback(raw, id, cb);
        }
        id
    }

    fn remove_done_callback_raw(raw: &TaskRef, id: CallbackId) -> usize {
        match executor_of(raw) {
            Some(exec) => exec.remove_done_callback(raw, id),
            None => 0,
        }
    }

    fn fmt_raw(raw: &TaskRef, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = raw.header();
        let state = if h.has(CANCELLED) {
            "cancelled"
        } else if h.has(COMPLETE) {
            "finished"
        } else {
            "pending"
        };
        write!(f, "<Task {} {state}>", h.name())
    }

    /// See [`Task::cancel`].
    pub fn cancel(&self) -> bool {
        Self::cancel_raw(&self.raw)
    }

    /// See [`Task::is_done`].
    pub fn is_done(&self) -> bool {
        self.raw.header().has(COMPLETE)
    }

    /// See [`Task::is_cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.raw.header().has(CANCELLED)
    }

    /// See [`Task::name`].
    pub fn name(&self) -> String {
        self.raw.header().name()
    }

    /// See [`Task::add_done_callback`].
    pub fn add_done_callback(&self, f: impl FnOnce(&TaskHandle) + 'static) -> CallbackId {
        Self::add_done_callback_raw(&self.raw, Box::new(f))
    }

    /// See [`Task::remove_done_callback`].
    pub fn remove_done_callback(&self, id: CallbackId) -> usize {
        Self::remove_done_callback_raw(&self.raw, id)
    }
}

impl PartialEq for TaskHandle {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for TaskHandle {}

impl fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Self::fmt_raw(&self.raw, f)
    }
}
