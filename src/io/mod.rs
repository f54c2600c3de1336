//! Owned buffers for completion I/O.
//!
//! The kernel writes a read's buffer after the call that started the read has
//! returned, so ringloop's I/O takes buffers *by value* and hands them back
//! with the result: `let (res, buf) = op.await;`. [`IoBuf`] and [`IoBufMut`]
//! describe the buffers that can be lent to the kernel this way.
//!
//! On top of the sockets, asyncio's streams: [`open_connection`],
//! [`start_server`], [`StreamReader`] and [`StreamWriter`].

mod buf;
mod compat;
pub(crate) mod kept;
mod slice;
mod stream;

pub use buf::{IoBuf, IoBufMut};
pub(crate) use buf::{copy_into, kernel_written};
pub use compat::Compat;
pub use slice::Slice;
pub use stream::{
    DEFAULT_LIMIT, IncompleteReadError, LimitOverrunError, Server, StreamError, StreamReader,
    StreamWriter, open_connection, start_server,
};
