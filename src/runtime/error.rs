//! [`RuntimeError`]: misuse of an event loop.

use std::fmt;
use std::io;

/// Why an event loop refused a call (asyncio raises `RuntimeError` for each).
#[derive(Debug)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The loop was closed; it accepts no more work.
    Closed,
    /// `run_*` was called on a loop that is already running (from inside it).
    AlreadyRunning,
    /// `run_*` was called while another loop runs on this thread.
    AnotherLoopRunning,
    /// A [`crate::Handle`] method that must run on the loop's own thread,
    /// while the loop runs, was called elsewhere.
    NotInLoop,
    /// `stop()` was called before the future given to `run_until_complete`
    /// finished.
    Stopped,
    /// The driver failed (`io_uring_enter`, or `epoll_wait` on the epoll
    /// backend, returned an unexpected error).
    Io(io::Error),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::Closed => f.write_str("Event loop is closed"),
            RuntimeError::AlreadyRunning => f.write_str("This event loop is already running"),
            RuntimeError::AnotherLoopRunning => {
                f.write_str("Cannot run the event loop while another loop is running")
            }
            RuntimeError::NotInLoop => f.write_str(
                "this Handle method must be called on the loop's thread while the loop runs",
            ),
            RuntimeError::Stopped => f.write_str("Event loop stopped before Future completed"),
            RuntimeError::Io(e) => write!(f, "event loop I/O failure: {e}"),
        }
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuntimeError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RuntimeError> for io::Error {
    fn from(e: RuntimeError) -> io::Error {
        match e {
            RuntimeError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}
