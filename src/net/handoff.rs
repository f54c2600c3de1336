//! Socket hand-off: sockets in from `std` (systemd socket activation, a
//! `socket2` builder, a parent process) and out to `std` or a raw fd.
//!
//! In (`from_std`, `FromRawFd`): the fd must be a socket of the type's
//! family and kind (a listening one for listeners, never a listening one
//! for streams), checked with `getsockopt` (`SO_DOMAIN`, `SO_TYPE`,
//! `SO_ACCEPTCONN`), and a loop must run on this thread. Blocking and
//! non-blocking sockets are both fine: the io_uring backend's ops work on
//! either, and the epoll backend sets what it needs itself. Whatever the
//! driver still knew of an older fd with the same number is dropped
//! (`Driver::forget_fd`), and `O_NONBLOCK` is recorded as it was.
//!
//! Out (`into_std`, `IntoRawFd`): the fd leaves without a `CLOSE` through
//! the driver, so it may go only when nothing of ringloop's uses it or
//! holds data from it:
//!
//! - no op in flight on it: one whose future was dropped stays in the
//!   kernel until its cancellation lands, and with the fd gone the epoll
//!   backend could run it on the next fd with that number
//!   (`WouldBlock`: let the loop turn, then try again);
//! - nothing kept: bytes, a datagram or an error a dropped read received
//!   are ringloop's alone, and the std socket would never see them
//!   (`ResourceBusy`: read them first);
//! - for a listener, no armed multishot accept: the first attempt cancels
//!   it (`WouldBlock`), and connections it accepted before the
//!   cancellation landed are kept for `accept()` (`ResourceBusy` until it
//!   took them), so a hand-off loses no connection.
//!
//! A refused socket comes back in [`IntoStdError`], unharmed. A handed-off
//! fd is dropped from the driver (`Driver::forget_fd`: the epoll backend's
//! registration for that fd number must not outlive it) and gets back the
//! `O_NONBLOCK` it had when ringloop got it (none for sockets ringloop
//! made, as std's).
//!
//! `FromRawFd::from_raw_fd` has this crate's one `unsafe` block outside
//! `sys`, `driver` and `task`: the trait's own contract, passed to std's.

use std::error::Error;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::sys;

/// What a `from_std` expects of its socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kind {
    /// The ringloop type, for errors.
    pub(crate) name: &'static str,
    /// `AF_UNIX`; else `AF_INET` or `AF_INET6`.
    pub(crate) unix: bool,
    /// `SOCK_STREAM` or `SOCK_DGRAM`.
    pub(crate) ty: i32,
    /// A listener (`SO_ACCEPTCONN` set); streams must not be listening.
    pub(crate) listening: bool,
}

pub(crate) const TCP_LISTENER: Kind = Kind {
    name: "TcpListener",
    unix: false,
    ty: libc::SOCK_STREAM,
    listening: true,
};
pub(crate) const TCP_STREAM: Kind = Kind {
    name: "TcpStream",
    unix: false,
    ty: libc::SOCK_STREAM,
    listening: false,
};
pub(crate) const UDP_SOCKET: Kind = Kind {
    name: "UdpSocket",
    unix: false,
    ty: libc::SOCK_DGRAM,
    listening: false,
};
pub(crate) const UNIX_LISTENER: Kind = Kind {
    name: "UnixListener",
    unix: true,
    ty: libc::SOCK_STREAM,
    listening: true,
};
pub(crate) const UNIX_STREAM: Kind = Kind {
    name: "UnixStream",
    unix: true,
    ty: libc::SOCK_STREAM,
    listening: false,
};
pub(crate) const UNIX_DATAGRAM: Kind = Kind {
    name: "UnixDatagram",
    unix: true,
    ty: libc::SOCK_DGRAM,
    listening: false,
};

impl Kind {
    /// Checks that `fd` is a socket of this kind.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming what `fd` is instead; a `getsockopt` failure
    /// other than `ENOTSOCK` as it is (e.g. `EBADF`).
    pub(crate) fn check(&self, fd: &OwnedFd) -> io::Result<()> {
        let n = fd.as_raw_fd();
        let name = self.name;
        let opt = |opt| {
            sys::getsockopt_int(fd, libc::SOL_SOCKET, opt).map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOTSOCK) {
                    invalid(format!("fd {n} is not a socket (a {name} needs one)"))
                } else {
                    io::Error::new(e.kind(), format!("{name}: fd {n}: {e}"))
                }
            })
        };
        let ty = opt(libc::SO_TYPE)?;
        let family = opt(libc::SO_DOMAIN)?;
        let family_ok = if self.unix {
            family == libc::AF_UNIX
        } else {
            family == libc::AF_INET || family == libc::AF_INET6
        };
        if !family_ok || ty != self.ty {
            let want = if self.unix { "AF_UNIX" } else { "AF_INET/6" };
            return Err(invalid(format!(
                "fd {n} is a {} {} socket, not the {want} {} socket a {name} needs",
                family_name(family),
                type_name(ty),
                type_name(self.ty),
            )));
        }
        if self.ty == libc::SOCK_STREAM {
            let listening = opt(libc::SO_ACCEPTCONN)? != 0;
            if self.listening && !listening {
                return Err(invalid(format!(
                    "fd {n} is not listening (a {name} needs a socket after listen(2))"
                )));
            }
            if !self.listening && listening {
                let listener = if self.unix {
                    "UnixListener"
                } else {
                    "TcpListener"
                };
                return Err(invalid(format!(
                    "fd {n} is a listening socket, not a connection (use {listener})"
                )));
            }
        }
        Ok(())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn family_name(family: i32) -> String {
    match family {
        libc::AF_INET => "AF_INET".into(),
        libc::AF_INET6 => "AF_INET6".into(),
        libc::AF_UNIX => "AF_UNIX".into(),
        libc::AF_NETLINK => "AF_NETLINK".into(),
        libc::AF_PACKET => "AF_PACKET".into(),
        other => format!("family-{other}"),
    }
}

fn type_name(ty: i32) -> String {
    match ty {
        libc::SOCK_STREAM => "SOCK_STREAM".into(),
        libc::SOCK_DGRAM => "SOCK_DGRAM".into(),
        libc::SOCK_SEQPACKET => "SOCK_SEQPACKET".into(),
        libc::SOCK_RAW => "SOCK_RAW".into(),
        other => format!("type-{other}"),
    }
}

/// A socket `into_std` would not hand off yet, given back with the reason.
///
/// The reason's kind says what to do:
///
/// - [`io::ErrorKind::WouldBlock`]: an operation is still in flight on the
///   socket (one whose future was dropped stays in the kernel until its
///   cancellation lands; for a listener, the accept that `accept()` keeps
///   armed, which this attempt cancelled). Let the loop run (a
///   cancellation lands within a loop turn or two, but may take a real
///   wait: a [`sleep`](crate::sleep) of a millisecond, rather than a
///   [`yield_now`](crate::yield_now) spin) and try again.
/// - [`io::ErrorKind::ResourceBusy`]: ringloop holds data from the socket
///   that the std socket would never see: bytes, a datagram or an error a
///   dropped read received, or connections a listener accepted before the
///   hand-off. Read (or `accept()`) them, then try again.
///
/// `?` turns it into its [`io::Error`] (dropping the socket, which closes
/// it); [`IntoStdError::into_inner`] gives the socket back.
///
/// # Examples
///
/// ```
/// use std::io::ErrorKind;
/// use ringloop::net::TcpStream;
/// # ringloop::run(async {
/// # let listener = ringloop::net::TcpListener::bind("127.0.0.1:0")?;
/// # let addr = listener.local_addr()?;
/// let mut stream = TcpStream::connect(addr).await?;
/// // Retry while an operation is still in flight; a refusal for kept
/// // data needs a read first.
/// let std_stream = loop {
///     match stream.into_std() {
///         Ok(s) => break s,
///         Err(e) if e.error().kind() == ErrorKind::WouldBlock => {
///             stream = e.into_inner();
///             ringloop::sleep(std::time::Duration::from_millis(1)).await;
///         }
///         Err(e) => return Err(e.into()), // ResourceBusy: read it first
///     }
/// };
/// # drop(std_stream);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap().unwrap();
/// ```
pub struct IntoStdError<T> {
    error: io::Error,
    /// Boxed: a listener is large, and a refusal is the rare path.
    socket: Box<T>,
}

impl<T> IntoStdError<T> {
    pub(crate) fn new(error: io::Error, socket: T) -> IntoStdError<T> {
        IntoStdError {
            error,
            socket: Box::new(socket),
        }
    }

    /// Why the hand-off was refused.
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// The socket, unharmed, for another try or further use.
    pub fn into_inner(self) -> T {
        *self.socket
    }

    /// The reason and the socket.
    pub fn into_parts(self) -> (io::Error, T) {
        (self.error, *self.socket)
    }
}

impl<T> fmt::Debug for IntoStdError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoStdError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for IntoStdError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<T> Error for IntoStdError<T> {}

impl<T> From<IntoStdError<T>> for io::Error {
    fn from(e: IntoStdError<T>) -> io::Error {
        e.error
    }
}

/// `AsFd`, `FromRawFd` and `IntoRawFd` for a socket type with `from_std`
/// and `into_std`; `$this => $socket` names its [`Socket`](super::socket::Socket).
macro_rules! fd_traits {
    ($ty:ident, $std:ty, $this:ident => $socket:expr) => {
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                let $this = self;
                $socket.as_fd()
            }
        }

        impl std::os::fd::FromRawFd for $ty {
            #[doc = concat!(
                        "Adopts `fd` for the loop running on this thread, as [`",
                        stringify!($ty), "::from_std`] does.\n\n",
                        "# Safety\n\n",
                        "`fd` must be an open file descriptor that the caller owns and ",
                        "gives up: nothing else may use or close it afterwards.\n\n",
                        "# Panics\n\n",
                        "Where [`", stringify!($ty), "::from_std`] returns an error: ",
                        "no ringloop loop runs on this thread, or `fd` is not a socket ",
                        "of the right family and kind. `fd` is closed then. Use `from_std` ",
                        "(with `", stringify!($std), "::from_raw_fd`) to get the error instead."
                    )]
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $ty {
                // SAFETY: this function's own contract: `fd` is open, owned
                // by the caller and given up to us.
                let socket = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                $ty::from_std(socket)
                    .unwrap_or_else(|e| panic!(concat!(stringify!($ty), "::from_raw_fd: {}"), e))
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            #[doc = concat!(
                        "Gives the fd up, as [`", stringify!($ty), "::into_std`] does: ",
                        "the caller owns it afterwards.\n\n",
                        "# Panics\n\n",
                        "Where `into_std` would refuse: an operation is still in flight ",
                        "on the socket, or ringloop holds data from it (see [`IntoStdError`](",
                        "crate::net::IntoStdError)). The socket is closed then. Use `into_std` ",
                        "to get the socket back instead."
                    )]
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                match self.into_std() {
                    Ok(socket) => std::os::fd::IntoRawFd::into_raw_fd(socket),
                    Err(e) => panic!(concat!(stringify!($ty), "::into_raw_fd: {}"), e),
                }
            }
        }
    };
}
pub(crate) use fd_traits;
