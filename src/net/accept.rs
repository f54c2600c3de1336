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
//!
//! Handing the listener off (`into_std`) must not leave the multishot
//! accept armed: it would go on accepting on the listener's file. The first
//! attempt cancels it (by fd, keeping the op), and the connections it
//! accepted before the cancellation landed are kept for `accept()` rather
//! than closed: a hand-off loses no connection.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::socket::Socket;
use crate::driver::op::accept::{Accept, AcceptMulti};
use crate::driver::op::cancel::CancelFd;
use crate::driver::op::{MultiOp, Op, OpCode, submit_detached};
use crate::sys::RawAddr;

/// The longest wait between accept retries while out of fds: how late, at
/// worst, accepting resumes after an fd is freed. A retry costs one SQE and
/// one CQE, so at this cap a starved listener uses well under 1 % of a CPU
/// (`stress_accept_starved_by_rlimit` measures both; a 100 ms cap resumed
/// up to 93 ms late there).
const MAX_EMFILE_BACKOFF: Duration = Duration::from_millis(20);

/// The `tracing` event (feature `tracing`) of one back-off: WARN when a
/// series starts (the first, 1 ms wait), DEBUG for each further retry, so a
/// starved listener logs one warning, not fifty a second.
fn trace_backoff(fd: std::os::fd::RawFd, e: &io::Error, wait: Duration) {
    let wait_ms = wait.as_millis() as u64;
    let error = crate::trace::display(e);
    if wait == Duration::from_millis(1) {
        crate::trace::event!(
            target: "ringloop::net",
            WARN,
            "accept is out of fds or memory; backing off",
            fd = fd,
            error = error,
            wait_ms = wait_ms,
        );
    } else {
        crate::trace::event!(
            target: "ringloop::net",
            DEBUG,
            "accept still out of fds or memory; backing off",
            fd = fd,
            error = error,
            wait_ms = wait_ms,
        );
    }
}

pub(crate) struct Acceptor {
    pub(crate) socket: Socket,
    multi: RefCell<Option<MultiOp<AcceptMulti<Socket>>>>,
    /// Cleared when the kernel refuses multishot accept.
    multishot: Cell<bool>,
    /// Tasks waiting in `accept` (the driver wakes only the last).
    waiters: RefCell<Vec<Waker>>,
    /// Connections the multishot accept took while a hand-off was
    /// cancelling it: `accept()` returns them first.
    handed: RefCell<VecDeque<OwnedFd>>,
    /// A hand-off asked the kernel to cancel the armed multishot accept
    /// (its `-ECANCELED` end is then not an error of the listener).
    cancelling: Cell<bool>,
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
            handed: RefCell::new(VecDeque::new()),
            cancelling: Cell::new(false),
        }
    }

    /// Readies the listener for `into_std` (`what` names it in errors):
    /// the multishot accept must have ended and every connection it took
    /// must have been returned by `accept()`.
    ///
    /// An armed multishot accept is cancelled here (by fd, so its stream is
    /// kept and yields what the kernel accepted before the cancellation
    /// landed); the connections already queued are moved to `handed`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` while the multishot accept (or another op) is still in
    /// the kernel; `ResourceBusy` while `handed` holds connections.
    pub(crate) fn prepare_handoff(&self, what: &str) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        let mut multi = self.multi.borrow_mut();
        if let Some(op) = multi.as_mut() {
            // No task waits in `accept` (the hand-off owns the listener), so
            // no waker is lost by polling with none.
            let mut cx = Context::from_waker(Waker::noop());
            loop {
                match op.poll_next(&mut cx) {
                    Poll::Ready(Some(Ok(conn))) => self.handed.borrow_mut().push_back(conn),
                    // The cancellation's `-ECANCELED` (or an error that
                    // ended the op anyway): the end follows.
                    Poll::Ready(Some(Err(_))) => {}
                    Poll::Ready(None) => {
                        *multi = None;
                        self.cancelling.set(false);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        if multi.is_some() {
            if !self.cancelling.get() {
                let driver = self.socket.driver();
                if !driver.borrow().supports(CancelFd::CODE) {
                    // Unreachable in practice: multishot accept (5.19)
                    // comes with cancel-by-fd (5.19). Dropping the op
                    // cancels it; what it accepts meanwhile is closed.
                    *multi = None;
                } else {
                    submit_detached(driver, CancelFd::new(fd));
                    self.cancelling.set(true);
                }
            }
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{what}: fd {fd}: the listener's multishot accept (armed by accept()) \
                     is being cancelled; let the loop run (e.g. ringloop::sleep(1 ms)) and \
                     try again"
                ),
            ));
        }
        let handed = self.handed.borrow().len();
        if handed > 0 {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "{what}: fd {fd}: {handed} connection(s) the listener accepted before \
                     the hand-off are waiting; accept() them, then try again"
                ),
            ));
        }
        match self.socket.handoff_blocker(what) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The listener's socket, once [`Acceptor::prepare_handoff`] succeeded.
    pub(crate) fn into_socket(self) -> Socket {
        debug_assert!(self.multi.borrow().is_none() && self.handed.borrow().is_empty());
        self.socket
    }

    /// Uses one single-shot accept per call, as on a kernel without
    /// multishot accept. A listener shared by several loops uses it so
    /// that a loop waits for a connection only while it asks for one
    /// (`net::distribute`'s shared mode).
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
        if let Some(conn) = self.handed.borrow_mut().pop_front() {
            return Ok((conn, None));
        }
        let mut backoff = Duration::from_millis(1);
        loop {
            let was_multishot = self.multishot.get();
            match self.accept_once().await {
                // The kernel refused multishot accept: go on with single ones.
                Err(_) if was_multishot && !self.multishot.get() => {}
                Err(e) => match classify(&e) {
                    AcceptError::Connection => {}
                    AcceptError::Resources => {
                        trace_backoff(self.socket.as_raw_fd(), &e, backoff);
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
                    // A hand-off's cancellation landed (the caller kept the
                    // listener after all): the op ends; re-arm.
                    Poll::Ready(Some(Err(e)))
                        if self.cancelling.get() && e.raw_os_error() == Some(libc::ECANCELED) => {}
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
                    Poll::Ready(None) => {
                        *multi = None;
                        self.cancelling.set(false);
                    }
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
