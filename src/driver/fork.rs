//! Telling a ring made by this process from one inherited across `fork()`
//! (docs/design/fork.md).
//!
//! A forked child gets a copy of every [`super::Driver`], but the ring
//! behind it is the parent's: the same io_uring instance, whose ops belong
//! to the parent. Its SQ and CQ are not even mapped in the child (the rings
//! are `MADV_DONTFORK`), so touching them would crash; without that flag
//! they would be shared, and a child submitting cancels or reaping CQEs
//! would cancel or steal the parent's completions. An inherited driver must
//! therefore stay inert: it never submits, reaps, unmaps or closes
//! anything, and running it is an error ([`inherited_error`]). What it
//! owns in the child (memory, fds, all close-on-exec) is leaked: freeing
//! an op's resources would run their code, and a `munmap` could hit
//! whatever the child has mapped at those addresses since.
//!
//! Detection is one atomic load: a `pthread_atfork` child handler,
//! registered before the first ring is made, bumps [`GENERATION`] in every
//! child; a driver remembers the generation it was made in. (A `getpid()`
//! per loop turn would cost a syscall.) A child made by a raw `clone(2)`
//! that bypasses libc's `fork` runs no handler and is not detected.
//!
//! These are `std` atomics, not `crate::loom`'s: the handler runs in the
//! child right after `fork`, where only async-signal-safe code may run, and
//! loom cannot model `fork` anyway.

use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many `fork()`s separate this process from the original one.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The `pthread_atfork` child handler: one atomic add, async-signal-safe.
extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The current generation, for a driver about to make its ring. Registers
/// the fork handler first (once per process; a child inherits it).
pub(crate) fn generation_for_new_ring() -> u64 {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `in_child` is a plain `extern "C" fn()` living as long as
        // the process, and does only an atomic add, which is allowed in a
        // fork child of a multi-threaded process. pthread_atfork fails only
        // with ENOMEM; then forks go undetected (the pre-existing behaviour).
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
    current()
}

/// The current generation.
#[inline]
pub(super) fn current() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// What running an inherited loop returns.
pub(super) fn inherited_error() -> io::Error {
    io::Error::other(
        "ringloop: this event loop was inherited across fork(): its io_uring belongs to the \
         parent process, so the child cannot run it; build a new EventLoop in the child \
         (see docs/design/fork.md)",
    )
}
