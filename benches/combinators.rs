//! Combinator benchmarks, each beside its tokio / futures twin:
//!
//! - `gather`: 10,000 trivial children gathered, one row per idiom:
//!   `ringloop_gather` (spawns each as a task), `ringloop_spawn_vec_in_order`
//!   (spawn, then await the `Task`s in order), `ringloop_join_all_spawned`
//!   (`futures::future::join_all` over `Task`s); on a tokio
//!   `current_thread` runtime `tokio_joinset`, `tokio_join_all_spawned`
//!   (`join_all` over `JoinHandle`s) and `tokio_spawn_vec_in_order`
//!   (tokio's fastest idiom); and `futures_join_all_inplace` (children
//!   polled inside one task, none spawned: not a twin, for reference).
//! - `timeout_churn`: `wait_for(f, 1 s)` ×N vs `tokio::time::timeout`, with
//!   `f` ready at once (no timer armed in either runtime) and `f` pending
//!   once (timer armed, then cancelled).

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

const CHILDREN: usize = 10_000;
const CHURN: usize = 10_000;

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// The sum of `0..CHILDREN`: every gather checks its children's outputs.
const CHILDREN_SUM: usize = CHILDREN * (CHILDREN - 1) / 2;

/// Checks a gather's outputs: all children, in order.
fn check_in_order(v: &[usize]) {
    assert_eq!(v.len(), CHILDREN);
    assert!(v.iter().enumerate().all(|(i, &x)| i == x), "out of order");
}

/// `gather`: 10,000 trivial children, each idiom on its own row. Compare
/// `ringloop_gather` with every `tokio_*` row (all spawn a task per child);
/// `futures_join_all_inplace` spawns nothing (the children are polled inside
/// one task), a different thing, shown for reference.
fn gather(c: &mut Criterion) {
    let mut g = c.benchmark_group("gather");
    g.throughput(Throughput::Elements(CHILDREN as u64));
    gather_ringloop(&mut g);
    gather_tokio(&mut g);
    g.finish();
}

/// The ringloop rows of `gather`.
fn gather_ringloop(g: &mut BenchmarkGroup<'_, WallTime>) {
    let lp = ringloop::EventLoop::new().expect("io_uring");
    g.bench_function("ringloop_gather", |b| {
        b.iter(|| {
            let v = lp
                .run_until_complete(async {
                    ringloop::gather((0..CHILDREN).map(|i| async move { i }))
                        .await
                        .unwrap()
                })
                .unwrap();
            check_in_order(&v);
        })
    });
    g.bench_function("ringloop_spawn_vec_in_order", |b| {
        b.iter(|| {
            let sum = lp
                .run_until_complete(async {
                    let tasks: Vec<_> = (0..CHILDREN)
                        .map(|i| ringloop::spawn(async move { i }))
                        .collect();
                    let mut sum = 0;
                    for t in tasks {
                        sum += t.await.unwrap();
                    }
                    sum
                })
                .unwrap();
            assert_eq!(sum, CHILDREN_SUM);
        })
    });
    g.bench_function("ringloop_join_all_spawned", |b| {
        b.iter(|| {
            let v = lp
                .run_until_complete(async {
                    // Spawned here, inside the loop (spawn needs a running loop).
                    futures_util::future::join_all(
                        (0..CHILDREN).map(|i| ringloop::spawn(async move { i })),
                    )
                    .await
                })
                .unwrap();
            let v: Vec<usize> = v.into_iter().map(Result::unwrap).collect();
            check_in_order(&v);
        })
    });
}

/// The tokio rows of `gather`.
fn gather_tokio(g: &mut BenchmarkGroup<'_, WallTime>) {
    let rt = tokio_rt();
    g.bench_function("tokio_joinset", |b| {
        b.iter(|| {
            let sum = rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for i in 0..CHILDREN {
                    set.spawn(async move { i });
                }
                let mut sum = 0;
                while let Some(r) = set.join_next().await {
                    sum += r.unwrap();
                }
                sum
            });
            assert_eq!(sum, CHILDREN_SUM);
        })
    });
    g.bench_function("tokio_join_all_spawned", |b| {
        b.iter(|| {
            let v = rt.block_on(async {
                futures_util::future::join_all(
                    (0..CHILDREN).map(|i| tokio::spawn(async move { i })),
                )
                .await
            });
            let v: Vec<usize> = v.into_iter().map(Result::unwrap).collect();
            check_in_order(&v);
        })
    });
    g.bench_function("tokio_spawn_vec_in_order", |b| {
        b.iter(|| {
            let sum = rt.block_on(async {
                let tasks: Vec<_> = (0..CHILDREN)
                    .map(|i| tokio::spawn(async move { i }))
                    .collect();
                let mut sum = 0;
                for t in tasks {
                    sum += t.await.unwrap();
                }
                sum
            });
            assert_eq!(sum, CHILDREN_SUM);
        })
    });
    g.bench_function("futures_join_all_inplace", |b| {
        b.iter(|| {
            let v = rt.block_on(futures_util::future::join_all(
                (0..CHILDREN).map(|i| async move { i }),
            ));
            check_in_order(&v);
        })
    });
}

/// A future that is pending once, then ready (arms the timeout's timer).
async fn pending_once() -> u32 {
    let mut first = true;
    std::future::poll_fn(|cx| {
        if std::mem::take(&mut first) {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(7)
        }
    })
    .await
}

fn timeout_churn(c: &mut Criterion) {
    let lp = ringloop::EventLoop::new().expect("io_uring");
    let rt = tokio_rt();
    let second = Some(Duration::from_secs(1));
    // The future is ready at once: neither runtime arms a timer.
    let mut g = c.benchmark_group("timeout_churn_ready");
    g.throughput(Throughput::Elements(CHURN as u64));
    g.bench_function("ringloop", |b| {
        b.iter(|| {
            lp.run_until_complete(async {
                for i in 0..CHURN {
                    let v = ringloop::wait_for(async { i }, second).await.unwrap();
                    std::hint::black_box(v);
                }
            })
            .unwrap()
        })
    });
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..CHURN {
                    let v = tokio::time::timeout(Duration::from_secs(1), async { i })
                        .await
                        .unwrap();
                    std::hint::black_box(v);
                }
            })
        })
    });
    g.finish();
    // The future is pending once: the timer is armed, then cancelled.
    let mut g = c.benchmark_group("timeout_churn_pending_once");
    g.throughput(Throughput::Elements(CHURN as u64));
    g.bench_function("ringloop", |b| {
        b.iter(|| {
            lp.run_until_complete(async {
                for _ in 0..CHURN {
                    let v = ringloop::wait_for(pending_once(), second).await.unwrap();
                    std::hint::black_box(v);
                }
            })
            .unwrap()
        })
    });
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..CHURN {
                    let v = tokio::time::timeout(Duration::from_secs(1), pending_once())
                        .await
                        .unwrap();
                    std::hint::black_box(v);
                }
            })
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = gather, timeout_churn
}
criterion_main!(benches);
