//! `IORING_OP_FTRUNCATE` (`ftruncate(2)` through the ring; Linux 6.9+).

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Sets the length of the file `fd` to `len`, shrinking or growing (with a
/// hole) it. `F` keeps the fd open until the CQE.
pub(crate) struct Ftruncate<F> {
    fd: F,
    len: u64,
}

impl<F: AsRawFd + 'static> Ftruncate<F> {
    pub(crate) fn new(fd: F, len: u64) -> Self {
        Ftruncate { fd, len }
    }
}

// SAFETY: an ftruncate SQE carries no pointer.
unsafe impl<F: AsRawFd + 'static> OpCode for Ftruncate<F> {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::Ftruncate::CODE;
    const NAME: &'static str = "IORING_OP_FTRUNCATE";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Ftruncate::new(types::Fd(self.fd.as_raw_fd()), self.len).build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }
}
