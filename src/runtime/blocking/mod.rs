//! The blocking pool: [`to_thread`], [`spawn_blocking`],
//! [`EventLoop::run_in_executor`] and [`BlockingPool`]: blocking functions
//! run on a bounded pool of threads while the loop runs its other tasks.
//!
//! The user-facing explanation (pools and sizes, results, how a result
//! reaches the loop, shutdown) is on [`BlockingPool`], which rustdoc shows.
//! Inside: `pool.rs` is the public handle and the default pool,
//! `handoff.rs` the threads, the queue and the hand-off between submitters
//! and workers (with its loom model), `task.rs` the job cell and
//! [`BlockingTask`], `count.rs` a loop's count of outstanding jobs that its
//! shutdown waits on. This file ties them to the loop.

mod count;
mod handoff;
mod pool;
mod task;

use std::rc::Rc;
use std::time::Duration;

pub use pool::{BlockingPool, BlockingPoolBuilder};
pub use task::BlockingTask;

use super::{EventLoop, RuntimeError};
use crate::loom::Arc;
use count::JobCount;

/// How long [`run`](crate::run) waits for a loop's blocking jobs by default.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A loop's blocking-pool state (a field of the loop).
pub(crate) struct LoopBlocking {
    /// `None`: the default pool (not made until a job needs it).
    pool: Option<BlockingPool>,
    pub(crate) jobs: Arc<JobCount>,
    shutdown_timeout: Duration,
}

impl LoopBlocking {
    pub(crate) fn new(pool: Option<BlockingPool>, shutdown_timeout: Duration) -> LoopBlocking {
        LoopBlocking {
            pool,
            jobs: JobCount::new(),
            shutdown_timeout,
        }
    }

    fn pool(&self) -> &BlockingPool {
        self.pool.as_ref().unwrap_or_else(|| pool::default_ref())
    }

    /// Queues `f` on this loop's pool, counted by this loop.
    pub(crate) fn submit<F, R>(&self, f: F) -> BlockingTask<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.pool().submit(f, Some(JobCount::acquire(&self.jobs)))
    }
}

/// How the epoll backend's driver runs blocking syscalls (file and path
/// ops): as jobs on `pool` (the loop's, else the default pool), not
/// counted among the loop's jobs (the driver itself waits for them).
pub(crate) fn driver_offload(pool: Option<BlockingPool>) -> crate::driver::Offload {
    Box::new(move |job| {
        let pool = pool.as_ref().unwrap_or_else(|| pool::default_ref());
        // The task is dropped: the job runs anyway and reports to the
        // driver itself.
        drop(pool.submit(job, None));
    })
}

/// Runs the blocking function `f` on a pool thread and returns a
/// [`BlockingTask`] resolving to its result (asyncio's `to_thread`).
///
/// The job is queued at once (as tokio's `spawn_blocking`; asyncio's
/// `to_thread` waits to be awaited), on the pool of the loop running on
/// this thread ([`Builder::blocking_pool`](crate::Builder::blocking_pool),
/// else the process's default pool), or on the default pool when no loop
/// runs here. So `lp.run_until_complete(to_thread(f))`, which calls
/// `to_thread` before the loop runs, uses the default pool; use
/// [`EventLoop::run_in_executor`] there to get the loop's.
///
/// The loop keeps running its other tasks meanwhile. A panic in `f` is
/// returned as a panicked [`JoinError`](crate::JoinError). Dropping the
/// `BlockingTask` does not stop `f`; its result is dropped.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let (n, ticks) = ringloop::run(async {
///     let ticker = ringloop::spawn(async {
///         let mut ticks = 0;
///         for _ in 0..3 {
///             ringloop::sleep(Duration::from_millis(1)).await;
///             ticks += 1;
///         }
///         ticks
///     });
///     // Blocks a pool thread, not the loop: the ticker keeps ticking.
///     let n = ringloop::to_thread(|| {
///         std::thread::sleep(Duration::from_millis(20));
///         6 * 7
///     })
///     .await
///     .expect("the job did not panic");
///     (n, ticker.await.unwrap())
/// })?;
/// assert_eq!((n, ticks), (42, 3));
///
/// // A panic comes back as an error.
/// let err = ringloop::run(ringloop::to_thread(|| panic!("disk on fire")))?.unwrap_err();
/// assert_eq!(err.panic_message(), Some("disk on fire"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn to_thread<F, R>(f: F) -> BlockingTask<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match super::with_current(Rc::clone) {
        Some(l) => l.blocking.submit(f),
        None => pool::default_ref().submit(f, None),
    }
}

/// The same as [`to_thread`] (tokio's name).
///
/// # Examples
///
/// ```
/// let v = ringloop::run(ringloop::spawn_blocking(|| vec![1, 2, 3]))?.unwrap();
/// assert_eq!(v, [1, 2, 3]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_blocking<F, R>(f: F) -> BlockingTask<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    to_thread(f)
}

impl EventLoop {
    /// Runs `f` on this loop's blocking pool (asyncio's
    /// `loop.run_in_executor(None, f)`): as [`to_thread`], on this loop's
    /// pool whether or not the loop is running, and counted among the jobs
    /// its shutdown waits for.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] if the loop was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let lp = ringloop::EventLoop::new()?;
    /// let job = lp.run_in_executor(|| "from a pool thread")?;
    /// assert_eq!(lp.run_until_complete(job)?.unwrap(), "from a pool thread");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_in_executor<F, R>(&self, f: F) -> Result<BlockingTask<R>, RuntimeError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.local.check_open()?;
        Ok(self.local.blocking.submit(f))
    }

    /// Waits for the blocking jobs this loop submitted to finish, running
    /// the loop meanwhile, for at most `timeout` (a [`Duration`] or an
    /// `Option<Duration>`; `None`: no limit); returns
    /// how many were still running when it gave up (0: all finished).
    ///
    /// Jobs still running are left to finish on their own; their results
    /// are dropped. The pool itself is not shut down (it is shared). [`run`]
    /// calls this after cancelling the remaining tasks, with the loop's
    /// [`EventLoop::blocking_shutdown_timeout`]. asyncio's
    /// `loop.shutdown_default_executor`, but not a coroutine: call it when
    /// the loop is not running.
    ///
    /// # Errors
    ///
    /// As for [`EventLoop::run_until_complete`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let lp = ringloop::EventLoop::new()?;
    /// let job = lp.run_in_executor(|| std::thread::sleep(Duration::from_millis(10)))?;
    /// drop(job); // nobody awaits it, but it runs
    /// assert_eq!(lp.shutdown_default_executor(Some(Duration::from_secs(5)))?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`run`]: crate::run
    pub fn shutdown_default_executor(
        &self,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<usize, RuntimeError> {
        let jobs = &self.local.blocking.jobs;
        if jobs.outstanding() == 0 {
            return Ok(0);
        }
        // Ok or timed out: either way, report what is left.
        let _ = self.run_until_complete(crate::wait_for(JobCount::all_done(jobs), timeout))?;
        Ok(jobs.outstanding())
    }

    /// How long [`run`](crate::run)'s shutdown waits for this loop's
    /// blocking jobs ([`Builder::blocking_shutdown_timeout`](crate::Builder::blocking_shutdown_timeout)).
    pub fn blocking_shutdown_timeout(&self) -> Duration {
        self.local.blocking.shutdown_timeout
    }
}
