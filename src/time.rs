//! Sleeping and timers: [`sleep`], [`sleep_until`], [`interval`],
//! [`yield_now`].
//!
//! Deadlines live in the loop's user-space timer wheel; the loop's only
//! kernel timer is its wait in the kernel for the nearest one
//! (`io_uring_enter`, or `epoll_pwait2` on the epoll backend), so
//! resolution is the kernel's hrtimer (microseconds) and cancelling a sleep
//! (dropping it) costs no syscall. On the epoll backend of a kernel without
//! `epoll_pwait2` (before 5.11) the wait is in whole milliseconds, rounded
//! up: a sleep may then overshoot by up to a millisecond, never undershoot.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub use std::time::Instant;

use crate::runtime::timers::TimerKey;
use crate::runtime::{with_current, with_loop};

/// How far ahead a deadline can be: `base + d` saturates here. More than
/// 30,000 years is "never" for any program, and what is left of `Instant`'s
/// range means that adding to such a deadline again does not overflow.
const FOREVER: Duration = Duration::from_secs(1 << 40);

/// `base + d`, saturating: a `d` beyond [`FOREVER`] (`Duration::MAX`
/// included) gives a deadline `FOREVER` away, which never comes. Every
/// deadline ringloop computes from a duration goes through here, so no
/// `Instant + Duration` overflows.
pub(crate) fn saturating_deadline(base: Instant, d: Duration) -> Instant {
    base.checked_add(d.min(FOREVER)).unwrap_or(base)
}

/// `now + d`, saturating (see [`saturating_deadline`]).
pub(crate) fn deadline_after(d: Duration) -> Instant {
    saturating_deadline(Instant::now(), d)
}

/// Waits until `duration` has passed (asyncio's `sleep`).
///
/// `sleep(Duration::ZERO)` yields exactly once: every task that was ready
/// runs before the sleeper resumes. A sleep never completes before its
/// duration has passed; dropping it disarms its timer with no syscall and
/// no later wake-up. A duration beyond 30,000 years
/// (`Duration::MAX` included) sleeps for more than 30,000 years: for ever,
/// without overflow and without the loop waking up for it.
///
/// # Panics
///
/// Polling it outside a running ringloop loop panics.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// ringloop::run(async {
///     let t0 = Instant::now();
///     ringloop::sleep(Duration::from_millis(2)).await;
///     assert!(t0.elapsed() >= Duration::from_millis(2));
/// })
/// .unwrap();
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let mut s = Sleep::new(deadline_after(duration));
    if duration.is_zero() {
        s.state = State::YieldOnce;
    }
    s
}

/// Waits until `deadline`. A deadline already past when the sleep is made
/// yields once, however far in the past (asyncio's `sleep` of a delay of
/// zero or less). A deadline that passes before the first poll fires at the
/// loop's next look at its timers, in deadline order with the other timers
/// due. Any `Instant` is fine, even the farthest one `Instant` can
/// represent: a deadline centuries away simply never comes.
///
/// # Panics
///
/// Polling it outside a running ringloop loop panics.
pub fn sleep_until(deadline: Instant) -> Sleep {
    let mut s = Sleep::new(deadline);
    // Past already: yield once through the ready queue, exactly like
    // `sleep(0)` (a timer would fire only at the loop's next timer check,
    // which may come after several rounds of ready work).
    if deadline <= Instant::now() {
        s.state = State::YieldOnce;
    }
    s
}

/// Yields to the loop once: every task that was ready runs first (the same
/// as `sleep(Duration::ZERO)`, without reading the clock).
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let other = ringloop::spawn(async { "ran" });
///     ringloop::yield_now().await; // `other` runs here
///     assert!(other.is_done());
/// })
/// .unwrap();
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.yielded, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The future of [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    state: State,
}

#[derive(Debug)]
enum State {
    New,
    /// `sleep(0)`: yield once, no timer.
    YieldOnce,
    /// Registered with loop `loop_id`'s timers.
    Armed {
        loop_id: u64,
        key: TimerKey,
    },
    /// The deadline had passed at the first poll: yielded once.
    Yielded,
    Done,
}

impl Sleep {
    fn new(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            state: State::New,
        }
    }

    /// When the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (asyncio's `Timeout.reschedule`); the sleep re-arms
    /// at its next poll. A deadline already past then fires at the loop's
    /// next look at its timers, earliest deadline first.
    pub fn reset(&mut self, deadline: Instant) {
        self.disarm();
        self.deadline = deadline;
        self.state = State::New;
    }

    fn disarm(&mut self) {
        if let State::Armed { loop_id, key } = self.state {
            with_loop(loop_id, |l| l.timers.borrow_mut().remove(key));
            self.state = State::Done;
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        match this.state {
            State::Done => Poll::Ready(()),
            State::Yielded => {
                this.state = State::Done;
                Poll::Ready(())
            }
            State::YieldOnce => {
                this.state = State::Yielded;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            State::New => {
                // No clock read here: `sleep_until` turned a deadline past
                // at creation into a single yield; one that passed since
                // fires at the loop's next timer check.
                let deadline = this.deadline;
                let armed = with_current(|l| {
                    let key = l
                        .timers
                        .borrow_mut()
                        .insert_waker(deadline, cx.waker().clone());
                    State::Armed { loop_id: l.id, key }
                });
                this.state =
                    armed.expect("ringloop::sleep polled outside a running ringloop event loop");
                Poll::Pending
            }
            State::Armed { loop_id, key } => {
                let polled = with_current(|l| {
                    (l.id == loop_id).then(|| l.timers.borrow_mut().poll(key, cx))
                });
                match polled {
                    Some(Some(Poll::Ready(()))) => {
                        this.state = State::Done;
                        Poll::Ready(())
                    }
                    Some(Some(Poll::Pending)) => Poll::Pending,
                    // Polled from another loop than the one it was armed on:
                    // re-arm here.
                    _ => {
                        this.state = State::New;
                        Pin::new(this).poll(cx)
                    }
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// What an [`Interval`] does when a tick is late (the loop was busy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissedTicks {
    /// Fire the missed ticks back to back until caught up (the default).
    #[default]
    Burst,
    /// Restart the period from the late tick.
    Delay,
    /// Skip the missed ticks; keep the original phase.
    Skip,
}

/// Ticks every `period`; the first tick completes at once.
///
/// A period too long to add to an `Instant` (`Duration::MAX`) ticks once,
/// then never again. A zero period ticks once per loop turn: every tick
/// (the first included) yields once, like `sleep(Duration::ZERO)`, so a
/// loop over [`Interval::tick`] never starves the other tasks (tokio's
/// `interval` panics on a zero period instead).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ringloop::run(async {
///     let mut every = ringloop::interval(Duration::from_millis(1));
///     let first = every.tick().await;
///     let second = every.tick().await;
///     assert!(second - first >= Duration::from_millis(1));
/// })
/// .unwrap();
/// ```
pub fn interval(period: Duration) -> Interval {
    Interval {
        period,
        next: Instant::now(),
        missed: MissedTicks::Burst,
    }
}

/// The stream of ticks made by [`interval`].
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    next: Instant,
    missed: MissedTicks,
}

impl Interval {
    /// Sets what happens to late ticks.
    pub fn set_missed_ticks(&mut self, missed: MissedTicks) {
        self.missed = missed;
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits for the next tick and returns when it was due. Cancel-safe:
    /// dropping the future loses no tick.
    pub async fn tick(&mut self) -> Instant {
        if self.period.is_zero() {
            yield_now().await;
        } else if self.next > Instant::now() {
            sleep_until(self.next).await;
        }
        let due = self.next;
        let now = Instant::now();
        let period = self.period;
        self.next = match self.missed {
            _ if period.is_zero() => now,
            MissedTicks::Burst => saturating_deadline(due, period),
            MissedTicks::Delay => saturating_deadline(now, period),
            MissedTicks::Skip => {
                let late = now.saturating_duration_since(due).as_nanos();
                let periods = late / period.as_nanos() + 1;
                let ahead = u32::try_from(periods)
                    .ok()
                    .and_then(|n| period.checked_mul(n))
                    .unwrap_or(Duration::MAX);
                saturating_deadline(due, ahead)
            }
        };
        due
    }
}
