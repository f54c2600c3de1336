//! `run()`'s Ctrl-C: cancel the main future, report [`KeyboardInterrupt`].

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::Poll;

use super::Signal;
use super::disposition::{self, CountedHold};
use super::number::RUN_CHANNEL;

/// The error inside the `io::Error` (kind [`io::ErrorKind::Interrupted`])
/// that [`crate::run`] returns when Ctrl-C cancelled its main future (and
/// that [`CoresError::Interrupted`](crate::CoresError::Interrupted) converts
/// into, for [`Cores::run`](crate::Cores::run)):
/// Python's `KeyboardInterrupt`, which `asyncio.run` raises after cancelling
/// its main task.
///
/// # Examples
///
/// ```
/// use ringloop::signal::KeyboardInterrupt;
///
/// let err: std::io::Error = KeyboardInterrupt.into();
/// assert_eq!(err.kind(), std::io::ErrorKind::Interrupted);
/// assert!(KeyboardInterrupt::is(&err));
/// assert!(!KeyboardInterrupt::is(&std::io::Error::other("something else")));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyboardInterrupt;

impl KeyboardInterrupt {
    /// Whether `err` is the error [`crate::run`] returns after Ctrl-C (or
    /// an interrupted [`Cores::run`](crate::Cores::run)'s error, converted).
    pub fn is(err: &io::Error) -> bool {
        err.get_ref()
            .is_some_and(|e| e.downcast_ref::<KeyboardInterrupt>().is_some())
    }
}

impl fmt::Display for KeyboardInterrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted by Ctrl-C (SIGINT): the main future was cancelled")
    }
}

impl std::error::Error for KeyboardInterrupt {}

impl From<KeyboardInterrupt> for io::Error {
    fn from(k: KeyboardInterrupt) -> io::Error {
        io::Error::new(io::ErrorKind::Interrupted, k)
    }
}

/// `run()`'s watch on `SIGINT`: a listener of the run channel and a counted
/// hold on the disposition. Field order is drop order: the hold goes first.
struct Watch {
    hold: Option<CountedHold>,
    signal: Signal,
}

impl Watch {
    /// Starts watching, if `SIGINT` has its default disposition (or
    /// ringloop's handler). Any failure means: no watch.
    fn start() -> Option<Watch> {
        if !disposition::acquire_if_default(libc::SIGINT).ok()? {
            return None;
        }
        let hold = CountedHold::adopt(libc::SIGINT);
        let signal = Signal::internal(RUN_CHANNEL, libc::SIGINT).ok()?;
        Some(Watch {
            hold: Some(hold),
            signal,
        })
    }
}

/// `run()`'s Ctrl-C watch, started (see [`CtrlC::watch`]) before the main
/// future runs: [`crate::Cores`] starts one on every core before any entry
/// future runs, so a `SIGINT` after start-up reaches them all.
pub(crate) struct CtrlC(Option<Watch>);

impl CtrlC {
    /// Starts watching for `SIGINT` on the loop running on this thread, if
    /// its disposition is the default (or ringloop's handler); else (or
    /// with no running loop) watches nothing.
    pub(crate) fn watch() -> CtrlC {
        CtrlC(Watch::start())
    }

    /// Runs `future`; a `SIGINT` delivered (since [`CtrlC::watch`]) while no
    /// user code listens for it drops `future` (cancelling it) and gives
    /// [`KeyboardInterrupt`].
    ///
    /// The `SIGINT` disposition is put back (see [`disposition::release`])
    /// before `future` is dropped, so a second Ctrl-C during its clean-up,
    /// or during the rest of `run()`'s shutdown, has the default effect.
    pub(crate) async fn run<F: Future>(self, future: F) -> io::Result<F::Output> {
        let Some(mut watch) = self.0 else {
            return Ok(future.await);
        };
        let mut main = pin!(Some(future));
        let finished = poll_fn(|cx| {
            if let Some(f) = main.as_mut().as_pin_mut() {
                if let Poll::Ready(v) = f.poll(cx) {
                    return Poll::Ready(Some(v));
                }
            }
            match watch.signal.poll_recv(cx) {
                Poll::Ready(Some(())) => Poll::Ready(None),
                // The loop is closing: it cannot be while it runs this future.
                Poll::Ready(None) | Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match finished {
            Some(v) => Ok(v),
            None => {
                drop(watch.hold.take());
                main.set(None);
                Err(KeyboardInterrupt.into())
            }
        }
    }
}

/// Runs `future` under a [`CtrlC`] watch started now (what `run()` does).
pub(crate) async fn cancel_on_ctrl_c<F: Future>(future: F) -> io::Result<F::Output> {
    CtrlC::watch().run(future).await
}
