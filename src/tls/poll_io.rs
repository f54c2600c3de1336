//! `futures_io`'s `AsyncRead`, `AsyncBufRead` and `AsyncWrite`, and
//! ringloop's [`PollRead`]/[`PollWrite`] (so hyper's adapter
//! [`HyperIo`](crate::hyper::HyperIo) serves HTTPS), for [`TlsStream`]: the
//! same poll-based core as the owned-buffer calls, so they may be mixed on
//! one stream.
//!
//! Copies: `poll_read` copies plaintext out of rustls into the caller's
//! slice, as the owned-buffer `read` does into its buffer; `poll_fill_buf`
//! lends rustls's own plaintext, with no copy; `poll_write` copies the
//! caller's plaintext into rustls (which encrypts it), as `write` does.
//! `PollRead` copies rustls's plaintext straight into the caller's
//! (possibly uninitialised) buffer; `PollWrite`'s vectored write hands all
//! the slices to rustls at once, so hyper need not flatten them first.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::io::{AsyncBufRead, AsyncRead, AsyncWrite};

use super::{TlsStream, Transport};
use crate::buf::ReadBuf;
use crate::io::{PollRead, PollWrite};

impl<S: Transport> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.poll_readable(cx, false))?;
        Poll::Ready(Ok(this.take_plaintext_into(dst)))
    }
}

impl<S: Transport> AsyncBufRead for TlsStream<S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(this.poll_readable(cx, false))?;
        Poll::Ready(Ok(this.first_chunk()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume(amt);
    }
}

impl<S: Transport> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_plain(cx, src)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_tls(cx)
    }

    /// Sends `close_notify`, flushes, and shuts the transport's write side
    /// down, as [`TlsStream::shutdown`].
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown(cx)
    }
}

impl<S: Transport> PollRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_readable(cx, false))?;
        // Whole chunks, straight from rustls's plaintext into `buf`.
        while buf.remaining() > 0 {
            let n = buf.put_slice(this.first_chunk());
            if n == 0 {
                break;
            }
            this.consume(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: Transport> PollWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_plain(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_plain_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_tls(cx)
    }

    /// Sends `close_notify`, flushes, and shuts the transport's write side
    /// down, as [`TlsStream::shutdown`].
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown(cx)
    }
}
