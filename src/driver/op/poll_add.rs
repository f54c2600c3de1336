//! `IORING_OP_POLL_ADD` (io_uring_prep_poll_add(3)): waits for an fd to
//! become ready, one shot.

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Completes with the ready events once `fd` has any of `events` (`POLLIN`,
/// ...). `F` keeps the fd open until the CQE.
pub(crate) struct PollAdd<F> {
    fd: F,
    events: u32,
}

impl<F: AsRawFd + 'static> PollAdd<F> {
    pub(crate) fn new(fd: F, events: u32) -> Self {
        PollAdd { fd, events }
    }
}

// SAFETY: a poll SQE carries no pointer.
unsafe impl<F: AsRawFd + 'static> OpCode for PollAdd<F> {
    /// The events that fired (`revents`).
    type Output = std::io::Result<u32>;
    const CODE: u8 = opcode::PollAdd::CODE;
    const NAME: &'static str = "IORING_OP_POLL_ADD";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd.as_raw_fd()), self.events).build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result()
    }
}
