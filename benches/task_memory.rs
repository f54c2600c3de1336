//! Memory per idle task: ringloop vs tokio `current_thread`.
//!
//! The parent re-executes this binary once per (runtime, variant), so that
//! each measurement starts from a fresh heap, and prints a table. Each child
//! creates its runtime, reserves the vector of join handles, reads `VmRSS`
//! and `VmHWM` from `/proc/self/status`, spawns 1,000,000 tasks, waits until
//! every one has been polled once (so sleeps are armed), reads them again and
//! reports the difference divided by the number of tasks. Then it cancels
//! every task and awaits the cancellations (timed too).
//!
//! Variants:
//! - `sleeping`: each task awaits a sleep of one hour (a timer per task);
//! - `pending`: each task awaits `std::future::pending()` (no timer).
//!
//! "beyond future" subtracts the size of the future handed to `spawn` and of
//! its join handle (kept in a vector) from the bytes per task: what the
//! runtime adds (task header, allocator rounding, timer bookkeeping).
//!
//! Run: `cargo bench --bench task_memory`. Output lines starting with
//! `RESULT` are parsed by `scripts/bench.sh`.

use std::future::Future;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TASKS: usize = 1_000_000;
const SLEEP: Duration = Duration::from_secs(3600);

/// How many tasks have been polled at least once. A static, so that the
/// counting costs the measured futures no bytes.
static POLLED: AtomicUsize = AtomicUsize::new(0);

const RUNTIMES: [&str; 2] = ["ringloop", "tokio"];
const VARIANTS: [&str; 2] = ["sleeping", "pending"];

#[derive(Clone, Copy, Debug)]
struct Status {
    rss: u64,
    hwm: u64,
}

fn status() -> Status {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let field = |name: &str| -> u64 {
        let line = s
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from /proc/self/status"));
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("cannot parse {line:?}"));
        kb * 1024
    };
    Status {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
    }
}

/// What a child measured.
struct Measured {
    before: Status,
    after: Status,
    future_size: usize,
    handle_size: usize,
    spawn_and_poll: Duration,
    cancel: Duration,
}

async fn ringloop_sleeping() {
    POLLED.fetch_add(1, Ordering::Relaxed);
    ringloop::sleep(SLEEP).await;
}

async fn ringloop_pending() {
    POLLED.fetch_add(1, Ordering::Relaxed);
    std::future::pending::<()>().await;
}

async fn tokio_sleeping() {
    POLLED.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(SLEEP).await;
}

async fn tokio_pending() {
    POLLED.fetch_add(1, Ordering::Relaxed);
    std::future::pending::<()>().await;
}

fn run_ringloop<F: Future<Output = ()> + 'static>(make: impl Fn() -> F + 'static) -> Measured {
    let lp = ringloop::EventLoop::new().expect("ringloop event loop (io_uring)");
    let future_size = std::mem::size_of::<F>();
    let handle_size = std::mem::size_of::<ringloop::Task<()>>();
    lp.run_until_complete(async move {
        let mut tasks = Vec::with_capacity(TASKS);
        let before = status();
        let t0 = Instant::now();
        for _ in 0..TASKS {
            tasks.push(ringloop::spawn(make()));
        }
        while POLLED.load(Ordering::Relaxed) < TASKS {
            ringloop::yield_now().await;
        }
        let spawn_and_poll = t0.elapsed();
        let after = status();
        let t1 = Instant::now();
        for t in &tasks {
            t.cancel();
        }
        for t in tasks {
            let r = t.await;
            assert!(r.is_err(), "a cancelled task completed");
        }
        let cancel = t1.elapsed();
        Measured {
            before,
            after,
            future_size,
            handle_size,
            spawn_and_poll,
            cancel,
        }
    })
    .expect("run_until_complete")
}

fn run_tokio<F: Future<Output = ()> + Send + 'static>(make: impl Fn() -> F + 'static) -> Measured {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let future_size = std::mem::size_of::<F>();
    let handle_size = std::mem::size_of::<tokio::task::JoinHandle<()>>();
    rt.block_on(async move {
        let mut tasks = Vec::with_capacity(TASKS);
        let before = status();
        let t0 = Instant::now();
        for _ in 0..TASKS {
            tasks.push(tokio::spawn(make()));
        }
        while POLLED.load(Ordering::Relaxed) < TASKS {
            tokio::task::yield_now().await;
        }
        let spawn_and_poll = t0.elapsed();
        let after = status();
        let t1 = Instant::now();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let r = t.await;
            assert!(
                r.is_err_and(|e| e.is_cancelled()),
                "an aborted task completed"
            );
        }
        let cancel = t1.elapsed();
        Measured {
            before,
            after,
            future_size,
            handle_size,
            spawn_and_poll,
            cancel,
        }
    })
}

fn child(runtime: &str, variant: &str) {
    let m = match (runtime, variant) {
        ("ringloop", "sleeping") => run_ringloop(ringloop_sleeping),
        ("ringloop", "pending") => run_ringloop(ringloop_pending),
        ("tokio", "sleeping") => run_tokio(tokio_sleeping),
        ("tokio", "pending") => run_tokio(tokio_pending),
        _ => panic!("unknown runtime/variant {runtime}/{variant}"),
    };
    let n = TASKS as f64;
    let per_task = m.after.rss.saturating_sub(m.before.rss) as f64 / n;
    let hwm_per_task = m.after.hwm.saturating_sub(m.before.rss) as f64 / n;
    let beyond = per_task - (m.future_size + m.handle_size) as f64;
    println!(
        "RESULT task_memory runtime={runtime} variant={variant} tasks={TASKS} \
         rss_before={} rss_after={} hwm_after={} bytes_per_task={per_task:.1} \
         hwm_bytes_per_task={hwm_per_task:.1} future_size={} handle_size={} \
         beyond_future={beyond:.1} spawn_ms={:.1} cancel_ms={:.1}",
        m.before.rss,
        m.after.rss,
        m.after.hwm,
        m.future_size,
        m.handle_size,
        m.spawn_and_poll.as_secs_f64() * 1e3,
        m.cancel.as_secs_f64() * 1e3,
    );
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or("?")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], &args[i + 2]);
        return ExitCode::SUCCESS;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut failed = false;
    let mut rows = Vec::new();
    for variant in VARIANTS {
        for runtime in RUNTIMES {
            let out = Command::new(&exe)
                .args(["--child", runtime, variant])
                .output()
                .expect("re-execute task_memory");
            let stdout = String::from_utf8_lossy(&out.stdout);
            match stdout.lines().find(|l| l.starts_with("RESULT ")) {
                Some(line) if out.status.success() => {
                    println!("{line}");
                    rows.push(line.to_owned());
                }
                _ => {
                    failed = true;
                    println!(
                        "RESULT task_memory runtime={runtime} variant={variant} FAILED status={}",
                        out.status
                    );
                    eprintln!(
                        "task_memory child {runtime}/{variant} failed ({}):\n{stdout}\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
    println!();
    println!(
        "{:<9} {:<9} {:>10} {:>10} {:>8} {:>8} {:>10} {:>10} {:>10}",
        "runtime",
        "variant",
        "B/task",
        "HWM B/task",
        "future",
        "handle",
        "beyond",
        "spawn ms",
        "cancel ms"
    );
    for line in &rows {
        println!(
            "{:<9} {:<9} {:>10} {:>10} {:>8} {:>8} {:>10} {:>10} {:>10}",
            field(line, "runtime"),
            field(line, "variant"),
            field(line, "bytes_per_task"),
            field(line, "hwm_bytes_per_task"),
            field(line, "future_size"),
            field(line, "handle_size"),
            field(line, "beyond_future"),
            field(line, "spawn_ms"),
            field(line, "cancel_ms"),
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
