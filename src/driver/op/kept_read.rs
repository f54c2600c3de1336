//! A read from a stream socket (`IORING_OP_RECV`) or a pipe
//! (`IORING_OP_READ`) into an owned buffer that keeps what it received if
//! its future was dropped.

use io_uring::squeue;

use super::OpCode;
use crate::buf::IoBufMut;
use crate::buf::kept::{KeepsReads, ReadGuard};
use crate::driver::Completion;

/// An fd type [`KeptRead`] can read from: which opcode, and its SQE.
pub(crate) trait StreamFd: KeepsReads + 'static {
    const CODE: u8;
    const NAME: &'static str;
    /// The SQE reading up to `len` bytes from `fd` into `ptr`.
    fn read_sqe(fd: i32, ptr: *mut u8, len: u32) -> squeue::Entry;
}

/// Reads into `buf` (after its first `skip` bytes). If the future is
/// dropped and the kernel still delivers bytes, they are kept on the fd's
/// handle and handed to the next read (nothing is lost).
pub(crate) struct KeptRead<H: StreamFd, B> {
    buf: B,
    /// Bytes at the start of `buf` that earlier reads of the same
    /// `read_exact` received: the kernel writes after them, and an orphan
    /// keeps them too (in front of what it got).
    skip: usize,
    /// Counts this read as in flight until dropped; keeps the fd open until
    /// the CQE.
    guard: ReadGuard<H>,
}

impl<H: StreamFd, B: IoBufMut> KeptRead<H, B> {
    pub(crate) fn new(handle: &H, buf: B) -> Self {
        Self::after(handle, buf, 0)
    }

    /// Reads into `buf` after its first `skip` bytes, which must be
    /// initialised bytes of this stream that no one has been handed yet.
    pub(crate) fn after(handle: &H, buf: B, skip: usize) -> Self {
        debug_assert!(skip <= buf.bytes_init() && skip <= buf.bytes_total());
        KeptRead {
            buf,
            skip,
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
        let room = self.buf.bytes_total() - self.skip;
        let len = u32::try_from(room).unwrap_or(u32::MAX);
        // SAFETY: `skip <= bytes_total()` (checked at construction), so the
        // pointer stays within (or one past) the buffer's storage.
        let ptr = unsafe { self.buf.stable_mut_ptr().add(self.skip) };
        H::read_sqe(self.guard.as_raw_fd(), ptr, len)
    }

    fn complete(mut self, c: Completion) -> Self::Output {
        let res = c.into_result().map(|n| n as usize);
        if let Ok(n) = res {
            // SAFETY: the first `skip` bytes were initialised before (the
            // constructor's contract) and the kernel initialised `n` more.
            unsafe { self.buf.set_init(self.skip + n) };
        }
        (res, self.buf)
    }

    fn complete_orphan(self, c: Completion) {
        let (n, eof, error) = match c.into_result() {
            Ok(n) => (n as usize, n == 0, None),
            // Cancelled or failed: only the earlier bytes are left to keep,
            // and a failure (a reset) for the read after them.
            Err(e) => (0, false, Some(e)),
        };
        // SAFETY: the first `skip` bytes were initialised before and the
        // kernel wrote `n` more right after them.
        let got = unsafe { crate::buf::kernel_written(&self.buf, self.skip + n) };
        self.guard.keep_unread(got, eof);
        if let Some(e) = error {
            self.guard.keep_error(&e);
        }
    }
}
