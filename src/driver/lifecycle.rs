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

use std::collections::VecDeque;
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
        queue: Completions,
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

/// A multishot op's completions not yet taken, in order.
///
/// Most of the time one is waiting at most (a receive armed on an idle
/// connection holds none): the first is kept inline, and only a burst
/// spills into a heap queue, freed again once drained. Every armed
/// multishot op has one of these in its driver slot, so an idle connection
/// costs no allocation here.
#[derive(Default)]
pub(crate) struct Completions {
    head: Option<Completion>,
    /// Those after `head`; `None` when there are none.
    #[expect(
        clippy::box_collection,
        reason = "8 bytes in every multishot slot instead of a 32-byte VecDeque"
    )]
    rest: Option<Box<VecDeque<Completion>>>,
}

impl Completions {
    pub(crate) fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.as_ref().map_or(0, |r| r.len())
    }

    pub(crate) fn push_back(&mut self, c: Completion) {
        if self.head.is_none() {
            debug_assert!(self.rest.is_none(), "head is refilled from rest first");
            self.head = Some(c);
        } else {
            self.rest.get_or_insert_default().push_back(c);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<Completion> {
        let first = self.head.take()?;
        if let Some(rest) = &mut self.rest {
            self.head = rest.pop_front();
            if rest.is_empty() {
                self.rest = None;
            }
        }
        Some(first)
    }

    /// Drops every completion but the last (which it keeps if `keep_last`).
    pub(crate) fn clear_keeping_last(&mut self, keep_last: bool) {
        let last = match self.rest.take() {
            Some(mut rest) => rest.pop_back(),
            None => self.head,
        };
        self.head = if keep_last { last } else { None };
    }
}

impl Iterator for Completions {
    type Item = Completion;

    fn next(&mut self) -> Option<Completion> {
        self.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::{Completion, Completions};

    fn c(result: i32) -> Completion {
        Completion { result, flags: 0 }
    }

    #[test]
    fn completions_keep_order_spill_and_free_the_spill_when_drained() {
        let mut q = Completions::default();
        assert_eq!(q.pop_front(), None);
        q.push_back(c(1));
        assert!(q.rest.is_none(), "one completion stays inline");
        for r in 2..=5 {
            q.push_back(c(r));
        }
        assert_eq!(q.len(), 5);
        assert_eq!(q.pop_front(), Some(c(1)));
        q.push_back(c(6));
        let got: Vec<i32> = q.by_ref().map(|x| x.result).collect();
        assert_eq!(got, [2, 3, 4, 5, 6]);
        assert!(
            q.head.is_none() && q.rest.is_none(),
            "drained: nothing held"
        );
    }

    #[test]
    fn clearing_keeps_only_the_last_when_asked() {
        let mut q = Completions::default();
        for r in 1..=3 {
            q.push_back(c(r));
        }
        q.clear_keeping_last(true);
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_front(), Some(c(3)));
        q.push_back(c(4));
        q.clear_keeping_last(true);
        assert_eq!(q.pop_front(), Some(c(4)));
        q.push_back(c(5));
        q.push_back(c(6));
        q.clear_keeping_last(false);
        assert_eq!(q.len(), 0);
    }
}
