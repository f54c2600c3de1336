//! The process-wide half: the `sigaction` handler and the state it touches.
//!
//! Everything the handler reads or writes is a `static` of lock-free
//! atomics plus eventfds that are never closed, so the handler is
//! async-signal-safe: it makes no allocation, takes no lock, and calls only
//! `write(2)` (and saves and restores `errno` around it).
//!
//! # Invariants
//!
//! 1. `GENERATIONS[s]` only grows (wrapping): each delivery of signal `s`
//!    adds one, before any eventfd is written. A listener that remembers the
//!    value it last saw knows a delivery happened iff the value changed.
//! 2. An eventfd in `FDS` is never closed, so a handler that loaded its
//!    number can write to it at any later time without hitting a reused fd.
//!    A slot is *leased* to one event loop at a time ([`Lease`]); the
//!    handler writes to every leased slot. The lease is held by the loop's
//!    ring read on the eventfd until that read's completion, so a slot is
//!    never handed to a new loop while an old read could still consume its
//!    count.
//! 3. `USERS[s]` counts the live user listeners of `s` ([`super::Signal`]s
//!    and loop signal handlers, not the internal one of `run()`). The
//!    handler reads it for `SIGINT` to decide, at delivery time, whether
//!    [`crate::run`] should cancel its main future (no user listener) or
//!    leave the signal to user code.
//!
//! 4. A slot's eventfd is only read by loops of the process that created
//!    it. After `fork`, a child leasing a slot its parent created makes a
//!    fresh eventfd for it (the inherited one stays open, unused, so a
//!    handler holding its number never writes to a reused fd).
//!
//! These statics use `std`'s atomics directly rather than `crate::loom`'s:
//! they must be const-initialised and lock-free to be touched from a signal
//! handler, and loom cannot model a signal handler anyway.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::SeqCst};

use super::number::{NSIG, RUN_CHANNEL};

/// At most this many event loops may listen for signals at the same time.
pub(super) const MAX_LOOPS: usize = 1024;

static GENERATIONS: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
static USERS: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
/// The eventfd of each slot, `-1` until first leased.
static FDS: [AtomicI32; MAX_LOOPS] = [const { AtomicI32::new(-1) }; MAX_LOOPS];
static LEASED: [AtomicBool; MAX_LOOPS] = [const { AtomicBool::new(false) }; MAX_LOOPS];
/// Slots `0..CREATED` may have an eventfd (bounds the handler's scan).
static CREATED: AtomicUsize = AtomicUsize::new(0);
/// The process that created each slot's eventfd. A child made by `fork`
/// inherits these statics and the eventfds themselves (the same kernel
/// objects as its parent's): it must not read them, or it would take
/// deliveries meant for a parent loop (invariant 4).
static CREATOR: [AtomicI32; MAX_LOOPS] = [const { AtomicI32::new(0) }; MAX_LOOPS];

/// The `sa_handler` ringloop installs for every signal it listens for.
pub(super) extern "C" fn on_signal(signum: libc::c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot,
    // valid for the thread's life; reading and writing it back is what
    // every async-signal-safe handler must do around syscalls.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(generation) = usize::try_from(signum)
        .ok()
        .and_then(|s| GENERATIONS.get(s))
    {
        generation.fetch_add(1, SeqCst);
        if signum == libc::SIGINT && USERS[libc::SIGINT as usize].load(SeqCst) == 0 {
            GENERATIONS[RUN_CHANNEL].fetch_add(1, SeqCst);
        }
    }
    let one: u64 = 1;
    let created = CREATED.load(SeqCst).min(MAX_LOOPS);
    for i in 0..created {
        let fd = FDS[i].load(SeqCst);
        if fd >= 0 && LEASED[i].load(SeqCst) {
            // SAFETY: `fd` is an eventfd that is never closed (invariant 2);
            // the pointer and length describe `one`, a live 8-byte value.
            // The eventfd is non-blocking: a saturated counter gives EAGAIN,
            // which is fine (its reader is due to wake anyway).
            let _ = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
        }
    }
    // SAFETY: as above; restores the interrupted code's errno.
    unsafe { *libc::__errno_location() = errno };
}

/// How many deliveries of table index `index` (a signal number, or
/// [`RUN_CHANNEL`]) have happened so far (wrapping).
pub(super) fn generation(index: usize) -> usize {
    GENERATIONS[index].load(SeqCst)
}

/// Counts one user listener of `signum` while it lives (invariant 3).
#[derive(Debug)]
pub(super) struct UserGuard(usize);

impl UserGuard {
    pub(super) fn new(index: usize) -> UserGuard {
        USERS[index].fetch_add(1, SeqCst);
        UserGuard(index)
    }
}

impl Drop for UserGuard {
    fn drop(&mut self) {
        USERS[self.0].fetch_sub(1, SeqCst);
    }
}

/// One event loop's eventfd slot, which the handler writes on every signal.
#[derive(Debug)]
pub(super) struct Lease {
    index: usize,
    fd: RawFd,
}

impl Lease {
    /// Leases a free slot, creating its eventfd the first time.
    ///
    /// # Errors
    ///
    /// When [`MAX_LOOPS`] loops already listen for signals, or `eventfd`
    /// fails.
    pub(super) fn new() -> io::Result<Lease> {
        for index in 0..MAX_LOOPS {
            if LEASED[index]
                .compare_exchange(false, true, SeqCst, SeqCst)
                .is_err()
            {
                continue;
            }
            let mut fd = FDS[index].load(SeqCst);
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() };
            if fd < 0 || CREATOR[index].load(SeqCst) != pid {
                match crate::sys::eventfd() {
                    // Never closed (invariant 2): the handler may hold its
                    // number at any time.
                    Ok(owned) => fd = owned.into_raw_fd(),
                    Err(e) => {
                        LEASED[index].store(false, SeqCst);
                        return Err(e);
                    }
                }
                FDS[index].store(fd, SeqCst);
                CREATOR[index].store(pid, SeqCst);
                CREATED.fetch_max(index + 1, SeqCst);
            }
            return Ok(Lease { index, fd });
        }
        Err(io::Error::other(format!(
            "ringloop::signal: {MAX_LOOPS} event loops already listen for signals; no more can"
        )))
    }
}

impl AsRawFd for Lease {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        LEASED[self.index].store(false, SeqCst);
    }
}

/// Runs the handler as if `signum` had been delivered (unit tests).
#[cfg(test)]
pub(super) fn simulate(signum: i32) {
    on_signal(signum);
}
