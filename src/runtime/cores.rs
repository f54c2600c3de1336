//! Thread-per-core: [`Cores`] starts one event loop per thread (optionally
//! pinned to a CPU), runs the same async entry point on each, and stops and
//! joins them together.
//!
//! Loops share nothing; they talk through [`Handle`]s (every core gets the
//! handles of all cores in its [`Core`]), [`Handle::spawn`] to run work on
//! another core and await its [`RemoteTask`](super::RemoteTask), and the
//! cross-core channel [`crate::sync::cross`]. A server spreads its
//! connections over the cores with a [`CoresListener`](crate::net::CoresListener):
//! round-robin from one accepting core (the default), one listening socket
//! every core accepts from, or one `SO_REUSEPORT` listener per core
//! (`docs/design/cores-distribution.md` compares them).
//!
//! Cores start together and stop together (see [`Cores`]). A panic on one
//! core is caught there; the launcher then stops the other
//! cores (their entry futures are dropped, so their cleanup runs, then each
//! loop cancels its remaining tasks and closes), joins every thread, and
//! returns [`CoresError::Panicked`] naming the core and the panic message.
//!
//! Ctrl-C is handled as [`run`](crate::run) handles it: every core starts
//! watching for `SIGINT` before any entry future runs; a Ctrl-C that no
//! user code listens for cancels every core's entry future (their cleanup
//! runs), each loop shuts down as `run`'s does, and [`Cores::run`] returns
//! [`CoresError::Interrupted`] (which converts into the `io::Error` `run`
//! returns: kind `Interrupted`, wrapping
//! [`KeyboardInterrupt`](crate::signal::KeyboardInterrupt)).

use std::any::Any;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Poll, Waker};

use super::{Builder, Handle};
use crate::signal::{CtrlC, KeyboardInterrupt};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What one core knows: its index, how many cores run, and every core's
/// [`Handle`]. Cheap to clone and `Send`.
#[derive(Clone)]
pub struct Core {
    index: usize,
    cpu: Option<usize>,
    handles: Arc<[Handle]>,
}

impl Core {
    /// This core's index, `0..count()`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many cores the launcher runs.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The CPU this core's thread is pinned to, if pinning was asked for.
    pub fn cpu(&self) -> Option<usize> {
        self.cpu
    }

    /// The handle of core `index` (use [`Handle::spawn`] or
    /// [`Handle::call_soon_threadsafe`] to run work there).
    ///
    /// # Panics
    ///
    /// When `index >= count()`.
    pub fn handle(&self, index: usize) -> &Handle {
        &self.handles[index]
    }

    /// The handles of every core, by index.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("index", &self.index)
            .field("count", &self.count())
            .field("cpu", &self.cpu)
            .finish()
    }
}

/// Why [`Cores::run`] failed.
#[non_exhaustive]
pub enum CoresError {
    /// Zero cores were asked for, or more CPUs than allowed to pin to.
    InvalidConfig(String),
    /// Core `core` could not start (its loop could not be created, or its
    /// thread could not be pinned or spawned); the others were stopped.
    Start {
        /// The core's index.
        core: usize,
        /// The cause.
        error: io::Error,
    },
    /// The entry future of core `core` panicked; the others were stopped.
    Panicked {
        /// The core's index.
        core: usize,
        /// The panic payload.
        payload: Box<dyn Any + Send>,
    },
    /// Ctrl-C (`SIGINT`, while no user code listened for it) cancelled
    /// every core's entry future, as [`run`](crate::run) cancels its main
    /// future. Converts into `run`'s error: an `io::Error` of kind
    /// `Interrupted` wrapping [`KeyboardInterrupt`].
    Interrupted,
}

impl CoresError {
    /// Whether Ctrl-C stopped the cores ([`CoresError::Interrupted`]).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, CoresError::Interrupted)
    }

    /// The panic message, for [`CoresError::Panicked`] with a string payload.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            CoresError::Panicked { payload, .. } => payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str)),
            _ => None,
        }
    }
}

impl fmt::Display for CoresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoresError::InvalidConfig(why) => write!(f, "invalid thread-per-core setup: {why}"),
            CoresError::Start { core, error } => write!(f, "core {core} failed to start: {error}"),
            CoresError::Panicked { core, .. } => match self.panic_message() {
                Some(m) => write!(f, "core {core} panicked: {m}"),
                None => write!(f, "core {core} panicked"),
            },
            CoresError::Interrupted => write!(
                f,
                "interrupted by Ctrl-C (SIGINT): every core's entry future was cancelled"
            ),
        }
    }
}

impl fmt::Debug for CoresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for CoresError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CoresError::Start { error, .. } => Some(error),
            CoresError::Interrupted => Some(&KeyboardInterrupt),
            _ => None,
        }
    }
}

/// [`CoresError::Interrupted`] becomes what [`run`](crate::run) returns
/// after Ctrl-C (kind `Interrupted`, wrapping [`KeyboardInterrupt`]); a
/// core that could not start gives its error (kind kept, the core named);
/// a bad configuration is `InvalidInput` and a panic `Other`, with the
/// `CoresError`'s message.
///
/// # Examples
///
/// ```
/// use ringloop::CoresError;
/// use ringloop::signal::KeyboardInterrupt;
///
/// let e = std::io::Error::from(CoresError::Interrupted);
/// assert!(KeyboardInterrupt::is(&e));
/// assert_eq!(e.kind(), std::io::ErrorKind::Interrupted);
/// ```
impl From<CoresError> for io::Error {
    fn from(e: CoresError) -> io::Error {
        match e {
            CoresError::Interrupted => KeyboardInterrupt.into(),
            CoresError::Start { core, error } => io::Error::new(
                error.kind(),
                format!("core {core} failed to start: {error}"),
            ),
            CoresError::InvalidConfig(why) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid thread-per-core setup: {why}"),
            ),
            // The panic payload is not `Sync`: its message is kept.
            e @ CoresError::Panicked { .. } => io::Error::other(e.to_string()),
        }
    }
}

/// A stop request for one core's entry future, settable from any thread.
struct StopSignal {
    stopped: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl StopSignal {
    fn new() -> StopSignal {
        StopSignal {
            stopped: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            if self.stopped.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *lock(&self.waker) = Some(cx.waker().clone());
            // Re-check: a stop between the load and the store found no waker.
            if self.stopped.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// Locks `m`, ignoring poisoning (the data is a waker slot).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How the cores stop together.
struct Shutdown {
    /// One per core.
    stops: Box<[StopSignal]>,
    /// Entry futures still running; the last to finish stops every core.
    remaining: AtomicUsize,
}

/// Launches one event loop per thread (thread-per-core).
///
/// All cores start together (no entry future runs before every loop
/// exists) and stop together: a core whose entry future finished keeps its
/// loop running, serving the other cores' remote work and its own tasks,
/// until the last entry future finishes; then every loop cancels its
/// remaining tasks and closes, as [`run`](crate::run) does.
///
/// Ctrl-C is [`run`](crate::run)'s too: a `SIGINT` that no user code
/// listens for cancels every core's entry future, and [`Cores::run`]
/// returns [`CoresError::Interrupted`] (`?` turns it into `run`'s
/// `io::Error`). No core needs to await
/// [`ctrl_c`](crate::signal::ctrl_c) itself. While user code listens for
/// `SIGINT` (a core awaiting `ctrl_c`, say), Ctrl-C is that code's and no
/// core is interrupted, as with `run` (see [`crate::signal`]).
///
/// # Examples
///
/// ```
/// use ringloop::Cores;
///
/// // Each core computes something and can reach the others through
/// // `core.handle(i)`.
/// let out = Cores::new(2)
///     .run(|core| async move {
///         let next = (core.index() + 1) % core.count();
///         // Run a future on the next core and await its result here.
///         let there = core.handle(next).spawn(async { ringloop::current_task().is_some() });
///         (core.index(), there.unwrap().await.unwrap())
///     })
///     .unwrap();
/// assert_eq!(out, vec![(0, true), (1, true)]);
/// ```
#[derive(Debug, Clone)]
pub struct Cores {
    count: usize,
    pin: bool,
    builder: Builder,
    name: String,
}

impl Cores {
    /// `count` loops on `count` threads, not pinned, default loop settings.
    pub fn new(count: usize) -> Cores {
        Cores {
            count,
            pin: false,
            builder: Builder::new(),
            name: "ringloop-core".to_owned(),
        }
    }

    /// One loop per CPU this process may run on.
    pub fn per_cpu() -> Cores {
        Cores::new(allowed_cpus().map_or(1, |c| c.len()))
    }

    /// Pins core `i` to the `i`-th CPU of the process's affinity mask
    /// (`sched_setaffinity`); more cores than allowed CPUs is an error.
    pub fn pin(mut self, yes: bool) -> Cores {
        self.pin = yes;
        self
    }

    /// The settings each core's loop is built with.
    pub fn loop_builder(mut self, builder: Builder) -> Cores {
        self.builder = builder;
        self
    }

    /// The threads' name prefix (`<name>-<index>`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Cores {
        self.name = name.into();
        self
    }

    /// Starts every core, runs `entry(core)` on each as its main future
    /// (like [`run`](crate::run): afterwards its remaining tasks are
    /// cancelled and the loop closed), and returns the outputs by core
    /// index once all have finished.
    ///
    /// # Errors
    ///
    /// [`CoresError`]: a bad configuration, a core that could not start, a
    /// core whose entry future panicked (the other cores are stopped
    /// first: their entry futures are dropped), or Ctrl-C
    /// ([`CoresError::Interrupted`]: every entry future was dropped).
    pub fn run<F, Fut, T>(self, entry: F) -> Result<Vec<T>, CoresError>
    where
        F: Fn(Core) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if self.count == 0 {
            return Err(CoresError::InvalidConfig(
                "at least one core is needed".into(),
            ));
        }
        let cpus = if self.pin {
            let allowed = allowed_cpus().map_err(|error| CoresError::Start { core: 0, error })?;
            if allowed.len() < self.count {
                return Err(CoresError::InvalidConfig(format!(
                    "{} pinned cores asked for, but this process may run on {} CPUs ({allowed:?})",
                    self.count,
                    allowed.len()
                )));
            }
            allowed.into_iter().take(self.count).map(Some).collect()
        } else {
            vec![None; self.count]
        };
        let entry = Arc::new(entry);
        let shutdown = Arc::new(Shutdown {
            stops: (0..self.count).map(|_| StopSignal::new()).collect(),
            remaining: AtomicUsize::new(self.count),
        });
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, io::Result<Handle>)>();
        let mut go = Vec::with_capacity(self.count);
        let mut threads = Vec::with_capacity(self.count);
        let mut first_error = None;
        for (index, cpu) in cpus.iter().copied().enumerate() {
            let (go_tx, go_rx) = mpsc::channel::<Option<Core>>();
            let ready_tx = ready_tx.clone();
            let builder = self.builder.clone();
            let entry = entry.clone();
            let shutdown = shutdown.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{index}", self.name))
                .spawn(move || core_main(index, cpu, builder, ready_tx, go_rx, shutdown, &*entry));
            match spawned {
                Ok(t) => {
                    threads.push(t);
                    go.push(go_tx);
                }
                Err(error) => {
                    first_error = Some(CoresError::Start { core: index, error });
                    break;
                }
            }
        }
        drop(ready_tx);
        // Every started thread reports its loop (or why it has none).
        let mut handles: Vec<Option<Handle>> = (0..threads.len()).map(|_| None).collect();
        for _ in 0..threads.len() {
            let Ok((index, res)) = ready_rx.recv() else {
                break; // a thread died before reporting; its join says why
            };
            match res {
                Ok(h) => handles[index] = Some(h),
                Err(error) => {
                    if first_error.is_none() {
                        first_error = Some(CoresError::Start { core: index, error });
                    }
                }
            }
        }
        let all: Option<Vec<Handle>> = handles.into_iter().collect();
        match (first_error.is_none(), all) {
            (true, Some(all)) => {
                let all: Arc<[Handle]> = all.into();
                for (index, tx) in go.iter().enumerate() {
                    let core = Core {
                        index,
                        cpu: cpus[index],
                        handles: all.clone(),
                    };
                    let _ = tx.send(Some(core));
                }
            }
            _ => {
                // Tell every thread waiting for its go to quit.
                for tx in &go {
                    let _ = tx.send(None);
                }
            }
        }
        drop(go);
        let mut outputs = Vec::with_capacity(threads.len());
        let mut panicked = None;
        let mut interrupted = false;
        for (index, t) in threads.into_iter().enumerate() {
            match t.join() {
                Ok(CoreOutcome::Done(v)) => outputs.push(v),
                Ok(CoreOutcome::Interrupted) => interrupted = true,
                Ok(CoreOutcome::Panicked(payload)) | Err(payload) => {
                    if panicked.is_none() {
                        panicked = Some(CoresError::Panicked {
                            core: index,
                            payload,
                        });
                    }
                }
                Ok(CoreOutcome::Stopped | CoreOutcome::NotStarted) => {}
            }
        }
        if let Some(e) = first_error.or(panicked) {
            return Err(e);
        }
        if interrupted {
            return Err(CoresError::Interrupted);
        }
        Ok(outputs)
    }
}

enum CoreOutcome<T> {
    Done(T),
    Panicked(Box<dyn Any + Send>),
    /// Another core failed (or was interrupted) and this one's entry
    /// future was dropped.
    Stopped,
    /// Ctrl-C cancelled this core's entry future.
    Interrupted,
    NotStarted,
}

fn core_main<F, Fut, T>(
    index: usize,
    cpu: Option<usize>,
    builder: Builder,
    ready: mpsc::Sender<(usize, io::Result<Handle>)>,
    go: mpsc::Receiver<Option<Core>>,
    shutdown: Arc<Shutdown>,
    entry: &F,
) -> CoreOutcome<T>
where
    F: Fn(Core) -> Fut,
    Fut: Future<Output = T>,
{
    let lp = cpu
        .map_or(Ok(()), crate::sys::pin_to_cpu)
        .map_err(|e| io::Error::new(e.kind(), format!("pinning to CPU {cpu:?}: {e}")))
        .and_then(|()| builder.build());
    // Watch for Ctrl-C before reporting ready: once every core is ready
    // (before any entry future runs), a `SIGINT` reaches them all.
    let lp = lp.and_then(|lp| {
        let ctrl_c = lp.run_until_complete(async { CtrlC::watch() })?;
        Ok((lp, ctrl_c))
    });
    let (lp, ctrl_c) = match lp {
        Ok((lp, ctrl_c)) => {
            let _ = ready.send((index, Ok(lp.handle())));
            (lp, ctrl_c)
        }
        Err(e) => {
            let _ = ready.send((index, Err(e)));
            return CoreOutcome::NotStarted;
        }
    };
    drop(ready);
    let Ok(Some(core)) = go.recv() else {
        return CoreOutcome::NotStarted;
    };
    let stops = &shutdown.stops;
    let stop_others = || {
        for (i, s) in stops.iter().enumerate() {
            if i != index {
                s.stop();
            }
        }
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        lp.run_until_complete(async {
            let main = pin!(ctrl_c.run(entry(core)));
            let stop = pin!(stops[index].wait());
            match futures_util::future::select(main, stop).await {
                futures_util::future::Either::Left((Ok(v), stop)) => {
                    // Keep serving the other cores (their remote work, our
                    // tasks) until every entry future is done.
                    if shutdown.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                        stops.iter().for_each(StopSignal::stop);
                    }
                    stop.await;
                    CoreOutcome::Done(v)
                }
                // Ctrl-C (`CtrlC::run`'s only error); the entry future was
                // dropped already.
                futures_util::future::Either::Left((Err(_), _)) => CoreOutcome::Interrupted,
                futures_util::future::Either::Right(((), _)) => CoreOutcome::Stopped,
            }
        })
    }));
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => CoreOutcome::Panicked(Box::new(format!("the loop failed: {e}"))),
        Err(payload) => CoreOutcome::Panicked(payload),
    };
    if matches!(outcome, CoreOutcome::Panicked(_) | CoreOutcome::Interrupted) {
        // One Ctrl-C reaches every core's watch, but a core whose watch
        // could not start (or that has not polled it yet) stops here too.
        stop_others();
    }
    // As `run()` does: cancel what is left and close. A failure here is
    // reported (the outcome above already holds the result).
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _ = lp.cancel_all_tasks();
        let _ = lp.shutdown_default_executor(Some(lp.blocking_shutdown_timeout()));
        let _ = lp.close();
    }));
    outcome
}

/// The CPUs this thread may run on (`sched_getaffinity`), ascending.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    crate::sys::allowed_cpus()
}
