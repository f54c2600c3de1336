//! asyncio streams: [`open_connection`], [`start_server`], [`StreamReader`],
//! [`StreamWriter`] (SEMANTICS ST1–ST5).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::net::socket::Socket;
use crate::net::{TcpListener, TcpStream};
use crate::task::{ExceptionContext, Task};

/// asyncio's default stream limit: 64 KiB.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// How much a reader asks the kernel for at once.
const READ_CHUNK: usize = 16 * 1024;

/// The stream ended before the expected data (asyncio's
/// `IncompleteReadError`); `partial` holds what was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteReadError {
    /// The bytes read before the end of the stream.
    pub partial: Vec<u8>,
    /// How many bytes were expected (`None`: a separator was).
    pub expected: Option<usize>,
}

impl fmt::Display for IncompleteReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(n) => write!(
                f,
                "{} bytes read on a total of {n} expected bytes",
                self.partial.len()
            ),
            None => write!(
                f,
                "{} bytes read before EOF, separator not found",
                self.partial.len()
            ),
        }
    }
}

impl std::error::Error for IncompleteReadError {}

/// The separator was not found within the reader's limit (asyncio's
/// `LimitOverrunError`); the data stays in the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitOverrunError {
    /// Bytes of the buffer looked at (and left there).
    pub consumed: usize,
}

impl fmt::Display for LimitOverrunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "separator is not found within the limit ({} bytes buffered)",
            self.consumed
        )
    }
}

impl std::error::Error for LimitOverrunError {}

/// Why a [`StreamReader`] call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamError {
    /// The socket failed.
    Io(io::Error),
    /// End of stream before the data asked for.
    IncompleteRead(IncompleteReadError),
    /// The limit was reached before the separator.
    LimitOverrun(LimitOverrunError),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Io(e) => e.fmt(f),
            StreamError::IncompleteRead(e) => e.fmt(f),
            StreamError::LimitOverrun(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Io(e) => Some(e),
            StreamError::IncompleteRead(e) => Some(e),
            StreamError::LimitOverrun(e) => Some(e),
        }
    }
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Io(e)
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        match e {
            StreamError::Io(e) => e,
            StreamError::IncompleteRead(e) => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            StreamError::LimitOverrun(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// The reading end of a stream (asyncio's `StreamReader`): buffered reads
/// by size, line or separator.
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
///                 w.write(&line);
///                 w.drain().await.ok();
///             }
///         },
///         "127.0.0.1:0",
///     )?;
///     let (mut r, w) = open_connection(server.local_addr()?).await?;
///     w.write(b"hello\n");
///     assert_eq!(r.readline().await?, b"hello\n");
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct StreamReader {
    socket: Socket,
    buf: Vec<u8>,
    eof: bool,
    limit: usize,
}

impl StreamReader {
    pub(crate) fn new(socket: Socket, limit: usize) -> StreamReader {
        StreamReader {
            socket,
            buf: Vec::new(),
            eof: false,
            limit,
        }
    }

    /// Whether the stream ended and the buffer is empty.
    pub fn at_eof(&self) -> bool {
        self.eof && self.buf.is_empty()
    }

    /// The limit `readuntil`/`readline` apply to the buffer.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit (default [`DEFAULT_LIMIT`], 64 KiB).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Reads more from the socket into the buffer; false at EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let chunk = Vec::with_capacity(READ_CHUNK);
        let (res, chunk) = self.socket.recv(chunk).await;
        let n = res?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// Reads up to `n` bytes (at least one unless at EOF, then empty).
    ///
    /// # Errors
    ///
    /// Socket failures.
    pub async fn read(&mut self, n: usize) -> io::Result<Vec<u8>> {
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
    /// Socket failures.
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads exactly `n` bytes (ST3).
    ///
    /// # Errors
    ///
    /// [`StreamError::IncompleteRead`] with the partial bytes if the stream
    /// ends first (they are consumed).
    pub async fn readexactly(&mut self, n: usize) -> Result<Vec<u8>, StreamError> {
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

    /// Reads up to and including `separator` (ST2).
    ///
    /// # Errors
    ///
    /// - [`StreamError::IncompleteRead`] at EOF without the separator, with
    ///   the partial bytes (consumed);
    /// - [`StreamError::LimitOverrun`] when the limit is reached without the
    ///   separator: the data stays in the buffer.
    ///
    /// # Panics
    ///
    /// If `separator` is empty.
    pub async fn readuntil(&mut self, separator: &[u8]) -> Result<Vec<u8>, StreamError> {
        assert!(!separator.is_empty(), "separator must not be empty");
        let mut searched = 0;
        loop {
            if let Some(pos) = find(&self.buf[searched..], separator) {
                let end = searched + pos + separator.len();
                if end > self.limit {
                    return Err(StreamError::LimitOverrun(LimitOverrunError {
                        consumed: end,
                    }));
                }
                return Ok(self.buf.drain(..end).collect());
            }
            // The separator may straddle what we have and what comes next.
            searched = self.buf.len().saturating_sub(separator.len() - 1);
            if self.buf.len() > self.limit {
                return Err(StreamError::LimitOverrun(LimitOverrunError {
                    consumed: self.buf.len(),
                }));
            }
            if !self.fill().await? {
                return Err(StreamError::IncompleteRead(IncompleteReadError {
                    partial: std::mem::take(&mut self.buf),
                    expected: None,
                }));
            }
        }
    }

    /// Reads a line, up to and including `\n`; at EOF, what is left
    /// (possibly empty) (ST1).
    ///
    /// # Errors
    ///
    /// [`StreamError::LimitOverrun`] when a line exceeds the limit (asyncio
    /// then drops the oversized data: the line, or the whole buffer if no
    /// newline is in it); socket failures.
    pub async fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        match self.readuntil(b"\n").await {
            Ok(line) => Ok(line),
            Err(StreamError::IncompleteRead(e)) => Ok(e.partial),
            Err(StreamError::LimitOverrun(e)) => {
                match find(&self.buf, b"\n") {
                    Some(pos) => drop(self.buf.drain(..=pos)),
                    None => self.buf.clear(),
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
            .field("socket", &self.socket)
            .field("buffered", &self.buf.len())
            .field("eof", &self.eof)
            .field("limit", &self.limit)
            .finish()
    }
}

struct WriterState {
    socket: Socket,
    /// Bytes written and not yet handed to a send.
    pending: RefCell<VecDeque<u8>>,
    /// Bytes in the send in flight (still "buffered" for `drain`).
    in_flight: Cell<usize>,
    high: Cell<usize>,
    low: Cell<usize>,
    closing: Cell<bool>,
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
}

/// The writing end of a stream (asyncio's `StreamWriter`): `write` buffers
/// and returns at once; a task of the writer sends in the background;
/// `drain` waits while the buffer is above the high-water mark (ST4).
pub struct StreamWriter {
    state: Rc<WriterState>,
    flusher: Option<Task<()>>,
}

impl StreamWriter {
    fn new(socket: Socket) -> StreamWriter {
        let state = Rc::new(WriterState {
            socket,
            pending: RefCell::new(VecDeque::new()),
            in_flight: Cell::new(0),
            high: Cell::new(64 * 1024),
            low: Cell::new(16 * 1024),
            closing: Cell::new(false),
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
    pub fn write(&self, data: &[u8]) {
        if self.state.closing.get() || data.is_empty() {
            return;
        }
        self.state.pending.borrow_mut().extend(data);
        if let Some(w) = self.state.flusher.take() {
            w.wake();
        }
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
    /// was above, until it has drained to the low-water mark (ST4).
    ///
    /// # Errors
    ///
    /// The socket's send error, once one occurred.
    pub async fn drain(&self) -> io::Result<()> {
        let s = &self.state;
        let mut target = None;
        poll_fn(|cx| {
            if let Some(e) = s.error.borrow().as_ref() {
                return Poll::Ready(Err(io::Error::new(e.kind(), e.to_string())));
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

    /// Sends what is buffered, then shuts the write side down (FIN) and
    /// closes; see [`StreamWriter::wait_closed`].
    pub fn close(&self) {
        self.state.closing.set(true);
        if let Some(w) = self.state.flusher.take() {
            w.wake();
        }
    }

    /// Whether [`StreamWriter::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.state.closing.get()
    }

    /// Waits until the writer has sent everything and closed.
    ///
    /// # Errors
    ///
    /// The socket's send or shutdown error, if one occurred.
    pub async fn wait_closed(&self) -> io::Result<()> {
        let s = &self.state;
        poll_fn(|cx| {
            if s.closed.get() {
                return Poll::Ready(match s.error.borrow().as_ref() {
                    Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
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
        // Like a transport closed by garbage collection: flush what was
        // written, then close, in the background.
        self.close();
        if let Some(t) = self.flusher.take() {
            t.detach();
        }
    }
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("socket", &self.state.socket)
            .field("buffered", &self.buffer_size())
            .field("closing", &self.state.closing.get())
            .finish()
    }
}

/// The most a writer hands to one send.
const SEND_CHUNK: usize = 256 * 1024;

/// The writer's background task: sends the buffer as it fills, a bounded
/// chunk at a time (what is in flight still counts as buffered).
async fn flush_loop(s: Rc<WriterState>) {
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.is_empty() {
            let mut pending = s.pending.borrow_mut();
            let k = pending.len().min(SEND_CHUNK);
            out.extend(pending.drain(..k));
            s.in_flight.set(out.len());
        }
        if out.is_empty() {
            s.wake_drained();
            if s.closing.get() {
                break;
            }
            poll_fn(|cx| {
                if s.pending.borrow().is_empty() && !s.closing.get() {
                    s.flusher.set(Some(cx.waker().clone()));
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            continue;
        }
        let (res, sent) = s.socket.send(out).await;
        out = sent;
        match res {
            Ok(n) => {
                out.drain(..n);
                s.in_flight.set(out.len());
                s.wake_drained();
            }
            Err(e) => {
                *s.error.borrow_mut() = Some(e);
                s.pending.borrow_mut().clear();
                s.in_flight.set(0);
                break;
            }
        }
    }
    if s.error.borrow().is_none() {
        if let Err(e) = s.socket.shutdown(std::net::Shutdown::Write).await {
            if e.kind() != io::ErrorKind::NotConnected {
                *s.error.borrow_mut() = Some(e);
            }
        }
    }
    s.closed.set(true);
    s.wake_drained();
}

/// Connects to `addr` and returns its reader and writer (asyncio's
/// `open_connection`, ST5).
///
/// # Errors
///
/// Connection failures, or no running loop.
pub async fn open_connection(addr: impl ToSocketAddrs) -> io::Result<(StreamReader, StreamWriter)> {
    let stream = TcpStream::connect(addr).await?;
    Ok(streams(stream.into_socket(), DEFAULT_LIMIT))
}

fn streams(socket: Socket, limit: usize) -> (StreamReader, StreamWriter) {
    (
        StreamReader::new(socket.clone(), limit),
        StreamWriter::new(socket),
    )
}

/// A server started by [`start_server`]: it accepts until dropped or closed.
pub struct Server {
    addr: SocketAddr,
    acceptor: Option<Task<io::Result<()>>>,
}

impl Server {
    /// The address the server listens on.
    ///
    /// # Errors
    ///
    /// Never, today; `io::Result` for parity with listeners.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    /// Stops accepting (connections already accepted keep running).
    pub fn close(&mut self) {
        self.acceptor.take();
    }

    /// Waits until the accept loop ends (an accept error, or never).
    ///
    /// # Errors
    ///
    /// The accept error that stopped the server.
    pub async fn serve_forever(&mut self) -> io::Result<()> {
        match self.acceptor.take() {
            Some(t) => t.await.map_err(io::Error::from)?,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("serving", &self.acceptor.is_some())
            .finish()
    }
}

/// Listens on `addr` and runs `handler(reader, writer)` for each connection
/// in its own task (asyncio's `start_server`). The server accepts until
/// the returned [`Server`] is dropped or closed.
///
/// One connection's failure never stops the server: a client that resets
/// before it is served is skipped, and the process running out of fds
/// makes it back off and retry. Only a failure of the listener itself
/// stops it; that error is sent to the loop's exception handler
/// ([`ExceptionKind::ServerStopped`](crate::ExceptionKind::ServerStopped))
/// and returned by [`Server::serve_forever`].
///
/// # Errors
///
/// Bind failures, or no running loop.
pub fn start_server<H, F>(handler: H, addr: impl ToSocketAddrs) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let acceptor = crate::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    let (r, w) = streams(stream.into_socket(), DEFAULT_LIMIT);
                    crate::spawn(handler(r, w)).detach();
                }
                Err(e) => {
                    crate::runtime::report_exception(&ExceptionContext::server_stopped(format!(
                        "server on {addr} stopped accepting: {e}"
                    )));
                    return Err(e);
                }
            }
        }
    });
    Ok(Server {
        addr,
        acceptor: Some(acceptor),
    })
}
