//! Regression tests for bugs found in review of the loop core; each test
//! names the failure it guards against.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use ringloop::{Builder, EventLoop, ExceptionKind, Task};

/// Runs `f` on its own thread and fails if it does not finish in 10 s
/// (the bug being guarded against is a hang).
fn within_10s(name: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{name}: did not finish within 10 s"));
}

fn nfds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The slow-poll report used to run the exception handler between a task
/// finishing and its completion; a handler dropping that task's handle and
/// spawning made the task complete twice, unregistering another live task.
#[test]
fn slow_poll_handler_dropping_the_task_does_not_unregister_another() {
    let lp = Builder::new()
        .debug(true)
        .slow_callback_duration(Duration::ZERO)
        .build()
        .unwrap();
    let slot: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let spawned: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let (s2, sp2) = (slot.clone(), spawned.clone());
    lp.set_exception_handler(move |ctx| {
        if ctx.kind() == ExceptionKind::SlowPoll && ctx.task_name() == Some("A") {
            if let Some(a) = s2.borrow_mut().take() {
                drop(a);
                *sp2.borrow_mut() = Some(ringloop::spawn_named("B", std::future::pending()));
            }
        }
    });
    *slot.borrow_mut() = Some(lp.spawn_named("A", async {}).unwrap());
    lp.run_until_complete(ringloop::sleep(Duration::from_millis(5)))
        .unwrap();
    let names: Vec<String> = lp.all_tasks().iter().map(|t| t.name()).collect();
    assert_eq!(names, vec!["B".to_owned()], "B must stay registered");
    drop(spawned.borrow_mut().take());
    assert!(lp.all_tasks().is_empty());
}

/// Dropping a Task whose future owned the last reference to its loop used
/// to spin forever in the loop's teardown.
#[test]
fn dropping_a_task_that_owns_its_loop_does_not_hang() {
    within_10s("task owning its loop", || {
        let lp = Rc::new(EventLoop::new().unwrap());
        let lp2 = lp.clone();
        let t = lp
            .spawn(async move {
                let _keep = lp2;
                std::future::pending::<()>().await
            })
            .unwrap();
        drop(lp);
        drop(t);
    });
}

/// Closing a loop whose pending `call_later` callback owns an armed sleep
/// used to panic with "RefCell already borrowed".
#[test]
fn close_drops_callbacks_owning_sleeps_without_panicking() {
    let lp = EventLoop::new().unwrap();
    let mut s = Some(ringloop::sleep(Duration::from_secs(3600)));
    let armed = lp
        .run_until_complete(poll_fn(move |cx| {
            let mut sl = s.take().unwrap();
            assert!(Pin::new(&mut sl).poll(cx).is_pending());
            Poll::Ready(sl)
        }))
        .unwrap();
    let dropped = Rc::new(Cell::new(false));
    let d2 = dropped.clone();
    lp.call_later(Duration::from_secs(3600), move || {
        drop(armed);
        d2.set(true);
    })
    .unwrap();
    lp.close().unwrap();
    assert!(!dropped.get(), "the callback never ran");
    assert!(lp.is_closed());
}

/// A wake from another thread after the loop was dropped used to keep the
/// task, the scheduler and its eventfd alive forever.
#[test]
fn late_cross_thread_wakes_leak_no_fd() {
    // Other tests open and close fds concurrently: compare with slack.
    let before = nfds();
    for _ in 0..100 {
        let (tx, rx) = mpsc::channel::<std::task::Waker>();
        {
            let lp = EventLoop::new().unwrap();
            lp.spawn(poll_fn(move |cx| {
                tx.send(cx.waker().clone()).unwrap();
                Poll::<()>::Pending
            }))
            .unwrap()
            .detach();
            lp.run_until_complete(ringloop::sleep(Duration::from_millis(1)))
                .unwrap();
        }
        let w = rx.recv().unwrap();
        std::thread::spawn(move || w.wake()).join().unwrap();
    }
    let after = nfds();
    assert!(
        after < before + 20,
        "fds before {before}, after {after}: leaked"
    );
}

/// A future and its output both panicking in Drop used to leave the task
/// RUNNING forever (and the loop's drop hanging).
#[test]
fn double_panicking_drop_still_completes_the_task() {
    #[derive(Debug)]
    struct Out;
    impl Drop for Out {
        fn drop(&mut self) {
            panic!("output drop")
        }
    }
    struct F;
    impl Drop for F {
        fn drop(&mut self) {
            panic!("future drop")
        }
    }
    impl Future for F {
        type Output = Out;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Out> {
            Poll::Ready(Out)
        }
    }
    within_10s("double panicking drop", || {
        let lp = EventLoop::new().unwrap();
        let t = lp.spawn(F).unwrap();
        lp.run_until_complete(ringloop::yield_now()).unwrap();
        assert!(t.is_done());
        assert!(lp.all_tasks().is_empty());
        let err = lp.run_until_complete(t).unwrap().unwrap_err();
        assert!(err.is_panic());
        drop(lp);
    });
}

/// asyncio.run runs the done callbacks of the tasks it cancels at shutdown.
#[test]
fn run_runs_done_callbacks_of_tasks_cancelled_at_shutdown() {
    let ran = Rc::new(Cell::new(false));
    let r2 = ran.clone();
    ringloop::run(async move {
        let t = ringloop::spawn(std::future::pending::<()>());
        t.add_done_callback(move |h| r2.set(h.is_cancelled()));
        t.detach();
        ringloop::yield_now().await;
    })
    .unwrap();
    assert!(ran.get(), "the done callback ran, seeing a cancelled task");
}

/// A stop() that arrives as a run ends must not stop the next run.
#[test]
fn stop_does_not_leak_into_the_next_run() {
    let lp = EventLoop::new().unwrap();
    lp.run_until_complete(async {
        ringloop::Handle::current().stop().unwrap();
    })
    .unwrap();
    lp.run_until_complete(ringloop::sleep(Duration::from_millis(5)))
        .expect("the second run is not stopped");
}

/// A task that cancels itself and then returns ends cancelled (asyncio).
#[test]
fn a_task_cancelled_during_its_last_poll_ends_cancelled() {
    ringloop::run(async {
        let t = ringloop::spawn(async {
            ringloop::current_task().unwrap().cancel();
            5
        });
        let r = t.await;
        assert!(r.unwrap_err().is_cancelled());
    })
    .unwrap();
}

/// A panic while dropping a cancelled future is a panic, not a cancellation.
#[test]
fn panic_in_cancelled_cleanup_is_reported_as_panic_not_cancelled() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("cleanup failed")
        }
    }
    ringloop::run(async {
        let t = ringloop::spawn(async {
            let _b = Bomb;
            std::future::pending::<()>().await
        });
        ringloop::yield_now().await;
        let h = t.handle();
        assert!(t.cancel());
        let err = t.await.unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert!(!h.is_cancelled());
    })
    .unwrap();
}

/// A task's future is pinned and may reference its own locals; cancelling
/// it used to move it out of its slot before dropping it (use-after-free of
/// the self-references; found when a listener's accept guard borrowed the
/// listener inside one async block).
#[test]
fn a_cancelled_self_referential_future_is_dropped_in_place() {
    struct Pinned {
        at: Cell<usize>,
        dropped_in_place: Rc<Cell<bool>>,
    }
    impl Drop for Pinned {
        fn drop(&mut self) {
            self.dropped_in_place
                .set(self.at.get() == self as *const Pinned as usize);
        }
    }
    let ok = Rc::new(Cell::new(false));
    let ok2 = ok.clone();
    ringloop::run(async move {
        let t = ringloop::spawn(async move {
            let p = Pinned {
                at: Cell::new(0),
                dropped_in_place: ok2,
            };
            // A reference to a local, held across an await: the future is
            // self-referential from here on.
            let r = &p;
            r.at.set(r as *const Pinned as usize);
            std::future::pending::<()>().await;
            r.at.get()
        });
        ringloop::yield_now().await;
        drop(t); // synchronous cancel: drops the suspended future
    })
    .unwrap();
    assert!(ok.get(), "the future was moved before being dropped");
}

/// Reads waiting for data held every slot of the CQ budget (ops in the
/// kernel never exceeded `cq_entries`), so the writes that would feed them
/// waited in the user-space backlog forever: a loop with CQ = 4 hung on 5
/// socketpairs whose reads were submitted before their writes (found by
/// `stress_small_ring`).
#[test]
fn reads_filling_the_cq_budget_do_not_starve_the_writes_that_feed_them() {
    within_10s("reads filling the CQ budget", || {
        let lp = Builder::new().entries(2).cq_entries(4).build().unwrap();
        let got = lp
            .run_until_complete(async {
                let pairs: Vec<_> = (0..5)
                    .map(|_| ringloop::net::UnixStream::pair().unwrap())
                    .collect();
                let mut readers = Vec::new();
                let mut writers = Vec::new();
                for (i, (a, b)) in pairs.into_iter().enumerate() {
                    readers.push(ringloop::spawn(async move {
                        let (r, buf) = b.read(Vec::with_capacity(8)).await;
                        assert_eq!(r.unwrap(), 1);
                        buf[0]
                    }));
                    writers.push(async move {
                        let (r, _) = a.write_all(vec![i as u8]).await;
                        r.unwrap();
                        a
                    });
                }
                // Every read reaches the ring before any write is made.
                ringloop::yield_now().await;
                let _keep = ringloop::gather(writers).await.unwrap();
                ringloop::gather_tasks(readers).await.unwrap()
            })
            .unwrap();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    });
}
