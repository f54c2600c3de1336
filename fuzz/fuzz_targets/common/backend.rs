//! Which backend a target's loop runs on: the input's choice (one bit, so
//! libFuzzer explores both and keeps inputs that reach new code in either),
//! unless `RINGLOOP_BACKEND` is set, which then picks it for every input
//! (to fuzz, or replay a crash on, one backend only).
//!
//! Where io_uring is unavailable (a container's seccomp profile), inputs
//! that ask for it run on epoll, said once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ringloop::{Backend, Builder, EventLoop};

/// Inputs run on each backend: [io_uring, epoll].
static RUNS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Whether `RINGLOOP_BACKEND` is set (read once).
fn env_backend() -> Option<&'static str> {
    static ENV: OnceLock<Option<String>> = OnceLock::new();
    ENV.get_or_init(|| std::env::var("RINGLOOP_BACKEND").ok())
        .as_deref()
}

/// A new loop for one input of `target`: on epoll if `epoll`, else on
/// io_uring (see the module docs). Every power of two of inputs (from
/// 1,024), prints how many ran on each backend.
pub fn new_loop(target: &str, epoll: bool) -> EventLoop {
    static URING_REFUSED: OnceLock<Option<String>> = OnceLock::new();
    let lp = if let Some(v) = env_backend() {
        EventLoop::new().unwrap_or_else(|e| panic!("a loop with RINGLOOP_BACKEND={v}: {e}"))
    } else if epoll {
        Builder::new()
            .backend(Backend::Epoll)
            .build()
            .expect("an epoll loop")
    } else {
        let refused = URING_REFUSED.get_or_init(|| {
            let e = Builder::new().backend(Backend::IoUring).build().err()?;
            eprintln!("{target}: io_uring is unavailable ({e}); its inputs run on epoll");
            Some(e.to_string())
        });
        let backend = match refused {
            Some(_) => Backend::Epoll,
            None => Backend::IoUring,
        };
        Builder::new()
            .backend(backend)
            .build()
            .unwrap_or_else(|e| panic!("an {backend} loop: {e}"))
    };
    let i = usize::from(lp.backend() == Backend::Epoll);
    RUNS[i].fetch_add(1, Ordering::Relaxed);
    let (u, e) = (
        RUNS[0].load(Ordering::Relaxed),
        RUNS[1].load(Ordering::Relaxed),
    );
    if (u + e).is_power_of_two() && u + e >= 1024 {
        eprintln!("{target}: {} inputs: {u} on io_uring, {e} on epoll", u + e);
    }
    lp
}
