//! `Promise` behaviours (SEMANTICS F1–F5, asyncio's `Future`): invalid
//! states, results of pending and cancelled promises, done callbacks,
//! cancelling, and many awaiters.

use std::cell::RefCell;
use std::rc::Rc;

use ringloop::{Promise, PromiseError, spawn, yield_now};

type Log<T> = Rc<RefCell<Vec<T>>>;

fn new_log<T>() -> Log<T> {
    Rc::default()
}

/// Yields until `done()` holds (at most 100 times).
async fn yield_until(mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        yield_now().await;
    }
    panic!("condition not reached after 100 yields");
}

// ---------------------------------------------------------------- F1

#[test]
fn f1_setting_a_result_on_a_finished_promise_is_invalid_state() {
    let p = Promise::new();
    p.set_result(1).unwrap();
    let err = p.set_result(2).unwrap_err();
    assert!(err.to_string().contains("invalid state"), "{err}");
    assert!(p.set_error("late error").is_err());
    assert!(matches!(p.result(), Ok(1)), "the first result stands");

    let cancelled: Promise<i32> = Promise::new();
    assert!(cancelled.cancel());
    assert!(cancelled.set_result(3).is_err());
    assert!(matches!(cancelled.result(), Err(PromiseError::Cancelled)));

    let failed: Promise<i32> = Promise::new();
    failed.set_error("first error").unwrap();
    assert!(failed.set_result(4).is_err());
    assert!(failed.set_error("second error").is_err());
    match failed.result() {
        Err(PromiseError::Failed(e)) => assert_eq!(e.to_string(), "first error"),
        other => panic!("expected the first error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- F2

#[test]
fn f2_reading_a_pending_result_is_invalid_state_and_a_cancelled_one_cancelled() {
    let p: Promise<String> = Promise::new();
    assert!(!p.is_done());
    assert!(matches!(p.result(), Err(PromiseError::InvalidState(_))));
    assert!(p.cancel());
    assert!(p.is_done() && p.is_cancelled());
    assert!(matches!(p.result(), Err(PromiseError::Cancelled)));

    let failed: Promise<String> = Promise::new();
    failed
        .set_error(std::io::Error::other("disk on fire"))
        .unwrap();
    assert!(failed.is_done() && !failed.is_cancelled());
    match failed.result() {
        Err(PromiseError::Failed(e)) => assert_eq!(e.to_string(), "disk on fire"),
        other => panic!("expected Failed, got {other:?}"),
    }

    let done: Promise<String> = Promise::new();
    done.set_result("value".into()).unwrap();
    assert_eq!(done.result().unwrap(), "value");
    assert_eq!(done.result().unwrap(), "value", "reading does not consume");
}

#[test]
fn f2_awaiting_a_cancelled_promise_gives_cancelled() {
    let out = ringloop::run(async {
        let p: Promise<u8> = Promise::new();
        // A promise is itself a future: a task can await a clone of it.
        let waiter = spawn(p.clone());
        yield_now().await;
        assert!(p.cancel());
        waiter.await.unwrap()
    })
    .unwrap();
    assert!(matches!(out, Err(PromiseError::Cancelled)), "{out:?}");
}

// ---------------------------------------------------------------- F3

#[test]
fn f3_done_callbacks_run_soon_after_completion_in_the_order_added() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let p: Promise<i32> = Promise::new();
            for i in 1..=3 {
                let e = events.clone();
                p.add_done_callback(move |p: &Promise<i32>| {
                    e.borrow_mut()
                        .push(format!("cb{i} saw {:?}", p.result().ok()));
                });
            }
            yield_now().await;
            assert!(events.borrow().is_empty(), "ran before completion");
            p.set_result(7).unwrap();
            assert!(events.borrow().is_empty(), "must not run inline");
            yield_now().await;
            assert_eq!(events.borrow().len(), 3, "must run soon");

            // Added once done: scheduled at once, still not inline.
            let e = events.clone();
            p.add_done_callback(move |_| e.borrow_mut().push("late".to_string()));
            assert_eq!(events.borrow().len(), 3);
            yield_now().await;
        }
    })
    .unwrap();
    assert_eq!(
        *events.borrow(),
        [
            "cb1 saw Some(7)",
            "cb2 saw Some(7)",
            "cb3 saw Some(7)",
            "late"
        ]
    );
}

#[test]
fn f3_done_callbacks_run_on_cancellation_too() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let p: Promise<()> = Promise::new();
            for i in 1..=2 {
                let e = events.clone();
                p.add_done_callback(move |p: &Promise<()>| {
                    e.borrow_mut().push((i, p.is_cancelled()));
                });
            }
            assert!(p.cancel());
            yield_now().await;
        }
    })
    .unwrap();
    assert_eq!(*events.borrow(), [(1, true), (2, true)]);
}

// ---------------------------------------------------------------- F4

#[test]
fn f4_cancel_on_a_finished_promise_returns_false() {
    let ok = Promise::new();
    ok.set_result(1).unwrap();
    assert!(!ok.cancel());
    assert!(!ok.is_cancelled());
    assert!(matches!(ok.result(), Ok(1)));

    let failed: Promise<i32> = Promise::new();
    failed.set_error("bad").unwrap();
    assert!(!failed.cancel());
    assert!(matches!(failed.result(), Err(PromiseError::Failed(_))));

    let pending: Promise<i32> = Promise::new();
    assert!(pending.cancel(), "cancelling a pending promise succeeds");
    assert!(!pending.cancel(), "but only once");
    assert!(pending.is_cancelled());
}

// ---------------------------------------------------------------- F5

#[test]
fn f5_every_awaiter_sees_the_result() {
    let results = ringloop::run(async {
        let p: Promise<String> = Promise::new();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                spawn(async move { p.await.unwrap() })
            })
            .collect();
        yield_now().await;
        p.set_result("shared".into()).unwrap();
        let mut out = Vec::new();
        for w in waiters {
            out.push(w.await.unwrap());
        }
        // Awaiting after completion gives the result at once, every time.
        out.push(p.clone().await.unwrap());
        out.push(p.await.unwrap());
        out
    })
    .unwrap();
    assert_eq!(results, vec!["shared"; 6]);
}

#[test]
fn f5_dropping_one_awaiter_does_not_cancel_the_promise_for_the_others() {
    ringloop::run(async {
        let p: Promise<u32> = Promise::new();
        let waiter = |p: &Promise<u32>| spawn(p.clone());
        let first = waiter(&p);
        let dropped = waiter(&p);
        let last = waiter(&p);
        let dropped_handle = dropped.handle();
        yield_now().await; // all three are waiting
        drop(dropped);
        yield_until(|| dropped_handle.is_done()).await;
        assert!(dropped_handle.is_cancelled());
        assert!(
            !p.is_done(),
            "dropping an awaiter must not cancel the promise"
        );

        // A new awaiter after the drop works as well.
        let late = waiter(&p);
        yield_now().await;
        p.set_result(9).unwrap();
        for w in [first, last, late] {
            assert_eq!(w.await.unwrap().unwrap(), 9);
        }
    })
    .unwrap();
}

#[test]
fn f5_promise_cancel_cancels_it_for_every_awaiter() {
    ringloop::run(async {
        let p: Promise<u32> = Promise::new();
        let waiters: Vec<_> = (0..3).map(|_| spawn(p.clone())).collect();
        yield_now().await;
        assert!(p.cancel());
        for w in waiters {
            assert!(matches!(w.await.unwrap(), Err(PromiseError::Cancelled)));
        }
    })
    .unwrap();
}
