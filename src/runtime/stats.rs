//! [`RingStats`]: counters of a loop's io_uring, for tests, stress runs and
//! monitoring.

use std::io;

use super::current_driver;

/// A snapshot of a loop's ring counters ([`super::EventLoop::ring_stats`],
/// [`ring_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RingStats {
    /// `io_uring_enter` calls made so far.
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
    /// Ops the driver tracks now: in the kernel, queued for submission, or
    /// completed but not yet collected.
    pub ops_in_flight: usize,
    /// Submission queue size.
    pub sq_entries: u32,
    /// Completion queue size.
    pub cq_entries: u32,
}

/// The ring counters of the loop running on this thread.
///
/// # Errors
///
/// When no loop runs on this thread.
pub fn ring_stats() -> io::Result<RingStats> {
    Ok(current_driver()?.borrow_mut().ring_stats())
}
