//! A read from a stream socket (`IORING_OP_RECV`) or a pipe
//! (`IORING_OP_READ`) into an owned buffer that keeps what it received if
//! its future was dropped.

use io_uring::squeue;

use super::OpCode;
use crate::driver::Completion;
use crate::io::IoBufMut;
use crate::io::kept::{KeepsReads, ReadGuard};

/// An fd type [`KeptRead`] can read from: which opcode, and its SQE.
pub(crate) trait StreamFd: KeepsReads + 'static {
    const CODE: u8;
    const NAME: &'static str;
    /// The SQE reading up to `len` bytes from `fd` into `ptr`.
    fn read_sqe(fd: i32, ptr: *mut u8, len: u32) -> squeue::Entry;
}

/// Reads into `buf`. If the future is dropped and the kernel still delivers
/// bytes, they are kept on the fd's handle and handed to the next read
/// (nothing is lost).
pub(crate) struct KeptRead<H: StreamFd, B> {
    buf: B,
    /// Counts this read as in flight until dropped; keeps the fd open until
    /// the CQE.
    guard: ReadGuard<H>,
}

impl<H: StreamFd, B: IoBufMut> KeptRead<H, B> {
    pub(crate) fn new(handle: &H, buf: B) -> Self {
        KeptRead {
            buf,
            guard: ReadGuard::new(handle),
        }
    }

    /// The buffer back, when the op was never submitted.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `buf`'s storage, stable across moves of `buf`
// (`IoBufMut`'s contract); `buf` is owned by self, which the driver keeps
// until the CQE.
unsafe impl<H: StreamFd, B: IoBufMut> OpCode for KeptRead<H, B> {
    type Output = (std::io::Result<usize>, B);
    const CODE: u8 = H::CODE;
    const NAME: &'static str = H::NAME;

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_total()).unwrap_or(u32::MAX);
        H::read_sqe(self.guard.as_raw_fd(), self.buf.stable_mut_ptr(), len)
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
            self.guard.keep_unread(got, n == 0);
        }
    }
}
