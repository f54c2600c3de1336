//! `shield` behaviours (SEMANTICS SH1–SH3): the awaiter going away does not
//! cancel the shielded work, a cancellation by other means reaches the
//! awaiter, and without cancellation a shield is transparent.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringloop::{shield, sleep, spawn, wait_for};

/// Sets its flag when dropped (the work's `finally`).
struct DropGuard(Rc<Cell<bool>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sleeps `delay` (with a drop guard), then sets `done` and returns `value`.
async fn work<T>(delay: Duration, done: Rc<Cell<bool>>, dropped: Rc<Cell<bool>>, value: T) -> T {
    let _guard = DropGuard(dropped);
    sleep(delay).await;
    done.set(true);
    value
}

// ---------------------------------------------------------------- SH1

#[test]
fn sh1_cancelling_the_awaiter_of_a_shield_does_not_cancel_the_work() {
    let done = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let t0 = Instant::now();
    ringloop::run({
        let done = done.clone();
        let dropped = dropped.clone();
        async move {
            let shielded = shield(spawn(work(ms(100), done.clone(), dropped.clone(), 7)));
            let awaiter = spawn(shielded);
            sleep(ms(10)).await;
            assert!(awaiter.cancel());
            let r = awaiter.await;
            assert!(r.unwrap_err().is_cancelled(), "the awaiter was cancelled");
            // The shielded work was not cancelled: its cleanup has not run,
            // unless it already finished normally.
            assert!(
                !dropped.get() || done.get(),
                "the shielded work was cancelled"
            );
            sleep(ms(150)).await;
            assert!(done.get(), "the shielded work did not finish");
        }
    })
    .unwrap();
    assert!(done.get());
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= ms(100) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[test]
fn sh1_dropping_the_shield_future_lets_the_work_run_to_its_end() {
    let done = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    ringloop::run({
        let done = done.clone();
        let dropped = dropped.clone();
        async move {
            let shielded = shield(spawn(work(ms(20), done.clone(), dropped.clone(), ())));
            drop(shielded);
            assert!(!dropped.get(), "dropping the shield cancelled the work");
            sleep(ms(60)).await;
            assert!(done.get(), "the shielded work did not run to its end");
        }
    })
    .unwrap();
}

// ---------------------------------------------------------------- SH2

#[test]
fn sh2_cancelling_the_shielded_task_by_other_means_reaches_the_awaiter() {
    let done = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let t0 = Instant::now();
    ringloop::run({
        let done = done.clone();
        let dropped = dropped.clone();
        async move {
            let task = spawn(work(ms(1000), done.clone(), dropped.clone(), 1));
            let handle = task.handle();
            let awaiter = spawn(shield(task));
            sleep(ms(10)).await;
            assert!(handle.cancel());
            let r = awaiter.await.expect("the awaiter itself is not cancelled");
            let err = r.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            assert!(handle.is_cancelled());
            assert!(dropped.get(), "the cancelled work's cleanup had not run");
            assert!(!done.get());
        }
    })
    .unwrap();
    assert!(t0.elapsed() < ms(1000));
}

// ---------------------------------------------------------------- SH3

#[test]
fn sh3_without_cancellation_a_shield_is_its_futures_output() {
    let done = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let t0 = Instant::now();
    let out = ringloop::run({
        let done = done.clone();
        let dropped = dropped.clone();
        async move {
            let shielded = shield(spawn(work(ms(20), done, dropped, "value"))).await;
            let immediate = shield(spawn(async { 5 })).await;
            let of_task = shield(spawn(async { 'x' })).await;
            (shielded, immediate, of_task)
        }
    })
    .unwrap();
    assert_eq!(out.0.unwrap(), "value");
    assert_eq!(out.1.unwrap(), 5);
    assert_eq!(out.2.unwrap(), 'x');
    assert!(done.get() && dropped.get());
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= ms(20) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[test]
fn sh3_shield_inside_wait_for_returns_the_output_when_in_time() {
    let out = ringloop::run(async {
        let done = Rc::new(Cell::new(false));
        let dropped = Rc::new(Cell::new(false));
        wait_for(
            shield(spawn(work(ms(10), done, dropped, 3))),
            Some(ms(1000)),
        )
        .await
    })
    .unwrap();
    assert_eq!(out.unwrap().unwrap(), 3);
}
