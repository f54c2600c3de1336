//! `IORING_OP_CLOSE` (io_uring_prep_close(3)).

use std::cell::RefCell;
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::{Op, OpCode, submit_detached};
use crate::driver::{Completion, Driver};

/// Closes `fd` through the ring without waiting for the result (a
/// resource's `Drop`); with plain `close(2)` on a kernel without
/// `IORING_OP_CLOSE`. The caller guarantees no op still uses `fd`.
pub(crate) fn close_detached(driver: &Rc<RefCell<Driver>>, fd: OwnedFd) {
    // A driver borrowed right now (a drop from inside it) supports it: the
    // check only matters for kernels older than the ring's own minimum.
    let ring_close = driver
        .try_borrow()
        .map_or(true, |d| d.supports(Close::CODE));
    if ring_close {
        submit_detached(driver, Close::new(fd));
    } else {
        drop(fd);
    }
}

/// Closes `fd` through the ring and returns what `close(2)` reported (or
/// closes it directly on a kernel without `IORING_OP_CLOSE`). The caller
/// guarantees no op still uses `fd`.
///
/// # Errors
///
/// What `close(2)` reports (for example a deferred write error on NFS), or
/// a closed loop.
pub(crate) async fn close_now(driver: &Rc<RefCell<Driver>>, fd: OwnedFd) -> io::Result<()> {
    if !driver.borrow().supports(Close::CODE) {
        return crate::sys::close(fd);
    }
    Op::submit(driver, Close::new(fd))?.await
}

/// Closes an fd through the ring. Ownership of the fd moves into the op at
/// creation, so it is closed exactly once, by the kernel.
pub(crate) struct Close {
    fd: i32,
}

impl Close {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Close {
            fd: fd.into_raw_fd(),
        }
    }
}

// SAFETY: a close SQE carries no pointer.
unsafe impl OpCode for Close {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::Close::CODE;
    const NAME: &'static str = "IORING_OP_CLOSE";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Close::new(types::Fd(self.fd)).build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }

    fn cancel_on_drop(&self) -> bool {
        false
    }
}
