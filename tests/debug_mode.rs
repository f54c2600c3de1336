//! Debug mode and the exception handler: slow polls are reported naming
//! the task, panicking callbacks are reported and the loop goes on, and a
//! panic nobody retrieved is reported as "Task exception was never
//! retrieved" (asyncio's debug mode and `call_exception_handler`).

use std::cell::RefCell;
use std::future::pending;
use std::rc::Rc;
use std::time::Duration;

use ringloop::{
    Builder, EventLoop, ExceptionContext, ExceptionKind, Handle, Promise, spawn, spawn_named,
    yield_now,
};

type Reports = Rc<RefCell<Vec<ExceptionContext>>>;

/// Installs a handler that records every report.
fn record_reports(lp: &EventLoop) -> Reports {
    let reports = Reports::default();
    let r = reports.clone();
    lp.set_exception_handler(move |ctx| r.borrow_mut().push(ctx.clone()));
    reports
}

fn kinds(reports: &Reports) -> Vec<ExceptionKind> {
    reports
        .borrow()
        .iter()
        .map(ExceptionContext::kind)
        .collect()
}

/// A task body whose first two polls each block the thread for `d`.
async fn two_slow_polls(d: Duration) {
    std::thread::sleep(d);
    yield_now().await;
    std::thread::sleep(d);
}

fn slow_polls_of(reports: &Reports, task: &str) -> Vec<ExceptionContext> {
    reports
        .borrow()
        .iter()
        .filter(|c| c.kind() == ExceptionKind::SlowPoll && c.task_name() == Some(task))
        .cloned()
        .collect()
}

// ------------------------------------------------------------ slow polls

#[test]
fn debug_mode_reports_each_slow_poll_naming_the_task() {
    let lp = Builder::new()
        .debug(true)
        .slow_callback_duration(Duration::from_millis(20))
        .build()
        .unwrap();
    assert!(lp.get_debug());
    let reports = record_reports(&lp);
    let t = lp
        .spawn_named("sluggish", two_slow_polls(Duration::from_millis(50)))
        .unwrap();
    lp.run_until_complete(t).unwrap().unwrap();

    let slow = slow_polls_of(&reports, "sluggish");
    assert_eq!(slow.len(), 2, "one report per slow poll: {slow:?}");
    for ctx in &slow {
        assert!(ctx.message().contains("sluggish"), "{}", ctx.message());
        assert!(ctx.message().contains("took"), "{}", ctx.message());
        assert_eq!(ctx.panic_message(), None);
    }
}

#[test]
fn debug_mode_default_threshold_reports_polls_over_100ms() {
    let lp = Builder::new().debug(true).build().unwrap();
    let reports = record_reports(&lp);
    let t = lp
        .spawn_named("very slow", two_slow_polls(Duration::from_millis(120)))
        .unwrap();
    lp.run_until_complete(t).unwrap().unwrap();
    assert_eq!(slow_polls_of(&reports, "very slow").len(), 2);
}

#[test]
fn debug_mode_does_not_report_fast_polls() {
    // A generous threshold: these polls take microseconds.
    let lp = Builder::new()
        .debug(true)
        .slow_callback_duration(Duration::from_millis(500))
        .build()
        .unwrap();
    let reports = record_reports(&lp);
    lp.run_until_complete(async {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                spawn(async {
                    for _ in 0..3 {
                        yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    })
    .unwrap();
    assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());
}

#[test]
fn slow_polls_are_not_reported_without_debug_mode() {
    let lp = Builder::new()
        .debug(false)
        .slow_callback_duration(Duration::from_millis(20))
        .build()
        .unwrap();
    assert!(!lp.get_debug());
    let reports = record_reports(&lp);
    let t = lp
        .spawn_named("sluggish", two_slow_polls(Duration::from_millis(50)))
        .unwrap();
    lp.run_until_complete(t).unwrap().unwrap();
    assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());
}

#[test]
fn set_debug_toggles_debug_mode_and_keeps_the_threshold() {
    let lp = Builder::new()
        .debug(false)
        .slow_callback_duration(Duration::from_millis(20))
        .build()
        .unwrap();
    let reports = record_reports(&lp);
    lp.set_debug(true);
    assert!(lp.get_debug());
    // 50 ms is over the configured 20 ms but under the 100 ms default.
    let t = lp
        .spawn_named("after set_debug", two_slow_polls(Duration::from_millis(50)))
        .unwrap();
    lp.run_until_complete(t).unwrap().unwrap();
    assert_eq!(slow_polls_of(&reports, "after set_debug").len(), 2);

    lp.set_debug(false);
    assert!(!lp.get_debug());
    let t = lp
        .spawn_named("after unset", two_slow_polls(Duration::from_millis(50)))
        .unwrap();
    lp.run_until_complete(t).unwrap().unwrap();
    assert!(slow_polls_of(&reports, "after unset").is_empty());
}

// ------------------------------------------------------ callback panics

#[test]
fn a_panicking_callback_is_reported_and_the_loop_goes_on() {
    let lp = EventLoop::new().unwrap();
    let reports = record_reports(&lp);
    let events = Rc::new(RefCell::new(Vec::new()));
    lp.call_soon(|| panic!("soon boom")).unwrap();
    let e = events.clone();
    lp.call_soon(move || e.borrow_mut().push("after soon"))
        .unwrap();
    lp.call_later(Duration::from_millis(1), || panic!("later boom"))
        .unwrap();
    let out = lp
        .run_until_complete(async {
            ringloop::sleep(Duration::from_millis(10)).await;
            "loop still running"
        })
        .unwrap();
    assert_eq!(out, "loop still running");
    assert_eq!(*events.borrow(), ["after soon"]);

    let reports = reports.borrow();
    let got: Vec<_> = reports
        .iter()
        .map(|c| (c.kind(), c.message(), c.task_name(), c.panic_message()))
        .collect();
    assert_eq!(
        got,
        [
            (
                ExceptionKind::CallbackPanicked,
                "Exception in callback",
                None,
                Some("soon boom")
            ),
            (
                ExceptionKind::CallbackPanicked,
                "Exception in callback",
                None,
                Some("later boom")
            ),
        ]
    );
}

#[test]
fn panicking_done_callbacks_are_reported() {
    let lp = EventLoop::new().unwrap();
    let reports = record_reports(&lp);
    let events = Rc::new(RefCell::new(Vec::new()));
    lp.run_until_complete(async {
        let t = spawn(async {});
        t.add_done_callback(|_| panic!("task callback boom"));
        let e = events.clone();
        t.add_done_callback(move |_| e.borrow_mut().push("next task callback"));
        let p: Promise<()> = Promise::new();
        p.add_done_callback(|_| panic!("promise callback boom"));
        p.set_result(()).unwrap();
        t.await.unwrap();
        for _ in 0..3 {
            yield_now().await;
        }
    })
    .unwrap();
    assert_eq!(*events.borrow(), ["next task callback"]);
    let mut panics: Vec<_> = reports
        .borrow()
        .iter()
        .map(|c| (c.kind(), c.panic_message().map(str::to_string)))
        .collect();
    panics.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        panics,
        [
            (
                ExceptionKind::CallbackPanicked,
                Some("promise callback boom".to_string())
            ),
            (
                ExceptionKind::CallbackPanicked,
                Some("task callback boom".to_string())
            ),
        ]
    );
}

#[test]
fn a_panicking_exception_handler_does_not_stop_the_loop() {
    let lp = EventLoop::new().unwrap();
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    lp.set_exception_handler(move |_| {
        *c.borrow_mut() += 1;
        panic!("the handler itself panicked");
    });
    lp.call_soon(|| panic!("callback boom")).unwrap();
    let out = lp
        .run_until_complete(async {
            yield_now().await;
            let t = spawn(async { 3 });
            t.await.unwrap()
        })
        .unwrap();
    assert_eq!(out, 3);
    assert_eq!(*calls.borrow(), 1);
}

#[test]
fn clear_exception_handler_stops_calling_the_custom_handler() {
    let lp = EventLoop::new().unwrap();
    let reports = record_reports(&lp);
    lp.call_soon(|| panic!("first")).unwrap();
    lp.run_until_complete(yield_now()).unwrap();
    assert_eq!(kinds(&reports), [ExceptionKind::CallbackPanicked]);

    lp.clear_exception_handler();
    lp.call_soon(|| panic!("second, to standard error"))
        .unwrap();
    lp.run_until_complete(yield_now()).unwrap();
    assert_eq!(reports.borrow().len(), 1);
}

// ------------------------------------------- "never retrieved" reports

#[test]
fn a_detached_panicking_task_is_reported_as_never_retrieved() {
    let lp = EventLoop::new().unwrap();
    let reports = record_reports(&lp);
    lp.run_until_complete(async {
        spawn_named("detached", async {
            yield_now().await;
            panic!("nobody will look");
        })
        .detach();
        for _ in 0..3 {
            yield_now().await;
        }
    })
    .unwrap();
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let ctx = &reports[0];
    assert_eq!(ctx.kind(), ExceptionKind::NeverRetrieved);
    assert_eq!(ctx.message(), "Task exception was never retrieved");
    assert_eq!(ctx.task_name(), Some("detached"));
    assert_eq!(ctx.panic_message(), Some("nobody will look"));
}

#[test]
fn a_panicking_task_dropped_unawaited_is_reported_once_at_the_drop() {
    let lp = EventLoop::new().unwrap();
    let reports = record_reports(&lp);
    let t = lp.spawn(async { panic!("dropped unread") }).unwrap();
    let name = t.name();
    lp.run_until_complete(async {
        while !t.is_done() {
            yield_now().await;
        }
    })
    .unwrap();
    assert!(
        reports.borrow().is_empty(),
        "the handle could still read it"
    );
    drop(t);
    lp.run_until_complete(yield_now()).unwrap();
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ExceptionKind::NeverRetrieved);
    assert_eq!(reports[0].task_name(), Some(name.as_str()));
    assert_eq!(reports[0].panic_message(), Some("dropped unread"));
}

#[test]
fn retrieved_panics_cancellations_and_outputs_are_not_reported() {
    let lp = EventLoop::new().unwrap();
    let reports = record_reports(&lp);
    lp.run_until_complete(async {
        // Awaited: retrieved.
        let err = spawn(async { panic!("retrieved") }).await.unwrap_err();
        assert!(err.is_panic());
        // Cancelled, awaited or not.
        let c = spawn(pending::<()>());
        yield_now().await;
        assert!(c.cancel());
        assert!(c.await.unwrap_err().is_cancelled());
        let dropped = spawn(pending::<()>());
        yield_now().await;
        drop(dropped);
        // Finished normally, output never read.
        let unread = spawn(async { String::from("ignored") });
        yield_now().await;
        assert!(unread.is_done());
        drop(unread);
        spawn(async { 1 }).detach();
        for _ in 0..3 {
            yield_now().await;
        }
    })
    .unwrap();
    assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());
}

#[test]
fn a_panic_in_an_unawaited_cancelled_tasks_cleanup_is_reported() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("cleanup panicked");
        }
    }
    let lp = EventLoop::new().unwrap();
    let reports = record_reports(&lp);
    lp.run_until_complete(async {
        let t = spawn_named("bad cleanup", async {
            let _g = PanicOnDrop;
            pending::<()>().await;
        });
        let h = t.handle();
        yield_now().await;
        drop(t); // cancels it; nobody will see how the cancellation went
        while !h.is_done() {
            yield_now().await;
        }
        // The loop is fine.
        assert!(Handle::try_current().is_some());
    })
    .unwrap();
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].kind(), ExceptionKind::NeverRetrieved);
    assert_eq!(reports[0].task_name(), Some("bad cleanup"));
    assert_eq!(reports[0].panic_message(), Some("cleanup panicked"));
}
