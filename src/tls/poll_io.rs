//! `futures_io`'s `AsyncRead`, `AsyncBufRead` and `AsyncWrite` for
//! [`TlsStream`]: the same poll-based core as the owned-buffer calls, so
//! the two may be mixed on one stream.
//!
//! Copies: `poll_read` copies plaintext out of rustls into the caller's
//! slice, as the owned-buffer `read` does into its buffer; `poll_fill_buf`
//! lends rustls's own plaintext, with no copy; `poll_write` copies the
//! caller's plaintext into rustls (which encrypts it), as `write` does.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::io::{AsyncBufRead, AsyncRead, AsyncWrite};

use super::{TlsStream, Transport};

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
