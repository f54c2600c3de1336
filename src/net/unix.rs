//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`],
//! with path names and Linux abstract names.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net as std_unix;
use std::path::Path;

use super::accept::Acceptor;
use super::handoff::{self, IntoStdError, fd_traits};
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

    pub(crate) fn from_raw(raw: &RawAddr) -> io::Result<UnixAddr> {
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

pub(crate) fn bind_fd(ty: i32, addr: &UnixAddr) -> io::Result<std::os::fd::OwnedFd> {
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

    /// Accepts with one single-shot accept per call from now on.
    pub(crate) fn single_shot(&self) {
        self.acceptor.force_single_shot();
    }

    /// Accepts a connection and gives its fd alone, for another core to
    /// adopt (`net::distribute`).
    pub(crate) async fn accept_fd(&self) -> io::Result<OwnedFd> {
        self.acceptor.accept().await.map(|(fd, _)| fd)
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// `getsockname` failures.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        UnixAddr::from_raw(&sys::local_addr(&self.acceptor.socket)?)
    }

    /// Adopts a listening std Unix socket for the loop running on this
    /// thread: one from systemd socket activation, or a parent process.
    /// Blocking or non-blocking, either is fine; the mode is restored by
    /// [`UnixListener::into_std`].
    ///
    /// # Errors
    ///
    /// No ringloop loop runs on this thread; the socket is not an
    /// `AF_UNIX` stream socket, or not listening (`InvalidInput`). The
    /// socket is closed then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::SocketAddr;
    /// use std::os::linux::net::SocketAddrExt;
    /// use ringloop::net::{UnixAddr, UnixListener, UnixStream};
    /// ringloop::run(async {
    ///     let name = format!("ringloop-doc-from-std-{}", std::process::id());
    ///     let addr = SocketAddr::from_abstract_name(&name)?;
    ///     let std_listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    ///     let listener = UnixListener::from_std(std_listener)?;
    ///     let client = ringloop::spawn(UnixStream::connect(UnixAddr::from_abstract_name(&name)));
    ///     let (_stream, _) = listener.accept().await?;
    ///     client.await??;
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn from_std(listener: std_unix::UnixListener) -> io::Result<UnixListener> {
        let socket = Socket::adopt(OwnedFd::from(listener), &handoff::UNIX_LISTENER)?;
        Ok(UnixListener {
            acceptor: Acceptor::new(socket),
        })
    }

    /// Hands the listener back as a std socket, with the blocking mode it
    /// had when ringloop got it (blocking, for a listener ringloop bound).
    /// After an `accept()`, refused first with `WouldBlock` (the accept
    /// left armed in the kernel is being cancelled), then with
    /// `ResourceBusy` while connections it accepted meanwhile wait for
    /// `accept()`, exactly as [`TcpListener::into_std`](super::TcpListener::into_std)
    /// (whose example shows the loop); no connection is lost.
    ///
    /// # Errors
    ///
    /// [`IntoStdError`], with the listener, unharmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::{UnixAddr, UnixListener};
    /// ringloop::run(async {
    ///     let name = format!("ringloop-doc-into-std-{}", std::process::id());
    ///     let listener = UnixListener::bind(UnixAddr::from_abstract_name(&name))?;
    ///     let std_listener = listener.into_std()?; // never accepted: at once
    ///     std_listener.set_nonblocking(true)?;
    ///     assert!(std_listener.accept().is_err()); // WouldBlock: nobody came
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn into_std(self) -> Result<std_unix::UnixListener, IntoStdError<UnixListener>> {
        const WHAT: &str = "UnixListener::into_std";
        if let Err(e) = self.acceptor.prepare_handoff(WHAT) {
            return Err(IntoStdError::new(e, self));
        }
        match self.acceptor.into_socket().into_fd(WHAT) {
            Ok(fd) => Ok(fd.into()),
            Err((e, socket)) => Err(IntoStdError::new(
                e,
                UnixListener {
                    acceptor: Acceptor::new(socket),
                },
            )),
        }
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.acceptor.socket.as_raw_fd()
    }
}

fd_traits!(UnixListener, std_unix::UnixListener, l => l.acceptor.socket);

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
    /// Wraps a connected socket for the loop running on this thread.
    pub(crate) fn from_fd(fd: OwnedFd) -> io::Result<UnixStream> {
        Ok(UnixStream {
            socket: Socket::new(fd)?,
        })
    }

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

    /// Adopts a std Unix stream (one end of a `socketpair`, a connection a
    /// parent process passed down) for the loop running on this thread.
    /// Blocking or non-blocking, either is fine; the mode is restored by
    /// [`UnixStream::into_std`].
    ///
    /// # Errors
    ///
    /// No ringloop loop runs on this thread; the socket is not an
    /// `AF_UNIX` stream socket, or is a listening one (`InvalidInput`). The
    /// socket is closed then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use ringloop::net::UnixStream;
    /// ringloop::run(async {
    ///     let (mut ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ///     let theirs = UnixStream::from_std(theirs)?;
    ///     ours.write_all(b"hi")?;
    ///     let (res, buf) = theirs.read_exact(Vec::with_capacity(2)).await;
    ///     res?;
    ///     assert_eq!(buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn from_std(stream: std_unix::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            socket: Socket::adopt(OwnedFd::from(stream), &handoff::UNIX_STREAM)?,
        })
    }

    /// Hands the connection over as a std stream, with the blocking mode
    /// it had when ringloop got it (blocking, for streams ringloop made).
    /// Refused while an operation is still in flight on the stream
    /// (`WouldBlock`) or ringloop keeps bytes or an error a dropped read
    /// received (`ResourceBusy`), as
    /// [`TcpStream::into_std`](super::TcpStream::into_std) is; nothing is
    /// lost.
    ///
    /// # Errors
    ///
    /// [`IntoStdError`], with the stream, unharmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use ringloop::net::UnixStream;
    /// ringloop::run(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let (res, _) = a.write_all(b"after".to_vec()).await;
    ///     res?;
    ///     let mut b = b.into_std()?;
    ///     let mut buf = [0; 5];
    ///     b.read_exact(&mut buf)?;
    ///     assert_eq!(&buf, b"after");
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn into_std(self) -> Result<std_unix::UnixStream, IntoStdError<UnixStream>> {
        match self.socket.into_fd("UnixStream::into_std") {
            Ok(fd) => Ok(fd.into()),
            Err((e, socket)) => Err(IntoStdError::new(e, UnixStream { socket })),
        }
    }

    super::stream_io_methods!();
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

fd_traits!(UnixStream, std_unix::UnixStream, s => s.socket);

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

    /// Adopts a std Unix datagram socket for the loop running on this
    /// thread. Blocking or non-blocking, either is fine; the mode is
    /// restored by [`UnixDatagram::into_std`].
    ///
    /// # Errors
    ///
    /// No ringloop loop runs on this thread; the socket is not an
    /// `AF_UNIX` datagram socket (`InvalidInput`). The socket is closed
    /// then.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::UnixDatagram;
    /// ringloop::run(async {
    ///     let (ours, theirs) = std::os::unix::net::UnixDatagram::pair()?;
    ///     let theirs = UnixDatagram::from_std(theirs)?;
    ///     ours.send(b"one")?;
    ///     let (res, buf) = theirs.recv(Vec::with_capacity(8)).await;
    ///     assert_eq!(&buf[..res?], b"one");
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn from_std(socket: std_unix::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            socket: Socket::adopt(OwnedFd::from(socket), &handoff::UNIX_DATAGRAM)?,
        })
    }

    /// Hands the socket over as a std socket, with the blocking mode it
    /// had when ringloop got it (blocking, for sockets ringloop made).
    /// Refused while an operation is still in flight on the socket
    /// (`WouldBlock`) or ringloop keeps a datagram a dropped receive got
    /// (`ResourceBusy`), as [`UdpSocket::into_std`](super::UdpSocket::into_std)
    /// is; no datagram is lost.
    ///
    /// # Errors
    ///
    /// [`IntoStdError`], with the socket, unharmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::UnixDatagram;
    /// ringloop::run(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     let (res, _) = a.send(b"for std".to_vec()).await;
    ///     res?;
    ///     let b = b.into_std()?;
    ///     let mut buf = [0; 16];
    ///     let n = b.recv(&mut buf)?;
    ///     assert_eq!(&buf[..n], b"for std");
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn into_std(self) -> Result<std_unix::UnixDatagram, IntoStdError<UnixDatagram>> {
        match self.socket.into_fd("UnixDatagram::into_std") {
            Ok(fd) => Ok(fd.into()),
            Err((e, socket)) => Err(IntoStdError::new(e, UnixDatagram { socket })),
        }
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

fd_traits!(UnixDatagram, std_unix::UnixDatagram, s => s.socket);

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("fd", &self.as_raw_fd())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}
