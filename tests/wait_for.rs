//! `wait_for` and timeout scopes (SEMANTICS W1–W7): output in time,
//! cancellation with cleanup on timeout, `None` and zero timeouts,
//! cancellation of the caller, shields, the output winning a tie with the
//! timer, and rescheduling a running `timeout` scope.

use std::cell::Cell;
use std::future::{Future, pending, poll_fn};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use ringloop::{
    TimeoutError, shield, sleep, sleep_until, spawn, timeout, timeout_at, wait_for, yield_now,
};

/// Sets its flag when dropped (the inner future's `finally`).
struct DropGuard(Rc<Cell<bool>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn flag() -> Rc<Cell<bool>> {
    Rc::new(Cell::new(false))
}

/// Sleeps `delay` holding a drop guard, then sets `done` and returns `value`.
async fn work<T>(delay: Duration, done: Rc<Cell<bool>>, dropped: Rc<Cell<bool>>, value: T) -> T {
    let _guard = DropGuard(dropped);
    sleep(delay).await;
    done.set(true);
    value
}

fn assert_took(t0: Instant, at_least: Duration) {
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= at_least,
        "took {elapsed:?}, less than {at_least:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

// ---------------------------------------------------------------- W1

#[test]
fn w1_a_future_finishing_in_time_gives_its_output() {
    let t0 = Instant::now();
    let r = ringloop::run(async {
        let (done, dropped) = (flag(), flag());
        wait_for(work(ms(20), done, dropped, "in time"), Some(ms(1000))).await
    })
    .unwrap();
    assert_eq!(r, Ok("in time"));
    assert_took(t0, ms(20));
    assert!(t0.elapsed() < ms(1000));
}

#[test]
fn w1_a_task_finishing_in_time_gives_its_output() {
    let r = ringloop::run(async {
        let task = spawn(async {
            sleep(ms(10)).await;
            11
        });
        wait_for(task, Some(ms(1000))).await
    })
    .unwrap();
    assert_eq!(r.unwrap().unwrap(), 11);
}

// ---------------------------------------------------------------- W2

#[test]
fn w2_on_timeout_the_inner_future_is_cleaned_up_before_timeout_error() {
    let t0 = Instant::now();
    let (done, dropped) = (flag(), flag());
    ringloop::run({
        let (done, dropped) = (done.clone(), dropped.clone());
        async move {
            let r = wait_for(
                work(ms(1000), done.clone(), dropped.clone(), ()),
                Some(ms(20)),
            )
            .await;
            let e: TimeoutError = r.unwrap_err();
            assert_eq!(e.to_string(), "deadline has elapsed");
            // Cleanup ran before wait_for returned.
            assert!(dropped.get(), "the inner future was not dropped yet");
            assert!(!done.get());
        }
    })
    .unwrap();
    assert!(dropped.get() && !done.get());
    assert_took(t0, ms(20));
    assert!(t0.elapsed() < ms(1000));
}

#[test]
fn w2_on_timeout_an_inner_task_is_cancelled_and_cleaned_up_first() {
    let t0 = Instant::now();
    ringloop::run(async {
        let (done, dropped) = (flag(), flag());
        let task = spawn(work(ms(1000), done.clone(), dropped.clone(), ()));
        let handle = task.handle();
        let r = wait_for(task, Some(ms(20))).await;
        assert!(r.is_err(), "expected a timeout");
        assert!(handle.is_cancelled(), "the inner task was not cancelled");
        assert!(dropped.get(), "the inner task's cleanup had not run");
        // It never resumes.
        sleep(ms(30)).await;
        assert!(!done.get());
    })
    .unwrap();
    assert_took(t0, ms(50));
}

// ---------------------------------------------------------------- W3

#[test]
fn w3_no_timeout_waits_as_long_as_it_takes() {
    let t0 = Instant::now();
    let r = ringloop::run(async {
        let (done, dropped) = (flag(), flag());
        wait_for(work(ms(30), done, dropped, 30), None).await
    })
    .unwrap();
    assert_eq!(r, Ok(30));
    assert_took(t0, ms(30));
}

#[test]
fn w3_a_zero_timeout_never_polls_the_future() {
    ringloop::run(async {
        // Even a future that would be ready at once is not started.
        assert!(wait_for(async { 1 }, Some(Duration::ZERO)).await.is_err());
        let polls = Cell::new(0);
        let dropped = flag();
        let guard = DropGuard(dropped.clone());
        let r = wait_for(
            poll_fn(|_| {
                let _keep = &guard;
                polls.set(polls.get() + 1);
                Poll::<()>::Pending
            }),
            Some(Duration::ZERO),
        )
        .await;
        assert!(r.is_err());
        assert_eq!(polls.get(), 0, "a zero timeout never polls");
        // A sleep not yet over: a timeout too, at once.
        let t0 = Instant::now();
        assert!(
            wait_for(sleep(ms(1000)), Some(Duration::ZERO))
                .await
                .is_err()
        );
        assert!(
            wait_for(pending::<()>(), Some(Duration::ZERO))
                .await
                .is_err()
        );
        assert!(t0.elapsed() < ms(500));
    })
    .unwrap();
}

// ---------------------------------------------------------------- W4

#[test]
fn w4_cancelling_the_task_running_wait_for_drops_the_inner_future() {
    let t0 = Instant::now();
    let (done, dropped) = (flag(), flag());
    ringloop::run({
        let (done, dropped) = (done.clone(), dropped.clone());
        async move {
            let inner = work(ms(300), done.clone(), dropped.clone(), ());
            let waiter = spawn(wait_for(inner, Some(ms(1000))));
            sleep(ms(10)).await;
            assert!(!dropped.get());
            assert!(waiter.cancel());
            let r = waiter.await;
            assert!(r.unwrap_err().is_cancelled());
            assert!(dropped.get(), "the inner future was not dropped");
            sleep(ms(350)).await;
            assert!(!done.get(), "the inner future kept running");
        }
    })
    .unwrap();
    assert!(dropped.get() && !done.get());
    assert_took(t0, ms(360));
}

#[test]
fn w4_dropping_the_wait_for_future_drops_the_inner_future() {
    ringloop::run(async {
        let (done, dropped) = (flag(), flag());
        let inner = work(ms(200), done.clone(), dropped.clone(), ());
        // Poll it once (through a losing race with a short sleep), then drop it.
        let mut w = Box::pin(wait_for(inner, Some(ms(1000))));
        let mut short = Box::pin(sleep(ms(5)));
        poll_fn(|cx| {
            if w.as_mut().poll(cx).is_ready() {
                panic!("the inner future finished first");
            }
            short.as_mut().poll(cx)
        })
        .await;
        assert!(!dropped.get());
        drop(w);
        assert!(dropped.get(), "the inner future was not dropped");
        sleep(ms(250)).await;
        assert!(!done.get());
    })
    .unwrap();
}

// ---------------------------------------------------------------- W5

#[test]
fn w5_wait_for_a_shield_times_out_without_cancelling_the_work() {
    let t0 = Instant::now();
    let (done, dropped) = (flag(), flag());
    ringloop::run({
        let (done, dropped) = (done.clone(), dropped.clone());
        async move {
            let x = work(ms(300), done.clone(), dropped.clone(), 5);
            let r = wait_for(shield(spawn(x)), Some(ms(10))).await;
            assert!(r.is_err(), "expected a timeout");
            assert!(t0.elapsed() < ms(300));
            assert!(!dropped.get(), "the shielded work was cancelled");
            sleep(ms(350)).await;
            assert!(done.get(), "the shielded work did not complete");
        }
    })
    .unwrap();
    assert!(done.get());
    assert_took(t0, ms(300));
}

// ---------------------------------------------------------------- W6

#[test]
fn w6_output_wins_when_the_inner_sleep_and_the_deadline_fire_together() {
    for _ in 0..5 {
        let r = ringloop::run(async {
            let d = Instant::now() + ms(20);
            let scope = timeout_at(Some(d));
            let r = scope
                .run(async {
                    sleep_until(d).await;
                    "output"
                })
                .await;
            (r, scope.expired())
        })
        .unwrap();
        assert_eq!(r, (Ok("output"), false));
    }
}

#[test]
fn w6_output_wins_when_another_task_completes_it_in_the_timers_turn() {
    // The inner future is a task woken by a timer with the same deadline as
    // the scope's, armed earlier: both fire in the same expiry, the task
    // runs first (equal deadlines fire in arming order, ready tasks run
    // FIFO) and completes; the awaiter then sees both the output and the
    // expired timer, and the output must win.
    for _ in 0..5 {
        let r = ringloop::run(async {
            let d = Instant::now() + ms(20);
            let inner = spawn(async move {
                sleep_until(d).await;
                42
            });
            // Let the task arm its timer before the scope arms its own.
            yield_now().await;
            let scope = timeout_at(Some(d));
            let r = scope.run(inner).await;
            (r.map(Result::unwrap), scope.expired())
        })
        .unwrap();
        assert_eq!(r, (Ok(42), false));
    }
}

#[test]
fn w6_wait_for_output_wins_over_a_timer_due_at_the_same_time() {
    // The timeout's deadline is computed after the inner one, so it is never
    // earlier: whenever both are due in the same turn, the output wins.
    for _ in 0..5 {
        let r = ringloop::run(async {
            let d = Instant::now() + ms(20);
            wait_for(
                async move {
                    sleep_until(d).await;
                    "output"
                },
                Some(ms(20)),
            )
            .await
        })
        .unwrap();
        assert_eq!(r, Ok("output"));
    }
}

// ---------------------------------------------------------------- W7

#[test]
fn w7_the_body_extends_its_own_deadline() {
    let t0 = Instant::now();
    let (r, expired, when_moved) = ringloop::run(async {
        let scope = timeout(ms(20));
        let first = scope.when().unwrap();
        let inner = scope.clone();
        let r = scope
            .run(async move {
                inner.reschedule(Some(Instant::now() + ms(500))).unwrap();
                sleep(ms(60)).await;
                "finished"
            })
            .await;
        (r, scope.expired(), scope.when().unwrap() > first)
    })
    .unwrap();
    assert_eq!(r, Ok("finished"));
    assert!(!expired);
    assert!(when_moved);
    assert_took(t0, ms(60));
}

#[test]
fn w7_another_task_shortens_a_running_deadline() {
    let t0 = Instant::now();
    let (dropped, done) = (flag(), flag());
    ringloop::run({
        let (dropped, done) = (dropped.clone(), done.clone());
        async move {
            let scope = timeout(ms(1000));
            let remote = scope.clone();
            let shortener = spawn(async move {
                sleep(ms(10)).await;
                remote.reschedule(Some(Instant::now() + ms(10))).unwrap();
            });
            assert!(!scope.expired());
            let r = scope
                .run(work(ms(500), done.clone(), dropped.clone(), ()))
                .await;
            let _: TimeoutError = r.unwrap_err();
            assert!(scope.expired());
            assert!(dropped.get() && !done.get());
            shortener.await.unwrap();
        }
    })
    .unwrap();
    assert_took(t0, ms(20));
    assert!(t0.elapsed() < ms(500), "the shortened deadline was ignored");
}

#[test]
fn w7_removing_the_deadline_lets_the_body_finish() {
    let t0 = Instant::now();
    let (r, expired) = ringloop::run(async {
        let scope = timeout(ms(10));
        let inner = scope.clone();
        let r = scope
            .run(async move {
                inner.reschedule(None).unwrap();
                sleep(ms(40)).await;
                1
            })
            .await;
        (r, scope.expired())
    })
    .unwrap();
    assert_eq!(r, Ok(1));
    assert!(!expired);
    assert_took(t0, ms(40));
}

#[test]
fn w7_a_scope_without_a_deadline_gets_one_while_running() {
    let t0 = Instant::now();
    let expired = ringloop::run(async {
        let scope = timeout_at(None);
        assert_eq!(scope.when(), None);
        let remote = scope.clone();
        let setter = spawn(async move {
            sleep(ms(10)).await;
            remote.reschedule(Some(Instant::now() + ms(10))).unwrap();
        });
        let r = scope.run(pending::<()>()).await;
        setter.await.unwrap();
        r.is_err() && scope.expired()
    })
    .unwrap();
    assert!(expired);
    assert_took(t0, ms(20));
}
