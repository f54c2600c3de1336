//! [`Permits`]: the counting core of [`Lock`](super::Lock),
//! [`Semaphore`](super::Semaphore) and
//! [`BoundedSemaphore`](super::BoundedSemaphore).
//!
//! A released permit goes straight to the first waiter (its node is
//! notified) and only to the pool when nobody waits. Hence:
//!
//! - `permits > 0` ⇒ nobody waits, so [`Permits::try_acquire`] never jumps
//!   the queue (FIFO fairness);
//! - a permit is either in the pool, held by a guard, or in transit in a
//!   notified node; a notified node whose future is dropped releases its
//!   permit again, so no permit is ever lost.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

use super::wait_list::WaitList;

#[derive(Debug)]
pub(crate) struct Permits {
    permits: usize,
    waiters: WaitList<()>,
    /// For a bounded semaphore: no release may make `permits` plus the
    /// permits in transit exceed this.
    bound: Option<usize>,
}

impl Permits {
    pub(crate) fn new(permits: usize, bound: Option<usize>) -> Permits {
        Permits {
            permits,
            waiters: WaitList::default(),
            bound,
        }
    }

    /// Permits in the pool.
    pub(crate) fn available(&self) -> usize {
        self.permits
    }

    /// Tasks waiting for a permit.
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.waiting()
    }

    /// Takes a permit from the pool if there is one (then nobody waits).
    pub(crate) fn try_acquire(&mut self) -> bool {
        if self.permits > 0 {
            self.permits -= 1;
            true
        } else {
            false
        }
    }

    /// Whether one more release stays within the bound.
    pub(crate) fn may_release(&self) -> bool {
        match self.bound {
            None => true,
            Some(bound) => self.permits + self.waiters.notified() < bound,
        }
    }

    /// Gives a permit back: to the first waiter (whose waker is returned,
    /// to wake once the borrow is released) or to the pool.
    #[must_use = "the returned waker must be woken"]
    pub(crate) fn release(&mut self) -> Option<Waker> {
        if self.waiters.waiting() == 0 {
            self.permits += 1;
            None
        } else {
            self.waiters.notify_first(())
        }
    }
}

/// Releases one permit of `cell` and wakes whoever got it.
pub(crate) fn release(cell: &RefCell<Permits>) {
    let waker = cell.borrow_mut().release();
    if let Some(w) = waker {
        w.wake();
    }
}

/// Waits for a permit of `cell`, in FIFO order. Dropping the future before
/// it completes leaves the count as it was.
pub(crate) async fn acquire(cell: &RefCell<Permits>) {
    let mut waiter = Acquire { cell, key: None };
    poll_fn(|cx| waiter.poll(cx)).await;
}

/// A task's place in the queue for a permit.
struct Acquire<'a> {
    cell: &'a RefCell<Permits>,
    /// Its node, while it waits or holds a permit in transit.
    key: Option<usize>,
}

impl Acquire<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut p = self.cell.borrow_mut();
        match self.key {
            None if p.try_acquire() => Poll::Ready(()),
            None => {
                self.key = Some(p.waiters.push(cx.waker()));
                Poll::Pending
            }
            Some(key) => match p.waiters.poll_note(key, cx.waker()) {
                Some(()) => {
                    self.key = None;
                    Poll::Ready(())
                }
                None => Poll::Pending,
            },
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let waker = {
            let mut p = self.cell.borrow_mut();
            match p.waiters.remove(key) {
                // It was handed a permit it will never use: pass it on.
                Some(()) => p.release(),
                None => None,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}
