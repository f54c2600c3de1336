//! `IORING_OP_OPENAT` (io_uring_prep_openat(3)).

use std::ffi::CString;
use std::os::fd::OwnedFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Opens `path` relative to the current directory with `flags` (which
/// always gain `O_CLOEXEC`) and `mode`. An fd opened after the future was
/// dropped is closed: cancelling an open never leaks an fd.
pub(crate) struct OpenAt {
    /// Read by the kernel: a `CString` keeps its bytes in a heap box that
    /// does not move when the op does.
    path: CString,
    flags: i32,
    mode: libc::mode_t,
}

impl OpenAt {
    pub(crate) fn new(path: CString, flags: i32, mode: libc::mode_t) -> Self {
        OpenAt {
            path,
            flags: flags | libc::O_CLOEXEC,
            mode,
        }
    }
}

// SAFETY: the SQE points only at `self.path`'s heap buffer, owned by self.
unsafe impl OpCode for OpenAt {
    type Output = std::io::Result<OwnedFd>;
    const CODE: u8 = opcode::OpenAt::CODE;
    const NAME: &'static str = "IORING_OP_OPENAT";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        let fd = c.into_result()?;
        Ok(crate::sys::owned_fd(fd as i32))
    }

    fn complete_orphan(self, c: Completion) {
        // Nobody wants the file any more: close it rather than leak it.
        if let Ok(fd) = c.into_result() {
            drop(crate::sys::owned_fd(fd as i32));
        }
    }
}
