//! The listener types a [`CoresListener`](super::CoresListener) can spread,
//! behind a sealed trait: what distribution needs of each (adopt a socket,
//! accept, accept an fd for another core, wrap a handed fd).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use crate::net::tcp::{TcpListener, TcpStream, inet_addr};
use crate::net::unix::{UnixAddr, UnixListener, UnixStream};
use crate::sys;

/// A listener type a [`CoresListener`](super::CoresListener) can spread: [`TcpListener`] and
/// [`UnixListener`]. Sealed.
pub trait Listener: sealed::Sealed {}

impl Listener for TcpListener {}
impl Listener for UnixListener {}

mod sealed {
    use std::future::Future;
    use std::io;
    use std::os::fd::OwnedFd;

    /// What distribution needs of a listener type.
    pub trait Sealed: Sized + 'static {
        /// The connection type `accept` gives.
        type Stream: 'static;
        /// The peer address type `accept` gives.
        type Addr: Clone + Send + Sync + 'static;
        /// The type's name, for errors.
        const NAME: &'static str;
        /// Adopts a listening socket for the loop running on this thread.
        fn adopt(fd: OwnedFd) -> io::Result<Self>;
        /// Accepts with single-shot accepts (see the shared mode's docs).
        fn single_shot(&self);
        /// The listener's own accept.
        fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, Self::Addr)>>;
        /// An accept whose fd goes to another core.
        fn accept_fd(&self) -> impl Future<Output = io::Result<OwnedFd>>;
        /// A connection accepted on another core, for this thread's loop;
        /// `None` if it is gone already (its peer address cannot be had).
        fn handed(fd: OwnedFd) -> io::Result<Option<(Self::Stream, Self::Addr)>>;
    }
}

impl sealed::Sealed for TcpListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;
    const NAME: &'static str = "TcpListener";

    fn adopt(fd: OwnedFd) -> io::Result<Self> {
        TcpListener::from_std(fd.into())
    }

    fn single_shot(&self) {
        TcpListener::single_shot(self);
    }

    fn accept(&self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> {
        TcpListener::accept(self)
    }

    fn accept_fd(&self) -> impl Future<Output = io::Result<OwnedFd>> {
        TcpListener::accept_fd(self)
    }

    fn handed(fd: OwnedFd) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        // As `TcpListener::accept` after a multishot accept: the peer is
        // asked for, and a connection already reset is skipped.
        let Ok(raw) = sys::peer_addr(&fd) else {
            return Ok(None);
        };
        let peer = inet_addr(&raw)?;
        Ok(Some((TcpStream::from_fd(fd)?, peer)))
    }
}

impl sealed::Sealed for UnixListener {
    type Stream = UnixStream;
    type Addr = UnixAddr;
    const NAME: &'static str = "UnixListener";

    fn adopt(fd: OwnedFd) -> io::Result<Self> {
        UnixListener::from_std(fd.into())
    }

    fn single_shot(&self) {
        UnixListener::single_shot(self);
    }

    fn accept(&self) -> impl Future<Output = io::Result<(UnixStream, UnixAddr)>> {
        UnixListener::accept(self)
    }

    fn accept_fd(&self) -> impl Future<Output = io::Result<OwnedFd>> {
        UnixListener::accept_fd(self)
    }

    fn handed(fd: OwnedFd) -> io::Result<Option<(UnixStream, UnixAddr)>> {
        // As `UnixListener::accept`: a peer that already closed is still a
        // connection (what it sent can be read), with an unnamed address.
        let addr = sys::peer_addr(&fd)
            .and_then(|raw| UnixAddr::from_raw(&raw))
            .unwrap_or_else(|_| UnixAddr::from_abstract_name(b""));
        Ok(Some((UnixStream::from_fd(fd)?, addr)))
    }
}
