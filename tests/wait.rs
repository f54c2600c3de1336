//! `wait` and `as_completed` (SEMANTICS WA1–WA2): the three return
//! conditions and the timeout, none of which cancels the pending tasks;
//! outputs in completion order, and timeouts that leave children running.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Once;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ringloop::{
    AsCompletedError, ReturnWhen, Task, as_completed, as_completed_tasks, sleep, sleep_until,
    spawn_named, wait, yield_now,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
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

/// A task named `name` that sleeps `delay`, then returns `value`.
fn sleeper(name: &str, delay: Duration, value: u32) -> Task<u32> {
    spawn_named(name, async move {
        sleep(delay).await;
        value
    })
}

/// A task named `name` that sleeps `delay`, then panics.
fn panicker(name: &str, delay: Duration) -> Task<u32> {
    quiet_expected_panics();
    spawn_named(name, async move {
        sleep(delay).await;
        panic!("{EXPECTED}task failed")
    })
}

fn names(tasks: &[Task<u32>]) -> Vec<String> {
    let mut v: Vec<String> = tasks.iter().map(Task::name).collect();
    v.sort();
    v
}

fn assert_elapsed_between(t0: Instant, at_least: Duration, below: Duration) {
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= at_least,
        "took {elapsed:?}, less than {at_least:?}"
    );
    assert!(elapsed < below, "took {elapsed:?}, not less than {below:?}");
}

// ---------------------------------------------------------------- WA1

#[test]
fn wa1_first_completed_returns_once_one_is_done_and_cancels_nothing() {
    ringloop::run(async {
        let t0 = Instant::now();
        let tasks = vec![
            sleeper("slow", ms(300), 2),
            sleeper("fast", ms(10), 1),
            sleeper("slower", ms(350), 3),
        ];
        let (done, pending) = wait(tasks, ReturnWhen::FirstCompleted, None).await;
        assert_elapsed_between(t0, ms(10), ms(300));
        assert_eq!(names(&done), ["fast"]);
        assert_eq!(names(&pending), ["slow", "slower"]);
        assert!(done.iter().all(Task::is_done));
        assert!(pending.iter().all(|t| !t.is_done() && !t.is_cancelled()));
        // Done: its output at once. Pending: still running, they finish later.
        let mut outputs = Vec::new();
        for t in done.into_iter().chain(pending) {
            outputs.push(t.await.unwrap());
        }
        let mut sorted = outputs.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3]);
        assert_elapsed_between(t0, ms(350), Duration::from_secs(2));
    })
    .unwrap();
}

#[test]
fn wa1_first_exception_returns_at_the_first_panic_and_cancels_nothing() {
    ringloop::run(async {
        let t0 = Instant::now();
        let tasks = vec![
            sleeper("ok-fast", ms(5), 1),
            panicker("panics", ms(20)),
            sleeper("ok-slow", ms(300), 3),
        ];
        let (done, pending) = wait(tasks, ReturnWhen::FirstException, None).await;
        assert_elapsed_between(t0, ms(20), ms(300));
        // Not at the first completion (5 ms), at the first panic.
        assert_eq!(names(&done), ["ok-fast", "panics"]);
        assert_eq!(names(&pending), ["ok-slow"]);
        for t in done {
            let name = t.name();
            match t.await {
                Ok(v) => assert_eq!((name.as_str(), v), ("ok-fast", 1)),
                Err(e) => {
                    assert_eq!(name, "panics");
                    assert!(e.is_panic(), "{e:?}");
                }
            }
        }
        let slow = pending.into_iter().next().unwrap();
        assert!(!slow.is_cancelled());
        assert_eq!(slow.await.unwrap(), 3);
        assert_elapsed_between(t0, ms(300), Duration::from_secs(2));
    })
    .unwrap();
}

#[test]
fn wa1_first_exception_without_a_panic_waits_for_all() {
    ringloop::run(async {
        let t0 = Instant::now();
        let tasks = vec![sleeper("a", ms(10), 1), sleeper("b", ms(40), 2)];
        let (done, pending) = wait(tasks, ReturnWhen::FirstException, None).await;
        assert_elapsed_between(t0, ms(40), Duration::from_secs(2));
        assert_eq!(names(&done), ["a", "b"]);
        assert!(pending.is_empty());
    })
    .unwrap();
}

#[test]
fn wa1_all_completed_waits_for_every_task() {
    ringloop::run(async {
        let t0 = Instant::now();
        let tasks = vec![
            sleeper("a", ms(30), 1),
            panicker("b", ms(5)),
            sleeper("c", ms(50), 3),
        ];
        let (done, pending) = wait(tasks, ReturnWhen::AllCompleted, None).await;
        assert_elapsed_between(t0, ms(50), Duration::from_secs(2));
        assert_eq!(names(&done), ["a", "b", "c"]);
        assert!(pending.is_empty());
        let mut ok = Vec::new();
        let mut panics = 0;
        for t in done {
            match t.await {
                Ok(v) => ok.push(v),
                Err(e) if e.is_panic() => panics += 1,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        ok.sort_unstable();
        assert_eq!((ok, panics), (vec![1, 3], 1));
    })
    .unwrap();
}

#[test]
fn wa1_a_timeout_just_returns_and_the_pending_tasks_keep_running() {
    ringloop::run(async {
        let t0 = Instant::now();
        let tasks = vec![sleeper("fast", ms(5), 1), sleeper("slow", ms(400), 2)];
        let (done, pending) = wait(tasks, ReturnWhen::AllCompleted, Some(ms(30))).await;
        assert_elapsed_between(t0, ms(30), ms(400));
        assert_eq!(names(&done), ["fast"]);
        assert_eq!(names(&pending), ["slow"]);
        let slow = pending.into_iter().next().unwrap();
        assert!(!slow.is_done() && !slow.is_cancelled());
        assert_eq!(slow.await.unwrap(), 2);
        assert_elapsed_between(t0, ms(400), Duration::from_secs(2));
        for t in done {
            assert_eq!(t.await.unwrap(), 1);
        }
    })
    .unwrap();
}

#[test]
fn wa1_a_timeout_with_first_completed_and_nothing_done() {
    ringloop::run(async {
        let t0 = Instant::now();
        let tasks = vec![sleeper("a", ms(300), 1), sleeper("b", ms(350), 2)];
        let (done, pending) = wait(tasks, ReturnWhen::FirstCompleted, Some(ms(20))).await;
        assert_elapsed_between(t0, ms(20), ms(300));
        assert!(done.is_empty());
        assert_eq!(names(&pending), ["a", "b"]);
        let mut out = Vec::new();
        for t in pending {
            out.push(t.await.unwrap());
        }
        out.sort_unstable();
        assert_eq!(out, [1, 2]);
    })
    .unwrap();
}

// ---------------------------------------------------------------- WA2

#[test]
fn wa2_as_completed_yields_in_completion_order() {
    let t0 = Instant::now();
    let order = ringloop::run(async {
        let delays = [300u64, 100, 200, 0];
        let mut stream = as_completed(
            delays.map(|d| async move {
                sleep(ms(d)).await;
                d
            }),
            None,
        );
        let mut order = Vec::new();
        while let Some(r) = stream.next().await {
            order.push(r.unwrap());
        }
        order
    })
    .unwrap();
    assert_eq!(order, [0, 100, 200, 300]);
    let elapsed = t0.elapsed();
    assert!(elapsed >= ms(300) && elapsed < ms(2000), "{elapsed:?}");
}

#[test]
fn wa2_children_finishing_in_the_same_turn_yield_in_completion_order() {
    // Three children wake at the same deadline and finish in the same loop
    // turn, in the reverse of argument order: child i arms its timer after
    // 3 - i yields, and equal deadlines fire in arming order (L5), ready
    // tasks run FIFO (T2). The consumer is waiting on the stream all along
    // (as asyncio's queue of done callbacks would), so it must see them in
    // the order they finished, not in argument order.
    let (yielded, finished) = ringloop::run(async {
        let finished = Rc::new(RefCell::new(Vec::new()));
        let d = Instant::now() + ms(30);
        let children: Vec<_> = (0..3usize)
            .map(|i| {
                let finished = finished.clone();
                async move {
                    for _ in 0..3 - i {
                        yield_now().await;
                    }
                    sleep_until(d).await;
                    finished.borrow_mut().push(i);
                    i
                }
            })
            .collect();
        let mut stream = as_completed(children, None);
        let mut yielded = Vec::new();
        while let Some(r) = stream.next().await {
            yielded.push(r.unwrap());
        }
        let finished = finished.borrow().clone();
        (yielded, finished)
    })
    .unwrap();
    assert_eq!(finished, [2, 1, 0], "the scenario is not the intended one");
    assert_eq!(
        yielded, finished,
        "as_completed did not follow completion order"
    );
}

#[test]
fn wa2_as_completed_reports_a_panicking_child_in_its_place() {
    ringloop::run(async {
        let tasks = vec![
            sleeper("slow", ms(200), 2),
            panicker("panics", ms(80)),
            sleeper("fast", ms(5), 1),
        ];
        let mut stream = as_completed_tasks(tasks, None);
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        match stream.next().await.unwrap() {
            Err(AsCompletedError::Join(e)) => assert!(e.is_panic(), "{e:?}"),
            other => panic!("expected the panic, got {other:?}"),
        }
        assert_eq!(stream.next().await.unwrap().unwrap(), 2);
        assert!(stream.next().await.is_none());
    })
    .unwrap();
}

#[test]
fn wa2_children_not_done_by_the_timeout_yield_timeout_and_keep_running() {
    let finished = Rc::new(RefCell::new(Vec::new()));
    ringloop::run({
        let finished = finished.clone();
        async move {
            let t0 = Instant::now();
            let children: Vec<_> = [300u64, 5, 400]
                .into_iter()
                .map(|d| {
                    let finished = finished.clone();
                    async move {
                        sleep(ms(d)).await;
                        finished.borrow_mut().push(d);
                        d
                    }
                })
                .collect();
            let mut stream = as_completed(children, Some(ms(30)));
            assert_eq!(stream.next().await.unwrap().unwrap(), 5);
            let mut timeouts = 0;
            while let Some(r) = stream.next().await {
                assert!(matches!(r, Err(AsCompletedError::Timeout)), "{r:?}");
                timeouts += 1;
            }
            assert_eq!(timeouts, 2);
            assert_elapsed_between(t0, ms(30), ms(300));
            assert_eq!(*finished.borrow(), [5]);
            // The timed-out children were not cancelled: they finish later.
            sleep(ms(500)).await;
            let mut f = finished.borrow().clone();
            f.sort_unstable();
            assert_eq!(f, [5, 300, 400]);
        }
    })
    .unwrap();
}

#[test]
fn wa2_timed_out_tasks_are_not_cancelled() {
    ringloop::run(async {
        let slow = sleeper("slow", ms(300), 9);
        let handle = slow.handle();
        let ran = Rc::new(Cell::new(false));
        let mut stream = as_completed_tasks(vec![slow], Some(ms(10)));
        assert!(matches!(
            stream.next().await,
            Some(Err(AsCompletedError::Timeout))
        ));
        assert!(stream.next().await.is_none());
        drop(stream);
        assert!(!handle.is_done() && !handle.is_cancelled());
        let r = ran.clone();
        handle.add_done_callback(move |h| r.set(!h.is_cancelled()));
        sleep(ms(400)).await;
        assert!(handle.is_done() && !handle.is_cancelled());
        assert!(ran.get(), "the timed-out task did not complete normally");
    })
    .unwrap();
}
