//! `IORING_OP_UNLINKAT` (io_uring_prep_unlinkat(3)).

use std::ffi::CString;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Removes `path` (relative to the current directory): a file, or an empty
/// directory with `AT_REMOVEDIR` in `flags`.
pub(crate) struct UnlinkAt {
    /// Read by the kernel: a `CString`'s bytes live in a heap box.
    path: CString,
    flags: i32,
}

impl UnlinkAt {
    pub(crate) fn new(path: CString, flags: i32) -> Self {
        UnlinkAt { path, flags }
    }
}

// SAFETY: the SQE points only at `self.path`'s heap buffer, owned by self.
unsafe impl OpCode for UnlinkAt {
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::UnlinkAt::CODE;
    const NAME: &'static str = "IORING_OP_UNLINKAT";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result().map(drop)
    }
}
