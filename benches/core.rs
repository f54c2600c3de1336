//! Core scheduler and timer benchmarks: ringloop vs tokio `current_thread`.
//!
//! Every group holds the same workload twice, ringloop rows then tokio
//! rows (criterion ids `<group>/<runtime>[_<variant>]`), so the two are
//! measured back to back in one run (see `shared/BENCHMARKING.md`:
//! quote the ringloop/tokio ratio, not the absolute numbers). Each runtime
//! is created once, outside the timed closure.
//!
//! - `spawn_join`: spawn 10,000 empty tasks, then await them all
//!   (throughput in tasks).
//! - `yield_many`: 100 tasks each yielding 100 times (throughput in polls).
//!   `ringloop_yield_now` / `tokio_yield_now_defers_to_driver` use each
//!   runtime's `yield_now`, which are not the same work (tokio's waits for
//!   its I/O driver to be polled); `ringloop_requeue` / `tokio_requeue` use
//!   one hand-written yield (wake own waker, `Pending` once) on both sides:
//!   compare those two.
//! - `timers`: 1,000,000 tasks each sleeping a random duration in
//!   [0, 100 ms] (fixed-seed xorshift), spawned then awaited: wall time.
//!   Each task creates its sleep when it first runs, so every deadline is
//!   [0, 100 ms] after its task starts: spawning a million tasks takes longer
//!   than 100 ms, and sleeps created at spawn time would mostly have expired
//!   before their first poll (a runtime could then skip its timer structure
//!   altogether, which is not what this measures).
//!
//! `scripts/bench.sh` runs this three times and writes `BENCHMARKS.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const SPAWN_TASKS: usize = 10_000;
const YIELD_TASKS: usize = 100;
const YIELDS_PER_TASK: usize = 100;
const TIMER_TASKS: usize = 1_000_000;
/// Sleeps are uniform in [0, TIMER_MAX_US] microseconds.
const TIMER_MAX_US: u64 = 100_000;
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// xorshift64: a fixed-seed, dependency-free generator; both runtimes get the
/// same sequence of deadlines.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn sleep_duration(&mut self) -> Duration {
        Duration::from_micros(self.next() % (TIMER_MAX_US + 1))
    }
}

fn ringloop_loop() -> ringloop::EventLoop {
    ringloop::EventLoop::new().expect("ringloop event loop (io_uring) could not be created")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio current_thread runtime")
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    g.throughput(Throughput::Elements(SPAWN_TASKS as u64));

    let lp = ringloop_loop();
    g.bench_function("ringloop", |b| {
        b.iter(|| {
            lp.run_until_complete(async {
                let tasks: Vec<_> = (0..SPAWN_TASKS)
                    .map(|i| ringloop::spawn(async move { black_box(i) }))
                    .collect();
                for t in tasks {
                    black_box(t.await.unwrap());
                }
            })
            .unwrap()
        })
    });
    drop(lp);

    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..SPAWN_TASKS)
                    .map(|i| tokio::spawn(async move { black_box(i) }))
                    .collect();
                for t in tasks {
                    black_box(t.await.unwrap());
                }
            })
        })
    });
    g.finish();
}

#[path = "common/yields.rs"]
mod yields;
use yields::{Requeue, Yield};

/// Spawns `YIELD_TASKS` ringloop tasks that yield `YIELDS_PER_TASK` times
/// each and awaits them; returns the number of yields done.
async fn ringloop_yields(how: Yield) -> usize {
    let tasks: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            ringloop::spawn(async move {
                for _ in 0..YIELDS_PER_TASK {
                    match how {
                        Yield::Native => ringloop::yield_now().await,
                        Yield::Requeue => Requeue(false).await,
                    }
                }
                YIELDS_PER_TASK
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    done
}

/// The tokio twin of [`ringloop_yields`].
async fn tokio_yields(how: Yield) -> usize {
    let tasks: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..YIELDS_PER_TASK {
                    match how {
                        Yield::Native => tokio::task::yield_now().await,
                        Yield::Requeue => Requeue(false).await,
                    }
                }
                YIELDS_PER_TASK
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    done
}

/// `yield_many`: the `*_yield_now*` rows use each runtime's own
/// `yield_now`, which is not the same work (tokio's defers the task until
/// its I/O driver has been polled, a `park_timeout(0)` per scheduler tick
/// with deferred tasks; ringloop's requeues). The `*_requeue` rows time the
/// same work on both sides.
fn yield_many(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_many");
    // One poll per yield plus the final one that completes the task.
    g.throughput(Throughput::Elements(
        (YIELD_TASKS * (YIELDS_PER_TASK + 1)) as u64,
    ));
    let want = YIELD_TASKS * YIELDS_PER_TASK;

    let lp = ringloop_loop();
    for (id, how) in [
        ("ringloop_yield_now", Yield::Native),
        ("ringloop_requeue", Yield::Requeue),
    ] {
        g.bench_function(id, |b| {
            b.iter(|| {
                let n = lp.run_until_complete(ringloop_yields(how)).unwrap();
                assert_eq!(n, want);
            })
        });
    }
    drop(lp);

    let rt = tokio_rt();
    for (id, how) in [
        ("tokio_yield_now_defers_to_driver", Yield::Native),
        ("tokio_requeue", Yield::Requeue),
    ] {
        g.bench_function(id, |b| {
            b.iter(|| {
                let n = rt.block_on(tokio_yields(how));
                assert_eq!(n, want);
            })
        });
    }
    g.finish();
}

fn timers(c: &mut Criterion) {
    let mut g = c.benchmark_group("timers");
    // ~100 ms of sleeping plus the spawning per iteration: a few iterations
    // per sample, the same number in every sample.
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(TIMER_TASKS as u64));

    let lp = ringloop_loop();
    g.bench_function("ringloop", |b| {
        b.iter(|| {
            lp.run_until_complete(async {
                let mut rng = XorShift(SEED);
                let tasks: Vec<_> = (0..TIMER_TASKS)
                    .map(|_| {
                        let d = rng.sleep_duration();
                        ringloop::spawn(async move { ringloop::sleep(d).await })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
            .unwrap()
        })
    });
    drop(lp);

    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut rng = XorShift(SEED);
                let tasks: Vec<_> = (0..TIMER_TASKS)
                    .map(|_| {
                        let d = rng.sleep_duration();
                        tokio::spawn(async move { tokio::time::sleep(d).await })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
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
    targets = spawn_join, yield_many, timers
}
criterion_main!(benches);
