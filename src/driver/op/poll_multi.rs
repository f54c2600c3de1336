//! `IORING_OP_POLL_ADD` with `IORING_POLL_ADD_MULTI`
//! (io_uring_prep_poll_multishot(3)): one completion each time the fd
//! becomes ready, until cancelled. Linux 5.13 or newer; older kernels
//! answer `EINVAL` in the first (and final) completion.

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::MultiCode;
use crate::driver::Completion;

/// Completes with the ready events (`revents`) at each readiness edge of
/// `fd` for `events`. `F` keeps the fd open until the final completion.
pub(crate) struct PollMulti<F> {
    fd: F,
    events: u32,
}

impl<F: AsRawFd + 'static> PollMulti<F> {
    pub(crate) fn new(fd: F, events: u32) -> Self {
        PollMulti { fd, events }
    }
}

// SAFETY: a poll SQE carries no pointer.
unsafe impl<F: AsRawFd + 'static> MultiCode for PollMulti<F> {
    type Item = std::io::Result<u32>;
    const CODE: u8 = opcode::PollAdd::CODE;
    const NAME: &'static str = "IORING_OP_POLL_ADD (multishot)";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd.as_raw_fd()), self.events)
            .multi(true)
            .build()
    }

    fn item(&self, c: Completion) -> Self::Item {
        c.into_result()
    }

    fn orphan(&self, _: Completion) {}
}
