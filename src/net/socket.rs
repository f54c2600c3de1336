//! [`Socket`]: an fd shared by a socket and its in-flight ops.
//!
//! Every op on a socket holds a clone, so the fd stays open until the last
//! op's CQE; when the last clone goes, the fd is closed through the ring.
//! Bytes received by a read whose future was dropped are kept here and
//! returned first by the next read (DESIGN.md decision 4).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::driver::Driver;
use crate::driver::op::Op;
use crate::driver::op::close::{close_detached, close_now};
use crate::driver::op::recv::Recv;
use crate::driver::op::recvmsg::RecvMsg;
use crate::driver::op::send::Send;
use crate::driver::op::sendmsg::SendMsg;
use crate::io::{IoBuf, IoBufMut, copy_into};
use crate::sys::RawAddr;

struct Inner {
    fd: Option<OwnedFd>,
    driver: Rc<RefCell<Driver>>,
    /// Bytes an orphaned read received, served before the next read.
    unread: RefCell<Vec<u8>>,
    /// An orphaned read saw end-of-stream.
    unread_eof: Cell<bool>,
    /// Datagrams an orphaned receive got, served before the next receive.
    datagrams: RefCell<VecDeque<(Vec<u8>, RawAddr)>>,
    /// Reads in the kernel (only orphans can overlap a new read).
    reads_in_flight: Cell<usize>,
    read_waker: Cell<Option<Waker>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // No op can still use the fd: each holds a clone of this.
            close_detached(&self.driver, fd);
        }
    }
}

/// A shared, ring-closed socket fd.
#[derive(Clone)]
pub(crate) struct Socket(Rc<Inner>);

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

/// Counts a read as in flight until dropped.
pub(crate) struct ReadGuard(Socket);

impl ReadGuard {
    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Keeps bytes received after the read's future was dropped.
    pub(crate) fn keep_unread(&self, bytes: &[u8], eof: bool) {
        self.0.0.unread.borrow_mut().extend_from_slice(bytes);
        if eof {
            self.0.0.unread_eof.set(true);
        }
    }
}

impl ReadGuard {
    /// Keeps a datagram received after the receive's future was dropped.
    pub(crate) fn keep_datagram(&self, bytes: Vec<u8>, from: RawAddr) {
        self.0.0.datagrams.borrow_mut().push_back((bytes, from));
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let inner = &self.0.0;
        inner.reads_in_flight.set(inner.reads_in_flight.get() - 1);
        if let Some(w) = inner.read_waker.take() {
            w.wake();
        }
    }
}

impl Socket {
    /// Wraps `fd` for the loop running on this thread.
    ///
    /// # Errors
    ///
    /// When no ringloop loop runs on this thread.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Socket> {
        let driver = crate::runtime::current_driver()?;
        Ok(Socket(Rc::new(Inner {
            fd: Some(fd),
            driver,
            unread: RefCell::new(Vec::new()),
            unread_eof: Cell::new(false),
            datagrams: RefCell::new(VecDeque::new()),
            reads_in_flight: Cell::new(0),
            read_waker: Cell::new(None),
        })))
    }

    pub(crate) fn driver(&self) -> &Rc<RefCell<Driver>> {
        &self.0.driver
    }

    pub(crate) fn read_guard(&self) -> ReadGuard {
        let inner = &self.0;
        inner.reads_in_flight.set(inner.reads_in_flight.get() + 1);
        ReadGuard(self.clone())
    }

    /// Waits until no abandoned read is still in the kernel: it may yet
    /// deliver bytes that come before any a new read would get.
    async fn orphans_landed(&self) {
        let inner = &self.0;
        poll_fn(|cx| {
            if inner.reads_in_flight.get() == 0 {
                Poll::Ready(())
            } else {
                inner.read_waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }

    /// Receives one datagram (and its source): one kept from an abandoned
    /// receive first, then from the kernel. A datagram longer than the
    /// buffer is truncated, as `recvfrom(2)` does.
    pub(crate) async fn recv_from<B: IoBufMut>(
        &self,
        mut buf: B,
    ) -> (io::Result<(usize, RawAddr)>, B) {
        self.orphans_landed().await;
        let kept = self.0.datagrams.borrow_mut().pop_front();
        if let Some((bytes, from)) = kept {
            let n = copy_into(&mut buf, &bytes);
            return (Ok((n, from)), buf);
        }
        match Op::try_submit(&self.0.driver, RecvMsg::new(self, buf)) {
            Ok(op) => op.await,
            Err((e, op)) => (Err(e), op.into_buf()),
        }
    }

    /// Sends one datagram to `to`.
    pub(crate) async fn send_to<B: IoBuf>(&self, buf: B, to: RawAddr) -> (io::Result<usize>, B) {
        match Op::try_submit(&self.0.driver, SendMsg::new(self.clone(), buf, to)) {
            Ok(op) => op.await,
            Err((e, op)) => (Err(e), op.into_buf()),
        }
    }

    /// Receives into `buf`: bytes kept from an abandoned read first, then
    /// from the kernel.
    pub(crate) async fn recv<B: IoBufMut>(&self, mut buf: B) -> (io::Result<usize>, B) {
        self.orphans_landed().await;
        let inner = &self.0;
        {
            let mut unread = inner.unread.borrow_mut();
            if !unread.is_empty() {
                let n = copy_into(&mut buf, &unread);
                unread.drain(..n);
                return (Ok(n), buf);
            }
        }
        if inner.unread_eof.get() {
            return (Ok(0), buf);
        }
        match Op::try_submit(&inner.driver, Recv::new(self, buf)) {
            Ok(op) => op.await,
            Err((e, recv)) => (Err(e), recv.into_buf()),
        }
    }

    /// Receives into several buffers in order (one `recvmsg`).
    pub(crate) async fn recv_vectored<B: IoBufMut>(
        &self,
        mut bufs: Vec<B>,
    ) -> (io::Result<usize>, Vec<B>) {
        use crate::driver::op::vectored::RecvVectored;
        self.orphans_landed().await;
        {
            let mut unread = self.0.unread.borrow_mut();
            if !unread.is_empty() {
                let mut n = 0;
                for b in &mut bufs {
                    let k = copy_into(b, &unread[n..]);
                    n += k;
                    if n == unread.len() {
                        break;
                    }
                }
                unread.drain(..n);
                return (Ok(n), bufs);
            }
        }
        if self.0.unread_eof.get() {
            return (Ok(0), bufs);
        }
        match Op::try_submit(&self.0.driver, RecvVectored::new(self, bufs)) {
            Ok(op) => op.await,
            Err((e, op)) => (Err(e), op.into_bufs()),
        }
    }

    /// Sends several buffers' initialised bytes in order (one `sendmsg`;
    /// may be partial).
    pub(crate) async fn send_vectored<B: IoBuf>(
        &self,
        bufs: Vec<B>,
    ) -> (io::Result<usize>, Vec<B>) {
        use crate::driver::op::vectored::SendVectored;
        match Op::try_submit(&self.0.driver, SendVectored::new(self.clone(), bufs)) {
            Ok(op) => op.await,
            Err((e, op)) => (Err(e), op.into_bufs()),
        }
    }

    /// Closes the socket now if this is its last handle: cancels every op
    /// still in flight on its fd, then closes it through the ring and
    /// returns the close's result. With other handles alive (a split half,
    /// an op in another task), their ops are cancelled and the fd closes
    /// when the last of them goes.
    pub(crate) async fn close(self) -> io::Result<()> {
        use crate::driver::op::cancel::CancelFd;
        let fd = self.as_raw_fd();
        if Rc::strong_count(&self.0) > 1 {
            // ECANCELED-free: ENOENT (nothing to cancel) is fine too.
            let _ = Op::submit(&self.0.driver, CancelFd::new(fd))?.await;
        }
        match Rc::try_unwrap(self.0) {
            Ok(mut inner) => {
                let owned = inner.fd.take().expect("an open socket has its fd");
                let driver = inner.driver.clone();
                drop(inner);
                close_now(&driver, owned).await
            }
            Err(_) => Ok(()),
        }
    }

    /// Sends `buf`'s initialised bytes (one `send`; may be partial).
    pub(crate) async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        match Op::try_submit(&self.0.driver, Send::new(self.clone(), buf)) {
            Ok(op) => op.await,
            Err((e, send)) => (Err(e), send.into_buf()),
        }
    }

    /// Sends all of `buf`'s initialised bytes.
    pub(crate) async fn send_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        let mut slice = buf.slice(..);
        let mut sent = 0;
        while sent < total {
            let (res, s) = self.send(slice).await;
            let buf = s.into_inner();
            match res {
                Ok(0) => {
                    return (
                        Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "send wrote 0 bytes",
                        )),
                        buf,
                    );
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
            slice = buf.slice(sent..);
        }
        (Ok(()), slice.into_inner())
    }

    /// Fills all of `buf`'s storage (`bytes_total()`), or fails with
    /// `UnexpectedEof` (the buffer keeps what arrived).
    pub(crate) async fn recv_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        let total = buf.bytes_total();
        let mut got = 0;
        let mut slice = buf.slice(..);
        while got < total {
            let (res, s) = self.recv(slice).await;
            let buf = s.into_inner();
            match res {
                Ok(0) => {
                    return (
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("stream ended after {got} of {total} bytes"),
                        )),
                        buf,
                    );
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
            slice = buf.slice(got..);
        }
        (Ok(()), slice.into_inner())
    }

    pub(crate) async fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        use crate::driver::op::shutdown::Shutdown;
        Op::submit(&self.0.driver, Shutdown::new(self.clone(), how))?.await
    }
}
