//! `gather` behaviours (SEMANTICS G1–G7): argument order, concurrency, the
//! faithful first-error rule, `return_exceptions`, cancellation of the
//! children when the gather is dropped, children cancelled from outside,
//! and heterogeneous / homogeneous children.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Once;
use std::task::Context;
use std::time::{Duration, Instant};

use futures_util::task::noop_waker;
use ringloop::{
    GatherError, gather, gather_tasks, sleep, spawn, spawn_named, try_gather, wait_for, yield_now,
};

type Log = Rc<RefCell<Vec<String>>>;

fn new_log() -> Log {
    Rc::default()
}

fn push(log: &Log, what: impl Into<String>) {
    log.borrow_mut().push(what.into());
}

/// Sets its flag when dropped (a child's `finally`).
struct DropGuard(Rc<Cell<bool>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Prefix of the panics these tests provoke on purpose.
const EXPECTED: &str = "expected panic: ";

/// Keeps the panics the tests provoke on purpose off standard error (and
/// out of the timings: with `RUST_BACKTRACE` set, the default hook can take
/// hundreds of milliseconds to print a backtrace). Other panics still go to
/// the previous hook.
fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !msg.is_some_and(|m| m.starts_with(EXPECTED)) {
                previous(info);
            }
        }));
    });
}

/// Sleeps `delay`, then panics with `EXPECTED` followed by `msg`.
async fn panic_after<T>(delay: Duration, msg: &'static str) -> T {
    quiet_expected_panics();
    sleep(delay).await;
    panic!("{EXPECTED}{msg}")
}

fn expected(msg: &str) -> String {
    format!("{EXPECTED}{msg}")
}

/// Sleeps `delay`, logging its start and end, and returns `value`.
async fn child<T>(log: Log, name: &'static str, delay: Duration, value: T) -> T {
    push(&log, format!("start {name}"));
    sleep(delay).await;
    push(&log, format!("end {name}"));
    value
}

// ---------------------------------------------------------------- G1

#[test]
fn g1_results_come_back_in_argument_order_whatever_the_completion_order() {
    let log = new_log();
    let out = ringloop::run({
        let log = log.clone();
        async move {
            gather([
                child(log.clone(), "a", ms(150), 'a'),
                child(log.clone(), "b", ms(50), 'b'),
                child(log.clone(), "c", ms(100), 'c'),
                child(log.clone(), "d", ms(0), 'd'),
            ])
            .await
        }
    })
    .unwrap();
    assert_eq!(out.unwrap(), vec!['a', 'b', 'c', 'd']);
    // The children really finished in another order than the arguments.
    let ends: Vec<String> = log
        .borrow()
        .iter()
        .filter(|e| e.starts_with("end"))
        .cloned()
        .collect();
    assert_eq!(ends, ["end d", "end b", "end c", "end a"]);
}

#[test]
fn g1_try_gather_results_come_back_in_argument_order() {
    let out = ringloop::run(async {
        try_gather([(40, 1), (5, 2), (20, 3)].map(|(d, v)| async move {
            sleep(ms(d)).await;
            Ok::<_, String>(v)
        }))
        .await
    })
    .unwrap();
    assert_eq!(out.unwrap(), vec![1, 2, 3]);
}

// ---------------------------------------------------------------- G2

#[test]
fn g2_children_run_concurrently_elapsed_is_about_the_longest_child() {
    let log = new_log();
    let t0 = Instant::now();
    let out = ringloop::run({
        let log = log.clone();
        async move {
            gather([
                child(log.clone(), "a", ms(100), 100),
                child(log.clone(), "b", ms(150), 150),
                child(log.clone(), "c", ms(120), 120),
            ])
            .await
        }
    })
    .unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(out.unwrap(), vec![100, 150, 120]);
    // At least the longest child; well below the sum (370 ms).
    assert!(
        elapsed >= ms(150),
        "finished before the longest child: {elapsed:?}"
    );
    assert!(
        elapsed < ms(370),
        "children ran one after another: {elapsed:?}"
    );
    // Every child started before any finished.
    let log = log.borrow();
    let first_end = log.iter().position(|e| e.starts_with("end")).unwrap();
    let starts = log.iter().filter(|e| e.starts_with("start")).count();
    assert_eq!(starts, 3);
    assert!(
        log[..first_end].iter().all(|e| e.starts_with("start")) && first_end == 3,
        "a child finished before all had started: {log:?}"
    );
}

// ---------------------------------------------------------------- G3

#[test]
fn g3_first_error_is_returned_at_once_and_siblings_keep_running() {
    let sibling_done = Rc::new(Cell::new(false));
    let sibling_dropped = Rc::new(Cell::new(false));
    let t0 = Instant::now();
    ringloop::run({
        let sibling_done = sibling_done.clone();
        let sibling_dropped = sibling_dropped.clone();
        async move {
            let done = sibling_done.clone();
            let dropped = sibling_dropped.clone();
            let sibling = Box::pin(async move {
                let _guard = DropGuard(dropped);
                sleep(ms(300)).await;
                done.set(true);
            }) as std::pin::Pin<Box<dyn Future<Output = ()>>>;
            let failing = Box::pin(panic_after::<()>(ms(10), "child failed"))
                as std::pin::Pin<Box<dyn Future<Output = ()>>>;
            let r = gather(vec![sibling, failing]).await;
            let at_return = t0.elapsed();
            let err = r.unwrap_err();
            assert!(err.is_panic(), "{err:?}");
            assert_eq!(err.panic_message(), Some(expected("child failed").as_str()));
            assert!(at_return >= ms(10), "{at_return:?}");
            assert!(
                at_return < ms(300),
                "gather waited for the sibling: {at_return:?}"
            );
            // The sibling was not cancelled...
            assert!(!sibling_done.get());
            assert!(!sibling_dropped.get(), "the sibling was cancelled");
            // ...it finishes on its own later.
            sleep(ms(400)).await;
            assert!(sibling_done.get(), "the sibling did not keep running");
        }
    })
    .unwrap();
    assert!(sibling_done.get());
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn g3_try_gather_returns_the_first_err_while_siblings_keep_running() {
    let sibling_done = Rc::new(Cell::new(false));
    let t0 = Instant::now();
    ringloop::run({
        let sibling_done = sibling_done.clone();
        async move {
            let done = sibling_done.clone();
            let slow = spawn(async move {
                sleep(ms(300)).await;
                done.set(true);
                Ok::<u32, &'static str>(1)
            });
            let bad = spawn(async {
                sleep(ms(10)).await;
                Err::<u32, _>("bad child")
            });
            let slow_handle = slow.handle();
            let r = try_gather([
                Box::pin(async move { slow.await.unwrap() })
                    as std::pin::Pin<Box<dyn Future<Output = Result<u32, &'static str>>>>,
                Box::pin(async move { bad.await.unwrap() }),
            ])
            .await;
            let at_return = t0.elapsed();
            assert!(matches!(r, Err(GatherError::Failed("bad child"))), "{r:?}");
            assert!(at_return < ms(300), "try_gather waited: {at_return:?}");
            assert!(!sibling_done.get());
            assert!(!slow_handle.is_done());
            sleep(ms(400)).await;
            assert!(sibling_done.get(), "the sibling did not keep running");
            assert!(!slow_handle.is_cancelled());
        }
    })
    .unwrap();
    assert!(sibling_done.get());
}

// ---------------------------------------------------------------- G4

#[test]
fn g4_return_exceptions_collects_every_outcome_in_place() {
    let t0 = Instant::now();
    let outcomes = ringloop::run(async {
        let ok_slow = spawn(async {
            sleep(ms(40)).await;
            1
        });
        let panics = spawn(panic_after(ms(5), "boom"));
        let cancelled = spawn(async {
            sleep(ms(1000)).await;
            3
        });
        let ok_fast = spawn(async { 4 });
        let cancel_me = cancelled.handle();
        let gathered = gather_tasks([ok_slow, panics, cancelled, ok_fast]).return_exceptions();
        let canceller = spawn(async move {
            sleep(ms(10)).await;
            cancel_me.cancel()
        });
        let outcomes = gathered.await;
        assert!(canceller.await.unwrap());
        outcomes
    })
    .unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(outcomes.len(), 4);
    assert_eq!(*outcomes[0].as_ref().unwrap(), 1);
    let e = outcomes[1].as_ref().unwrap_err();
    assert!(e.is_panic(), "{e:?}");
    assert_eq!(e.panic_message(), Some(expected("boom").as_str()));
    assert!(outcomes[2].as_ref().unwrap_err().is_cancelled());
    assert_eq!(*outcomes[3].as_ref().unwrap(), 4);
    // It waited for the slowest child, not the first error.
    assert!(elapsed >= ms(40), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

// ---------------------------------------------------------------- G5

#[test]
fn g5_gather_timed_out_by_wait_for_cancels_every_unfinished_child() {
    let dropped = [(); 3].map(|_| Rc::new(Cell::new(false)));
    let finished = [(); 3].map(|_| Rc::new(Cell::new(false)));
    let t0 = Instant::now();
    ringloop::run({
        let dropped = dropped.clone();
        let finished = finished.clone();
        async move {
            let children: Vec<_> = [5, 500, 800]
                .into_iter()
                .enumerate()
                .map(|(i, d)| {
                    let guard = DropGuard(dropped[i].clone());
                    let fin = finished[i].clone();
                    async move {
                        let _guard = guard;
                        sleep(ms(d)).await;
                        fin.set(true);
                    }
                })
                .collect();
            let r = wait_for(gather(children), Some(ms(30))).await;
            assert!(r.is_err(), "the gather should have timed out");
            // The finished child completed; the other two were cancelled, and
            // their cleanup ran before wait_for returned.
            assert!(finished[0].get());
            assert!(
                dropped[1].get() && dropped[2].get(),
                "children not cancelled"
            );
            // Their side effects never happen.
            sleep(ms(900)).await;
            assert!(!finished[1].get() && !finished[2].get());
        }
    })
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn g5_dropping_the_gather_after_one_poll_cancels_its_children() {
    let dropped = [(); 2].map(|_| Rc::new(Cell::new(false)));
    let finished = [(); 2].map(|_| Rc::new(Cell::new(false)));
    ringloop::run({
        let dropped = dropped.clone();
        let finished = finished.clone();
        async move {
            let children: Vec<_> = (0..2)
                .map(|i| {
                    let guard = DropGuard(dropped[i].clone());
                    let fin = finished[i].clone();
                    async move {
                        let _guard = guard;
                        sleep(ms(20)).await;
                        fin.set(true);
                    }
                })
                .collect();
            let handles;
            {
                let mut g = pin!(gather(children));
                let waker = noop_waker();
                assert!(
                    g.as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_pending()
                );
                // Let the children start (and arm their sleeps).
                yield_now().await;
                yield_now().await;
                handles = ringloop::all_tasks();
                assert_eq!(handles.len(), 2, "{handles:?}");
                assert!(!dropped[0].get() && !dropped[1].get());
            } // the gather is dropped here
            assert!(
                dropped[0].get() && dropped[1].get(),
                "children not cancelled"
            );
            assert!(handles.iter().all(|h| h.is_cancelled()), "{handles:?}");
            sleep(ms(60)).await;
            assert!(!finished[0].get() && !finished[1].get());
        }
    })
    .unwrap();
}

#[test]
fn g5_cancelling_the_task_that_runs_the_gather_cancels_the_children() {
    let dropped = Rc::new(Cell::new(false));
    let finished = Rc::new(Cell::new(false));
    ringloop::run({
        let dropped = dropped.clone();
        let finished = finished.clone();
        async move {
            let guard = DropGuard(dropped.clone());
            let fin = finished.clone();
            let outer = spawn(async move {
                gather([async move {
                    let _guard = guard;
                    sleep(ms(300)).await;
                    fin.set(true);
                }])
                .await
            });
            sleep(ms(10)).await;
            assert!(outer.cancel());
            let r = outer.await;
            assert!(r.unwrap_err().is_cancelled());
            assert!(dropped.get(), "child cleanup had not run");
            sleep(ms(350)).await;
            assert!(!finished.get());
        }
    })
    .unwrap();
}

// ---------------------------------------------------------------- G6

#[test]
fn g6_a_child_cancelled_from_outside_fails_the_gather_not_its_task() {
    let other_done = Rc::new(Cell::new(false));
    let t0 = Instant::now();
    let out = ringloop::run({
        let other_done = other_done.clone();
        async move {
            let victim = spawn_named("victim", async {
                sleep(ms(1000)).await;
                1
            });
            let done = other_done.clone();
            let other = spawn_named("other", async move {
                sleep(ms(40)).await;
                done.set(true);
                2
            });
            let victim_handle = victim.handle();
            let gathering = spawn_named("gathering", async move {
                let r = gather_tasks([victim, other]).await;
                let err = r.expect_err("a cancelled child fails the gather");
                assert!(err.is_cancelled(), "{err:?}");
                // The gathering task itself was not cancelled: it goes on.
                let me = ringloop::current_task().unwrap();
                assert!(!me.is_cancelled());
                sleep(ms(5)).await;
                "gathering task continued"
            });
            sleep(ms(10)).await;
            assert!(victim_handle.cancel());
            let r = gathering.await;
            assert!(victim_handle.is_cancelled());
            // Faithful mode: the other child keeps running.
            sleep(ms(60)).await;
            assert!(other_done.get());
            r
        }
    })
    .unwrap();
    assert_eq!(out.unwrap(), "gathering task continued");
    assert!(t0.elapsed() < ms(1000));
}

// ---------------------------------------------------------------- G7

#[test]
fn g7_the_macro_gathers_children_of_different_types() {
    let t0 = Instant::now();
    let (n, s, v) = ringloop::run(async {
        ringloop::gather!(
            async {
                sleep(ms(30)).await;
                7u8
            },
            async {
                sleep(ms(10)).await;
                String::from("seven")
            },
            async { vec![7.0f64] },
        )
        .await
    })
    .unwrap()
    .unwrap();
    assert_eq!((n, s.as_str(), v), (7, "seven", vec![7.0]));
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= ms(30) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[test]
fn g7_the_macro_returns_the_first_error() {
    let r = ringloop::run(async {
        ringloop::gather!(async { 1 }, panic_after::<()>(ms(0), "second failed")).await
    })
    .unwrap();
    let e = r.map(|_: (i32, ())| ()).unwrap_err();
    assert_eq!(e.panic_message(), Some(expected("second failed").as_str()));
}

#[test]
fn g7_gather_takes_a_vec_of_same_typed_futures() {
    async fn square(x: u64) -> u64 {
        sleep(ms(10 * (5 - x))).await;
        x * x
    }
    let out = ringloop::run(async { gather((1..=4).map(square).collect::<Vec<_>>()).await })
        .unwrap()
        .unwrap();
    assert_eq!(out, vec![1, 4, 9, 16]);
}

#[test]
fn g7_gather_of_nothing_is_an_empty_vec() {
    let out = ringloop::run(async { gather(Vec::<std::future::Ready<u8>>::new()).await })
        .unwrap()
        .unwrap();
    assert!(out.is_empty());
}
