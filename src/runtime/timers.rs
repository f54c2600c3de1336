//! The loop's timers: a binary heap of deadlines in user space.
//!
//! The loop's only kernel timer is the timeout of its `io_uring_enter` wait
//! for the nearest deadline (DESIGN.md decision 6). Removing a timer (a
//! dropped `Sleep`) frees its slot at once, costs no syscall, and leaves a
//! stale heap entry that is skipped when it surfaces; when stale entries
//! outnumber live ones the heap is rebuilt, so memory stays proportional to
//! live timers (amortised O(1) per removal).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use slab::Slab;

use crate::task::sched::Callback;

/// Identifies a timer: slab index and the sequence number it was armed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    index: u32,
    seq: u64,
}

enum Kind {
    /// A sleeping future, and its waker once polled.
    Waker(Option<Waker>),
    /// The deadline passed; the sleeper has not looked yet.
    Fired,
    /// A `call_later` / `call_at` callback.
    Callback(Rc<Callback>),
}

struct Slot {
    seq: u64,
    kind: Kind,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    deadline: Instant,
    /// Ties broken by arming order (asyncio: equal deadlines run in the
    /// order they were scheduled).
    seq: u64,
    index: u32,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    slots: Slab<Slot>,
    next_seq: u64,
    stale: usize,
}

impl Timers {
    fn insert(&mut self, deadline: Instant, kind: Kind) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = self.slots.insert(Slot { seq, kind });
        let index = u32::try_from(index).expect("more than 4 billion timers");
        self.heap.push(Reverse(Entry {
            deadline,
            seq,
            index,
        }));
        TimerKey { index, seq }
    }

    /// Arms a timer for a sleeping future.
    pub(crate) fn insert_waker(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        self.insert(deadline, Kind::Waker(Some(waker)))
    }

    /// Arms a timer that queues `cb` at `deadline`.
    pub(crate) fn insert_callback(&mut self, deadline: Instant, cb: Rc<Callback>) {
        self.insert(deadline, Kind::Callback(cb));
    }

    fn slot_mut(&mut self, key: TimerKey) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|s| s.seq == key.seq)
    }

    /// Ready (and freed) once the timer fired; otherwise records the waker.
    pub(crate) fn poll(&mut self, key: TimerKey, cx: &mut Context<'_>) -> Poll<()> {
        let Some(slot) = self.slot_mut(key) else {
            // Not ours (the loop was closed and its timers cleared): ready,
            // rather than sleeping forever.
            return Poll::Ready(());
        };
        match &mut slot.kind {
            Kind::Fired => {
                self.slots.remove(key.index as usize);
                Poll::Ready(())
            }
            Kind::Waker(w) => {
                match w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Kind::Callback(_) => unreachable!("a sleep key never names a callback"),
        }
    }

    /// Disarms a sleep's timer (its future was dropped).
    pub(crate) fn remove(&mut self, key: TimerKey) {
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        let fired = matches!(slot.kind, Kind::Fired);
        self.slots.remove(key.index as usize);
        if !fired {
            // Its heap entry is still there.
            self.stale += 1;
            if self.stale > 64 && self.stale > self.heap.len() / 2 {
                self.compact();
            }
        }
    }

    fn compact(&mut self) {
        let slots = &self.slots;
        self.heap
            .retain(|Reverse(e)| slots.get(e.index as usize).is_some_and(|s| s.seq == e.seq));
        self.stale = 0;
    }

    /// The nearest deadline of a live timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse(e)) = self.heap.peek() {
            let live = self.slots.get(e.index as usize).is_some_and(|s| {
                s.seq == e.seq
                    && match &s.kind {
                        Kind::Callback(cb) => !cb.is_cancelled(),
                        _ => true,
                    }
            });
            if live {
                return Some(e.deadline);
            }
            self.pop_stale();
        }
        None
    }

    fn pop_stale(&mut self) {
        if let Some(Reverse(e)) = self.heap.pop() {
            let ours = self
                .slots
                .get(e.index as usize)
                .is_some_and(|s| s.seq == e.seq);
            if ours {
                // A cancelled callback: free its slot too.
                self.slots.remove(e.index as usize);
            } else {
                self.stale = self.stale.saturating_sub(1);
            }
        }
    }

    /// Fires every timer due at `now`: wakers into `wakers`, callbacks (in
    /// deadline, then arming, order) into `callbacks`.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        wakers: &mut Vec<Waker>,
        callbacks: &mut Vec<Rc<Callback>>,
    ) {
        while let Some(Reverse(e)) = self.heap.peek() {
            if e.deadline > now {
                break;
            }
            let Some(Reverse(e)) = self.heap.pop() else {
                break;
            };
            let index = e.index as usize;
            let Some(slot) = self.slots.get_mut(index).filter(|s| s.seq == e.seq) else {
                self.stale = self.stale.saturating_sub(1);
                continue;
            };
            match std::mem::replace(&mut slot.kind, Kind::Fired) {
                Kind::Waker(w) => wakers.extend(w),
                Kind::Callback(cb) => {
                    self.slots.remove(index);
                    callbacks.push(cb);
                }
                Kind::Fired => {}
            }
        }
    }

    /// Whether no timer is armed.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Number of armed timers (live slots).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Removes every timer (the loop is closing) and returns them, to be
    /// dropped by the caller outside its borrow (callbacks may own sleeps).
    /// Sequence numbers keep counting, so old keys never match new slots.
    pub(crate) fn take_all(&mut self) -> impl Sized + use<> {
        self.stale = 0;
        (
            std::mem::take(&mut self.heap),
            std::mem::take(&mut self.slots),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn removal_compacts_stale_entries() {
        let mut t = Timers::default();
        let base = Instant::now() + Duration::from_secs(60);
        let keys: Vec<_> = (0..1000)
            .map(|i| t.insert_waker(base + Duration::from_millis(i), Waker::noop().clone()))
            .collect();
        for k in &keys[..900] {
            t.remove(*k);
        }
        assert_eq!(t.len(), 100);
        assert!(t.heap.len() < 1000, "heap was never compacted");
        assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(900)));
    }

    #[test]
    fn equal_deadlines_fire_in_arming_order() {
        let mut t = Timers::default();
        let at = Instant::now();
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        for i in 0..5 {
            let order = order.clone();
            t.insert_callback(
                at,
                Callback::new(Box::new(move || order.borrow_mut().push(i))),
            );
        }
        let (mut w, mut cbs) = (Vec::new(), Vec::new());
        t.expire(at, &mut w, &mut cbs);
        assert_eq!(cbs.len(), 5);
        for cb in cbs {
            cb.run_for_test();
        }
        assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
    }
}
