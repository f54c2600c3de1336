//! [`PollRead`] and [`PollWrite`]: poll-based I/O on borrowed buffers, the
//! shape ecosystem traits (hyper's `rt::Read`/`rt::Write`, `futures_io`)
//! want. [`crate::io::PollIo`] implements them for TCP and Unix streams
//! with no copy; a TLS stream implements them over its plaintext buffers,
//! and adapters such as `ringloop::hyper::HyperIo` take any of them.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::buf::ReadBuf;

/// Reads into a borrowed buffer when the source is ready (readiness I/O,
/// as tokio's `AsyncRead`).
///
/// `poll_read` puts what it read at the end of `buf`'s filled part;
/// `Ready(Ok(()))` with nothing added (and room in `buf`) is end of stream.
/// `Pending` means the task will be woken when it is worth calling again.
pub trait PollRead {
    /// Reads some bytes into `buf`.
    ///
    /// # Errors
    ///
    /// The source's I/O errors (a reset connection, ...).
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>>;
}

/// Writes from borrowed buffers when the sink is ready (readiness I/O, as
/// tokio's `AsyncWrite`).
pub trait PollWrite {
    /// Writes some of `buf`; `Ready(Ok(n))` with `n <= buf.len()`.
    ///
    /// # Errors
    ///
    /// The sink's I/O errors (`BrokenPipe` once the peer is gone, ...).
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>>;

    /// Writes some of `bufs`, in order, in one call where the sink can
    /// (see [`PollWrite::is_write_vectored`]); by default, the first
    /// non-empty one.
    ///
    /// # Errors
    ///
    /// As for [`PollWrite::poll_write`].
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let buf = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        self.poll_write(cx, buf)
    }

    /// Whether [`PollWrite::poll_write_vectored`] writes several buffers
    /// at once (so callers need not flatten them first).
    fn is_write_vectored(&self) -> bool {
        false
    }

    /// Sends whatever the sink buffers.
    ///
    /// # Errors
    ///
    /// As for [`PollWrite::poll_write`].
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Flushes, then shuts the write side down (a TCP FIN).
    ///
    /// # Errors
    ///
    /// As for [`PollWrite::poll_write`]; `shutdown(2)` errors.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// `PollRead`/`PollWrite` through a pointer to one (`&mut T`, `Box<T>`),
/// so `Box<dyn PollRead + PollWrite + Unpin>`-style streams work.
macro_rules! forward_poll_io {
    ($($ptr:ty),*) => {$(
        impl<T: PollRead + Unpin + ?Sized> PollRead for $ptr {
            fn poll_read(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut **self).poll_read(cx, buf)
            }
        }

        impl<T: PollWrite + Unpin + ?Sized> PollWrite for $ptr {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut **self).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut **self).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                (**self).is_write_vectored()
            }

            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut **self).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut **self).poll_shutdown(cx)
            }
        }
    )*};
}

forward_poll_io!(&mut T, Box<T>);
