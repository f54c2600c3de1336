//! [`wait_for`] and the [`timeout`] scope.

use std::cell::Cell;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::time::{Sleep, sleep, sleep_until};

/// The deadline passed before the future finished (asyncio's
/// `TimeoutError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutError(());

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for TimeoutError {}

impl From<TimeoutError> for std::io::Error {
    fn from(e: TimeoutError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Waits for `future` for at most `timeout` (asyncio's `wait_for`,
/// SEMANTICS W1–W6). The future is polled in place (no task; any lifetime).
///
/// - Finishes in time: its output (W1).
/// - On timeout: the future is dropped (cancelled) and its cleanup has run
///   before [`TimeoutError`] is returned (W2). A [`crate::Task`] dropped this
///   way is cancelled at once, its cleanup run too.
/// - `None` waits forever; a zero timeout polls once (W3).
/// - Dropping the `wait_for` drops the future (W4); wrap it in
///   [`crate::shield`] to keep it running (W5).
/// - If the future completes in the same loop turn as the timer fires, its
///   output wins (W6): the future is always polled before the timer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let eternity = ringloop::sleep(Duration::from_secs(3600));
///     let r = ringloop::wait_for(eternity, Some(Duration::from_millis(1))).await;
///     assert!(r.is_err());
///     let r = ringloop::wait_for(async { 7 }, Some(Duration::ZERO)).await;
///     assert_eq!(r, Ok(7));
/// })
/// .unwrap();
/// ```
pub async fn wait_for<F: Future>(
    future: F,
    timeout: Option<Duration>,
) -> Result<F::Output, TimeoutError> {
    let Some(timeout) = timeout else {
        return Ok(future.await);
    };
    let mut future = pin!(future);
    if timeout.is_zero() {
        return poll_fn(|cx| {
            Poll::Ready(match future.as_mut().poll(cx) {
                Poll::Ready(v) => Ok(v),
                Poll::Pending => Err(TimeoutError(())),
            })
        })
        .await;
    }
    let mut timer: Option<Sleep> = None;
    poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        // Armed only once the future is pending: a ready future costs no timer.
        let timer = timer.get_or_insert_with(|| sleep(timeout));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TimeoutError(()))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
    // `future` is dropped here, before the caller sees the result.
}

struct ScopeState {
    deadline: Cell<Option<Instant>>,
    /// Bumped by every `reschedule`, so a running scope re-arms its timer.
    version: Cell<u64>,
    expired: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

/// A deadline for a block of work that can be moved while the work runs
/// (asyncio's `asyncio.timeout()` context manager, SEMANTICS W7).
///
/// Clones share the deadline, so the work itself can hold one and
/// [`reschedule`](TimeoutScope::reschedule) it.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// ringloop::run(async {
///     let scope = ringloop::timeout(Duration::from_millis(5));
///     let inner = scope.clone();
///     let r = scope
///         .run(async move {
///             // More time is needed: push the deadline back.
///             inner.reschedule(Some(Instant::now() + Duration::from_millis(50)));
///             ringloop::sleep(Duration::from_millis(20)).await;
///             "done"
///         })
///         .await;
///     assert_eq!(r, Ok("done"));
///     assert!(!scope.expired());
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct TimeoutScope {
    state: Rc<ScopeState>,
}

/// A [`TimeoutScope`] whose deadline is `delay` from now.
pub fn timeout(delay: Duration) -> TimeoutScope {
    timeout_at(Some(crate::time::deadline_after(delay)))
}

/// A [`TimeoutScope`] with an absolute deadline (`None`: no deadline yet).
pub fn timeout_at(deadline: Option<Instant>) -> TimeoutScope {
    TimeoutScope {
        state: Rc::new(ScopeState {
            deadline: Cell::new(deadline),
            version: Cell::new(0),
            expired: Cell::new(false),
            waker: Cell::new(None),
        }),
    }
}

impl TimeoutScope {
    /// The current deadline.
    pub fn when(&self) -> Option<Instant> {
        self.state.deadline.get()
    }

    /// Moves the deadline (`None` removes it); takes effect at once, even
    /// while [`TimeoutScope::run`] is waiting.
    pub fn reschedule(&self, deadline: Option<Instant>) {
        let s = &self.state;
        s.deadline.set(deadline);
        s.version.set(s.version.get() + 1);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    /// Whether the deadline passed while the work ran.
    pub fn expired(&self) -> bool {
        self.state.expired.get()
    }

    /// Runs `future` under this deadline: its output, or [`TimeoutError`]
    /// after the future was dropped (its cleanup has run).
    pub async fn run<F: Future>(&self, future: F) -> Result<F::Output, TimeoutError> {
        let s = &self.state;
        let mut future = pin!(future);
        let mut timer: Option<Sleep> = None;
        let mut armed = None;
        poll_fn(|cx| {
            if let Poll::Ready(v) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            if armed != Some(s.version.get()) {
                armed = Some(s.version.get());
                timer = s.deadline.get().map(sleep_until);
            }
            s.waker.set(Some(cx.waker().clone()));
            match timer.as_mut().map(|t| Pin::new(t).poll(cx)) {
                Some(Poll::Ready(())) => {
                    s.expired.set(true);
                    Poll::Ready(Err(TimeoutError(())))
                }
                _ => Poll::Pending,
            }
        })
        .await
    }
}

impl fmt::Debug for TimeoutScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutScope")
            .field("when", &self.when())
            .field("expired", &self.expired())
            .finish()
    }
}
