//! `IORING_OP_SENDMSG` (io_uring_prep_sendmsg(3)): one datagram to an address.

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::IoBuf;
use crate::driver::Completion;
use crate::sys::{MsgHdr, RawAddr};

/// Sends `buf`'s initialised bytes as one datagram to `addr` (with
/// `MSG_NOSIGNAL`). `F` keeps the fd open.
pub(crate) struct SendMsg<F, B> {
    fd: F,
    buf: B,
    /// The `msghdr`, its `iovec` and the destination: boxed and owned.
    msg: Box<MsgHdr>,
}

impl<F: AsRawFd + 'static, B: IoBuf> SendMsg<F, B> {
    pub(crate) fn new(fd: F, buf: B, addr: RawAddr) -> Self {
        let mut msg = Box::new(MsgHdr::new(addr));
        msg.set_buf(buf.stable_ptr().cast_mut(), buf.bytes_init());
        SendMsg { fd, buf, msg }
    }

    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the SQE points at `*self.msg` (heap, owned), whose iovec points at
// `buf`'s stable storage (only read by the kernel) and whose name points at
// the boxed address.
unsafe impl<F: AsRawFd + 'static, B: IoBuf> OpCode for SendMsg<F, B> {
    type Output = (std::io::Result<usize>, B);
    const CODE: u8 = opcode::SendMsg::CODE;
    const NAME: &'static str = "IORING_OP_SENDMSG";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::SendMsg::new(types::Fd(self.fd.as_raw_fd()), self.msg.as_mut_ptr())
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        (c.into_result().map(|n| n as usize), self.buf)
    }
}
