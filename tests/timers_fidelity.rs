//! Deadlines already in the past (SEMANTICS L11): even deadlines from before
//! the loop was created keep their order. They run earliest deadline first
//! (equal deadlines: in scheduling order), after the callbacks and tasks
//! that were already ready, as asyncio pops its timer heap into the ready
//! queue.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringloop::{EventLoop, Handle, sleep, sleep_until, spawn};

type Log = Rc<RefCell<Vec<String>>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn push(log: &Log, tag: impl Into<String>) -> impl FnOnce() + 'static {
    let log = log.clone();
    let tag = tag.into();
    move || log.borrow_mut().push(tag)
}

/// As far back as `Instant` goes.
fn farthest_past() -> Instant {
    let now = Instant::now();
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if now.checked_sub(Duration::from_secs(mid)).is_some() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    now - Duration::from_secs(lo)
}

/// `t - d`, or panics (the test needs the instant to exist).
fn before(t: Instant, d: Duration) -> Instant {
    t.checked_sub(d).expect("an instant that far back")
}

#[test]
fn l11_call_at_deadlines_before_the_loop_existed_run_earliest_first() {
    let t0 = Instant::now();
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    lp.call_soon(push(&log, "soon 1")).unwrap();
    // (tag, deadline), scheduled in this order: neither scheduling order
    // nor its reverse is deadline order.
    let table = [
        ("t0 - 20 ms", before(t0, ms(20))),
        ("t0 - 1 year", before(t0, Duration::from_secs(365 * 86_400))),
        ("t0 - 30 ms", before(t0, ms(30))),
        ("t0 - 20 ms again", before(t0, ms(20))),
        ("farthest past", farthest_past()),
        ("t0 - 10 s", before(t0, Duration::from_secs(10))),
        ("t0 - 1 us", before(t0, Duration::from_micros(1))),
        ("t0 - 5 ms", before(t0, ms(5))),
    ];
    for (tag, at) in table {
        lp.call_at(at, push(&log, tag)).unwrap();
    }
    // Ready already: runs before every timer, though scheduled after them.
    lp.call_soon(push(&log, "soon 2")).unwrap();
    let mut want: Vec<_> = table
        .iter()
        .enumerate()
        .map(|(i, (tag, at))| (*at, i, *tag))
        .collect();
    want.sort();
    let want: Vec<String> = ["soon 1", "soon 2"]
        .into_iter()
        .chain(want.into_iter().map(|(_, _, tag)| tag))
        .map(String::from)
        .collect();
    lp.run_until_complete(sleep(ms(5))).unwrap();
    assert_eq!(*log.borrow(), want);
}

#[test]
fn l11_past_deadlines_from_inside_the_loop_run_earliest_first_after_the_ready_ones() {
    let t0 = Instant::now();
    std::thread::sleep(ms(3));
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    lp.run_until_complete({
        let log = log.clone();
        async move {
            // Past deadlines on both sides of the loop's creation.
            let now = Instant::now();
            let h = Handle::current();
            h.call_at(now, push(&log, "now")).unwrap();
            h.call_at(t0, push(&log, "t0 (before the loop)")).unwrap();
            h.call_at(
                before(now, Duration::from_micros(500)),
                push(&log, "now - 500 us"),
            )
            .unwrap();
            h.call_at(before(t0, ms(1)), push(&log, "t0 - 1 ms"))
                .unwrap();
            h.call_soon(push(&log, "soon")).unwrap();
            let task = spawn({
                let log = log.clone();
                async move { log.borrow_mut().push("task".into()) }
            });
            task.await.unwrap();
            sleep(ms(2)).await;
        }
    })
    .unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "soon",
            "task",
            "t0 - 1 ms",
            "t0 (before the loop)",
            "now - 500 us",
            "now"
        ]
    );
}

#[test]
fn l11_sleeps_whose_deadline_passed_before_the_loop_wake_in_deadline_order() {
    // Sleeps made (deadline still ahead) before the loop, first polled after
    // their deadlines passed and the loop was created; sleeps moved to a
    // deadline before the loop; and callbacks in between. All are armed in
    // the same loop turn, by tasks that run in this (scrambled) order.
    let t0 = Instant::now();
    let made: Vec<_> = [9, 3, 6].map(|d| (d, sleep_until(t0 + ms(d)))).into();
    std::thread::sleep(ms(15));
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let mut tasks = Vec::new();
    let mut made = made.into_iter();
    for (d, kind) in [
        (7, "callback"),
        (9, "sleep"),
        (8, "reset"),
        (1, "callback"),
        (3, "sleep"),
        (2, "reset"),
        (4, "callback"),
        (6, "sleep"),
    ] {
        let log = log.clone();
        let tag = format!("{kind} t0 + {d} ms");
        let task = match kind {
            "callback" => lp.spawn(async move {
                Handle::current()
                    .call_at(t0 + ms(d), push(&log, tag))
                    .unwrap();
            }),
            "sleep" => {
                let (at, s) = made.next().unwrap();
                assert_eq!(at, d);
                lp.spawn(async move {
                    s.await;
                    log.borrow_mut().push(tag);
                })
            }
            _ => lp.spawn(async move {
                let mut s = sleep(Duration::from_secs(3600));
                s.reset(t0 + ms(d));
                s.await;
                log.borrow_mut().push(tag);
            }),
        };
        tasks.push(task.unwrap());
    }
    lp.run_until_complete(async move {
        for t in tasks {
            t.await.unwrap();
        }
        // The last callback runs in the turn its timer fired.
        sleep(ms(1)).await;
    })
    .unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "callback t0 + 1 ms",
            "reset t0 + 2 ms",
            "sleep t0 + 3 ms",
            "callback t0 + 4 ms",
            "sleep t0 + 6 ms",
            "callback t0 + 7 ms",
            "reset t0 + 8 ms",
            "sleep t0 + 9 ms",
        ]
    );
}

#[test]
fn l11_sleep_until_a_past_instant_resumes_after_the_ready_work_from_any_time() {
    // `sleep_until` of an instant already past when it is made yields once
    // (like asyncio's `sleep(0)`), whether the instant is from before the
    // loop or as far back as `Instant` goes: never a timer that would wait
    // behind other timers or round to the loop's start.
    let t0 = Instant::now();
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    for (tag, at) in [
        ("farthest past", farthest_past()),
        ("t0 - 1 ms", before(t0, ms(1))),
    ] {
        let log = log.clone();
        lp.spawn(async move {
            sleep_until(at).await;
            log.borrow_mut().push(format!("sleeper {tag}"));
        })
        .unwrap()
        .detach();
    }
    lp.call_soon(push(&log, "soon")).unwrap();
    lp.run_until_complete(sleep(ms(2))).unwrap();
    assert_eq!(
        *log.borrow(),
        ["soon", "sleeper farthest past", "sleeper t0 - 1 ms"]
    );
}
