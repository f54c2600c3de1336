//! [`block_on`]: runs one of the channel's futures on a plain thread,
//! sleeping on a condition variable between polls.
//!
//! The blocking forms are the async ones driven this way, so they share
//! their FIFO order, their cancel safety and their wake-ups (a blocked
//! thread is woken exactly like a waiting task).

use std::future::Future;
use std::pin::pin;
// `Wake` is implemented on std's `Arc`; the lock and condition variable
// inside come from `crate::loom`, so the loom models see them.
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use crate::loom::{Condvar, Mutex, lock};

/// The waker of a blocked thread.
struct Signal {
    woken: Mutex<bool>,
    cond: Condvar,
}

impl Wake for Signal {
    fn wake(self: StdArc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &StdArc<Self>) {
        *lock(&self.woken) = true;
        self.cond.notify_one();
    }
}

/// Polls `fut` to completion, blocking the thread while it is pending.
pub(super) fn block_on<F: Future>(fut: F) -> F::Output {
    let signal = StdArc::new(Signal {
        woken: Mutex::new(false),
        cond: Condvar::new(),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        let mut woken = lock(&signal.woken);
        while !*woken {
            woken = signal.cond.wait(woken).unwrap_or_else(|p| p.into_inner());
        }
        *woken = false;
    }
}
