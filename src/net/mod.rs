//! Sockets over io_uring: TCP, UDP and Unix domain sockets.
//!
//! Sockets belong to the loop (thread) that created them and must be
//! created inside a running loop. Reads and writes take owned buffers and
//! give them back with the result. Their fds are closed through the ring
//! once the socket and every operation still using it are gone.
//!
//! Cancellation loses nothing: bytes (or a datagram) the kernel delivered
//! after a read's future was dropped are returned by the next read; a
//! connection accepted after its accept's future was dropped is closed.

pub(crate) mod socket;
mod tcp;
mod udp;
mod unix;

pub use tcp::{ListenOptions, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{IntoUnixAddr, UnixAddr, UnixDatagram, UnixListener, UnixStream};
