//! `IORING_OP_CONNECT` (io_uring_prep_connect(3)).

use std::os::fd::{AsRawFd, OwnedFd};

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;
use crate::sys::RawAddr;

/// Connects socket `fd` (owned: closed if the future is dropped) to `addr`.
pub(crate) struct Connect {
    fd: OwnedFd,
    /// Read by the kernel: boxed so it does not move.
    addr: Box<RawAddr>,
}

impl Connect {
    pub(crate) fn new(fd: OwnedFd, addr: RawAddr) -> Self {
        Connect {
            fd,
            addr: Box::new(addr),
        }
    }
}

// SAFETY: the SQE points at `self.addr.storage`, heap memory owned by self.
unsafe impl OpCode for Connect {
    /// The connected socket.
    type Output = std::io::Result<OwnedFd>;
    const CODE: u8 = opcode::Connect::CODE;
    const NAME: &'static str = "IORING_OP_CONNECT";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd.as_raw_fd()),
            (&self.addr.storage as *const libc::sockaddr_storage).cast(),
            self.addr.len,
        )
        .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        match c.into_result() {
            Ok(_) => Ok(self.fd),
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            )),
            Err(e) => Err(e),
        }
    }
}

/// Connects an already shared socket (a datagram socket's default peer).
pub(crate) struct ConnectShared<F> {
    fd: F,
    /// Read by the kernel: boxed so it does not move.
    addr: Box<RawAddr>,
}

impl<F: AsRawFd + 'static> ConnectShared<F> {
    pub(crate) fn new(fd: F, addr: RawAddr) -> Self {
        ConnectShared {
            fd,
            addr: Box::new(addr),
        }
    }
}

// SAFETY: the SQE points at `self.addr.storage`, heap memory owned by self.
unsafe impl<F: AsRawFd + 'static> OpCode for ConnectShared<F> {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::Connect::CODE;
    const NAME: &'static str = "IORING_OP_CONNECT";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd.as_raw_fd()),
            (&self.addr.storage as *const libc::sockaddr_storage).cast(),
            self.addr.len,
        )
        .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }
}
