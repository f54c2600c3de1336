//! `IORING_OP_ASYNC_CANCEL` by fd (io_uring_prep_cancel_fd(3)): cancels
//! every request on a file descriptor.

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Cancels all requests on `fd` (`IORING_ASYNC_CANCEL_FD | _ALL`, 5.19+);
/// resolves to how many were cancelled.
pub(crate) struct CancelFd {
    fd: i32,
}

impl CancelFd {
    pub(crate) fn new(fd: i32) -> Self {
        CancelFd { fd }
    }
}

// SAFETY: a cancel SQE carries no pointer.
unsafe impl OpCode for CancelFd {
    type Output = std::io::Result<u32>;
    const CODE: u8 = opcode::AsyncCancel2::CODE;
    const NAME: &'static str = "IORING_OP_ASYNC_CANCEL";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(self.fd)).all()).build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        match c.into_result() {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(0),
            other => other,
        }
    }

    fn cancel_on_drop(&self) -> bool {
        false
    }
}
