//! `ringloop::sync` beside `tokio::sync`, both on one thread (tokio's
//! `current_thread` runtime), the loop or runtime made once outside the
//! timing:
//!
//! - `ping_pong`: two tasks pass a counter back and forth `ROUND_TRIPS`
//!   times through two bounded queues of one slot (ringloop `Queue` vs
//!   `tokio::sync::mpsc::channel(1)`).
//! - `lock_contention`: `LOCKERS` tasks share one lock; each locks it
//!   `LOCKS_EACH` times, yields once while holding it, and unlocks
//!   (ringloop `Lock` vs `tokio::sync::Mutex`).
//!   `ringloop_floor` does the same hand-offs with two bare wakers and no
//!   queue: the runtime's own cost of switching tasks, under any primitive.
//! - `semaphore_uncontended`: one task acquires and releases a permit
//!   `ACQUIRES` times; `semaphore_contended`: `LOCKERS` tasks share
//!   `PERMITS` permits, each acquiring `LOCKS_EACH` times with a yield while
//!   holding one (ringloop `Semaphore` vs `tokio::sync::Semaphore`).
//! - `cross_ping_pong`: the same ping-pong between two threads, each running
//!   its own loop (ringloop `sync::cross::channel(1)`, loop ↔ loop) or its
//!   own `current_thread` runtime (`tokio::sync::mpsc::channel(1)`),
//!   `CROSS_ROUND_TRIPS` round trips; every hand-off wakes a task on the
//!   other thread. The ponger's thread and loop are made in each iteration,
//!   alike for both.
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
    g.bench_function("ringloop", |b| {
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
    g.bench_function("ringloop_floor", |b| {
        b.iter(|| {
            let last = lp.run_until_complete(bare_ping_pong()).unwrap();
            assert_eq!(last, ROUND_TRIPS);
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
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

/// The same hand-offs with no queue at all: a shared counter and two bare
/// wakers. What is left is the runtime's cost of switching tasks, the floor
/// under any ringloop primitive.
async fn bare_ping_pong() -> u64 {
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
    let ponger = ringloop::spawn({
        let s = shared.clone();
        async move {
            for i in 0..ROUND_TRIPS {
                wait(&s, 1, 2 * i + 1).await;
                pass(&s, 0, 2 * i + 2);
            }
        }
    });
    for i in 0..ROUND_TRIPS {
        pass(&shared, 1, 2 * i + 1);
        wait(&shared, 0, 2 * i + 2).await;
    }
    ponger.await.unwrap();
    shared.turn.get() / 2
}

fn lock_contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_contention");
    g.throughput(Throughput::Elements((LOCKERS * LOCKS_EACH) as u64));
    let lp = ringloop_loop();
    g.bench_function("ringloop", |b| {
        b.iter(|| {
            let total = lp
                .run_until_complete(async {
                    let lock = ringloop::sync::Lock::new();
                    let count = Rc::new(std::cell::Cell::new(0));
                    let tasks: Vec<_> = (0..LOCKERS)
                        .map(|_| {
                            let (lock, count) = (lock.clone(), count.clone());
                            ringloop::spawn(async move {
                                for _ in 0..LOCKS_EACH {
                                    let _guard = lock.lock().await;
                                    ringloop::yield_now().await;
                                    count.set(count.get() + 1);
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    count.get()
                })
                .unwrap();
            assert_eq!(total, LOCKERS * LOCKS_EACH);
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            let total = rt.block_on(async {
                let lock = std::sync::Arc::new(tokio::sync::Mutex::new(0usize));
                let tasks: Vec<_> = (0..LOCKERS)
                    .map(|_| {
                        let lock = lock.clone();
                        tokio::spawn(async move {
                            for _ in 0..LOCKS_EACH {
                                let mut guard = lock.lock().await;
                                tokio::task::yield_now().await;
                                *guard += 1;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                *lock.lock().await
            });
            assert_eq!(total, LOCKERS * LOCKS_EACH);
        })
    });
    g.finish();
}

fn semaphore(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore_uncontended");
    let lp = ringloop_loop();
    let rt = tokio_rt();

    g.throughput(Throughput::Elements(ACQUIRES as u64));
    g.bench_function("ringloop", |b| {
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
    g.bench_function("tokio", |b| {
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

    let mut g = c.benchmark_group("semaphore_contended");
    g.throughput(Throughput::Elements((LOCKERS * LOCKS_EACH) as u64));
    g.bench_function("ringloop", |b| {
        b.iter(|| {
            lp.run_until_complete(async {
                let sem = ringloop::sync::Semaphore::new(PERMITS);
                let tasks: Vec<_> = (0..LOCKERS)
                    .map(|_| {
                        let sem = sem.clone();
                        ringloop::spawn(async move {
                            for _ in 0..LOCKS_EACH {
                                let _permit = sem.acquire().await;
                                ringloop::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                assert_eq!(sem.available_permits(), PERMITS);
            })
            .unwrap()
        })
    });
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(PERMITS));
                let tasks: Vec<_> = (0..LOCKERS)
                    .map(|_| {
                        let sem = sem.clone();
                        tokio::spawn(async move {
                            for _ in 0..LOCKS_EACH {
                                let _permit = sem.acquire().await.unwrap();
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                assert_eq!(sem.available_permits(), PERMITS);
            })
        })
    });
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
    targets = ping_pong, lock_contention, semaphore, cross_ping_pong
}
criterion_main!(benches);
