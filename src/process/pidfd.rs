//! [`Pidfd`]: a spawned child's pidfd, how the loop waits for its exit,
//! and how it is reaped when nobody waits any more.
//!
//! # Waiting without blocking the loop
//!
//! The loop never sleeps in `waitpid` and installs no `SIGCHLD` handler.
//! It waits for the exit through the ring, then reaps with a `waitid`
//! that cannot block:
//!
//! 1. `IORING_OP_WAITID` (Linux 6.7) on the pidfd with `WEXITED | WNOWAIT`,
//!    when the kernel has it (probed at loop set-up); otherwise
//!    `IORING_OP_POLL_ADD` on the pidfd, which becomes readable when the
//!    process exits (Linux 5.3).
//! 2. `waitid(P_PIDFD, WEXITED | WNOHANG)` then collects the status and
//!    frees the zombie.
//!
//! `WNOWAIT` in step 1 makes a dropped wait harmless: if its completion
//! raced with the exit, the child is still a zombie and the next wait (or
//! the background reaper) collects it.
//!
//! # Reaping in the background
//!
//! A [`Pidfd`] dropped before its child was reaped reaps it with a detached
//! task on the running loop. If no loop runs on this thread, or the loop
//! shuts down first, a short-lived thread (`ringloop-reaper`) waits on a
//! duplicate of the pidfd instead, so no zombie is left either way.
//!
//! # Caveat: who may reap
//!
//! The pidfd is opened with `pidfd_open(pid)` right after `fork`/`exec`.
//! That is race-free only because nothing else reaps our children: if the
//! process sets `SIGCHLD` to `SIG_IGN` (the kernel then reaps children by
//! itself) or calls `waitpid(-1, ..)` somewhere, the child may be reaped
//! and its pid reused before or after the pidfd is opened. Waits then fail
//! with an error that says so rather than report another process's status.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::rc::Rc;

use crate::driver::Driver;
use crate::driver::op::poll_add::PollAdd;
use crate::driver::op::waitid::WaitId;
use crate::driver::op::{Op, OpCode};
use crate::sys;

/// How the loop learns that a child exited (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitWatch {
    /// `IORING_OP_WAITID` with `WNOWAIT`.
    WaitId,
    /// `IORING_OP_POLL_ADD` on the pidfd.
    Poll,
}

impl ExitWatch {
    /// The best the kernel behind `driver` offers.
    pub(crate) fn best(driver: &Rc<RefCell<Driver>>) -> ExitWatch {
        if driver.borrow().supports(WaitId::<Rc<OwnedFd>>::CODE) {
            ExitWatch::WaitId
        } else {
            ExitWatch::Poll
        }
    }
}

/// A child's pidfd and, once reaped, its exit status.
pub(crate) struct Pidfd {
    pid: u32,
    /// Shared with the ops waiting on it, which keep it open until their CQE.
    fd: Rc<OwnedFd>,
    status: Option<ExitStatus>,
    /// Already the background reaper: if dropped unreaped, go to a thread.
    background: bool,
}

impl Pidfd {
    /// Opens a pidfd for the just-spawned child `pid`.
    pub(crate) fn open(pid: u32) -> io::Result<Pidfd> {
        Ok(Pidfd {
            pid,
            fd: Rc::new(sys::pidfd_open(pid)?),
            status: None,
            background: false,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, if the child has been reaped.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    fn lost(&self, e: io::Error) -> io::Error {
        if e.raw_os_error() == Some(libc::ECHILD) {
            io::Error::new(
                e.kind(),
                format!(
                    "child process {} was reaped by someone else (SIGCHLD set to SIG_IGN, \
                     or a waitpid(-1) elsewhere in the process): its exit status is lost",
                    self.pid
                ),
            )
        } else {
            io::Error::new(
                e.kind(),
                format!("waitid on child process {}: {e}", self.pid),
            )
        }
    }

    /// Reaps the child if it has exited; never blocks.
    ///
    /// # Errors
    ///
    /// `waitid(2)` failures (`ECHILD` if someone else reaped the child).
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let raw = sys::waitid_pidfd(&*self.fd, false).map_err(|e| self.lost(e))?;
        self.status = raw.map(ExitStatus::from_raw);
        Ok(self.status)
    }

    /// Waits through the ring until the child exits, then reaps it.
    ///
    /// Dropping the future cancels the ring op; the child stays unreaped
    /// (its status is not lost).
    ///
    /// # Errors
    ///
    /// `waitid(2)` failures, or the ring's.
    pub(crate) async fn wait(
        &mut self,
        driver: &Rc<RefCell<Driver>>,
        watch: ExitWatch,
    ) -> io::Result<ExitStatus> {
        let mut watch = watch;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            match watch {
                ExitWatch::WaitId => {
                    match Op::submit(driver, WaitId::new(self.fd.clone()))?.await {
                        Ok(_) => {}
                        // A kernel that has the opcode but refuses these
                        // arguments: fall back to polling the pidfd.
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => watch = ExitWatch::Poll,
                        Err(e) => return Err(self.lost(e)),
                    }
                }
                ExitWatch::Poll => {
                    Op::submit(driver, PollAdd::new(self.fd.clone(), libc::POLLIN as u32))?
                        .await
                        .map_err(|e| self.lost(e))?;
                }
            }
        }
    }

    /// Sends `sig` to the child (`pidfd_send_signal(2)`): `Ok` without
    /// sending anything once it has been reaped, or if it already exited.
    pub(crate) fn signal(&self, sig: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        match sys::pidfd_send_signal(&*self.fd, sig) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("signal {sig} to child process {}: {e}", self.pid),
            )),
            Ok(()) => Ok(()),
        }
    }

    /// Hands a still-running child to a thread that waits for it (blocking
    /// is fine there) and reaps it.
    fn reap_on_thread(&self) {
        // A duplicate: the ring may still hold the original until a
        // cancelled op's completion, and an `Rc` cannot cross threads.
        let Ok(fd) = self.fd.try_clone() else { return };
        let _ = std::thread::Builder::new()
            .name("ringloop-reaper".into())
            .spawn(move || {
                let _ = sys::waitid_pidfd(&fd, true);
            });
    }
}

impl Drop for Pidfd {
    fn drop(&mut self) {
        // Exited already (or someone else reaped it): nothing to wait for.
        if !matches!(self.try_wait(), Ok(None)) {
            return;
        }
        let driver = crate::runtime::with_current(|_| ())
            .and_then(|()| crate::runtime::current_driver().ok());
        match driver {
            Some(driver) if !self.background => {
                let mut orphan = Pidfd {
                    pid: self.pid,
                    fd: self.fd.clone(),
                    status: None,
                    background: true,
                };
                let watch = ExitWatch::best(&driver);
                crate::spawn(async move {
                    let _ = orphan.wait(&driver, watch).await;
                })
                .detach();
            }
            _ => self.reap_on_thread(),
        }
    }
}

impl std::fmt::Debug for Pidfd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pidfd")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .finish()
    }
}
