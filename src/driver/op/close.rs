//! `IORING_OP_CLOSE` (io_uring_prep_close(3)).

use std::os::fd::{IntoRawFd, OwnedFd};

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Closes an fd through the ring. Ownership of the fd moves into the op at
/// creation, so it is closed exactly once, by the kernel.
pub(crate) struct Close {
    fd: i32,
}

impl Close {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Close {
            fd: fd.into_raw_fd(),
        }
    }
}

// SAFETY: a close SQE carries no pointer.
unsafe impl OpCode for Close {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::Close::CODE;
    const NAME: &'static str = "IORING_OP_CLOSE";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Close::new(types::Fd(self.fd)).build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }

    fn cancel_on_drop(&self) -> bool {
        false
    }
}
