//! asyncio streams: [`open_connection`], [`start_server`], [`StreamReader`],
//! [`StreamWriter`].

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::net::{TcpListener, TcpStream};
use crate::task::{ExceptionContext, Task};
use conn::Conn;

mod conn;
mod reader;
#[cfg(feature = "tls")]
mod tls;
mod writer;

pub use reader::StreamReader;
pub use writer::StreamWriter;

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

/// `readuntil` or `readline` reached the reader's limit (asyncio's
/// `LimitOverrunError`). The limit counts the bytes before the separator: a
/// separator starting at offset `limit` or earlier is within it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitOverrunError {
    /// asyncio's `consumed`: the separator's offset when it was found beyond
    /// the limit, else how many bytes were scanned for it (bytes buffered −
    /// separator length + 1).
    pub consumed: usize,
    /// Whether the separator was found (beyond the limit) or not (the bytes
    /// scanned already exceed the limit).
    pub separator_found: bool,
}

impl fmt::Display for LimitOverrunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // asyncio's messages, word for word.
        f.write_str(if self.separator_found {
            "Separator is found, but chunk is longer than limit"
        } else {
            "Separator is not found, and chunk exceed the limit"
        })
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

/// Another `io::Error` like `e`: the same OS error, or the same kind and
/// message (`io::Error` is not `Clone`).
fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// Connects to `addr` and returns its reader and writer (asyncio's
/// `open_connection`). The socket has `TCP_NODELAY` set, as asyncio's
/// streams do (see [`start_server`]).
///
/// # Errors
///
/// Connection failures, or no running loop.
pub async fn open_connection(addr: impl ToSocketAddrs) -> io::Result<(StreamReader, StreamWriter)> {
    let stream = TcpStream::connect(addr).await?;
    nodelay(&stream);
    Ok(streams(Conn::Plain(stream.into_socket()), DEFAULT_LIMIT))
}

fn streams(conn: Conn, limit: usize) -> (StreamReader, StreamWriter) {
    (
        StreamReader::new(conn.clone(), limit),
        StreamWriter::new(conn),
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
/// Accepted sockets get `TCP_NODELAY`, as asyncio's streams do: a
/// request/response protocol written in pieces (`write` then `drain`)
/// must not wait for Nagle's algorithm and the peer's delayed ACK (up to
/// 40 ms on Linux). The plain sockets of [`crate::net`] leave the kernel's
/// default, as tokio's and asyncio's `sock_*` calls do:
/// [`TcpStream::set_nodelay`].
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
    serve(addr, move |stream| {
        let (r, w) = streams(Conn::Plain(stream.into_socket()), DEFAULT_LIMIT);
        crate::spawn(handler(r, w)).detach();
    })
}

/// `TCP_NODELAY` on a streams-layer socket. A failure (which TCP sockets
/// do not have) would leave the kernel's default: the connection works.
pub(super) fn nodelay(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// Binds `addr` and hands every accepted connection to `on_accept`, in an
/// accept loop that only a failure of the listener stops.
fn serve(addr: impl ToSocketAddrs, on_accept: impl Fn(TcpStream) + 'static) -> io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let acceptor = crate::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    nodelay(&stream);
                    on_accept(stream)
                }
                Err(e) => {
                    crate::runtime::report_exception(
                        None,
                        &ExceptionContext::server_stopped(
                            format!("server on {addr} stopped accepting"),
                            &e,
                        ),
                    );
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    fn nodelay_of(w: &StreamWriter) -> bool {
        let socket = w.socket().expect("a plain connection");
        crate::sys::getsockopt_int(socket, libc::IPPROTO_TCP, libc::TCP_NODELAY).unwrap() != 0
    }

    /// Both ends of the streams layer disable Nagle (asyncio does), so a
    /// reply written in pieces is not held for the peer's delayed ACK.
    #[test]
    fn streams_set_tcp_nodelay_on_both_ends() {
        crate::run(async {
            let seen = Rc::new(Cell::new(None));
            let server = {
                let seen = seen.clone();
                start_server(
                    move |_r, w| {
                        seen.set(Some(nodelay_of(&w)));
                        async {}
                    },
                    "127.0.0.1:0",
                )
                .unwrap()
            };
            let (_r, w) = open_connection(server.local_addr().unwrap()).await.unwrap();
            assert!(nodelay_of(&w), "open_connection");
            while seen.get().is_none() {
                crate::sleep(std::time::Duration::from_millis(1)).await;
            }
            assert_eq!(seen.get(), Some(true), "start_server");
            // A plain socket keeps the kernel's default (off).
            let plain = TcpStream::connect(server.local_addr().unwrap())
                .await
                .unwrap();
            assert!(!plain.nodelay().unwrap());
        })
        .unwrap();
    }
}
