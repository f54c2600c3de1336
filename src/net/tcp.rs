//! TCP: [`TcpListener`], [`TcpStream`] and its owned halves.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::accept::Acceptor;
use super::handoff::{self, IntoStdError, fd_traits};
use super::socket::Socket;
use crate::driver::op::Op;
use crate::driver::op::connect::Connect;
use crate::io::{IoBuf, IoBufMut};
use crate::sys::{self, RawAddr};

/// Resolves `addr` (no DNS for IP literals).
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        ));
    }
    Ok(addrs)
}

pub(crate) fn inet_addr(raw: &RawAddr) -> io::Result<SocketAddr> {
    raw.inet().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the socket address is not IPv4/IPv6",
        )
    })
}

fn domain(addr: &SocketAddr) -> i32 {
    if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// A listening socket bound to `addr` with `o`, made without a loop (the
/// loop adopts it later; `net::distribute` binds before the cores start).
pub(crate) fn bind_fd(addr: &SocketAddr, o: ListenOptions) -> io::Result<OwnedFd> {
    let fd = sys::socket(domain(addr), libc::SOCK_STREAM)?;
    if o.reuse_addr {
        sys::setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    }
    if o.reuse_port {
        sys::setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    sys::bind(&fd, &RawAddr::from_std(addr))
        .map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))?;
    sys::listen(&fd, o.backlog)?;
    Ok(fd)
}

/// Options for [`TcpListener::bind_with`].
#[derive(Clone, Copy, Debug)]
pub struct ListenOptions {
    /// `listen(2)` backlog (default 1024).
    pub backlog: i32,
    /// `SO_REUSEADDR` (default true, as std and tokio).
    pub reuse_addr: bool,
    /// `SO_REUSEPORT` (default false): several listeners, e.g. one per
    /// core, share the port and the kernel spreads connections.
    pub reuse_port: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 1024,
            reuse_addr: true,
            reuse_port: false,
        }
    }
}

/// A TCP socket listening for connections.
///
/// # Examples
///
/// ```
/// use ringloop::net::{TcpListener, TcpStream};
/// ringloop::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let client = ringloop::spawn(async move {
///         let s = TcpStream::connect(addr).await?;
///         let (res, _) = s.write_all(b"ping".to_vec()).await;
///         res
///     });
///     let (stream, _peer) = listener.accept().await?;
///     let (res, buf) = stream.read_exact(Vec::with_capacity(4)).await;
///     res?;
///     assert_eq!(buf, b"ping");
///     client.await??;
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct TcpListener {
    acceptor: Acceptor,
}

impl TcpListener {
    /// Binds to `addr` with the default [`ListenOptions`].
    ///
    /// # Errors
    ///
    /// Resolution, `socket`, `bind` or `listen` failures; or no running loop.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, ListenOptions::default())
    }

    /// Binds to `addr` with `options`.
    ///
    /// # Errors
    ///
    /// As for [`TcpListener::bind`].
    pub fn bind_with(addr: impl ToSocketAddrs, options: ListenOptions) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            match Self::bind_one(&a, options) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    fn bind_one(addr: &SocketAddr, o: ListenOptions) -> io::Result<TcpListener> {
        let fd = bind_fd(addr, o)?;
        Ok(TcpListener {
            acceptor: Acceptor::new(Socket::new(fd)?),
        })
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

    /// Accepts a connection (through a multishot accept kept armed while
    /// the listener lives, when the kernel has it; several tasks may accept
    /// at once).
    ///
    /// When the process is out of fds (`EMFILE`/`ENFILE`), it backs off
    /// (1 ms doubling to 20 ms) and retries instead of spinning or failing,
    /// resuming within about 20 ms once fds are freed.
    ///
    /// A connection that failed before it was accepted (the client reset
    /// or aborted it while it waited in the backlog, a firewall refused it)
    /// is skipped, not returned as an error: one client can never stop a
    /// server's accept loop.
    ///
    /// The accepted socket keeps the kernel's defaults, Nagle's algorithm
    /// included, as std's and tokio's do: a server that answers small
    /// requests should call [`TcpStream::set_nodelay`]`(true)`, or its
    /// replies may wait for the client's delayed ACK (up to 40 ms). The
    /// streams layer ([`crate::io::start_server`], `open_connection`) sets
    /// it, as asyncio's streams do.
    ///
    /// # Errors
    ///
    /// Only failures of the listener itself (e.g. `EBADF`, `EINVAL`: not a
    /// listening socket), and a failure to register the new socket with
    /// the loop.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let (fd, addr) = self.acceptor.accept().await?;
            // Single-shot accept reports the address; multishot accept does
            // not, so ask the socket, which fails once the peer has reset.
            let raw = match addr {
                Some(raw) => raw,
                None => match sys::peer_addr(&fd) {
                    Ok(raw) => raw,
                    // `ENOTCONN`: the client reset before we got here. Any
                    // failure is this connection's, never the listener's.
                    Err(_) => continue,
                },
            };
            let peer = inet_addr(&raw)?;
            return Ok((TcpStream::from_fd(fd)?, peer));
        }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// `getsockname` failures.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet_addr(&sys::local_addr(&self.acceptor.socket)?)
    }

    /// Adopts a listening std socket for the loop running on this thread:
    /// one from systemd socket activation, a `socket2` builder, or a parent
    /// process.
    ///
    /// Blocking or non-blocking, either is fine; ringloop restores the
    /// mode when the listener is handed back by [`TcpListener::into_std`].
    ///
    /// # Errors
    ///
    /// No ringloop loop runs on this thread; the socket is not an
    /// `AF_INET`/`AF_INET6` stream socket, or not listening
    /// (`InvalidInput`, naming what it is). The socket is closed then.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::{TcpListener, TcpStream};
    /// ringloop::run(async {
    ///     // Made elsewhere: here by std, as socket2 or systemd would.
    ///     let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    ///     let listener = TcpListener::from_std(std_listener)?;
    ///     let addr = listener.local_addr()?;
    ///     let client = ringloop::spawn(TcpStream::connect(addr));
    ///     let (_stream, peer) = listener.accept().await?;
    ///     assert_eq!(peer, client.await??.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        let socket = Socket::adopt(OwnedFd::from(listener), &handoff::TCP_LISTENER)?;
        Ok(TcpListener {
            acceptor: Acceptor::new(socket),
        })
    }

    /// Hands the listener back as a std socket (to a child process, or to
    /// code that is not async), with the blocking mode it had when ringloop
    /// got it (blocking, for a listener ringloop bound).
    ///
    /// The first [`accept`](TcpListener::accept) leaves an accept armed in
    /// the kernel; it must end first, with nothing lost. So the first call
    /// after an accept cancels it and refuses with `WouldBlock`; once the
    /// loop has turned, connections the kernel accepted for it meanwhile
    /// are refused with `ResourceBusy` until `accept()` returned them; then
    /// the hand-off succeeds. See [`IntoStdError`].
    ///
    /// # Errors
    ///
    /// [`IntoStdError`], with the listener, unharmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    /// use ringloop::net::{TcpListener, TcpStream};
    /// ringloop::run(async {
    ///     let mut listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let client = ringloop::spawn(TcpStream::connect(addr));
    ///     let (_served, _) = listener.accept().await?;
    ///     client.await??;
    ///     let std_listener = loop {
    ///         match listener.into_std() {
    ///             Ok(l) => break l,
    ///             Err(e) if e.error().kind() == ErrorKind::WouldBlock => {
    ///                 listener = e.into_inner();
    ///                 ringloop::sleep(Duration::from_millis(1)).await;
    ///             }
    ///             Err(e) if e.error().kind() == ErrorKind::ResourceBusy => {
    ///                 listener = e.into_inner();
    ///                 let (_stream, _) = listener.accept().await?; // serve it
    ///             }
    ///             Err(e) => return Err(e.into()),
    ///         }
    ///     };
    ///     assert_eq!(std_listener.local_addr()?, addr);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn into_std(self) -> Result<std::net::TcpListener, IntoStdError<TcpListener>> {
        const WHAT: &str = "TcpListener::into_std";
        if let Err(e) = self.acceptor.prepare_handoff(WHAT) {
            return Err(IntoStdError::new(e, self));
        }
        match self.acceptor.into_socket().into_fd(WHAT) {
            Ok(fd) => Ok(fd.into()),
            Err((e, socket)) => Err(IntoStdError::new(
                e,
                TcpListener {
                    acceptor: Acceptor::new(socket),
                },
            )),
        }
    }
}

fd_traits!(TcpListener, std::net::TcpListener, l => l.acceptor.socket);

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.acceptor.socket.as_raw_fd()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.as_raw_fd())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

/// A TCP connection. Reads and writes take owned buffers and give them back
/// with the result: `let (res, buf) = stream.read(buf).await;`.
///
/// Dropping a read future never loses bytes: what the kernel delivered
/// after the drop is returned by the next read.
pub struct TcpStream {
    socket: Socket,
}

impl TcpStream {
    pub(crate) fn into_socket(self) -> Socket {
        self.socket
    }

    pub(crate) fn from_fd(fd: OwnedFd) -> io::Result<TcpStream> {
        Ok(TcpStream {
            socket: Socket::new(fd)?,
        })
    }

    /// Connects to `addr` (each resolved address in turn).
    ///
    /// # Errors
    ///
    /// The last connection error, or no running loop.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(addr, None).await
    }

    /// Connects with a deadline enforced by the kernel
    /// (`IORING_OP_LINK_TIMEOUT`); `TimedOut` when it passes.
    ///
    /// A zero timeout gives up at once without trying (as
    /// [`wait_for`](crate::wait_for) with a zero timeout does not start a
    /// future; std's `connect_timeout` rejects a zero timeout as invalid
    /// instead). A timeout of centuries, up to `Duration::MAX`, waits for
    /// the connection as long as the kernel's own TCP retries do.
    ///
    /// # Errors
    ///
    /// As for [`TcpStream::connect`]; `TimedOut` when the timeout passes.
    pub async fn connect_timeout(
        addr: impl ToSocketAddrs,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            crate::runtime::current_driver()?;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect: a zero timeout passed before connecting",
            ));
        }
        Self::connect_inner(addr, Some(timeout)).await
    }

    async fn connect_inner(
        addr: impl ToSocketAddrs,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let driver = crate::runtime::current_driver()?;
        let mut last = None;
        for a in resolve(addr)? {
            let fd = sys::socket(domain(&a), libc::SOCK_STREAM)?;
            let op = Connect::new(fd, RawAddr::from_std(&a));
            let res = match timeout {
                None => Op::submit(&driver, op)?.await,
                Some(t) => Op::submit_with_timeout(&driver, op, t)?.await,
            };
            match res {
                Ok(fd) => return TcpStream::from_fd(fd),
                Err(e) => last = Some(io::Error::new(e.kind(), format!("connect {a}: {e}"))),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// `getpeername` failures.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        inet_addr(&sys::peer_addr(&self.socket)?)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// `getsockname` failures.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet_addr(&sys::local_addr(&self.socket)?)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// # Errors
    ///
    /// `setsockopt` failures.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        sys::setsockopt_int(
            &self.socket,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            i32::from(nodelay),
        )
    }

    /// Writes once from `buf`'s initialised bytes, like
    /// [`TcpStream::write`], but asks the kernel not to copy them
    /// (`IORING_OP_SEND_ZC`, Linux 6.0+): it sends from `buf`'s pages and
    /// hands `buf` back only once it has let go of them, which for TCP is
    /// when the peer has acknowledged the bytes. May write fewer bytes
    /// than given.
    ///
    /// So, unlike `write`, which returns once the bytes are in the socket's
    /// send buffer, this waits about a round trip per call, and waits for
    /// as long as a peer that stopped reading keeps its window closed.
    ///
    /// Not used by `write`/`write_all`: measured here over loopback (where
    /// the kernel copies anyway) it lost at every size, 0.03x the
    /// throughput of `write_all` at 4 KiB, 0.31x at 64 KiB, 0.52x at
    /// 1 MiB, with more CPU per byte (`docs/bench/send_zc.md`). It may pay
    /// for large buffers sent through a NIC that does scatter-gather;
    /// measure before using it.
    ///
    /// On the epoll backend and on kernels without the opcode this is a
    /// plain [`TcpStream::write`] (`MSG_ZEROCOPY` is not used).
    ///
    /// Dropping the future before it completes never frees `buf` under the
    /// kernel: the driver keeps it until the kernel lets go. Bytes the
    /// kernel sent by then are sent, and their count is not reported (as
    /// for any dropped write). A peer that never reads them keeps `buf`
    /// (and the fd) held until it reads or the connection is reset; a loop
    /// closed meanwhile waits up to 10 s for it, then leaks it.
    ///
    /// # Errors
    ///
    /// As for [`TcpStream::write`] (a reset peer: `ConnectionReset` or
    /// `BrokenPipe`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::{TcpListener, TcpStream};
    /// ringloop::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     // The buffer comes back once the peer acknowledged the bytes: a
    ///     // small write, or a peer that reads meanwhile.
    ///     let (res, buf) = client.write_zc(vec![7u8; 4096]).await;
    ///     let n = res?;
    ///     let (res, got) = server.read_exact(Vec::with_capacity(n)).await;
    ///     res?;
    ///     assert_eq!(got, buf[..n]);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn write_zc<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send_zc(buf).await
    }

    /// Writes all of `buf`'s initialised bytes with
    /// [`TcpStream::write_zc`] (zero-copy where the kernel can; see there
    /// for what it costs: it lost to `write_all` at every size measured
    /// over loopback).
    ///
    /// # Errors
    ///
    /// As for [`TcpStream::write_all`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::{TcpListener, TcpStream};
    /// ringloop::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     // The peer must read meanwhile: each send's buffer comes back
    ///     // only once the peer acknowledged its bytes.
    ///     let reader = ringloop::spawn(async move {
    ///         server.read_exact(Vec::with_capacity(256 * 1024)).await
    ///     });
    ///     let (res, _) = client.write_all_zc(vec![1u8; 256 * 1024]).await;
    ///     res?;
    ///     let (res, got) = reader.await.expect("reader task");
    ///     res?;
    ///     assert!(got.iter().all(|&b| b == 1));
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub async fn write_all_zc<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        self.socket.send_all_zc(buf).await
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// `getsockopt` failures.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(sys::getsockopt_int(&self.socket, libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
    }

    /// Adopts a connected std stream (from a `socket2` builder, a parent
    /// process, or code that connected it itself) for the loop running on
    /// this thread. Blocking or non-blocking, either is fine; the mode is
    /// restored by [`TcpStream::into_std`]. A stream that is not connected
    /// (yet) is accepted; its reads and writes fail until it is.
    ///
    /// # Errors
    ///
    /// No ringloop loop runs on this thread; the socket is not an
    /// `AF_INET`/`AF_INET6` stream socket, or is a listening one
    /// (`InvalidInput`). The socket is closed then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use ringloop::net::TcpStream;
    /// ringloop::run(async {
    ///     let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    ///     let mut peer = std::net::TcpStream::connect(std_listener.local_addr()?)?;
    ///     let (accepted, _) = std_listener.accept()?;
    ///     let stream = TcpStream::from_std(accepted)?;
    ///     peer.write_all(b"hi")?;
    ///     let (res, buf) = stream.read_exact(Vec::with_capacity(2)).await;
    ///     res?;
    ///     assert_eq!(buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            socket: Socket::adopt(OwnedFd::from(stream), &handoff::TCP_STREAM)?,
        })
    }

    /// Hands the connection over as a std stream, with the blocking mode
    /// it had when ringloop got it (blocking, for streams ringloop made).
    /// What the peer sends next is read by the std stream; nothing ringloop
    /// received is lost, since the hand-off is refused while ringloop holds
    /// any of it.
    ///
    /// Refused (see [`IntoStdError`]) while an operation is still in flight
    /// on the stream (`WouldBlock`: a read or write whose future was
    /// dropped, say by a timeout, stays in the kernel until its
    /// cancellation lands, a loop turn later), or while ringloop keeps
    /// bytes or an error such a read received (`ResourceBusy`: read them
    /// first).
    ///
    /// # Errors
    ///
    /// [`IntoStdError`], with the stream, unharmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use ringloop::net::{TcpListener, TcpStream};
    /// ringloop::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     let (res, _) = client.write_all(b"later".to_vec()).await;
    ///     res?;
    ///     let mut std_server = server.into_std()?;
    ///     let mut buf = [0; 5];
    ///     std_server.read_exact(&mut buf)?; // blocking std I/O from here
    ///     assert_eq!(&buf, b"later");
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn into_std(self) -> Result<std::net::TcpStream, IntoStdError<TcpStream>> {
        match self.socket.into_fd("TcpStream::into_std") {
            Ok(fd) => Ok(fd.into()),
            Err((e, socket)) => Err(IntoStdError::new(e, TcpStream { socket })),
        }
    }

    super::stream_io_methods!();
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

fd_traits!(TcpStream, std::net::TcpStream, s => s.socket);

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.as_raw_fd())
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

/// The read half of a stream split by `into_split` (TCP or Unix).
#[derive(Debug)]
pub struct OwnedReadHalf {
    pub(crate) socket: Socket,
}

impl OwnedReadHalf {
    /// See [`TcpStream::read`].
    pub async fn read<B: IoBufMut>(&mut self, buf: B) -> (io::Result<usize>, B) {
        self.socket.recv(buf).await
    }

    /// See [`TcpStream::read_exact`].
    pub async fn read_exact<B: IoBufMut>(&mut self, buf: B) -> (io::Result<()>, B) {
        self.socket.recv_exact(buf).await
    }

    /// See [`TcpStream::recv_stream`].
    pub fn recv_stream(&self, group: &super::BufGroup) -> super::RecvStream {
        super::RecvStream::new(self.socket.clone(), group)
    }
}

/// The write half of a stream split by `into_split` (TCP or Unix).
#[derive(Debug)]
pub struct OwnedWriteHalf {
    pub(crate) socket: Socket,
    pub(crate) shutdown_on_drop: bool,
}

impl OwnedWriteHalf {
    /// See [`TcpStream::write`].
    pub async fn write<B: IoBuf>(&mut self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send(buf).await
    }

    /// See [`TcpStream::write_all`].
    pub async fn write_all<B: IoBuf>(&mut self, buf: B) -> (io::Result<()>, B) {
        self.socket.send_all(buf).await
    }

    /// Shuts down the write side now (sends FIN).
    ///
    /// # Errors
    ///
    /// `shutdown(2)` failures.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.shutdown_on_drop = false;
        self.socket.shutdown(Shutdown::Write).await
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            use crate::driver::op::shutdown::Shutdown as ShutdownOp;
            crate::driver::op::submit_detached(
                self.socket.driver(),
                ShutdownOp::new(self.socket.clone(), Shutdown::Write),
            );
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Socket").field(&self.as_raw_fd()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::os::fd::AsRawFd;

    use super::TcpListener;

    /// Connects and resets at once (SO_LINGER 0).
    fn reset_client(addr: std::net::SocketAddr) {
        let s = std::net::TcpStream::connect(addr).unwrap();
        let lg = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `lg` is a valid `linger` for the call's duration and the
        // size passed is its size; the fd is `s`'s, open here.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&lg as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
    }

    /// A failed connection never fails the listener, on the single-shot
    /// path too (kernels without multishot accept): the
    /// accept reports the address itself, so a connection reset in the
    /// backlog comes back as a stream whose reads fail or end, never as an
    /// accept error; the good client after the resets is served.
    #[test]
    fn r1_single_shot_accept_survives_reset_clients() {
        crate::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.acceptor.force_single_shot();
            let addr = listener.local_addr().unwrap();
            for _ in 0..100 {
                reset_client(addr);
            }
            let mut good = std::net::TcpStream::connect(addr).unwrap();
            good.write_all(b"ping").unwrap();
            good.shutdown(Shutdown::Write).unwrap();
            let mut served = false;
            for _ in 0..=100 {
                let (stream, peer) = listener.accept().await.expect("accept");
                assert!(peer.ip().is_loopback(), "{peer}");
                let (res, buf) = stream.read(Vec::with_capacity(16)).await;
                if let Ok(4) = res {
                    assert_eq!(buf, b"ping");
                    let (res, _) = stream.write_all(buf).await;
                    res.unwrap();
                    served = true;
                    break;
                }
            }
            assert!(served, "the good client was never accepted");
            // On a thread: the server's close is submitted by this loop.
            let back = crate::to_thread(move || {
                let mut back = Vec::new();
                good.read_to_end(&mut back).map(|_| back)
            })
            .await
            .unwrap()
            .unwrap();
            assert_eq!(back, b"ping");
        })
        .unwrap();
    }
}
