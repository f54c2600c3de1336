//! [`HyperIo`]: a ringloop stream as `hyper::rt::Read + hyper::rt::Write`.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::buf::ReadBuf;
use crate::io::{PollIo, PollRead, PollWrite};
use crate::net::{TcpStream, UnixStream};

/// A stream adapted to hyper's I/O traits.
///
/// `HyperIo<T>` implements `hyper::rt::Read` and `hyper::rt::Write` for any
/// `T: PollRead + PollWrite + Unpin`: a [`PollIo`] over a `TcpStream` or a
/// `UnixStream` (`HyperIo::from(stream)` makes one), or a TLS stream. Reads
/// fill hyper's buffer in place; writes are vectored (`sendmsg`) when `T`
/// says it can. The other way round, it implements ringloop's
/// [`PollRead`]/[`PollWrite`] for a `T` that is hyper's `Read + Write`
/// (a connection hyper hands back from an upgrade).
///
/// # Examples
///
/// ```
/// use ringloop::hyper::HyperIo;
/// use ringloop::net::UnixStream;
/// ringloop::run(async {
///     let (a, _b) = UnixStream::pair().unwrap();
///     let io = HyperIo::from(a); // ready for hyper's serve_connection
///     assert!(hyper::rt::Write::is_write_vectored(&io));
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct HyperIo<T> {
    inner: T,
}

impl<T> HyperIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> HyperIo<T> {
        HyperIo { inner }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The wrapped stream back.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl From<TcpStream> for HyperIo<PollIo<TcpStream>> {
    fn from(stream: TcpStream) -> Self {
        HyperIo::new(stream.into_poll_io())
    }
}

impl From<UnixStream> for HyperIo<PollIo<UnixStream>> {
    fn from(stream: UnixStream) -> Self {
        HyperIo::new(stream.into_poll_io())
    }
}

#[cfg(feature = "tls")]
impl<S: crate::tls::Transport> From<crate::tls::TlsStream<S>>
    for HyperIo<crate::tls::TlsStream<S>>
{
    fn from(stream: crate::tls::TlsStream<S>) -> Self {
        HyperIo::new(stream)
    }
}

impl<T: PollRead + Unpin> ::hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ::hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let n = {
            // SAFETY: the slice goes only into a `ReadBuf`, which never
            // writes an uninitialised byte (`as_mut`'s requirement).
            let mut rb = ReadBuf::uninit(unsafe { buf.as_mut() });
            ready!(Pin::new(&mut self.get_mut().inner).poll_read(cx, &mut rb))?;
            rb.filled().len()
        };
        // SAFETY: the `ReadBuf` filled, so initialised, exactly the first
        // `n` bytes of the cursor's unfilled part.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: PollWrite + Unpin> ::hyper::rt::Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T: ::hyper::rt::Read + Unpin> PollRead for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = {
            // SAFETY: the slice goes only into hyper's `ReadBuf`, which
            // never writes an uninitialised byte either.
            let mut hb = ::hyper::rt::ReadBuf::uninit(unsafe { buf.unfilled_mut() });
            ready!(Pin::new(&mut self.get_mut().inner).poll_read(cx, hb.unfilled()))?;
            hb.filled().len()
        };
        // SAFETY: hyper's `ReadBuf` filled, so initialised, exactly the
        // first `n` bytes of the unfilled part (`n <= remaining()`).
        unsafe { buf.assume_filled(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: ::hyper::rt::Write + Unpin> PollWrite for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
