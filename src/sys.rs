//! The few raw syscalls ringloop makes outside io_uring, and fd helpers.
//!
//! Everything here is a thin, documented wrapper over `libc`; nothing above
//! this module calls `libc` for a syscall directly.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Creates a non-blocking, close-on-exec eventfd (`eventfd(2)`).
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; a non-negative return is a new fd
    // that nothing else owns.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter, waking whoever reads it.
///
/// `EAGAIN` (counter saturated) is fine: a reader is already due to wake.
pub(crate) fn eventfd_signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: the pointer and length describe `one`, a live 8-byte value;
    // `fd` is a valid eventfd for the duration of the call.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Creates a pipe with both ends close-on-exec (`pipe2(2)`); used by tests
/// and by ops that need a kernel object that never becomes ready by itself.
#[cfg(test)]
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as std::os::fd::RawFd; 2];
    // SAFETY: `fds` is a writable array of two c_ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The soft `RLIMIT_MEMLOCK` in bytes, if it can be read (for error messages).
pub(crate) fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0 {
        Some(lim.rlim_cur)
    } else {
        None
    }
}

/// The value of the `kernel.io_uring_disabled` sysctl, when the kernel has it.
pub(crate) fn io_uring_disabled_sysctl() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A number unique to the calling thread for the life of the process, cheap
/// to read (one thread-local load). Used to tell the owning thread of a loop
/// from foreign threads without touching `std::thread::current()`.
pub(crate) fn thread_token() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    thread_local! {
        static TOKEN: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}
