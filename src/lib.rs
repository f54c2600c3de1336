//! ringloop: an io_uring, thread-per-core, completion-driven async runtime
//! with asyncio's programming model.
//!
//! Each thread runs its own [`EventLoop`]: tasks, timers and callbacks in
//! user space, and every I/O operation submitted to the loop's driver (one
//! io_uring, or its epoll stand-in) whose completions wake the tasks
//! waiting for them (a sleep is a timer of the
//! loop, whose nearest deadline bounds the ring's wait). Blocking calls go
//! to a thread pool ([`to_thread`]). The API speaks
//! asyncio: [`run`], [`spawn`], [`sleep`], [`Task::cancel`], [`Promise`],
//! `call_soon`, `call_later`, `run_until_complete`, `run_forever`, `stop`.
//!
//! Where io_uring is refused (Docker's, containerd's and Kubernetes'
//! default seccomp profiles, gVisor, `kernel.io_uring_disabled`, kernels
//! before 5.11) the loop runs on epoll instead, behind the same API and
//! semantics; [`Backend`] says how it is chosen and
//! [`EventLoop::backend`] which one runs.
//!
//! New here? [`guide`] walks through ringloop coming from asyncio or tokio,
//! thread-per-core servers, what cancellation promises, the backends, and
//! where sockets come from.
//!
//! # Quick start
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! async fn say_after(delay: Duration, what: &'static str) -> &'static str {
//!     ringloop::sleep(delay).await;
//!     what
//! }
//!
//! let t0 = Instant::now();
//! let (a, b) = ringloop::run(async {
//!     let a = ringloop::spawn(say_after(Duration::from_millis(20), "hello"));
//!     let b = ringloop::spawn(say_after(Duration::from_millis(10), "world"));
//!     (a.await.unwrap(), b.await.unwrap())
//! })?;
//! assert_eq!((a, b), ("hello", "world"));
//! // The two sleeps ran concurrently: about 20 ms in all, not 30.
//! assert!(t0.elapsed() >= Duration::from_millis(20));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Layers
//!
//! `sys` (raw syscalls) and `buf` (the owned-buffer traits, kept read
//! bytes) → `driver` (the proactor: ops own their buffers until their
//! completion arrives, whatever happens to their futures; io_uring, or
//! epoll carrying out the same submissions) → `task` (one allocation per task, FIFO run queue) → `runtime`
//! (the loop, timers, callbacks, the blocking pool) → [`time`], [`Promise`],
//! [`combinators`], [`sync`], and the I/O modules [`io`], [`net`], [`fs`],
//! [`process`], [`signal`]; with the cargo feature `tls`, `tls` (rustls
//! sessions over ringloop's streams).
//!
//! # Cargo features
//!
//! - `hyper`: `ringloop::hyper`, hyper 1.x's runtime traits on the loop
//!   (HTTP/1.1 and HTTP/2, client and server, no tokio); its I/O goes
//!   through [`io::PollIo`], the readiness path that reads and writes the
//!   caller's buffers with no copy, or through a TLS stream.
//! - `tls`: `ringloop::tls`, TLS sessions with rustls 0.23 (its `ring`
//!   provider) over ringloop's streams: `TlsAcceptor`, `TlsConnector`,
//!   `TlsStream` (owned-buffer calls, `futures_io`, and
//!   `PollRead`/`PollWrite` for hyper), and TLS for the streams layer.
//! - `tracing`: spans and events through the `tracing` crate: a `task`
//!   span per task (target `ringloop::task`, DEBUG; fields `id`, `name`,
//!   `parent`: the spawning task's id) entered around each poll, and
//!   events for reports to the exception handler (slow polls, errors
//!   nobody retrieved; target `ringloop::exception`), the backend a loop
//!   came up on and an automatic fallback to epoll (`ringloop::driver`),
//!   accept backing off on EMFILE (`ringloop::net`) and signal deliveries
//!   (`ringloop::signal`). Without the feature none of it is compiled in;
//!   with it and no subscriber, a task's span is a `None` checked per poll.
//!   See `docs/design/tracing.md`.
//!
//! # Cancellation
//!
//! Dropping a [`Task`] cancels it (unlike asyncio, where a task runs on
//! when its handle is dropped; [`Task::detach`] lets it run): its future
//! is dropped at its next turn on the loop (the future's `Drop` is
//! asyncio's `finally`), and whoever awaits it gets a cancelled
//! [`JoinError`]. Dropping an I/O future never frees
//! memory the kernel may still write: the driver keeps it until the
//! operation's completion arrives.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    clippy::undocumented_unsafe_blocks
)]

mod buf;
pub mod combinators;
mod driver;
pub mod fs;
pub mod guide;
#[cfg(feature = "hyper")]
pub mod hyper;
// Hooks for the cargo-fuzz targets in fuzz/ (`--cfg fuzzing` only).
#[cfg(fuzzing)]
#[doc(hidden)]
#[path = "fuzz_hooks.rs"]
pub mod __fuzz;
pub mod io;
mod loom;
pub mod net;
pub mod process;
mod promise;
mod runtime;
pub mod signal;
pub mod sync;
mod sys;
mod task;
pub mod time;
#[cfg(feature = "tls")]
pub mod tls;
mod trace;

pub use combinators::{
    AsCompleted, AsCompletedError, ChildError, ChildHandle, ChildTask, Gather, GatherAll,
    GatherError, ReturnWhen, Shield, TaskGroup, TaskGroupError, TaskLike, TimeoutError,
    TimeoutScope, TryGather, as_completed, as_completed_tasks, gather, gather_tasks, shield,
    task_group, timeout, timeout_at, try_gather, try_wait, wait, wait_for, wait_for_task,
};
pub use driver::Backend;
pub use promise::{InvalidStateError, Promise, PromiseError};
pub use runtime::{BlockingPool, BlockingPoolBuilder, BlockingTask, spawn_blocking, to_thread};
pub use runtime::{
    Builder, CallbackHandle, Core, Cores, CoresError, EventLoop, Handle, RemoteTask, RingStats,
    RuntimeError, all_tasks, current_task, ring_stats, run, run_coroutine_threadsafe, spawn,
    spawn_named,
};
pub use task::{CallbackId, ExceptionContext, ExceptionKind, JoinError, Task, TaskHandle};
pub use time::{interval, sleep, sleep_until, yield_now};
