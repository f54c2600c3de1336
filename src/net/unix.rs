//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`],
//! with path names and Linux abstract names.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::accept::Acceptor;
use super::socket::Socket;
use super::tcp::{OwnedReadHalf, OwnedWriteHalf};
use super::udp::connect_dgram;
use crate::driver::op::Op;
use crate::driver::op::connect::Connect;
use crate::io::{IoBuf, IoBufMut};
use crate::sys::{self, RawAddr};

/// A Unix socket address: a filesystem path, an abstract name, or unnamed.
#[derive(Clone, PartialEq, Eq)]
pub struct UnixAddr {
    /// Path bytes; a leading NUL marks an abstract name; empty: unnamed.
    bytes: Vec<u8>,
}

impl UnixAddr {
    /// A filesystem path address.
    pub fn from_pathname(path: impl AsRef<Path>) -> UnixAddr {
        UnixAddr {
            bytes: path.as_ref().as_os_str().as_bytes().to_vec(),
        }
    }

    /// A Linux abstract-namespace address (no file is created).
    pub fn from_abstract_name(name: impl AsRef<[u8]>) -> UnixAddr {
        let mut bytes = vec![0];
        bytes.extend_from_slice(name.as_ref());
        UnixAddr { bytes }
    }

    /// The path, for a path address.
    pub fn as_pathname(&self) -> Option<&Path> {
        (!self.bytes.is_empty() && self.bytes[0] != 0)
            .then(|| Path::new(OsStr::from_bytes(&self.bytes)))
    }

    /// The name, for an abstract address.
    pub fn as_abstract_name(&self) -> Option<&[u8]> {
        (self.bytes.first() == Some(&0)).then(|| &self.bytes[1..])
    }

    /// Whether the address is unnamed (an unbound or `pair()` socket).
    pub fn is_unnamed(&self) -> bool {
        self.bytes.is_empty()
    }

    fn raw(&self) -> io::Result<RawAddr> {
        RawAddr::from_unix(&self.bytes)
    }

    fn from_raw(raw: &RawAddr) -> io::Result<UnixAddr> {
        raw.unix_path()
            .map(|bytes| UnixAddr { bytes })
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a Unix address"))
    }
}

impl fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.as_pathname() {
            write!(f, "{p:?} (pathname)")
        } else if let Some(n) = self.as_abstract_name() {
            write!(f, "{:?} (abstract)", String::from_utf8_lossy(n))
        } else {
            f.write_str("(unnamed)")
        }
    }
}

/// What a Unix socket function accepts as an address.
pub trait IntoUnixAddr {
    /// The address.
    fn into_unix_addr(self) -> UnixAddr;
}

impl IntoUnixAddr for UnixAddr {
    fn into_unix_addr(self) -> UnixAddr {
        self
    }
}

impl IntoUnixAddr for &UnixAddr {
    fn into_unix_addr(self) -> UnixAddr {
        self.clone()
    }
}

impl IntoUnixAddr for &Path {
    fn into_unix_addr(self) -> UnixAddr {
        UnixAddr::from_pathname(self)
    }
}

impl IntoUnixAddr for &std::path::PathBuf {
    fn into_unix_addr(self) -> UnixAddr {
        UnixAddr::from_pathname(self)
    }
}

impl IntoUnixAddr for &str {
    fn into_unix_addr(self) -> UnixAddr {
        UnixAddr::from_pathname(self)
    }
}

fn bind_fd(ty: i32, addr: &UnixAddr) -> io::Result<std::os::fd::OwnedFd> {
    let fd = sys::socket(libc::AF_UNIX, ty)?;
    sys::bind(&fd, &addr.raw()?)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {addr:?}: {e}")))?;
    Ok(fd)
}

/// A Unix stream socket listening for connections.
///
/// # Examples
///
/// ```
/// use ringloop::net::{UnixAddr, UnixListener, UnixStream};
/// ringloop::run(async {
///     let name = UnixAddr::from_abstract_name(format!("ringloop-doc-{}", std::process::id()));
///     let listener = UnixListener::bind(&name)?;
///     let client = ringloop::spawn(async move { UnixStream::connect(&name).await });
///     let (server, _) = listener.accept().await?;
///     let client = client.await??;
///     let (res, _) = client.write_all(b"hi".to_vec()).await;
///     res?;
///     let (res, buf) = server.read_exact(Vec::with_capacity(2)).await;
///     res?;
///     assert_eq!(buf, b"hi");
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct UnixListener {
    acceptor: Acceptor,
}

impl UnixListener {
    /// Binds to `addr` and listens (backlog 1024).
    ///
    /// # Errors
    ///
    /// `socket`, `bind` (e.g. the path exists) or `listen` failures; or no
    /// running loop.
    pub fn bind(addr: impl IntoUnixAddr) -> io::Result<UnixListener> {
        let fd = bind_fd(libc::SOCK_STREAM, &addr.into_unix_addr())?;
        sys::listen(&fd, 1024)?;
        Ok(UnixListener {
            acceptor: Acceptor::new(Socket::new(fd)?),
        })
    }

    /// Accepts a connection (backing off on `EMFILE`, like
    /// [`super::TcpListener::accept`]).
    ///
    /// A connection that failed before it was accepted is skipped, not
    /// returned as an error. A client that connected and closed before the
    /// accept is still returned (what it sent can be read, then EOF); its
    /// address is unnamed when the kernel no longer knows it.
    ///
    /// # Errors
    ///
    /// Only failures of the listener itself (e.g. `EBADF`, `EINVAL`: not a
    /// listening socket), and a failure to register the new socket with
    /// the loop.
    pub async fn accept(&self) -> io::Result<(UnixStream, UnixAddr)> {
        let (fd, raw) = self.acceptor.accept().await?;
        let addr = raw
            .map_or_else(|| sys::peer_addr(&fd), Ok)
            .and_then(|raw| UnixAddr::from_raw(&raw))
            .unwrap_or(UnixAddr { bytes: Vec::new() });
        Ok((
            UnixStream {
                socket: Socket::new(fd)?,
            },
            addr,
        ))
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// `getsockname` failures.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        UnixAddr::from_raw(&sys::local_addr(&self.acceptor.socket)?)
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.acceptor.socket.as_raw_fd())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

/// A Unix stream connection (owned-buffer reads and writes, as
/// [`super::TcpStream`]).
pub struct UnixStream {
    socket: Socket,
}

impl UnixStream {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// `connect` failures (`NotFound`, `ConnectionRefused`), or no running
    /// loop.
    pub async fn connect(addr: impl IntoUnixAddr) -> io::Result<UnixStream> {
        let addr = addr.into_unix_addr();
        let driver = crate::runtime::current_driver()?;
        let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
        let fd = Op::submit(&driver, Connect::new(fd, addr.raw()?))?
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("connect {addr:?}: {e}")))?;
        Ok(UnixStream {
            socket: Socket::new(fd)?,
        })
    }

    /// Two connected, unnamed streams.
    ///
    /// # Errors
    ///
    /// `socketpair` failures, or no running loop.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = sys::socketpair(libc::AF_UNIX, libc::SOCK_STREAM)?;
        Ok((
            UnixStream {
                socket: Socket::new(a)?,
            },
            UnixStream {
                socket: Socket::new(b)?,
            },
        ))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// `getsockname` failures.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        UnixAddr::from_raw(&sys::local_addr(&self.socket)?)
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// `getpeername` failures.
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        UnixAddr::from_raw(&sys::peer_addr(&self.socket)?)
    }

    super::stream_io_methods!();
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.as_raw_fd())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

/// A Unix datagram socket.
///
/// # Examples
///
/// ```
/// use ringloop::net::UnixDatagram;
/// ringloop::run(async {
///     let (a, b) = UnixDatagram::pair()?;
///     let (res, _) = a.send(b"one datagram".to_vec()).await;
///     res?;
///     let (res, buf) = b.recv(Vec::with_capacity(64)).await;
///     assert_eq!(&buf[..res?], b"one datagram");
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct UnixDatagram {
    socket: Socket,
}

impl UnixDatagram {
    /// Binds to `addr`.
    ///
    /// # Errors
    ///
    /// `socket` or `bind` failures; or no running loop.
    pub fn bind(addr: impl IntoUnixAddr) -> io::Result<UnixDatagram> {
        let fd = bind_fd(libc::SOCK_DGRAM, &addr.into_unix_addr())?;
        Ok(UnixDatagram {
            socket: Socket::new(fd)?,
        })
    }

    /// An unbound socket (it can send, and receive once connected).
    ///
    /// # Errors
    ///
    /// `socket` failures; or no running loop.
    pub fn unbound() -> io::Result<UnixDatagram> {
        let fd = sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM)?;
        Ok(UnixDatagram {
            socket: Socket::new(fd)?,
        })
    }

    /// Two connected, unnamed datagram sockets.
    ///
    /// # Errors
    ///
    /// `socketpair` failures; or no running loop.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = sys::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM)?;
        Ok((
            UnixDatagram {
                socket: Socket::new(a)?,
            },
            UnixDatagram {
                socket: Socket::new(b)?,
            },
        ))
    }

    /// Sets the default peer.
    ///
    /// # Errors
    ///
    /// `connect(2)` failures.
    pub async fn connect(&self, addr: impl IntoUnixAddr) -> io::Result<()> {
        connect_dgram(&self.socket, addr.into_unix_addr().raw()?).await
    }

    /// Sends one datagram to `target`.
    pub async fn send_to<B: IoBuf>(
        &self,
        buf: B,
        target: impl IntoUnixAddr,
    ) -> (io::Result<usize>, B) {
        match target.into_unix_addr().raw() {
            Ok(to) => self.socket.send_to(buf, to).await,
            Err(e) => (Err(e), buf),
        }
    }

    /// Receives one datagram and its sender's address.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, UnixAddr)>, B) {
        let (res, buf) = self.socket.recv_from(buf).await;
        (
            res.map(|(n, a)| {
                (
                    n,
                    UnixAddr::from_raw(&a).unwrap_or(UnixAddr { bytes: Vec::new() }),
                )
            }),
            buf,
        )
    }

    /// Sends one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send(buf).await
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        let (res, buf) = self.socket.recv_from(buf).await;
        (res.map(|(n, _)| n), buf)
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// `getsockname` failures.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        UnixAddr::from_raw(&sys::local_addr(&self.socket)?)
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("fd", &self.as_raw_fd())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}
