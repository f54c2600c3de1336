//! `IORING_OP_FSYNC` (io_uring_prep_fsync(3)).

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// `fsync(2)`, or `fdatasync(2)` when `datasync`. `F` keeps the fd open
/// until the CQE.
pub(crate) struct Fsync<F> {
    fd: F,
    datasync: bool,
}

impl<F: AsRawFd + 'static> Fsync<F> {
    pub(crate) fn new(fd: F, datasync: bool) -> Self {
        Fsync { fd, datasync }
    }
}

// SAFETY: an fsync SQE carries no pointer.
unsafe impl<F: AsRawFd + 'static> OpCode for Fsync<F> {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::Fsync::CODE;
    const NAME: &'static str = "IORING_OP_FSYNC";

    fn sqe(&mut self) -> squeue::Entry {
        let flags = if self.datasync {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        opcode::Fsync::new(types::Fd(self.fd.as_raw_fd()))
            .flags(flags)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }
}
