//! [`Socket`]: an fd shared by a socket and its in-flight ops.
//!
//! Every op on a socket holds a clone, so the fd stays open until the last
//! op's CQE; when the last clone goes, the fd is closed through the ring.
//! Bytes received by a read whose future was dropped are kept here and
//! returned first by the next read: cancelling a read loses no data.
//!
//! A socket can also come in from outside ([`Socket::adopt`]) and leave
//! without being closed ([`Socket::into_fd`]); `super::handoff` says when.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use crate::buf::kept::{KeepsReads, Kept};
use crate::buf::{IoBuf, IoBufMut, copy_into};
use crate::driver::Driver;
use crate::driver::op::Op;
use crate::driver::op::close::{close_detached, close_now};
use crate::driver::op::kept_read::{KeptRead, StreamFd};
use crate::driver::op::recvmsg::{KeepsDatagrams, RecvMsg};
use crate::driver::op::send::Send;
use crate::driver::op::sendmsg::SendMsg;
use crate::net::handoff::Kind;
use crate::sys::{self, RawAddr};

struct Inner {
    fd: Option<OwnedFd>,
    driver: Rc<RefCell<Driver>>,
    /// What abandoned reads received (and how many are in flight).
    kept: Kept,
    /// `O_NONBLOCK` as it was when ringloop got the fd, restored when the
    /// fd is handed off (false for sockets ringloop made).
    nonblocking: bool,
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

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0
            .fd
            .as_ref()
            .expect("a socket's fd is open while a handle exists")
            .as_fd()
    }
}

impl KeepsReads for Socket {
    fn kept(&self) -> &Kept {
        &self.0.kept
    }
}

impl StreamFd for Socket {
    const CODE: u8 = opcode::Recv::CODE;
    const NAME: &'static str = "IORING_OP_RECV";

    fn read_sqe(fd: RawFd, ptr: *mut u8, len: u32) -> squeue::Entry {
        opcode::Recv::new(types::Fd(fd), ptr, len).build()
    }
}

impl KeepsDatagrams for Socket {
    fn keep_datagram(&self, bytes: Vec<u8>, from: RawAddr) {
        self.0.kept.push_datagram(bytes, from);
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
        Ok(Socket::with(fd, driver, false))
    }

    fn with(fd: OwnedFd, driver: Rc<RefCell<Driver>>, nonblocking: bool) -> Socket {
        Socket(Rc::new(Inner {
            fd: Some(fd),
            driver,
            kept: Kept::default(),
            nonblocking,
        }))
    }

    /// Wraps a socket handed in from outside (`from_std`) for the loop
    /// running on this thread, once it is checked to be `kind`. What the
    /// driver still knew of an older fd with this number is dropped: that
    /// fd is gone (the number was free for this one), closed behind the
    /// driver's back.
    ///
    /// # Errors
    ///
    /// No running loop; `fd` not a socket of `kind` (`InvalidInput`).
    pub(crate) fn adopt(fd: OwnedFd, kind: &Kind) -> io::Result<Socket> {
        let driver = crate::runtime::current_driver()?;
        kind.check(&fd)?;
        let nonblocking = sys::nonblocking(&fd)?;
        driver.borrow_mut().forget_fd(fd.as_raw_fd());
        Ok(Socket::with(fd, driver, nonblocking))
    }

    /// Why the fd cannot be handed off now, if it cannot (`what` names the
    /// caller, for the message): an op still in flight on it
    /// (`WouldBlock`), or data a dropped read received that only ringloop
    /// holds (`ResourceBusy`).
    pub(crate) fn handoff_blocker(&self, what: &str) -> Option<io::Error> {
        let fd = self.as_raw_fd();
        let kept = &self.0.kept;
        let busy = |msg: String| Some(io::Error::new(io::ErrorKind::ResourceBusy, msg));
        if kept.reads_in_flight() > 0 {
            return Some(in_flight(what, fd, "a read whose future was dropped"));
        }
        // Every op on the socket holds a clone until its completion.
        if Rc::strong_count(&self.0) > 1 || Rc::weak_count(&self.0) > 0 {
            return Some(in_flight(what, fd, "an operation whose future was dropped"));
        }
        if kept.len() > 0 {
            return busy(format!(
                "{what}: fd {fd}: {} bytes a dropped read received are kept for the \
                 next read, which the std socket would never see; read them first",
                kept.len()
            ));
        }
        let datagrams = kept.datagrams();
        if datagrams > 0 {
            return busy(format!(
                "{what}: fd {fd}: {datagrams} datagram(s) a dropped receive got are kept \
                 for the next receive, which the std socket would never see; receive them first"
            ));
        }
        if let Some(e) = kept.pending_error() {
            return busy(format!(
                "{what}: fd {fd}: the error a dropped read got ({e}) is kept for the \
                 next read, which the std socket would never see; read it first"
            ));
        }
        None
    }

    /// Gives the fd up without closing it (`into_std`): when
    /// [`Socket::handoff_blocker`] finds nothing, `O_NONBLOCK` goes back to
    /// what it was when ringloop got the fd, and the driver forgets the fd.
    /// Otherwise the socket comes back with the reason.
    pub(crate) fn into_fd(self, what: &str) -> Result<OwnedFd, (io::Error, Socket)> {
        if let Some(e) = self.handoff_blocker(what) {
            return Err((e, self));
        }
        let mut inner = match Rc::try_unwrap(self.0) {
            Ok(inner) => inner,
            Err(rc) => {
                let fd = rc.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
                let e = in_flight(what, fd, "an operation");
                return Err((e, Socket(rc)));
            }
        };
        let fd = inner.fd.as_ref().expect("an open socket has its fd");
        if let Err(e) = sys::set_nonblocking(fd, inner.nonblocking) {
            let e = io::Error::new(e.kind(), format!("{what}: restoring O_NONBLOCK: {e}"));
            return Err((e, Socket(Rc::new(inner))));
        }
        let fd = inner.fd.take().expect("an open socket has its fd");
        // No op uses the fd (none holds a clone): it leaves the driver here,
        // and the epoll backend must not keep its registration for the
        // next fd with this number.
        inner.driver.borrow_mut().forget_fd(fd.as_raw_fd());
        Ok(fd)
    }

    pub(crate) fn driver(&self) -> &Rc<RefCell<Driver>> {
        &self.0.driver
    }

    /// Receives one datagram (and its source): one kept from an abandoned
    /// receive first, then from the kernel. A datagram longer than the
    /// buffer is truncated, as `recvfrom(2)` does.
    pub(crate) async fn recv_from<B: IoBufMut>(
        &self,
        mut buf: B,
    ) -> (io::Result<(usize, RawAddr)>, B) {
        self.0.kept.landed().await;
        let kept = self.0.kept.pop_datagram();
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
        self.0.kept.landed().await;
        if let Some(res) = self.0.kept.serve(&mut buf) {
            return (res, buf);
        }
        match Op::try_submit(&self.0.driver, KeptRead::new(self, buf)) {
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
        self.0.kept.landed().await;
        if let Some(res) = self.0.kept.serve_vectored(&mut bufs) {
            return (res, bufs);
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
    ///
    /// Cancel-safe: if the future is dropped, the bytes it already received
    /// go back to the socket, in front, for the next read (an in-flight
    /// read's orphan keeps them with its own; between reads, [`Held`] does).
    pub(crate) async fn recv_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        let total = buf.bytes_total();
        let kept = &self.0.kept;
        let mut held = Held {
            kept,
            buf: Some(buf),
            got: 0,
        };
        loop {
            kept.landed().await;
            let got = held.got;
            let mut buf = held.buf.take().expect("held between reads");
            if got == total {
                return (Ok(()), buf);
            }
            // Bytes kept from an abandoned read first.
            let mut rest = buf.slice(got..);
            let served = kept.serve(&mut rest);
            buf = rest.into_inner();
            let res = match served {
                Some(res) => res,
                None => match Op::try_submit(&self.0.driver, KeptRead::after(self, buf, got)) {
                    Ok(op) => {
                        let (res, b) = op.await;
                        buf = b;
                        res
                    }
                    Err((e, op)) => return (Err(e), op.into_buf()),
                },
            };
            match res {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("stream ended after {got} of {total} bytes"),
                    );
                    return (Err(e), buf);
                }
                Ok(n) => held.got = got + n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
            held.buf = Some(buf);
        }
    }

    pub(crate) async fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        use crate::driver::op::shutdown::Shutdown;
        Op::submit(&self.0.driver, Shutdown::new(self.clone(), how))?.await
    }
}

/// The `WouldBlock` refusal of a hand-off: `op` is still in the kernel.
fn in_flight(what: &str, fd: RawFd, op: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        format!(
            "{what}: fd {fd}: {op} is still in the kernel until its cancellation \
             lands; let the loop run (e.g. ringloop::sleep(1 ms)) and try again"
        ),
    )
}

/// A `recv_exact` buffer between reads: if the future is dropped there, the
/// bytes received so far go back in front of the socket's kept bytes.
struct Held<'a, B: IoBufMut> {
    kept: &'a Kept,
    buf: Option<B>,
    got: usize,
}

impl<B: IoBufMut> Drop for Held<'_, B> {
    fn drop(&mut self) {
        if let Some(buf) = &self.buf
            && self.got > 0
        {
            self.kept.push_front(&buf.as_init_slice()[..self.got]);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every connection has one (issue 16, idle connections): what only
    /// cancellation uses lives in a box made on first use (`buf::kept`).
    #[test]
    fn socket_state_stays_small() {
        assert!(
            std::mem::size_of::<super::Inner>() <= 56,
            "{}",
            std::mem::size_of::<super::Inner>()
        );
        assert!(std::mem::size_of::<crate::buf::kept::Kept>() <= 40);
    }
}
