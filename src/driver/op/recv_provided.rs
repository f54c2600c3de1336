//! Receives into provided buffers (`IOSQE_BUFFER_SELECT`): the kernel
//! picks a buffer from the group only when data arrives, so a receive
//! waiting on an idle connection holds no memory.
//!
//! - [`RecvMulti`]: `IORING_OP_RECV` with `IORING_RECV_MULTISHOT`
//!   (io_uring_prep_recv_multishot(3), Linux 6.0+): one SQE, one
//!   completion per arrival, until the end of the stream, an error, or an
//!   empty group (`ENOBUFS`) ends it.
//! - [`RecvSelect`]: the one-shot form (Linux 5.19+ with buffer rings), for
//!   kernels that refuse the multishot one.
//!
//! Each completion with `IORING_CQE_F_BUFFER` hands its buffer to whoever
//! takes the completion. Completions nobody will take (the receive was
//! dropped) are rescued like an abandoned read's: their bytes, end of
//! stream or error are kept on the socket for its next read
//! (`buf::kept`), and the buffer goes straight back to the ring.

use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::{MultiCode, OpCode};
use crate::buf::kept::{KeepsReads, ReadGuard};
use crate::driver::Completion;
use crate::driver::bufring::{Provided, buffer_id};

/// What a provided-buffer receive on `H` holds: the socket (counted as a
/// read in flight, so a later read waits for this one's bytes), and its
/// group (so the group id is not reused while the kernel may pick from
/// it).
struct Holder<H: KeepsReads> {
    guard: ReadGuard<H>,
    group: Rc<Provided>,
}

impl<H: KeepsReads> Holder<H> {
    /// Keeps what a completion nobody takes carries (see the module docs).
    /// Wakes no one: it may run inside the driver.
    fn rescue(&self, c: Completion) {
        let ring = self.group.ring();
        if let Some(bid) = buffer_id(c.flags) {
            if c.result > 0 {
                // SAFETY: the completion handed buffer `bid` to us, and the
                // kernel wrote `result` bytes into it.
                let bytes = unsafe { ring.bytes(bid, c.result as usize) };
                self.guard.keep_unread(bytes, false);
            }
            ring.provide(bid);
        }
        let more = io_uring::cqueue::more(c.flags);
        match c.result {
            0 if !more => self.guard.keep_unread(&[], true),
            // An empty group is not the connection's failure: the bytes
            // wait in the socket for the next read.
            r if r < 0 && r != -libc::ENOBUFS => {
                self.guard
                    .keep_error(&std::io::Error::from_raw_os_error(-r));
            }
            _ => {}
        }
    }
}

impl<H: KeepsReads> Drop for Holder<H> {
    fn drop(&mut self) {
        // Outside the driver (an op's resources are dropped there): a
        // buffer a rescue gave back may be what a receive waits for.
        self.group.ring().wake_waiters();
    }
}

/// Multishot receive into group `group`'s buffers (see the module docs).
pub(crate) struct RecvMulti<H: KeepsReads> {
    holder: Holder<H>,
    bgid: u16,
}

impl<H: KeepsReads + 'static> RecvMulti<H> {
    /// `None` when the group has no registered ring.
    pub(crate) fn new(handle: &H, group: &Rc<Provided>) -> Option<Self> {
        Some(RecvMulti {
            bgid: group.bgid()?,
            holder: Holder {
                guard: ReadGuard::new(handle),
                group: group.clone(),
            },
        })
    }
}

// SAFETY: the SQE carries no pointer: the kernel writes into a buffer of
// the group, whose memory `holder.group` keeps registered and allocated
// until the final completion (bufring.rs, invariant 2).
unsafe impl<H: KeepsReads + 'static> MultiCode for RecvMulti<H> {
    type Item = Completion;
    const CODE: u8 = opcode::RecvMulti::CODE;
    const NAME: &'static str = "IORING_OP_RECV (multishot, provided buffers)";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::RecvMulti::new(types::Fd(self.holder.guard.as_raw_fd()), self.bgid).build()
    }

    fn item(&self, c: Completion) -> Completion {
        c
    }

    fn buf_group(&self) -> Option<u16> {
        Some(self.bgid)
    }

    fn orphan(&self, c: Completion) {
        self.holder.rescue(c);
    }
}

/// One-shot receive into a buffer of `group` (see the module docs).
pub(crate) struct RecvSelect<H: KeepsReads> {
    holder: Holder<H>,
    bgid: u16,
}

impl<H: KeepsReads + 'static> RecvSelect<H> {
    /// `None` when the group has no registered ring.
    pub(crate) fn new(handle: &H, group: &Rc<Provided>) -> Option<Self> {
        Some(RecvSelect {
            bgid: group.bgid()?,
            holder: Holder {
                guard: ReadGuard::new(handle),
                group: group.clone(),
            },
        })
    }
}

// SAFETY: as for `RecvMulti`: no pointer in the SQE; the group's memory is
// held by `holder.group` until the completion.
unsafe impl<H: KeepsReads + 'static> OpCode for RecvSelect<H> {
    type Output = Completion;
    const CODE: u8 = opcode::Recv::CODE;
    const NAME: &'static str = "IORING_OP_RECV (provided buffers)";

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.holder.group.ring().buf_size()).unwrap_or(u32::MAX);
        opcode::Recv::new(
            types::Fd(self.holder.guard.as_raw_fd()),
            std::ptr::null_mut(),
            len,
        )
        .buf_group(self.bgid)
        .build()
        .flags(squeue::Flags::BUFFER_SELECT)
    }

    fn complete(self, c: Completion) -> Completion {
        c
    }

    fn buf_group(&self) -> Option<u16> {
        Some(self.bgid)
    }

    fn complete_orphan(self, c: Completion) {
        self.holder.rescue(c);
    }
}
