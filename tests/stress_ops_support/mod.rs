//! Helpers of `tests/stress_ops.rs`: sizes from the environment, RSS, the
//! `FIGURE` summary lines, and driving a future to a chosen stage before
//! it is dropped.
#![allow(dead_code)]

pub mod conns;
pub mod counted;
pub mod heap;
pub mod loop_drop;
pub mod small_ring;
pub mod storm;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A directory under the system's temp dir, removed (with its contents)
/// when dropped, also when the test fails.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ringloop-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `name` from the environment (`_` separators allowed), or `default`.
///
/// # Panics
///
/// When the variable is set but is not a number: a typo must not silently
/// run the default size.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}")),
        Err(_) => default,
    }
}

pub fn env_usize(name: &str, default: usize) -> usize {
    env_u64(name, default as u64) as usize
}

/// The seed: `RINGLOOP_STRESS_SEED` to replay a run, else from the clock.
pub fn seed() -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    env_u64("RINGLOOP_STRESS_SEED", clock)
}

/// Resident set size of this process, in KiB (from /proc/self/statm).
pub fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm's second field");
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}

/// Prints the one summary line `scripts/stress.sh` collects.
pub fn figure(name: &str, fields: &[(&str, String)]) {
    let mut line = format!("FIGURE {name}");
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v}"));
    }
    println!("{line}");
}

/// The `p`-th percentile (0..=100) of `sorted`.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = (sorted.len() * p).div_ceil(100).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// A waker that records it was woken, then wakes the task polling.
struct Flag {
    woken: AtomicBool,
    inner: Waker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

/// Polls `fut` once (submitting its op). Returns its output if that one
/// poll finished it.
pub async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut *fut).poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

/// Polls `fut` once, then turns the loop without polling it again until it
/// is woken (its completion arrived) or `limit` passes. `Ok(output)` if the
/// first poll finished it, else `Err(woken)`: the caller then drops it, a
/// completion it never collected.
pub async fn poll_until_woken<F: Future + Unpin>(
    fut: &mut F,
    limit: Duration,
) -> Result<F::Output, bool> {
    let mut flag: Option<Arc<Flag>> = None;
    let first = poll_fn(|cx| {
        let f = Arc::new(Flag {
            woken: AtomicBool::new(false),
            inner: cx.waker().clone(),
        });
        let waker = Waker::from(f.clone());
        flag = Some(f);
        Poll::Ready(Pin::new(&mut *fut).poll(&mut Context::from_waker(&waker)))
    })
    .await;
    if let Poll::Ready(v) = first {
        return Ok(v);
    }
    let flag = flag.expect("set by the poll");
    let start = Instant::now();
    let mut spins = 0u32;
    while !flag.woken.load(Ordering::SeqCst) && start.elapsed() < limit {
        spins += 1;
        if spins < 64 {
            ringloop::yield_now().await;
        } else {
            ringloop::sleep(Duration::from_micros(50)).await;
        }
    }
    Err(flag.woken.load(Ordering::SeqCst))
}

/// Turns the loop `n` times.
pub async fn turns(n: usize) {
    for _ in 0..n {
        ringloop::yield_now().await;
    }
}
