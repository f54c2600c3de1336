//! Synchronisation primitives for the code shared between threads: the
//! standard library's, or [loom]'s model-checking twins when the crate is
//! built with `RUSTFLAGS="--cfg loom"` (see `scripts/loom.sh`).
//!
//! Only the cross-thread pieces (the remote queue and its wake-up
//! handshake, the blocking pool, the cross-core channel, thread-safe
//! futures) import from here, so a loom model exercises exactly their
//! atomics and locks.
//!
//! [loom]: https://docs.rs/loom

// Each user takes what it needs; not every name is used in every build.
#![allow(unused_imports)]

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning: every critical section in this crate
/// leaves its data consistent before it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
