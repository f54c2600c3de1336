//! `IORING_OP_STATX` (io_uring_prep_statx(3)).

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// The fields asked for: the basic `stat` fields and the birth time.
const MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// The current directory as a `dirfd` (`AT_FDCWD`), for a statx by path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cwd;

impl AsRawFd for Cwd {
    fn as_raw_fd(&self) -> RawFd {
        libc::AT_FDCWD
    }
}

/// `statx(2)` of a path, or of an open fd (`AT_EMPTY_PATH`). `F` keeps the
/// fd open until the CQE.
pub(crate) struct Statx<F> {
    dirfd: F,
    /// Read by the kernel: a `CString`'s bytes live in a heap box.
    path: CString,
    flags: i32,
    /// Written by the kernel: boxed so it does not move.
    buf: Box<libc::statx>,
}

impl Statx<Cwd> {
    /// Of `path`, following a final symlink unless `follow` is false.
    pub(crate) fn path(path: CString, follow: bool) -> Self {
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        Statx::new(Cwd, path, flags)
    }
}

impl<F: AsRawFd + 'static> Statx<F> {
    /// Of the open file `fd`.
    pub(crate) fn fd(fd: F) -> Self {
        Statx::new(fd, CString::default(), libc::AT_EMPTY_PATH)
    }

    fn new(dirfd: F, path: CString, flags: i32) -> Self {
        Statx {
            dirfd,
            path,
            flags: flags | libc::AT_STATX_SYNC_AS_STAT,
            // SAFETY: `statx` is plain old data; all-zero is a valid value.
            buf: Box::new(unsafe { std::mem::zeroed() }),
        }
    }
}

// SAFETY: the SQE points at `self.path`'s heap buffer and at `*self.buf`, a
// heap allocation; both are owned by self.
unsafe impl<F: AsRawFd + 'static> OpCode for Statx<F> {
    type Output = std::io::Result<libc::statx>;
    const CODE: u8 = opcode::Statx::CODE;
    const NAME: &'static str = "IORING_OP_STATX";

    fn sqe(&mut self) -> squeue::Entry {
        let buf: *mut libc::statx = &mut *self.buf;
        opcode::Statx::new(
            types::Fd(self.dirfd.as_raw_fd()),
            self.path.as_ptr(),
            buf.cast::<types::statx>(),
        )
        .flags(self.flags)
        .mask(MASK)
        .build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result()?;
        Ok(*self.buf)
    }
}
