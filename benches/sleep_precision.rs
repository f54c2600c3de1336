//! `sleep(1 ms)` overshoot: ringloop vs tokio `current_thread`.
//!
//! Each runtime sleeps 1 ms, 1,000 times in all, one sleep after another on
//! an otherwise idle loop; overshoot = measured elapsed − 1 ms. The two
//! runtimes alternate in rounds of 100 sleeps (A B A B …) so that machine
//! noise hits both alike. Prints p50 / p99 / max / mean in µs (criterion
//! does not report percentiles).
//!
//! Run: `cargo bench --bench sleep_precision`. Output lines starting with
//! `RESULT` are parsed by `scripts/bench.sh`.

use std::time::{Duration, Instant};

const SLEEP: Duration = Duration::from_millis(1);
const ROUNDS: usize = 10;
const PER_ROUND: usize = 100;
const WARMUP: usize = 10;

/// Overshoots in nanoseconds of `n` consecutive sleeps on the ringloop loop.
fn ringloop_round(lp: &ringloop::EventLoop, n: usize, out: &mut Vec<i64>) {
    lp.run_until_complete(async {
        for _ in 0..n {
            let t0 = Instant::now();
            ringloop::sleep(SLEEP).await;
            out.push(overshoot_ns(t0.elapsed()));
        }
    })
    .expect("run_until_complete");
}

fn tokio_round(rt: &tokio::runtime::Runtime, n: usize, out: &mut Vec<i64>) {
    rt.block_on(async {
        for _ in 0..n {
            let t0 = Instant::now();
            tokio::time::sleep(SLEEP).await;
            out.push(overshoot_ns(t0.elapsed()));
        }
    });
}

fn overshoot_ns(elapsed: Duration) -> i64 {
    elapsed.as_nanos() as i64 - SLEEP.as_nanos() as i64
}

struct Summary {
    p50: f64,
    p99: f64,
    max: f64,
    min: f64,
    mean: f64,
}

fn summarize(v: &mut [i64]) -> Summary {
    v.sort_unstable();
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1e3;
    Summary {
        p50: pct(0.50),
        p99: pct(0.99),
        max: v[v.len() - 1] as f64 / 1e3,
        min: v[0] as f64 / 1e3,
        mean: v.iter().sum::<i64>() as f64 / v.len() as f64 / 1e3,
    }
}

fn main() {
    let lp = ringloop::EventLoop::new().expect("ringloop event loop (io_uring)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");

    let mut scratch = Vec::new();
    ringloop_round(&lp, WARMUP, &mut scratch);
    tokio_round(&rt, WARMUP, &mut scratch);

    let mut ring = Vec::with_capacity(ROUNDS * PER_ROUND);
    let mut tok = Vec::with_capacity(ROUNDS * PER_ROUND);
    for _ in 0..ROUNDS {
        ringloop_round(&lp, PER_ROUND, &mut ring);
        tokio_round(&rt, PER_ROUND, &mut tok);
    }

    println!(
        "sleep({} ms) x {}, overshoot in µs",
        SLEEP.as_millis(),
        ROUNDS * PER_ROUND
    );
    println!(
        "{:<9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "runtime", "min", "p50", "p99", "max", "mean"
    );
    let mut lines = Vec::new();
    for (name, v) in [("ringloop", &mut ring), ("tokio", &mut tok)] {
        let s = summarize(v);
        println!(
            "{name:<9} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            s.min, s.p50, s.p99, s.max, s.mean
        );
        lines.push(format!(
            "RESULT sleep_precision runtime={name} samples={} min_us={:.1} p50_us={:.1} \
             p99_us={:.1} max_us={:.1} mean_us={:.1}",
            v.len(),
            s.min,
            s.p50,
            s.p99,
            s.max,
            s.mean
        ));
    }
    for l in lines {
        println!("{l}");
    }
}
