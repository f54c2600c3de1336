//! Blocking-pool round trip: ringloop `to_thread` vs tokio `spawn_blocking`
//! (tokio's `current_thread` runtime, I/O and time drivers enabled, as a
//! server would run it), in one criterion group.
//!
//! - `to_thread_round_trip`: one task submits a trivial job and awaits it,
//!   `ROUND_TRIPS` times in a row (throughput in round trips). Each round
//!   trip wakes an idle pool thread, runs the job there, and wakes the loop,
//!   which parks in between: this measures the two cross-thread hand-offs.
//!
//! Each runtime is made once, outside the timing, and its pool is warmed
//! (a thread started) before measuring.
//!
//! Run: `cargo bench --bench blocking -- --noplot`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROUND_TRIPS: u64 = 1_000;

fn to_thread_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("to_thread_round_trip");
    g.throughput(Throughput::Elements(ROUND_TRIPS));

    let lp = ringloop::EventLoop::new().expect("io_uring");
    lp.run_until_complete(ringloop::to_thread(|| ()))
        .unwrap()
        .unwrap();
    g.bench_function("ringloop", |b| {
        b.iter(|| {
            lp.run_until_complete(async {
                let mut sum = 0u64;
                for i in 0..ROUND_TRIPS {
                    sum += ringloop::to_thread(move || black_box(i)).await.unwrap();
                }
                sum
            })
            .unwrap()
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio current_thread runtime");
    rt.block_on(async { tokio::task::spawn_blocking(|| ()).await })
        .unwrap();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut sum = 0u64;
                for i in 0..ROUND_TRIPS {
                    sum += tokio::task::spawn_blocking(move || black_box(i))
                        .await
                        .unwrap();
                }
                sum
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
    targets = to_thread_round_trip
}
criterion_main!(benches);
