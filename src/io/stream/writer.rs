//! [`StreamWriter`]: buffered writes sent by a background task, `drain`,
//! `write_eof` and `close`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::conn::Conn;
use super::copy_error;
use crate::task::Task;

/// What the writer and its flusher task share.
///
/// The flusher sends `pending` a chunk at a time; once the buffer is empty
/// it carries out what was asked: `eof_requested` shuts the write side down
/// (FIN) and keeps the flusher alive for a later `close`; `closing` shuts
/// both sides down and ends it; `dropped` ends it after the write side is
/// shut down. A send error ends it too. `closed` is set when it ends.
struct WriterState {
    conn: Conn,
    /// Bytes written and not yet handed to a send.
    pending: RefCell<VecDeque<u8>>,
    /// Bytes in the send in flight (still "buffered" for `drain`).
    in_flight: Cell<usize>,
    high: Cell<usize>,
    low: Cell<usize>,
    /// `write_eof` was called, or the writer was dropped.
    eof_requested: Cell<bool>,
    /// `close` was called.
    closing: Cell<bool>,
    /// The [`StreamWriter`] is gone: nothing more can be asked.
    dropped: Cell<bool>,
    /// The flusher has ended: everything sent and shut down, or failed.
    closed: Cell<bool>,
    error: RefCell<Option<io::Error>>,
    /// The flusher waits here for data; drain/wait_closed wait on `drained`.
    flusher: Cell<Option<Waker>>,
    drained: RefCell<Vec<Waker>>,
}

impl WriterState {
    fn buffered(&self) -> usize {
        self.pending.borrow().len() + self.in_flight.get()
    }

    fn wake_drained(&self) {
        for w in self.drained.borrow_mut().drain(..) {
            w.wake();
        }
    }

    fn wake_flusher(&self) {
        if let Some(w) = self.flusher.take() {
            w.wake();
        }
    }

    /// The send error, if one occurred, as a new `io::Error`.
    fn send_error(&self) -> Option<io::Error> {
        self.error.borrow().as_ref().map(copy_error)
    }

    /// Shuts the socket down `how`; a failure (other than the peer being
    /// gone already) is reported by `drain`/`wait_closed` unless an error
    /// was already.
    async fn shutdown(&self, how: std::net::Shutdown) {
        if let Err(e) = self.conn.shutdown(how).await {
            let mut error = self.error.borrow_mut();
            if error.is_none() && e.kind() != io::ErrorKind::NotConnected {
                *error = Some(e);
            }
        }
    }
}

/// The error of a write or drain after [`StreamWriter::close`].
fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "stream writer is closed")
}

/// The writing end of a stream (asyncio's `StreamWriter`): `write` buffers
/// and returns at once; a task of the writer sends in the background;
/// `drain` waits while the buffer is above the high-water mark.
///
/// Dropping the writer sends what was written, then shuts the write side
/// down in the background; unlike asyncio's `StreamWriter.__del__`, which
/// closes both ways, the reader of the same connection keeps reading, and
/// the socket is closed once the reader is dropped too.
pub struct StreamWriter {
    state: Rc<WriterState>,
    flusher: Option<Task<()>>,
}

impl StreamWriter {
    /// The socket of a plain connection (for tests of its options).
    #[cfg(test)]
    pub(super) fn socket(&self) -> Option<&crate::net::socket::Socket> {
        self.state.conn.socket()
    }

    pub(super) fn new(conn: Conn) -> StreamWriter {
        let state = Rc::new(WriterState {
            conn,
            pending: RefCell::new(VecDeque::new()),
            in_flight: Cell::new(0),
            high: Cell::new(64 * 1024),
            low: Cell::new(16 * 1024),
            eof_requested: Cell::new(false),
            closing: Cell::new(false),
            dropped: Cell::new(false),
            closed: Cell::new(false),
            error: RefCell::new(None),
            flusher: Cell::new(None),
            drained: RefCell::new(Vec::new()),
        });
        let flusher = crate::spawn(flush_loop(state.clone()));
        StreamWriter {
            state,
            flusher: Some(flusher),
        }
    }

    /// Buffers `data` for sending (never waits; see [`StreamWriter::drain`]).
    ///
    /// # Errors
    ///
    /// `BrokenPipe` after [`close`](StreamWriter::close) ("stream writer is
    /// closed") or [`write_eof`](StreamWriter::write_eof), even for empty
    /// `data`; the socket's send error once one occurred. The data is then
    /// not sent. asyncio silently drops a write after the connection was
    /// lost; ringloop reports it.
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        let s = &self.state;
        if s.closing.get() {
            return Err(closed_error());
        }
        if let Some(e) = s.send_error() {
            return Err(e);
        }
        if s.eof_requested.get() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "cannot write after write_eof",
            ));
        }
        if !data.is_empty() {
            s.pending.borrow_mut().extend(data);
            s.wake_flusher();
        }
        Ok(())
    }

    /// Bytes buffered and not yet sent.
    pub fn buffer_size(&self) -> usize {
        self.state.buffered()
    }

    /// Sets the high- and low-water marks (asyncio's
    /// `transport.set_write_buffer_limits`; defaults 64 KiB and 16 KiB).
    pub fn set_write_buffer_limits(&self, high: usize, low: usize) {
        self.state.high.set(high);
        self.state.low.set(low.min(high));
    }

    /// Waits until the buffer is at or below the high-water mark — and if it
    /// was above, until it has drained to the low-water mark.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` ("stream writer is closed") when called after
    /// [`close`](StreamWriter::close) (a drain already waiting when `close`
    /// is called goes on waiting for the buffer); the socket's send error,
    /// once one occurred.
    pub async fn drain(&self) -> io::Result<()> {
        let s = &self.state;
        if s.closing.get() {
            return Err(closed_error());
        }
        let mut target = None;
        poll_fn(|cx| {
            if let Some(e) = s.send_error() {
                return Poll::Ready(Err(e));
            }
            let len = s.buffered();
            let limit = *target.get_or_insert(if len > s.high.get() {
                s.low.get()
            } else {
                usize::MAX
            });
            if len <= limit {
                return Poll::Ready(Ok(()));
            }
            s.drained.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Sends what is buffered, then shuts the write side down (FIN): the
    /// peer reads everything, then end of stream, while this side can still
    /// read (asyncio's `write_eof`). Later writes fail; calling it again, or
    /// after [`close`](StreamWriter::close), does nothing.
    ///
    /// # Errors
    ///
    /// The socket's send error, once one occurred; a failing shutdown is
    /// reported by [`drain`](StreamWriter::drain) and
    /// [`wait_closed`](StreamWriter::wait_closed).
    pub fn write_eof(&self) -> io::Result<()> {
        let s = &self.state;
        if let Some(e) = s.send_error() {
            return Err(e);
        }
        if !s.closing.get() && !s.eof_requested.replace(true) {
            s.wake_flusher();
        }
        Ok(())
    }

    /// Whether [`write_eof`](StreamWriter::write_eof) is supported: always,
    /// on a stream socket (asyncio's `can_write_eof`).
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Closes the connection both ways, as asyncio's `close` does: sends
    /// what is buffered, then shuts down writing (the peer sees end of
    /// stream) and reading (the reader of this connection then reports end
    /// of stream, after the bytes it already has or the kernel already
    /// received). Returns at once; see [`StreamWriter::wait_closed`]. Later
    /// writes and drains fail.
    ///
    /// Bytes written before `close` are sent even if the writer is dropped
    /// or `wait_closed` is cancelled; the socket itself is closed once the
    /// writer and the reader are both dropped.
    pub fn close(&self) {
        if !self.state.closing.replace(true) {
            self.state.wake_flusher();
        }
    }

    /// Whether [`StreamWriter::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.state.closing.get()
    }

    /// Waits until the writer has sent everything and closed (or a send
    /// failed).
    ///
    /// # Errors
    ///
    /// The socket's send or shutdown error, if one occurred.
    pub async fn wait_closed(&self) -> io::Result<()> {
        let s = &self.state;
        poll_fn(|cx| {
            if s.closed.get() {
                return Poll::Ready(match s.send_error() {
                    Some(e) => Err(e),
                    None => Ok(()),
                });
            }
            s.drained.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        // Flush what was written, then (unless closing) shut the write side
        // down, in the background.
        let s = &self.state;
        s.eof_requested.set(true);
        s.dropped.set(true);
        s.wake_flusher();
        if let Some(t) = self.flusher.take() {
            t.detach();
        }
    }
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("conn", &self.state.conn)
            .field("buffered", &self.buffer_size())
            .field("eof_requested", &self.state.eof_requested.get())
            .field("closing", &self.state.closing.get())
            .finish()
    }
}

/// The most a writer hands to one send.
const SEND_CHUNK: usize = 256 * 1024;

/// The writer's background task: sends the buffer as it fills, a bounded
/// chunk at a time (what is in flight still counts as buffered), then
/// shuts the socket down as asked (see [`WriterState`]).
async fn flush_loop(s: Rc<WriterState>) {
    let mut out: Vec<u8> = Vec::new();
    let mut eof_sent = false;
    let last = loop {
        if out.is_empty() {
            let mut pending = s.pending.borrow_mut();
            let k = pending.len().min(SEND_CHUNK);
            out.extend(pending.drain(..k));
            s.in_flight.set(out.len());
        }
        if out.is_empty() {
            s.wake_drained();
            if s.closing.get() {
                break Some(std::net::Shutdown::Both);
            }
            if s.eof_requested.get() && !eof_sent {
                eof_sent = true;
                s.shutdown(std::net::Shutdown::Write).await;
                continue;
            }
            if s.dropped.get() {
                break None;
            }
            poll_fn(|cx| {
                if s.pending.borrow().is_empty()
                    && !s.closing.get()
                    && !s.dropped.get()
                    && (eof_sent || !s.eof_requested.get())
                {
                    s.flusher.set(Some(cx.waker().clone()));
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            continue;
        }
        let (res, sent) = s.conn.send(out).await;
        out = sent;
        match res {
            Ok(n) => {
                out.drain(..n);
                s.in_flight.set(out.len());
                s.wake_drained();
            }
            Err(e) => {
                // As asyncio's transport does on a send error: drop the
                // buffer and close both ways.
                *s.error.borrow_mut() = Some(e);
                s.pending.borrow_mut().clear();
                s.in_flight.set(0);
                break Some(std::net::Shutdown::Both);
            }
        }
    };
    if let Some(how) = last {
        s.shutdown(how).await;
    }
    s.closed.set(true);
    s.wake_drained();
}
