//! asyncio fidelity of the loop's queue, promises and semaphores (SEMANTICS
//! L12, F6, F7, Q4): one FIFO whichever thread fills it, "Future exception
//! was never retrieved", removable done callbacks, and semaphores that
//! never let a releasing task barge past a waiter it handed its permit to.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use ringloop::sync::{BoundedSemaphore, Semaphore};
use ringloop::{
    EventLoop, ExceptionContext, ExceptionKind, Handle, Promise, PromiseError, spawn, yield_now,
};

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

/// A loop whose exception handler records every report.
fn recording_loop() -> (EventLoop, Log<ExceptionContext>) {
    let lp = EventLoop::new().unwrap();
    let reports = new_log();
    let r = reports.clone();
    lp.set_exception_handler(move |ctx| r.borrow_mut().push(ctx.clone()));
    (lp, reports)
}

// ---------------------------------------------------------------- L12

type SharedLog = Arc<Mutex<Vec<&'static str>>>;

fn push(log: &SharedLog, what: &'static str) -> impl FnOnce() + Send + 'static {
    let log = log.clone();
    move || log.lock().unwrap().push(what)
}

/// Queues `what` with `call_soon_threadsafe` from another thread, and
/// returns once that call has returned (so it happens-before what follows).
fn threadsafe_from_another_thread(h: &Handle, log: &SharedLog, what: &'static str) {
    let (h, f) = (h.clone(), push(log, what));
    std::thread::spawn(move || h.call_soon_threadsafe(f).unwrap())
        .join()
        .unwrap();
}

#[test]
fn l12_a_threadsafe_callback_queued_first_runs_before_a_later_call_soon_in_the_loop() {
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    let log = SharedLog::default();
    lp.run_until_complete(async {
        threadsafe_from_another_thread(&h, &log, "remote 1");
        h.call_soon(push(&log, "local 1")).unwrap();
        threadsafe_from_another_thread(&h, &log, "remote 2");
        h.call_soon(push(&log, "local 2")).unwrap();
        yield_until(|| log.lock().unwrap().len() == 4).await;
    })
    .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["remote 1", "local 1", "remote 2", "local 2"]
    );
}

#[test]
fn l12_one_fifo_also_before_the_loop_runs_and_from_a_callback() {
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    let log = SharedLog::default();
    // Before the loop runs: the loop's own `call_soon` after a remote one.
    threadsafe_from_another_thread(&h, &log, "remote before run");
    lp.call_soon(push(&log, "local before run")).unwrap();
    // From inside a callback.
    let (h2, log2) = (h.clone(), log.clone());
    lp.call_soon(move || {
        threadsafe_from_another_thread(&h2, &log2, "remote in callback");
        h2.call_soon(push(&log2, "local in callback")).unwrap();
    })
    .unwrap();
    lp.run_until_complete(yield_until(|| log.lock().unwrap().len() == 4))
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "remote before run",
            "local before run",
            "remote in callback",
            "local in callback"
        ]
    );
}

// ---------------------------------------------------------------- F6

fn never_retrieved(reports: &Log<ExceptionContext>) -> Vec<ExceptionContext> {
    reports
        .borrow()
        .iter()
        .filter(|c| c.message() == "Future exception was never retrieved")
        .cloned()
        .collect()
}

#[test]
fn f6_an_error_nobody_retrieved_is_reported_once_when_the_last_handle_goes() {
    let (lp, reports) = recording_loop();
    lp.run_until_complete(async {
        let p: Promise<u32> = Promise::new();
        let clone = p.clone();
        p.set_error("disk on fire").unwrap();
        drop(p);
        yield_now().await;
        assert!(reports.borrow().is_empty(), "a clone still holds it");
        drop(clone);
        let got = never_retrieved(&reports);
        assert_eq!(got.len(), 1, "{:?}", reports.borrow());
        assert_eq!(got[0].kind(), ExceptionKind::NeverRetrieved);
        assert!(got[0].to_string().contains("disk on fire"), "{}", got[0]);
        yield_now().await;
    })
    .unwrap();
    assert_eq!(reports.borrow().len(), 1, "reported exactly once");
}

#[test]
fn f6_an_error_whose_done_callback_held_the_last_handle_is_reported_after_it() {
    let (lp, reports) = recording_loop();
    lp.run_until_complete(async {
        let p: Promise<()> = Promise::new();
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        p.add_done_callback(move |_| r.set(true));
        p.set_error("late").unwrap();
        drop(p); // the scheduled callback still holds the promise
        assert!(reports.borrow().is_empty());
        yield_until(|| ran.get()).await;
        yield_now().await;
    })
    .unwrap();
    assert_eq!(never_retrieved(&reports).len(), 1);
}

#[test]
fn f6_a_pending_promise_a_result_a_cancellation_or_a_read_error_reports_nothing() {
    let (lp, reports) = recording_loop();
    lp.run_until_complete(async {
        drop(Promise::<u32>::new()); // pending
        let ok: Promise<u32> = Promise::new();
        ok.set_result(1).unwrap();
        drop(ok);
        let cancelled: Promise<u32> = Promise::new();
        cancelled.cancel();
        drop(cancelled);
        // Read with result().
        let read: Promise<u32> = Promise::new();
        read.set_error("read").unwrap();
        assert!(matches!(read.result(), Err(PromiseError::Failed(_))));
        drop(read);
        // Awaited by a task (another handle).
        let awaited: Promise<u32> = Promise::new();
        let waiter = spawn({
            let awaited = awaited.clone();
            async move { awaited.await.is_err() }
        });
        yield_now().await;
        awaited.set_error("awaited").unwrap();
        drop(awaited);
        assert!(waiter.await.unwrap());
        // Read with exception(), which needs no `T: Clone`.
        let inspected: Promise<u32> = Promise::new();
        inspected.set_error("inspected").unwrap();
        let e = inspected.exception().unwrap().unwrap();
        assert_eq!(e.to_string(), "inspected");
        drop(inspected);
        // result() while pending does not count as reading a later error...
        let early: Promise<u32> = Promise::new();
        assert!(early.result().is_err());
        early.set_error("set after an early read").unwrap();
        drop(early);
        yield_now().await;
    })
    .unwrap();
    let got = never_retrieved(&reports);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].to_string().contains("set after an early read"));
}

#[test]
fn f6_a_promise_outliving_its_loop_or_made_without_one_never_panics() {
    let (lp, reports) = recording_loop();
    // Failed while the loop runs (in an `Option`: a future's output that is
    // itself awaitable is a lint).
    let failed = |what: &'static str| async move {
        let p: Promise<u32> = Promise::new();
        p.set_error(what).unwrap();
        Some(p)
    };
    let survivor = lp.run_until_complete(failed("outlives the run"));
    let orphan = lp.run_until_complete(failed("outlives the loop"));
    // The loop is closed but alive: the report still goes to its handler.
    lp.close().unwrap();
    drop(survivor);
    assert_eq!(never_retrieved(&reports).len(), 1);
    // The loop is gone: the report goes to standard error, no panic.
    drop(lp);
    drop(orphan);
    // Never on a loop at all.
    let no_loop: Promise<u32> = Promise::new();
    no_loop.set_error("no loop at all").unwrap();
    drop(no_loop);
    assert_eq!(never_retrieved(&reports).len(), 1);
}

#[test]
fn f6_a_failed_promise_dropped_with_its_task_at_loop_teardown_is_reported_there() {
    let (lp, reports) = recording_loop();
    let p: Promise<u32> = Promise::new();
    lp.spawn({
        let p = p.clone();
        async move {
            // Holds the promise until the loop cancels the task.
            std::future::pending::<()>().await;
            drop(p);
        }
    })
    .unwrap()
    .detach();
    lp.run_until_complete(async { p.set_error("unread at teardown").unwrap() })
        .unwrap();
    drop(p);
    assert!(reports.borrow().is_empty(), "the task still holds it");
    lp.close().unwrap(); // drops the task's future
    let got = never_retrieved(&reports);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].error_message(), Some("unread at teardown"));
}

// ---------------------------------------------------------------- Q4

#[test]
fn q4_a_task_that_releases_and_reacquires_queues_behind_the_waiter_it_handed_the_permit() {
    ringloop::run(async {
        let sem = Semaphore::new(1);
        let log = new_log();
        let permit = sem.acquire().await;
        let waiter = spawn({
            let (sem, log) = (sem.clone(), log.clone());
            async move {
                let _p = sem.acquire().await;
                log.borrow_mut().push("waiter");
                yield_now().await;
            }
        });
        yield_now().await; // the waiter queues
        drop(permit); // handed to the waiter, which has not run yet
        assert!(sem.locked());
        assert!(sem.try_acquire().is_err(), "try_acquire barged");
        let again = sem.acquire().await; // queues behind the waiter
        log.borrow_mut().push("releaser");
        drop(again);
        waiter.await.unwrap();
        assert_eq!(*log.borrow(), ["waiter", "releaser"]);
        assert_eq!(sem.available_permits(), 1);
    })
    .unwrap();
}

#[test]
fn q4_a_manual_release_of_a_bounded_semaphore_also_hands_off() {
    ringloop::run(async {
        let sem = BoundedSemaphore::new(2);
        let log = new_log();
        sem.acquire().await.forget();
        sem.acquire().await.forget();
        let waiters: Vec<_> = (0..2)
            .map(|i| {
                let (sem, log) = (sem.clone(), log.clone());
                spawn(async move {
                    sem.acquire().await.forget();
                    log.borrow_mut().push(i);
                })
            })
            .collect();
        yield_now().await;
        sem.release().unwrap(); // to waiter 0
        assert!(sem.try_acquire().is_err());
        let late = spawn({
            let (sem, log) = (sem.clone(), log.clone());
            async move {
                sem.acquire().await.forget();
                log.borrow_mut().push(9);
            }
        });
        sem.release().unwrap(); // to waiter 1, not to `late`
        for w in waiters {
            w.await.unwrap();
        }
        sem.release().unwrap(); // to `late`
        late.await.unwrap();
        assert_eq!(*log.borrow(), [0, 1, 9]);
        assert_eq!(sem.available_permits(), 0);
    })
    .unwrap();
}

// ---------------------------------------------------------------- F7

#[test]
fn f7_a_removed_promise_callback_never_runs_and_removal_counts_registrations() {
    ringloop::run(async {
        let p: Promise<u32> = Promise::new();
        let log = new_log();
        let add = |i: u32| {
            let log = log.clone();
            p.add_done_callback(move |_| log.borrow_mut().push(i))
        };
        let (one, two, three) = (add(1), add(2), add(3));
        assert_ne!(one, two);
        assert_eq!(p.remove_done_callback(two), 1);
        assert_eq!(p.remove_done_callback(two), 0, "already removed");
        let other: Promise<u32> = Promise::new();
        assert_eq!(other.remove_done_callback(three), 0, "not this promise's");
        p.set_result(7).unwrap();
        // Scheduled at completion: removing now is too late, as in asyncio.
        assert_eq!(p.remove_done_callback(one), 0);
        yield_until(|| log.borrow().len() == 2).await;
        yield_now().await;
        assert_eq!(*log.borrow(), [1, 3]);
        // On a finished promise: scheduled at once, nothing to remove.
        let late = add(4);
        assert_eq!(p.remove_done_callback(late), 0);
        yield_until(|| log.borrow().len() == 3).await;
        assert_eq!(*log.borrow(), [1, 3, 4]);
    })
    .unwrap();
}

#[test]
fn f7_a_removed_task_callback_never_runs_from_the_task_or_its_handle() {
    ringloop::run(async {
        let task = spawn(async { yield_now().await });
        let log = new_log();
        let add = |i: u32| {
            let log = log.clone();
            move |_: &ringloop::TaskHandle| log.borrow_mut().push(i)
        };
        let handle = task.handle();
        let one = task.add_done_callback(add(1));
        let two = handle.add_done_callback(add(2));
        let three = task.add_done_callback(add(3));
        assert_eq!(task.remove_done_callback(two), 1);
        assert_eq!(handle.remove_done_callback(three), 1);
        assert_eq!(handle.remove_done_callback(three), 0);
        task.await.unwrap();
        assert_eq!(handle.remove_done_callback(one), 0, "already scheduled");
        yield_until(|| !log.borrow().is_empty()).await;
        yield_now().await;
        assert_eq!(*log.borrow(), [1]);
    })
    .unwrap();
}

#[test]
fn f7_a_removed_callback_is_dropped_and_may_add_another_as_it_goes() {
    ringloop::run(async {
        let p: Promise<()> = Promise::new();
        let ran = new_log();
        // Dropping the removed callback registers a new one.
        struct OnDrop(Option<Box<dyn FnOnce()>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                if let Some(f) = self.0.take() {
                    f();
                }
            }
        }
        let on_drop = OnDrop(Some(Box::new({
            let (p, ran) = (p.clone(), ran.clone());
            move || {
                p.add_done_callback(move |_| ran.borrow_mut().push("added by a drop"));
            }
        })));
        let id = p.add_done_callback(move |_| drop(on_drop));
        assert_eq!(p.remove_done_callback(id), 1);
        p.set_result(()).unwrap();
        yield_until(|| !ran.borrow().is_empty()).await;
        assert_eq!(*ran.borrow(), ["added by a drop"]);

        let task = spawn(async { yield_now().await });
        let ran2 = new_log();
        let on_drop = OnDrop(Some(Box::new({
            let (h, ran2) = (task.handle(), ran2.clone());
            move || {
                h.add_done_callback(move |_| ran2.borrow_mut().push("added by a drop"));
            }
        })));
        let id = task.add_done_callback(move |_| drop(on_drop));
        assert_eq!(task.remove_done_callback(id), 1);
        task.await.unwrap();
        yield_until(|| !ran2.borrow().is_empty()).await;
        assert_eq!(*ran2.borrow(), ["added by a drop"]);
    })
    .unwrap();
}
