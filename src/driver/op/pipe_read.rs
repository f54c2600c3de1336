//! `IORING_OP_READ` (io_uring_prep_read(3)) from a pipe, keeping what a
//! dropped read received.

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;
use crate::io::IoBufMut;
use crate::process::pipe::{Pipe, ReadGuard};

/// Reads into `buf` from a pipe (at "the current position": a pipe has
/// none). If the future is dropped and the kernel still delivers bytes,
/// they are kept on the pipe and handed to the next read (nothing is lost).
pub(crate) struct PipeRead<B> {
    buf: B,
    /// Counts this read as in flight on the pipe until dropped; keeps the
    /// fd open until the CQE.
    pipe: ReadGuard,
}

impl<B: IoBufMut> PipeRead<B> {
    pub(crate) fn new(pipe: &Pipe, buf: B) -> Self {
        PipeRead {
            buf,
            pipe: pipe.read_guard(),
        }
    }

    /// The buffer back, when the op was never submitted.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `buf`'s storage, stable across moves of `buf`
// (`IoBufMut`'s contract); `buf` is owned by self.
unsafe impl<B: IoBufMut> OpCode for PipeRead<B> {
    type Output = (std::io::Result<usize>, B);
    const CODE: u8 = opcode::Read::CODE;
    const NAME: &'static str = "IORING_OP_READ";

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_total()).unwrap_or(u32::MAX);
        opcode::Read::new(
            types::Fd(self.pipe.as_raw_fd()),
            self.buf.stable_mut_ptr(),
            len,
        )
        .offset(u64::MAX)
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

    fn complete_orphan(self, c: Completion) {
        if let Ok(n) = c.into_result() {
            // SAFETY: the kernel wrote `n` bytes into the buffer.
            let got = unsafe { crate::io::kernel_written(&self.buf, n as usize) };
            self.pipe.keep_unread(got, n == 0);
        }
    }
}
