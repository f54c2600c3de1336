//! `Event` and `Condition` (SEMANTICS Q2, Q3).

mod sync_support;

use std::cell::Cell;
use std::rc::Rc;

use ringloop::sync::{Condition, Event, Lock};
use ringloop::{Task, spawn, yield_now};
use sync_support::{Log, new_log, yields};

// ---------------------------------------------------------------- Event

fn event_waiter(ev: &Event, log: &Log<usize>, id: usize) -> Task<()> {
    let (ev, log) = (ev.clone(), log.clone());
    spawn(async move {
        ev.wait().await;
        log.borrow_mut().push(id);
    })
}

#[test]
fn q3_event_set_wakes_every_waiter() {
    ringloop::run(async {
        let ev = Event::new();
        let log = new_log();
        let tasks: Vec<_> = (0..5).map(|i| event_waiter(&ev, &log, i)).collect();
        yields(3).await;
        assert!(log.borrow().is_empty());
        ev.set();
        assert!(ev.is_set());
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
    })
    .unwrap();
}

#[test]
fn q3_event_waiters_woken_by_set_return_even_if_it_is_cleared_at_once() {
    ringloop::run(async {
        let ev = Event::new();
        let log = new_log();
        let tasks: Vec<_> = (0..3).map(|i| event_waiter(&ev, &log, i)).collect();
        yield_now().await;
        ev.set();
        ev.clear(); // before any waiter ran
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(log.borrow().len(), 3);
        // A wait after the clear waits for the next set.
        let late = event_waiter(&ev, &log, 9);
        yields(3).await;
        assert!(!late.is_done());
        ev.set();
        late.await.unwrap();
        assert_eq!(log.borrow().last(), Some(&9));
    })
    .unwrap();
}

#[test]
fn q3_event_wait_returns_at_once_while_set() {
    ringloop::run(async {
        let ev = Event::new();
        ev.set();
        ev.set(); // idempotent
        ev.wait().await;
        ev.wait().await;
        assert!(ev.is_set());
    })
    .unwrap();
}

#[test]
fn q2_a_dropped_event_waiter_leaves_no_trace() {
    ringloop::run(async {
        let ev = Event::new();
        let log = new_log();
        let a = event_waiter(&ev, &log, 1);
        let b = event_waiter(&ev, &log, 2);
        yield_now().await;
        assert_eq!(format!("{ev:?}"), "Event { set: false, waiting: 2 }");
        drop(a);
        assert_eq!(format!("{ev:?}"), "Event { set: false, waiting: 1 }");
        ev.set();
        b.await.unwrap();
        assert_eq!(*log.borrow(), [2]);
        // Dropped after the set woke it, before it ran: fine too.
        ev.clear();
        let c = event_waiter(&ev, &log, 3);
        yield_now().await;
        ev.set();
        drop(c);
        assert_eq!(format!("{ev:?}"), "Event { set: true, waiting: 0 }");
    })
    .unwrap();
}

// ---------------------------------------------------------------- Condition

/// A task that locks, waits once on `cond`, logs `id` (lock held), unlocks.
fn cond_waiter(cond: &Condition, log: &Log<usize>, id: usize) -> Task<()> {
    let (cond, log) = (cond.clone(), log.clone());
    spawn(async move {
        let guard = cond.lock().await;
        let _guard = cond.wait(guard).await;
        assert!(cond.locked());
        log.borrow_mut().push(id);
    })
}

#[test]
fn q3_condition_wait_unlocks_while_waiting_and_locks_again_before_returning() {
    ringloop::run(async {
        let cond = Condition::new();
        let inside = Rc::new(Cell::new(false));
        let waiter = spawn({
            let (cond, inside) = (cond.clone(), inside.clone());
            async move {
                let guard = cond.lock().await;
                let guard = cond.wait(guard).await;
                inside.set(true);
                yields(3).await; // hold the lock a while
                inside.set(false);
                drop(guard);
            }
        });
        yield_now().await;
        assert!(!cond.locked()); // released while waiting
        let guard = cond.lock().await;
        cond.notify(1);
        yields(2).await;
        // Notified, but it cannot return before we unlock.
        assert!(!inside.get());
        drop(guard);
        yield_now().await;
        assert!(inside.get());
        let _guard = cond.lock().await; // waits for the waiter to unlock
        assert!(!inside.get());
        waiter.await.unwrap();
    })
    .unwrap();
}

#[test]
fn q3_condition_notify_wakes_n_waiters_longest_waiting_first() {
    ringloop::run(async {
        let cond = Condition::new();
        let log = new_log();
        let tasks: Vec<_> = (0..5).map(|i| cond_waiter(&cond, &log, i)).collect();
        yield_now().await;
        assert_eq!(cond.notify(2), 2);
        yields(3).await;
        assert_eq!(*log.borrow(), [0, 1]);
        assert_eq!(cond.notify(1), 1);
        yields(3).await;
        assert_eq!(*log.borrow(), [0, 1, 2]);
        assert_eq!(cond.notify_all(), 2);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
        assert_eq!(cond.notify(10), 0); // nobody left
    })
    .unwrap();
}

#[test]
fn q3_condition_wait_for_checks_the_predicate_first_and_after_every_wake_up() {
    ringloop::run(async {
        let cond = Condition::new();
        let value = Rc::new(Cell::new(0));
        let checks = Rc::new(Cell::new(0));
        let waiter = spawn({
            let (cond, value, checks) = (cond.clone(), value.clone(), checks.clone());
            async move {
                let guard = cond.lock().await;
                let _guard = cond
                    .wait_for(guard, || {
                        checks.set(checks.get() + 1);
                        value.get() >= 3
                    })
                    .await;
                value.get()
            }
        });
        yield_now().await;
        assert_eq!(checks.get(), 1);
        for v in 1..=3 {
            let _guard = cond.lock().await;
            value.set(v);
            cond.notify_all();
            drop(_guard);
            yields(2).await;
        }
        assert_eq!(waiter.await.unwrap(), 3);
        assert_eq!(checks.get(), 4);
        // Already true: returns without waiting.
        let guard = cond.lock().await;
        let _guard = cond.wait_for(guard, || true).await;
    })
    .unwrap();
}

#[test]
fn q2_a_notified_condition_waiter_dropped_before_returning_passes_the_notification_on() {
    ringloop::run(async {
        let cond = Condition::new();
        let log = new_log();
        let a = cond_waiter(&cond, &log, 1);
        let b = cond_waiter(&cond, &log, 2);
        let c = cond_waiter(&cond, &log, 3);
        yield_now().await;
        assert_eq!(cond.notify(1), 1); // `a` notified...
        drop(a); // ... and cancelled before it ran: `b` gets the notification
        yields(3).await;
        assert_eq!(*log.borrow(), [2]);
        assert!(b.is_done() && !c.is_done());

        // A waiter notified while the lock is held is dropped while waiting
        // to lock again: the notification still moves on, to `d`.
        let d = cond_waiter(&cond, &log, 4);
        yield_now().await;
        let guard = cond.lock().await;
        cond.notify(1); // to `c`
        yields(2).await; // `c` ran and now waits for the lock
        drop(c);
        drop(guard);
        d.await.unwrap();
        assert_eq!(*log.borrow(), [2, 4]);
        assert!(!cond.locked());
    })
    .unwrap();
}

#[test]
fn q2_a_dropped_condition_waiter_that_was_not_notified_just_leaves() {
    ringloop::run(async {
        let cond = Condition::new();
        let log = new_log();
        let a = cond_waiter(&cond, &log, 1);
        let b = cond_waiter(&cond, &log, 2);
        yield_now().await;
        drop(a);
        assert_eq!(
            format!("{cond:?}"),
            "Condition { locked: false, waiting: 1 }"
        );
        assert_eq!(cond.notify(1), 1);
        b.await.unwrap();
        assert_eq!(*log.borrow(), [2]);
    })
    .unwrap();
}

#[test]
fn q3_conditions_may_share_a_lock() {
    ringloop::run(async {
        let lock = Lock::new();
        let (not_empty, not_full) = (
            Condition::with_lock(lock.clone()),
            Condition::with_lock(lock.clone()),
        );
        let log = new_log();
        let a = cond_waiter(&not_empty, &log, 1);
        let b = cond_waiter(&not_full, &log, 2);
        yield_now().await;
        let guard = lock.lock().await;
        assert!(not_empty.locked() && not_full.locked());
        not_full.notify_all();
        drop(guard);
        b.await.unwrap();
        assert!(!a.is_done());
        not_empty.notify_all();
        a.await.unwrap();
        assert_eq!(*log.borrow(), [2, 1]);
    })
    .unwrap();
}

#[test]
fn q3_condition_wait_with_the_guard_of_another_lock_panics() {
    ringloop::run(async {
        let cond = Condition::new();
        let other = Lock::new();
        let task = spawn(async move {
            let guard = other.lock().await;
            drop(cond.wait(guard).await);
        });
        let err = task.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(
            err.panic_message(),
            Some("Condition::wait called with the guard of another lock")
        );
    })
    .unwrap();
}
