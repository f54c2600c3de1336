//! asyncio's combinators: [`gather`], [`shield`], [`wait_for`], [`timeout`],
//! [`wait`], [`as_completed`], [`task_group`].
//!
//! Where asyncio turns a coroutine into a task, these spawn the future as a
//! ringloop task (so it needs `'static`), and say so in their docs;
//! [`wait_for`] and [`timeout`] poll their future in place and accept any
//! future. Where asyncio takes a task or future as it is, these take a
//! [`TaskLike`]: a [`crate::Task`] handed over, a `&mut Task` its owner
//! keeps (never cancelled or detached by the combinator), or a
//! [`crate::Promise`]; [`gather_tasks`], [`wait`] and [`as_completed_tasks`]
//! take tasks either way ([`ChildTask`]).
//!
//! "Error", as in asyncio, means a panic or a cancellation of a child
//! ([`crate::JoinError`]), plus `Err(e)` for the `try_` variants whose
//! children return `Result`.

mod gather;
mod shield;
mod task_group;
mod task_like;
mod timeout;
mod wait;

pub use gather::{Gather, GatherAll, GatherError, TryGather, gather, gather_tasks, try_gather};
#[doc(hidden)]
pub use gather::{GatherTuple, TupleSlot, gather_tuple};
pub use shield::{Shield, shield};
pub use task_group::{ChildError, ChildHandle, TaskGroup, TaskGroupError, task_group};
pub use task_like::{ChildTask, TaskLike};
pub use timeout::{TimeoutError, TimeoutScope, timeout, timeout_at, wait_for, wait_for_task};
pub use wait::{
    AsCompleted, AsCompletedError, ReturnWhen, as_completed, as_completed_tasks, try_wait, wait,
};
