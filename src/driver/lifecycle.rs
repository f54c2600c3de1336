//! The state of one op in the driver's slab.
//!
//! ```text
//! submit ──> Waiting(None) ──poll──> Waiting(Some(waker)) ──CQE──> Completed ──poll──> (slot freed)
//!                 │                          │
//!                 └──── future dropped ──────┴──> Abandoned(resources) ──CQE──> (slot freed, resources dropped)
//! ```
//!
//! An op whose SQE never reached the ring, or that already completed, is
//! freed at once when its future is dropped.

use std::task::Waker;

/// A reaped CQE's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Completion {
    /// `cqe.res`: a non-negative result or a negated errno.
    pub(crate) result: i32,
    /// `cqe.flags`.
    pub(crate) flags: u32,
}

impl Completion {
    /// The result as an `io::Result`, negative values mapped to their errno.
    pub(crate) fn into_result(self) -> std::io::Result<u32> {
        if self.result < 0 {
            Err(std::io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }
}

/// The resources of an op nobody waits for any more, kept until its CQE.
///
/// `complete` sees the CQE, so an orphan can rescue what the kernel produced
/// after its future was dropped: a received buffer's bytes, an accepted fd
/// to close.
pub(crate) trait Orphan {
    /// The CQE arrived; the kernel no longer touches the resources.
    fn complete(self: Box<Self>, completion: Completion);
    /// A multishot op produced a completion nobody will take (more follow).
    /// Called inside the driver: must not run user code (e.g. close an fd).
    fn more(&mut self, completion: Completion) {
        let _ = completion;
    }
}

/// An orphan and its CQE, to be completed outside the driver's borrow.
pub(crate) type Garbage = (Box<dyn Orphan>, Completion);

/// Where an op is in its life (see the module docs).
pub(crate) enum Lifecycle {
    /// In the kernel or queued for it; the waker of the last poll, if any.
    Waiting(Option<std::task::Waker>),
    /// The CQE arrived; waiting for the future to collect it.
    Completed(Completion),
    /// A multishot op: completions not yet taken, the waker of the last
    /// poll, and whether its final CQE (no `IORING_CQE_F_MORE`) arrived.
    Multi {
        queue: std::collections::VecDeque<Completion>,
        waker: Option<Waker>,
        ended: bool,
    },
    /// The future was dropped while the kernel still owned the op (or the op
    /// was submitted detached): its resources stay here until the CQE.
    Abandoned(Box<dyn Orphan>),
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lifecycle::Waiting(w) => f
                .debug_tuple("Waiting")
                .field(&w.as_ref().map(|_: &Waker| "waker"))
                .finish(),
            Lifecycle::Completed(c) => f.debug_tuple("Completed").field(c).finish(),
            Lifecycle::Multi { queue, ended, .. } => f
                .debug_struct("Multi")
                .field("queued", &queue.len())
                .field("ended", ended)
                .finish(),
            Lifecycle::Abandoned(_) => f.write_str("Abandoned(..)"),
        }
    }
}
