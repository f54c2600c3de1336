//! `task_group` (SEMANTICS TG1–TG3): leaving waits for every child; the
//! first failure cancels the rest and the body and every error is
//! returned; children may be added while the group runs. Also: a child
//! cancelled through its handle is not an error, and a finished group
//! refuses new children.

use std::cell::{Cell, RefCell};
use std::future::pending;
use std::rc::Rc;
use std::sync::Once;
use std::time::{Duration, Instant};

use ringloop::{ChildError, RuntimeError, TaskGroup, sleep, sleep_until, task_group, yield_now};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn flag() -> Rc<Cell<bool>> {
    Rc::new(Cell::new(false))
}

/// Sets its flag when dropped (a child's or the body's `finally`).
struct DropGuard(Rc<Cell<bool>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Prefix of the panics these tests provoke on purpose.
const EXPECTED: &str = "expected panic: ";

/// Keeps the panics the tests provoke on purpose off standard error (and
/// out of the timings: with `RUST_BACKTRACE` set, the default hook can take
/// hundreds of milliseconds). Other panics still go to the previous hook.
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

fn assert_elapsed_between(t0: Instant, at_least: Duration, below: Duration) {
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= at_least,
        "took {elapsed:?}, less than {at_least:?}"
    );
    assert!(elapsed < below, "took {elapsed:?}, not less than {below:?}");
}

/// A child that sleeps `delay` holding a drop guard, then sets `done` and
/// returns `Ok(value)`.
async fn slow_ok(
    delay: Duration,
    done: Rc<Cell<bool>>,
    dropped: Rc<Cell<bool>>,
    value: u32,
) -> Result<u32, String> {
    let _guard = DropGuard(dropped);
    sleep(delay).await;
    done.set(true);
    Ok(value)
}

// ---------------------------------------------------------------- TG1

#[test]
fn tg1_leaving_the_group_waits_for_every_child() {
    let t0 = Instant::now();
    let finished = Rc::new(RefCell::new(Vec::new()));
    let (body_out, handles) = ringloop::run({
        let finished = finished.clone();
        async move {
            let r = task_group(|tg: TaskGroup<String>| {
                let finished = finished.clone();
                async move {
                    let mut handles = Vec::new();
                    for d in [60u64, 5, 30] {
                        let finished = finished.clone();
                        handles.push(
                            tg.spawn(async move {
                                sleep(ms(d)).await;
                                finished.borrow_mut().push(d);
                                Ok(d)
                            })
                            .unwrap(),
                        );
                    }
                    // The body ends long before the slowest child.
                    Ok(("body done", handles))
                }
            })
            .await;
            // Every child finished before the group returned.
            assert_eq!(finished.borrow().len(), 3);
            r.unwrap()
        }
    })
    .unwrap();
    assert_eq!(body_out, "body done");
    assert_elapsed_between(t0, ms(60), Duration::from_secs(2));
    assert!(handles.iter().all(|h| h.is_done() && !h.is_cancelled()));
    let results: Vec<_> = handles.iter().map(|h| h.take_result()).collect();
    assert_eq!(results, [Some(60), Some(5), Some(30)]);
    assert_eq!(*finished.borrow(), [5, 30, 60]);
}

#[test]
fn tg1_the_group_also_waits_for_a_slow_body() {
    let t0 = Instant::now();
    let out = ringloop::run(async {
        task_group(|tg: TaskGroup<()>| async move {
            let child = tg.spawn(async { Ok(1) }).unwrap();
            sleep(ms(40)).await;
            Ok(child.take_result())
        })
        .await
    })
    .unwrap();
    assert_eq!(out.unwrap(), Some(1));
    assert_elapsed_between(t0, ms(40), Duration::from_secs(2));
}

// ---------------------------------------------------------------- TG2

#[test]
fn tg2_the_first_error_cancels_the_other_children_and_the_body() {
    let t0 = Instant::now();
    let (sib_done, sib_dropped) = (flag(), flag());
    let (body_done, body_dropped) = (flag(), flag());
    let errors = ringloop::run({
        let (sib_done, sib_dropped) = (sib_done.clone(), sib_dropped.clone());
        let (body_done, body_dropped) = (body_done.clone(), body_dropped.clone());
        async move {
            let r = task_group(|tg: TaskGroup<String>| async move {
                let _guard = DropGuard(body_dropped);
                tg.spawn(slow_ok(ms(1000), sib_done, sib_dropped, 1))
                    .unwrap();
                tg.spawn(async {
                    sleep(ms(20)).await;
                    Err::<(), _>("child failed".to_string())
                })
                .unwrap();
                sleep(ms(1000)).await;
                body_done.set(true);
                Ok(())
            })
            .await;
            r.unwrap_err().into_errors()
        }
    })
    .unwrap();
    assert_elapsed_between(t0, ms(20), ms(1000));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(matches!(&errors[0], ChildError::Failed(e) if e == "child failed"));
    assert!(sib_dropped.get(), "the sibling was not cancelled");
    assert!(body_dropped.get(), "the body was not cancelled");
    assert!(!sib_done.get() && !body_done.get());
}

#[test]
fn tg2_two_children_failing_in_the_same_turn_are_both_reported() {
    let ran = Rc::new(RefCell::new(Vec::new()));
    let errors = ringloop::run({
        let ran = ran.clone();
        async move {
            let r = task_group(|tg: TaskGroup<u32>| async move {
                // Both fail in their first run, one after the other in the
                // same turn (spawned tasks run FIFO, T2), before the group
                // gets to react to the first (as in asyncio, where the
                // group learns of a failure from a done callback that runs
                // after both steps).
                for code in [1, 2] {
                    let ran = ran.clone();
                    tg.spawn(async move {
                        ran.borrow_mut().push(code);
                        Err::<(), _>(code)
                    })
                    .unwrap();
                }
                pending::<()>().await;
                Ok(())
            })
            .await;
            r.unwrap_err().into_errors()
        }
    })
    .unwrap();
    assert_eq!(*ran.borrow(), [1, 2], "a child never got to run");
    let codes: Vec<u32> = errors
        .iter()
        .map(|e| match e {
            ChildError::Failed(n) => *n,
            ChildError::Panicked(p) => panic!("unexpected {p:?}"),
        })
        .collect();
    assert_eq!(codes, [1, 2], "every error, in the order they happened");
}

#[test]
fn tg2_children_failing_at_the_same_deadline_are_all_reported() {
    let t0 = Instant::now();
    let errors = ringloop::run(async {
        let d = Instant::now() + ms(20);
        let r = task_group(|tg: TaskGroup<&'static str>| async move {
            for e in ["a", "b", "c"] {
                tg.spawn(async move {
                    sleep_until(d).await;
                    Err::<(), _>(e)
                })
                .unwrap();
            }
            Ok(())
        })
        .await;
        r.unwrap_err().into_errors()
    })
    .unwrap();
    assert_elapsed_between(t0, ms(20), Duration::from_secs(2));
    assert_eq!(errors.len(), 3, "{errors:?}");
    let mut got: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            ChildError::Failed(s) => *s,
            ChildError::Panicked(p) => panic!("unexpected {p:?}"),
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, ["a", "b", "c"]);
}

#[test]
fn tg2_a_panicking_child_is_a_panicked_error_and_cancels_the_rest() {
    quiet_expected_panics();
    let t0 = Instant::now();
    let (sib_done, sib_dropped) = (flag(), flag());
    let errors = ringloop::run({
        let (sib_done, sib_dropped) = (sib_done.clone(), sib_dropped.clone());
        async move {
            let r = task_group(|tg: TaskGroup<String>| async move {
                tg.spawn(slow_ok(ms(1000), sib_done, sib_dropped, 1))
                    .unwrap();
                tg.spawn(async {
                    sleep(ms(10)).await;
                    if true {
                        panic!("{EXPECTED}child panicked");
                    }
                    Ok(())
                })
                .unwrap();
                Ok(())
            })
            .await;
            r.unwrap_err().into_errors()
        }
    })
    .unwrap();
    assert_elapsed_between(t0, ms(10), ms(1000));
    assert_eq!(errors.len(), 1, "{errors:?}");
    match &errors[0] {
        ChildError::Panicked(e) => {
            assert!(e.is_panic());
            assert_eq!(
                e.panic_message(),
                Some(format!("{EXPECTED}child panicked").as_str())
            );
        }
        ChildError::Failed(e) => panic!("expected a panic, got Failed({e})"),
    }
    assert!(sib_dropped.get() && !sib_done.get());
}

#[test]
fn tg2_a_panic_and_an_err_in_the_same_turn_are_reported_in_the_order_they_happened() {
    // Both children wake at the same deadline; the panicking one armed its
    // timer first, so it runs (and panics) first, then the other returns
    // `Err` in the same turn. Both are reported, first one first
    // (`TaskGroupError::errors`: "in the order they happened").
    quiet_expected_panics();
    let ran = Rc::new(RefCell::new(Vec::new()));
    let errors = ringloop::run({
        let ran = ran.clone();
        async move {
            let d = Instant::now() + ms(20);
            let r = task_group(|tg: TaskGroup<&'static str>| async move {
                let log = ran.clone();
                tg.spawn(async move {
                    sleep_until(d).await;
                    log.borrow_mut().push("panic");
                    if true {
                        panic!("{EXPECTED}first failure");
                    }
                    Ok(())
                })
                .unwrap();
                let log = ran.clone();
                tg.spawn(async move {
                    sleep_until(d).await;
                    log.borrow_mut().push("err");
                    Err::<(), _>("second failure")
                })
                .unwrap();
                Ok(())
            })
            .await;
            r.unwrap_err().into_errors()
        }
    })
    .unwrap();
    assert_eq!(
        *ran.borrow(),
        ["panic", "err"],
        "the scenario is not the intended one"
    );
    let kinds: Vec<String> = errors
        .iter()
        .map(|e| match e {
            ChildError::Panicked(p) => format!("panicked: {}", p.panic_message().unwrap_or("?")),
            ChildError::Failed(s) => format!("failed: {s}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            format!("panicked: {EXPECTED}first failure"),
            "failed: second failure".to_string()
        ],
        "every error, in the order they happened"
    );
}

// ---------------------------------------------------------------- TG3

#[test]
fn tg3_children_added_while_the_group_runs() {
    let t0 = Instant::now();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (late, grandchild) = ringloop::run({
        let log = log.clone();
        async move {
            let r = task_group(|tg: TaskGroup<String>| {
                let log = log.clone();
                async move {
                    // A first child that itself adds a child through a clone
                    // of the group.
                    let tg2 = tg.clone();
                    let l = log.clone();
                    let grandchild = Rc::new(RefCell::new(None));
                    let g = grandchild.clone();
                    tg.spawn(async move {
                        sleep(ms(10)).await;
                        let l2 = l.clone();
                        let h = tg2
                            .spawn(async move {
                                sleep(ms(200)).await;
                                l2.borrow_mut().push("grandchild");
                                Ok("from a child")
                            })
                            .unwrap();
                        *g.borrow_mut() = Some(h);
                        l.borrow_mut().push("first");
                        Ok(())
                    })
                    .unwrap();
                    // The body adds one after an await.
                    sleep(ms(60)).await;
                    let l = log.clone();
                    let late = tg
                        .spawn(async move {
                            sleep(ms(20)).await;
                            l.borrow_mut().push("late");
                            Ok("from the body")
                        })
                        .unwrap();
                    log.borrow_mut().push("body");
                    let grandchild = grandchild.borrow_mut().take().unwrap();
                    Ok((late, grandchild))
                }
            })
            .await;
            r.unwrap()
        }
    })
    .unwrap();
    // The group waited for both late additions (the grandchild ends at
    // about 210 ms).
    assert_elapsed_between(t0, ms(210), Duration::from_secs(2));
    assert_eq!(*log.borrow(), ["first", "body", "late", "grandchild"]);
    assert_eq!(late.take_result(), Some("from the body"));
    assert_eq!(grandchild.take_result(), Some("from a child"));
}

// ------------------------------------------------- cancellation, closing

#[test]
fn tg2_a_child_cancelled_through_its_handle_is_not_an_error() {
    let t0 = Instant::now();
    let (done, dropped) = (flag(), flag());
    let out = ringloop::run({
        let (done, dropped) = (done.clone(), dropped.clone());
        async move {
            task_group(|tg: TaskGroup<String>| async move {
                let victim = tg.spawn(slow_ok(ms(1000), done, dropped, 1)).unwrap();
                let other = tg
                    .spawn(async {
                        sleep(ms(20)).await;
                        Ok(2)
                    })
                    .unwrap();
                sleep(ms(5)).await;
                assert!(victim.cancel());
                Ok((victim, other))
            })
            .await
        }
    })
    .unwrap();
    let (victim, other) = out.expect("a cancelled child is not a group error");
    assert!(victim.is_cancelled() && victim.is_done());
    assert_eq!(victim.take_result(), None);
    assert_eq!(other.take_result(), Some(2));
    assert!(dropped.get() && !done.get());
    assert_elapsed_between(t0, ms(20), ms(1000));
}

#[test]
fn tg3_spawning_after_the_group_finished_is_closed() {
    ringloop::run(async {
        let tg = task_group(|tg: TaskGroup<()>| async move {
            tg.spawn(async { Ok(()) }).unwrap();
            Ok(tg)
        })
        .await
        .unwrap();
        let ran = flag();
        let r = ran.clone();
        let spawned = tg.spawn(async move {
            r.set(true);
            Ok(())
        });
        assert!(matches!(spawned, Err(RuntimeError::Closed)), "{spawned:?}");
        yield_now().await;
        assert!(!ran.get(), "the refused child ran");
    })
    .unwrap();
}

#[test]
fn tg3_spawning_while_the_group_shuts_down_is_closed() {
    let refused = ringloop::run(async {
        let refused = Rc::new(Cell::new(None));
        let r = refused.clone();
        let out = task_group(|tg: TaskGroup<&'static str>| async move {
            let tg2 = tg.clone();
            tg.spawn(async move {
                let _on_cancel = OnDrop(Some(move || {
                    let res = tg2.spawn(async { Ok(()) });
                    r.set(Some(matches!(res, Err(RuntimeError::Closed))));
                }));
                pending::<Result<(), _>>().await
            })
            .unwrap();
            tg.spawn(async {
                yield_now().await;
                Err::<(), _>("fail")
            })
            .unwrap();
            Ok(())
        })
        .await;
        assert_eq!(out.unwrap_err().errors().len(), 1);
        refused.get()
    })
    .unwrap();
    assert_eq!(refused, Some(true));
}

/// Runs its closure when dropped.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
