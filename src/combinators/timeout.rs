//! [`wait_for`] and the [`timeout`] scope.

use std::cell::Cell;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::task_like::TaskLike;
use crate::promise::InvalidStateError;
use crate::time::{Sleep, sleep, sleep_until};

/// The deadline passed before the future finished (asyncio's
/// `TimeoutError`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// Waits for `future` for at most `timeout` (asyncio's `wait_for`). The
/// future is polled in place (no task; any lifetime).
///
/// - Finishes in time: its output.
/// - On timeout: the future is dropped (cancelled) and its cleanup has run
///   before [`TimeoutError`] is returned. A [`crate::Task`] dropped this way
///   is cancelled at once, its cleanup run too; a `&mut Task` is only let
///   go of, and its owner keeps it (see [`crate::TaskLike`]).
/// - `timeout` is a [`Duration`] or an `Option<Duration>`; `None` waits
///   forever.
/// - A zero timeout never polls the future: it is dropped unstarted and the
///   result is [`TimeoutError`] (asyncio wraps a coroutine in a task that
///   never gets to run). The future's type does not say whether it is a
///   task or promise that may already be done: for those, use
///   [`wait_for_task`], which returns a done one's output.
/// - Dropping the `wait_for` drops the future; wrap a task in
///   [`crate::shield`] to keep it running.
/// - If the future completes in the same loop turn as the timer fires, its
///   output wins: the future is always polled before the timer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let eternity = ringloop::sleep(Duration::from_secs(3600));
///     let r = ringloop::wait_for(eternity, Some(Duration::from_millis(1))).await;
///     assert!(r.is_err());
///     // A bare Duration or an Option: the same.
///     let r = ringloop::wait_for(async { 7 }, Duration::from_millis(50)).await;
///     assert_eq!(r, Ok(7));
///     let r = ringloop::wait_for(async { 7 }, None).await;
///     assert_eq!(r, Ok(7));
///     // A zero timeout does not even start the future.
///     let r = ringloop::wait_for(async { 7 }, Some(Duration::ZERO)).await;
///     assert!(r.is_err());
/// })
/// .unwrap();
/// ```
pub async fn wait_for<F: Future>(
    future: F,
    timeout: impl Into<Option<Duration>>,
) -> Result<F::Output, TimeoutError> {
    let Some(timeout) = timeout.into() else {
        return Ok(future.await);
    };
    if timeout.is_zero() {
        drop(future);
        return Err(TimeoutError(()));
    }
    let mut future = pin!(future);
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

/// [`wait_for`] for a task or a promise ([`TaskLike`]): the same, except
/// that with a zero timeout one that is already done gives its output
/// (asyncio's `wait_for` of a done task or future). One that is not done
/// is let go of without being polled: an owned [`crate::Task`] is
/// cancelled (before it ever runs, if it has not yet), a `&mut Task` or a
/// promise is left to its owner.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let mut task = ringloop::spawn(async { 5 });
///     ringloop::yield_now().await; // the task runs and finishes
///     let r = ringloop::wait_for_task(&mut task, Some(Duration::ZERO)).await;
///     assert_eq!(r.unwrap().unwrap(), 5);
/// })
/// .unwrap();
/// ```
pub async fn wait_for_task<A: TaskLike>(
    mut task: A,
    timeout: impl Into<Option<Duration>>,
) -> Result<A::Output, TimeoutError> {
    let timeout = timeout.into();
    if timeout.is_some_and(|t| t.is_zero()) {
        if !task.is_done() {
            drop(task);
            return Err(TimeoutError(()));
        }
        // Done: polling gives the output at once, and starts nothing.
        return Ok(poll_fn(|cx| Pin::new(&mut task).poll(cx)).await);
    }
    wait_for(task, timeout).await
}

struct ScopeState {
    deadline: Cell<Option<Instant>>,
    /// Bumped by every `reschedule`, so a running scope re-arms its timer.
    version: Cell<u64>,
    expired: Cell<bool>,
    /// A block ran under the scope and is over (returned, timed out or
    /// was dropped), and no other runs now.
    finished: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl ScopeState {
    /// Whether the deadline has passed; otherwise (re-)arms the timer that
    /// wakes `cx` when it does.
    fn due(
        &self,
        timer: &mut Option<Sleep>,
        armed: &mut Option<u64>,
        cx: &mut Context<'_>,
    ) -> bool {
        let Some(deadline) = self.deadline.get() else {
            *timer = None;
            return false;
        };
        if deadline <= Instant::now() {
            return true;
        }
        if *armed != Some(self.version.get()) {
            *armed = Some(self.version.get());
            *timer = Some(sleep_until(deadline));
        }
        timer
            .as_mut()
            .is_some_and(|t| Pin::new(t).poll(cx).is_ready())
    }
}

/// Marks the scope finished when its block is over, however it ends.
struct Finish<'a>(&'a ScopeState);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finished.set(true);
        self.0.waker.set(None);
    }
}

/// A deadline for a block of work that can be moved while the work runs
/// (asyncio's `asyncio.timeout()` context manager).
///
/// Clones share the deadline, so the work itself can hold one and
/// [`reschedule`](TimeoutScope::reschedule) it.
///
/// The block runs at least up to its first suspension, even when the
/// deadline has already passed; the expiry then arrives before the block
/// resumes. An expiry belongs to the scope whose deadline passed: when
/// scopes are nested and the outer one's deadline has passed too (at the
/// same time, or the loop was held up past both), the outer scope reports
/// [`TimeoutError`] and nothing of its block runs any more, the inner one
/// only being dropped; when only the inner deadline passed, the inner
/// `TimeoutError` is an ordinary value in the outer block.
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
///             inner.reschedule(Some(Instant::now() + Duration::from_millis(50))).unwrap();
///             ringloop::sleep(Duration::from_millis(20)).await;
///             "done"
///         })
///         .await;
///     assert_eq!(r, Ok("done"));
///     assert!(!scope.expired());
///     assert!(scope.reschedule(None).is_err()); // finished: too late to move
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct TimeoutScope {
    state: Rc<ScopeState>,
}

/// A [`TimeoutScope`] whose deadline is `delay` from now (`None`: no
/// deadline yet, as asyncio's `timeout(None)`).
///
/// Takes a [`Duration`] or an `Option<Duration>` alike.
pub fn timeout(delay: impl Into<Option<Duration>>) -> TimeoutScope {
    timeout_at(delay.into().map(crate::time::deadline_after))
}

/// A [`TimeoutScope`] with an absolute deadline (`None`: no deadline yet).
///
/// Takes an [`Instant`] or an `Option<Instant>` alike.
pub fn timeout_at(deadline: impl Into<Option<Instant>>) -> TimeoutScope {
    TimeoutScope {
        state: Rc::new(ScopeState {
            deadline: Cell::new(deadline.into()),
            version: Cell::new(0),
            expired: Cell::new(false),
            finished: Cell::new(false),
            waker: Cell::new(None),
        }),
    }
}

impl TimeoutScope {
    /// The current deadline.
    pub fn when(&self) -> Option<Instant> {
        self.state.deadline.get()
    }

    /// Moves the deadline (`None` removes it; an [`Instant`] or an
    /// `Option<Instant>` alike); takes effect at once, even while
    /// [`TimeoutScope::run`] is waiting. A deadline moved into the past
    /// expires the scope before its block resumes.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] once the scope's block is over (returned,
    /// timed out or dropped), as asyncio refuses to reschedule an exited
    /// timeout. Before the block starts, the deadline may be moved freely.
    pub fn reschedule(
        &self,
        deadline: impl Into<Option<Instant>>,
    ) -> Result<(), InvalidStateError> {
        let deadline = deadline.into();
        let s = &self.state;
        if s.finished.get() {
            return Err(InvalidStateError::new(
                "invalid state: the timeout scope has already finished",
            ));
        }
        s.deadline.set(deadline);
        s.version.set(s.version.get() + 1);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        Ok(())
    }

    /// Whether this scope's deadline ended its block (it reported
    /// [`TimeoutError`]).
    pub fn expired(&self) -> bool {
        self.state.expired.get()
    }

    /// Runs `future` under this deadline: its output, or [`TimeoutError`]
    /// after the future was dropped (its cleanup has run).
    ///
    /// The future is polled before the deadline is checked: an output
    /// ready in the same loop turn as the deadline passes wins.
    pub async fn run<F: Future>(&self, future: F) -> Result<F::Output, TimeoutError> {
        let s = &*self.state;
        s.finished.set(false);
        let _finish = Finish(s);
        let mut future = pin!(future);
        let mut timer: Option<Sleep> = None;
        let mut armed = None;
        poll_fn(|cx| {
            let polled = {
                let _enter = Enter::new(&self.state);
                future.as_mut().poll(cx)
            };
            if let Poll::Ready(v) = polled {
                return Poll::Ready(Ok(v));
            }
            s.waker.set(Some(cx.waker().clone()));
            if !s.due(&mut timer, &mut armed, cx) {
                return Poll::Pending;
            }
            if enclosing_scope_due() {
                // An enclosing scope's deadline has passed too: the expiry
                // is the outermost one's, which drops this scope once this
                // poll returns. Do not turn it into a timeout of our own.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            s.expired.set(true);
            Poll::Ready(Err(TimeoutError(())))
        })
        .await
        // `future` is dropped here, before the caller sees the result.
    }
}

thread_local! {
    /// The scopes whose block is being polled on this thread, outermost
    /// first (nested scopes are polled inside their enclosing scope's poll).
    static POLLING: std::cell::RefCell<Vec<Rc<ScopeState>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks a scope as enclosing whatever its block polls, for that poll.
struct Enter;

impl Enter {
    fn new(state: &Rc<ScopeState>) -> Enter {
        POLLING.with(|p| p.borrow_mut().push(state.clone()));
        Enter
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        POLLING.with(|p| p.borrow_mut().pop());
    }
}

/// Whether a scope enclosing the one checking has reached its deadline.
fn enclosing_scope_due() -> bool {
    let now = Instant::now();
    POLLING.with(|p| {
        p.borrow()
            .iter()
            .any(|s| s.deadline.get().is_some_and(|d| d <= now))
    })
}

impl fmt::Debug for TimeoutScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutScope")
            .field("when", &self.when())
            .field("expired", &self.expired())
            .finish()
    }
}
