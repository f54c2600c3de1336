//! [`TaskLike`] and [`ChildTask`]: what the combinators accept besides fresh
//! futures, owned or kept by the caller.

use std::future::Future;

use crate::promise::Promise;
use crate::task::{JoinError, Task};

mod sealed {
    pub trait Sealed {}
}

/// A task or a promise: something that runs (or gets its result) whether or
/// not anyone polls it, so a combinator may ask whether it is already done
/// without starting anything. asyncio's combinators accept tasks and
/// futures as they are and wrap coroutines in tasks; ringloop's take
/// `TaskLike`s where the difference matters ([`crate::shield`],
/// [`crate::wait_for_task`]) and spawn fresh futures themselves elsewhere.
///
/// Implemented for:
///
/// - [`Task<T>`]: handed over. The combinator decides its fate as asyncio
///   would (a timed-out [`crate::wait_for_task`] or a dropped
///   [`crate::gather_tasks`] cancels it; [`crate::shield`],
///   [`crate::wait`] and [`crate::as_completed_tasks`] let it run on).
/// - `&mut Task<T>`: kept by its owner. No combinator cancels or detaches a
///   borrowed task: dropping, cancelling or timing out the combinator leaves
///   it running, and the owner can still await its output afterwards
///   (asyncio passes tasks by reference; a timed-out `wait_for` there does
///   cancel the task, ringloop leaves a kept one to its owner, who may call
///   [`Task::cancel`]).
/// - [`Promise<T>`] and `&mut Promise<T>`: a promise is never cancelled by
///   an awaiter going away; hand a clone (or a borrow) and keep the promise.
///
/// Sealed: ringloop's combinators rely on polling these being free of side
/// effects.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task or a promise",
    label = "a fresh future: spawn it first",
    note = "hand over `spawn(f)`, or keep a task and hand `&mut task`"
)]
pub trait TaskLike: Future + Unpin + sealed::Sealed {
    /// Whether its output is there (polling it now would return it).
    fn is_done(&self) -> bool;

    /// Lets go of it without cancelling it: an owned task is detached (it
    /// runs on, unobserved), anything else is left alone.
    #[doc(hidden)]
    fn release(self)
    where
        Self: Sized;
}

impl<T> sealed::Sealed for Task<T> {}

impl<T> TaskLike for Task<T> {
    fn is_done(&self) -> bool {
        Task::is_done(self)
    }

    fn release(self) {
        self.detach();
    }
}

impl<T> sealed::Sealed for &mut Task<T> {}

impl<T> TaskLike for &mut Task<T> {
    fn is_done(&self) -> bool {
        Task::is_done(self)
    }

    fn release(self) {}
}

impl<T: Clone + 'static> sealed::Sealed for Promise<T> {}

impl<T: Clone + 'static> TaskLike for Promise<T> {
    fn is_done(&self) -> bool {
        Promise::is_done(self)
    }

    fn release(self) {}
}

impl<T: Clone + 'static> sealed::Sealed for &mut Promise<T> {}

impl<T: Clone + 'static> TaskLike for &mut Promise<T> {
    fn is_done(&self) -> bool {
        Promise::is_done(self)
    }

    fn release(self) {}
}

/// A task handed to [`crate::gather_tasks`], [`crate::wait`] or
/// [`crate::as_completed_tasks`]: a [`Task<T>`] (handed over) or a
/// `&mut Task<T>` (kept by its owner, never cancelled or detached by the
/// combinator; see [`TaskLike`]).
pub trait ChildTask: TaskLike<Output = Result<Self::Value, JoinError>> {
    /// The task's output type.
    type Value;

    /// The task itself.
    #[doc(hidden)]
    fn task(&self) -> &Task<Self::Value>;
}

impl<T> ChildTask for Task<T> {
    type Value = T;

    fn task(&self) -> &Task<T> {
        self
    }
}

impl<T> ChildTask for &mut Task<T> {
    type Value = T;

    fn task(&self) -> &Task<T> {
        self
    }
}
