//! Signals: [`signal`] streams, one-shot [`recv`] and [`ctrl_c`],
//! [`EventLoop::add_signal_handler`](crate::EventLoop::add_signal_handler),
//! and the Ctrl-C handling of [`crate::run`].
//!
//! # Design
//!
//! ```text
//! kernel ─▶ sigaction handler ─▶ generation[signal] += 1
//!                    │           write(eventfd of every listening loop)
//!                    ▼
//!     loop A: IORING_OP_READ on its eventfd ─▶ wake its listeners whose
//!     loop B: IORING_OP_READ on its eventfd ─▶ signal's generation changed
//! ```
//!
//! The first listener of a signal installs one process-wide `sigaction`
//! handler for it (`SA_RESTART`, not chained to any previous handler). Each
//! event loop that listens for any signal leases an eventfd from a fixed
//! table and keeps one ring read on it. The handler adds one to the
//! signal's *generation* counter and writes every leased eventfd; each
//! loop's read completes, and the loop wakes its listeners whose signal's
//! generation differs from the one they last saw, then reads again. So
//! every listener, on every loop and thread, sees every delivery made after
//! it was created, whichever thread the kernel ran the handler on; no
//! thread needs a signal mask.
//!
//! # What runs in signal context
//!
//! Only the handler, and it is async-signal-safe: it does atomic adds and
//! loads on `static` arrays, and `write(2)`s 8 bytes to non-blocking
//! eventfds that are never closed (so a stale fd number can never reach an
//! unrelated file); it saves and restores `errno`. Everything else (waking
//! tasks, running [`add_signal_handler`](crate::EventLoop::add_signal_handler)
//! callbacks) happens on the loops, as ordinary loop work.
//!
//! # Caveats
//!
//! - **Coalescing.** Deliveries are counted, not queued: however many
//!   times a signal arrived since a listener last looked, it sees one
//!   (as with tokio and with the kernel's own pending-signal bit).
//!   Deliveries before a listener was created are never seen.
//! - **Dispositions.** Once a [`Signal`] for a signal has been created, the
//!   signal's default action (for instance, `SIGINT` and `SIGTERM`
//!   terminating the process) is replaced for the life of the process, even
//!   after every listener is gone: tokio does the same, so that a program
//!   awaiting Ctrl-C in a loop is not killed by one arriving between two
//!   awaits. Loop signal handlers, in contrast, hold the handler only while
//!   registered: removing the last one puts the previous disposition back,
//!   as asyncio's `remove_signal_handler` does.
//! - Other code that installs its own handler for the same signal with
//!   `sigaction` replaces ringloop's: listeners then see nothing.
//! - `SIGKILL`, `SIGSTOP`, the fault signals `SIGILL`, `SIGFPE`, `SIGSEGV`
//!   and `SIGBUS`, and the real-time signals reserved by the C library are
//!   refused with an `InvalidInput` error.
//! - A [`Signal`] is `!Send`: it belongs to the loop it was created on and
//!   is polled there. Once that loop is closed it ends (`recv` gives
//!   `None`).
//! - At most 1024 loops can listen for signals at once; each holds one
//!   eventfd, kept open (for reuse by later loops) until the process exits.
//! - `exec` resets caught signals to their default action in the new
//!   program, as usual; ringloop blocks no signal, so the mask a child
//!   inherits is untouched.
//!
//! # Ctrl-C and `run()`
//!
//! [`crate::run`] turns Ctrl-C into cancelling its main future, as
//! `asyncio.run` does. If `SIGINT` has its default disposition when the
//! main future starts, `run` installs ringloop's handler; a `SIGINT`
//! delivered while no user code listens for it (no [`Signal`] for
//! `SIGINT`, no loop signal handler for it, anywhere in the process) then
//! drops the main future (running its clean-up), `run`
//! cancels the remaining tasks and closes the loop as usual, and returns an
//! `io::Error` of kind [`Interrupted`](std::io::ErrorKind::Interrupted)
//! wrapping [`KeyboardInterrupt`]. While user code listens for `SIGINT`,
//! Ctrl-C is theirs and `run` does nothing with it (as asyncio's runner
//! steps aside when a `SIGINT` handler is installed).
//!
//! The previous disposition comes back as soon as the main future has
//! finished or been cancelled, before the rest of the shutdown: a second
//! Ctrl-C during the clean-up then has the default effect and ends the
//! process at once, which is what asyncio's second Ctrl-C (an immediate
//! `KeyboardInterrupt`) amounts to. (If other ringloop code still holds
//! `SIGINT` at that point, because a [`Signal`] for it was created earlier
//! or another `run` is still running, ringloop's handler stays, and a
//! Ctrl-C nobody listens for is ignored instead.) If `SIGINT` was ignored
//! or had another handler when `run` started, `run` leaves it alone.
//! Several `run`s on different threads are all interrupted by one Ctrl-C.
//! [`Cores::run`](crate::Cores::run) does the same on every core: a Ctrl-C
//! cancels every core's entry future, then each loop shuts down as `run`'s
//! does, and it returns
//! [`CoresError::Interrupted`](crate::CoresError::Interrupted), which
//! converts into the same `io::Error`.
//!
//! `run` returns the error rather than exiting the process, so the program
//! decides: returning it from `main` prints it and exits with status 1;
//! shells expect 130 after Ctrl-C:
//!
//! ```no_run
//! use ringloop::signal::KeyboardInterrupt;
//!
//! match ringloop::run(async { /* serve forever */ }) {
//!     Err(e) if KeyboardInterrupt::is(&e) => std::process::exit(130),
//!     other => other.unwrap(),
//! }
//! ```

mod disposition;
mod handler;
mod interrupt;
mod number;
mod reactor;

use std::fmt;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub use interrupt::KeyboardInterrupt;
pub(crate) use interrupt::{CtrlC, cancel_on_ctrl_c};

use disposition::{CountedHold, Hold};
use handler::UserGuard;
use reactor::LoopSignals;

/// A stream of deliveries of one signal (tokio's `Signal`). Created by
/// [`signal`].
///
/// Every `Signal` sees every delivery made after it was created, whatever
/// other listeners exist; deliveries it has not taken yet are coalesced
/// into one (see the [module docs](self)).
pub struct Signal {
    signum: i32,
    key: usize,
    shared: Rc<LoopSignals>,
    _user: Option<UserGuard>,
}

/// Listens for `signum` (e.g. `libc::SIGTERM`) on the running loop.
///
/// From now on ringloop handles `signum` for the whole process: its default
/// action no longer happens (see the [module docs](self)).
///
/// # Errors
///
/// `InvalidInput` for a number that is not a signal or one that cannot or
/// must not be caught (`SIGKILL`, `SIGSTOP`, `SIGILL`, `SIGFPE`, `SIGSEGV`,
/// `SIGBUS`); an error when no ringloop loop runs on this thread, when
/// `sigaction` or `eventfd` fail, or when 1024 loops already listen.
///
/// # Examples
///
/// ```
/// use ringloop::signal::{self, Signal};
///
/// ringloop::run(async {
///     let mut hup: Signal = signal::signal(libc::SIGHUP)?;
///     let mut hup2 = signal::signal(libc::SIGHUP)?;
///     // SAFETY: kill(2) with our own pid has no memory-safety preconditions.
///     unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
///     // Both listeners see the delivery.
///     assert_eq!(hup.recv().await, Some(()));
///     assert_eq!(hup2.recv().await, Some(()));
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn signal(signum: i32) -> io::Result<Signal> {
    let index = number::check(signum)?;
    let (loop_id, driver) =
        crate::runtime::with_current(|l| (l.id, l.driver.clone())).ok_or_else(|| {
            io::Error::other(format!(
                "ringloop::signal: listening for {} needs a running ringloop event loop on \
                 this thread",
                number::name(signum)
            ))
        })?;
    disposition::acquire(signum, Hold::Permanent)?;
    // Counted before the subscription takes its snapshot: a SIGINT from
    // here on is this listener's, not `run()`'s.
    let user = UserGuard::new(index);
    let shared = reactor::for_loop(loop_id, &driver)?;
    let key = shared.subscribe(index);
    Ok(Signal {
        signum,
        key,
        shared,
        _user: Some(user),
    })
}

impl Signal {
    /// A listener of generation slot `index` that does not count as user
    /// code listening (`run()`'s watch).
    fn internal(index: usize, signum: i32) -> io::Result<Signal> {
        let (loop_id, driver) = crate::runtime::with_current(|l| (l.id, l.driver.clone()))
            .ok_or_else(|| io::Error::other("ringloop::signal: no running event loop"))?;
        let shared = reactor::for_loop(loop_id, &driver)?;
        let key = shared.subscribe(index);
        Ok(Signal {
            signum,
            key,
            shared,
            _user: None,
        })
    }

    /// Waits for the next delivery. `None` once no more can come: the loop
    /// this `Signal` was created on has been closed.
    ///
    /// Cancel-safe: dropping the future loses no delivery.
    pub async fn recv(&mut self) -> Option<()> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery (the poll form of [`Signal::recv`]).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.shared.poll_waiter(self.key, cx)
    }

    /// The signal number this stream listens for.
    pub fn signum(&self) -> i32 {
        self.signum
    }
}

impl futures_util::Stream for Signal {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.shared.unsubscribe(self.key);
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("signal", &number::name(self.signum))
            .field("loop", &self.shared.loop_id())
            .finish()
    }
}

/// Waits for one delivery of `signum` (e.g. `libc::SIGTERM`) after the
/// first poll: [`signal`] and [`Signal::recv`] in one call.
///
/// # Errors
///
/// As for [`signal`]; also an error if the loop is closed while waiting.
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let wait = ringloop::spawn(ringloop::signal::recv(libc::SIGUSR1));
///     ringloop::yield_now().await; // let it start listening
///     // SAFETY: raise(3) has no memory-safety preconditions.
///     unsafe { libc::raise(libc::SIGUSR1) };
///     wait.await.unwrap().unwrap();
/// })
/// .unwrap();
/// ```
pub async fn recv(signum: i32) -> io::Result<()> {
    signal(signum)?.recv().await.ok_or_else(|| {
        io::Error::other(format!(
            "ringloop::signal: the event loop closed while waiting for {}",
            number::name(signum)
        ))
    })
}

/// Waits for Ctrl-C (`SIGINT`): `recv(libc::SIGINT)`.
///
/// While this future (or any [`Signal`] for `SIGINT`) exists, Ctrl-C is
/// the caller's and [`crate::run`] does not cancel its main future.
///
/// # Errors
///
/// As for [`recv`].
///
/// # Examples
///
/// ```no_run
/// ringloop::run(async {
///     println!("press Ctrl-C");
///     ringloop::signal::ctrl_c().await?;
///     println!("bye");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    recv(libc::SIGINT).await
}

/// [`EventLoop::add_signal_handler`](crate::EventLoop::add_signal_handler).
pub(crate) fn add_handler(
    local: &crate::runtime::Local,
    signum: i32,
    f: Box<dyn FnMut()>,
) -> io::Result<()> {
    let index = number::check(signum)?;
    disposition::acquire(signum, Hold::Counted)?;
    let hold = CountedHold::adopt(signum);
    let user = UserGuard::new(index);
    let shared = reactor::for_loop(local.id, &local.driver)?;
    shared.add_handler(signum, f, user, hold);
    Ok(())
}

/// [`EventLoop::remove_signal_handler`](crate::EventLoop::remove_signal_handler).
pub(crate) fn remove_handler(local: &crate::runtime::Local, signum: i32) -> bool {
    reactor::find(local.id).is_some_and(|s| s.remove_handler(signum))
}

/// The loop `loop_id` is being closed or dropped: its handlers go, its
/// read stops, its [`Signal`]s end.
pub(crate) fn close_loop(loop_id: u64) {
    if let Some(s) = reactor::find(loop_id) {
        s.shut();
    }
}

#[cfg(test)]
mod tests;
