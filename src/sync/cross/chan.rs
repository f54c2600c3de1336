//! [`Chan`]: the state both halves of a cross-thread channel share, behind
//! one lock.
//!
//! Invariants (all under the lock):
//!
//! - `queue.len() + reserved <= capacity`: `reserved` counts the slots
//!   granted to waiting senders that have not filled them yet;
//! - a sender may take a free slot at once only if no sender waits
//!   (`senders_waiting.waiting() == 0`), so waiting senders are served in
//!   FIFO order and a newcomer never takes a slot one of them is owed;
//! - a slot is granted ([`Grant::Slot`]) only while the channel is open;
//!   closing turns every grant, given or not, into [`Grant::Closed`] and
//!   `reserved` falls back to 0;
//! - a sender inserts its value only in the poll that returns `Ok`, and a
//!   receiver takes a value only in the poll that returns it, so a dropped
//!   future never sends or loses one. A dropped sender that had been
//!   granted a slot passes it to the next waiting sender.
//!
//! Wakers are taken under the lock and woken after it is released; values
//! dropped by the channel (the receiver's drop) are dropped outside it too.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use super::error::{SendError, TryRecvError, TrySendError};
use crate::loom::{Mutex, MutexGuard, lock};
use crate::sync::wait_list::{WaitList, wake_all};

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// What a waiting sender is told when it is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// A slot is reserved for it (counted in `reserved`).
    Slot,
    /// The channel closed: it must give its value back.
    Closed,
}

pub(super) struct Chan<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

struct State<T> {
    queue: VecDeque<T>,
    /// Slots granted to notified senders not yet filled.
    reserved: usize,
    senders_waiting: WaitList<Grant>,
    /// The receiver, if it waits in `recv`.
    rx_waker: Option<Waker>,
    /// The receiver closed or dropped: sends fail.
    closed: bool,
    /// Live `Sender`s.
    senders: usize,
}

impl<T> State<T> {
    fn has_room(&self, capacity: usize) -> bool {
        self.queue.len() + self.reserved < capacity
    }

    /// Grants free slots to waiting senders; returns the one to wake (a
    /// slot is freed one at a time, so at most one is owed).
    fn grant_slot(&mut self, capacity: usize) -> Option<Waker> {
        if self.closed || !self.has_room(capacity) || self.senders_waiting.waiting() == 0 {
            return None;
        }
        self.reserved += 1;
        self.senders_waiting.notify_first(Grant::Slot)
    }

    /// Inserts `value` (the caller owns a slot) and takes the receiver's
    /// waker.
    fn insert(&mut self, value: T) -> Option<Waker> {
        self.queue.push_back(value);
        self.rx_waker.take()
    }

    /// Whether no value will ever come again once the queue is empty.
    fn ended(&self) -> bool {
        self.closed || self.senders == 0
    }
}

impl<T> Chan<T> {
    pub(super) fn new(capacity: usize) -> Chan<T> {
        Chan {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                reserved: 0,
                senders_waiting: WaitList::default(),
                rx_waker: None,
                closed: false,
                senders: 1,
            }),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(super) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// The receiver closed or dropped.
    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The receiver closed, or every sender is gone.
    pub(super) fn is_ended(&self) -> bool {
        self.lock().ended()
    }

    pub(super) fn add_sender(&self) {
        self.lock().senders += 1;
    }

    pub(super) fn drop_sender(&self) {
        let mut st = self.lock();
        st.senders -= 1;
        let waker = if st.senders == 0 {
            st.rx_waker.take()
        } else {
            None
        };
        drop(st);
        wake(waker);
    }

    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = self.lock();
        if st.closed {
            return Err(TrySendError::Closed(value));
        }
        if st.senders_waiting.waiting() > 0 || !st.has_room(self.capacity) {
            return Err(TrySendError::Full(value));
        }
        let waker = st.insert(value);
        drop(st);
        wake(waker);
        Ok(())
    }

    pub(super) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut st = self.lock();
        if let Some(value) = st.queue.pop_front() {
            let waker = st.grant_slot(self.capacity);
            drop(st);
            wake(waker);
            return Poll::Ready(Some(value));
        }
        if st.ended() {
            return Poll::Ready(None);
        }
        match &st.rx_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.rx_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    pub(super) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.lock();
        match st.queue.pop_front() {
            Some(value) => {
                let waker = st.grant_slot(self.capacity);
                drop(st);
                wake(waker);
                Ok(value)
            }
            None if st.ended() => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Closes the channel for sending: waiting senders fail at once, and so
    /// do senders granted a slot they have not filled yet.
    pub(super) fn close(&self) {
        let mut wakers = Vec::new();
        let mut st = self.lock();
        if !st.closed {
            st.closed = true;
            st.senders_waiting.renote_notified(|| Grant::Closed);
            st.reserved = 0;
            st.senders_waiting.notify_all(|| Grant::Closed, &mut wakers);
        }
        drop(st);
        wake_all(wakers);
    }

    /// The receiver's drop: closes the channel and takes the values still
    /// queued, for the caller to drop outside the lock.
    pub(super) fn close_and_take(&self) -> VecDeque<T> {
        self.close();
        let mut st = self.lock();
        st.rx_waker = None;
        std::mem::take(&mut st.queue)
    }
}

/// A sender waiting for a slot: [`Chan::poll_send`]'s state, whose `Drop`
/// gives back a slot granted but not used.
pub(super) struct SendFut<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    /// Our node in `senders_waiting`, while we have one.
    key: Option<usize>,
}

impl<'a, T> SendFut<'a, T> {
    pub(super) fn new(chan: &'a Chan<T>, value: T) -> SendFut<'a, T> {
        SendFut {
            chan,
            value: Some(value),
            key: None,
        }
    }

    pub(super) fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        let mut st = self.chan.lock();
        let accepted = match self.key {
            None if st.closed => false,
            None if st.senders_waiting.waiting() == 0 && st.has_room(self.chan.capacity) => true,
            None => {
                self.key = Some(st.senders_waiting.push(cx.waker()));
                return Poll::Pending;
            }
            Some(key) => match st.senders_waiting.poll_note(key, cx.waker()) {
                None => return Poll::Pending,
                Some(Grant::Closed) => {
                    self.key = None;
                    false
                }
                Some(Grant::Slot) => {
                    self.key = None;
                    st.reserved -= 1;
                    true
                }
            },
        };
        // `send` awaits this future to completion exactly once.
        let value = self
            .value
            .take()
            .expect("cross send polled after completion");
        if !accepted {
            drop(st);
            return Poll::Ready(Err(SendError(value)));
        }
        let waker = st.insert(value);
        drop(st);
        wake(waker);
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for SendFut<'_, T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut st = self.chan.lock();
        let waker = match st.senders_waiting.remove(key) {
            Some(Grant::Slot) => {
                // Pass the slot we were granted to the next waiting sender.
                st.reserved -= 1;
                st.grant_slot(self.chan.capacity)
            }
            Some(Grant::Closed) | None => None,
        };
        drop(st);
        wake(waker);
        // `self.value`, if any, is dropped after this, outside the lock.
    }
}
