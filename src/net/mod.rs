//! Sockets over io_uring: TCP (more to come: UDP and Unix sockets).
//!
//! Sockets belong to the loop (thread) that created them and must be
//! created inside a running loop. Their fds are closed through the ring once
//! the socket and every operation still using it are gone.

pub(crate) mod socket;
mod tcp;

pub use tcp::{ListenOptions, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
