//! The channel's errors: the send and receive errors are
//! [`sync::mpsc`](crate::sync::mpsc)'s (the same cases, so code handling
//! one channel's errors handles the other's), plus [`CapacityError`].

use std::error::Error;
use std::fmt;

pub use crate::sync::mpsc::{SendError, TryRecvError, TrySendError};

/// [`channel`](super::channel) was asked for a capacity of 0; a channel
/// must hold at least one value.
///
/// # Examples
///
/// ```
/// let err = ringloop::sync::cross::channel::<u8>(0).unwrap_err();
/// assert_eq!(err.to_string(), "cross::channel capacity must be at least 1, got 0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapacityError;

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cross::channel capacity must be at least 1, got 0")
    }
}

impl Error for CapacityError {}
