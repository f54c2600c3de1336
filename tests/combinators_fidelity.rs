//! Combinator fidelity to asyncio, items added after the first review:
//! zero timeouts and passed deadlines (W3, W8), nested scopes (W9),
//! rescheduling a finished scope (W10), shielding something already done
//! (SH4), `wait(.., FirstException)` with `Err` outputs (WA3),
//! `as_completed` disarming its timer (WA4), a task group's body failing
//! (TG4), and tasks or promises kept by their owner (K1).

use std::cell::Cell;
use std::future::{Future, pending, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ringloop::{
    ChildError, Promise, ReturnWhen, TaskGroup, TimeoutError, as_completed_tasks, gather,
    gather_tasks, shield, sleep, spawn, task_group, timeout, timeout_at, try_wait, wait, wait_for,
    wait_for_task, yield_now,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn flag() -> Rc<Cell<bool>> {
    Rc::new(Cell::new(false))
}

/// Sets its flag when dropped (the future's `finally`).
struct DropGuard(Rc<Cell<bool>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Polls `fut` exactly once (in the calling task) and reports what it said.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

// ---- W3: zero timeout ------------------------------------------------------

#[test]
fn w3_zero_timeout_never_starts_a_fresh_future() {
    ringloop::run(async {
        let started = flag();
        let dropped = flag();
        let (s, guard) = (started.clone(), DropGuard(dropped.clone()));
        let r = wait_for(
            async move {
                let _guard = guard;
                s.set(true);
                7
            },
            Some(Duration::ZERO),
        )
        .await;
        assert_eq!(r, Err(TimeoutError::default()));
        assert!(!started.get(), "a zero timeout must not start the future");
        assert!(dropped.get(), "the unstarted future was dropped");
    })
    .unwrap();
}

#[test]
fn w3_zero_timeout_gives_the_output_of_a_done_task_or_promise() {
    ringloop::run(async {
        let task = spawn(async { 5 });
        let mut kept = spawn(async { 6 });
        yield_now().await;
        assert_eq!(
            wait_for_task(task, Some(Duration::ZERO))
                .await
                .unwrap()
                .unwrap(),
            5
        );
        assert_eq!(
            wait_for_task(&mut kept, Some(Duration::ZERO))
                .await
                .unwrap()
                .unwrap(),
            6
        );

        let p: Promise<&str> = Promise::new();
        p.set_result("done").unwrap();
        assert_eq!(
            wait_for_task(p.clone(), Some(Duration::ZERO))
                .await
                .unwrap()
                .unwrap(),
            "done"
        );
    })
    .unwrap();
}

#[test]
fn w3_zero_timeout_cancels_a_pending_task_before_it_ever_runs() {
    ringloop::run(async {
        let ran = flag();
        let r = ran.clone();
        let task = spawn(async move { r.set(true) });
        let out = wait_for_task(task, Some(Duration::ZERO)).await;
        assert!(out.is_err(), "a pending task times out at once");
        yield_now().await;
        assert!(!ran.get(), "the cancelled task never ran");

        let p: Promise<u8> = Promise::new();
        assert!(
            wait_for_task(p.clone(), Some(Duration::ZERO))
                .await
                .is_err()
        );
        assert!(
            !p.is_cancelled(),
            "a promise handed by clone is not cancelled"
        );
    })
    .unwrap();
}

// ---- W8: a scope entered after its deadline --------------------------------

#[test]
fn w8_scope_entered_after_its_deadline_stops_at_the_first_suspension() {
    ringloop::run(async {
        let (before, after) = (flag(), flag());
        let (b, a) = (before.clone(), after.clone());
        let scope = timeout(Duration::ZERO);
        let r = scope
            .run(async move {
                b.set(true);
                yield_now().await;
                a.set(true);
            })
            .await;
        assert_eq!(r, Err(TimeoutError::default()));
        assert!(before.get(), "the body runs up to its first suspension");
        assert!(!after.get(), "the expiry arrives before the body resumes");
        assert!(scope.expired());

        let past = timeout_at(Some(Instant::now() - ms(5)));
        assert_eq!(
            past.run(async { 3 }).await,
            Ok(3),
            "a body that never suspends finishes"
        );
        assert!(!past.expired());
    })
    .unwrap();
}

// ---- W9: nested scopes -----------------------------------------------------

/// Runs `inner` inside `outer` with a body that never finishes on its own;
/// returns the outer result and whether the outer body went on after the
/// inner scope.
async fn nested(
    outer: &ringloop::TimeoutScope,
    inner: &ringloop::TimeoutScope,
) -> (Result<Result<(), TimeoutError>, TimeoutError>, bool) {
    let went_on = flag();
    let w = went_on.clone();
    let r = outer
        .run(async {
            let r = inner.run(pending::<()>()).await;
            w.set(true);
            // A second suspension: an outer expiry due now would land here.
            yield_now().await;
            r
        })
        .await;
    (r, went_on.get())
}

#[test]
fn w9_equal_deadlines_the_outer_scope_reports_and_its_body_stops() {
    ringloop::run(async {
        let at = Instant::now() + ms(10);
        let (outer, inner) = (timeout_at(Some(at)), timeout_at(Some(at)));
        let (r, went_on) = nested(&outer, &inner).await;
        assert_eq!(r, Err(TimeoutError::default()));
        assert!(
            !went_on,
            "none of the outer body after the inner scope runs"
        );
        assert!(outer.expired());
        assert!(
            !inner.expired(),
            "the inner scope passed the cancellation through"
        );
    })
    .unwrap();
}

#[test]
fn w9_loop_blocked_past_both_deadlines_the_outer_scope_reports() {
    ringloop::run(async {
        // Runs (and blocks the thread past both deadlines) at the first
        // suspension of the scopes' body.
        let blocker = spawn(async { std::thread::sleep(ms(60)) });
        let (outer, inner) = (timeout(ms(30)), timeout(ms(10)));
        let (r, went_on) = nested(&outer, &inner).await;
        assert_eq!(r, Err(TimeoutError::default()));
        assert!(
            !went_on,
            "none of the outer body after the inner scope runs"
        );
        assert!(outer.expired());
        assert!(!inner.expired());
        blocker.await.unwrap();
    })
    .unwrap();
}

#[test]
fn w9_only_the_inner_deadline_passed_its_timeout_is_a_value() {
    ringloop::run(async {
        let (outer, inner) = (timeout(Duration::from_secs(3600)), timeout(ms(5)));
        let (r, went_on) = nested(&outer, &inner).await;
        assert_eq!(r, Ok(Err(TimeoutError::default())));
        assert!(went_on, "the outer body goes on after the inner timeout");
        assert!(inner.expired());
        assert!(!outer.expired());
    })
    .unwrap();
}

// ---- W10: rescheduling a finished scope ------------------------------------

#[test]
fn w10_rescheduling_a_finished_scope_is_an_error() {
    ringloop::run(async {
        let scope = timeout(ms(50));
        let inside = scope.clone();
        let r = scope
            .run(async move { inside.reschedule(Some(Instant::now() + ms(100))) })
            .await;
        assert!(r.unwrap().is_ok(), "rescheduling a running scope is fine");
        assert!(scope.reschedule(None).is_err(), "the scope has finished");

        let expired = timeout(ms(1));
        assert!(expired.run(pending::<()>()).await.is_err());
        assert!(expired.reschedule(Some(Instant::now() + ms(100))).is_err());

        let unused = timeout(ms(1));
        assert!(
            unused.reschedule(None).is_ok(),
            "not entered yet: may be moved"
        );
    })
    .unwrap();
}

// ---- SH4: shielding something already done ----------------------------------

#[test]
fn sh4_shield_of_something_done_returns_at_once() {
    ringloop::run(async {
        let p: Promise<u32> = Promise::new();
        p.set_result(3).unwrap();
        let mut s = shield(p.clone());
        assert!(
            matches!(poll_once(&mut s).await, Poll::Ready(Ok(3))),
            "a done promise's shield does not suspend"
        );

        let task = spawn(async { 'x' });
        yield_now().await;
        let mut s = shield(task);
        match poll_once(&mut s).await {
            Poll::Ready(r) => assert_eq!(r.unwrap(), 'x'),
            Poll::Pending => panic!("a done task's shield does not suspend"),
        }
    })
    .unwrap();
}

// ---- WA3: FirstException with Err outputs ------------------------------------

#[test]
fn wa3_first_exception_returns_when_a_child_returns_err() {
    ringloop::run(async {
        let failing = spawn(async {
            sleep(ms(5)).await;
            Err::<u8, &str>("bad")
        });
        let slow = spawn(async {
            sleep(Duration::from_secs(3600)).await;
            Ok(1)
        });
        let t0 = Instant::now();
        let (done, pending) = try_wait(
            vec![failing, slow],
            ReturnWhen::FirstException,
            Some(Duration::from_secs(5)),
        )
        .await;
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "returned at the failure"
        );
        assert_eq!((done.len(), pending.len()), (1, 1));
        let mut done = done;
        assert_eq!(done.pop().unwrap().await.unwrap(), Err("bad"));
    })
    .unwrap();
}

#[test]
fn wa3_a_child_that_failed_before_the_call_counts_and_cancelled_does_not() {
    ringloop::run(async {
        let failed = spawn(async { Err::<u8, &str>("early") });
        let panicked = spawn(async {
            if true {
                panic!("early panic");
            }
            Ok::<u8, &str>(0)
        });
        let slow = || {
            spawn(async {
                sleep(Duration::from_secs(3600)).await;
                Ok::<u8, &str>(1)
            })
        };
        yield_now().await;
        let (done, pending) = try_wait(
            vec![failed, slow()],
            ReturnWhen::FirstException,
            Some(Duration::from_secs(5)),
        )
        .await;
        assert_eq!(
            (done.len(), pending.len()),
            (1, 1),
            "an Err before the call counts"
        );
        let (done, pending) = try_wait(
            vec![panicked, slow()],
            ReturnWhen::FirstException,
            Some(Duration::from_secs(5)),
        )
        .await;
        assert_eq!(
            (done.len(), pending.len()),
            (1, 1),
            "a panic before the call counts"
        );
        drop((done, pending));

        let cancelled = slow();
        cancelled.cancel();
        while !cancelled.is_done() {
            yield_now().await;
        }
        assert!(cancelled.is_cancelled());
        let t0 = Instant::now();
        let (done, pending) = try_wait(
            vec![cancelled, slow()],
            ReturnWhen::FirstException,
            Some(ms(30)),
        )
        .await;
        assert!(t0.elapsed() >= ms(30), "a cancelled child is not a failure");
        assert_eq!((done.len(), pending.len()), (1, 1));
    })
    .unwrap();
}

// ---- WA4: as_completed's timer -----------------------------------------------

/// Counts its own clones (each armed timer holds one) and wakes `inner`.
struct Counted(Waker);

impl Wake for Counted {
    fn wake(self: Arc<Self>) {
        self.0.wake_by_ref();
    }
}

#[test]
fn wa4_as_completed_leaves_no_timer_armed_once_every_input_completed() {
    ringloop::run(async {
        let tasks = [1u64, 2].map(|n| {
            spawn(async move {
                sleep(ms(n)).await;
                n
            })
        });
        let mut stream = as_completed_tasks(tasks, Some(Duration::from_secs(3600)));
        let counted: Rc<Cell<Option<Arc<Counted>>>> = Rc::new(Cell::new(None));
        let mut got = Vec::new();
        // Poll through a waker whose clones we can count.
        poll_fn(|cx| {
            let w = counted
                .take()
                .unwrap_or_else(|| Arc::new(Counted(cx.waker().clone())));
            let waker = Waker::from(w.clone());
            let mut ccx = Context::from_waker(&waker);
            let r = stream.poll_next_unpin(&mut ccx);
            drop(waker);
            counted.set(Some(w));
            match r {
                Poll::Ready(Some(v)) if got.is_empty() => {
                    got.push(v.unwrap());
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(Some(v)) => {
                    got.push(v.unwrap());
                    Poll::Ready(())
                }
                Poll::Ready(None) => panic!("the stream ended early"),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        assert_eq!(got, vec![1, 2]);
        // Both inputs done; the stream is still held. Let every done callback run.
        yield_now().await;
        yield_now().await;
        let w = counted.take().unwrap();
        assert_eq!(
            Arc::strong_count(&w),
            1,
            "something (the timeout's timer) still holds the stream's waker"
        );
        drop(stream);
    })
    .unwrap();
}

// ---- TG4: the group's body failing -------------------------------------------

/// Panics when dropped (a child whose cleanup fails).
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("cleanup failed");
    }
}

#[test]
fn tg4_the_body_failing_cancels_the_children_and_is_reported_with_theirs() {
    ringloop::run(async {
        let dropped = flag();
        let d = dropped.clone();
        let r = task_group(|tg: TaskGroup<&'static str>| async move {
            tg.spawn(async move {
                let _g = DropGuard(d);
                pending::<()>().await;
                Ok(())
            })
            .unwrap();
            tg.spawn(async move {
                let _p = PanicOnDrop;
                pending::<()>().await;
                Ok(())
            })
            .unwrap();
            yield_now().await;
            Err::<(), _>("body failed")
        })
        .await;
        let errors = r.expect_err("the body's Err fails the group").into_errors();
        assert!(dropped.get(), "the children were cancelled");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            matches!(errors[0], ChildError::Failed("body failed")),
            "{errors:?}"
        );
        assert!(
            matches!(&errors[1], ChildError::Panicked(e) if e.is_panic()),
            "{errors:?}"
        );
    })
    .unwrap();
}

#[test]
fn tg4_a_nested_groups_failure_is_one_error_of_the_outer_group() {
    ringloop::run(async {
        let sibling_dropped = flag();
        let d = sibling_dropped.clone();
        type Inner = ringloop::TaskGroupError<&'static str>;
        let r = task_group(|outer: TaskGroup<Inner>| async move {
            outer
                .spawn(async move {
                    let _g = DropGuard(d);
                    pending::<()>().await;
                    Ok(())
                })
                .unwrap();
            task_group(|inner: TaskGroup<&'static str>| async move {
                inner.spawn(async { Err::<(), _>("a") }).unwrap();
                inner.spawn(async { Err::<(), _>("b") }).unwrap();
                Ok(())
            })
            .await?;
            Ok(())
        })
        .await;
        let errors = r
            .expect_err("the nested failure fails the outer group")
            .into_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let ChildError::Failed(inner) = &errors[0] else {
            panic!("{errors:?}")
        };
        assert_eq!(inner.errors().len(), 2);
        assert!(
            sibling_dropped.get(),
            "the outer group's other child was cancelled"
        );
    })
    .unwrap();
}

// ---- K1: tasks and promises kept by their owner ------------------------------

async fn slow_value<T>(d: Duration, v: T) -> T {
    sleep(d).await;
    v
}

#[test]
fn k1_shield_and_wait_for_of_a_kept_task_leave_it_to_its_owner() {
    ringloop::run(async {
        let mut task = spawn(slow_value(ms(20), 9));
        assert!(wait_for(shield(&mut task), Some(ms(1))).await.is_err());
        assert!(wait_for_task(&mut task, Some(ms(1))).await.is_err());
        drop(shield(&mut task)); // dropped before it was ever awaited
        assert!(!task.is_done() && !task.is_cancelled());
        assert_eq!(task.await.unwrap(), 9, "the owner still gets the output");
    })
    .unwrap();
}

#[test]
fn k1_gather_wait_and_as_completed_of_kept_tasks_leave_them_running() {
    ringloop::run(async {
        let mut a = spawn(slow_value(ms(20), 'a'));
        let mut b = spawn(slow_value(ms(40), 'b'));
        let mut fast = spawn(async { 'f' });

        // `fast` finishes while the gather waits: its output stays in it.
        assert!(
            wait_for(gather_tasks([&mut fast, &mut a, &mut b]), Some(ms(1)))
                .await
                .is_err()
        );

        let (done, pending) = wait(
            [&mut a, &mut b, &mut fast],
            ReturnWhen::FirstCompleted,
            None,
        )
        .await;
        assert_eq!((done.len(), pending.len()), (1, 2));
        drop((done, pending));

        let mut stream = as_completed_tasks([&mut a, &mut b], Some(ms(1)));
        assert!(matches!(stream.next().await, Some(Err(_))), "timed out");
        drop(stream);

        assert!(!a.is_cancelled() && !b.is_cancelled());
        assert_eq!(fast.await.unwrap(), 'f');
        assert_eq!(
            gather_tasks([&mut a, &mut b]).await.unwrap(),
            vec!['a', 'b']
        );
    })
    .unwrap();
}

#[test]
fn k1_a_kept_promise_survives_its_combinators() {
    ringloop::run(async {
        let p: Promise<u8> = Promise::new();
        assert!(wait_for(shield(p.clone()), Some(ms(1))).await.is_err());
        assert!(wait_for_task(p.clone(), Some(ms(1))).await.is_err());
        let mut kept = p.clone();
        assert!(wait_for(shield(&mut kept), Some(ms(1))).await.is_err());
        drop(gather([p.clone()]));
        yield_now().await;
        assert!(!p.is_done(), "nobody cancelled the promise");
        p.set_result(4).unwrap();
        assert_eq!(kept.await.unwrap(), 4);
        assert_eq!(p.await.unwrap(), 4);
    })
    .unwrap();
}
