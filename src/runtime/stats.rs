//! [`ring_stats`]: the driver counters ([`RingStats`], defined with the
//! driver) of the loop running on this thread.

use std::io;

use super::current_driver;
pub use crate::driver::RingStats;

/// The ring counters of the loop running on this thread.
///
/// # Errors
///
/// When no loop runs on this thread.
pub fn ring_stats() -> io::Result<RingStats> {
    Ok(current_driver()?.borrow_mut().ring_stats())
}
