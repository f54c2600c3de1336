//! [`BlockingPool`] (the public handle, the process's default pool) and
//! [`BlockingPoolBuilder`]; the threads and the queue are in `handoff.rs`.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use super::count::{JobCount, JobGuard};
use super::handoff::Shared;
use super::task::{BlockingTask, new_job};
use crate::loom::Arc;

/// The default bound: asyncio's `min(32, cpus + 4)`.
fn default_max_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_THREAD_NAME: &str = "ringloop-blocking";

/// A bounded pool of threads for blocking work (asyncio's default
/// executor, a `ThreadPoolExecutor`): file and DNS calls, CPU-heavy
/// functions, libraries that block.
///
/// A loop's thread must never block: a blocking call stalls every task of
/// the loop. [`to_thread`](crate::to_thread) runs such a call on a pool
/// thread and gives the loop a [`BlockingTask`] to await meanwhile, while
/// the loop runs its other tasks.
///
/// # Pools and sizes
///
/// The process has one default pool ([`BlockingPool::default_pool`]),
/// shared by all its loops and made on first use: at most
/// `min(32, cpus + 4)` threads (asyncio's default executor size), started
/// on demand, each exiting after 10 s without work. Jobs beyond the bound
/// wait in a FIFO queue. A loop can use a pool of its own
/// ([`Builder::blocking_pool`](crate::Builder::blocking_pool));
/// `to_thread` picks the pool of the loop running on the calling thread, or
/// the default pool when none runs. Cloning a `BlockingPool` gives another
/// handle to the same pool; when the last handle is dropped, its threads
/// finish the queued jobs and exit.
///
/// # Results
///
/// A panic in a job is caught on the pool thread and comes back as a
/// panicked [`JoinError`](crate::JoinError); the thread lives on.
/// Dropping the [`BlockingTask`] does not stop the job, which cannot be
/// interrupted: it runs to completion and its result is dropped.
///
/// # How a result reaches the loop
///
/// The pool thread stores the result in the job's cell and wakes the
/// awaiting task's `Waker`. A ringloop waker used on another thread queues
/// the task on its own loop and writes the loop's eventfd only if the loop
/// is parked in the kernel (`io_uring_enter`, or `epoll_wait` on the epoll
/// backend): a busy loop receives results without a
/// syscall. Any other executor's waker works too: a `BlockingTask` needs no
/// loop.
///
/// # Shutdown
///
/// Every job submitted from a loop is counted by that loop until its result
/// is delivered. After the main future and the cancellation of the
/// remaining tasks, [`run`](crate::run) calls
/// [`EventLoop::shutdown_default_executor`](crate::EventLoop::shutdown_default_executor),
/// which runs the loop until the count is zero or the loop's shutdown
/// timeout passes
/// ([`Builder::blocking_shutdown_timeout`](crate::Builder::blocking_shutdown_timeout),
/// default 5 s). A job still running then is left to finish on its own
/// (threads cannot be killed) and its result is dropped. The pool itself
/// lives on: other loops share it.
///
/// The default wait is 5 s, not asyncio's 300 s: no result can reach anybody
/// after `run` returns, so the wait only serves jobs' side effects (a file
/// written, a buffer flushed), which take milliseconds; a job stuck on a
/// read that never completes (a terminal, a dead peer) should delay the
/// exit a little, not five minutes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let pool = ringloop::BlockingPool::builder()
///     .max_threads(2)
///     .idle_timeout(Duration::from_secs(1))
///     .thread_name("resizer")
///     .build()?;
/// let lp = ringloop::Builder::new().blocking_pool(pool.clone()).build()?;
/// let name = lp.run_until_complete(async {
///     ringloop::to_thread(|| std::thread::current().name().map(str::to_owned)).await
/// })??;
/// assert_eq!(name.as_deref(), Some("resizer"));
/// assert_eq!(pool.max_threads(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BlockingPool {
    owner: Arc<Owner>,
}

/// Held by the handles only (workers hold [`Shared`]): its drop is the
/// last handle going away.
struct Owner {
    shared: Arc<Shared>,
}

impl BlockingPool {
    /// A builder for a pool of its own (the defaults are those of
    /// [`BlockingPool::default_pool`]).
    pub fn builder() -> BlockingPoolBuilder {
        BlockingPoolBuilder {
            max_threads: default_max_threads(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            thread_name: DEFAULT_THREAD_NAME.to_owned(),
        }
    }

    /// The process-wide pool every loop uses by default, made on first
    /// use: at most `min(32, cpus + 4)` threads (asyncio's default, `cpus`
    /// from [`std::thread::available_parallelism`]), idling out after 10 s,
    /// named `ringloop-blocking`.
    pub fn default_pool() -> BlockingPool {
        default_ref().clone()
    }

    fn from_builder(b: &BlockingPoolBuilder) -> BlockingPool {
        let shared = Arc::new(Shared::new(
            b.max_threads,
            b.idle_timeout,
            b.thread_name.clone().into_boxed_str(),
        ));
        BlockingPool {
            owner: Arc::new(Owner { shared }),
        }
    }

    /// Runs `f` on this pool; the returned [`BlockingTask`] resolves to its
    /// result. Called inside a running loop, the job counts among the jobs
    /// that loop's shutdown waits for (see
    /// [`EventLoop::shutdown_default_executor`](crate::EventLoop::shutdown_default_executor)).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = ringloop::BlockingPool::default_pool();
    /// let sum = ringloop::run(async move {
    ///     pool.spawn(|| (1..=10u32).sum::<u32>()).await
    /// })??;
    /// assert_eq!(sum, 55);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, R>(&self, f: F) -> BlockingTask<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let count = crate::runtime::with_current(|l| JobCount::acquire(&l.blocking.jobs));
        self.submit(f, count)
    }

    /// Queues `f`, counted by `count` (if a loop counts it).
    pub(super) fn submit<F, R>(&self, f: F, count: Option<JobGuard>) -> BlockingTask<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (job, task) = new_job(f, count);
        Shared::submit(&self.owner.shared, job);
        task
    }

    /// The most threads this pool runs at once.
    pub fn max_threads(&self) -> usize {
        self.owner.shared.max_threads
    }

    /// How long a thread waits for a job before it exits.
    pub fn idle_timeout(&self) -> Duration {
        self.owner.shared.idle_timeout
    }

    /// Threads alive now (running a job or idle).
    pub fn threads(&self) -> usize {
        self.owner.shared.snapshot().threads
    }

    /// Jobs waiting for a thread.
    pub fn queued(&self) -> usize {
        self.owner.shared.snapshot().queued
    }
}

/// The process's default pool.
/// The default pool of this process: made on first use, and made again in
/// a `fork()` child, which has none of the parent's threads (the old pool's
/// count of idle workers would hand jobs to threads that do not exist
/// there). Pools are leaked, never dropped: one per process in practice,
/// and the one a child inherits may have its lock held by a parent thread
/// that is gone, so it must not be touched.
pub(super) fn default_ref() -> &'static BlockingPool {
    struct Default {
        generation: u64,
        pool: BlockingPool,
    }
    static POOL: AtomicPtr<Default> = AtomicPtr::new(std::ptr::null_mut());
    let generation = crate::driver::fork_generation();
    let cur = POOL.load(Ordering::Acquire);
    // SAFETY: a non-null pointer in POOL is a leaked `Box<Default>`, never
    // freed (below, only a box that lost the race and was never published
    // is freed), so it is valid for 'static.
    if let Some(d) = unsafe { cur.as_ref() }
        && d.generation == generation
    {
        return &d.pool;
    }
    let new = Box::into_raw(Box::new(Default {
        generation,
        pool: BlockingPool::from_builder(&BlockingPool::builder()),
    }));
    match POOL.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `new` was just published and is never freed.
        Ok(_) => unsafe { &(*new).pool },
        Err(winner) => {
            // SAFETY: `new` was never published, so this thread owns it; it
            // has no threads yet (a pool starts them on demand).
            drop(unsafe { Box::from_raw(new) });
            // SAFETY: as above, a published pointer is never freed. Another
            // thread made the pool for this generation.
            unsafe { &(*winner).pool }
        }
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.owner.shared;
        let now = s.snapshot();
        f.debug_struct("BlockingPool")
            .field("thread_name", &s.thread_name)
            .field("max_threads", &s.max_threads)
            .field("threads", &now.threads)
            .field("idle", &now.idle)
            .field("queued", &now.queued)
            .finish()
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

/// Configures a [`BlockingPool`].
#[derive(Clone, Debug)]
pub struct BlockingPoolBuilder {
    max_threads: usize,
    idle_timeout: Duration,
    thread_name: String,
}

impl BlockingPoolBuilder {
    /// The most threads running jobs at once (default `min(32, cpus + 4)`);
    /// more jobs wait in a FIFO queue.
    pub fn max_threads(mut self, n: usize) -> BlockingPoolBuilder {
        self.max_threads = n;
        self
    }

    /// How long an idle thread waits for a job before it exits (default
    /// 10 s; `Duration::MAX`: never).
    pub fn idle_timeout(mut self, d: Duration) -> BlockingPoolBuilder {
        self.idle_timeout = d;
        self
    }

    /// The name of the pool's threads (default `ringloop-blocking`).
    pub fn thread_name(mut self, name: impl Into<String>) -> BlockingPoolBuilder {
        self.thread_name = name.into();
        self
    }

    /// Makes the pool. No thread starts until the first job.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `max_threads` is 0 or the thread name contains a
    /// NUL byte.
    pub fn build(&self) -> io::Result<BlockingPool> {
        if self.max_threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ringloop: a BlockingPool needs at least one thread (max_threads(0) was given)",
            ));
        }
        if self.thread_name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ringloop: a thread name may not contain a NUL byte: {:?}",
                    self.thread_name
                ),
            ));
        }
        Ok(BlockingPool::from_builder(self))
    }
}
