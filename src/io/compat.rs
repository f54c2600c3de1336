//! [`Compat`]: a ringloop stream as `futures_io::{AsyncRead, AsyncWrite}`.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::io::{AsyncRead, AsyncWrite};

use crate::buf::ReadBuf;
use crate::io::{PollRead, PollWrite};
use crate::net::socket::Socket;

type Pending = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;

/// The most a write hands to one send.
const WRITE_CHUNK: usize = 64 * 1024;

/// A TCP or Unix stream adapted to `futures_io::AsyncRead` and
/// `AsyncWrite`, so `futures-util` code (`copy`, `BufReader`, codecs) runs on
/// ringloop, at the cost of one copy through an internal buffer each way.
///
/// Writes are accepted into the internal buffer and sent in the background;
/// `poll_flush` waits until they are sent, `poll_close` flushes and shuts
/// the write side down. Make with `TcpStream::into_compat` or
/// `UnixStream::into_compat`.
///
/// # Examples
///
/// ```
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use ringloop::net::UnixStream;
/// ringloop::run(async {
///     let (a, b) = UnixStream::pair()?;
///     let (mut a, mut b) = (a.into_compat(), b.into_compat());
///     a.write_all(b"through futures-io").await?;
///     a.close().await?;
///     let mut s = String::new();
///     b.read_to_string(&mut s).await?;
///     assert_eq!(s, "through futures-io");
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct Compat {
    socket: Socket,
    /// Received bytes not yet handed out, from `rpos`.
    rbuf: Vec<u8>,
    rpos: usize,
    reading: Option<Pending>,
    /// A send in flight; its buffer comes back for reuse.
    writing: Option<Pending>,
    /// Bytes accepted but not yet handed to a send, and a recycled buffer.
    wbuf: Vec<u8>,
    spare: Vec<u8>,
    /// Error of a background send, reported by the next write or flush.
    write_error: Option<io::Error>,
    shutting_down: Option<Pin<Box<dyn Future<Output = io::Result<()>>>>>,
}

impl Compat {
    pub(crate) fn new(socket: Socket) -> Compat {
        Compat {
            socket,
            rbuf: Vec::new(),
            rpos: 0,
            reading: None,
            writing: None,
            wbuf: Vec::new(),
            spare: Vec::new(),
            write_error: None,
            shutting_down: None,
        }
    }

    /// Polls the send in flight; on completion puts any unsent tail back in
    /// front of the buffered bytes.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(f) = self.writing.as_mut() {
            let (res, mut buf) = ready!(f.as_mut().poll(cx));
            self.writing = None;
            match res {
                Ok(n) => {
                    buf.drain(..n);
                    if !buf.is_empty() {
                        buf.extend_from_slice(&self.wbuf);
                        self.wbuf = std::mem::take(&mut buf);
                    }
                }
                Err(e) => {
                    self.write_error = Some(e);
                    self.wbuf.clear();
                }
            }
            buf.clear();
            self.spare = buf;
        }
        Poll::Ready(())
    }

    /// Starts sending the buffered bytes, if any and nothing is in flight.
    fn start_send(&mut self) {
        if self.writing.is_some() || self.wbuf.is_empty() {
            return;
        }
        let mut out = std::mem::take(&mut self.spare);
        let k = self.wbuf.len().min(WRITE_CHUNK);
        out.extend(self.wbuf.drain(..k));
        let socket = self.socket.clone();
        self.writing = Some(Box::pin(async move { socket.send(out).await }));
    }

    fn take_write_error(&mut self) -> io::Result<()> {
        match self.write_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Compat {
    /// Waits until received bytes are buffered, receiving (one owned-buffer
    /// read) when none are; buffered bytes stay empty at end of stream.
    fn poll_buffered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reading.is_some() || self.rpos == self.rbuf.len() {
            let fut = self.reading.get_or_insert_with(|| {
                let socket = self.socket.clone();
                let mut buf = std::mem::take(&mut self.rbuf);
                self.rpos = 0;
                buf.clear();
                buf.reserve(16 * 1024);
                Box::pin(async move { socket.recv(buf).await })
            });
            let (res, buf) = ready!(fut.as_mut().poll(cx));
            self.reading = None;
            self.rbuf = buf;
            self.rpos = 0;
            if let Err(e) = res {
                self.rbuf.clear();
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Compat {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_buffered(cx))?;
        let n = dst.len().min(this.rbuf.len() - this.rpos);
        dst[..n].copy_from_slice(&this.rbuf[this.rpos..this.rpos + n]);
        this.rpos += n;
        Poll::Ready(Ok(n))
    }
}

/// The copying path as [`PollRead`]: an owned-buffer read into the
/// internal buffer, then a copy into the caller's (what
/// [`crate::io::PollIo`] avoids; both can carry hyper, for comparison).
impl PollRead for Compat {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_buffered(cx))?;
        this.rpos += buf.put_slice(&this.rbuf[this.rpos..]);
        Poll::Ready(Ok(()))
    }
}

/// Writes as [`AsyncWrite`] does: copied into the internal buffer and sent
/// in the background; `poll_flush` waits until they are sent.
impl PollWrite for Compat {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_close(self, cx)
    }
}

impl AsyncWrite for Compat {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Back-pressure: accept more only while at most one chunk waits.
        while this.wbuf.len() >= WRITE_CHUNK {
            ready!(this.poll_send(cx));
            this.take_write_error()?;
            this.start_send();
        }
        this.take_write_error()?;
        this.wbuf.extend_from_slice(src);
        this.start_send();
        // Get the send going (its result is collected later).
        let _ = this.poll_send(cx);
        this.start_send();
        Poll::Ready(Ok(src.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            ready!(this.poll_send(cx));
            this.take_write_error()?;
            if this.wbuf.is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.start_send();
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(AsyncWrite::poll_flush(self.as_mut(), cx))?;
        let this = &mut *self;
        let fut = this.shutting_down.get_or_insert_with(|| {
            let socket = this.socket.clone();
            Box::pin(async move { socket.shutdown(std::net::Shutdown::Write).await })
        });
        let r = ready!(fut.as_mut().poll(cx));
        this.shutting_down = None;
        Poll::Ready(r)
    }
}

impl fmt::Debug for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat")
            .field("socket", &self.socket)
            .field("read_buffered", &(self.rbuf.len() - self.rpos))
            .field("write_buffered", &self.wbuf.len())
            .finish()
    }
}
