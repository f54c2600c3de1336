//! Event loop behaviours (SEMANTICS L1–L6, L9, L10): running until a future
//! completes, `run_forever`/`stop`, `run`'s shutdown, re-entrancy errors,
//! callback ordering, the loop clock, closed loops and one loop per thread.

use std::cell::RefCell;
use std::future::pending;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringloop::{CallbackHandle, EventLoop, Handle, Promise, RuntimeError};

type Log<T> = Rc<RefCell<Vec<T>>>;

fn new_log<T>() -> Log<T> {
    Rc::default()
}

/// Pushes `(name, whether a loop was running)` to its log when dropped.
struct DropGuard {
    log: Log<(&'static str, bool)>,
    name: &'static str,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let in_loop = Handle::try_current().is_some();
        self.log.borrow_mut().push((self.name, in_loop));
    }
}

/// Runs `lp` until every callback already scheduled (and those they
/// schedule before the stop callback's turn) has run.
fn run_scheduled(lp: &EventLoop) {
    lp.call_soon(|| Handle::current().stop().unwrap()).unwrap();
    lp.run_forever().unwrap();
}

// ---------------------------------------------------------------- L1

#[test]
fn l1_run_until_complete_returns_output_and_leaves_other_tasks_pending() {
    let lp = EventLoop::new().unwrap();
    let events = new_log();
    let gate: Promise<u32> = Promise::new();
    let background = lp
        .spawn({
            let (events, gate) = (events.clone(), gate.clone());
            async move {
                events.borrow_mut().push("background started");
                let v = gate.await.unwrap();
                events.borrow_mut().push("background resumed");
                v * 2
            }
        })
        .unwrap();

    let out = lp
        .run_until_complete(async {
            ringloop::sleep(Duration::from_millis(1)).await;
            "main output"
        })
        .unwrap();
    assert_eq!(out, "main output");
    assert!(
        !background.is_done(),
        "the background task must stay pending"
    );
    assert_eq!(*events.borrow(), ["background started"]);

    // The pending task resumes on the next run call.
    gate.set_result(21).unwrap();
    let joined = lp.run_until_complete(background).unwrap();
    assert_eq!(joined.unwrap(), 42);
    assert_eq!(
        *events.borrow(),
        ["background started", "background resumed"]
    );
    lp.close().unwrap();
}

/// Once the main future is done, `run_until_complete` returns after the
/// round it finished in (asyncio: its done callback calls `stop()`), even
/// when other tasks keep each other busy: the turn's extra rounds of ready
/// work end with it.
#[test]
fn l1_run_until_complete_returns_after_the_round_its_future_finished_in() {
    let lp = EventLoop::new().unwrap();
    let steps = Rc::new(std::cell::Cell::new(0u32));
    let s = steps.clone();
    lp.spawn(async move {
        loop {
            s.set(s.get() + 1);
            ringloop::yield_now().await;
        }
    })
    .unwrap()
    .detach();
    lp.run_until_complete(ringloop::yield_now()).unwrap();
    // Round 1: the main future yields, the background task steps; round 2:
    // the main future finishes (the background task steps once more in
    // that same round at most).
    assert!(
        steps.get() <= 2,
        "background task ran {} steps",
        steps.get()
    );
    assert!(steps.get() >= 1);
}

#[test]
fn l1_run_until_complete_propagates_a_panic_and_the_loop_stays_usable() {
    let lp = EventLoop::new().unwrap();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lp.run_until_complete(async {
            ringloop::yield_now().await;
            panic!("main future panicked");
        })
    }));
    let payload = res.expect_err("the panic must reach the caller");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"main future panicked")
    );
    assert!(!lp.is_running());
    assert_eq!(lp.run_until_complete(async { 5 }).unwrap(), 5);
}

// ---------------------------------------------------------------- L2

#[test]
fn l2_stop_before_run_forever_runs_exactly_one_iteration() {
    let lp = EventLoop::new().unwrap();
    let events = new_log();
    let e = events.clone();
    lp.call_soon(move || {
        e.borrow_mut().push("first");
        let e = e.clone();
        Handle::current()
            .call_soon(move || e.borrow_mut().push("second"))
            .unwrap();
    })
    .unwrap();
    // A far timer must not make the single iteration block.
    lp.call_later(Duration::from_secs(3600), || unreachable!())
        .unwrap();

    lp.stop();
    let t0 = Instant::now();
    lp.run_forever().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "run_forever blocked");
    assert!(!lp.is_running());
    // Only the callbacks ready at the start of the iteration ran.
    assert_eq!(*events.borrow(), ["first"]);

    // The stop request was consumed: the next run_forever runs until stop()
    // is called again, picking up the callback scheduled by "first".
    let e = events.clone();
    lp.call_soon(move || {
        e.borrow_mut().push("third");
        Handle::current().stop().unwrap();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*events.borrow(), ["first", "second", "third"]);
}

#[test]
fn l2_run_forever_runs_until_stop_is_called() {
    let lp = EventLoop::new().unwrap();
    let events = new_log();
    let ticker = lp
        .spawn({
            let events = events.clone();
            async move {
                for _ in 0..3 {
                    ringloop::sleep(Duration::from_millis(2)).await;
                    events.borrow_mut().push("tick");
                }
                Handle::current().stop().unwrap();
                events.borrow_mut().push("stop requested");
            }
        })
        .unwrap();
    // A later timer that must not fire: the loop returns once stopped.
    let e = events.clone();
    lp.call_later(Duration::from_secs(3600), move || {
        e.borrow_mut().push("late")
    })
    .unwrap();
    let t0 = Instant::now();
    lp.run_forever().unwrap();
    let elapsed = t0.elapsed();
    assert!(elapsed >= Duration::from_millis(6));
    assert!(elapsed < Duration::from_secs(2));
    assert!(ticker.is_done());
    assert!(!lp.is_running());
    assert_eq!(*events.borrow(), ["tick", "tick", "tick", "stop requested"]);
}

#[test]
fn l2_stop_from_a_callback_still_runs_the_rest_of_its_batch() {
    let lp = EventLoop::new().unwrap();
    let events = new_log();
    let e = events.clone();
    lp.call_soon(move || {
        e.borrow_mut().push("stopper");
        Handle::current().stop().unwrap();
        let e = e.clone();
        Handle::current()
            .call_soon(move || e.borrow_mut().push("scheduled by stopper"))
            .unwrap();
    })
    .unwrap();
    let e = events.clone();
    lp.call_soon(move || e.borrow_mut().push("same batch"))
        .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*events.borrow(), ["stopper", "same batch"]);

    run_scheduled(&lp);
    assert_eq!(
        *events.borrow(),
        ["stopper", "same batch", "scheduled by stopper"]
    );
}

// ---------------------------------------------------------------- L3

#[test]
fn l3_run_cancels_leftover_tasks_on_the_running_loop_then_closes_it() {
    let drops = new_log();
    let t0 = Instant::now();
    let (out, handle) = ringloop::run({
        let drops = drops.clone();
        async move {
            let g = DropGuard {
                log: drops.clone(),
                name: "pending forever",
            };
            ringloop::spawn(async move {
                let _g = g;
                pending::<()>().await;
            })
            .detach();
            let g = DropGuard {
                log: drops.clone(),
                name: "sleeping an hour",
            };
            ringloop::spawn(async move {
                let _g = g;
                ringloop::sleep(Duration::from_secs(3600)).await;
            })
            .detach();
            // Its drop spawns another task, which must be cancelled too.
            let g = SpawnOnDrop { log: drops.clone() };
            ringloop::spawn(async move {
                let _g = g;
                pending::<()>().await;
            })
            .detach();
            ringloop::yield_now().await;
            // Spawned but never started before the main future returns.
            let g = DropGuard {
                log: drops.clone(),
                name: "never started",
            };
            ringloop::spawn(async move {
                let _g = g;
            })
            .detach();
            (7, Handle::current())
        }
    })
    .unwrap();
    assert_eq!(out, 7);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "run waited for a task"
    );
    assert!(handle.is_closed(), "run must close its loop");

    let mut seen = drops.borrow().clone();
    seen.sort_unstable();
    // Every leftover task's future was dropped while the loop was running
    // (cancelled on the loop, not torn down after it closed).
    assert_eq!(
        seen,
        [
            ("never started", true),
            ("pending forever", true),
            ("sleeping an hour", true),
            ("spawned while cancelling", true),
            ("spawner", true),
        ]
    );
}

/// When dropped, spawns a task owning a [`DropGuard`].
struct SpawnOnDrop {
    log: Log<(&'static str, bool)>,
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let in_loop = Handle::try_current().is_some();
        self.log.borrow_mut().push(("spawner", in_loop));
        let g = DropGuard {
            log: self.log.clone(),
            name: "spawned while cancelling",
        };
        ringloop::spawn(async move {
            let _g = g;
            pending::<()>().await;
        })
        .detach();
    }
}

// ---------------------------------------------------------------- L4

#[test]
fn l4_running_a_loop_inside_itself_is_an_error_not_a_deadlock() {
    let lp = EventLoop::new().unwrap();
    let (a, b, c, d) = lp
        .run_until_complete(async {
            let a = lp.run_until_complete(async { 1 }).unwrap_err();
            let b = lp.run_forever().unwrap_err();
            let c = lp.cancel_all_tasks().unwrap_err();
            let d = lp.close().unwrap_err();
            assert!(lp.is_running());
            (a, b, c, d)
        })
        .unwrap();
    for e in [&a, &b, &c, &d] {
        assert!(matches!(e, RuntimeError::AlreadyRunning), "got {e:?}");
    }
    assert_eq!(a.to_string(), "This event loop is already running");
    // Nothing was broken by the refused calls.
    assert!(!lp.is_closed());
    assert_eq!(lp.run_until_complete(async { 5 }).unwrap(), 5);
}

#[test]
fn l4_running_a_loop_from_its_own_task_or_callback_is_an_error() {
    let lp = Rc::new(EventLoop::new().unwrap());
    let errors = new_log();
    let task = lp
        .spawn({
            let (lp, errors) = (lp.clone(), errors.clone());
            async move {
                let e = lp.run_until_complete(async {}).unwrap_err();
                errors.borrow_mut().push(e);
            }
        })
        .unwrap();
    {
        let (lp2, errors) = (lp.clone(), errors.clone());
        lp.call_soon(move || errors.borrow_mut().push(lp2.run_forever().unwrap_err()))
            .unwrap();
    }
    lp.run_until_complete(task).unwrap().unwrap();
    let errors = errors.borrow();
    assert_eq!(errors.len(), 2);
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, RuntimeError::AlreadyRunning)),
        "{errors:?}"
    );
}

#[test]
fn l4_running_another_loop_inside_a_running_loop_is_an_error() {
    let outer = EventLoop::new().unwrap();
    let inner = EventLoop::new().unwrap();
    let polled = Rc::new(RefCell::new(false));
    let (a, b, c) = outer
        .run_until_complete(async {
            let p = polled.clone();
            let a = inner
                .run_until_complete(async move { *p.borrow_mut() = true })
                .unwrap_err();
            let b = inner.run_forever().unwrap_err();
            let c = ringloop::run(async {}).unwrap_err();
            (a, b, c)
        })
        .unwrap();
    assert!(matches!(a, RuntimeError::AnotherLoopRunning), "{a:?}");
    assert!(matches!(b, RuntimeError::AnotherLoopRunning), "{b:?}");
    let c = c
        .get_ref()
        .and_then(|e| e.downcast_ref::<RuntimeError>())
        .expect("run() reports the RuntimeError");
    assert!(matches!(c, RuntimeError::AnotherLoopRunning), "{c:?}");
    assert!(!*polled.borrow(), "the refused future must not be polled");
    // Once the outer loop has returned, the inner one runs normally.
    assert_eq!(inner.run_until_complete(async { 2 }).unwrap(), 2);
}

// ---------------------------------------------------------------- L5

#[test]
fn l5_call_soon_callbacks_run_in_fifo_order() {
    let lp = EventLoop::new().unwrap();
    let order = new_log();
    for i in 0..5 {
        let o = order.clone();
        lp.call_soon(move || {
            o.borrow_mut().push(i);
            // Scheduled from a callback: after everything already queued.
            let o = o.clone();
            Handle::current()
                .call_soon(move || o.borrow_mut().push(10 + i))
                .unwrap();
        })
        .unwrap();
    }
    lp.run_until_complete(async {
        for _ in 0..3 {
            ringloop::yield_now().await;
        }
    })
    .unwrap();
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
}

#[test]
fn l5_callbacks_and_tasks_share_one_fifo_ready_queue() {
    let lp = EventLoop::new().unwrap();
    let order = new_log();
    let push = |tag: &'static str| {
        let o = order.clone();
        move || o.borrow_mut().push(tag)
    };
    let t1 = lp.spawn({
        let f = push("task 1");
        async move { f() }
    });
    lp.call_soon(push("callback 1")).unwrap();
    let t2 = lp.spawn({
        let f = push("task 2");
        async move { f() }
    });
    lp.call_soon(push("callback 2")).unwrap();
    run_scheduled(&lp);
    assert!(t1.unwrap().is_done() && t2.unwrap().is_done());
    assert_eq!(
        *order.borrow(),
        ["task 1", "callback 1", "task 2", "callback 2"]
    );
}

/// Timers that expire in the same turn become ready in deadline order,
/// sleepers and callbacks alike. Found by CI on a loaded machine: a
/// `call_later(1 ms)` callback ran after a `sleep(5 ms)` that expired in the
/// same turn, because sleepers were woken before any callback was queued.
/// The loop thread is blocked here so that both expire in one turn.
#[test]
fn l5_a_callback_due_before_a_sleep_runs_before_the_sleeper_resumes() {
    let log = new_log();
    let l = log.clone();
    ringloop::run(async move {
        let l2 = l.clone();
        Handle::current()
            .call_later(Duration::from_millis(1), move || {
                l2.borrow_mut().push("callback")
            })
            .unwrap();
        let nap = ringloop::sleep(Duration::from_millis(5));
        // Block the loop past both deadlines.
        std::thread::sleep(Duration::from_millis(10));
        nap.await;
        l.borrow_mut().push("sleeper");
    })
    .unwrap();
    assert_eq!(*log.borrow(), ["callback", "sleeper"]);
}

#[test]
fn l5_timed_callbacks_with_equal_deadlines_run_in_scheduling_order() {
    let lp = EventLoop::new().unwrap();
    let order = new_log();
    let at = lp.time() + Duration::from_millis(10);
    // Later deadlines scheduled first still run after earlier ones.
    for (delay, tag) in [(30, "c"), (20, "b")] {
        let o = order.clone();
        lp.call_at(at + Duration::from_millis(delay), move || {
            o.borrow_mut().push(tag.to_string())
        })
        .unwrap();
    }
    for i in 0..6 {
        let o = order.clone();
        lp.call_at(at, move || o.borrow_mut().push(format!("a{i}")))
            .unwrap();
    }
    lp.run_until_complete(ringloop::sleep_until(at + Duration::from_millis(40)))
        .unwrap();
    assert_eq!(
        *order.borrow(),
        ["a0", "a1", "a2", "a3", "a4", "a5", "b", "c"]
    );
    assert!(lp.time() >= at + Duration::from_millis(30));
}

#[test]
fn l5_cancelled_callbacks_never_run() {
    let lp = EventLoop::new().unwrap();
    let order = new_log();
    let push = |tag: &'static str| {
        let o = order.clone();
        move || o.borrow_mut().push(tag)
    };
    let soon = lp.call_soon(push("cancelled soon")).unwrap();
    let kept_soon = lp.call_soon(push("kept soon")).unwrap();
    let later = lp
        .call_later(Duration::from_millis(5), push("cancelled later"))
        .unwrap();
    let at = lp
        .call_at(lp.time() + Duration::from_millis(5), push("cancelled at"))
        .unwrap();
    lp.call_later(Duration::from_millis(10), push("kept later"))
        .unwrap();

    for h in [&soon, &later, &at] {
        assert!(h.cancel(), "first cancel of a pending callback");
        assert!(h.is_cancelled());
        assert!(!h.cancel(), "second cancel changes nothing");
    }
    assert!(!kept_soon.is_cancelled());
    lp.run_until_complete(ringloop::sleep(Duration::from_millis(30)))
        .unwrap();
    assert_eq!(*order.borrow(), ["kept soon", "kept later"]);
    assert!(!kept_soon.cancel(), "cancelling a callback that ran");
}

#[test]
fn l5_a_callback_cancelled_by_an_earlier_one_in_the_same_batch_never_runs() {
    let lp = EventLoop::new().unwrap();
    let order = new_log();
    let victim: Rc<RefCell<Option<CallbackHandle>>> = Rc::default();
    {
        let (o, victim) = (order.clone(), victim.clone());
        lp.call_soon(move || {
            o.borrow_mut().push("canceller");
            assert!(victim.borrow().as_ref().unwrap().cancel());
        })
        .unwrap();
    }
    let o = order.clone();
    let h = lp.call_soon(move || o.borrow_mut().push("victim")).unwrap();
    *victim.borrow_mut() = Some(h);
    let o = order.clone();
    lp.call_soon(move || o.borrow_mut().push("bystander"))
        .unwrap();
    run_scheduled(&lp);
    assert_eq!(*order.borrow(), ["canceller", "bystander"]);
}

// ---------------------------------------------------------------- L6

#[test]
fn l6_time_is_monotonic_and_advances_with_the_loop() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let mut prev = lp.time();
    for _ in 0..1000 {
        let now = lp.time();
        assert!(now >= prev);
        assert!(handle.time() >= now);
        prev = now;
    }
    let t0 = lp.time();
    lp.run_until_complete(ringloop::sleep(Duration::from_millis(20)))
        .unwrap();
    let t1 = lp.time();
    assert!(t1 - t0 >= Duration::from_millis(20));
    assert!(t1 - t0 < Duration::from_secs(2));
}

#[test]
fn l6_call_at_time_plus_d_is_call_later_d() {
    let lp = EventLoop::new().unwrap();
    let d = Duration::from_millis(20);
    let fired = new_log();

    let before = lp.time();
    let f = fired.clone();
    let later = lp
        .call_later(d, move || f.borrow_mut().push(("later", Instant::now())))
        .unwrap();
    let after = lp.time();
    let when = later.when().expect("a timed callback has a deadline");
    assert!(
        when >= before + d && when <= after + d,
        "call_later(d) is due at time() + d"
    );

    let at_deadline = lp.time() + d;
    let f = fired.clone();
    let at = lp
        .call_at(at_deadline, move || {
            f.borrow_mut().push(("at", Instant::now()))
        })
        .unwrap();
    assert_eq!(at.when(), Some(at_deadline));
    assert_eq!(lp.call_soon(|| {}).unwrap().when(), None);

    lp.run_until_complete(ringloop::sleep(Duration::from_millis(40)))
        .unwrap();
    let fired = fired.borrow();
    // Both on the same clock: call_later's deadline was taken first, so it
    // is not later than call_at's, and neither ran early.
    assert_eq!(
        fired.iter().map(|f| f.0).collect::<Vec<_>>(),
        ["later", "at"]
    );
    assert!(fired[0].1 >= when);
    assert!(fired[1].1 >= at_deadline);
    assert!(fired[1].1 - before < Duration::from_secs(2));
}

#[test]
fn l6_handle_call_at_and_call_later_agree_inside_the_loop() {
    let lp = EventLoop::new().unwrap();
    let order = new_log();
    let d = Duration::from_millis(15);
    let t0 = lp.time();
    lp.run_until_complete(async {
        let h = Handle::current();
        let o = order.clone();
        let at = h
            .call_at(h.time() + d, move || o.borrow_mut().push("at"))
            .unwrap();
        let o = order.clone();
        let later = h
            .call_later(d, move || o.borrow_mut().push("later"))
            .unwrap();
        assert!(at.when().unwrap() <= later.when().unwrap());
        assert!(later.when().unwrap() <= h.time() + d);
        ringloop::sleep(Duration::from_millis(30)).await;
    })
    .unwrap();
    assert_eq!(*order.borrow(), ["at", "later"]);
    assert!(lp.time() - t0 >= Duration::from_millis(30));
}

// ---------------------------------------------------------------- L9

#[test]
fn l9_closed_loop_refuses_new_work_with_a_clear_error() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    assert!(!lp.is_closed());
    lp.close().unwrap();
    assert!(lp.is_closed());
    assert!(handle.is_closed());

    let polled = Rc::new(RefCell::new(false));
    let p = polled.clone();
    let errors = vec![
        lp.spawn(async {}).map(drop).unwrap_err(),
        lp.spawn_named("late", async {}).map(drop).unwrap_err(),
        lp.call_soon(|| {}).map(drop).unwrap_err(),
        lp.call_later(Duration::ZERO, || {}).map(drop).unwrap_err(),
        lp.call_at(lp.time(), || {}).map(drop).unwrap_err(),
        lp.run_until_complete(async move { *p.borrow_mut() = true })
            .unwrap_err(),
        lp.run_forever().unwrap_err(),
        lp.cancel_all_tasks().unwrap_err(),
        handle.call_soon(|| {}).map(drop).unwrap_err(),
        handle
            .call_later(Duration::ZERO, || {})
            .map(drop)
            .unwrap_err(),
        handle.call_at(handle.time(), || {}).map(drop).unwrap_err(),
        handle.spawn(async {}).map(drop).unwrap_err(),
        handle.stop().unwrap_err(),
    ];
    for e in &errors {
        assert!(matches!(e, RuntimeError::Closed), "got {e:?}");
        assert_eq!(e.to_string(), "Event loop is closed");
    }
    assert!(!*polled.borrow(), "a closed loop must not poll the future");
    // Closing again is fine.
    lp.close().unwrap();
}

#[test]
fn l9_close_cancels_tasks_and_discards_pending_callbacks() {
    let lp = EventLoop::new().unwrap();
    let drops = new_log();
    let g = DropGuard {
        log: drops.clone(),
        name: "task",
    };
    let task = lp
        .spawn(async move {
            let _g = g;
            pending::<()>().await;
        })
        .unwrap();
    lp.run_until_complete(ringloop::yield_now()).unwrap();
    let g = DropGuard {
        log: drops.clone(),
        name: "soon callback",
    };
    lp.call_soon(move || drop(g)).unwrap();
    let g = DropGuard {
        log: drops.clone(),
        name: "timed callback",
    };
    lp.call_later(Duration::from_secs(3600), move || drop(g))
        .unwrap();
    assert!(drops.borrow().is_empty());

    lp.close().unwrap();
    let mut seen = drops.borrow().clone();
    seen.sort_unstable();
    // Dropped (not run: no loop was running) at close.
    assert_eq!(
        seen,
        [
            ("soon callback", false),
            ("task", false),
            ("timed callback", false)
        ]
    );
    assert!(task.is_done() && task.is_cancelled());
    assert!(lp.all_tasks().is_empty());
}

// ---------------------------------------------------------------- L10

#[test]
fn l10_several_threads_each_run_their_own_loop_at_the_same_time() {
    const THREADS: usize = 4;
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut go = Vec::new();
    let mut joins = Vec::new();
    for i in 0..THREADS {
        let ready_tx = ready_tx.clone();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        go.push(go_tx);
        joins.push(std::thread::spawn(move || {
            ringloop::run(async move {
                let me = format!("{:?}", Handle::current());
                ready_tx.send(me.clone()).unwrap();
                // Every loop is running now; block until all are.
                go_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                let tasks: Vec<_> = (0..3)
                    .map(|k| {
                        ringloop::spawn(async move {
                            ringloop::sleep(Duration::from_millis(5)).await;
                            i * 10 + k
                        })
                    })
                    .collect();
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap());
                }
                assert_eq!(format!("{:?}", Handle::current()), me);
                (me, out)
            })
            .unwrap()
        }));
    }
    let mut loops: Vec<String> = (0..THREADS)
        .map(|_| ready_rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    // All four loops were running at once, before any was told to go on.
    loops.sort();
    loops.dedup();
    assert_eq!(loops.len(), THREADS, "each thread has its own loop");
    for g in &go {
        g.send(()).unwrap();
    }
    for (i, j) in joins.into_iter().enumerate() {
        let (_, out) = j.join().unwrap();
        assert_eq!(out, [i * 10, i * 10 + 1, i * 10 + 2]);
    }
}

#[test]
fn l10_a_handle_schedules_only_on_its_loops_thread_while_it_runs() {
    let lp = EventLoop::new().unwrap();
    let other = EventLoop::new().unwrap();
    let handle = lp.handle();

    // Not running: refused.
    assert!(matches!(
        handle.call_soon(|| {}).map(drop),
        Err(RuntimeError::NotInLoop)
    ));
    // Another loop running on this thread: refused.
    let r = other
        .run_until_complete(async { handle.spawn_local(async {}).map(drop) })
        .unwrap();
    assert!(matches!(r, Err(RuntimeError::NotInLoop)));

    let ran = Rc::new(RefCell::new(false));
    let r = lp.run_until_complete(async {
        // From another thread while the loop runs: refused.
        let h = handle.clone();
        let foreign = std::thread::spawn(move || {
            (
                Handle::try_current().is_none(),
                matches!(h.call_soon(|| {}).map(drop), Err(RuntimeError::NotInLoop)),
                matches!(h.stop(), Err(RuntimeError::NotInLoop)),
            )
        })
        .join()
        .unwrap();
        // On the loop's own thread while it runs: accepted.
        let r = ran.clone();
        handle.call_soon(move || *r.borrow_mut() = true).unwrap();
        ringloop::yield_now().await;
        foreign
    });
    assert_eq!(r.unwrap(), (true, true, true));
    assert!(*ran.borrow());
    assert!(Handle::try_current().is_none());
}

#[test]
fn l10_loops_on_one_thread_may_run_one_after_another() {
    let a = EventLoop::new().unwrap();
    let b = EventLoop::new().unwrap();
    let ta = a.spawn(async { "a" }).unwrap();
    let tb = b.spawn(async { "b" }).unwrap();
    assert_eq!(b.run_until_complete(tb).unwrap().unwrap(), "b");
    assert!(!ta.is_done(), "a's task runs only on a");
    assert_eq!(a.run_until_complete(ta).unwrap().unwrap(), "a");
}

// ------------------------------------------------ ready work vs the driver

/// A turn runs newly ready work for a bounded number of rounds before it
/// returns to the driver and the timers: tasks that keep each other busy
/// forever must not starve a timer, an I/O completion or a remote wake.
#[test]
fn busy_ready_chains_do_not_starve_timers_io_or_remote_wakes() {
    let out = ringloop::run(async {
        let spinning = Rc::new(std::cell::Cell::new(true));
        let spins = Rc::new(std::cell::Cell::new(0u64));
        // Two tasks that hand work back and forth forever.
        for _ in 0..2 {
            let (s, n) = (spinning.clone(), spins.clone());
            ringloop::spawn(async move {
                while s.get() {
                    n.set(n.get() + 1);
                    ringloop::yield_now().await;
                }
            })
            .detach();
        }
        // A timer.
        let t0 = Instant::now();
        ringloop::sleep(Duration::from_millis(20)).await;
        let slept = t0.elapsed();
        // An I/O completion (a UDP datagram to ourselves).
        let sock = ringloop::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let (r, _) = sock.send_to(b"ping".to_vec(), addr).await;
        r.unwrap();
        let (r, buf) = sock.recv_from(Vec::with_capacity(16)).await;
        r.unwrap();
        // A wake from another thread.
        let h = Handle::current();
        let remote = std::thread::spawn(move || h.spawn(async { "remote" }).unwrap())
            .join()
            .unwrap()
            .await
            .unwrap();
        spinning.set(false);
        (slept, buf, remote, spins.get())
    })
    .unwrap();
    let (slept, buf, remote, spins) = out;
    assert!(
        slept >= Duration::from_millis(20) && slept < Duration::from_secs(2),
        "{slept:?}"
    );
    assert_eq!(buf, b"ping");
    assert_eq!(remote, "remote");
    assert!(spins > 0);
}
