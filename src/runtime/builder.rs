//! [`Builder`]: ring size, flags and debug mode of a new loop.

use std::io;
use std::time::Duration;

use super::blocking::{self, BlockingPool};
use super::{EventLoop, Local};
use crate::driver::{Backend, RingConfig};

/// Configures and creates an [`EventLoop`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let lp = ringloop::Builder::new()
///     .entries(64)
///     .debug(true)
///     .slow_callback_duration(Duration::from_millis(50))
///     .build()?;
/// assert!(lp.get_debug());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    pub(super) ring: RingConfig,
    pub(super) debug: bool,
    pub(super) slow_callback: Duration,
    pub(super) blocking_pool: Option<BlockingPool>,
    pub(super) blocking_shutdown_timeout: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The defaults: 256 SQ entries, the kernel's CQ size (512), no SQPOLL,
    /// the fast flags when the kernel takes them, and debug mode on when the
    /// environment variable `RINGLOOP_DEBUG` is set to a non-empty value
    /// other than `0` (asyncio's `PYTHONASYNCIODEBUG`).
    pub fn new() -> Builder {
        let debug = std::env::var_os("RINGLOOP_DEBUG").is_some_and(|v| !v.is_empty() && v != "0");
        Builder {
            ring: RingConfig::default(),
            debug,
            slow_callback: Duration::from_millis(100),
            blocking_pool: None,
            blocking_shutdown_timeout: blocking::DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Submission queue entries (rounded up to a power of two; at most 32768).
    pub fn entries(mut self, entries: u32) -> Builder {
        self.ring.entries = entries;
        self
    }

    /// Completion queue entries (at least `entries`). In-flight ops never
    /// exceed this; more wait in user space until completions make room.
    pub fn cq_entries(mut self, entries: u32) -> Builder {
        self.ring.cq_entries = Some(entries);
        self
    }

    /// Enables `IORING_SETUP_SQPOLL`: a kernel thread polls the SQ, going to
    /// sleep after `idle`. Off by default (it costs a core); excludes
    /// `DEFER_TASKRUN`.
    pub fn sqpoll(mut self, idle: Duration) -> Builder {
        self.ring.sqpoll_idle_ms = Some(u32::try_from(idle.as_millis()).unwrap_or(u32::MAX));
        self
    }

    /// Whether to try `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN |
    /// TASKRUN_FLAG` (default true; each is dropped if the kernel refuses it).
    pub fn fast_flags(mut self, enabled: bool) -> Builder {
        self.ring.fast_flags = enabled;
        self
    }

    /// Runs the loop on `backend`, whatever `RINGLOOP_BACKEND` says. By
    /// default the loop tries io_uring and falls back to epoll where
    /// io_uring is refused (see [`Backend`]); forcing
    /// [`Backend::IoUring`] makes that refusal the error of
    /// [`Builder::build`] instead. The ring settings above apply to
    /// io_uring only.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::{Backend, Builder};
    ///
    /// let lp = Builder::new().backend(Backend::Epoll).build()?;
    /// assert_eq!(lp.backend(), Backend::Epoll);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn backend(mut self, backend: Backend) -> Builder {
        self.ring.backend = Some(backend);
        self
    }

    /// Debug mode: a poll of one task that takes longer than
    /// [`Builder::slow_callback_duration`] is reported to the exception
    /// handler, naming the task.
    pub fn debug(mut self, enabled: bool) -> Builder {
        self.debug = enabled;
        self
    }

    /// The slow-poll threshold of debug mode (default 100 ms).
    pub fn slow_callback_duration(mut self, d: Duration) -> Builder {
        self.slow_callback = d;
        self
    }

    /// The pool [`to_thread`](crate::to_thread) and
    /// [`EventLoop::run_in_executor`] use on this loop (default: the
    /// process's [`BlockingPool::default_pool`]).
    pub fn blocking_pool(mut self, pool: BlockingPool) -> Builder {
        self.blocking_pool = Some(pool);
        self
    }

    /// How long [`Builder::run`]'s shutdown waits for the blocking jobs
    /// this loop submitted (default 5 s, also [`crate::run`]'s; see
    /// [`EventLoop::shutdown_default_executor`]).
    pub fn blocking_shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.blocking_shutdown_timeout = timeout;
        self
    }

    /// [`crate::run`] on a loop with these settings: runs `future`, cancels
    /// the tasks left, waits for this loop's blocking jobs (at most
    /// [`blocking_shutdown_timeout`](Builder::blocking_shutdown_timeout)),
    /// and closes the loop.
    ///
    /// # Errors
    ///
    /// As for [`crate::run`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let n = ringloop::Builder::new()
    ///     .blocking_shutdown_timeout(Duration::from_millis(100))
    ///     .run(async { ringloop::to_thread(|| 2 + 2).await.unwrap() })?;
    /// assert_eq!(n, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run<F: std::future::Future>(&self, future: F) -> io::Result<F::Output> {
        super::run_with(self, future)
    }

    /// Creates the loop.
    ///
    /// # Errors
    ///
    /// `RINGLOOP_BACKEND` set to something other than `io_uring`, `epoll`
    /// or `auto`. With io_uring forced ([`Builder::backend`] or the
    /// variable), when io_uring cannot be set up: an `io::Error` whose
    /// message names the cause (ENOSYS: old kernel; EPERM:
    /// `kernel.io_uring_disabled` or seccomp; ENOMEM: memlock) and the fix,
    /// or says the kernel lacks a feature ringloop needs (Linux 5.11+). By
    /// default those causes select the epoll backend instead. Bad ring
    /// settings (0 entries) are an error wherever io_uring is tried.
    pub fn build(&self) -> io::Result<EventLoop> {
        Ok(EventLoop::from_local(Local::new(self)?))
    }
}
