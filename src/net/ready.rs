//! The readiness path of a stream: [`PollIo`], poll-based reads and writes
//! on borrowed buffers with no intermediate copy, on both backends.
//!
//! # How a read goes
//!
//! 1. Reads already in the kernel (an owned `read` in another task, or one
//!    whose future was dropped) land first, and the bytes they kept are
//!    served first ([`Kept::poll_serve_borrowed`]): the stream's order is
//!    the same whichever way it is read.
//! 2. A non-blocking `recv(MSG_DONTWAIT)` straight into the caller's
//!    buffer.
//! 3. On `EAGAIN`, wait for readability, then step 2 again. Reads wait on
//!    a *multishot* `IORING_OP_POLL_ADD` (`POLLIN | POLLRDHUP`), armed at
//!    the first wait and kept for the stream's life: one completion per
//!    readiness edge, nothing re-armed per request (measured faster than a
//!    one-shot poll per wait: `docs/design/hyper.md`). Edges it reported
//!    before the syscall that found the socket drained are discarded, so
//!    the wait is for the next one. Kernels that refuse multishot polls
//!    (before 5.13) get a one-shot poll per wait instead. The epoll backend
//!    carries out the same SQEs with its epoll set.
//!
//! As tokio does, a short read (fewer bytes than there was room for) marks
//! the stream drained, so the next read waits without first making the
//! `recv` that would only say `EAGAIN`. That guess is safe because every
//! byte that arrives after it makes a new edge, except the end of stream:
//! once a poll reports the peer's end (`POLLRDHUP`, `POLLHUP`, `POLLERR`)
//! no further edge comes, so from then on every read makes its `recv`
//! (which answers at once).
//!
//! Writes are the same with `send`/`sendmsg` and a one-shot poll for
//! `POLLOUT` (a multishot one would report every ACK that frees room).
//!
//! # Cancellation
//!
//! A poll owns nothing the kernel writes: only a clone of the socket,
//! which keeps the fd open until its completion. Dropping a [`PollIo`]
//! (or a future over it) with a poll in flight abandons the poll (cancelled
//! through the ring) and loses nothing: no byte has left the kernel until
//! the `recv` that hands it to the caller, in the same call.
//!
//! What the readiness path does not order: a write of an owned buffer
//! whose future was dropped may still be in the kernel (as with every
//! owned write); bytes written through [`PollIo`] after it may go first.

use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::socket::Socket;
use crate::buf::ReadBuf;
use crate::buf::kept::KeepsReads;
use crate::driver::op::poll_add::PollAdd;
use crate::driver::op::poll_multi::PollMulti;
use crate::driver::op::{MultiOp, Op};
use crate::io::{PollRead, PollWrite};
use crate::sys::nowait;

const POLLIN: u32 = libc::POLLIN as u32;
const POLLRDHUP: u32 = libc::POLLRDHUP as u32;
const POLLOUT: u32 = libc::POLLOUT as u32;
/// Readiness that no further edge follows: the peer's end, an error.
const CLOSED: u32 = (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) as u32;

/// Syscalls one call makes at most before it yields (a poll that keeps
/// completing at once while the syscall keeps saying `EAGAIN`).
const MAX_TRIES: usize = 4;

/// One direction's readiness: how it waits (a one-shot poll armed per
/// wait, or a multishot poll armed once and kept), and whether the fd may
/// be ready (the last syscall was not a short or `EAGAIN` one).
struct Waiter {
    poll: Option<Op<PollAdd<Socket>>>,
    multi: Option<MultiOp<PollMulti<Socket>>>,
    /// Wait with a multishot poll (reads: each request re-arms nothing;
    /// turned off when the kernel refuses it).
    multishot: bool,
    maybe_ready: bool,
    /// A poll reported the peer's end (`POLLRDHUP`, `POLLHUP`, `POLLERR`):
    /// no further edge will come, so a short read no longer means drained
    /// (the end of stream is still to be read) and every call makes its
    /// syscall, which answers at once from now on.
    closed: bool,
}

impl Waiter {
    fn new(multishot: bool) -> Waiter {
        Waiter {
            poll: None,
            multi: None,
            multishot,
            maybe_ready: true,
            closed: false,
        }
    }

    /// `Ready(Ok)` when a syscall is worth trying; else arms (or polls) a
    /// `POLL_ADD` for `events`.
    fn poll_ready(
        &mut self,
        socket: &Socket,
        events: u32,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if self.maybe_ready {
            return Poll::Ready(Ok(()));
        }
        if self.multishot {
            match ready!(self.poll_multi(socket, events, cx)) {
                Ok(()) => return Poll::Ready(Ok(())),
                // Refused (Linux before 5.13): one-shot polls from now on.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.multishot = false,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let poll = match &mut self.poll {
            Some(op) => op,
            None => {
                let op = Op::submit(socket.driver(), PollAdd::new(socket.clone(), events))?;
                self.poll.insert(op)
            }
        };
        let res = ready!(Pin::new(poll).poll(cx));
        self.poll = None;
        self.maybe_ready = true;
        if let Ok(revents) = res {
            self.closed |= revents & CLOSED != 0;
        }
        match res {
            // `POLLERR`/`POLLHUP` too: the syscall reports what happened.
            Ok(_) => Poll::Ready(Ok(())),
            // Cancelled (a `close` of another handle): the syscall says
            // what state the socket is in.
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Waits for the multishot poll's next completion (arming it the
    /// first time). `Err(EINVAL)`: the kernel refused it.
    fn poll_multi(
        &mut self,
        socket: &Socket,
        events: u32,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let multi = match &mut self.multi {
            Some(op) => op,
            None => {
                let op = MultiOp::submit(socket.driver(), PollMulti::new(socket.clone(), events))?;
                self.multi.insert(op)
            }
        };
        let item = ready!(multi.poll_next(cx));
        match item {
            Some(Ok(revents)) => self.closed |= revents & CLOSED != 0,
            // Ended (cancelled, or the kernel dropped it): armed anew at
            // the next wait; the syscall says what state the socket is in.
            None => self.multi = None,
            Some(Err(e)) => {
                self.multi = None;
                if e.raw_os_error() == Some(libc::EINVAL) {
                    return Poll::Ready(Err(e));
                }
            }
        }
        self.maybe_ready = true;
        Poll::Ready(Ok(()))
    }

    /// What a syscall that had room for `want` bytes said.
    fn after(&mut self, res: &io::Result<usize>, want: usize) {
        let drained = match res {
            Ok(n) => *n > 0 && *n < want,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        if drained && !self.closed {
            self.maybe_ready = false;
            // Edges the multishot poll reported so far came before this
            // syscall found the socket drained: wait for the next one.
            if let Some(multi) = &mut self.multi {
                multi.discard_queued();
            }
        }
    }
}

/// A TCP or Unix stream doing poll-based I/O on borrowed buffers: reads
/// fill the caller's buffer straight from the socket, writes send from
/// the caller's slices, with no intermediate copy (the readiness path of
/// `docs/design/hyper.md`). Works on the io_uring and the epoll backend.
///
/// Implements [`PollRead`] and [`PollWrite`] (what `ringloop::hyper::HyperIo`
/// adapts to hyper), and `futures_io::{AsyncRead, AsyncWrite}` (a
/// zero-copy alternative to [`crate::io::Compat`]). Make it with
/// `TcpStream::into_poll_io` or `UnixStream::into_poll_io`; reach the
/// stream with [`PollIo::get_ref`].
///
/// Owned-buffer reads and this path can be mixed on one stream (through
/// [`PollIo::get_ref`]) without losing or reordering a byte: a read here
/// waits for owned reads still in the kernel and serves what they kept
/// first. Dropping a `PollIo` (or the future using it) in the middle of a
/// read loses nothing.
///
/// # Examples
///
/// ```
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use ringloop::net::UnixStream;
/// ringloop::run(async {
///     let (a, b) = UnixStream::pair()?;
///     let (mut a, mut b) = (a.into_poll_io(), b.into_poll_io());
///     a.write_all(b"no copy").await?;
///     a.close().await?; // shuts the write side down
///     let mut got = Vec::new();
///     b.read_to_end(&mut got).await?;
///     assert_eq!(got, b"no copy");
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct PollIo<S> {
    stream: S,
    /// The stream's socket (a clone: the same fd and kept bytes).
    socket: Socket,
    read: Waiter,
    write: Waiter,
}

impl<S> PollIo<S> {
    pub(crate) fn from_parts(socket: Socket, stream: S) -> PollIo<S> {
        PollIo {
            stream,
            socket,
            read: Waiter::new(true),
            write: Waiter::new(false),
        }
    }

    /// The stream (for its addresses, options, or owned-buffer I/O).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream back; a readiness wait in flight is cancelled (until
    /// that cancellation completes, at the loop's next turn, the socket
    /// has an operation in flight, which `into_std` refuses).
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads into `buf` (see [`PollRead`]): bytes kept from abandoned
    /// owned reads first, then straight from the socket.
    ///
    /// # Errors
    ///
    /// `recv(2)` errors (`ConnectionReset`, ...); an error an abandoned
    /// owned read got, once, after its bytes.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let kept = self.socket.kept();
        for _ in 0..MAX_TRIES {
            if let Some(res) = ready!(kept.poll_serve_borrowed(cx, buf)) {
                return Poll::Ready(res.map(drop));
            }
            match self.read.poll_ready(&self.socket, POLLIN | POLLRDHUP, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Bytes kept by an owned read that lands meanwhile
                    // may be all there is: wake for them too.
                    kept.watch(cx.waker());
                    return Poll::Pending;
                }
            }
            let want = buf.remaining();
            let res = buf.recv_nowait(self.socket.as_raw_fd());
            self.read.after(&res, want);
            match res {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e) if retry(&e) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Sends from `want` bytes with `send` once the socket may take them.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
        mut send: impl FnMut(RawFd) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        for _ in 0..MAX_TRIES {
            ready!(self.write.poll_ready(&self.socket, POLLOUT, cx))?;
            let res = send(self.fd());
            self.write.after(&res, want);
            match res {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if retry(&e) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes some of `buf` (one `send`).
    ///
    /// # Errors
    ///
    /// `send(2)` errors (`BrokenPipe`, `ConnectionReset`, ...).
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, buf.len(), |fd| nowait::send(fd, buf))
    }

    /// Writes some of `bufs` in order (one `sendmsg`).
    ///
    /// # Errors
    ///
    /// As for [`PollIo::poll_write`].
    pub fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want = bufs
            .iter()
            .map(|b| b.len())
            .fold(0usize, usize::saturating_add);
        self.poll_send(cx, want, |fd| nowait::send_vectored(fd, bufs))
    }

    /// Shuts the write side down (sends FIN); never waits.
    ///
    /// # Errors
    ///
    /// `shutdown(2)` errors (`NotConnected`).
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        nowait::shutdown(self.fd(), std::net::Shutdown::Write)
    }

    /// [`PollIo::shutdown_write`] for the poll traits' shutdown: a
    /// connection the peer already tore down (`ENOTCONN` after its reset)
    /// has nothing left to shut down, which is not a failure of the
    /// shutdown (hyper would report it as the connection's error).
    fn shutdown_gone_ok(&mut self) -> io::Result<()> {
        match self.shutdown_write() {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        }
    }
}

/// `EAGAIN` (wait for readiness) or `EINTR` (try again).
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

// The stream is never pinned through a `PollIo` (only reached by `&`).
impl<S> Unpin for PollIo<S> {}

impl<S> PollRead for PollIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read(cx, buf)
    }
}

impl<S> PollWrite for PollIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here: every write went to the socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().shutdown_gone_ok())
    }
}

impl<S> futures_util::io::AsyncRead for PollIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        ready!(self.get_mut().poll_read(cx, &mut rb))?;
        Poll::Ready(Ok(rb.filled().len()))
    }
}

impl<S> futures_util::io::AsyncWrite for PollIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().shutdown_gone_ok())
    }
}

impl<S: fmt::Debug> fmt::Debug for PollIo<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollIo")
            .field("stream", &self.stream)
            .field("read_armed", &self.read.poll.is_some())
            .field("write_armed", &self.write.poll.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{AsyncReadExt, AsyncWriteExt};

    use crate::net::UnixStream;

    /// The one-shot read poll (what kernels before 5.13 get, refusing the
    /// multishot one): round trips that wait for each edge, and the end of
    /// stream after a short read.
    #[test]
    fn one_shot_read_polls_wait_for_each_edge_and_see_the_end() {
        crate::run(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (mut a, mut b) = (a.into_poll_io(), b.into_poll_io());
            b.read.multishot = false;
            let echo = crate::spawn(async move {
                let mut buf = [0u8; 64];
                loop {
                    let n = b.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    b.write_all(&buf[..n]).await.unwrap();
                }
                assert!(b.read.multi.is_none(), "no multishot poll was armed");
            });
            let mut back = [0u8; 3];
            for i in 0..200u8 {
                a.write_all(&[i, i, i]).await.unwrap();
                a.read_exact(&mut back).await.unwrap();
                assert_eq!(back, [i, i, i]);
            }
            a.close().await.unwrap();
            echo.await.unwrap();
        })
        .unwrap();
    }
}
