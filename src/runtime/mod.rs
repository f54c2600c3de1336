//! The event loop: [`EventLoop`], [`run`], [`Handle`], and the free
//! functions that reach the running loop ([`spawn`], [`current_task`], ...).
//!
//! One turn of the loop (asyncio's `_run_once`):
//!
//! 1. decide how long the kernel may block: not at all if anything is ready
//!    or the loop is stopping, else until the nearest timer;
//! 2. one `io_uring_enter` submits every queued SQE, waits as decided, and
//!    every CQE is reaped (their tasks become ready); on the epoll backend,
//!    one `epoll_wait` waits as decided and the ops whose fds became ready
//!    are carried out;
//! 3. expired timers make their sleepers and callbacks ready;
//! 4. everything that was ready at this point runs, in FIFO order; then
//!    what that made ready runs too, round after round (still FIFO), for
//!    at most 16 more rounds, before the next turn goes back to the kernel:
//!    a chain of task hand-offs costs no driver turn per link, and I/O,
//!    timers and other threads' work wait at most those 16 rounds.

pub(crate) mod blocking;
mod builder;
mod context;
mod cores;
mod error;
mod handle;
mod remote_task;
mod stats;
pub(crate) mod timers;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

pub use blocking::{BlockingPool, BlockingPoolBuilder, BlockingTask, spawn_blocking, to_thread};
pub use builder::Builder;
pub use cores::{Core, Cores, CoresError};
pub use error::RuntimeError;
pub use handle::{CallbackHandle, Handle};
pub use remote_task::RemoteTask;
pub use stats::{RingStats, ring_stats};

pub(crate) use context::{with_current, with_loop};

use crate::driver::{Backend, Driver, Garbage, Wait};
use crate::task::sched::{Callback, DebugOptions, Executor, Scheduler};
use crate::task::{ExceptionContext, Task, TaskHandle};
use timers::{Fired, Timers};

/// How many extra rounds of newly ready work one turn may run before it
/// goes back to the driver and the timers.
const READY_ROUNDS: usize = 16;

/// The per-loop state, shared by `Rc` between the [`EventLoop`] and the
/// thread-local "running loop".
pub(crate) struct Local {
    /// Unique per loop in the process (tells loops on one thread apart).
    pub(crate) id: u64,
    pub(crate) exec: Rc<Executor>,
    pub(crate) driver: Rc<RefCell<Driver>>,
    pub(crate) timers: RefCell<Timers>,
    stopping: Cell<bool>,
    running: Cell<bool>,
    closed: Cell<bool>,
    /// Scratch buffers reused every turn.
    scratch: RefCell<Scratch>,
    /// The blocking pool this loop submits to and its outstanding jobs.
    pub(crate) blocking: blocking::LoopBlocking,
}

#[derive(Default)]
struct Scratch {
    wakers: Vec<Waker>,
    fired: Vec<Fired>,
    garbage: Vec<Garbage>,
}

impl Local {
    fn new(b: &Builder) -> io::Result<Rc<Local>> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let wake_fd = Arc::new(crate::sys::eventfd()?);
        let mut driver = Driver::new(&b.ring)?;
        driver.enable_wake(wake_fd.clone());
        driver.set_offload(blocking::driver_offload(b.blocking_pool.clone()));
        if b.debug {
            log_backend(&driver);
        }
        let sched = Scheduler::new(wake_fd);
        let local = Rc::new(Local {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            exec: Rc::new(Executor::new(
                sched,
                DebugOptions {
                    enabled: b.debug,
                    slow_callback: b.slow_callback,
                },
            )),
            driver: Rc::new(RefCell::new(driver)),
            timers: RefCell::new(Timers::new(Instant::now())),
            stopping: Cell::new(false),
            running: Cell::new(false),
            closed: Cell::new(false),
            scratch: RefCell::new(Scratch::default()),
            blocking: blocking::LoopBlocking::new(
                b.blocking_pool.clone(),
                b.blocking_shutdown_timeout,
            ),
        });
        Executor::attach(&local.exec);
        context::register(&local);
        Ok(local)
    }

    fn check_open(&self) -> Result<(), RuntimeError> {
        if self.closed.get() {
            Err(RuntimeError::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn spawn<F: Future + 'static>(
        &self,
        future: F,
        name: Option<Box<str>>,
    ) -> Result<Task<F::Output>, RuntimeError> {
        self.check_open()?;
        Ok(self.exec.spawn(future, name))
    }

    pub(crate) fn call_at(
        &self,
        when: Option<Instant>,
        f: Box<dyn FnOnce()>,
    ) -> Result<CallbackHandle, RuntimeError> {
        self.check_open()?;
        let cb = Callback::new(f);
        match when {
            None => self.exec.call_soon(cb.clone()),
            Some(at) => self.timers.borrow_mut().insert_callback(at, cb.clone()),
        }
        Ok(CallbackHandle::new(cb, when))
    }

    /// Checks that this loop may start running on this thread now.
    fn check_can_run(&self) -> Result<(), RuntimeError> {
        self.check_open()?;
        match context::with_current(|l| l.id == self.id) {
            Some(true) => Err(RuntimeError::AlreadyRunning),
            Some(false) => Err(RuntimeError::AnotherLoopRunning),
            None => Ok(()),
        }
    }

    /// One turn (see the module docs). `main` polls the `run_until_complete`
    /// future when it is due;
    /// `main_done` ends the turn's extra rounds early: once the
    /// `run_until_complete` future finished, the loop stops after the round
    /// it finished in (asyncio's done callback calling `stop()`).
    fn run_once(&self, main: &mut dyn FnMut(), main_done: &Cell<bool>) -> Result<(), RuntimeError> {
        let exec = &self.exec;
        exec.drain_remote();
        let mut wait = if exec.has_ready() || self.stopping.get() {
            Wait::No
        } else if self.timers.borrow().is_empty() {
            // No timer armed: nothing to wake for but I/O and other
            // threads. A fast path only (no walk of the wheel); with
            // timers armed, `next_deadline` itself skips removed ones.
            Wait::Forever
        } else {
            match self.timers.borrow_mut().next_deadline() {
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(d) if !d.is_zero() => Wait::For(d),
                    _ => Wait::No,
                },
                None => Wait::Forever,
            }
        };
        let parked = wait != Wait::No && exec.sched.park();
        if !parked {
            wait = Wait::No;
        }
        let completed = {
            let mut d = self.driver.borrow_mut();
            let res = d.turn(wait);
            if parked {
                exec.sched.unpark();
            }
            res.map_err(RuntimeError::Io)?;
            d.take_woken();
            d.has_ready()
        };
        if completed {
            let mut scratch = std::mem::take(&mut *self.scratch.borrow_mut());
            self.driver
                .borrow_mut()
                .take_ready(&mut scratch.wakers, &mut scratch.garbage);
            // Outside every borrow: wakers and orphans may run user code.
            scratch.wakers.drain(..).for_each(Waker::wake);
            for (orphan, completion) in scratch.garbage.drain(..) {
                orphan.complete(completion);
            }
            *self.scratch.borrow_mut() = scratch;
        }
        if parked {
            // Woken from a wait: pick up what other threads queued meanwhile.
            exec.drain_remote();
        }
        let due = {
            let timers = self.timers.borrow();
            !timers.is_empty()
        };
        if due {
            let mut scratch = std::mem::take(&mut *self.scratch.borrow_mut());
            self.timers
                .borrow_mut()
                .expire_ordered(Instant::now(), &mut scratch.fired);
            // In deadline order, sleepers and callbacks alike: a callback
            // due before a sleep ends runs before the sleeper resumes.
            for f in scratch.fired.drain(..) {
                match f {
                    Fired::Waker(w) => w.wake(),
                    Fired::Callback(cb) => exec.call_soon(cb),
                }
            }
            *self.scratch.borrow_mut() = scratch;
        }

        exec.run_ready(main);
        // Work made ready by that batch runs now, for a bounded number of
        // rounds, before the next driver turn: a chain of task hand-offs
        // (a queue ping-pong, a lock passed along) costs no driver turn
        // per link. I/O completions, timers and remote work are picked up
        // at the latest after `READY_ROUNDS` rounds (tokio's
        // `event_interval` plays the same role).
        for _ in 0..READY_ROUNDS {
            if !exec.has_ready() || self.stopping.get() || main_done.get() {
                break;
            }
            exec.run_ready(main);
        }
        Ok(())
    }

    /// Cancels every task and drops every pending callback and timer.
    fn teardown(&self) {
        self.exec.cancel_all_now();
        // Dropped outside the borrow: a callback's captures may own sleeps,
        // whose Drop disarms them in these same timers.
        let timers = self.timers.borrow_mut().take_all();
        drop(timers);
        // Signal handlers go, the loop's signal read stops (asyncio's close).
        crate::signal::close_loop(self.id);
    }
}

/// An event loop: one io_uring (or, on the epoll backend, one epoll set),
/// its tasks, timers and callbacks, on one thread (asyncio's
/// `AbstractEventLoop`).
///
/// Most programs call [`run`], which makes a loop, runs a future on it and
/// closes it. `EventLoop` gives the finer control of asyncio's loop API:
/// [`run_until_complete`](EventLoop::run_until_complete),
/// [`run_forever`](EventLoop::run_forever), [`stop`](EventLoop::stop),
/// [`close`](EventLoop::close), `call_soon` and friends.
///
/// `EventLoop` is `!Send`: a loop and its tasks stay on the thread that made
/// them (thread-per-core).
///
/// ```compile_fail
/// let lp = ringloop::EventLoop::new().unwrap();
/// std::thread::spawn(move || drop(lp)); // error: `EventLoop` is not `Send`
/// ```
///
/// Dropping the loop cancels every task (dropping their futures), cancels
/// every op still in the kernel and reaps them before the ring is unmapped.
///
/// After `fork()`, a loop the child inherited is inert in the child: running
/// it returns an error, and dropping it (or what was made on it) touches
/// nothing of the parent's, leaking its memory and fds in the child. Build
/// a new loop there (`docs/design/fork.md` has the rules).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let lp = ringloop::EventLoop::new()?;
/// let task = lp.spawn(async {
///     ringloop::sleep(Duration::from_millis(1)).await;
///     "done"
/// })?;
/// assert_eq!(lp.run_until_complete(task)?.unwrap(), "done");
/// lp.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventLoop {
    local: Rc<Local>,
}

impl EventLoop {
    /// A loop with the default settings ([`Builder::new`]).
    ///
    /// # Errors
    ///
    /// Where io_uring is refused the loop runs on epoll instead (see
    /// [`Backend`]). An error comes only when io_uring was forced
    /// (`RINGLOOP_BACKEND=io_uring`) and cannot be set up, an `io::Error`
    /// naming the cause (old kernel, `kernel.io_uring_disabled`, seccomp,
    /// memlock) and the fix, or `RINGLOOP_BACKEND` holds an unknown value
    /// (see [`Builder::build`]).
    pub fn new() -> io::Result<EventLoop> {
        Builder::new().build()
    }

    /// A [`Builder`] to configure the ring and debug mode.
    pub fn builder() -> Builder {
        Builder::new()
    }

    fn from_local(local: Rc<Local>) -> EventLoop {
        EventLoop { local }
    }

    /// Runs the loop until `future` completes and returns its output; other
    /// tasks stay pending and resume on the next run call.
    ///
    /// A panic in `future` propagates to the caller (the loop stays usable).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`], [`RuntimeError::AlreadyRunning`],
    /// [`RuntimeError::AnotherLoopRunning`], [`RuntimeError::Stopped`] if
    /// [`EventLoop::stop`] was called before `future` finished, or
    /// [`RuntimeError::Io`] if the ring failed.
    pub fn run_until_complete<F: Future>(&self, future: F) -> Result<F::Output, RuntimeError> {
        let local = &self.local;
        local.check_can_run()?;
        let _running = context::Running::enter(local);
        let mut future = pin!(future);
        let waker = local.exec.sched.main_waker();
        let mut cx = Context::from_waker(&waker);
        let output: Cell<Option<F::Output>> = Cell::new(None);
        let done = Cell::new(false);
        let mut poll_main = || {
            if !done.get() {
                if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                    output.set(Some(v));
                    done.set(true);
                }
            }
        };
        local.exec.schedule_main();
        loop {
            local.run_once(&mut poll_main, &done)?;
            if done.get() {
                break;
            }
            if local.stopping.replace(false) {
                return Err(RuntimeError::Stopped);
            }
        }
        Ok(output.take().expect("main future completed"))
    }

    /// Runs the loop until [`EventLoop::stop`] is called. `stop()` called
    /// before `run_forever()` makes it run one iteration, without blocking,
    /// and return.
    ///
    /// # Errors
    ///
    /// As for [`EventLoop::run_until_complete`].
    pub fn run_forever(&self) -> Result<(), RuntimeError> {
        let local = &self.local;
        local.check_can_run()?;
        let _running = context::Running::enter(local);
        loop {
            local.run_once(&mut || {}, &Cell::new(false))?;
            if local.stopping.replace(false) {
                return Ok(());
            }
        }
    }

    /// Asks the loop to stop after the current iteration.
    pub fn stop(&self) {
        self.local.stopping.set(true);
    }

    /// Whether the loop is running.
    pub fn is_running(&self) -> bool {
        self.local.running.get()
    }

    /// Whether the loop was closed.
    pub fn is_closed(&self) -> bool {
        self.local.closed.get()
    }

    /// Closes the loop: cancels every task, discards pending callbacks and
    /// timers. A closed loop refuses new work with [`RuntimeError::Closed`].
    /// Closing twice is fine.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::AlreadyRunning`] if called while the loop runs.
    pub fn close(&self) -> Result<(), RuntimeError> {
        if self.local.running.get() {
            return Err(RuntimeError::AlreadyRunning);
        }
        if !self.local.closed.replace(true) {
            drop(self.local.exec.sched.mark_closed());
            self.local.teardown();
        }
        Ok(())
    }

    /// Cancels every task still alive and runs the loop until they have all
    /// finished cancelling (what [`run`] does after its main future).
    ///
    /// # Errors
    ///
    /// As for [`EventLoop::run_until_complete`].
    pub fn cancel_all_tasks(&self) -> Result<(), RuntimeError> {
        let local = &self.local;
        local.check_can_run()?;
        let _running = context::Running::enter(local);
        // Cancelled futures' `Drop` may spawn more tasks: cancel those too,
        // for a bounded number of rounds.
        for _ in 0..1000 {
            let tasks = local.exec.all();
            if tasks.is_empty() {
                return Ok(());
            }
            for t in &tasks {
                t.cancel();
            }
            while tasks.iter().any(|t| !t.is_done()) {
                local.run_once(&mut || {}, &Cell::new(false))?;
            }
            // Done callbacks of the cancelled tasks run too (as asyncio.run).
            for _ in 0..1000 {
                if !local.exec.has_ready() {
                    break;
                }
                local.run_once(&mut || {}, &Cell::new(false))?;
            }
        }
        local.exec.cancel_all_now();
        Ok(())
    }

    /// Spawns `future` as a task on this loop (asyncio's `loop.create_task`);
    /// it runs once the loop runs. Unlike asyncio, dropping the returned
    /// [`Task`] cancels the task (see [`Task::detach`]).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] if the loop was closed.
    pub fn spawn<F: Future + 'static>(&self, future: F) -> Result<Task<F::Output>, RuntimeError> {
        self.local.spawn(future, None)
    }

    /// Like [`EventLoop::spawn`], naming the task.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] if the loop was closed.
    pub fn spawn_named<F: Future + 'static>(
        &self,
        name: impl Into<String>,
        future: F,
    ) -> Result<Task<F::Output>, RuntimeError> {
        self.local.spawn(future, Some(name.into().into_boxed_str()))
    }

    /// Schedules `f` to run on the next iteration, after everything already
    /// ready (FIFO).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] if the loop was closed.
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Result<CallbackHandle, RuntimeError> {
        self.local.call_at(None, Box::new(f))
    }

    /// Schedules `f` to run `delay` from now. Callbacks with equal deadlines
    /// run in the order they were scheduled.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] if the loop was closed.
    pub fn call_later(
        &self,
        delay: Duration,
        f: impl FnOnce() + 'static,
    ) -> Result<CallbackHandle, RuntimeError> {
        self.local
            .call_at(Some(crate::time::deadline_after(delay)), Box::new(f))
    }

    /// Schedules `f` to run at `when` (a [`EventLoop::time`] value).
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Closed`] if the loop was closed.
    pub fn call_at(
        &self,
        when: Instant,
        f: impl FnOnce() + 'static,
    ) -> Result<CallbackHandle, RuntimeError> {
        self.local.call_at(Some(when), Box::new(f))
    }

    /// The loop's clock (monotonic; `call_at(time() + d)` ≡ `call_later(d)`).
    pub fn time(&self) -> Instant {
        Instant::now()
    }

    /// A `Send + Sync` handle to this loop.
    pub fn handle(&self) -> Handle {
        Handle::new(self.local.exec.sched.clone(), self.local.id)
    }

    /// Sets the exception handler: called with panics nobody retrieved,
    /// panicking callbacks and (debug mode) slow polls. Replaces the default,
    /// which writes to standard error.
    pub fn set_exception_handler(&self, handler: impl Fn(&ExceptionContext) + 'static) {
        self.local.exec.set_handler(Some(Rc::new(handler)));
    }

    /// Restores the default exception handler.
    pub fn clear_exception_handler(&self) {
        self.local.exec.set_handler(None);
    }

    /// Calls `f` on this loop, as a `call_soon` callback (never in signal
    /// context), after each delivery of `signum` (asyncio's
    /// `loop.add_signal_handler`). Replaces this loop's
    /// previous handler for `signum`. Deliveries made while the loop does
    /// not run are coalesced into one call. See [`crate::signal`].
    ///
    /// # Errors
    ///
    /// The loop is closed; `signum` is invalid or may not be caught
    /// (`SIGKILL`, `SIGSTOP`, `SIGSEGV`...); `sigaction` or `eventfd` failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let lp = ringloop::EventLoop::new()?;
    /// let count = Rc::new(Cell::new(0));
    /// let c = count.clone();
    /// lp.add_signal_handler(libc::SIGUSR2, move || c.set(c.get() + 1))?;
    /// lp.run_until_complete(async {
    ///     // SAFETY: raise(3) has no memory-safety preconditions.
    ///     unsafe { libc::raise(libc::SIGUSR2) };
    ///     while count.get() == 0 {
    ///         ringloop::sleep(std::time::Duration::from_millis(1)).await;
    ///     }
    /// })?;
    /// assert!(lp.remove_signal_handler(libc::SIGUSR2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_signal_handler(&self, signum: i32, f: impl FnMut() + 'static) -> io::Result<()> {
        self.local.check_open()?;
        crate::signal::add_handler(&self.local, signum, Box::new(f))
    }

    /// Removes this loop's handler for `signum`; returns whether there was
    /// one. Once no loop has a handler for `signum` (and no
    /// [`Signal`](crate::signal::Signal) ever listened for it), its previous
    /// disposition comes back.
    pub fn remove_signal_handler(&self, signum: i32) -> bool {
        crate::signal::remove_handler(&self.local, signum)
    }

    /// Turns debug mode on or off (see [`Builder::debug`]).
    pub fn set_debug(&self, enabled: bool) {
        let d = self.local.exec.debug();
        self.local.exec.set_debug(DebugOptions { enabled, ..d });
    }

    /// Whether debug mode is on.
    pub fn get_debug(&self) -> bool {
        self.local.exec.debug().enabled
    }

    /// Every task of this loop not yet done.
    pub fn all_tasks(&self) -> Vec<TaskHandle> {
        self.local.exec.all()
    }

    /// The backend this loop runs on: [`Backend::IoUring`], or
    /// [`Backend::Epoll`] when it was forced ([`Builder::backend`],
    /// `RINGLOOP_BACKEND=epoll`) or io_uring was refused here (see
    /// [`Backend`]; [`EventLoop::backend_fallback_reason`] says why).
    ///
    /// # Examples
    ///
    /// ```
    /// let lp = ringloop::EventLoop::new()?;
    /// println!("running on {}", lp.backend());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn backend(&self) -> Backend {
        self.local.driver.borrow().backend()
    }

    /// Why this loop runs on epoll although io_uring was allowed: the
    /// io_uring setup error that made it fall back (e.g. a seccomp
    /// profile's `EPERM`). `None` when it runs on io_uring or epoll was
    /// asked for.
    pub fn backend_fallback_reason(&self) -> Option<String> {
        self.local
            .driver
            .borrow()
            .fallback_reason()
            .map(str::to_owned)
    }

    /// The ring's set-up flags (`"epoll"` on the epoll backend), e.g. `"SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN|TASKRUN_FLAG"`.
    pub fn ring_flags(&self) -> String {
        self.local.driver.borrow().flags_description()
    }

    /// Number of `io_uring_enter` calls made so far (on the epoll backend,
    /// `epoll_wait` calls), for tests and tuning.
    pub fn enter_count(&self) -> u64 {
        self.local.driver.borrow().stats().enters
    }

    /// A snapshot of this loop's ring counters (lost completions, overflow
    /// flushes, ops in flight, sizes); from inside the loop, see
    /// [`ring_stats`].
    pub fn ring_stats(&self) -> RingStats {
        self.local.driver.borrow_mut().ring_stats()
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        // Wakes queued by other threads hold task references: drop them
        // here, on the owner thread.
        drop(self.local.exec.sched.mark_closed());
        self.local.teardown();
        // Ops still in flight (their futures were just dropped) hold their
        // socket, and so the driver: reap them now, or the ring, their fds
        // and buffers would never be freed.
        crate::driver::drain(&self.local.driver);
        self.local.exec.detach();
        context::unregister(self.local.id);
    }
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.local.id)
            .field("running", &self.local.running.get())
            .field("closed", &self.local.closed.get())
            .field("tasks", &self.local.exec.live_tasks())
            .field("timers", &self.local.timers.borrow().len())
            .finish()
    }
}

/// Runs `future` on a new loop, then cancels every task still alive and
/// waits until they finished cancelling, then waits (at most 5 s, see
/// [`EventLoop::shutdown_default_executor`]; [`Builder::run`] with
/// [`Builder::blocking_shutdown_timeout`] to change it) for the blocking
/// jobs the loop submitted, then closes the loop (asyncio's `asyncio.run`).
///
/// A panic in `future` propagates.
///
/// # Errors
///
/// An `io::Error` if the loop cannot be created (io_uring forced but
/// unavailable: the message names the cause and the fix; by default the
/// loop runs on epoll then, see [`Builder::build`]) or if the driver
/// fails.
///
/// Ctrl-C (`SIGINT`, when its disposition was the default and no user code
/// listens for it) cancels `future`, then `run` shuts down as usual and
/// returns an error of kind `Interrupted` wrapping
/// [`KeyboardInterrupt`](crate::signal::KeyboardInterrupt) (details, and
/// what a second Ctrl-C does, in [`crate::signal`]).
///
/// # Examples
///
/// ```
/// let answer = ringloop::run(async { 6 * 7 })?;
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run<F: Future>(future: F) -> io::Result<F::Output> {
    run_with(&Builder::new(), future)
}

/// [`run`] on a loop built by `builder` ([`Builder::run`]).
pub(crate) fn run_with<F: Future>(builder: &Builder, future: F) -> io::Result<F::Output> {
    let lp = builder.build()?;
    // Ctrl-C cancels `future` (see `crate::signal`).
    let out = lp.run_until_complete(crate::signal::cancel_on_ctrl_c(future))?;
    lp.cancel_all_tasks()?;
    lp.shutdown_default_executor(Some(lp.blocking_shutdown_timeout()))?;
    lp.close()?;
    out
}

/// Spawns `future` as a task on the running loop (asyncio's
/// `asyncio.create_task`). The task starts after the caller yields. Unlike
/// asyncio, dropping the returned [`Task`] cancels the task (see
/// [`Task::detach`]).
///
/// # Panics
///
/// When no ringloop loop is running on this thread.
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let t = ringloop::spawn(async { "hi" });
///     assert_eq!(t.await.unwrap(), "hi");
/// })
/// .unwrap();
/// ```
pub fn spawn<F: Future + 'static>(future: F) -> Task<F::Output> {
    spawn_inner(future, None)
}

/// Like [`spawn`], naming the task (see [`Task::name`]).
///
/// # Panics
///
/// When no ringloop loop is running on this thread.
pub fn spawn_named<F: Future + 'static>(name: impl Into<String>, future: F) -> Task<F::Output> {
    spawn_inner(future, Some(name.into().into_boxed_str()))
}

fn spawn_inner<F: Future + 'static>(future: F, name: Option<Box<str>>) -> Task<F::Output> {
    match context::with_current(|l| l.exec.spawn(future, name)) {
        Some(task) => task,
        None => panic!("ringloop::spawn called outside a running ringloop event loop"),
    }
}

/// Starts `future` on the loop behind `handle`, from any thread (asyncio's
/// `run_coroutine_threadsafe`); the same as [`Handle::spawn`]. Await the
/// [`RemoteTask`] on another loop, or block a plain thread on
/// [`RemoteTask::wait`].
///
/// # Errors
///
/// [`RuntimeError::Closed`] when the loop is closed.
pub fn run_coroutine_threadsafe<F>(
    future: F,
    handle: &Handle,
) -> Result<RemoteTask<F::Output>, RuntimeError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle.spawn(future)
}

/// The id of the loop running on this thread, if any.
pub(crate) fn current_loop_id() -> Option<u64> {
    context::current_id()
}

/// Sends `ctx` to the exception handler of loop `loop_id` if it is still
/// alive on this thread (closed or not), else to the running loop's, else
/// to the default handler (standard error). Never panics for the lack of a
/// loop: usable from any `Drop`.
pub(crate) fn report_exception(loop_id: Option<u64>, ctx: &ExceptionContext) {
    let report_to = |id| context::with_loop(id, |l| l.exec.report(ctx));
    let reported = loop_id
        .and_then(report_to)
        .or_else(|| context::current_id().and_then(report_to));
    if reported.is_none() {
        crate::trace::exception(ctx);
        crate::task::default_handler(ctx);
    }
}

/// Debug mode says once, when a loop is made, which backend it runs on and
/// why it fell back to epoll if it did.
fn log_backend(driver: &Driver) {
    match driver.fallback_reason() {
        Some(why) => eprintln!("ringloop: loop runs on the epoll backend; io_uring: {why}"),
        None => eprintln!("ringloop: loop runs on the {} backend", driver.backend()),
    }
}

/// The driver of the loop running on this thread (for sockets and files).
pub(crate) fn current_driver() -> io::Result<Rc<RefCell<Driver>>> {
    context::with_current(|l| l.driver.clone()).ok_or_else(|| {
        io::Error::other(
            "ringloop: sockets and files must be created inside a running ringloop event loop \
             (they are driven by the loop of the thread that makes them); to make a listener \
             before the loop, bind a std listener and pass it to `from_std` inside the loop \
             (ringloop::guide::sockets)",
        )
    })
}

/// The task currently running on this thread's loop, if any (asyncio's
/// `current_task`). The future given to `run_until_complete` is not a task.
pub fn current_task() -> Option<TaskHandle> {
    context::with_current(|l| l.exec.current()).flatten()
}

/// Every task of the running loop not yet done (asyncio's `all_tasks`);
/// empty when no loop runs on this thread.
pub fn all_tasks() -> Vec<TaskHandle> {
    context::with_current(|l| l.exec.all()).unwrap_or_default()
}
