//! [`RingStats`]: counters of a loop's driver, for tests, stress runs and
//! monitoring.

use super::Backend;

/// A snapshot of a loop's driver counters
/// ([`EventLoop::ring_stats`](crate::EventLoop::ring_stats),
/// [`ring_stats`](crate::ring_stats)).
///
/// On the [`Backend::Epoll`] backend there is no ring: `enters` counts
/// `epoll_wait` calls, and the queue sizes and `cq_overflow` are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RingStats {
    /// The backend the loop runs on.
    pub backend: Backend,
    /// `io_uring_enter` calls made so far (epoll: `epoll_wait` calls).
    pub enters: u64,
    /// Completions the kernel had to drop because the completion queue was
    /// full and it could not keep them on its overflow list (the ring's
    /// `cq.overflow` counter). Anything but 0 means lost completions.
    pub cq_overflow: u32,
    /// Turns that found completions waiting on the kernel's overflow list
    /// (the CQ was full; nothing lost, the driver flushed them). A high
    /// count means the CQ is too small for the load.
    pub overflow_flushes: u64,
    /// Completions that arrived for ops the driver no longer tracked
    /// (expected 0; counted, not acted on).
    pub stale_cqes: u64,
    /// Ops the driver tracks now: in the kernel (or, on epoll, waiting for
    /// readiness or on a pool thread), queued for submission, or completed
    /// but not yet collected.
    pub ops_in_flight: usize,
    /// Submission queue size (0 on epoll).
    pub sq_entries: u32,
    /// Completion queue size (0 on epoll).
    pub cq_entries: u32,
}
