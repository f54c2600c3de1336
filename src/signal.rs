//! Signals as futures: [`ctrl_c`] and [`recv`], read from a `signalfd`
//! through the ring.
//!
//! While the future lives, the signal is blocked on the calling thread (its
//! default action, such as terminating on `SIGINT`, does not happen) and
//! delivered to the future instead; dropping the future restores the
//! previous signal mask. Block signals before starting other threads if
//! they must not receive it.

use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use crate::driver::op::Op;
use crate::driver::op::read::Read;

struct MaskGuard(libc::sigset_t);

impl Drop for MaskGuard {
    fn drop(&mut self) {
        crate::sys::restore_sigmask(&self.0);
    }
}

/// Waits for `signum` (e.g. `libc::SIGTERM`) to be delivered to this thread.
///
/// # Errors
///
/// An invalid signal number, `signalfd` failures, or no running loop.
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let wait = ringloop::spawn(ringloop::signal::recv(libc::SIGUSR1));
///     ringloop::yield_now().await; // let it block the signal
///     // SAFETY: raise(3) has no memory-safety preconditions.
///     unsafe { libc::raise(libc::SIGUSR1) };
///     wait.await.unwrap().unwrap();
/// })
/// .unwrap();
/// ```
pub async fn recv(signum: i32) -> io::Result<()> {
    let driver = crate::runtime::current_driver()?;
    let (fd, old) = crate::sys::signalfd(signum)?;
    let _restore = MaskGuard(old);
    let fd: Rc<OwnedFd> = Rc::new(fd);
    // One `struct signalfd_siginfo` is 128 bytes.
    let (res, _buf) = Op::submit(&driver, Read::new(fd, Vec::with_capacity(128), u64::MAX))?.await;
    res.map(drop)
}

/// Waits for Ctrl-C (`SIGINT`).
///
/// # Errors
///
/// As for [`recv`].
pub async fn ctrl_c() -> io::Result<()> {
    recv(libc::SIGINT).await
}
