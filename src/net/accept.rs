//! [`Acceptor`]: a listener's accept machinery, shared by TCP and Unix.
//!
//! A multishot accept (one SQE, a CQE per connection) stays armed while the
//! listener lives and is re-armed when it ends (an error, such as `EMFILE`,
//! ends it). Kernels without multishot accept (before 5.19: the first CQE
//! is `EINVAL`) fall back to one accept op per call. Connections the kernel
//! accepted after the listener was dropped are closed.
//!
//! One connection's failure never fails the listener: connections that died
//! in the backlog (reset, aborted, refused by a firewall: the per-connection
//! errors of accept(2)) are skipped, and running out of fds or kernel
//! memory backs off and retries. Only errors of the listener itself (a
//! closed or non-listening socket) are returned.
//!
//! Several tasks may accept on one listener: the driver remembers only the
//! last poller's waker, so whoever takes a connection wakes the other
//! waiters (and so does an accept future that is dropped), and one of them
//! registers again.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::task::{Poll, Waker};
use std::time::Duration;

use super::socket::Socket;
use crate::driver::op::accept::{Accept, AcceptMulti};
use crate::driver::op::{MultiOp, Op};
use crate::sys::RawAddr;

/// The longest wait between accept retries while out of fds: how late, at
/// worst, accepting resumes after an fd is freed. A retry costs one SQE and
/// one CQE, so at this cap a starved listener uses well under 1 % of a CPU
/// (`stress_accept_starved_by_rlimit` measures both; a 100 ms cap resumed
/// up to 93 ms late there).
const MAX_EMFILE_BACKOFF: Duration = Duration::from_millis(20);

pub(crate) struct Acceptor {
    pub(crate) socket: Socket,
    multi: RefCell<Option<MultiOp<AcceptMulti<Socket>>>>,
    /// Cleared when the kernel refuses multishot accept.
    multishot: Cell<bool>,
    /// Tasks waiting in `accept` (the driver wakes only the last).
    waiters: RefCell<Vec<Waker>>,
}

/// Wakes every waiting acceptor when dropped, so the driver's single
/// waker is handed on whether an accept completes or is abandoned.
struct PassOn<'a>(&'a Acceptor);

impl Drop for PassOn<'_> {
    fn drop(&mut self) {
        let waiters = std::mem::take(&mut *self.0.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }
}

impl Acceptor {
    pub(crate) fn new(socket: Socket) -> Acceptor {
        Acceptor {
            socket,
            multi: RefCell::new(None),
            multishot: Cell::new(true),
            waiters: RefCell::new(Vec::new()),
        }
    }

    /// Uses one single-shot accept per call, as on a kernel without
    /// multishot accept.
    #[cfg(test)]
    pub(crate) fn force_single_shot(&self) {
        self.multishot.set(false);
        self.multi.borrow_mut().take();
    }

    /// Accepts a connection: its fd, and the peer's address when the
    /// accept itself reported it (single-shot accept; multishot accept
    /// reports none). Skips connections that failed in the backlog and
    /// backs off (1 ms doubling to [`MAX_EMFILE_BACKOFF`]) while the
    /// process is out of fds or memory instead of spinning.
    pub(crate) async fn accept(&self) -> io::Result<(OwnedFd, Option<RawAddr>)> {
        let mut backoff = Duration::from_millis(1);
        loop {
            let was_multishot = self.multishot.get();
            match self.accept_once().await {
                // The kernel refused multishot accept: go on with single ones.
                Err(_) if was_multishot && !self.multishot.get() => {}
                Err(e) => match classify(&e) {
                    AcceptError::Connection => {}
                    AcceptError::Resources => {
                        crate::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_EMFILE_BACKOFF);
                    }
                    AcceptError::Listener => return Err(e),
                },
                Ok(accepted) => return Ok(accepted),
            }
        }
    }

    async fn accept_once(&self) -> io::Result<(OwnedFd, Option<RawAddr>)> {
        if !self.multishot.get() {
            return Op::submit(self.socket.driver(), Accept::new(self.socket.clone()))?
                .await
                .map(|(fd, addr)| (fd, Some(addr)));
        }
        let _pass_on = PassOn(self);
        poll_fn(|cx| {
            let mut multi = self.multi.borrow_mut();
            loop {
                if multi.is_none() {
                    match MultiOp::submit(
                        self.socket.driver(),
                        AcceptMulti::new(self.socket.clone()),
                    ) {
                        Ok(op) => *multi = Some(op),
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                let op = multi.as_mut().expect("armed above");
                match op.poll_next(cx) {
                    Poll::Ready(Some(Ok(fd))) => return Poll::Ready(Ok((fd, None))),
                    Poll::Ready(Some(Err(e))) => {
                        if e.raw_os_error() == Some(libc::EINVAL) {
                            // No multishot accept here: one op per accept.
                            self.multishot.set(false);
                            *multi = None;
                            return Poll::Ready(Err(e));
                        }
                        // The error ended the multishot op; it is re-armed
                        // on the next call (after the caller's back-off).
                        return Poll::Ready(Err(e));
                    }
                    // Ended: re-arm.
                    Poll::Ready(None) => *multi = None,
                    Poll::Pending => {
                        let mut waiters = self.waiters.borrow_mut();
                        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                            waiters.push(cx.waker().clone());
                        }
                        return Poll::Pending;
                    }
                }
            }
        })
        .await
    }
}

/// What an accept error means for the listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AcceptError {
    /// One pending connection failed (accept(2): "Linux accept() passes
    /// already-pending network errors on the new socket as an error code
    /// from accept()"; `EPERM` is a firewall rule refusing it): skip it.
    Connection,
    /// The process or the system is out of fds or memory: retry later.
    Resources,
    /// The listener itself is unusable: report it.
    Listener,
}

fn classify(e: &io::Error) -> AcceptError {
    match e.raw_os_error() {
        Some(
            libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::EPERM
            | libc::EPROTO
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::ENETDOWN
            | libc::ETIMEDOUT
            | libc::EINTR
            | libc::EAGAIN,
        ) => AcceptError::Connection,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptError::Resources,
        _ => AcceptError::Listener,
    }
}

#[cfg(test)]
mod tests {
    use super::{AcceptError, classify};
    use std::io;

    #[test]
    fn per_connection_errors_are_skipped_and_listener_errors_reported() {
        let kind = |errno| classify(&io::Error::from_raw_os_error(errno));
        for errno in [
            libc::ECONNABORTED,
            libc::EPERM,
            libc::EPROTO,
            libc::ENETUNREACH,
        ] {
            assert_eq!(kind(errno), AcceptError::Connection, "errno {errno}");
        }
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(kind(errno), AcceptError::Resources, "errno {errno}");
        }
        for errno in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK] {
            assert_eq!(kind(errno), AcceptError::Listener, "errno {errno}");
        }
    }
}
