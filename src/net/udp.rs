//! [`UdpSocket`].

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::handoff::{self, IntoStdError, fd_traits};
use super::socket::Socket;
use super::tcp::{inet_addr, resolve};
use crate::io::{IoBuf, IoBufMut};
use crate::sys::{self, RawAddr};

/// A UDP socket. Receives take owned buffers and give them back; a
/// datagram that arrives after a receive's future was dropped is kept,
/// whole, for the next receive.
///
/// # Examples
///
/// ```
/// use ringloop::net::UdpSocket;
/// ringloop::run(async {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     let (res, _) = a.send_to(b"ping".to_vec(), b.local_addr()?).await;
///     res?;
///     let (res, buf) = b.recv_from(Vec::with_capacity(64)).await;
///     let (n, from) = res?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct UdpSocket {
    socket: Socket,
}

impl UdpSocket {
    /// Binds to `addr` (port 0: any free port).
    ///
    /// # Errors
    ///
    /// Resolution, `socket` or `bind` failures; or no running loop.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve(addr)? {
            let domain = if a.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            let fd = sys::socket(domain, libc::SOCK_DGRAM)?;
            match sys::bind(&fd, &RawAddr::from_std(&a)) {
                Ok(()) => {
                    return Ok(UdpSocket {
                        socket: Socket::new(fd)?,
                    });
                }
                Err(e) => last = Some(io::Error::new(e.kind(), format!("bind {a}: {e}"))),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sends `buf`'s initialised bytes as one datagram to `target`.
    pub async fn send_to<B: IoBuf>(
        &self,
        buf: B,
        target: impl ToSocketAddrs,
    ) -> (io::Result<usize>, B) {
        let to = match resolve(target) {
            Ok(a) => RawAddr::from_std(&a[0]),
            Err(e) => return (Err(e), buf),
        };
        self.socket.send_to(buf, to).await
    }

    /// Receives one datagram into `buf`'s storage (truncated if longer);
    /// returns its length and source.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        let (res, buf) = self.socket.recv_from(buf).await;
        (res.and_then(|(n, a)| Ok((n, inet_addr(&a)?))), buf)
    }

    /// Sets the default peer: [`UdpSocket::send`] goes there and only its
    /// datagrams are received.
    ///
    /// # Errors
    ///
    /// Resolution or `connect(2)` failures.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let a = resolve(addr)?[0];
        connect_dgram(&self.socket, RawAddr::from_std(&a)).await
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

    /// The local address.
    ///
    /// # Errors
    ///
    /// `getsockname` failures.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet_addr(&sys::local_addr(&self.socket)?)
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` if [`UdpSocket::connect`] was not called.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        inet_addr(&sys::peer_addr(&self.socket)?)
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    ///
    /// `setsockopt` failures.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        sys::setsockopt_int(
            &self.socket,
            libc::SOL_SOCKET,
            libc::SO_BROADCAST,
            i32::from(on),
        )
    }

    /// Adopts a std UDP socket (bound or not, connected or not) for the
    /// loop running on this thread. Blocking or non-blocking, either is
    /// fine; the mode is restored by [`UdpSocket::into_std`].
    ///
    /// # Errors
    ///
    /// No ringloop loop runs on this thread; the socket is not an
    /// `AF_INET`/`AF_INET6` datagram socket (`InvalidInput`). The socket is
    /// closed then.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::UdpSocket;
    /// ringloop::run(async {
    ///     let socket = UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    ///     let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    ///     peer.send_to(b"ping", socket.local_addr()?)?;
    ///     let (res, buf) = socket.recv_from(Vec::with_capacity(16)).await;
    ///     let (n, from) = res?;
    ///     assert_eq!((&buf[..n], from), (&b"ping"[..], peer.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            socket: Socket::adopt(OwnedFd::from(socket), &handoff::UDP_SOCKET)?,
        })
    }

    /// Hands the socket over as a std socket, with the blocking mode it
    /// had when ringloop got it (blocking, for sockets ringloop made).
    ///
    /// Refused (see [`IntoStdError`]) while an operation is still in flight
    /// on the socket (`WouldBlock`: a receive whose future was dropped
    /// stays in the kernel until its cancellation lands, a loop turn
    /// later), or while ringloop keeps a datagram such a receive got
    /// (`ResourceBusy`: receive it first). No datagram is lost.
    ///
    /// # Errors
    ///
    /// [`IntoStdError`], with the socket, unharmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::net::UdpSocket;
    /// ringloop::run(async {
    ///     let socket = UdpSocket::bind("127.0.0.1:0")?;
    ///     let addr = socket.local_addr()?;
    ///     let std_socket = socket.into_std()?;
    ///     assert_eq!(std_socket.local_addr()?, addr);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn into_std(self) -> Result<std::net::UdpSocket, IntoStdError<UdpSocket>> {
        match self.socket.into_fd("UdpSocket::into_std") {
            Ok(fd) => Ok(fd.into()),
            Err((e, socket)) => Err(IntoStdError::new(e, UdpSocket { socket })),
        }
    }
}

fd_traits!(UdpSocket, std::net::UdpSocket, s => s.socket);

/// `connect(2)` of a datagram socket through the ring (it does not block).
pub(crate) async fn connect_dgram(socket: &Socket, to: RawAddr) -> io::Result<()> {
    use crate::driver::op::Op;
    use crate::driver::op::connect::ConnectShared;
    Op::submit(socket.driver(), ConnectShared::new(socket.clone(), to))?.await
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.as_raw_fd())
            .field("local", &self.local_addr().ok())
            .finish()
    }
}
