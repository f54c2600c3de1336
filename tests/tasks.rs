//! Task behaviours (SEMANTICS T1–T10): scheduling order, joining,
//! cancellation and its cleanup, names, introspection, panics and done
//! callbacks.

use std::cell::RefCell;
use std::future::pending;
use std::rc::Rc;

use futures_util::FutureExt;
use ringloop::{
    EventLoop, ExceptionKind, Handle, Promise, Task, TaskHandle, current_task, spawn, spawn_named,
    yield_now,
};

type Log<T> = Rc<RefCell<Vec<T>>>;

fn new_log<T>() -> Log<T> {
    Rc::default()
}

/// Pushes its name to a log when dropped (a task's `finally`).
struct Cleanup {
    log: Log<String>,
    name: &'static str,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.log
            .borrow_mut()
            .push(format!("{} cleaned up", self.name));
    }
}

fn cleanup(log: &Log<String>, name: &'static str) -> Cleanup {
    Cleanup {
        log: log.clone(),
        name,
    }
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

// ---------------------------------------------------------------- T1

#[test]
fn t1_spawned_task_does_not_run_before_the_spawner_yields() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let e = events.clone();
            let child = spawn(async move { e.borrow_mut().push("child runs") });
            events.borrow_mut().push("spawner continues");
            // Plenty of synchronous work: still no yield, so no child.
            let sum: u64 = (0..10_000u64).map(std::hint::black_box).sum();
            assert_eq!(sum, 49_995_000);
            assert!(!child.is_done());
            events.borrow_mut().push("spawner yields");
            yield_now().await;
            events.borrow_mut().push("spawner resumed");
            child.await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(
        *events.borrow(),
        [
            "spawner continues",
            "spawner yields",
            "child runs",
            "spawner resumed"
        ]
    );
}

#[test]
fn t1_a_task_spawned_on_an_idle_loop_runs_only_once_the_loop_runs() {
    let lp = EventLoop::new().unwrap();
    let events = new_log();
    let e = events.clone();
    let task = lp.spawn(async move { e.borrow_mut().push("ran") }).unwrap();
    assert!(events.borrow().is_empty());
    assert!(!task.is_done());
    lp.run_until_complete(task).unwrap().unwrap();
    assert_eq!(*events.borrow(), ["ran"]);
}

// ---------------------------------------------------------------- T2

#[test]
fn t2_tasks_run_in_the_order_they_were_spawned() {
    let order = new_log();
    ringloop::run({
        let order = order.clone();
        async move {
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let o = order.clone();
                    spawn(async move {
                        o.borrow_mut().push(i);
                        yield_now().await;
                        o.borrow_mut().push(100 + i);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
    })
    .unwrap();
    let expected: Vec<i32> = (0..8).chain(100..108).collect();
    assert_eq!(*order.borrow(), expected);
}

#[test]
fn t2_woken_tasks_run_in_the_order_they_became_ready() {
    let order = new_log();
    ringloop::run({
        let order = order.clone();
        async move {
            let gates: Vec<Promise<()>> = (0..4).map(|_| Promise::new()).collect();
            let tasks: Vec<_> = gates
                .iter()
                .enumerate()
                .map(|(i, gate)| {
                    let (o, gate) = (order.clone(), gate.clone());
                    spawn(async move {
                        gate.await.unwrap();
                        o.borrow_mut().push(i);
                    })
                })
                .collect();
            yield_now().await; // every task is now waiting on its gate
            for i in [2, 0, 3, 1] {
                gates[i].set_result(()).unwrap();
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    })
    .unwrap();
    assert_eq!(*order.borrow(), [2, 0, 3, 1]);
}

// ---------------------------------------------------------------- T3

#[test]
fn t3_awaiting_a_task_gives_its_output() {
    let out = ringloop::run(async {
        let t = spawn(async {
            yield_now().await;
            String::from("output")
        });
        t.await.unwrap()
    })
    .unwrap();
    assert_eq!(out, "output");
}

#[test]
fn t3_awaiting_a_finished_task_returns_at_once() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let mut t = spawn(async { 7 });
            yield_until(|| t.is_done()).await;
            // Ready on the first poll, without the loop.
            assert_eq!((&mut t).now_or_never().map(Result::unwrap), Some(7));

            let t = spawn(async { 8 });
            yield_until(|| t.is_done()).await;
            let e = events.clone();
            let other = spawn(async move { e.borrow_mut().push("other task".to_string()) });
            // Awaiting the finished task does not yield: `other` (ready)
            // has not run when the await returns.
            let v = t.await.unwrap();
            events.borrow_mut().push(format!("got {v}"));
            other.await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(*events.borrow(), ["got 8", "other task"]);
}

// ---------------------------------------------------------------- T4

#[test]
fn t4_cancel_pending_task_returns_true_and_stops_at_next_suspension() {
    let steps = new_log();
    ringloop::run({
        let steps = steps.clone();
        async move {
            let s = steps.clone();
            let t = spawn(async move {
                for i in 0.. {
                    s.borrow_mut().push(i);
                    yield_now().await;
                }
            });
            let h = t.handle();
            yield_until(|| steps.borrow().len() >= 3).await;
            let before = steps.borrow().len();
            assert!(t.cancel(), "cancel() on a pending task returns true");
            // Cancellation is a request: the task finishes at its next turn.
            assert!(!t.is_done());
            let err = t.await.unwrap_err();
            assert!(err.is_cancelled() && !err.is_panic());
            assert!(h.is_done() && h.is_cancelled());
            assert_eq!(steps.borrow().len(), before, "ran after cancellation");
            assert!(!h.cancel(), "cancel() on a finished task returns false");
        }
    })
    .unwrap();
}

#[test]
fn t4_a_task_cancelled_before_it_started_never_runs() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let e = events.clone();
            let t = spawn(async move { e.borrow_mut().push("ran") });
            assert!(t.cancel());
            assert!(t.await.unwrap_err().is_cancelled());
        }
    })
    .unwrap();
    assert!(events.borrow().is_empty(), "{:?}", events.borrow());
}

#[test]
fn t4_a_task_cancelling_itself_runs_on_until_its_next_suspension() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let e = events.clone();
            let t = spawn(async move {
                e.borrow_mut().push("before cancel");
                assert!(current_task().unwrap().cancel());
                e.borrow_mut().push("after cancel, before suspension");
                yield_now().await;
                e.borrow_mut().push("after suspension");
            });
            assert!(t.await.unwrap_err().is_cancelled());
        }
    })
    .unwrap();
    assert_eq!(
        *events.borrow(),
        ["before cancel", "after cancel, before suspension"]
    );
}

#[test]
fn t4_cancel_on_a_finished_task_returns_false_and_changes_nothing() {
    ringloop::run(async {
        let t = spawn(async { 5 });
        yield_until(|| t.is_done()).await;
        assert!(!t.cancel());
        assert!(!t.is_cancelled());
        assert_eq!(t.await.unwrap(), 5);

        let p = spawn(async { panic!("already failed") });
        yield_until(|| p.is_done()).await;
        assert!(!p.cancel());
        let err = p.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), Some("already failed"));
    })
    .unwrap();
}

// ---------------------------------------------------------------- T5

#[test]
fn t5_cancelled_tasks_cleanup_runs_before_its_awaiter_sees_cancelled() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let e = events.clone();
            let victim = spawn(async move {
                let _outer = cleanup(&e, "outer");
                let e = e.clone();
                async move {
                    let _inner = cleanup(&e, "nested");
                    e.borrow_mut().push("victim waiting".to_string());
                    pending::<()>().await;
                }
                .await;
            });
            let victim_handle = victim.handle();
            let e = events.clone();
            let awaiter = spawn(async move {
                let r = victim.await;
                e.borrow_mut().push("awaiter saw the result".to_string());
                r.unwrap_err().is_cancelled()
            });
            yield_until(|| !events.borrow().is_empty()).await;
            assert!(victim_handle.cancel());
            assert!(awaiter.await.unwrap(), "the awaiter gets Cancelled");
        }
    })
    .unwrap();
    let events = events.borrow();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0], "victim waiting");
    let mut cleanups = events[1..3].to_vec();
    cleanups.sort();
    assert_eq!(cleanups, ["nested cleaned up", "outer cleaned up"]);
    assert_eq!(events[3], "awaiter saw the result");
}

#[test]
fn t5_dropping_a_task_cancels_it_and_runs_its_cleanup() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let e = events.clone();
            let t = spawn(async move {
                let _g = cleanup(&e, "dropped task");
                pending::<()>().await;
            });
            let h = t.handle();
            yield_now().await; // let it start
            drop(t);
            yield_until(|| h.is_done()).await;
            assert!(h.is_cancelled());
        }
    })
    .unwrap();
    assert_eq!(*events.borrow(), ["dropped task cleaned up"]);
}

// ---------------------------------------------------------------- T6

#[test]
fn t6_cancelling_a_task_cancels_the_task_it_awaits() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let inner_slot: Rc<RefCell<Option<TaskHandle>>> = Rc::default();
            let (e, slot) = (events.clone(), inner_slot.clone());
            let outer = spawn(async move {
                let e2 = e.clone();
                let inner = spawn(async move {
                    let _g = cleanup(&e2, "inner");
                    e2.borrow_mut().push("inner started".to_string());
                    pending::<()>().await;
                    e2.borrow_mut().push("inner finished".to_string());
                });
                *slot.borrow_mut() = Some(inner.handle());
                let r = inner.await;
                e.borrow_mut().push("outer resumed".to_string());
                r
            });
            yield_until(|| events.borrow().iter().any(|e| e == "inner started")).await;
            let inner = inner_slot.borrow_mut().take().unwrap();
            assert!(!inner.is_done());

            assert!(outer.cancel());
            assert!(outer.await.unwrap_err().is_cancelled());
            yield_until(|| inner.is_done()).await;
            assert!(inner.is_cancelled(), "the awaited task was cancelled too");
        }
    })
    .unwrap();
    assert_eq!(*events.borrow(), ["inner started", "inner cleaned up"]);
}

// ---------------------------------------------------------------- T7

#[test]
fn t7_default_names_are_task_n_with_n_increasing_per_loop() {
    fn number(name: &str) -> u64 {
        name.strip_prefix("Task-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name:?} is not Task-N"))
    }
    let names_in_a_fresh_loop = || {
        ringloop::run(async {
            let tasks: Vec<_> = (0..4).map(|_| spawn(async {})).collect();
            let names: Vec<String> = tasks.iter().map(Task::name).collect();
            for t in tasks {
                t.await.unwrap();
            }
            names
        })
        .unwrap()
    };
    let first = names_in_a_fresh_loop();
    let numbers: Vec<u64> = first.iter().map(|n| number(n)).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    // The counter belongs to the loop: a new loop counts afresh.
    assert_eq!(names_in_a_fresh_loop(), first);
}

#[test]
fn t7_given_names_are_kept_and_can_be_changed() {
    let lp = EventLoop::new().unwrap();
    let t = lp
        .spawn_named("preloaded", async { current_task().unwrap().name() })
        .unwrap();
    assert_eq!(t.name(), "preloaded");
    assert_eq!(lp.run_until_complete(t).unwrap().unwrap(), "preloaded");

    lp.run_until_complete(async {
        let gate: Promise<()> = Promise::new();
        let g = gate.clone();
        let t = spawn_named("worker", async move {
            let before = current_task().unwrap().name();
            g.await.unwrap();
            (before, current_task().unwrap().name())
        });
        assert_eq!(t.name(), "worker");
        assert_eq!(t.handle().name(), "worker");
        yield_now().await;
        t.set_name("renamed");
        assert_eq!(t.handle().name(), "renamed");
        gate.set_result(()).unwrap();
        assert_eq!(
            t.await.unwrap(),
            ("worker".to_string(), "renamed".to_string())
        );
    })
    .unwrap();
}

// ---------------------------------------------------------------- T8

/// The sorted names of `tasks`.
fn names(tasks: Vec<TaskHandle>) -> Vec<String> {
    let mut n: Vec<String> = tasks.iter().map(TaskHandle::name).collect();
    n.sort();
    n
}

#[test]
fn t8_current_task_is_the_running_task_and_none_elsewhere() {
    assert!(current_task().is_none(), "no loop runs here");
    let lp = EventLoop::new().unwrap();
    let in_callback = Rc::new(RefCell::new(None));
    lp.run_until_complete(async {
        // The future given to run_until_complete is not a task.
        assert!(current_task().is_none());
        let t = spawn_named("me", async { current_task().unwrap() });
        let h = t.handle();
        let seen = t.await.unwrap();
        assert_eq!(seen, h);
        assert_eq!(seen.name(), "me");

        let other = spawn(async { current_task().unwrap() });
        let other_h = other.handle();
        assert_eq!(other.await.unwrap(), other_h);
        assert_ne!(other_h, h);

        let slot = in_callback.clone();
        Handle::current()
            .call_soon(move || *slot.borrow_mut() = Some(current_task().is_none()))
            .unwrap();
        yield_now().await;
    })
    .unwrap();
    assert_eq!(*in_callback.borrow(), Some(true), "no task in a callback");
}

#[test]
fn t8_all_tasks_lists_every_unfinished_task() {
    let lp = EventLoop::new().unwrap();
    let preloaded = lp.spawn_named("preloaded", yield_now()).unwrap();
    assert_eq!(names(lp.all_tasks()), ["preloaded"]);
    assert!(ringloop::all_tasks().is_empty(), "no loop runs here");

    lp.run_until_complete(async {
        let gate: Promise<()> = Promise::new();
        let wait = |g: &Promise<()>| {
            let g = g.clone();
            async move { g.await.unwrap() }
        };
        let a = spawn_named("a", wait(&gate));
        let b = spawn_named("b", wait(&gate));
        let quick = spawn_named("quick", async {});
        let me = spawn_named("introspector", async { names(ringloop::all_tasks()) });
        assert_eq!(
            names(ringloop::all_tasks()),
            ["a", "b", "introspector", "preloaded", "quick"]
        );
        // A running task sees itself; finished ones are gone.
        yield_until(|| quick.is_done() && me.is_done()).await;
        assert_eq!(names(ringloop::all_tasks()), ["a", "b"]);
        assert!(me.await.unwrap().contains(&"introspector".to_string()));

        gate.set_result(()).unwrap();
        a.await.unwrap();
        b.await.unwrap();
        assert!(ringloop::all_tasks().is_empty());
    })
    .unwrap();
    assert!(preloaded.is_done());
    assert!(lp.all_tasks().is_empty());
}

// ---------------------------------------------------------------- T9

#[test]
fn t9_a_panicking_task_does_not_stop_the_loop_and_its_awaiter_gets_panicked() {
    let ticks = new_log();
    ringloop::run({
        let ticks = ticks.clone();
        async move {
            let bad = spawn(async {
                yield_now().await;
                panic!("boom");
            });
            let t = ticks.clone();
            let good = spawn(async move {
                for i in 0..5 {
                    t.borrow_mut().push(i);
                    yield_now().await;
                }
                "good done"
            });
            let err = bad.await.unwrap_err();
            assert!(err.is_panic() && !err.is_cancelled());
            assert_eq!(err.panic_message(), Some("boom"));
            assert_eq!(err.to_string(), "task panicked: boom");
            assert_eq!(good.await.unwrap(), "good done");
        }
    })
    .unwrap();
    assert_eq!(*ticks.borrow(), [0, 1, 2, 3, 4]);
}

#[test]
fn t9_an_unretrieved_panic_is_reported_when_its_task_is_dropped() {
    let lp = EventLoop::new().unwrap();
    let reports = new_log();
    let r = reports.clone();
    lp.set_exception_handler(move |ctx| {
        r.borrow_mut().push((
            ctx.kind(),
            ctx.message().to_string(),
            ctx.task_name().map(str::to_string),
            ctx.panic_message().map(str::to_string),
        ));
    });
    let doomed = lp
        .spawn_named("doomed", async { panic!("nobody looked") })
        .unwrap();
    let awaited = lp.spawn(async { panic!("somebody looked") }).unwrap();
    lp.run_until_complete(async {
        yield_until(|| doomed.is_done()).await;
        assert!(awaited.await.unwrap_err().is_panic());
    })
    .unwrap();
    assert!(reports.borrow().is_empty(), "reported before the drop");

    drop(doomed);
    assert_eq!(
        *reports.borrow(),
        [(
            ExceptionKind::NeverRetrieved,
            "Task exception was never retrieved".to_string(),
            Some("doomed".to_string()),
            Some("nobody looked".to_string()),
        )]
    );
}

// ---------------------------------------------------------------- T10

#[test]
fn t10_done_callbacks_run_soon_after_completion_in_the_order_added() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let (p, q) = (Promise::<()>::new(), Promise::<()>::new());
            let (e, p2) = (events.clone(), p.clone());
            let t = spawn_named("watched", async move {
                p2.await.unwrap();
                e.borrow_mut().push("task finished".to_string());
            });
            let (e, q2) = (events.clone(), q.clone());
            let bystander = spawn(async move {
                q2.await.unwrap();
                e.borrow_mut().push("bystander".to_string());
            });
            for i in 1..=3 {
                let e = events.clone();
                t.add_done_callback(move |h: &TaskHandle| {
                    e.borrow_mut()
                        .push(format!("cb{i} {} done={}", h.name(), h.is_done()));
                });
            }
            yield_now().await; // both tasks wait on their promises
            // Both become ready in this order; the callbacks are scheduled
            // when `watched` completes, so after the already-ready bystander.
            p.set_result(()).unwrap();
            q.set_result(()).unwrap();
            bystander.await.unwrap();
            yield_until(|| events.borrow().len() == 5).await;
            t.await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(
        *events.borrow(),
        [
            "task finished",
            "bystander",
            "cb1 watched done=true",
            "cb2 watched done=true",
            "cb3 watched done=true"
        ]
    );
}

#[test]
fn t10_a_done_callback_added_to_a_finished_task_is_scheduled_at_once() {
    ringloop::run(async {
        let events = new_log();
        let t = spawn(async {});
        yield_until(|| t.is_done()).await;
        let e = events.clone();
        t.add_done_callback(move |_| e.borrow_mut().push("late callback"));
        assert!(events.borrow().is_empty(), "must not run inline");
        yield_now().await;
        assert_eq!(*events.borrow(), ["late callback"]);
    })
    .unwrap();
}

#[test]
fn t10_done_callbacks_of_a_cancelled_task_see_it_cancelled() {
    ringloop::run(async {
        let seen = new_log();
        let t = spawn(pending::<()>());
        let s = seen.clone();
        t.add_done_callback(move |h| s.borrow_mut().push(h.is_cancelled()));
        yield_now().await;
        assert!(t.cancel());
        assert!(t.await.unwrap_err().is_cancelled());
        yield_until(|| !seen.borrow().is_empty()).await;
        assert_eq!(*seen.borrow(), [true]);
    })
    .unwrap();
}
