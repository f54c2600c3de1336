//! `IORING_OP_MKDIRAT` (io_uring_prep_mkdirat(3)).

use std::ffi::CString;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Creates the directory `path` (relative to the current directory) with
/// `mode` (less the umask), as `mkdir(2)`.
pub(crate) struct MkDirAt {
    /// Read by the kernel: a `CString`'s bytes live in a heap box.
    path: CString,
    mode: libc::mode_t,
}

impl MkDirAt {
    pub(crate) fn new(path: CString, mode: libc::mode_t) -> Self {
        MkDirAt { path, mode }
    }
}

// SAFETY: the SQE points only at `self.path`'s heap buffer, owned by self.
unsafe impl OpCode for MkDirAt {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::MkDirAt::CODE;
    const NAME: &'static str = "IORING_OP_MKDIRAT";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .mode(self.mode)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }
}
