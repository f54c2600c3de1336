//! Synchronization between tasks of one loop: asyncio's primitives
//! ([`Lock`], [`Event`], [`Condition`], [`Semaphore`], [`BoundedSemaphore`],
//! [`Barrier`]), its queues ([`Queue`], [`LifoQueue`], [`PriorityQueue`]),
//! and two channels ([`oneshot`], [`mpsc`]); and [`cross`], a channel
//! between threads (between loops on different cores).
//!
//! Everything here but [`cross`] is loop-local: `!Send`, built on `Rc` and `RefCell`, with
//! no atomics and no locks, for tasks that may themselves be `!Send`. Each
//! type is a cheap handle: clones share the same primitive (as asyncio
//! objects are shared by reference), so hand each task its own clone.
//!
//! ```compile_fail
//! let lock = ringloop::sync::Lock::new();
//! std::thread::spawn(move || drop(lock)); // error: `Lock` is not `Send`
//! ```
//!
//! # Fairness and cancellation
//!
//! Cancelling a task drops its future, so every wait here may be dropped at
//! any `.await`. All primitives share one design that makes this safe by
//! construction:
//!
//! - Waiting tasks are nodes of a FIFO list (a slab with links). Waking
//!   one *notifies* it: the node leaves the list and records what it was
//!   given (the lock, a permit, a reserved queue item or slot, an error).
//! - A node is removed only by its own future: by its `poll`, which takes
//!   what it was given and returns it in that same poll, or by its `Drop`,
//!   which passes what it was given on to the next waiting node.
//! - A released lock or permit goes straight to the first waiter, so a
//!   newcomer can never overtake a waiting task (FIFO fairness), and the
//!   hand-over survives the waiter being dropped.
//! - A queue never hands an item to a waiting `get`: it *reserves* one, and
//!   the task takes it from the queue in the poll that returns it; a `put`
//!   inserts its item only in the poll that returns `Ok`.
//!
//! So a dropped `get` never loses an item, a dropped `put` never inserts
//! one, a dropped `lock` or `acquire` never leaks the lock or a permit, and
//! a dropped [`Condition::wait`] that had been notified notifies the next
//! waiter.
//!
//! Wakers are always woken after the internal `RefCell` borrow is released,
//! and items are dropped outside it too.
//!
//! # Examples
//!
//! asyncio's queue example: workers take jobs from a queue until cancelled,
//! and `join` waits until every job was marked done.
//!
//! ```
//! use std::time::Duration;
//! use ringloop::sync::Queue;
//!
//! ringloop::run(async {
//!     let queue = Queue::new(0);
//!     for ms in [3, 1, 2, 1] {
//!         queue.put_nowait(Duration::from_millis(ms)).unwrap();
//!     }
//!     let workers: Vec<_> = (0..2)
//!         .map(|_| {
//!             let queue = queue.clone();
//!             ringloop::spawn(async move {
//!                 loop {
//!                     let delay = queue.get().await.unwrap();
//!                     ringloop::sleep(delay).await;
//!                     queue.task_done().unwrap();
//!                 }
//!             })
//!         })
//!         .collect();
//!     queue.join().await;
//!     drop(workers); // cancels them
//!     assert!(queue.empty());
//! })
//! .unwrap();
//! ```

mod barrier;
mod condition;
pub mod cross;
mod error;
mod event;
mod lock;
pub mod mpsc;
pub mod oneshot;
mod permits;
mod queue;
mod semaphore;
mod wait_list;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condition::Condition;
pub use error::{
    BrokenBarrierError, QueueEmpty, QueueFull, QueueShutDown, ReleaseError, TaskDoneError,
    TryAcquireError, TryGetError, TryLockError, TryPutError,
};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use queue::{LifoQueue, PriorityQueue, Queue};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};
