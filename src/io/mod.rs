//! Owned buffers for completion I/O.
//!
//! The kernel writes a read's buffer after the call that started the read has
//! returned, so ringloop's I/O takes buffers *by value* and hands them back
//! with the result: `let (res, buf) = op.await;`. [`IoBuf`] and [`IoBufMut`]
//! describe the buffers that can be lent to the kernel this way.
//!
//! For ecosystem code that reads into borrowed buffers (hyper,
//! `futures_io`), [`PollIo`] is the readiness path: poll-based I/O straight
//! between the socket and the caller's memory ([`PollRead`], [`PollWrite`],
//! [`ReadBuf`]).
//!
//! On top of the sockets, asyncio's streams: [`open_connection`],
//! [`start_server`], [`StreamReader`] and [`StreamWriter`].

mod compat;
mod poll;
mod stream;

// Defined in `crate::buf`, below the driver, whose ops own these buffers.
pub use crate::buf::{IoBuf, IoBufMut, ReadBuf, Slice};
pub use crate::net::ready::PollIo;
pub use compat::Compat;
pub use poll::{PollRead, PollWrite};
pub use stream::{
    DEFAULT_LIMIT, IncompleteReadError, LimitOverrunError, Server, StreamError, StreamReader,
    StreamWriter, open_connection, start_server,
};
