//! Every public API taking a `Duration` or an `Instant` at the extremes
//! (SEMANTICS R2): zero, `Duration::MAX` (and other durations of 2^63 s or
//! more, whose timespec would go negative), an `Instant` far in the future
//! (100 years ahead, and the farthest one `Instant` can represent) and the
//! farthest one in the past. Nothing panics or overflows; a far-future
//! deadline means "never" (the work is still pending after a short real
//! wait, and the loop is not spinning meanwhile); zero or a past deadline
//! means "now".
//!
//! The tests are tables: one row per (function, extreme), each run on a
//! fresh loop with a wall-clock limit.

use std::future::{Future, pending};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use ringloop::net::{ListenOptions, TcpListener, TcpStream};
use ringloop::time::MissedTicks;
use ringloop::{
    AsCompletedError, BlockingPool, Builder, EventLoop, ExceptionKind, Handle, ReturnWhen,
    as_completed, interval, run_coroutine_threadsafe, sleep, sleep_until, spawn, timeout,
    timeout_at, wait, wait_for, yield_now,
};

const YEAR: Duration = Duration::from_secs(365 * 86_400);
/// How long a "never" case is watched before it is cancelled.
const WATCH: Duration = Duration::from_millis(60);
/// How long a "completes" case may take, at most (generous).
const PROMPT: Duration = Duration::from_secs(2);
/// `io_uring_enter` calls allowed while a "never" case is watched: a loop
/// that spins on a zero or negative kernel timeout makes thousands.
const MAX_ENTERS: u64 = 50;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Durations of 2^63 s or more: a timespec made from them by a plain cast
/// has a negative `tv_sec`.
fn huge_durations() -> [(&'static str, Duration); 4] {
    [
        ("Duration::MAX", Duration::MAX),
        ("2^63 s", Duration::from_secs(1 << 63)),
        ("u64::MAX s", Duration::from_secs(u64::MAX)),
        ("1000 years", YEAR * 1000),
    ]
}

/// The largest `d` (in whole seconds) for which `f(d)` is representable.
fn farthest(f: impl Fn(Duration) -> Option<Instant>) -> Instant {
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if f(Duration::from_secs(mid)).is_some() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    f(Duration::from_secs(lo)).expect("zero is always representable")
}

fn far_future() -> Instant {
    Instant::now()
        .checked_add(YEAR * 100)
        .expect("100 years ahead is representable")
}

fn farthest_future() -> Instant {
    let now = Instant::now();
    farthest(|d| now.checked_add(d))
}

fn farthest_past() -> Instant {
    let now = Instant::now();
    farthest(|d| now.checked_sub(d))
}

/// Far-future instants: 100 years ahead and as far as `Instant` goes.
fn future_instants() -> [(&'static str, Instant); 2] {
    [
        ("now + 100 years", far_future()),
        ("farthest future", farthest_future()),
    ]
}

/// Past instants: just now, a second ago, and as far back as `Instant` goes.
fn past_instants() -> [(&'static str, Instant); 3] {
    let now = Instant::now();
    [
        ("now", now),
        (
            "a second ago",
            now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
        ),
        ("farthest past", farthest_past()),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Completes, within `PROMPT`.
    Completes,
    /// Still pending after `WATCH`, with the loop idle meanwhile.
    Never,
}

type Body = Pin<Box<dyn Future<Output = ()>>>;

struct Case {
    name: String,
    expect: Expect,
    body: Body,
}

fn case(name: impl Into<String>, expect: Expect, body: impl Future<Output = ()> + 'static) -> Case {
    Case {
        name: name.into(),
        expect,
        body: Box::pin(body),
    }
}

/// Runs `body` as the main future of `lp` for at most `limit` of real time
/// (a plain thread stops the loop then): whether it completed, how long it
/// ran and how many times the loop entered the kernel.
fn run_limited(lp: &EventLoop, limit: Duration, body: Body) -> (bool, Duration, u64) {
    let handle = lp.handle();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(limit).is_err() {
            let _ = handle.call_soon_threadsafe(|| {
                let _ = Handle::current().stop();
            });
        }
    });
    let enters = lp.ring_stats().enters;
    let t0 = Instant::now();
    let res = lp.run_until_complete(body);
    let took = t0.elapsed();
    let enters = lp.ring_stats().enters - enters;
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    match res {
        Ok(()) => (true, took, enters),
        Err(ringloop::RuntimeError::Stopped) => (false, took, enters),
        Err(e) => panic!("the loop failed: {e}"),
    }
}

/// Runs every case on a fresh loop and checks its outcome.
fn check(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let lp = EventLoop::new().unwrap();
        let limit = match c.expect {
            Expect::Completes => PROMPT * 2,
            Expect::Never => WATCH,
        };
        let body = c.body;
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| run_limited(&lp, limit, body)));
        let (done, took, enters) = match run {
            Ok(r) => r,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: panicked: {msg}", c.name));
                continue;
            }
        };
        match c.expect {
            Expect::Completes if !done => failures.push(format!("{}: never completed", c.name)),
            Expect::Completes if took >= PROMPT => {
                failures.push(format!("{}: completed only after {took:?}", c.name))
            }
            Expect::Never if done => failures.push(format!("{}: completed", c.name)),
            Expect::Never if enters > MAX_ENTERS => failures.push(format!(
                "{}: the loop spun ({enters} kernel entries in {took:?})",
                c.name
            )),
            _ => {}
        }
        lp.close().unwrap();
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------- sleep

#[test]
fn r2_sleep_and_sleep_until_at_the_extremes() {
    let mut cases = vec![case(
        "sleep(ZERO)",
        Expect::Completes,
        sleep(Duration::ZERO),
    )];
    for (name, d) in huge_durations() {
        cases.push(case(format!("sleep({name})"), Expect::Never, async move {
            let s = sleep(d);
            assert!(
                s.deadline() >= far_future(),
                "sleep({name}) ends at {:?}",
                s.deadline()
            );
            s.await
        }));
    }
    for (name, at) in future_instants() {
        cases.push(case(
            format!("sleep_until({name})"),
            Expect::Never,
            sleep_until(at),
        ));
    }
    for (name, at) in past_instants() {
        cases.push(case(
            format!("sleep_until({name})"),
            Expect::Completes,
            sleep_until(at),
        ));
    }
    check(cases);
}

#[test]
fn r2_sleep_reset_to_the_extremes() {
    let mut cases = Vec::new();
    for (name, at) in future_instants() {
        cases.push(case(format!("reset({name})"), Expect::Never, async move {
            let mut s = sleep(ms(1));
            s.reset(at);
            assert_eq!(s.deadline(), at);
            s.await
        }));
        // Armed first, then moved far away while waiting.
        cases.push(case(
            format!("armed, then reset({name})"),
            Expect::Never,
            async move {
                let mut s = sleep(ms(1));
                let _ = wait_for(&mut s, Some(Duration::from_micros(1))).await;
                s.reset(at);
                s.await
            },
        ));
    }
    for (name, at) in past_instants() {
        cases.push(case(
            format!("reset({name})"),
            Expect::Completes,
            async move {
                let mut s = sleep(YEAR);
                s.reset(at);
                s.await
            },
        ));
        cases.push(case(
            format!("armed, then reset({name})"),
            Expect::Completes,
            async move {
                let mut s = sleep(YEAR);
                let _ = wait_for(&mut s, Some(Duration::from_micros(1))).await;
                s.reset(at);
                s.await
            },
        ));
    }
    check(cases);
}

// ---------------------------------------------------------------- interval

#[test]
fn r2_interval_with_a_huge_period_ticks_once_then_waits() {
    let mut cases = Vec::new();
    for (name, period) in huge_durations() {
        for missed in [MissedTicks::Burst, MissedTicks::Delay, MissedTicks::Skip] {
            cases.push(case(
                format!("interval({name}), {missed:?}: first tick"),
                Expect::Completes,
                async move {
                    let mut every = interval(period);
                    every.set_missed_ticks(missed);
                    let t0 = Instant::now();
                    let first = every.tick().await;
                    assert!(first <= Instant::now() && first >= t0 - ms(1));
                },
            ));
            cases.push(case(
                format!("interval({name}), {missed:?}: second tick"),
                Expect::Never,
                async move {
                    let mut every = interval(period);
                    every.set_missed_ticks(missed);
                    every.tick().await;
                    every.tick().await;
                },
            ));
        }
    }
    check(cases);
}

#[test]
fn r2_interval_with_a_zero_period_ticks_once_per_loop_turn() {
    // No panic; every tick yields once (like `sleep(ZERO)`), so a ticking
    // loop never starves the other tasks.
    let mut cases = Vec::new();
    for missed in [MissedTicks::Burst, MissedTicks::Delay, MissedTicks::Skip] {
        cases.push(case(
            format!("interval(ZERO), {missed:?}"),
            Expect::Completes,
            async move {
                let mut every = interval(Duration::ZERO);
                every.set_missed_ticks(missed);
                assert_eq!(every.period(), Duration::ZERO);
                let other = spawn(async {
                    for _ in 0..3 {
                        yield_now().await;
                    }
                });
                let mut last = every.tick().await;
                for _ in 0..10 {
                    let t = every.tick().await;
                    assert!(t >= last, "ticks go back in time");
                    last = t;
                }
                assert!(other.is_done(), "the ticks never let the other task run");
            },
        ));
    }
    check(cases);
}

// ---------------------------------------------------------------- callbacks

/// An event set by a callback.
fn flag() -> (ringloop::sync::Event, impl FnOnce() + 'static) {
    let e = ringloop::sync::Event::new();
    let f = e.clone();
    (e, move || f.set())
}

#[test]
fn r2_call_later_and_call_at_at_the_extremes() {
    let mut cases = Vec::new();
    // Through the running loop's `Handle` (the `EventLoop` methods, used
    // before the loop runs, are the next test).
    let mut durations = vec![("ZERO", Duration::ZERO, Expect::Completes)];
    durations.extend(huge_durations().map(|(n, d)| (n, d, Expect::Never)));
    for (name, d, expect) in durations {
        cases.push(case(format!("call_later({name})"), expect, async move {
            let (fired, set) = flag();
            let h = Handle::current().call_later(d, set).unwrap();
            let when = h.when().expect("a timed callback has a deadline");
            if expect == Expect::Never {
                assert!(when >= far_future(), "call_later({name}) due at {when:?}");
            }
            fired.wait().await;
        }));
    }
    let mut instants: Vec<_> = future_instants()
        .into_iter()
        .map(|(n, at)| (n, at, Expect::Never))
        .collect();
    instants.extend(past_instants().map(|(n, at)| (n, at, Expect::Completes)));
    for (name, at, expect) in instants {
        cases.push(case(format!("call_at({name})"), expect, async move {
            let (fired, set) = flag();
            let h = Handle::current().call_at(at, set).unwrap();
            assert_eq!(h.when(), Some(at));
            fired.wait().await;
        }));
    }
    check(cases);
}

#[test]
fn r2_event_loop_call_later_and_call_at_before_running() {
    // Scheduled on the `EventLoop` before it runs: the far ones never run,
    // the zero and past ones run at once.
    let lp = EventLoop::new().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let push = |tag: String| {
        let log = log.clone();
        move || log.lock().unwrap().push(tag)
    };
    let mut want = Vec::new();
    lp.call_later(Duration::ZERO, push("later ZERO".into()))
        .unwrap();
    want.push("later ZERO".to_string());
    for (name, d) in huge_durations() {
        lp.call_later(d, push(format!("later {name}"))).unwrap();
    }
    for (name, at) in future_instants() {
        lp.call_at(at, push(format!("at {name}"))).unwrap();
    }
    for (name, at) in past_instants() {
        lp.call_at(at, push(format!("at {name}"))).unwrap();
        want.push(format!("at {name}"));
    }
    let (done, took, enters) = run_limited(&lp, WATCH, Box::pin(pending::<()>()));
    assert!(!done && took < PROMPT);
    assert!(
        enters <= MAX_ENTERS,
        "the loop spun: {enters} kernel entries"
    );
    let mut got = log.lock().unwrap().clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------- combinators

#[test]
fn r2_wait_for_at_the_extremes() {
    let mut cases = vec![
        // A zero timeout never starts a fresh future (W3), ready or not.
        case("wait_for(ready, ZERO)", Expect::Completes, async {
            assert!(wait_for(async { 7 }, Some(Duration::ZERO)).await.is_err());
        }),
        case("wait_for(pending, ZERO)", Expect::Completes, async {
            assert!(
                wait_for(pending::<()>(), Some(Duration::ZERO))
                    .await
                    .is_err()
            );
        }),
    ];
    for (name, d) in huge_durations() {
        cases.push(case(
            format!("wait_for(5 ms sleep, {name})"),
            Expect::Completes,
            async move {
                assert_eq!(
                    wait_for(
                        async {
                            sleep(ms(5)).await;
                            7
                        },
                        Some(d)
                    )
                    .await,
                    Ok(7)
                );
            },
        ));
        cases.push(case(
            format!("wait_for(pending, {name})"),
            Expect::Never,
            async move {
                let _ = wait_for(pending::<()>(), Some(d)).await;
            },
        ));
    }
    check(cases);
}

#[test]
fn r2_timeout_scopes_at_the_extremes() {
    let mut cases = vec![case("timeout(ZERO)", Expect::Completes, async {
        assert!(timeout(Duration::ZERO).run(pending::<()>()).await.is_err());
    })];
    for (name, d) in huge_durations() {
        cases.push(case(
            format!("timeout({name}), quick body"),
            Expect::Completes,
            async move {
                let scope = timeout(d);
                assert!(scope.when().unwrap() >= far_future());
                assert_eq!(
                    scope
                        .run(async {
                            sleep(ms(5)).await;
                            7
                        })
                        .await,
                    Ok(7)
                );
            },
        ));
        cases.push(case(
            format!("timeout({name}), endless body"),
            Expect::Never,
            async move {
                let _ = timeout(d).run(pending::<()>()).await;
            },
        ));
    }
    for (name, at) in future_instants() {
        cases.push(case(
            format!("timeout_at({name})"),
            Expect::Never,
            async move {
                let _ = timeout_at(Some(at)).run(pending::<()>()).await;
            },
        ));
        cases.push(case(
            format!("reschedule({name})"),
            Expect::Never,
            async move {
                let scope = timeout(ms(1));
                let inner = scope.clone();
                let _ = scope
                    .run(async move {
                        inner.reschedule(Some(at)).expect("the scope is running");
                        pending::<()>().await
                    })
                    .await;
            },
        ));
    }
    for (name, at) in past_instants() {
        cases.push(case(
            format!("timeout_at({name})"),
            Expect::Completes,
            async move {
                let scope = timeout_at(Some(at));
                assert!(scope.run(pending::<()>()).await.is_err());
                assert!(scope.expired());
            },
        ));
        cases.push(case(
            format!("reschedule({name})"),
            Expect::Completes,
            async move {
                let scope = timeout(YEAR);
                let inner = scope.clone();
                let r = scope
                    .run(async move {
                        inner.reschedule(Some(at)).expect("the scope is running");
                        pending::<()>().await
                    })
                    .await;
                assert!(r.is_err());
            },
        ));
    }
    check(cases);
}

#[test]
fn r2_wait_and_as_completed_at_the_extremes() {
    let mut cases = vec![
        case("wait(.., ZERO)", Expect::Completes, async {
            let tasks = vec![spawn(async {}), spawn(pending::<()>())];
            yield_now().await;
            let (done, pending) = wait(tasks, ReturnWhen::AllCompleted, Some(Duration::ZERO)).await;
            assert_eq!((done.len(), pending.len()), (1, 1));
            for t in pending {
                t.cancel();
            }
        }),
        case("as_completed(.., ZERO)", Expect::Completes, async {
            let mut it = as_completed(vec![pending::<()>()], Some(Duration::ZERO));
            assert!(matches!(
                it.next().await,
                Some(Err(AsCompletedError::Timeout))
            ));
        }),
    ];
    for (name, d) in huge_durations() {
        cases.push(case(
            format!("wait(.., {name}), quick tasks"),
            Expect::Completes,
            async move {
                let tasks = vec![spawn(sleep(ms(2))), spawn(sleep(ms(4)))];
                let (done, pending) = wait(tasks, ReturnWhen::AllCompleted, Some(d)).await;
                assert_eq!((done.len(), pending.len()), (2, 0));
            },
        ));
        cases.push(case(
            format!("wait(.., {name}), endless task"),
            Expect::Never,
            async move {
                let _ = wait(
                    vec![spawn(pending::<()>())],
                    ReturnWhen::AllCompleted,
                    Some(d),
                )
                .await;
            },
        ));
        cases.push(case(
            format!("as_completed(.., {name})"),
            Expect::Completes,
            async move {
                let mut it = as_completed(vec![sleep(ms(3)), sleep(ms(1))], Some(d));
                assert!(matches!(it.next().await, Some(Ok(()))));
                assert!(matches!(it.next().await, Some(Ok(()))));
                assert!(it.next().await.is_none());
            },
        ));
        cases.push(case(
            format!("as_completed(endless, {name})"),
            Expect::Never,
            async move {
                let mut it = as_completed(vec![pending::<()>()], Some(d));
                let _ = it.next().await;
            },
        ));
    }
    check(cases);
}

// ---------------------------------------------------------------- TCP

#[test]
fn r2_connect_timeout_at_the_extremes() {
    let mut cases = vec![case("connect_timeout(ZERO)", Expect::Completes, async {
        // A zero timeout gives up at once, like `wait_for(.., ZERO)` on a
        // connection not yet made: deterministic, whatever the kernel's
        // speed.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let err = TcpStream::connect_timeout(addr, Duration::ZERO)
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    })];
    for (name, d) in huge_durations() {
        cases.push(case(
            format!("connect_timeout({name})"),
            Expect::Completes,
            async move {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let client = spawn(TcpStream::connect_timeout(addr, d));
                let (_server, peer) = listener.accept().await.unwrap();
                let stream = client
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(stream.local_addr().unwrap(), peer);
            },
        ));
    }
    check(cases);
}

/// Fills a listener's accept queue (backlog 0, nothing accepted) until a
/// connection attempt hangs; `None` if the kernel accepted them all anyway.
async fn full_listener() -> Option<(TcpListener, Vec<TcpStream>)> {
    let listener = TcpListener::bind_with(
        "127.0.0.1:0",
        ListenOptions {
            backlog: 0,
            ..ListenOptions::default()
        },
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut made = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(addr, ms(100)).await {
            Ok(s) => made.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Some((listener, made)),
            Err(e) => panic!("connecting to a full listener: {e}"),
        }
    }
    None
}

#[test]
fn r2_connect_timeout_huge_stays_pending_on_a_full_listener() {
    let mut cases = Vec::new();
    for (name, d) in huge_durations() {
        cases.push(case(
            format!("connect_timeout({name})"),
            Expect::Completes,
            async move {
                let Some((listener, _made)) = full_listener().await else {
                    eprintln!(
                        "skipped: the kernel never left a connection to a full listener pending"
                    );
                    return;
                };
                let addr = listener.local_addr().unwrap();
                let enters = ringloop::ring_stats().unwrap().enters;
                let connect = spawn(TcpStream::connect_timeout(addr, d));
                sleep(WATCH).await;
                assert!(
                    !connect.is_done(),
                    "{name}: {:?}",
                    connect.await.unwrap().map(drop)
                );
                let enters = ringloop::ring_stats().unwrap().enters - enters;
                assert!(
                    enters <= MAX_ENTERS,
                    "{name}: the loop spun ({enters} kernel entries)"
                );
                connect.cancel();
            },
        ));
    }
    check(cases);
}

// ---------------------------------------------------------------- threads

#[test]
fn r2_remote_task_wait_timeout_at_the_extremes() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let waiter = std::thread::spawn(move || {
        let task = run_coroutine_threadsafe(
            async {
                sleep(ms(20)).await;
                7
            },
            &handle,
        )
        .unwrap();
        // Zero: gives the task back at once.
        let t0 = Instant::now();
        let task = task.wait_timeout(Duration::ZERO).unwrap_err();
        assert!(t0.elapsed() < PROMPT);
        let mut results = Vec::new();
        // Huge: waits until the task is done.
        let mut task = Some(task);
        for (name, d) in huge_durations() {
            let t = task.take().unwrap_or_else(|| {
                run_coroutine_threadsafe(
                    async {
                        sleep(ms(2)).await;
                        7
                    },
                    &handle,
                )
                .unwrap()
            });
            let r = t.wait_timeout(d);
            results.push((name, r.ok().map(|r| r.unwrap())));
        }
        go_tx.send(()).unwrap();
        results
    });
    lp.run_until_complete(async {
        while go_rx.try_recv().is_err() {
            sleep(ms(1)).await;
        }
    })
    .unwrap();
    for (name, r) in waiter.join().unwrap() {
        assert_eq!(r, Some(7), "wait_timeout({name})");
    }
}

#[test]
fn r2_blocking_pool_idle_timeout_at_the_extremes() {
    for (name, d) in [("ZERO", Duration::ZERO)]
        .into_iter()
        .chain(huge_durations())
    {
        let pool = BlockingPool::builder()
            .max_threads(1)
            .idle_timeout(d)
            .build()
            .unwrap();
        assert_eq!(pool.idle_timeout(), d);
        let p = pool.clone();
        let r = ringloop::run(async move { p.spawn(|| 6 * 7).await.unwrap() }).unwrap();
        assert_eq!(r, 42, "{name}");
        if d.is_zero() {
            let t0 = Instant::now();
            while pool.threads() > 0 {
                assert!(t0.elapsed() < PROMPT, "a zero idle timeout kept the thread");
                std::thread::sleep(ms(1));
            }
        } else {
            std::thread::sleep(ms(20));
            assert_eq!(pool.threads(), 1, "idle_timeout({name}) let the thread go");
        }
    }
}

#[test]
fn r2_blocking_shutdown_timeouts_at_the_extremes() {
    // Zero: `run` returns without waiting for the job.
    let t0 = Instant::now();
    Builder::new()
        .blocking_shutdown_timeout(Duration::ZERO)
        .run(async {
            drop(ringloop::to_thread(|| std::thread::sleep(ms(300))));
        })
        .unwrap();
    assert!(t0.elapsed() < ms(250), "waited {:?}", t0.elapsed());
    for (name, d) in huge_durations() {
        // Huge: waits for the job.
        let finished = Arc::new(Mutex::new(false));
        let f = finished.clone();
        Builder::new()
            .blocking_shutdown_timeout(d)
            .run(async move {
                drop(ringloop::to_thread(move || {
                    std::thread::sleep(ms(20));
                    *f.lock().unwrap() = true;
                }));
            })
            .unwrap();
        assert!(
            *finished.lock().unwrap(),
            "blocking_shutdown_timeout({name})"
        );
        // The same through `shutdown_default_executor`.
        let lp = EventLoop::new().unwrap();
        drop(lp.run_in_executor(|| std::thread::sleep(ms(20))).unwrap());
        assert_eq!(lp.shutdown_default_executor(Some(d)).unwrap(), 0, "{name}");
        drop(lp.run_in_executor(|| std::thread::sleep(ms(200))).unwrap());
        let t0 = Instant::now();
        assert_eq!(
            lp.shutdown_default_executor(Some(Duration::ZERO)).unwrap(),
            1
        );
        assert!(t0.elapsed() < ms(150));
        lp.close().unwrap();
    }
}

#[test]
fn r2_builder_durations_at_the_extremes() {
    // The debug slow-poll threshold: zero reports every poll, huge none.
    let mut thresholds = vec![("ZERO", Duration::ZERO, true)];
    thresholds.extend(huge_durations().map(|(n, d)| (n, d, false)));
    for (name, d, reported) in thresholds {
        let lp = EventLoop::builder()
            .debug(true)
            .slow_callback_duration(d)
            .build()
            .unwrap();
        let slow = Arc::new(Mutex::new(0));
        let s = slow.clone();
        lp.set_exception_handler(move |cx| {
            if cx.kind() == ExceptionKind::SlowPoll {
                *s.lock().unwrap() += 1;
            }
        });
        lp.run_until_complete(async {
            spawn(async { std::thread::sleep(ms(2)) }).await.unwrap();
        })
        .unwrap();
        assert_eq!(
            *slow.lock().unwrap() > 0,
            reported,
            "slow_callback_duration({name})"
        );
    }
    // SQPOLL's idle time: either extreme builds a working loop (or the
    // kernel refuses SQPOLL with an error; never a panic).
    for (name, d) in [("ZERO", Duration::ZERO)]
        .into_iter()
        .chain(huge_durations())
    {
        match EventLoop::builder().sqpoll(d).build() {
            Ok(lp) => lp.run_until_complete(sleep(ms(1))).unwrap(),
            Err(e) => eprintln!("sqpoll({name}): the kernel refused SQPOLL: {e}"),
        }
    }
}

// ---------------------------------------------------------------- process

#[test]
fn r2_process_wait_with_extreme_timeouts() {
    use ringloop::process::Command;
    let mut cases = Vec::new();
    for (name, d) in huge_durations() {
        cases.push(case(
            format!("wait_for(child.wait(), {name})"),
            Expect::Completes,
            async move {
                let mut child = Command::new("true").spawn().unwrap();
                let status = wait_for(child.wait(), Some(d)).await.unwrap().unwrap();
                assert!(status.success());
            },
        ));
    }
    cases.push(case(
        "wait_for(child.wait(), ZERO)",
        Expect::Completes,
        async {
            let mut child = Command::new("sleep")
                .arg("10")
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            assert!(wait_for(child.wait(), Some(Duration::ZERO)).await.is_err());
        },
    ));
    check(cases);
}
