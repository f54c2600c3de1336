//! `IORING_OP_WAITID` (io_uring_prep_waitid(3), Linux 6.7): waits for a
//! child, through a pidfd, to exit.

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue};

use super::OpCode;
use crate::driver::Completion;

/// `waitid(P_PIDFD, fd, WEXITED | WNOWAIT)`: completes once the child behind
/// the pidfd has exited, *without reaping it* (`WNOWAIT`). The caller reaps
/// it with a non-blocking `waitid`; so a cancelled wait (its CQE raced with
/// the exit) never loses the exit status. `F` keeps the pidfd open until
/// the CQE.
pub(crate) struct WaitId<F> {
    pidfd: F,
    /// Written by the kernel; boxed so its address is stable (see `OpCode`).
    info: Box<libc::siginfo_t>,
}

impl<F: AsRawFd + 'static> WaitId<F> {
    pub(crate) fn new(pidfd: F) -> Self {
        WaitId {
            pidfd,
            // SAFETY: siginfo_t is plain data; all-zero is a valid value.
            info: Box::new(unsafe { std::mem::zeroed() }),
        }
    }
}

// SAFETY: the SQE points only at `*self.info`, a heap allocation owned by
// self that the kernel writes at most once, before the CQE.
unsafe impl<F: AsRawFd + 'static> OpCode for WaitId<F> {
    /// The child's `waitpid`-style status (it stays a zombie until reaped).
    type Output = std::io::Result<Option<i32>>;
    const CODE: u8 = opcode::WaitId::CODE;
    const NAME: &'static str = "IORING_OP_WAITID";

    fn sqe(&mut self) -> squeue::Entry {
        let info: *mut libc::siginfo_t = &mut *self.info;
        opcode::WaitId::new(
            crate::sys::P_PIDFD,
            self.pidfd.as_raw_fd() as libc::id_t,
            libc::WEXITED | libc::WNOWAIT,
        )
        .infop(info.cast_const())
        .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result()?;
        Ok(crate::sys::wait_status(&self.info))
    }
}
