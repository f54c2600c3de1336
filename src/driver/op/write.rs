//! `IORING_OP_WRITE` (io_uring_prep_write(3)) from an owned buffer.

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::IoBuf;
use crate::driver::Completion;

/// Writes `buf`'s initialised bytes to `fd` at `offset` (`u64::MAX`: the
/// file position). `F` keeps the fd open until the CQE.
#[derive(Debug)]
pub(crate) struct Write<F, B> {
    fd: F,
    buf: B,
    offset: u64,
}

impl<F: AsRawFd + 'static, B: IoBuf> Write<F, B> {
    pub(crate) fn new(fd: F, buf: B, offset: u64) -> Self {
        Write { fd, buf, offset }
    }

    /// The buffer back, when the op was never submitted.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `buf`'s storage, stable across moves of `buf`
// (`IoBuf`'s contract); `buf` is owned by self.
unsafe impl<F: AsRawFd + 'static, B: IoBuf> OpCode for Write<F, B> {
    type Output = (std::io::Result<usize>, B);
    const CODE: u8 = opcode::Write::CODE;
    const NAME: &'static str = "IORING_OP_WRITE";

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init()).unwrap_or(u32::MAX);
        opcode::Write::new(types::Fd(self.fd.as_raw_fd()), self.buf.stable_ptr(), len)
            .offset(self.offset)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        (c.into_result().map(|n| n as usize), self.buf)
    }
}
