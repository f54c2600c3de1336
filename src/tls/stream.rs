//! [`TlsStream`]: a rustls session over a [`Transport`], with owned-buffer
//! reads and writes; the poll-based machinery under it is in `super::core`.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rustls::Connection;

use super::Transport;
use super::core::{ReadSide, WriteSide};
use crate::io::{IoBuf, IoBufMut};

/// A TLS session over `S` (a [`TcpStream`](crate::net::TcpStream), a
/// [`UnixStream`](crate::net::UnixStream), or another [`Transport`]),
/// made by [`TlsAcceptor::accept`](super::TlsAcceptor::accept) or
/// [`TlsConnector::connect`](super::TlsConnector::connect).
///
/// Reads and writes take owned buffers and give them back, as the plain
/// streams do: `let (res, buf) = tls.read(buf).await;`. The stream also
/// implements `futures_io`'s `AsyncRead`, `AsyncBufRead` and `AsyncWrite`.
///
/// # Cancellation
///
/// Dropping any of its futures loses nothing and leaves no TLS record half
/// written: ciphertext a transport read received waits in the stream for
/// the next read; records being written go on being written, whole and in
/// order, before anything written later; a [`write`](TlsStream::write)
/// whose future is dropped committed none of its bytes; the bytes a
/// dropped [`read_exact`](TlsStream::read_exact) had received are returned
/// by the next read. See `docs/design/tls.md`.
///
/// Dropping the stream without [`shutdown`](TlsStream::shutdown) closes
/// the connection without `close_notify` (the peer sees an unclean end) and
/// may cut records still being written.
///
/// # Examples
///
/// See [the module documentation](super).
pub struct TlsStream<S> {
    pub(super) io: Rc<S>,
    pub(super) conn: Connection,
    pub(super) rd: ReadSide,
    pub(super) wr: WriteSide,
    /// Plaintext a dropped `read_exact` had taken, served first.
    pub(super) unread: Vec<u8>,
}

impl<S: Transport> TlsStream<S> {
    /// Runs the handshake of `conn` over `io` (within `timeout`, if any).
    pub(super) async fn handshake(
        io: S,
        conn: Connection,
        timeout: Option<Duration>,
    ) -> io::Result<TlsStream<S>> {
        let mut tls = TlsStream::new(io, conn);
        let hs = poll_fn(|cx| tls.poll_handshake(cx));
        match timeout {
            None => hs.await?,
            Some(t) => crate::wait_for(hs, Some(t)).await.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TLS handshake failed: not finished within {t:?}"),
                )
            })??,
        }
        Ok(tls)
    }

    // ---- The owned-buffer API ----

    /// Reads plaintext once into `buf`'s storage from its start (up to
    /// `bytes_total()`), as [`TcpStream::read`](crate::net::TcpStream::read);
    /// `Ok(0)` once the peer has closed the session with `close_notify`
    /// (or at once, for a buffer with no room).
    ///
    /// Cancel-safe: dropping the future loses no byte; the transport read
    /// it started goes on and serves the next read.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` when the connection ended without `close_notify`
    /// (a truncation the application must not mistake for the end); a
    /// [`TlsError`](super::TlsError) (`InvalidData`) when a record is
    /// corrupt or the peer sent a fatal alert; transport errors. A failure
    /// is reported again by every later read.
    pub async fn read<B: IoBufMut>(&mut self, buf: B) -> (io::Result<usize>, B) {
        if buf.bytes_total() == 0 {
            return (Ok(0), buf);
        }
        if let Err(e) = poll_fn(|cx| self.poll_readable(cx, true)).await {
            return (Err(e), buf);
        }
        let (n, buf) = self.take_plaintext(buf, 0);
        (Ok(n), buf)
    }

    /// Fills all of `buf`'s storage (`bytes_total()`) with plaintext, or
    /// fails with `UnexpectedEof` (the buffer keeps what arrived).
    ///
    /// Cancel-safe: if the future is dropped, the bytes it had already
    /// received are handed to the next read, in order.
    ///
    /// # Errors
    ///
    /// As for [`TlsStream::read`]; `UnexpectedEof` also when the session
    /// closed cleanly before `buf` was full.
    pub async fn read_exact<B: IoBufMut>(&mut self, buf: B) -> (io::Result<()>, B) {
        let mut held = Held {
            tls: self,
            buf: Some(buf),
            got: 0,
        };
        let res = poll_fn(|cx| held.poll_fill(cx)).await;
        let buf = held.buf.take().expect("held until the end");
        (res, buf)
    }

    /// Writes plaintext from `buf`'s initialised bytes; returns how many
    /// were taken (fewer when rustls's 64 KiB of queued records are full).
    ///
    /// The bytes are encrypted and their records handed to a transport
    /// write before this returns; that write goes on in the stream, and a
    /// failure of it is reported by the next call. [`flush`](Self::flush),
    /// [`write_all`](Self::write_all) and [`shutdown`](Self::shutdown) wait
    /// until every record is written; reads also keep a write going.
    ///
    /// Cancel-safe: a write whose future is dropped committed none of its
    /// bytes (it only waited for room).
    ///
    /// # Errors
    ///
    /// A failed earlier write of records (every later write fails), a
    /// write after [`shutdown`](Self::shutdown) (`BrokenPipe`).
    pub async fn write<B: IoBuf>(&mut self, buf: B) -> (io::Result<usize>, B) {
        let res = poll_fn(|cx| self.poll_write_plain(cx, buf.as_init_slice())).await;
        (res, buf)
    }

    /// Writes all of `buf`'s initialised bytes and waits until their
    /// records are written to the transport.
    ///
    /// If the future is dropped, a prefix of the bytes may have been
    /// committed (and is then sent, in whole records); nothing is sent out
    /// of order.
    ///
    /// # Errors
    ///
    /// As for [`TlsStream::write`]; transport write errors.
    pub async fn write_all<B: IoBuf>(&mut self, buf: B) -> (io::Result<()>, B) {
        let data = buf.as_init_slice();
        let mut sent = 0;
        let res = poll_fn(|cx| {
            while sent < data.len() {
                sent += ready!(self.poll_write_plain(cx, &data[sent..]))?;
            }
            self.poll_flush_tls(cx)
        })
        .await;
        (res, buf)
    }

    /// Waits until every record written so far has been written to the
    /// transport.
    ///
    /// # Errors
    ///
    /// The transport's write error (kept: every later write fails too).
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush_tls(cx)).await
    }

    /// Closes the session's write side: sends `close_notify`, waits until
    /// every record is written, then shuts the transport's write side down
    /// (TCP's FIN). Reads go on working until the peer closes its side.
    /// Calling it again does nothing more.
    ///
    /// # Errors
    ///
    /// Transport write or shutdown errors (e.g. `NotConnected` when the
    /// peer has reset the connection).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_shutdown(cx)).await
    }

    // ---- Accessors ----

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The rustls session: negotiated version and cipher suite, the peer's
    /// certificates, the server name (SNI) a client asked for, exported
    /// keying material.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The application protocol ALPN negotiated (`b"h2"`,
    /// `b"http/1.1"`), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// On a server, the name (SNI) the client asked for, if it sent one.
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(s) => s.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// Gives the transport back, dropping the TLS session: the transport
    /// read or write still in flight, if any, is dropped unfinished (a
    /// read's bytes are then kept by ringloop's stream for its next
    /// read), and ciphertext not yet processed is lost. Call
    /// [`shutdown`](Self::shutdown) first to end the session cleanly.
    pub fn into_inner(self) -> S {
        let TlsStream { io, rd, wr, .. } = self;
        // Every other handle on the transport lives in a job of these.
        drop((rd, wr));
        match Rc::try_unwrap(io) {
            Ok(io) => io,
            Err(_) => unreachable!("only the stream's jobs hold the transport"),
        }
    }
}

/// A `read_exact` in progress: if its future is dropped, the bytes it took
/// go back in front of the stream's plaintext.
struct Held<'a, S: Transport, B: IoBufMut> {
    tls: &'a mut TlsStream<S>,
    buf: Option<B>,
    got: usize,
}

impl<S: Transport, B: IoBufMut> Held<'_, S, B> {
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let total = self.buf.as_ref().map_or(0, IoBuf::bytes_total);
        while self.got < total {
            ready!(self.tls.poll_readable(cx, true))?;
            let buf = self.buf.take().expect("held between polls");
            let (n, buf) = self.tls.take_plaintext(buf, self.got);
            self.buf = Some(buf);
            if n == 0 {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "TLS session closed (close_notify) after {} of {total} bytes",
                        self.got
                    ),
                );
                self.got = 0; // the caller has them in the buffer
                return Poll::Ready(Err(e));
            }
            self.got += n;
        }
        self.got = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: Transport, B: IoBufMut> Drop for Held<'_, S, B> {
    fn drop(&mut self) {
        if let Some(buf) = &self.buf
            && self.got > 0
        {
            let taken = &buf.as_init_slice()[..self.got];
            self.tls.unread.splice(0..0, taken.iter().copied());
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("io", &self.io)
            .field(
                "side",
                &match self.conn {
                    Connection::Client(_) => "client",
                    Connection::Server(_) => "server",
                },
            )
            .field("version", &self.conn.protocol_version())
            .field(
                "alpn",
                &self.conn.alpn_protocol().map(String::from_utf8_lossy),
            )
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}
