//! [`HyperExecutor`] and [`HyperTimer`]: hyper's executor and timer on the
//! running loop.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::time::Sleep;

/// `hyper::rt::Executor` that spawns on the loop running on this thread
/// (detached tasks). hyper's HTTP/2 runs each stream, and its client its
/// connection, as such a task; they stay on this loop, so they need not be
/// `Send`.
///
/// # Panics
///
/// `execute` panics when no ringloop loop runs on the calling thread
/// (hyper calls it from the connection's task, on the loop).
///
/// # Examples
///
/// HTTP/2 (cleartext, prior knowledge) needs the executor on both sides:
///
/// ```
/// use ringloop::hyper::{HyperExecutor, HyperTimer};
/// let server = hyper::server::conn::http2::Builder::new(HyperExecutor)
///     .timer(HyperTimer)
///     .clone();
/// let client = hyper::client::conn::http2::Builder::new(HyperExecutor);
/// # let _ = (server, client);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct HyperExecutor;

impl<F> ::hyper::rt::Executor<F> for HyperExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        crate::spawn(fut).detach();
    }
}

/// `hyper::rt::Timer` on the running loop's timers: header-read timeouts,
/// HTTP/2 keep-alive pings and the like. Resetting a sleep moves its
/// deadline in place (no new allocation).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringloop::hyper::HyperTimer;
/// let mut http1 = hyper::server::conn::http1::Builder::new();
/// http1.timer(HyperTimer).header_read_timeout(Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct HyperTimer;

impl ::hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::time::sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn ::hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(s) => s.get_mut().0.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The sleep [`HyperTimer`] makes: a ringloop [`Sleep`] (plain data, so
/// `Send + Sync` and `Unpin` as hyper's `Sleep` requires; it disarms with
/// no syscall when dropped, and dropped on another thread it simply never
/// wakes anyone).
///
/// # Panics
///
/// Polling it outside a running ringloop loop panics, as [`Sleep`] does.
#[derive(Debug)]
pub struct HyperSleep(Sleep);

impl HyperSleep {
    /// When it ends.
    pub fn deadline(&self) -> Instant {
        self.0.deadline()
    }
}

impl Future for HyperSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl ::hyper::rt::Sleep for HyperSleep {}
