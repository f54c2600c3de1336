//! [`Handle`] (a `Send` reference to a loop) and [`CallbackHandle`].

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::remote_task::RemoteTask;
use super::{Local, RuntimeError, context};
use crate::task::Task;
use crate::task::sched::{Callback, Remote, Scheduler};

/// A cloneable, `Send + Sync` reference to an event loop (asyncio's
/// `get_running_loop()` result).
///
/// [`call_soon_threadsafe`](Handle::call_soon_threadsafe) and
/// [`spawn`](Handle::spawn) work from any thread. The other scheduling
/// methods (`call_soon`, `call_later`, `call_at`, `spawn_local`, `stop`) act
/// on the loop from inside it: they must be called on the loop's thread
/// while it runs, and return [`RuntimeError::NotInLoop`] otherwise (or
/// [`RuntimeError::Closed`] once the loop is closed).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let lp = ringloop::Handle::current();
///     let (tx, rx) = std::sync::mpsc::channel();
///     lp.call_later(Duration::from_millis(1), move || tx.send("later").unwrap())?;
///     ringloop::sleep(Duration::from_millis(5)).await;
///     assert_eq!(rx.try_recv().unwrap(), "later");
///     Ok::<(), ringloop::RuntimeError>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct Handle {
    sched: Arc<Scheduler>,
    id: u64,
}

impl Handle {
    pub(crate) fn new(sched: Arc<Scheduler>, id: u64) -> Handle {
        Handle { sched, id }
    }

    /// The loop running on this thread.
    ///
    /// # Panics
    ///
    /// When no ringloop loop is running on this thread; see
    /// [`Handle::try_current`].
    pub fn current() -> Handle {
        Handle::try_current().expect("Handle::current called outside a running ringloop event loop")
    }

    /// The loop running on this thread, if any.
    pub fn try_current() -> Option<Handle> {
        context::with_current(|l| Handle::new(l.exec.sched.clone(), l.id))
    }

    fn with_local<R>(
        &self,
        f: impl FnOnce(&Rc<Local>) -> Result<R, RuntimeError>,
    ) -> Result<R, RuntimeError> {
        if self.sched.is_closed() {
            return Err(RuntimeError::Closed);
        }
        match context::with_current(|l| (l.id == self.id).then(|| f(l))) {
            Some(Some(r)) => r,
            _ => Err(RuntimeError::NotInLoop),
        }
    }

    /// The loop's clock (monotonic; any thread).
    pub fn time(&self) -> Instant {
        Instant::now()
    }

    /// Whether the loop was closed (any thread).
    pub fn is_closed(&self) -> bool {
        self.sched.is_closed()
    }

    /// See [`crate::EventLoop::call_soon`].
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotInLoop`] or [`RuntimeError::Closed`].
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Result<CallbackHandle, RuntimeError> {
        self.with_local(|l| l.call_at(None, Box::new(f)))
    }

    /// See [`crate::EventLoop::call_later`].
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotInLoop`] or [`RuntimeError::Closed`].
    pub fn call_later(
        &self,
        delay: Duration,
        f: impl FnOnce() + 'static,
    ) -> Result<CallbackHandle, RuntimeError> {
        self.with_local(|l| l.call_at(Some(crate::time::deadline_after(delay)), Box::new(f)))
    }

    /// See [`crate::EventLoop::call_at`].
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotInLoop`] or [`RuntimeError::Closed`].
    pub fn call_at(
        &self,
        when: Instant,
        f: impl FnOnce() + 'static,
    ) -> Result<CallbackHandle, RuntimeError> {
        self.with_local(|l| l.call_at(Some(when), Box::new(f)))
    }

    /// Like [`crate::EventLoop::spawn`], from the loop's own thread: the
    /// future need not be `Send` and the result is a [`Task`].
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotInLoop`] or [`RuntimeError::Closed`].
    pub fn spawn_local<F: Future + 'static>(
        &self,
        future: F,
    ) -> Result<Task<F::Output>, RuntimeError> {
        self.with_local(|l| l.spawn(future, None))
    }

    /// Starts `future` as a task on this loop, from any thread (asyncio's
    /// `run_coroutine_threadsafe`). The returned [`RemoteTask`] can be
    /// awaited on any loop or waited for by a plain thread; dropping it
    /// lets the task run on. The task starts at the loop's next turn (it
    /// queues like [`call_soon_threadsafe`](Handle::call_soon_threadsafe)).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] when the loop is closed. A loop that closes
    /// before the task finishes resolves it as cancelled.
    pub fn spawn<F>(&self, future: F) -> Result<RemoteTask<F::Output>, RuntimeError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, start) = RemoteTask::new(future, self.sched.clone());
        self.call_soon_threadsafe(move || start.start())?;
        Ok(task)
    }

    /// Schedules `f` to run on the loop's thread at its next turn, from any
    /// thread (asyncio's `call_soon_threadsafe`). A parked
    /// loop is woken at once (one eventfd write); a running loop costs the
    /// caller a lock and no syscall. Called on the loop's own thread it is
    /// [`call_soon`](Handle::call_soon): same FIFO queue.
    ///
    /// One FIFO whichever thread fills it: callbacks run in the order they
    /// were queued, and a `call_soon_threadsafe` that happens-before a
    /// [`call_soon`](Handle::call_soon) on the loop's thread (or any other
    /// work the loop's thread makes ready) runs before it, as in asyncio.
    /// A panic in `f` is reported to the loop's exception handler.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] when the loop is closed (`f` is dropped).
    pub fn call_soon_threadsafe(
        &self,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), RuntimeError> {
        if self.sched.is_closed() {
            return Err(RuntimeError::Closed);
        }
        if let Some(exec) = self.sched.executor() {
            exec.call_soon(Callback::new(Box::new(f)));
            return Ok(());
        }
        self.sched
            .push_remote(Remote::Callback(Box::new(f)))
            .map_err(|_| RuntimeError::Closed)
    }

    /// See [`crate::EventLoop::run_in_executor`]: runs `f` on the loop's
    /// blocking pool (on the loop's thread, while it runs).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotInLoop`] or [`RuntimeError::Closed`].
    pub fn run_in_executor<F, R>(&self, f: F) -> Result<crate::BlockingTask<R>, RuntimeError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.with_local(|l| Ok(l.blocking.submit(f)))
    }

    /// Asks the loop to stop after the current iteration.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotInLoop`] or [`RuntimeError::Closed`].
    pub fn stop(&self) -> Result<(), RuntimeError> {
        self.with_local(|l| {
            l.stopping.set(true);
            Ok(())
        })
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("loop", &self.id).finish()
    }
}

/// A scheduled callback (`call_soon`, `call_later`, `call_at`); cancel it
/// before it runs and it never runs. Cancelling costs no syscall.
pub struct CallbackHandle {
    cb: Rc<Callback>,
    when: Option<Instant>,
}

impl CallbackHandle {
    pub(crate) fn new(cb: Rc<Callback>, when: Option<Instant>) -> CallbackHandle {
        CallbackHandle { cb, when }
    }

    /// Cancels the callback. Returns false if it already ran or was
    /// cancelled.
    pub fn cancel(&self) -> bool {
        self.cb.cancel()
    }

    /// Whether [`CallbackHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cb.is_cancelled()
    }

    /// When a timed callback is due (`None` for `call_soon`).
    pub fn when(&self) -> Option<Instant> {
        self.when
    }
}

impl fmt::Debug for CallbackHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackHandle")
            .field("when", &self.when)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
