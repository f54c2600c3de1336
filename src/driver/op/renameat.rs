//! `IORING_OP_RENAMEAT` (io_uring_prep_renameat(3)).

use std::ffi::CString;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Renames `from` to `to` (both relative to the current directory),
/// replacing `to` if it exists, as `rename(2)`.
pub(crate) struct RenameAt {
    /// Read by the kernel: each `CString`'s bytes live in a heap box.
    from: CString,
    to: CString,
}

impl RenameAt {
    pub(crate) fn new(from: CString, to: CString) -> Self {
        RenameAt { from, to }
    }
}

// SAFETY: the SQE points only at the heap buffers of `self.from` and
// `self.to`, owned by self.
unsafe impl OpCode for RenameAt {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::RenameAt::CODE;
    const NAME: &'static str = "IORING_OP_RENAMEAT";

    fn sqe(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        opcode::RenameAt::new(cwd, self.from.as_ptr(), cwd, self.to.as_ptr()).build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }
}
