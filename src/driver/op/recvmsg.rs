//! `IORING_OP_RECVMSG` (io_uring_prep_recvmsg(3)): one datagram and its
//! source address.

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::IoBufMut;
use crate::driver::Completion;
use crate::net::socket::{ReadGuard, Socket};
use crate::sys::{MsgHdr, RawAddr};

/// Receives one datagram into `buf`. A datagram received after the future
/// was dropped is kept whole on the socket for the next receive.
pub(crate) struct RecvMsg<B> {
    buf: B,
    /// The `msghdr`, its `iovec` and the source address: boxed, so the
    /// pointers between them and the kernel's view stay valid.
    msg: Box<MsgHdr>,
    guard: ReadGuard,
}

impl<B: IoBufMut> RecvMsg<B> {
    pub(crate) fn new(socket: &Socket, mut buf: B) -> Self {
        let mut msg = Box::new(MsgHdr::new(RawAddr::empty()));
        msg.set_buf(buf.stable_mut_ptr(), buf.bytes_total());
        RecvMsg {
            buf,
            msg,
            guard: socket.read_guard(),
        }
    }

    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `*self.msg` (heap, owned), whose iovec points at
// `buf`'s stable storage and whose name points at the boxed address.
unsafe impl<B: IoBufMut> OpCode for RecvMsg<B> {
    /// The datagram's length and source address.
    type Output = (std::io::Result<(usize, RawAddr)>, B);
    const CODE: u8 = opcode::RecvMsg::CODE;
    const NAME: &'static str = "IORING_OP_RECVMSG";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::RecvMsg::new(types::Fd(self.guard.as_raw_fd()), self.msg.as_mut_ptr()).build()
    }

    fn complete(mut self, c: Completion) -> Self::Output {
        match c.into_result() {
            Ok(n) => {
                let n = n as usize;
                // SAFETY: the kernel initialised the first `n` bytes.
                unsafe { self.buf.set_init(n) };
                (Ok((n, self.msg.addr())), self.buf)
            }
            Err(e) => (Err(e), self.buf),
        }
    }

    fn complete_orphan(self, c: Completion) {
        if let Ok(n) = c.into_result() {
            // SAFETY: the kernel wrote `n` bytes into the buffer.
            let got = unsafe { crate::buf::kernel_written(&self.buf, n as usize) };
            self.guard.keep_datagram(got.to_vec(), self.msg.addr());
        }
    }
}
