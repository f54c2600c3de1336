//! [`SharedFd`]: a file's fd shared by the [`super::File`] and its ops.
//!
//! Every op on a file holds a clone, so the fd stays open until the last
//! op's CQE, even when the op's future was dropped; when the last clone
//! goes, the fd is closed through the ring. [`SharedFd::close`] waits for
//! the clones held by abandoned ops to go, then closes the fd itself and
//! reports the error.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::driver::Driver;
use crate::driver::op::close::{close_detached, close_now};

struct Inner {
    /// `None` only once [`SharedFd::close`] has taken it.
    fd: Option<OwnedFd>,
    driver: Rc<RefCell<Driver>>,
    /// The task waiting in [`SharedFd::close`] for the other clones to go.
    closer: Cell<Option<Waker>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        // No op can still use the fd: each holds a clone of this.
        close_detached(&self.driver, fd);
    }
}

/// A shared, ring-closed file fd.
#[derive(Clone)]
pub(crate) struct SharedFd(Rc<Inner>);

impl SharedFd {
    pub(crate) fn new(fd: OwnedFd, driver: Rc<RefCell<Driver>>) -> SharedFd {
        SharedFd(Rc::new(Inner {
            fd: Some(fd),
            driver,
            closer: Cell::new(None),
        }))
    }

    pub(crate) fn driver(&self) -> &Rc<RefCell<Driver>> {
        &self.0.driver
    }

    /// Closes the fd through the ring once no abandoned op uses it any more.
    ///
    /// # Errors
    ///
    /// What `close(2)` reports (for example a deferred write error on NFS).
    pub(crate) async fn close(mut self) -> io::Result<()> {
        poll_fn(|cx| {
            if Rc::strong_count(&self.0) == 1 {
                Poll::Ready(())
            } else {
                self.0.closer.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        let inner = Rc::get_mut(&mut self.0).expect("no other clone is left");
        let fd = inner.fd.take().expect("the fd is taken only here");
        let driver = inner.driver.clone();
        close_now(&driver, fd).await
    }
}

impl Drop for SharedFd {
    fn drop(&mut self) {
        // An op let go of its clone: a `close` waiting for that may go on.
        if let Some(w) = self.0.closer.take() {
            w.wake();
        }
    }
}

impl AsRawFd for SharedFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}
