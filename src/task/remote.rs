//! The queue other threads use to hand work to a loop, and the handshake
//! that wakes the loop only when it is parked.
//!
//! A producer pushes under the lock, then sets `pending`; the owner sets
//! `parked` before it blocks and re-checks `pending`. With both sides using
//! `SeqCst` on those two flags, either the owner sees `pending` and does not
//! block, or the producer sees `parked` and must signal the owner (write its
//! eventfd): a wake-up cannot be lost, and a busy loop costs producers no
//! syscall. The loom model in `tests` checks this.

use crate::loom::{AtomicBool, Mutex, Ordering, lock};

pub(crate) struct RemoteQueue<T> {
    items: Mutex<Vec<T>>,
    /// Something was pushed since the owner last drained.
    pending: AtomicBool,
    /// The owner is (about to be) blocked and must be signalled.
    parked: AtomicBool,
    /// The owner is gone or closed: pushes are refused.
    closed: AtomicBool,
}

/// What [`RemoteQueue::push`] asks of the producer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; the owner is running and will drain it.
    Queued,
    /// Queued; the owner is parked: signal it.
    Signal,
}

impl<T> RemoteQueue<T> {
    pub(crate) fn new() -> RemoteQueue<T> {
        RemoteQueue {
            items: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues `item` for the owner, or gives it back if the queue is closed.
    pub(crate) fn push(&self, item: T) -> Result<Pushed, T> {
        let mut items = lock(&self.items);
        // Checked under the lock: `close` sets it under the same lock, so
        // nothing is queued after `close` took the items.
        if self.closed.load(Ordering::Acquire) {
            return Err(item);
        }
        items.push(item);
        drop(items);
        self.pending.store(true, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            Ok(Pushed::Signal)
        } else {
            Ok(Pushed::Queued)
        }
    }

    /// Owner: marks itself parked. False (and not parked) if work is
    /// already pending, in which case the owner must not block.
    pub(crate) fn park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.parked.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Owner: no longer blocked.
    pub(crate) fn unpark(&self) {
        self.parked.store(false, Ordering::Relaxed);
    }

    /// Owner: takes everything queued (nothing, cheaply, if nothing is).
    pub(crate) fn drain(&self) -> Vec<T> {
        // A plain load first: the common case (nothing) costs no RMW.
        if !self.pending.load(Ordering::Relaxed) || !self.pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.items))
    }

    /// Refuses later pushes and returns what was queued.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut items = lock(&self.items);
        self.closed.store(true, Ordering::Release);
        std::mem::take(&mut *items)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
