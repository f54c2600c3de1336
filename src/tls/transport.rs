//! [`Transport`]: the owned-buffer byte stream TLS records travel on.

use std::future::Future;
use std::io;
use std::net::Shutdown;

use crate::io::{IoBuf, IoBufMut};
use crate::net::{TcpStream, UnixStream};

/// A byte stream with ringloop's owned-buffer reads and writes, which a
/// [`TlsStream`](super::TlsStream) runs over: [`TcpStream`] and
/// [`UnixStream`], or a type of yours with the same contract.
///
/// The TLS layer keeps at most one read and one write in flight on the
/// transport, each in a future it stores and polls to completion: it never
/// drops one of them while the [`TlsStream`](super::TlsStream) lives, so a
/// transport's read or write need not be cancel-safe for TLS to lose
/// nothing (ringloop's streams are anyway). Only when the TLS stream is
/// dropped, or [`into_inner`](super::TlsStream::into_inner) is called, are
/// they dropped unfinished.
///
/// # Examples
///
/// A transport that counts the ciphertext bytes it carries:
///
/// ```
/// use std::cell::Cell;
/// use std::future::Future;
/// use std::io;
/// use ringloop::io::{IoBuf, IoBufMut};
/// use ringloop::net::UnixStream;
/// use ringloop::tls::Transport;
///
/// struct Counted {
///     inner: UnixStream,
///     read: Cell<usize>,
/// }
///
/// impl Transport for Counted {
///     async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
///         let (res, buf) = self.inner.read(buf).await;
///         if let Ok(n) = res {
///             self.read.set(self.read.get() + n);
///         }
///         (res, buf)
///     }
///     fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)> {
///         self.inner.write(buf)
///     }
///     fn shutdown_write(&self) -> impl Future<Output = io::Result<()>> {
///         self.inner.shutdown(std::net::Shutdown::Write)
///     }
/// }
/// ```
pub trait Transport: 'static {
    /// Reads once into `buf`'s storage from its start (up to
    /// `bytes_total()`), as [`TcpStream::read`]; `Ok(0)` at end of stream.
    fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)>;

    /// Writes once from `buf`'s initialised bytes; may write fewer, as
    /// [`TcpStream::write`].
    fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)>;

    /// Shuts the write side down (TCP's FIN), as
    /// [`TcpStream::shutdown`]`(Shutdown::Write)`.
    fn shutdown_write(&self) -> impl Future<Output = io::Result<()>>;
}

/// Implements [`Transport`] by the stream's own methods.
macro_rules! stream_transport {
    ($t:ty) => {
        impl Transport for $t {
            fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)> {
                <$t>::read(self, buf)
            }

            fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)> {
                <$t>::write(self, buf)
            }

            fn shutdown_write(&self) -> impl Future<Output = io::Result<()>> {
                <$t>::shutdown(self, Shutdown::Write)
            }
        }
    };
}

stream_transport!(TcpStream);
stream_transport!(UnixStream);
