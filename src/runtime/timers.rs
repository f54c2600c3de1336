//! The loop's timers: a hierarchical timing wheel in user space, with
//! microsecond resolution.
//!
//! The loop's only kernel timer is the timeout of its wait in the kernel
//! (`io_uring_enter`, or `epoll_wait` on the epoll backend) for the nearest
//! deadline, so arming or cancelling a timer costs no syscall. Deadlines
//! are counted in
//! whole microseconds on the wheel's own clock, rounded *up* so a timer
//! never fires early. That clock reads [`ORIGIN_US`] (2^63) at the wheel's
//! origin (the loop's creation), so it runs about 292,000 years either way:
//! a deadline from before the loop existed keeps its place instead of
//! rounding to the origin, and timers already past fire earliest deadline
//! first like any others. Deadlines beyond that range saturate (in the
//! past: they all count as that far back; in the future: they never come).
//!
//! # The wheel
//!
//! Six levels of 64 slots: level `L` slot `s` holds timers whose deadline
//! shares every bit above `6(L+1)` with `elapsed` (the wheel's time) and has
//! `s` in bits `6L..6L+6`. Level 0 is exact to the microsecond; a higher
//! slot is "cascaded" (its timers re-inserted lower) when time reaches its
//! start. Inserting is O(1); expiring is O(1) per timer plus at most one
//! cascade per level. Deadlines more than ~19 hours away wait in an overflow
//! heap until they fit. A `BinaryHeap` of all timers was measured first:
//! with 1,000,000 sleeps its `pop` took half the loop's time (see
//! docs/design/timers.md).
//!
//! Removing a timer (a dropped `Sleep`) frees its slab slot at once, costs no
//! syscall, and leaves a stale wheel entry that is skipped when its slot is
//! reached; when stale entries outnumber live timers, every slot is
//! compacted, so memory stays proportional to live timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::task::sched::Callback;

const BITS: u32 = 6;
const SLOTS: usize = 1 << BITS;
const LEVELS: usize = 6;
const MASK: u64 = SLOTS as u64 - 1;
/// The wheel's clock at its origin, in µs: half its range lies before.
const ORIGIN_US: u64 = 1 << 63;
/// An emptied slot keeps its vector for reuse up to this capacity (in
/// entries); a bigger one, grown by a burst, is freed, so the wheel's
/// memory follows the timers armed now, not the largest burst it has seen.
const REUSED_CAPACITY: usize = 64;

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
    /// On the wheel's clock (µs, `ORIGIN_US` at the origin).
    deadline: u64,
    kind: Kind,
}

/// A wheel (or overflow) entry: which slab slot, armed when.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    seq: u64,
    index: u32,
}

/// A timer that fired: a sleeper to wake or a callback to queue.
pub(crate) enum Fired {
    Waker(Waker),
    Callback(Rc<Callback>),
}

pub(crate) struct Timers {
    /// Where the wheel's clock reads `ORIGIN_US`.
    origin: Instant,
    /// The wheel's time: every timer with a deadline before this (µs on
    /// the wheel's clock) has fired.
    elapsed: u64,
    wheel: Box<[[Vec<Entry>; SLOTS]; LEVELS]>,
    /// Bit `s` of `occupied[L]`: level `L` slot `s` is non-empty.
    occupied: [u64; LEVELS],
    /// Deadlines too far away for the wheel, by (deadline, entry).
    overflow: BinaryHeap<Reverse<(u64, Entry)>>,
    /// Timers due already when armed; fired by the next `expire`.
    due: Vec<Entry>,
    slots: Slab<Slot>,
    next_seq: u64,
    /// Wheel entries whose timer was removed.
    stale: usize,
}

impl Default for Timers {
    fn default() -> Self {
        Timers::new(Instant::now())
    }
}

/// Frees the excess capacity of a slot's vector once it holds far fewer
/// entries than it has room for (cancelled timers' stale entries may have
/// grown it): at most twice its length, or `REUSED_CAPACITY`, is kept.
fn shrink(entries: &mut Vec<Entry>) {
    if entries.capacity() > REUSED_CAPACITY && entries.len() * 4 < entries.capacity() {
        entries.shrink_to((entries.len() * 2).max(REUSED_CAPACITY));
    }
}

/// `d` in whole µs, rounded up if `ceil`, saturating at `u64::MAX`.
fn micros(d: Duration, ceil: bool) -> u64 {
    let us = d.as_micros() + u128::from(ceil && d.subsec_nanos() % 1000 != 0);
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// The level a deadline `when` belongs to, seen from `elapsed`.
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = (elapsed ^ when) | MASK;
    let significant = 63 - masked.leading_zeros();
    (significant / BITS) as usize
}

impl Timers {
    pub(crate) fn new(origin: Instant) -> Timers {
        Timers {
            origin,
            elapsed: ORIGIN_US,
            wheel: Box::new(std::array::from_fn(|_| std::array::from_fn(|_| Vec::new()))),
            occupied: [0; LEVELS],
            overflow: BinaryHeap::new(),
            due: Vec::new(),
            slots: Slab::new(),
            next_seq: 0,
            stale: 0,
        }
    }

    /// `t` on the wheel's clock, rounded up (a deadline never fires early),
    /// saturating at both ends.
    fn micros_ceil(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.origin) {
            Some(ahead) => ORIGIN_US.saturating_add(micros(ahead, true)),
            None => ORIGIN_US.saturating_sub(micros(self.origin.duration_since(t), false)),
        }
    }

    /// `t` on the wheel's clock, rounded down, saturating at both ends.
    fn micros_floor(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.origin) {
            Some(ahead) => ORIGIN_US.saturating_add(micros(ahead, false)),
            None => ORIGIN_US.saturating_sub(micros(self.origin.duration_since(t), true)),
        }
    }

    /// The instant the wheel's clock reads `us` (saturating).
    fn instant(&self, us: u64) -> Instant {
        if us >= ORIGIN_US {
            crate::time::saturating_deadline(self.origin, Duration::from_micros(us - ORIGIN_US))
        } else {
            let back = Duration::from_micros(ORIGIN_US - us);
            self.origin.checked_sub(back).unwrap_or(self.origin)
        }
    }

    fn insert(&mut self, deadline: Instant, kind: Kind) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let deadline = self.micros_ceil(deadline);
        let index = self.slots.insert(Slot {
            seq,
            deadline,
            kind,
        });
        let index = u32::try_from(index).expect("more than 4 billion timers");
        self.place(Entry { seq, index }, deadline);
        TimerKey { index, seq }
    }

    /// Puts an entry where its deadline belongs, seen from `elapsed`.
    fn place(&mut self, e: Entry, deadline: u64) {
        if deadline <= self.elapsed {
            self.due.push(e);
            return;
        }
        let level = level_for(self.elapsed, deadline);
        if level >= LEVELS {
            self.overflow.push(Reverse((deadline, e)));
            return;
        }
        let slot = ((deadline >> (BITS * level as u32)) & MASK) as usize;
        self.wheel[level][slot].push(e);
        self.occupied[level] |= 1 << slot;
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
            // Its wheel entry is still there.
            self.stale += 1;
            if self.stale > 1024 && self.stale > self.slots.len() {
                self.compact();
            }
        }
    }

    fn is_live(&self, e: &Entry) -> bool {
        self.slots
            .get(e.index as usize)
            .is_some_and(|s| s.seq == e.seq && !matches!(s.kind, Kind::Fired))
    }

    fn compact(&mut self) {
        let slots = &self.slots;
        let live = |e: &Entry| {
            slots
                .get(e.index as usize)
                .is_some_and(|s| s.seq == e.seq && !matches!(s.kind, Kind::Fired))
        };
        for (level, wheel) in self.wheel.iter_mut().enumerate() {
            for (slot, entries) in wheel.iter_mut().enumerate() {
                entries.retain(live);
                shrink(entries);
                if entries.is_empty() {
                    self.occupied[level] &= !(1 << slot);
                }
            }
        }
        self.due.retain(live);
        self.overflow.retain(|Reverse((_, e))| live(e));
        self.stale = 0;
    }

    /// The next non-empty wheel slot: (level, slot, start in µs).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = BITS * level as u32;
            let pos = (self.elapsed >> shift) & MASK;
            // Every entry at this level lies in the current rotation, at or
            // after `pos`: the lowest set bit at or above it is the next.
            let ahead = occupied & (u64::MAX << pos);
            debug_assert!(ahead != 0, "level {level} holds slots behind its position");
            let slot = u64::from(ahead.trailing_zeros());
            let rotation = self.elapsed & !((1u64 << (shift + BITS)) - 1);
            return Some((level, slot as usize, rotation + (slot << shift)));
        }
        None
    }

    /// When the loop must next look at its timers: the nearest deadline, or
    /// earlier (the start of a slot to cascade). Never later than a
    /// deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        if !self.due.is_empty() {
            // Removed timers stay in `due` until the next expiry pass: only
            // a live one is a reason to wake now (else a loop with nothing
            // but a removed, already-due timer would never sleep).
            let mut due = std::mem::take(&mut self.due);
            due.retain(|e| self.is_live(e));
            self.due = due;
            if !self.due.is_empty() {
                return Some(self.instant(self.elapsed));
            }
        }
        let wheel = loop {
            let Some((level, slot, start)) = self.next_slot() else {
                break None;
            };
            let entries = &self.wheel[level][slot];
            // A slot of cancelled timers only: drop it rather than wake up.
            // A small higher-level slot: wake at its earliest live deadline,
            // not at the slot's start (no early wake-up just to cascade).
            let earliest = if level == 0 || entries.len() > 64 {
                entries.iter().any(|e| self.is_live(e)).then_some(start)
            } else {
                entries
                    .iter()
                    .filter(|e| self.is_live(e))
                    .map(|e| self.slots[e.index as usize].deadline)
                    .min()
            };
            match earliest {
                Some(at) => break Some(at),
                None => {
                    let n = self.wheel[level][slot].len();
                    self.wheel[level][slot].clear();
                    shrink(&mut self.wheel[level][slot]);
                    self.occupied[level] &= !(1 << slot);
                    self.stale = self.stale.saturating_sub(n);
                }
            }
        };
        let overflow = self.overflow.peek().map(|Reverse((d, _))| *d);
        let next = match (wheel, overflow) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(self.instant(next))
    }

    /// Fires every timer due at `now`: wakers into `wakers`, callbacks (in
    /// deadline, then arming, order) into `callbacks`.
    // For the unit tests and the fuzz hooks; the loop uses `expire_ordered`.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        wakers: &mut Vec<Waker>,
        callbacks: &mut Vec<Rc<Callback>>,
    ) {
        let mut fired = Vec::new();
        self.expire_ordered(now, &mut fired);
        for f in fired {
            match f {
                Fired::Waker(w) => wakers.push(w),
                Fired::Callback(cb) => callbacks.push(cb),
            }
        }
    }

    /// Fires every timer due at `now` into `fired`, sleepers and callbacks
    /// together in deadline order (equal deadlines: arming order), so the
    /// loop can make them ready in that order (asyncio pops its timer heap
    /// into the ready queue).
    pub(crate) fn expire_ordered(&mut self, now: Instant, fired: &mut Vec<Fired>) {
        let now = self.micros_floor(now);
        loop {
            self.refill_from_overflow();
            self.fire_due(fired);
            let Some((level, slot, start)) = self.next_slot() else {
                break;
            };
            if start > now {
                break;
            }
            let mut entries = std::mem::take(&mut self.wheel[level][slot]);
            self.occupied[level] &= !(1 << slot);
            self.elapsed = self.elapsed.max(start);
            if level == 0 {
                self.fire(&mut entries, fired);
            } else {
                // Cascade: every entry lands on a lower level (or is due).
                for e in entries.drain(..) {
                    match self.slots.get(e.index as usize) {
                        Some(s) if s.seq == e.seq => {
                            let deadline = s.deadline;
                            self.place(e, deadline);
                        }
                        _ => self.stale = self.stale.saturating_sub(1),
                    }
                }
            }
            // Give the emptied vector back: its capacity is reused (up to
            // `REUSED_CAPACITY`).
            if self.wheel[level][slot].is_empty() && entries.capacity() <= REUSED_CAPACITY {
                self.wheel[level][slot] = entries;
            }
        }
        self.elapsed = self.elapsed.max(now);
        self.refill_from_overflow();
        self.fire_due(fired);
    }

    /// Fires the timers that were already due when placed.
    fn fire_due(&mut self, fired: &mut Vec<Fired>) {
        if self.due.is_empty() {
            return;
        }
        let mut due = std::mem::take(&mut self.due);
        self.fire(&mut due, fired);
        if self.due.is_empty() {
            self.due = due;
        }
    }

    /// Moves overflow timers that now fit into the wheel.
    fn refill_from_overflow(&mut self) {
        while let Some(Reverse((deadline, _))) = self.overflow.peek() {
            let deadline = *deadline;
            if deadline > self.elapsed && level_for(self.elapsed, deadline) >= LEVELS {
                break;
            }
            let Some(Reverse((deadline, e))) = self.overflow.pop() else {
                break;
            };
            self.place(e, deadline);
        }
    }

    /// Fires `entries` (skipping stale ones), in arming order.
    fn fire(&mut self, entries: &mut Vec<Entry>, fired: &mut Vec<Fired>) {
        // Deadline order, and equal deadlines in the order they were armed
        // (asyncio). Entries of one level-0 slot share a deadline, but the
        // `due` list (timers already past when placed, e.g. overflow timers
        // reached by one big jump) mixes deadlines: found by the `timers`
        // fuzz target. Stale entries (cancelled timers) sort last.
        let slots = &self.slots;
        entries.sort_unstable_by_key(|e| {
            let deadline = slots
                .get(e.index as usize)
                .filter(|s| s.seq == e.seq)
                .map_or(u64::MAX, |s| s.deadline);
            (deadline, e.seq)
        });
        for e in entries.drain(..) {
            let index = e.index as usize;
            let Some(slot) = self.slots.get_mut(index).filter(|s| s.seq == e.seq) else {
                self.stale = self.stale.saturating_sub(1);
                continue;
            };
            match std::mem::replace(&mut slot.kind, Kind::Fired) {
                Kind::Waker(w) => fired.extend(w.map(Fired::Waker)),
                Kind::Callback(cb) => {
                    self.slots.remove(index);
                    if !cb.is_cancelled() {
                        fired.push(Fired::Callback(cb));
                    }
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
        self.occupied = [0; LEVELS];
        let wheel = std::mem::replace(
            &mut self.wheel,
            Box::new(std::array::from_fn(|_| std::array::from_fn(|_| Vec::new()))),
        );
        (
            wheel,
            std::mem::take(&mut self.overflow),
            std::mem::take(&mut self.due),
            std::mem::take(&mut self.slots),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> Waker {
        Waker::noop().clone()
    }

    /// A timer due when armed, then removed before any expiry pass: the
    /// next deadline is not "now" (the loop would spin instead of sleeping).
    #[test]
    fn a_removed_due_timer_is_no_reason_to_wake() {
        let origin = Instant::now();
        let mut t = Timers::new(origin);
        let key = t.insert_waker(origin, noop());
        assert!(t.next_deadline().is_some_and(|at| at <= Instant::now()));
        t.remove(key);
        assert_eq!(t.next_deadline(), None);
        let later = origin + Duration::from_secs(5);
        let k2 = t.insert_waker(origin, noop());
        t.insert_waker(later, noop());
        t.remove(k2);
        let next = t.next_deadline().expect("one live timer");
        assert!(
            next >= later - Duration::from_millis(2),
            "woke early: {next:?} < {later:?}"
        );
    }

    #[test]
    fn removal_compacts_stale_entries() {
        let origin = Instant::now();
        let mut t = Timers::new(origin);
        let base = origin + Duration::from_secs(60);
        let keys: Vec<_> = (0..5000)
            .map(|i| t.insert_waker(base + Duration::from_millis(i), noop()))
            .collect();
        for k in &keys[..4500] {
            t.remove(*k);
        }
        assert_eq!(t.len(), 500);
        let entries: usize =
            t.wheel.iter().flatten().map(Vec::len).sum::<usize>() + t.overflow.len();
        assert!(
            entries < 5000,
            "wheel was never compacted ({entries} entries)"
        );
        let next = t.next_deadline().unwrap();
        assert!(next <= base + Duration::from_millis(4500));
    }

    /// A burst of cancelled timers grew a slot's vector, and the wheel kept
    /// that capacity for good: compaction only dropped the entries, and an
    /// emptied slot got its vector back. Timer memory followed the history
    /// of cancelled timers, not the live ones (found by the cancellation
    /// storm stress test: +10% RSS over 1,000,000 ops).
    #[test]
    fn a_burst_of_cancelled_timers_leaves_no_capacity_behind() {
        let origin = Instant::now();
        let mut t = Timers::new(origin);
        let at = origin + Duration::from_millis(100);
        let keys: Vec<_> = (0..100_000u64)
            .map(|i| t.insert_waker(at + Duration::from_micros(i % 50), noop()))
            .collect();
        for k in keys {
            t.remove(k);
        }
        assert_eq!(t.next_deadline(), None, "only cancelled timers are left");
        let mut fired = Vec::new();
        t.expire_ordered(origin + Duration::from_secs(1), &mut fired);
        assert!(fired.is_empty());
        let capacity: usize =
            t.wheel.iter().flatten().map(Vec::capacity).sum::<usize>() + t.due.capacity();
        assert!(
            capacity <= REUSED_CAPACITY,
            "{capacity} wheel entries of capacity kept with no timer armed"
        );
    }

    #[test]
    fn equal_deadlines_fire_in_arming_order() {
        let origin = Instant::now();
        let mut t = Timers::new(origin);
        let at = origin + Duration::from_millis(3);
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

    /// Deadlines from before the wheel existed keep their order instead of
    /// all rounding to the origin; the farthest instants either way
    /// saturate without overflow, and a far-future one is never due.
    #[test]
    fn deadlines_before_the_origin_keep_their_order_and_extremes_saturate() {
        let origin = Instant::now();
        let mut t = Timers::new(origin);
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let year = Duration::from_secs(365 * 86_400);
        let far_past = origin - Duration::from_secs(i64::MAX as u64 / 2);
        let far_future = origin + Duration::from_secs(i64::MAX as u64 / 2);
        for (id, at) in [
            (3, origin - Duration::from_millis(1)),
            (1, origin - year),
            (4, origin),
            (0, far_past),
            (2, origin - Duration::from_micros(1500)),
            (9, far_future),
            (8, origin + year * 1000),
        ] {
            let order = order.clone();
            t.insert_callback(
                at,
                Callback::new(Box::new(move || order.borrow_mut().push(id))),
            );
        }
        assert!(t.next_deadline().unwrap() <= origin);
        let (mut w, mut cbs) = (Vec::new(), Vec::new());
        t.expire(origin + Duration::from_secs(3600), &mut w, &mut cbs);
        for cb in cbs {
            cb.run_for_test();
        }
        assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
        let next = t.next_deadline().expect("the far ones are still armed");
        assert!(next > origin + year * 100, "{next:?}");
        assert_eq!(t.len(), 2);
    }

    /// Found by the `timers` fuzz target
    /// (fuzz/regressions/timers/overflow_callbacks_fire_in_arming_order):
    /// timers beyond the wheel's range (the overflow heap), reached by one
    /// big jump, fired in arming order instead of deadline order.
    #[test]
    fn overflow_timers_reached_by_one_jump_fire_in_deadline_order() {
        let origin = Instant::now();
        let mut t = Timers::new(origin);
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let us = Duration::from_micros;
        // Armed: later deadline first; plus a near one and a sleeper.
        for (id, at) in [
            (1, 17_317_308_137_443),
            (2, 9_818_312_015_711),
            (3, 65_300_000),
        ] {
            let order = order.clone();
            t.insert_callback(
                origin + us(at),
                Callback::new(Box::new(move || order.borrow_mut().push(id))),
            );
        }
        t.insert_waker(origin + us(5_000_000_000), noop());
        let (mut w, mut cbs) = (Vec::new(), Vec::new());
        t.expire(origin + us(17_589_134_884_929), &mut w, &mut cbs);
        assert_eq!(w.len(), 1);
        for cb in cbs {
            cb.run_for_test();
        }
        assert_eq!(*order.borrow(), vec![3, 2, 1]);
    }

    /// A seeded model check: random arming (µs to days ahead), removals and
    /// time steps; every timer fires exactly once, never before its
    /// deadline, and never after the first `expire` at or past it;
    /// `next_deadline` is never later than the nearest live deadline.
    #[test]
    fn model_check_against_a_reference() {
        for seed in 1..=40u64 {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut rnd = move |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            };
            let origin = Instant::now();
            let mut t = Timers::new(origin);
            let mut now_us: u64 = 0;
            // Reference: live timers by key -> deadline (µs).
            let mut live: Vec<(TimerKey, u64)> = Vec::new();
            let (mut wakers, mut cbs) = (Vec::new(), Vec::new());
            for _ in 0..3000 {
                match rnd(10) {
                    0..=5 => {
                        let ahead = match rnd(4) {
                            0 => rnd(64),
                            1 => rnd(10_000),
                            2 => rnd(5_000_000),
                            _ => rnd(200_000_000_000),
                        };
                        let d = now_us + ahead;
                        let k = t.insert_waker(origin + Duration::from_micros(d), noop());
                        live.push((k, d));
                    }
                    6 if !live.is_empty() => {
                        let i = rnd(live.len() as u64) as usize;
                        let (k, _) = live.swap_remove(i);
                        t.remove(k);
                    }
                    _ => {
                        if let (Some(next), Some(min)) =
                            (t.next_deadline(), live.iter().map(|(_, d)| *d).min())
                        {
                            assert!(
                                next <= origin + Duration::from_micros(min),
                                "seed {seed}: next_deadline after a live deadline"
                            );
                        }
                        now_us += match rnd(3) {
                            0 => rnd(100),
                            1 => rnd(100_000),
                            _ => rnd(20_000_000_000),
                        };
                        t.expire(
                            origin + Duration::from_micros(now_us),
                            &mut wakers,
                            &mut cbs,
                        );
                        wakers.clear();
                        let mut i = 0;
                        while i < live.len() {
                            let (k, d) = live[i];
                            let fired = matches!(
                                t.slot_mut(k).map(|s| matches!(s.kind, Kind::Fired)),
                                Some(true)
                            );
                            assert_eq!(fired, d <= now_us, "seed {seed}: deadline {d} at {now_us}");
                            if fired {
                                let mut cx = Context::from_waker(Waker::noop());
                                assert!(t.poll(k, &mut cx).is_ready());
                                live.swap_remove(i);
                            } else {
                                i += 1;
                            }
                        }
                    }
                }
            }
            assert_eq!(t.len(), live.len(), "seed {seed}: slot count");
        }
    }
}
