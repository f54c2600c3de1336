//! `Lock`, `Semaphore` and `BoundedSemaphore` (SEMANTICS Q2, Q3):
//! fairness, try-variants, and what a dropped waiter leaves behind.

mod sync_support;

use std::cell::Cell;
use std::rc::Rc;

use ringloop::sync::{BoundedSemaphore, Lock, Semaphore};
use ringloop::{Task, spawn, yield_now};
use sync_support::{new_log, yields};

/// Spawns a task that locks `lock`, logs `id`, holds it for `hold` yields.
fn locker(lock: &Lock, log: &sync_support::Log<usize>, id: usize, hold: usize) -> Task<()> {
    let (lock, log) = (lock.clone(), log.clone());
    spawn(async move {
        let _guard = lock.lock().await;
        log.borrow_mut().push(id);
        yields(hold).await;
    })
}

// ---------------------------------------------------------------- Lock

#[test]
fn q3_lock_is_taken_in_request_order() {
    let log = new_log();
    ringloop::run({
        let log = log.clone();
        async move {
            let lock = Lock::new();
            let tasks: Vec<_> = (0..6).map(|i| locker(&lock, &log, i, 2)).collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert!(!lock.locked());
        }
    })
    .unwrap();
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn q3_unlock_hands_the_lock_to_the_first_waiter_not_to_a_newcomer() {
    ringloop::run(async {
        let lock = Lock::new();
        let log = new_log();
        let guard = lock.lock().await;
        let waiter = locker(&lock, &log, 1, 0);
        yield_now().await; // the waiter queues
        drop(guard);
        // Free in asyncio's sense, but promised to the waiter: no barging.
        assert!(lock.locked());
        assert!(lock.try_lock().is_err());
        let newcomer = locker(&lock, &log, 2, 0);
        waiter.await.unwrap();
        newcomer.await.unwrap();
        assert_eq!(*log.borrow(), [1, 2]);
        assert!(lock.try_lock().is_ok());
    })
    .unwrap();
}

#[test]
fn q3_try_lock_and_locked() {
    let lock = Lock::new();
    assert!(!lock.locked());
    let guard = lock.try_lock().unwrap();
    assert!(lock.locked());
    assert!(lock.clone().try_lock().is_err()); // clones share the lock
    drop(guard);
    assert!(!lock.locked());
    assert_eq!(format!("{lock:?}"), "Lock { locked: false, waiting: 0 }");
}

#[test]
fn q2_a_dropped_lock_waiter_leaves_the_queue() {
    ringloop::run(async {
        let lock = Lock::new();
        let log = new_log();
        let guard = lock.lock().await;
        let a = locker(&lock, &log, 1, 0);
        let b = locker(&lock, &log, 2, 0);
        yield_now().await;
        assert_eq!(format!("{lock:?}"), "Lock { locked: true, waiting: 2 }");
        drop(a); // cancelled while waiting
        assert_eq!(format!("{lock:?}"), "Lock { locked: true, waiting: 1 }");
        drop(guard);
        b.await.unwrap();
        assert_eq!(*log.borrow(), [2]);
        assert!(!lock.locked());
    })
    .unwrap();
}

#[test]
fn q2_a_waiter_dropped_after_the_lock_was_handed_to_it_passes_it_on() {
    ringloop::run(async {
        let lock = Lock::new();
        let log = new_log();
        let guard = lock.lock().await;
        let a = locker(&lock, &log, 1, 0);
        let b = locker(&lock, &log, 2, 0);
        yield_now().await;
        drop(guard); // hands the lock to `a`, which has not run yet
        drop(a); // ... and is cancelled: the lock goes on to `b`
        b.await.unwrap();
        assert_eq!(*log.borrow(), [2]);
        assert!(!lock.locked());

        // Alone in the queue: the lock comes back free.
        let guard = lock.lock().await;
        let c = locker(&lock, &log, 3, 0);
        yield_now().await;
        drop(guard);
        drop(c);
        assert!(!lock.locked());
        assert!(lock.try_lock().is_ok());
    })
    .unwrap();
}

#[test]
fn q2_cancelling_the_holder_unlocks() {
    ringloop::run(async {
        let lock = Lock::new();
        let log = new_log();
        let holder = locker(&lock, &log, 1, 1000);
        let waiter = locker(&lock, &log, 2, 0);
        yield_now().await;
        assert!(lock.locked());
        drop(holder); // its guard is dropped with its future
        waiter.await.unwrap();
        assert_eq!(*log.borrow(), [1, 2]);
        assert!(!lock.locked());
    })
    .unwrap();
}

#[test]
fn q3_a_lock_future_dropped_before_its_first_poll_changes_nothing() {
    let lock = Lock::new();
    let fut = lock.lock();
    drop(fut);
    assert!(!lock.locked());
}

// ---------------------------------------------------------------- Semaphore

#[test]
fn q3_semaphore_bounds_concurrency() {
    ringloop::run(async {
        let sem = Semaphore::new(3);
        let (running, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (sem, running, peak) = (sem.clone(), running.clone(), peak.clone());
                spawn(async move {
                    let _permit = sem.acquire().await;
                    running.set(running.get() + 1);
                    peak.set(peak.get().max(running.get()));
                    yields(i % 4).await;
                    running.set(running.get() - 1);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.get(), 3);
        assert_eq!(sem.available_permits(), 3);
    })
    .unwrap();
}

#[test]
fn q3_semaphore_waiters_are_served_in_order() {
    ringloop::run(async {
        let sem = Semaphore::new(0);
        let log = new_log();
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let (sem, log) = (sem.clone(), log.clone());
                spawn(async move {
                    sem.acquire().await.forget();
                    log.borrow_mut().push(i);
                })
            })
            .collect();
        yield_now().await;
        assert!(sem.locked());
        for _ in 0..5 {
            sem.release();
            // The permit went to a waiter, not to the pool.
            assert_eq!(sem.available_permits(), 0);
            assert!(sem.try_acquire().is_err());
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
    })
    .unwrap();
}

#[test]
fn q3_semaphore_release_may_exceed_the_initial_value() {
    let sem = Semaphore::new(1);
    sem.release();
    assert_eq!(sem.available_permits(), 2);
    let (a, b) = (sem.try_acquire().unwrap(), sem.try_acquire().unwrap());
    assert!(sem.locked());
    drop((a, b));
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn q2_an_acquire_dropped_after_it_was_handed_a_permit_passes_it_on() {
    ringloop::run(async {
        let sem = Semaphore::new(1);
        let held = sem.acquire().await;
        let log = new_log();
        let spawn_acquirer = |i| {
            let (sem, log) = (sem.clone(), log.clone());
            spawn(async move {
                let _p = sem.acquire().await;
                log.borrow_mut().push(i);
            })
        };
        let (a, b, c) = (spawn_acquirer(1), spawn_acquirer(2), spawn_acquirer(3));
        yield_now().await;
        drop(b); // cancelled while waiting
        drop(held); // permit to `a`...
        drop(a); // ... cancelled before it ran: the permit goes to `c`
        c.await.unwrap();
        assert_eq!(*log.borrow(), [3]);
        assert_eq!(sem.available_permits(), 1);
    })
    .unwrap();
}

// ---------------------------------------------------------------- BoundedSemaphore

#[test]
fn q3_bounded_semaphore_refuses_a_release_beyond_its_bound() {
    let sem = BoundedSemaphore::new(2);
    assert!(sem.release().is_err());
    sem.try_acquire().unwrap().forget();
    sem.try_acquire().unwrap().forget();
    assert!(sem.locked());
    assert!(sem.release().is_ok());
    assert!(sem.release().is_ok());
    let err = sem.release().unwrap_err();
    assert_eq!(err.to_string(), "BoundedSemaphore released too many times");
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn q3_bounded_semaphore_counts_a_permit_in_transit_as_free() {
    ringloop::run(async {
        let sem = BoundedSemaphore::new(1);
        sem.acquire().await.forget();
        let waiter = spawn({
            let sem = sem.clone();
            async move { sem.acquire().await.forget() }
        });
        yield_now().await;
        sem.release().unwrap(); // handed to `waiter`, not yet run
        assert!(sem.release().is_err()); // would make two
        waiter.await.unwrap();
        sem.release().unwrap();
        assert_eq!(sem.available_permits(), 1);
    })
    .unwrap();
}

#[test]
fn q3_bounded_semaphore_permit_dropped_after_a_manual_release_is_not_counted_twice() {
    let sem = BoundedSemaphore::new(1);
    let permit = sem.try_acquire().unwrap();
    sem.release().unwrap();
    drop(permit);
    assert_eq!(sem.available_permits(), 1);
}
