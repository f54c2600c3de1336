//! `IORING_OP_SEND` (io_uring_prep_send(3)) from an owned buffer.

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::IoBuf;
use crate::driver::Completion;

/// Sends `buf`'s initialised bytes on a socket, with `MSG_NOSIGNAL` (a
/// reset peer is `EPIPE`, never `SIGPIPE`). `F` keeps the fd open.
pub(crate) struct Send<F, B> {
    fd: F,
    buf: B,
}

impl<F: AsRawFd + 'static, B: IoBuf> Send<F, B> {
    pub(crate) fn new(fd: F, buf: B) -> Self {
        Send { fd, buf }
    }

    /// The buffer back, when the op was never submitted.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `buf`'s storage, stable across moves of `buf`
// (`IoBuf`'s contract); `buf` is owned by self.
unsafe impl<F: AsRawFd + 'static, B: IoBuf> OpCode for Send<F, B> {
    type Output = (std::io::Result<usize>, B);
    const CODE: u8 = opcode::Send::CODE;
    const NAME: &'static str = "IORING_OP_SEND";

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init()).unwrap_or(u32::MAX);
        opcode::Send::new(types::Fd(self.fd.as_raw_fd()), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        (c.into_result().map(|n| n as usize), self.buf)
    }
}
