//! `IORING_OP_ACCEPT` (io_uring_prep_accept(3)).

use std::os::fd::{AsRawFd, OwnedFd};

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;
use crate::sys::RawAddr;

/// Accepts a connection on listener `F`; yields the new fd and the peer's
/// address. An fd accepted after the future was dropped is closed.
pub(crate) struct Accept<F> {
    fd: F,
    /// Written by the kernel: boxed so it does not move.
    addr: Box<RawAddr>,
}

impl<F: AsRawFd + 'static> Accept<F> {
    pub(crate) fn new(fd: F) -> Self {
        Accept {
            fd,
            addr: Box::new(RawAddr::empty()),
        }
    }
}

// SAFETY: the SQE points at `*self.addr` (storage and length), a heap
// allocation owned by self.
unsafe impl<F: AsRawFd + 'static> OpCode for Accept<F> {
    type Output = std::io::Result<(OwnedFd, RawAddr)>;
    const CODE: u8 = opcode::Accept::CODE;
    const NAME: &'static str = "IORING_OP_ACCEPT";

    fn sqe(&mut self) -> squeue::Entry {
        let addr = &mut *self.addr;
        opcode::Accept::new(
            types::Fd(self.fd.as_raw_fd()),
            (&mut addr.storage as *mut libc::sockaddr_storage).cast(),
            &mut addr.len,
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        let fd = c.into_result()?;
        Ok((crate::sys::owned_fd(fd as i32), *self.addr))
    }

    fn complete_orphan(self, c: Completion) {
        // Nobody wants the connection: close it rather than leak it.
        if let Ok(fd) = c.into_result() {
            drop(crate::sys::owned_fd(fd as i32));
        }
    }
}

/// Multishot accept (`IORING_ACCEPT_MULTISHOT`, 5.19+): one SQE yields every
/// new connection until an error ends it. No peer address is returned.
pub(crate) struct AcceptMulti<F> {
    fd: F,
}

impl<F: AsRawFd + 'static> AcceptMulti<F> {
    pub(crate) fn new(fd: F) -> Self {
        AcceptMulti { fd }
    }
}

// SAFETY: a multishot accept SQE carries no pointer (no address buffer).
unsafe impl<F: AsRawFd + 'static> super::MultiCode for AcceptMulti<F> {
    type Item = std::io::Result<OwnedFd>;
    const CODE: u8 = opcode::AcceptMulti::CODE;
    const NAME: &'static str = "IORING_OP_ACCEPT (multishot)";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(types::Fd(self.fd.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn item(&self, c: Completion) -> Self::Item {
        c.into_result().map(|fd| crate::sys::owned_fd(fd as i32))
    }

    fn orphan(&self, c: Completion) {
        // A connection nobody will serve: close it rather than leak it.
        if let Ok(fd) = c.into_result() {
            drop(crate::sys::owned_fd(fd as i32));
        }
    }
}
