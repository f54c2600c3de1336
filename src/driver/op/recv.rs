//! `IORING_OP_RECV` (io_uring_prep_recv(3)) into an owned buffer.

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;
use crate::io::IoBufMut;
use crate::net::socket::Socket;

/// Receives into `buf` from a stream socket. If the future is dropped and
/// the kernel still delivers bytes, they are kept on the socket and handed
/// to the next read (nothing is lost).
pub(crate) struct Recv<B> {
    buf: B,
    /// Counts this read as in flight on the socket until dropped.
    socket: crate::net::socket::ReadGuard,
}

impl<B: IoBufMut> Recv<B> {
    pub(crate) fn new(socket: &Socket, buf: B) -> Self {
        Recv {
            buf,
            socket: socket.read_guard(),
        }
    }

    /// The buffer back, when the op was never submitted.
    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `buf`'s storage, stable across moves of `buf`
// (`IoBufMut`'s contract); `buf` is owned by self.
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    type Output = (std::io::Result<usize>, B);
    const CODE: u8 = opcode::Recv::CODE;
    const NAME: &'static str = "IORING_OP_RECV";

    fn sqe(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_total()).unwrap_or(u32::MAX);
        opcode::Recv::new(
            types::Fd(self.socket.as_raw_fd()),
            self.buf.stable_mut_ptr(),
            len,
        )
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
            self.socket.keep_unread(got, n == 0);
        }
    }
}
