//! `IORING_OP_RECVMSG` (io_uring_prep_recvmsg(3)): one datagram and its
//! source address.

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::IoBufMut;
use crate::buf::kept::{KeepsReads, ReadGuard};
use crate::driver::Completion;
use crate::sys::{MsgHdr, RawAddr};

/// An fd handle [`RecvMsg`] can receive from: it keeps whole the datagrams
/// that receives abandoned in flight got.
pub(crate) trait KeepsDatagrams: KeepsReads + 'static {
    /// Keeps a datagram received after the receive's future was dropped,
    /// for the next receive.
    fn keep_datagram(&self, bytes: Vec<u8>, from: RawAddr);
}

/// Receives one datagram into `buf`. A datagram received after the future
/// was dropped is kept whole on the fd's handle for the next receive.
pub(crate) struct RecvMsg<H: KeepsDatagrams, B> {
    buf: B,
    /// The `msghdr`, its `iovec` and the source address: boxed, so the
    /// pointers between them and the kernel's view stay valid.
    msg: Box<MsgHdr>,
    /// Counts this receive as in flight until dropped; keeps the fd open
    /// until the CQE.
    guard: ReadGuard<H>,
}

impl<H: KeepsDatagrams, B: IoBufMut> RecvMsg<H, B> {
    pub(crate) fn new(handle: &H, mut buf: B) -> Self {
        let mut msg = Box::new(MsgHdr::new(RawAddr::empty()));
        msg.set_buf(buf.stable_mut_ptr(), buf.bytes_total());
        RecvMsg {
            buf,
            msg,
            guard: ReadGuard::new(handle),
        }
    }

    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `*self.msg` (heap, owned), whose iovec points at
// `buf`'s stable storage and whose name points at the boxed address.
unsafe impl<H: KeepsDatagrams, B: IoBufMut> OpCode for RecvMsg<H, B> {
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
            self.guard.0.keep_datagram(got.to_vec(), self.msg.addr());
        }
    }
}
