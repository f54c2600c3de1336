//! Sleep behaviours (SEMANTICS S1–S4): `sleep(0)` yields exactly once,
//! sleeps are never early, cancelled sleeps leave no timer behind, and
//! concurrent sleeps overlap.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use ringloop::{EventLoop, sleep, sleep_until, spawn, yield_now};

type Log<T> = Rc<RefCell<Vec<T>>>;

fn new_log<T>() -> Log<T> {
    Rc::default()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------- S1

/// Runs `pause` in a task after spawning three tasks (one of which spawns a
/// fourth), and returns the order in which they all ran.
fn order_around(pause: impl Future<Output = ()> + 'static) -> Vec<&'static str> {
    let order = new_log();
    ringloop::run({
        let order = order.clone();
        async move {
            let o = order.clone();
            let sleeper = spawn(async move {
                let tasks: Vec<_> = ["a", "b", "c"]
                    .into_iter()
                    .map(|name| {
                        let o = o.clone();
                        spawn(async move {
                            o.borrow_mut().push(name);
                            if name == "a" {
                                // Became ready after the sleeper yielded.
                                let o = o.clone();
                                spawn(async move { o.borrow_mut().push("spawned by a") }).detach();
                            }
                        })
                    })
                    .collect();
                pause.await;
                o.borrow_mut().push("sleeper resumed");
                for t in tasks {
                    t.await.unwrap();
                }
            });
            sleeper.await.unwrap();
            yield_now().await;
        }
    })
    .unwrap();
    order.take()
}

#[test]
fn s1_sleep_zero_yields_exactly_once() {
    // Every task ready before the sleep runs first; one made ready while
    // the sleeper waited runs after it (a second yield would let it in).
    assert_eq!(
        order_around(sleep(Duration::ZERO)),
        ["a", "b", "c", "sleeper resumed", "spawned by a"]
    );
}

#[test]
fn s1_yield_now_and_a_past_deadline_also_yield_exactly_once() {
    let expected = ["a", "b", "c", "sleeper resumed", "spawned by a"];
    assert_eq!(order_around(yield_now()), expected);
    let past = Instant::now() - ms(5);
    assert_eq!(order_around(sleep_until(past)), expected);
}

#[test]
fn s1_sleep_zero_with_nothing_else_ready_returns_promptly() {
    let lp = EventLoop::new().unwrap();
    let t0 = Instant::now();
    lp.run_until_complete(async {
        for _ in 0..1000 {
            sleep(Duration::ZERO).await;
        }
    })
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
}

// ---------------------------------------------------------------- S2

#[test]
fn s2_sleep_never_completes_before_its_duration() {
    ringloop::run(async {
        for d in [1, 2, 5, 10, 20] {
            let t0 = Instant::now();
            sleep(ms(d)).await;
            let took = t0.elapsed();
            assert!(took >= ms(d), "sleep({d} ms) took {took:?}");
            assert!(took < Duration::from_secs(2));
        }
    })
    .unwrap();
}

#[test]
fn s2_concurrent_sleeps_each_last_their_duration_and_end_in_deadline_order() {
    let order = new_log();
    ringloop::run({
        let order = order.clone();
        async move {
            let tasks: Vec<_> = [30u64, 10, 20, 40]
                .into_iter()
                .map(|d| {
                    let o = order.clone();
                    spawn(async move {
                        let t0 = Instant::now();
                        sleep(ms(d)).await;
                        let took = t0.elapsed();
                        o.borrow_mut().push(d);
                        took >= ms(d)
                    })
                })
                .collect();
            for t in tasks {
                assert!(t.await.unwrap(), "a sleep ended early");
            }
        }
    })
    .unwrap();
    assert_eq!(*order.borrow(), [10, 20, 30, 40]);
}

#[test]
fn s2_sleep_until_never_completes_before_the_deadline() {
    ringloop::run(async {
        let deadline = Instant::now() + ms(15);
        let s = sleep_until(deadline);
        assert_eq!(s.deadline(), deadline);
        s.await;
        assert!(Instant::now() >= deadline);
    })
    .unwrap();
}

#[test]
fn s2_interval_ticks_are_never_early() {
    ringloop::run(async {
        let mut every = ringloop::interval(ms(5));
        let mut ticks = Vec::new();
        for _ in 0..4 {
            let due = every.tick().await;
            ticks.push((due, Instant::now()));
        }
        for (i, (due, returned)) in ticks.iter().enumerate() {
            assert!(returned >= due, "tick {i} returned before it was due");
            assert_eq!(*due - ticks[0].0, ms(5) * i as u32, "tick {i} off period");
        }
    })
    .unwrap();
}

// ---------------------------------------------------------------- S3

#[test]
fn s3_a_dropped_sleep_never_wakes_its_waker() {
    let wakes = Arc::new(CountingWaker::default());
    let waker = Waker::from(wakes.clone());
    ringloop::run(async move {
        {
            let mut s = pin!(sleep(ms(5)));
            let mut cx = Context::from_waker(&waker);
            assert!(s.as_mut().poll(&mut cx).is_pending());
        } // dropped: the timer is disarmed
        sleep(ms(40)).await;
    })
    .unwrap();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "a cancelled sleep woke");
}

#[test]
fn s3_a_rescheduled_sleep_leaves_no_timer_for_its_old_deadline() {
    let old = Arc::new(CountingWaker::default());
    let old_waker = Waker::from(old.clone());
    ringloop::run(async move {
        let mut s = Box::pin(sleep(ms(5)));
        assert!(
            s.as_mut()
                .poll(&mut Context::from_waker(&old_waker))
                .is_pending()
        );
        let t0 = Instant::now();
        s.as_mut().reset(t0 + ms(40));
        s.await; // re-armed with this task's waker
        assert!(t0.elapsed() >= ms(40));
    })
    .unwrap();
    assert_eq!(old.0.load(Ordering::SeqCst), 0, "the old deadline fired");
}

#[test]
fn s3_a_cancelled_sleeping_task_never_resumes() {
    let events = new_log();
    ringloop::run({
        let events = events.clone();
        async move {
            let e = events.clone();
            let t = spawn(async move {
                sleep(ms(5)).await;
                e.borrow_mut().push("woke up");
            });
            yield_now().await;
            assert!(t.cancel());
            assert!(t.await.unwrap_err().is_cancelled());
            sleep(ms(30)).await;
        }
    })
    .unwrap();
    assert!(events.borrow().is_empty());
}

#[test]
fn s3_cancelled_sleeps_leave_no_kernel_wakeups_behind() {
    let lp = EventLoop::new().unwrap();
    let enters = lp
        .run_until_complete(async {
            // Fifty sleeps with distinct deadlines 1 ms apart, all cancelled.
            let sleepers: Vec<_> = (1..=50).map(|i| spawn(sleep(ms(i)))).collect();
            yield_now().await; // every timer is armed
            let handles: Vec<_> = sleepers.iter().map(|t| t.handle()).collect();
            drop(sleepers);
            yield_now().await; // the cancellations are processed
            assert!(handles.iter().all(|h| h.is_cancelled()));

            let before = lp.enter_count();
            sleep(ms(80)).await;
            lp.enter_count() - before
        })
        .unwrap();
    // An armed timer per cancelled sleep would end the wait about 50 times;
    // with none left the loop waits once (plus a little slack).
    assert!(enters < 10, "{enters} io_uring_enter calls while idle");
}

// ---------------------------------------------------------------- S4

#[test]
fn s4_seed_example_two_sleeps_take_the_longer_not_the_sum() {
    let events = new_log();
    let t0 = Instant::now();
    let (a, b) = ringloop::run({
        let events = events.clone();
        async move {
            let say_after = |delay: u64, what: &'static str| {
                let e = events.clone();
                async move {
                    e.borrow_mut().push(format!("{what} started"));
                    sleep(ms(delay)).await;
                    e.borrow_mut().push(format!("{what} finished"));
                    what
                }
            };
            let slow = spawn(say_after(120, "slow"));
            let fast = spawn(say_after(10, "fast"));
            (slow.await.unwrap(), fast.await.unwrap())
        }
    })
    .unwrap();
    let elapsed = t0.elapsed();
    assert_eq!((a, b), ("slow", "fast"));
    // Both started before either finished: they ran concurrently.
    assert_eq!(
        *events.borrow(),
        [
            "slow started",
            "fast started",
            "fast finished",
            "slow finished"
        ]
    );
    assert!(elapsed >= ms(120), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}
