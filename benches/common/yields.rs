//! The yields of the like-for-like rows (`benches/core.rs` `yield_many`,
//! `benches/sync.rs` `lock_contention` and `semaphore_contended`), shared
//! so both benches time exactly the same future.

use std::task::Poll;

/// A hand-written yield that means the same thing in both runtimes: the
/// task wakes its own waker and returns `Pending` once, so it goes to the
/// back of the run queue without waiting for the I/O driver.
pub struct Requeue(pub bool);

impl std::future::Future for Requeue {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Which yield a bench's tasks use.
#[derive(Clone, Copy)]
pub enum Yield {
    /// The runtime's own `yield_now`: a requeue in ringloop; in tokio the
    /// task is deferred until the driver has been polled.
    Native,
    /// [`Requeue`] on both sides.
    Requeue,
}
