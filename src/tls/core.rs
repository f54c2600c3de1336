//! The poll-based core of [`TlsStream`]: the handshake, feeding rustls
//! ciphertext, taking plaintext out, and the write jobs that carry records
//! to the transport. The owned-buffer calls and `futures_io` are thin
//! layers over it.
//!
//! Invariants (what makes cancellation lose nothing):
//!
//! - The kernel only ever sees buffers this stream owns: ciphertext in
//!   `rd.buf` (a transport read) and in a write job's `Vec`. The caller's
//!   buffers are only copied into (plaintext out of rustls) or out of
//!   (plaintext into rustls), synchronously.
//! - At most one transport read (`rd.pending`) and one transport write
//!   (`wr.pending`) are in flight, each a future stored here and polled by
//!   whichever call comes next. A caller's future that is dropped drops
//!   none of them: a read's ciphertext lands in `rd.buf` for the next call,
//!   and a write job goes on writing its records in order.
//! - Ciphertext leaves rustls (`write_tls`) only into a new write job, and
//!   a job starts only when the previous one has written all of its bytes:
//!   records reach the transport whole and in order.
//! - Plaintext enters rustls (`writer().write`) only in a synchronous step
//!   after the last await of a write: a write whose future is dropped
//!   either returned its count or committed nothing.

use std::future::Future;
use std::io::{self, BufRead, Write};
use std::mem;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use rustls::Connection;

use super::error::{again, closed_in_handshake, tls_error, transport_in_handshake};
use super::{TlsStream, Transport};
use crate::buf::copy_into;
use crate::io::{IoBuf, IoBufMut};

type ReadJob = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;
type WriteJob = Pin<Box<dyn Future<Output = (io::Result<()>, Vec<u8>)>>>;
type ShutdownJob = Pin<Box<dyn Future<Output = io::Result<()>>>>;

/// Storage of a transport read on a quiet connection: a whole TLS record
/// (16 KiB of payload and its overhead) fits. An idle connection holds
/// this much in its read in flight.
const READ_SMALL: usize = 17 * 1024;
/// Storage of a transport read while reads come back full (bulk data):
/// fewer, larger reads.
const READ_LARGE: usize = 64 * 1024;
/// The largest write buffer kept for reuse between writes.
const KEEP_WRITE_BUF: usize = 32 * 1024;

/// The read side: the transport read in flight and what it received.
pub(super) struct ReadSide {
    /// The transport read in flight; it outlives a dropped read.
    pending: Option<ReadJob>,
    /// Ciphertext received and not yet taken by rustls: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// The transport's end of stream arrived (and rustls was told).
    eof: bool,
    /// The peer's `close_notify` arrived.
    close_notify: bool,
    /// This side shut the transport's reading down: its end of stream is
    /// ours, not a truncation by the peer.
    shut_here: bool,
    /// Ciphertext bytes received in all (for messages).
    received: u64,
    /// The storage the next transport read asks for: [`READ_LARGE`] after
    /// a read that filled its buffer, [`READ_SMALL`] after one that did
    /// not fill a quarter of it.
    size: usize,
    /// The failure every later read reports again.
    failed: Option<Failed>,
}

/// The write side: the job writing records, and how the session ends.
pub(super) struct WriteSide {
    /// Records being written; the job outlives a dropped write.
    pending: Option<WriteJob>,
    /// A job's buffer back for reuse.
    spare: Vec<u8>,
    /// A write of records failed: the session cannot go on writing.
    failed: Option<io::Error>,
    /// `close_notify` was queued.
    closing: bool,
    shutdown: Option<ShutdownJob>,
    /// The transport's write side was shut down.
    shut: bool,
}

/// A read-side failure, kept to report again.
pub(super) enum Failed {
    Tls(bool, rustls::Error),
    Io(io::Error),
}

impl Failed {
    fn error(&self) -> io::Error {
        match self {
            Failed::Tls(handshake, e) => tls_error(*handshake, e.clone()),
            Failed::Io(e) => again(e),
        }
    }
}

impl<S: Transport> TlsStream<S> {
    /// A session not yet shaken hands.
    pub(super) fn new(io: S, conn: Connection) -> TlsStream<S> {
        TlsStream {
            io: Rc::new(io),
            conn,
            rd: ReadSide {
                pending: None,
                buf: Vec::new(),
                pos: 0,
                eof: false,
                close_notify: false,
                shut_here: false,
                received: 0,
                size: READ_SMALL,
                failed: None,
            },
            wr: WriteSide {
                pending: None,
                spare: Vec::new(),
                failed: None,
                closing: false,
                shutdown: None,
                shut: false,
            },
            unread: Vec::new(),
        }
    }

    /// Completes the handshake: our flight first (the peer waits for it),
    /// then the peer's, until rustls is done and all we owe is written.
    pub(super) fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Err(e) = ready!(self.poll_flush_tls(cx)) {
                return Poll::Ready(Err(transport_in_handshake(e)));
            }
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if self.rd.eof || self.rd.close_notify {
                let e = closed_in_handshake(self.rd.received, self.rd.close_notify);
                return Poll::Ready(Err(e));
            }
            ready!(self.poll_fill(cx, true))?;
        }
    }

    /// Ready when a read can be served: plaintext is buffered, or the end
    /// (clean or not) is known.
    ///
    /// `drive_writes`: also keep the write job in flight going (a
    /// request's tail while its reply is awaited), for the owned-buffer
    /// calls, which have the stream to themselves. The poll interface may
    /// be split between a reading and a writing task, so it never polls a
    /// job the writer may be waiting on (that would take the writer's
    /// wake-up); it only starts one for records rustls queued itself (a
    /// key update's answer, session tickets) when none is in flight.
    pub(crate) fn poll_readable(
        &mut self,
        cx: &mut Context<'_>,
        drive_writes: bool,
    ) -> Poll<io::Result<()>> {
        if !self.unread.is_empty() {
            return Poll::Ready(Ok(()));
        }
        loop {
            if drive_writes && (self.wr.pending.is_some() || self.conn.wants_write()) {
                let _ = self.poll_flush_tls(cx);
            } else {
                self.kick_writes(cx);
            }
            match self.conn.reader().into_first_chunk() {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // After our own shutdown of reading, the end (no more
                // plaintext) is not the peer's truncation.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.rd.shut_here => {
                    return Poll::Ready(Ok(()));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
            if let Some(f) = &self.rd.failed {
                return Poll::Ready(Err(f.error()));
            }
            ready!(self.poll_fill(cx, false))?;
        }
    }

    /// Whether the peer's close_notify arrived and every plaintext byte
    /// before it was read.
    pub(crate) fn at_clean_end(&mut self) -> bool {
        self.unread.is_empty() && matches!(self.conn.reader().into_first_chunk(), Ok([]))
    }

    /// Records that this side is shutting the transport's reading down
    /// (the stream layer's `close`): the end of stream that follows reads
    /// as an end, not as a truncation.
    pub(crate) fn reading_shut_here(&mut self) {
        self.rd.shut_here = true;
    }

    /// The transport, shared (for a shutdown that must not hold a borrow
    /// of the stream across its await).
    pub(crate) fn transport(&self) -> Rc<S> {
        self.io.clone()
    }

    /// Starts writing what rustls queued if no write is in flight (never
    /// polls a job already started: see [`Self::poll_readable`]).
    fn kick_writes(&mut self, cx: &mut Context<'_>) {
        if self.wr.pending.is_none() && self.wr.failed.is_none() && self.conn.wants_write() {
            self.start_job();
            let _ = self.poll_job(cx);
        }
    }

    /// Gives rustls more ciphertext and processes it: what the last
    /// transport read left, else a new read's. Every `Ready(Ok)` made
    /// progress (bytes taken, or the end of stream told).
    fn poll_fill(&mut self, cx: &mut Context<'_>, handshake: bool) -> Poll<io::Result<()>> {
        if let Some(f) = &self.rd.failed {
            return Poll::Ready(Err(f.error()));
        }
        if self.rd.pos == self.rd.buf.len() {
            if self.rd.eof {
                // Reached only when rustls asks for more after the end.
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "TLS: the transport ended");
                return Poll::Ready(Err(e));
            }
            if self.rd.pending.is_none() {
                // The buffer goes to the read (`buf[pos..]` stays empty).
                let mut buf = mem::take(&mut self.rd.buf);
                self.rd.pos = 0;
                buf.clear();
                if buf.capacity() > self.rd.size {
                    // Back to small reads: give the large storage back.
                    buf.shrink_to(self.rd.size);
                }
                buf.reserve(self.rd.size);
                let io = self.io.clone();
                self.rd.pending = Some(Box::pin(async move { io.read(buf).await }));
            }
            let job = self.rd.pending.as_mut().expect("a read in flight");
            let (res, mut buf) = ready!(job.as_mut().poll(cx));
            self.rd.pending = None;
            match res {
                Ok(0) => {
                    buf.clear();
                    self.rd.buf = buf;
                    self.rd.pos = 0;
                    self.rd.eof = true;
                    // rustls learns of the end from a read of 0 bytes.
                    let _ = self.conn.read_tls(&mut io::empty());
                    return Poll::Ready(self.process(cx, handshake));
                }
                Ok(n) => {
                    if n >= buf.capacity() {
                        self.rd.size = READ_LARGE;
                    } else if n < buf.capacity() / 4 {
                        self.rd.size = READ_SMALL;
                    }
                    buf.truncate(n);
                    self.rd.buf = buf;
                    self.rd.pos = 0;
                    self.rd.received += n as u64;
                    if self.rd.buf.is_empty() {
                        // A transport that counted bytes it did not mark
                        // initialised: nothing to give rustls (an empty
                        // slice would read as the end of stream).
                        return Poll::Ready(Ok(()));
                    }
                }
                Err(e) => {
                    buf.clear();
                    self.rd.buf = buf;
                    self.rd.pos = 0;
                    if e.kind() == io::ErrorKind::Interrupted {
                        return Poll::Ready(Ok(()));
                    }
                    let e = if handshake {
                        transport_in_handshake(e)
                    } else {
                        e
                    };
                    self.rd.failed = Some(Failed::Io(again(&e)));
                    return Poll::Ready(Err(e));
                }
            }
        }
        match self.conn.read_tls(&mut &self.rd.buf[self.rd.pos..]) {
            // rustls reads nothing after the peer's close_notify: what
            // follows it is not part of the session.
            Ok(0) => {
                self.rd.close_notify = true;
                self.rd.pos = self.rd.buf.len();
            }
            Ok(n) => self.rd.pos += n,
            Err(e) => {
                // A handshake message over rustls's 64 KiB bound.
                let e = io::Error::new(e.kind(), format!("TLS: the peer's message: {e}"));
                self.rd.failed = Some(Failed::Io(again(&e)));
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(self.process(cx, handshake))
    }

    /// `process_new_packets`; on failure, starts sending the alert rustls
    /// queued (without waiting for it) and keeps the failure.
    fn process(&mut self, cx: &mut Context<'_>, handshake: bool) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(state) => {
                if state.peer_has_closed() {
                    self.rd.close_notify = true;
                }
                Ok(())
            }
            Err(e) => {
                self.kick_writes(cx);
                self.rd.failed = Some(Failed::Tls(handshake, e.clone()));
                Err(tls_error(handshake, e))
            }
        }
    }

    /// Copies buffered plaintext into `buf`'s storage from offset `at`, as
    /// much as fits; returns the new count of bytes from `at`.
    pub(crate) fn take_plaintext<B: IoBufMut>(&mut self, buf: B, at: usize) -> (usize, B) {
        let total = buf.bytes_total();
        let mut got = 0;
        let mut buf = buf;
        if !self.unread.is_empty() {
            let mut rest = buf.slice(at..);
            let n = copy_into(&mut rest, &self.unread);
            buf = rest.into_inner();
            self.unread.drain(..n);
            got += n;
        }
        while at + got < total {
            let mut reader = self.conn.reader();
            let chunk = match reader.fill_buf() {
                Ok(c) if !c.is_empty() => c,
                _ => break,
            };
            let mut rest = buf.slice(at + got..);
            let n = copy_into(&mut rest, chunk);
            buf = rest.into_inner();
            reader.consume(n);
            got += n;
        }
        (got, buf)
    }

    /// Copies buffered plaintext into `dst`.
    pub(super) fn take_plaintext_into(&mut self, dst: &mut [u8]) -> usize {
        let mut got = 0;
        if !self.unread.is_empty() {
            got = dst.len().min(self.unread.len());
            dst[..got].copy_from_slice(&self.unread[..got]);
            self.unread.drain(..got);
        }
        if got < dst.len() {
            // `Ok(0)` (nothing buffered), or errors `poll_readable` reports.
            got += io::Read::read(&mut self.conn.reader(), &mut dst[got..]).unwrap_or(0);
        }
        got
    }

    /// The first buffered plaintext (empty at the end).
    pub(super) fn first_chunk(&mut self) -> &[u8] {
        if !self.unread.is_empty() {
            return &self.unread;
        }
        self.conn.reader().into_first_chunk().unwrap_or(&[])
    }

    /// Marks `n` bytes of [`first_chunk`](Self::first_chunk) read.
    pub(super) fn consume(&mut self, n: usize) {
        if !self.unread.is_empty() {
            let n = n.min(self.unread.len());
            self.unread.drain(..n);
        } else {
            self.conn.reader().consume(n);
        }
    }

    /// Encrypts plaintext from `src` into rustls's queue (as much as its
    /// 64 KiB bound takes) once there is room, and starts writing it.
    pub(crate) fn poll_write_plain(
        &mut self,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, src.len(), |w| w.write(src))
    }

    /// [`poll_write_plain`](Self::poll_write_plain) for several buffers:
    /// rustls encrypts as much of them, in order, as its bound takes.
    pub(crate) fn poll_write_plain_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.poll_write_with(cx, len, |w| w.write_vectored(bufs))
    }

    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        write: impl FnOnce(&mut rustls::Writer<'_>) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = &self.wr.failed {
            return Poll::Ready(Err(write_failed(e)));
        }
        if self.wr.closing {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "TLS: write after shutdown (close_notify was sent)",
            )));
        }
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        // Room: records queued in rustls wait only while a job writes.
        loop {
            if let Poll::Ready(Err(e)) = self.poll_job(cx) {
                return Poll::Ready(Err(e));
            }
            if !self.conn.wants_write() {
                // Room (a job may still be writing the previous records:
                // these are encrypted meanwhile and written after them).
                break;
            }
            if self.wr.pending.is_some() {
                // Woken by the job's end (`poll_job` registered us).
                return Poll::Pending;
            }
            self.start_job();
        }
        // The commit: no await from here to the return.
        let n = write(&mut self.conn.writer())?;
        if n == 0 {
            // Cannot happen with room made above; never report a 0 that a
            // `write_all` loop would spin on.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "TLS: rustls took none of the bytes",
            )));
        }
        if self.wr.pending.is_none() {
            self.start_job();
        }
        // Submit it now; its end is collected by the next call (a failure
        // is kept in `wr.failed`).
        let _ = self.poll_job(cx);
        Poll::Ready(Ok(n))
    }

    /// Writes every queued record: ready when none is left.
    pub(crate) fn poll_flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_job(cx))?;
            if let Some(e) = &self.wr.failed {
                return Poll::Ready(Err(write_failed(e)));
            }
            if !self.conn.wants_write() {
                return Poll::Ready(Ok(()));
            }
            self.start_job();
        }
    }

    /// `close_notify`, flush, then the transport's shutdown.
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.wr.closing {
            self.conn.send_close_notify();
            self.wr.closing = true;
        }
        ready!(self.poll_flush_tls(cx))?;
        if self.wr.shut {
            return Poll::Ready(Ok(()));
        }
        let io = &self.io;
        let job = self.wr.shutdown.get_or_insert_with(|| {
            let io = io.clone();
            Box::pin(async move { io.shutdown_write().await })
        });
        let res = ready!(job.as_mut().poll(cx));
        self.wr.shutdown = None;
        self.wr.shut = true;
        Poll::Ready(res)
    }

    /// Completes the write job in flight, if any; a failure is kept.
    fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(job) = self.wr.pending.as_mut() {
            let (res, buf) = ready!(job.as_mut().poll(cx));
            self.wr.pending = None;
            // Kept for the next job unless large (an idle connection
            // should not hold a bulk write's storage).
            if buf.capacity() <= KEEP_WRITE_BUF {
                self.wr.spare = buf;
            }
            if let Err(e) = res {
                self.wr.failed = Some(again(&e));
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Moves every record rustls has queued into a new write job (none
    /// may be in flight).
    fn start_job(&mut self) {
        debug_assert!(self.wr.pending.is_none(), "one write job at a time");
        let mut buf = mem::take(&mut self.wr.spare);
        buf.clear();
        while self.conn.wants_write() {
            // A `Vec` takes all it is offered.
            match self.conn.write_tls(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if buf.is_empty() {
            self.wr.spare = buf;
            return;
        }
        let io = self.io.clone();
        self.wr.pending = Some(Box::pin(async move { write_all(&*io, buf).await }));
    }
}

/// The error of a write after a write of records failed.
fn write_failed(e: &io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("TLS: an earlier write of records failed ({e}); the session cannot go on"),
    )
}

/// Writes all of `buf` to `io` (a job: it owns its buffer, so it may go on
/// after the call that started it was dropped).
async fn write_all<S: Transport>(io: &S, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    let total = buf.len();
    let mut buf = buf;
    let mut sent = 0;
    while sent < total {
        let (res, slice) = io.write(buf.slice(sent..total)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => {
                let e =
                    io::Error::new(io::ErrorKind::WriteZero, "TLS: the transport wrote 0 bytes");
                return (Err(e), buf);
            }
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}
