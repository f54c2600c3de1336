//! The state behind every queue handle, and the `get`, `put` and `join`
//! waiters.
//!
//! Items are *reserved*, never handed over: when an item arrives and tasks
//! wait in `get`, the first one is notified with [`Note::Reserved`] and
//! `promised_items` grows by one, but the item stays in the buffer. The
//! task takes an item (whichever is first in the queue's order by then)
//! only in the poll that returns it. Free slots are reserved for waiting
//! `put`s the same way (`promised_slots`), and the item enters the buffer
//! only in the poll that returns `Ok`. In FIFO order the reserved items are
//! the oldest `promised_items` ones (getters are woken in order as items
//! arrive) and a get without a reservation takes the first item after them,
//! so gets receive items in the order they asked. Hence, by construction:
//!
//! - a dropped `get` never loses an item: it holds at most a reservation,
//!   which its `Drop` gives back to the next waiting `get`;
//! - a dropped `put` never inserts its item, and gives its reserved slot
//!   to the next waiting `put`.
//!
//! Invariants (between calls):
//!
//! - `promised_items` = getters notified `Reserved` ≤ `items.len()`;
//! - tasks wait in `get` ⇒ `items.len() == promised_items` (every item is
//!   promised), so `get_nowait` and a new `get` never overtake them;
//! - tasks wait in `put` ⇒ `items.len() + promised_slots == maxsize`;
//! - after `shutdown`, nobody waits in `put` nor in `get`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use super::order::Order;
use crate::sync::error::{QueueShutDown, TaskDoneError};
use crate::sync::wait_list::WaitList;

/// What a waiting `get` or `put` is notified with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Note {
    /// An item (for a getter) or a slot (for a putter) is reserved for it.
    Reserved,
    /// The queue was shut down.
    ShutDown,
}

pub(crate) struct Core<T> {
    pub(crate) items: VecDeque<T>,
    pub(crate) order: Order<T>,
    /// 0: unbounded.
    pub(crate) maxsize: usize,
    pub(crate) getters: WaitList<Note>,
    pub(crate) putters: WaitList<Note>,
    pub(crate) promised_items: usize,
    pub(crate) promised_slots: usize,
    /// Items put and not yet marked done by `task_done`.
    pub(crate) unfinished: usize,
    pub(crate) joiners: WaitList<()>,
    pub(crate) shut_down: bool,
}

impl<T> Core<T> {
    pub(crate) fn new(maxsize: usize, order: Order<T>) -> Core<T> {
        Core {
            items: VecDeque::new(),
            order,
            maxsize,
            getters: WaitList::default(),
            putters: WaitList::default(),
            promised_items: 0,
            promised_slots: 0,
            unfinished: 0,
            joiners: WaitList::default(),
            shut_down: false,
        }
    }

    /// Whether an item is free to take (not promised to a woken getter).
    pub(crate) fn has_item(&self) -> bool {
        self.items.len() > self.promised_items
    }

    /// Whether a slot is free (not promised to a woken putter).
    pub(crate) fn has_room(&self) -> bool {
        self.maxsize == 0 || self.items.len() + self.promised_slots < self.maxsize
    }

    /// Takes the next item (there must be one): the first reserved one if
    /// `reserved` (the caller's reservation is already given back), else the
    /// first free one; returns the waker of the putter the freed slot went
    /// to.
    pub(crate) fn take(&mut self, reserved: bool) -> (T, Option<Waker>) {
        let skip = if reserved { 0 } else { self.promised_items };
        let item = self
            .order
            .pop(&mut self.items, skip)
            .expect("an item to take");
        (item, self.wake_putter())
    }

    /// Inserts `item`; returns the waker of the getter it was promised to.
    pub(crate) fn insert(&mut self, item: T) -> Option<Waker> {
        self.order.push(&mut self.items, item);
        self.unfinished += 1;
        self.wake_getter()
    }

    /// Promises a free item to the first waiting getter, if both exist.
    pub(crate) fn wake_getter(&mut self) -> Option<Waker> {
        if self.has_item() && self.getters.waiting() > 0 {
            self.promised_items += 1;
            self.getters.notify_first(Note::Reserved)
        } else {
            None
        }
    }

    /// Promises a free slot to the first waiting putter, if both exist.
    pub(crate) fn wake_putter(&mut self) -> Option<Waker> {
        if self.has_room() && self.putters.waiting() > 0 {
            self.promised_slots += 1;
            self.putters.notify_first(Note::Reserved)
        } else {
            None
        }
    }

    /// Marks one item done; returns the joiners to wake.
    pub(crate) fn task_done(&mut self, wakers: &mut Vec<Waker>) -> Result<(), TaskDoneError> {
        if self.unfinished == 0 {
            return Err(TaskDoneError(()));
        }
        self.unfinished -= 1;
        if self.unfinished == 0 {
            self.joiners.notify_all(|| (), wakers);
        }
        Ok(())
    }

    /// Shuts the queue down; returns the items dropped (to drop once the
    /// borrow is released) and fills `wakers`.
    pub(crate) fn shutdown(&mut self, immediate: bool, wakers: &mut Vec<Waker>) -> VecDeque<T> {
        self.shut_down = true;
        let mut dropped = VecDeque::new();
        if immediate {
            dropped = std::mem::take(&mut self.items);
            self.unfinished = self.unfinished.saturating_sub(dropped.len());
            if self.unfinished == 0 {
                self.joiners.notify_all(|| (), wakers);
            }
            // The items promised to woken getters are gone too.
            self.getters.renote_notified(|| Note::ShutDown);
            self.promised_items = 0;
        }
        self.getters.notify_all(|| Note::ShutDown, wakers);
        // No put succeeds after a shutdown, reserved slot or not.
        self.putters.renote_notified(|| Note::ShutDown);
        self.promised_slots = 0;
        self.putters.notify_all(|| Note::ShutDown, wakers);
        dropped
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// A task's place among the getters.
pub(crate) struct Get<'a, T> {
    pub(crate) core: &'a RefCell<Core<T>>,
    pub(crate) key: Option<usize>,
}

impl<T> Get<'_, T> {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, QueueShutDown>> {
        let mut core = self.core.borrow_mut();
        let (item, waker) = match self.key {
            None if core.has_item() => core.take(false),
            None if core.shut_down => return Poll::Ready(Err(QueueShutDown(()))),
            None => {
                self.key = Some(core.getters.push(cx.waker()));
                return Poll::Pending;
            }
            Some(key) => match core.getters.poll_note(key, cx.waker()) {
                None => return Poll::Pending,
                Some(Note::ShutDown) => {
                    self.key = None;
                    return Poll::Ready(Err(QueueShutDown(())));
                }
                Some(Note::Reserved) => {
                    self.key = None;
                    core.promised_items -= 1;
                    core.take(true)
                }
            },
        };
        drop(core);
        wake(waker);
        Poll::Ready(Ok(item))
    }
}

impl<T> Drop for Get<'_, T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let waker = {
            let mut core = self.core.borrow_mut();
            match core.getters.remove(key) {
                Some(Note::Reserved) => {
                    // Give the reserved item to the next getter.
                    core.promised_items -= 1;
                    core.wake_getter()
                }
                Some(Note::ShutDown) | None => None,
            }
        };
        wake(waker);
    }
}

/// A task's place among the putters; holds the item until it goes in.
pub(crate) struct Put<'a, T> {
    pub(crate) core: &'a RefCell<Core<T>>,
    pub(crate) key: Option<usize>,
    pub(crate) item: Option<T>,
}

impl<T> Put<'_, T> {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), QueueShutDown<T>>> {
        let mut core = self.core.borrow_mut();
        let accepted = match self.key {
            None if core.shut_down => false,
            None if core.has_room() => true,
            None => {
                self.key = Some(core.putters.push(cx.waker()));
                return Poll::Pending;
            }
            Some(key) => match core.putters.poll_note(key, cx.waker()) {
                None => return Poll::Pending,
                Some(Note::ShutDown) => {
                    self.key = None;
                    false
                }
                Some(Note::Reserved) => {
                    self.key = None;
                    core.promised_slots -= 1;
                    true
                }
            },
        };
        let item = self.item.take().expect("Put polled after completion");
        if !accepted {
            return Poll::Ready(Err(QueueShutDown(item)));
        }
        let waker = core.insert(item);
        drop(core);
        wake(waker);
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for Put<'_, T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let waker = {
            let mut core = self.core.borrow_mut();
            match core.putters.remove(key) {
                Some(Note::Reserved) => {
                    // Give the reserved slot to the next putter.
                    core.promised_slots -= 1;
                    core.wake_putter()
                }
                Some(Note::ShutDown) | None => None,
            }
        };
        wake(waker);
        // `self.item`, if any, is dropped after this, outside every borrow.
    }
}

/// A task waiting in `join`.
pub(crate) struct Join<'a, T> {
    pub(crate) core: &'a RefCell<Core<T>>,
    pub(crate) key: Option<usize>,
}

impl<T> Join<'_, T> {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut core = self.core.borrow_mut();
        match self.key {
            None if core.unfinished == 0 => Poll::Ready(()),
            None => {
                self.key = Some(core.joiners.push(cx.waker()));
                Poll::Pending
            }
            Some(key) => match core.joiners.poll_note(key, cx.waker()) {
                Some(()) => {
                    self.key = None;
                    Poll::Ready(())
                }
                None => Poll::Pending,
            },
        }
    }
}

impl<T> Drop for Join<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // Every joiner is woken at once: nothing to pass on.
            self.core.borrow_mut().joiners.remove(key);
        }
    }
}
