//! `ringloop::sync` beside `tokio::sync`, both on one thread (tokio's
//! `current_thread` runtime), the loop or runtime made once outside the
//! timing.
//!
//! What the ratios measure: ringloop's `sync` primitives are `Rc`-based and
//! `!Send` (one loop, one thread); `tokio::sync`'s are thread-safe (atomics,
//! a mutex-protected waiter list) even on a `current_thread` runtime or in a
//! `LocalSet`. So `ringloop_rc` against `tokio_sync_threadsafe` is largely
//! *what thread safety costs*, not a faster runtime. tokio has no `!Send`
//! channel, lock or semaphore, and the dependency rules allow no other crate
//! that has one, so the only like-for-like `!Send` row is the runtime floor
//! (`ping_pong/ringloop_rc_floor` vs `ping_pong/tokio_localset_floor`).
//!
//! - `ping_pong`: two tasks pass a counter back and forth `ROUND_TRIPS`
//!   times through two bounded queues of one slot: `ringloop_rc` (ringloop
//!   `Queue`) vs `tokio_sync_threadsafe` (`tokio::sync::mpsc::channel(1)`).
//!   `ringloop_rc_floor` / `tokio_localset_floor` do the same hand-offs with
//!   an `Rc` counter and two bare wakers and no queue, on ringloop and on a
//!   tokio `LocalSet` (`spawn_local`): each runtime's own cost of switching
//!   tasks, under any primitive.
//! - `lock_contention`: `LOCKERS` tasks share one lock; each locks it
//!   `LOCKS_EACH` times, yields once while holding it, and unlocks
//!   (ringloop `Lock` vs `tokio::sync::Mutex`).
//! - `semaphore_uncontended`: one task acquires and releases a permit
//!   `ACQUIRES` times; `semaphore_contended`: `LOCKERS` tasks share
//!   `PERMITS` permits, each acquiring `LOCKS_EACH` times with a yield while
//!   holding one (ringloop `Semaphore` vs `tokio::sync::Semaphore`).
//!
//!   In `lock_contention` and `semaphore_contended` the `*_yield_now` rows
//!   use each runtime's `yield_now`, which is not the same work (tokio's
//!   defers the task until its I/O driver has been polled; ringloop's
//!   requeues); the `*_requeue` rows use one hand-written yield (wake own
//!   waker, `Pending` once) on both sides: compare `ringloop_rc_requeue`
//!   with `tokio_sync_threadsafe_requeue`.
//! - `cross_ping_pong`: the same ping-pong between two threads, each running
//!   its own loop (ringloop `sync::cross::channel(1)`, loop ↔ loop) or its
//!   own `current_thread` runtime (`tokio::sync::mpsc::channel(1)`),
//!   `CROSS_ROUND_TRIPS` round trips; every hand-off wakes a task on the
//!   other thread (both sides thread-safe). The ponger's thread and loop are
//!   made in each iteration, alike for both.
//!
//! Run: `cargo bench --bench sync`.

use std::rc::Rc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROUND_TRIPS: u64 = 10_000;
const LOCKERS: usize = 100;
const LOCKS_EACH: usize = 100;
const ACQUIRES: usize = 10_000;
const PERMITS: usize = 10;
const CROSS_ROUND_TRIPS: u64 = 2_000;

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

fn ringloop_loop() -> ringloop::EventLoop {
    ringloop::EventLoop::new().expect("io_uring")
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("ping_pong");
    g.throughput(Throughput::Elements(ROUND_TRIPS));
    let lp = ringloop_loop();
    g.bench_function("ringloop_rc", |b| {
        b.iter(|| {
            let last = lp
                .run_until_complete(async {
                    use ringloop::sync::Queue;
                    let (ping, pong) = (Queue::new(1), Queue::new(1));
                    let ponger = ringloop::spawn({
                        let (ping, pong) = (ping.clone(), pong.clone());
                        async move {
                            for _ in 0..ROUND_TRIPS {
                                let n: u64 = ping.get().await.unwrap();
                                pong.put(n + 1).await.unwrap();
                            }
                        }
                    });
                    let mut n = 0;
                    for _ in 0..ROUND_TRIPS {
                        ping.put(n).await.unwrap();
                        n = pong.get().await.unwrap();
                    }
                    ponger.await.unwrap();
                    n
                })
                .unwrap();
            assert_eq!(last, ROUND_TRIPS);
        })
    });
    g.bench_function("ringloop_rc_floor", |b| {
        b.iter(|| {
            let last = lp
                .run_until_complete(bare_ping_pong(|f| {
                    let t = ringloop::spawn(f);
                    async move { t.await.unwrap() }
                }))
                .unwrap();
            assert_eq!(last, ROUND_TRIPS);
        })
    });
    drop(lp);
    let rt = tokio_rt();
    g.bench_function("tokio_localset_floor", |b| {
        b.iter(|| {
            let local = tokio::task::LocalSet::new();
            let last = local.block_on(
                &rt,
                bare_ping_pong(|f| {
                    let t = tokio::task::spawn_local(f);
                    async move { t.await.unwrap() }
                }),
            );
            assert_eq!(last, ROUND_TRIPS);
        })
    });
    g.bench_function("tokio_sync_threadsafe", |b| {
        b.iter(|| {
            let last = rt.block_on(async {
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let ponger = tokio::spawn(async move {
                    for _ in 0..ROUND_TRIPS {
                        let n = ping_rx.recv().await.unwrap();
                        pong_tx.send(n + 1).await.unwrap();
                    }
                });
                let mut n = 0;
                for _ in 0..ROUND_TRIPS {
                    ping_tx.send(n).await.unwrap();
                    n = pong_rx.recv().await.unwrap();
                }
                ponger.await.unwrap();
                n
            });
            assert_eq!(last, ROUND_TRIPS);
        })
    });
    g.finish();
}

/// The same hand-offs with no queue at all: a shared counter (`Rc`) and two
/// bare wakers. What is left is the runtime's cost of switching tasks, the
/// floor under any primitive. `spawn` starts the ponger on the runtime
/// measured (ringloop, or tokio's `spawn_local` in a `LocalSet`) and gives
/// back a future of its end.
async fn bare_ping_pong<S, J>(spawn: S) -> u64
where
    S: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) -> J,
    J: std::future::Future<Output = ()>,
{
    use std::cell::{Cell, RefCell};
    use std::task::{Poll, Waker};

    #[derive(Default)]
    struct Shared {
        turn: Cell<u64>,
        wakers: [RefCell<Option<Waker>>; 2],
    }

    /// Sets the turn and wakes the other side.
    fn pass(s: &Shared, to: usize, turn: u64) {
        s.turn.set(turn);
        if let Some(w) = s.wakers[to].borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits until the turn is `want`.
    async fn wait(s: &Shared, me: usize, want: u64) {
        std::future::poll_fn(|cx| {
            if s.turn.get() == want {
                Poll::Ready(())
            } else {
                *s.wakers[me].borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    let shared = Rc::new(Shared::default());
    let ponger = spawn({
        let s = shared.clone();
        Box::pin(async move {
            for i in 0..ROUND_TRIPS {
                wait(&s, 1, 2 * i + 1).await;
                pass(&s, 0, 2 * i + 2);
            }
        })
    });
    for i in 0..ROUND_TRIPS {
        pass(&shared, 1, 2 * i + 1);
        wait(&shared, 0, 2 * i + 2).await;
    }
    ponger.await;
    shared.turn.get() / 2
}

#[path = "common/yields.rs"]
mod yields;
use yields::{Requeue, Yield};

/// The rows of `lock_contention` and `semaphore_contended`: ids and yields.
/// Compare `ringloop_rc_requeue` with `tokio_sync_threadsafe_requeue` (the
/// same work); the `yield_now` rows time different yields.
const RINGLOOP_YIELDS: [(&str, Yield); 2] = [
    ("ringloop_rc_yield_now", Yield::Native),
    ("ringloop_rc_requeue", Yield::Requeue),
];
const TOKIO_YIELDS: [(&str, Yield); 2] = [
    (
        "tokio_sync_threadsafe_yield_now_defers_to_driver",
        Yield::Native,
    ),
    ("tokio_sync_threadsafe_requeue", Yield::Requeue),
];

async fn ringloop_yield(how: Yield) {
    match how {
        Yield::Native => ringloop::yield_now().await,
        Yield::Requeue => Requeue(false).await,
    }
}

async fn tokio_yield(how: Yield) {
    match how {
        Yield::Native => tokio::task::yield_now().await,
        Yield::Requeue => Requeue(false).await,
    }
}

/// `LOCKERS` ringloop tasks each locking `LOCKS_EACH` times, yielding while
/// holding the lock; returns the count the lock protected.
async fn ringloop_lockers(how: Yield) -> usize {
    let lock = ringloop::sync::Lock::new();
    let count = Rc::new(std::cell::Cell::new(0));
    let tasks: Vec<_> = (0..LOCKERS)
        .map(|_| {
            let (lock, count) = (lock.clone(), count.clone());
            ringloop::spawn(async move {
                for _ in 0..LOCKS_EACH {
                    let _guard = lock.lock().await;
                    ringloop_yield(how).await;
                    count.set(count.get() + 1);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    count.get()
}

/// The tokio twin of [`ringloop_lockers`] (`tokio::sync::Mutex` in an `Arc`).
async fn tokio_lockers(how: Yield) -> usize {
    let lock = std::sync::Arc::new(tokio::sync::Mutex::new(0usize));
    let tasks: Vec<_> = (0..LOCKERS)
        .map(|_| {
            let lock = lock.clone();
            tokio::spawn(async move {
                for _ in 0..LOCKS_EACH {
                    let mut guard = lock.lock().await;
                    tokio_yield(how).await;
                    *guard += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    *lock.lock().await
}

fn lock_contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_contention");
    g.throughput(Throughput::Elements((LOCKERS * LOCKS_EACH) as u64));
    let lp = ringloop_loop();
    for (id, how) in RINGLOOP_YIELDS {
        g.bench_function(id, |b| {
            b.iter(|| {
                let total = lp.run_until_complete(ringloop_lockers(how)).unwrap();
                assert_eq!(total, LOCKERS * LOCKS_EACH);
            })
        });
    }
    drop(lp);
    let rt = tokio_rt();
    for (id, how) in TOKIO_YIELDS {
        g.bench_function(id, |b| {
            b.iter(|| {
                let total = rt.block_on(tokio_lockers(how));
                assert_eq!(total, LOCKERS * LOCKS_EACH);
            })
        });
    }
    g.finish();
}

fn semaphore_uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore_uncontended");
    g.throughput(Throughput::Elements(ACQUIRES as u64));
    let lp = ringloop_loop();
    g.bench_function("ringloop_rc", |b| {
        b.iter(|| {
            lp.run_until_complete(async {
                let sem = ringloop::sync::Semaphore::new(1);
                for _ in 0..ACQUIRES {
                    let permit = sem.acquire().await;
                    std::hint::black_box(&permit);
                }
                assert_eq!(sem.available_permits(), 1);
            })
            .unwrap()
        })
    });
    drop(lp);
    let rt = tokio_rt();
    g.bench_function("tokio_sync_threadsafe", |b| {
        b.iter(|| {
            rt.block_on(async {
                let sem = tokio::sync::Semaphore::new(1);
                for _ in 0..ACQUIRES {
                    let permit = sem.acquire().await.unwrap();
                    std::hint::black_box(&permit);
                }
                assert_eq!(sem.available_permits(), 1);
            })
        })
    });
    g.finish();
}

/// `LOCKERS` ringloop tasks sharing `PERMITS` permits, each acquiring
/// `LOCKS_EACH` times and yielding while holding one; returns the number of
/// acquisitions.
async fn ringloop_acquirers(how: Yield) -> usize {
    let sem = ringloop::sync::Semaphore::new(PERMITS);
    let tasks: Vec<_> = (0..LOCKERS)
        .map(|_| {
            let sem = sem.clone();
            ringloop::spawn(async move {
                for _ in 0..LOCKS_EACH {
                    let _permit = sem.acquire().await;
                    ringloop_yield(how).await;
                }
                LOCKS_EACH
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    assert_eq!(sem.available_permits(), PERMITS);
    done
}

/// The tokio twin of [`ringloop_acquirers`] (`tokio::sync::Semaphore`).
async fn tokio_acquirers(how: Yield) -> usize {
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(PERMITS));
    let tasks: Vec<_> = (0..LOCKERS)
        .map(|_| {
            let sem = sem.clone();
            tokio::spawn(async move {
                for _ in 0..LOCKS_EACH {
                    let _permit = sem.acquire().await.unwrap();
                    tokio_yield(how).await;
                }
                LOCKS_EACH
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    assert_eq!(sem.available_permits(), PERMITS);
    done
}

fn semaphore_contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore_contended");
    g.throughput(Throughput::Elements((LOCKERS * LOCKS_EACH) as u64));
    let lp = ringloop_loop();
    for (id, how) in RINGLOOP_YIELDS {
        g.bench_function(id, |b| {
            b.iter(|| {
                let done = lp.run_until_complete(ringloop_acquirers(how)).unwrap();
                assert_eq!(done, LOCKERS * LOCKS_EACH);
            })
        });
    }
    drop(lp);
    let rt = tokio_rt();
    for (id, how) in TOKIO_YIELDS {
        g.bench_function(id, |b| {
            b.iter(|| {
                let done = rt.block_on(tokio_acquirers(how));
                assert_eq!(done, LOCKERS * LOCKS_EACH);
            })
        });
    }
    g.finish();
}

fn cross_ping_pong(c: &mut Criterion) {
    use ringloop::sync::cross;

    let mut g = c.benchmark_group("cross_ping_pong");
    g.throughput(Throughput::Elements(CROSS_ROUND_TRIPS));
    g.sample_size(20);
    let lp = ringloop_loop();
    g.bench_function("ringloop", |b| {
        b.iter(|| {
            let (ping_tx, mut ping_rx) = cross::channel::<u64>(1).unwrap();
            let (pong_tx, mut pong_rx) = cross::channel::<u64>(1).unwrap();
            let ponger = std::thread::spawn(move || {
                ringloop::run(async move {
                    while let Some(n) = ping_rx.recv().await {
                        pong_tx.send(n + 1).await.unwrap();
                    }
                })
                .unwrap();
            });
            let last = lp
                .run_until_complete(async move {
                    let mut n = 0;
                    for _ in 0..CROSS_ROUND_TRIPS {
                        ping_tx.send(n).await.unwrap();
                        n = pong_rx.recv().await.unwrap();
                    }
                    n
                })
                .unwrap();
            ponger.join().unwrap();
            assert_eq!(last, CROSS_ROUND_TRIPS);
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let ponger = std::thread::spawn(move || {
                tokio_rt().block_on(async move {
                    while let Some(n) = ping_rx.recv().await {
                        pong_tx.send(n + 1).await.unwrap();
                    }
                })
            });
            let last = rt.block_on(async move {
                let mut n = 0;
                for _ in 0..CROSS_ROUND_TRIPS {
                    ping_tx.send(n).await.unwrap();
                    n = pong_rx.recv().await.unwrap();
                }
                n
            });
            ponger.join().unwrap();
            assert_eq!(last, CROSS_ROUND_TRIPS);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = ping_pong, lock_contention, semaphore_uncontended, semaphore_contended, cross_ping_pong
}
criterion_main!(benches);
