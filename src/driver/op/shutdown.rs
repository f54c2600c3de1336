//! `IORING_OP_SHUTDOWN` (io_uring_prep_shutdown(3)).

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// `shutdown(2)` of a socket's read and/or write side.
pub(crate) struct Shutdown<F> {
    fd: F,
    how: i32,
}

impl<F: AsRawFd + 'static> Shutdown<F> {
    pub(crate) fn new(fd: F, how: std::net::Shutdown) -> Self {
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        Shutdown { fd, how }
    }
}

// SAFETY: a shutdown SQE carries no pointer.
unsafe impl<F: AsRawFd + 'static> OpCode for Shutdown<F> {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::Shutdown::CODE;
    const NAME: &'static str = "IORING_OP_SHUTDOWN";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Shutdown::new(types::Fd(self.fd.as_raw_fd()), self.how).build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }

    fn cancel_on_drop(&self) -> bool {
        false
    }
}
