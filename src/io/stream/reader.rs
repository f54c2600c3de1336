//! [`StreamReader`]: buffered reads by size, line or separator.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::Stream;

use super::conn::Conn;
use super::{IncompleteReadError, LimitOverrunError, READ_CHUNK, StreamError, copy_error};
use crate::buf::kept::KeepsReads;
use crate::net::{BufGroup, Chunk, RecvStream};

/// The reading end of a stream (asyncio's `StreamReader`): buffered reads
/// by size, line or separator.
///
/// On a plain socket it receives through the loop's default buffer group
/// ([`BufGroup::loop_default`]), with one receive armed for the
/// connection's life: a connection waiting for data holds no receive
/// buffer (see [`RecvStream`]).
///
/// # Examples
///
/// ```
/// use ringloop::io::{open_connection, start_server};
/// ringloop::run(async {
///     let server = start_server(
///         |mut r, w| async move {
///             while let Ok(line) = r.readline().await {
///                 if line.is_empty() { break } // EOF
///                 if w.write(&line).is_err() || w.drain().await.is_err() {
///                     break;
///                 }
///             }
///         },
///         "127.0.0.1:0",
///     )?;
///     let (mut r, w) = open_connection(server.local_addr()?).await?;
///     w.write(b"hello\n")?;
///     assert_eq!(r.readline().await?, b"hello\n");
///     w.close(); // both ways: the reader now reports end of stream
///     w.wait_closed().await?;
///     assert_eq!(r.readline().await?, b"");
///     assert!(r.at_eof());
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct StreamReader {
    conn: Conn,
    buf: Vec<u8>,
    /// Plain sockets: the chunks received into the loop's default buffer
    /// group (made at the first read).
    chunks: RefCell<Option<RecvStream>>,
    /// What `at_eof` took out of `chunks` while looking: first for `fill`.
    peeked: RefCell<Option<io::Result<Chunk>>>,
    /// The peer's end of stream was seen (a read returned 0, or a peek did).
    eof: Cell<bool>,
    /// The error a read failed with: every later read fails with it too.
    error: RefCell<Option<io::Error>>,
    limit: usize,
}

impl StreamReader {
    pub(crate) fn new(conn: impl Into<Conn>, limit: usize) -> StreamReader {
        StreamReader {
            conn: conn.into(),
            buf: Vec::new(),
            chunks: RefCell::new(None),
            peeked: RefCell::new(None),
            eof: Cell::new(false),
            error: RefCell::new(None),
            limit,
        }
    }

    /// Whether the buffer is empty and the peer's end of stream has arrived
    /// (asyncio's `at_eof`), even when no read has seen it yet: data and the
    /// end of stream that arrived together give `true` once the data is
    /// read. `false` after a read failed.
    ///
    /// With the buffer empty, this asks the kernel without waiting (a
    /// peeking `recv`, at most once per call).
    pub fn at_eof(&self) -> bool {
        if !self.buf.is_empty() || self.error.borrow().is_some() {
            return false;
        }
        if self.eof.get() {
            return true;
        }
        if let Some(chunks) = self.chunks.borrow_mut().as_mut() {
            return self.peek_chunks(chunks);
        }
        let Some(socket) = self.conn.socket() else {
            // TLS: only a close_notify already read says so without I/O.
            let end = self.conn.at_clean_end();
            self.eof.set(end);
            return end;
        };
        let kept = socket.kept();
        if kept.len() > 0 || kept.reads_in_flight() > 0 {
            // Bytes an abandoned read got, or one still in the kernel.
            return false;
        }
        match crate::sys::peek_byte(socket) {
            Ok(0) => {
                self.eof.set(true);
                true
            }
            Ok(_) => false,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                false
            }
            Err(e) => {
                // The peek took the socket's error: keep it for the reads.
                *self.error.borrow_mut() = Some(e);
                false
            }
        }
    }

    /// `at_eof` with the receive armed: what it completed with so far,
    /// without waiting (a chunk found is kept for `fill`).
    fn peek_chunks(&self, chunks: &mut RecvStream) -> bool {
        if self.peeked.borrow().is_some() {
            return false;
        }
        match self.poll_chunks_now(chunks) {
            Some(end) => return end,
            None if !self.chunks_may_be_behind() => return false,
            None => {}
        }
        // Nothing reaped: the socket says whether bytes are still there.
        // At its end with nothing left, whatever the receive took before
        // the peek has its completion posted already: reap and look again.
        let Some(socket) = self.conn.socket() else {
            return false;
        };
        if !matches!(crate::sys::peek_byte(socket), Ok(0)) {
            return false;
        }
        socket.driver().borrow_mut().reap_posted();
        match self.poll_chunks_now(chunks) {
            Some(end) => end,
            // Nothing more was received: the end is all that is left.
            None => {
                self.eof.set(true);
                true
            }
        }
    }

    /// Polls the receive once: `Some(true)` at the end, `Some(false)` with
    /// a chunk or an error (kept for `fill`), `None` when nothing is ready.
    fn poll_chunks_now(&self, chunks: &mut RecvStream) -> Option<bool> {
        // No task waits on `chunks` now (`fill` takes `&mut self`): a
        // no-op waker registered here is replaced at the next real poll.
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(chunks).poll_next(&mut cx) {
            Poll::Ready(None) => {
                self.eof.set(true);
                Some(true)
            }
            Poll::Ready(Some(item)) => {
                *self.peeked.borrow_mut() = Some(item);
                Some(false)
            }
            Poll::Pending => None,
        }
    }

    /// Whether a peek of the socket plus a reap can settle `at_eof` (not
    /// with an `SQPOLL` thread receiving at any moment).
    fn chunks_may_be_behind(&self) -> bool {
        self.conn
            .socket()
            .is_some_and(|s| s.driver().borrow().posts_only_when_entered())
    }

    /// The limit `readuntil`/`readline` apply to the bytes before the
    /// separator.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit (default [`DEFAULT_LIMIT`](super::DEFAULT_LIMIT), 64 KiB).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The error an earlier read failed with, again (asyncio raises the
    /// reader's exception on every call once it is set).
    fn failed(&self) -> io::Result<()> {
        match self.error.borrow().as_ref() {
            Some(e) => Err(copy_error(e)),
            None => Ok(()),
        }
    }

    /// Reads more from the socket into the buffer; false at EOF. A failure
    /// is kept: every later read fails the same way.
    async fn fill(&mut self) -> io::Result<bool> {
        self.failed()?;
        if self.eof.get() {
            return Ok(false);
        }
        if self.chunks.get_mut().is_none()
            && let Some(socket) = self.conn.socket()
            && let Ok(group) = BufGroup::loop_default()
        {
            *self.chunks.get_mut() = Some(RecvStream::new(socket.clone(), &group));
        }
        if self.chunks.get_mut().is_some() {
            return self.fill_from_chunks().await;
        }
        loop {
            let chunk = Vec::with_capacity(READ_CHUNK);
            let (res, chunk) = self.conn.recv(chunk).await;
            match res {
                Ok(0) => {
                    self.eof.set(true);
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let copy = copy_error(&e);
                    *self.error.borrow_mut() = Some(e);
                    return Err(copy);
                }
            }
        }
    }

    /// [`StreamReader::fill`] through the armed receive.
    async fn fill_from_chunks(&mut self) -> io::Result<bool> {
        loop {
            let item = match self.peeked.get_mut().take() {
                Some(item) => Some(item),
                None => {
                    let chunks = self.chunks.get_mut().as_mut().expect("checked by fill");
                    chunks.next().await
                }
            };
            match item {
                None => {
                    self.eof.set(true);
                    return Ok(false);
                }
                Some(Ok(chunk)) => {
                    self.buf.extend_from_slice(&chunk);
                    return Ok(true);
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => {
                    let copy = copy_error(&e);
                    *self.error.borrow_mut() = Some(e);
                    return Err(copy);
                }
            }
        }
    }

    /// Reads up to `n` bytes (at least one unless at EOF, then empty).
    ///
    /// # Errors
    ///
    /// Socket failures; once a read failed, every call fails the same way.
    pub async fn read(&mut self, n: usize) -> io::Result<Vec<u8>> {
        self.failed()?;
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.buf.is_empty() {
            self.fill().await?;
        }
        let take = n.min(self.buf.len());
        Ok(self.buf.drain(..take).collect())
    }

    /// Reads until EOF.
    ///
    /// # Errors
    ///
    /// Socket failures; once a read failed, every call fails the same way.
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        self.failed()?;
        while self.fill().await? {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    ///
    /// - [`StreamError::IncompleteRead`] with the partial bytes if the
    ///   stream ends first (they are consumed);
    /// - [`StreamError::Io`] for socket failures; once a read failed, every
    ///   call fails the same way.
    pub async fn readexactly(&mut self, n: usize) -> Result<Vec<u8>, StreamError> {
        self.failed()?;
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(StreamError::IncompleteRead(IncompleteReadError {
                    partial: std::mem::take(&mut self.buf),
                    expected: Some(n),
                }));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads up to and including `separator`.
    ///
    /// The limit counts the bytes before the separator, as asyncio's does: a
    /// separator that starts at offset `limit` is accepted.
    ///
    /// # Errors
    ///
    /// - [`StreamError::IncompleteRead`] at EOF without the separator, with
    ///   the partial bytes (consumed);
    /// - [`StreamError::LimitOverrun`] when the separator starts beyond the
    ///   limit, or the bytes scanned without finding it exceed the limit: the
    ///   data stays in the buffer;
    /// - [`StreamError::Io`] for socket failures; once a read failed, every
    ///   call fails the same way.
    ///
    /// # Panics
    ///
    /// If `separator` is empty.
    pub async fn readuntil(&mut self, separator: &[u8]) -> Result<Vec<u8>, StreamError> {
        assert!(!separator.is_empty(), "separator must not be empty");
        self.failed()?;
        let seplen = separator.len();
        // asyncio's scan: `offset` is where the separator can still start
        // given the bytes already searched.
        let mut offset = 0;
        let isep = loop {
            let buflen = self.buf.len();
            if buflen - offset >= seplen {
                if let Some(i) = find(&self.buf[offset..], separator) {
                    break offset + i;
                }
                offset = buflen + 1 - seplen;
                if offset > self.limit {
                    return Err(StreamError::LimitOverrun(LimitOverrunError {
                        consumed: offset,
                        separator_found: false,
                    }));
                }
            }
            if !self.fill().await? {
                return Err(StreamError::IncompleteRead(IncompleteReadError {
                    partial: std::mem::take(&mut self.buf),
                    expected: None,
                }));
            }
        };
        if isep > self.limit {
            return Err(StreamError::LimitOverrun(LimitOverrunError {
                consumed: isep,
                separator_found: true,
            }));
        }
        Ok(self.buf.drain(..isep + seplen).collect())
    }

    /// Reads a line, up to and including `\n`; at EOF, what is left
    /// (possibly empty).
    ///
    /// # Errors
    ///
    /// - [`StreamError::LimitOverrun`] when a line exceeds the limit: as in
    ///   asyncio, the oversized data is dropped (the line through its `\n`
    ///   if the newline was found, else the whole buffer). asyncio raises a
    ///   `ValueError` with the same message here; ringloop keeps the
    ///   [`LimitOverrunError`], so `consumed` and `separator_found` stay
    ///   available.
    /// - [`StreamError::Io`] for socket failures; once a read failed, every
    ///   call fails the same way.
    pub async fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        match self.readuntil(b"\n").await {
            Ok(line) => Ok(line),
            Err(StreamError::IncompleteRead(e)) => Ok(e.partial),
            Err(StreamError::LimitOverrun(e)) => {
                if self.buf.get(e.consumed) == Some(&b'\n') {
                    self.buf.drain(..=e.consumed);
                } else {
                    self.buf.clear();
                }
                Err(StreamError::LimitOverrun(e))
            }
            Err(e) => Err(e),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("conn", &self.conn)
            .field("buffered", &self.buf.len())
            .field("eof", &self.eof.get())
            .field("failed", &self.error.borrow().is_some())
            .field("limit", &self.limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;
    use crate::net::socket::Socket;

    /// A seqpacket pair: one message per receive, so one per buffer.
    fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds socketpair writes.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        // SAFETY: both fds were just made and are owned by nobody else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// The loop's default group has 16 buffers at first: 16 messages fill
    /// it, and the end of stream after them waits in the socket
    /// (`ENOBUFS`). `at_eof` must still be true once they are read.
    #[test]
    fn at_eof_is_exact_when_the_group_ran_dry_before_the_end() {
        crate::run(async {
            for messages in [15usize, 16, 17, 40] {
                let (ours, peer) = seqpacket_pair();
                let mut want = Vec::new();
                for m in 0..messages {
                    let msg = [m as u8; 10];
                    // SAFETY: `msg` is a valid buffer of its length.
                    let n = unsafe { libc::send(peer.as_raw_fd(), msg.as_ptr().cast(), 10, 0) };
                    assert_eq!(n, 10);
                    want.extend_from_slice(&msg);
                }
                drop(peer);
                let mut r = StreamReader::new(Socket::new(ours).unwrap(), 1 << 16);
                let empty_before = BufGroup::loop_default().unwrap().times_empty();
                assert!(!r.at_eof(), "{messages}: nothing read yet");
                let got = r.readexactly(want.len()).await.unwrap();
                assert_eq!(got, want, "{messages}");
                assert!(r.at_eof(), "{messages}: everything read, the end arrived");
                assert_eq!(r.read(10).await.unwrap(), b"", "{messages}");
                assert!(r.at_eof(), "{messages}");
                if messages == 16 {
                    let empty = BufGroup::loop_default().unwrap().times_empty();
                    assert!(empty > empty_before, "the group never ran dry");
                }
            }
        })
        .unwrap();
    }
}
