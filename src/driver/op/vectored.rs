//! Vectored stream I/O: `IORING_OP_RECVMSG` / `IORING_OP_SENDMSG` over
//! several owned buffers (io_uring_prep_recvmsg(3), io_uring_prep_sendmsg(3)).

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::kept::{KeepsReads, ReadGuard};
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::Completion;
use crate::sys::IoVecs;

/// Receives into several buffers, filling them in order. Bytes received
/// after the future was dropped are kept on the fd's handle `H`.
pub(crate) struct RecvVectored<H: KeepsReads + 'static, B> {
    bufs: Vec<B>,
    /// Boxed: the kernel reads the header and its iovecs.
    msg: Box<IoVecs>,
    /// Counts this read as in flight until dropped; keeps the fd open until
    /// the CQE.
    guard: ReadGuard<H>,
}

impl<H: KeepsReads + 'static, B: IoBufMut> RecvVectored<H, B> {
    pub(crate) fn new(handle: &H, mut bufs: Vec<B>) -> Self {
        let msg = Box::new(IoVecs::new(
            bufs.iter_mut()
                .map(|b| (b.stable_mut_ptr(), b.bytes_total())),
        ));
        RecvVectored {
            bufs,
            msg,
            guard: ReadGuard::new(handle),
        }
    }

    pub(crate) fn into_bufs(self) -> Vec<B> {
        self.bufs
    }
}

// SAFETY: the SQE points at the boxed header, whose iovecs (a heap Vec)
// point at each buffer's stable storage; all are owned by self.
unsafe impl<H: KeepsReads + 'static, B: IoBufMut> OpCode for RecvVectored<H, B> {
    type Output = (std::io::Result<usize>, Vec<B>);
    const CODE: u8 = opcode::RecvMsg::CODE;
    const NAME: &'static str = "IORING_OP_RECVMSG";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::RecvMsg::new(types::Fd(self.guard.as_raw_fd()), self.msg.as_mut_ptr()).build()
    }

    fn complete(mut self, c: Completion) -> Self::Output {
        let res = c.into_result().map(|n| n as usize);
        if let Ok(n) = res {
            let mut left = n;
            for b in &mut self.bufs {
                let k = left.min(b.bytes_total());
                // SAFETY: the kernel filled the buffers in order: the first
                // `k` bytes of this one are initialised.
                unsafe { b.set_init(k) };
                left -= k;
            }
        }
        (res, self.bufs)
    }

    fn complete_orphan(self, c: Completion) {
        let n = match c.into_result() {
            Ok(n) => n,
            // A failure (a reset) is for the next read; a cancel is ours.
            Err(e) => return self.guard.keep_error(&e),
        };
        let mut left = n as usize;
        for b in &self.bufs {
            let k = left.min(b.bytes_total());
            // SAFETY: the kernel wrote the first `k` bytes of this buffer.
            let got = unsafe { crate::buf::kernel_written(b, k) };
            self.guard.keep_unread(got, false);
            left -= k;
        }
        if n == 0 {
            self.guard.keep_unread(&[], true);
        }
    }
}

/// Sends the initialised bytes of several buffers, in order, in one call
/// (with `MSG_NOSIGNAL`). `F` keeps the fd open.
pub(crate) struct SendVectored<F, B> {
    fd: F,
    bufs: Vec<B>,
    /// Boxed: the kernel reads the header and its iovecs.
    msg: Box<IoVecs>,
}

impl<F: AsRawFd + 'static, B: IoBuf> SendVectored<F, B> {
    pub(crate) fn new(fd: F, bufs: Vec<B>) -> Self {
        let msg = Box::new(IoVecs::new(
            bufs.iter()
                .map(|b| (b.stable_ptr().cast_mut(), b.bytes_init())),
        ));
        SendVectored { fd, bufs, msg }
    }

    pub(crate) fn into_bufs(self) -> Vec<B> {
        self.bufs
    }
}

// SAFETY: the SQE points at the boxed header, whose iovecs point at each
// buffer's stable storage (only read by the kernel); all are owned by self.
unsafe impl<F: AsRawFd + 'static, B: IoBuf> OpCode for SendVectored<F, B> {
    type Output = (std::io::Result<usize>, Vec<B>);
    const CODE: u8 = opcode::SendMsg::CODE;
    const NAME: &'static str = "IORING_OP_SENDMSG";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::SendMsg::new(types::Fd(self.fd.as_raw_fd()), self.msg.as_mut_ptr())
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        (c.into_result().map(|n| n as usize), self.bufs)
    }
}
