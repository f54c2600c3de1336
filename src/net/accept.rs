//! [`Acceptor`]: a listener's accept machinery, shared by TCP and Unix.
//!
//! A multishot accept (one SQE, a CQE per connection) stays armed while the
//! listener lives and is re-armed when it ends (an error, such as `EMFILE`,
//! ends it). Kernels without multishot accept (before 5.19: the first CQE
//! is `EINVAL`) fall back to one accept op per call. Connections the kernel
//! accepted after the listener was dropped are closed.
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

    /// Accepts a connection, backing off (1 ms doubling to
    /// [`MAX_EMFILE_BACKOFF`]) while the process is out of fds instead of
    /// spinning.
    pub(crate) async fn accept(&self) -> io::Result<OwnedFd> {
        let mut backoff = Duration::from_millis(1);
        loop {
            let was_multishot = self.multishot.get();
            match self.accept_once().await {
                // The kernel refused multishot accept: go on with single ones.
                Err(_) if was_multishot && !self.multishot.get() => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    crate::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_EMFILE_BACKOFF);
                }
                other => return other,
            }
        }
    }

    async fn accept_once(&self) -> io::Result<OwnedFd> {
        if !self.multishot.get() {
            return Op::submit(self.socket.driver(), Accept::new(self.socket.clone()))?
                .await
                .map(|(fd, _)| fd);
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
                    Poll::Ready(Some(Ok(fd))) => return Poll::Ready(Ok(fd)),
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
