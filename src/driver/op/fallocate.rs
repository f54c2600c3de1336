//! `IORING_OP_FALLOCATE` (io_uring_prep_fallocate(3)).

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// `fallocate(2)` of `len` bytes at `offset` with `mode` (0: allocate,
/// growing the file if the range ends past its end). `F` keeps the fd open.
pub(crate) struct Fallocate<F> {
    fd: F,
    offset: u64,
    len: u64,
    mode: i32,
}

impl<F: AsRawFd + 'static> Fallocate<F> {
    pub(crate) fn new(fd: F, offset: u64, len: u64, mode: i32) -> Self {
        Fallocate {
            fd,
            offset,
            len,
            mode,
        }
    }
}

// SAFETY: a fallocate SQE carries no pointer.
unsafe impl<F: AsRawFd + 'static> OpCode for Fallocate<F> {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::Fallocate::CODE;
    const NAME: &'static str = "IORING_OP_FALLOCATE";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Fallocate::new(types::Fd(self.fd.as_raw_fd()), self.len)
            .offset(self.offset)
            .mode(self.mode)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }
}
