//! `IORING_OP_READ` (io_uring_prep_read(3)) into an owned buffer.

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::IoBufMut;
use crate::driver::Completion;

/// Reads into `buf` from `fd` at `offset` (`u64::MAX`: the file position).
/// `F` keeps the fd open until the CQE.
#[derive(Debug)]
pub(crate) struct Read<F, B> {
    fd: F,
    buf: B,
    offset: u64,
}

impl<F: AsRawFd + 'static, B: IoBufMut> Read<F, B> {
    pub(crate) fn new(fd: F, buf: B, offset: u64) -> Self {
        Read { fd, buf, offset }
    }

    /// The buffer back, when the op was never submitted.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `buf`'s storage, which `IoBufMut` guarantees is
// stable across moves of `buf`; `buf` is owned by self.
unsafe impl<F: AsRawFd + 'static, B: IoBufMut> OpCode for Read<F, B> {
    type Output = (std::io::Result<usize>, B);
    const CODE: u8 = opcode::Read::CODE;
    const NAME: &'static str = "IORING_OP_READ";

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_total()).unwrap_or(u32::MAX);
        opcode::Read::new(
            types::Fd(self.fd.as_raw_fd()),
            self.buf.stable_mut_ptr(),
            len,
        )
        .offset(self.offset)
        .build()
    }

    fn complete(mut self, c: Completion) -> Self::Output {
        let res = c.into_result().map(|n| n as usize);
        if let Ok(n) = res {
            // SAFETY: the kernel initialised the first `n` bytes.
            unsafe { self.buf.set_init(n) };
        }
        (res, self.buf)
    }
}
