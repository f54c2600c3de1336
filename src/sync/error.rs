//! The errors of the primitives and queues (asyncio's exceptions, as small
//! opaque types). The channels' errors live in [`super::oneshot`] and
//! [`super::mpsc`].

use std::error::Error;
use std::fmt;

/// Defines an opaque, field-less error type.
macro_rules! unit_error {
    ($(#[$doc:meta])* $name:ident, $msg:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub(crate) ());

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($msg)
            }
        }

        impl Error for $name {}
    };
}

unit_error!(
    /// [`Lock::try_lock`](super::Lock::try_lock) found the lock held.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = ringloop::sync::Lock::new();
    /// let _held = lock.try_lock().unwrap();
    /// let err = lock.try_lock().unwrap_err();
    /// assert_eq!(err.to_string(), "lock is held");
    /// ```
    TryLockError,
    "lock is held"
);

unit_error!(
    /// [`Semaphore::try_acquire`](super::Semaphore::try_acquire) found no
    /// permit free (or tasks already waiting for one).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::Semaphore::new(0);
    /// let err = sem.try_acquire().unwrap_err();
    /// assert_eq!(err.to_string(), "no permit available");
    /// ```
    TryAcquireError,
    "no permit available"
);

unit_error!(
    /// [`BoundedSemaphore::release`](super::BoundedSemaphore::release) was
    /// called more times than permits were acquired (asyncio's
    /// `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::BoundedSemaphore::new(1);
    /// let err = sem.release().unwrap_err();
    /// assert_eq!(err.to_string(), "BoundedSemaphore released too many times");
    /// ```
    ReleaseError,
    "BoundedSemaphore released too many times"
);

unit_error!(
    /// A [`Barrier`](super::Barrier) was aborted or reset while a task
    /// waited on it, or is broken (asyncio's `BrokenBarrierError`).
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let barrier = ringloop::sync::Barrier::new(2);
    ///     barrier.abort();
    ///     let err = barrier.wait().await.unwrap_err();
    ///     assert_eq!(err.to_string(), "barrier is broken");
    /// })
    /// .unwrap();
    /// ```
    BrokenBarrierError,
    "barrier is broken"
);

unit_error!(
    /// [`Queue::task_done`](super::Queue::task_done) was called more times
    /// than items were put (asyncio's `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::Queue::<u8>::new(0);
    /// let err = q.task_done().unwrap_err();
    /// assert_eq!(err.to_string(), "task_done() called too many times");
    /// ```
    TaskDoneError,
    "task_done() called too many times"
);

unit_error!(
    /// [`Queue::get_nowait`](super::Queue::get_nowait) found no item to
    /// take (asyncio's `QueueEmpty`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::{Queue, TryGetError};
    /// let q = Queue::<u8>::new(0);
    /// let Err(TryGetError::Empty(e)) = q.get_nowait() else { panic!() };
    /// assert_eq!(e.to_string(), "queue is empty");
    /// ```
    QueueEmpty,
    "queue is empty"
);

/// [`Queue::put_nowait`](super::Queue::put_nowait) found no room (asyncio's
/// `QueueFull`); carries the item back.
///
/// # Examples
///
/// ```
/// use ringloop::sync::{Queue, TryPutError};
/// let q = Queue::new(1);
/// q.put_nowait("a").unwrap();
/// let Err(TryPutError::Full(e)) = q.put_nowait("b") else { panic!() };
/// assert_eq!(e.to_string(), "queue is full");
/// assert_eq!(e.into_inner(), "b");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct QueueFull<T>(pub(crate) T);

impl<T> QueueFull<T> {
    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// See [`QueueFull`].
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueFull(..)")
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is full")
    }
}

impl<T> Error for QueueFull<T> {}

/// The queue was shut down (asyncio 3.13's `QueueShutDown`): a put after
/// [`Queue::shutdown`](super::Queue::shutdown) carries its item back
/// (`QueueShutDown<T>`); a get once the queue is shut down and drained has
/// none (`QueueShutDown<()>`).
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let q = ringloop::sync::Queue::new(0);
///     q.put(1).await.unwrap();
///     q.shutdown(false);
///     let err = q.put(2).await.unwrap_err();
///     assert_eq!(err.to_string(), "queue is shut down");
///     assert_eq!(err.into_inner(), 2);
///     assert_eq!(q.get().await, Ok(1)); // the items left are drained first
///     assert!(q.get().await.is_err());
/// })
/// .unwrap();
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct QueueShutDown<T = ()>(pub(crate) T);

impl<T> QueueShutDown<T> {
    /// The item that was not put (`()` for a get).
    ///
    /// # Examples
    ///
    /// See [`QueueShutDown`].
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueShutDown(..)")
    }
}

impl<T> fmt::Display for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is shut down")
    }
}

impl<T> Error for QueueShutDown<T> {}

/// Why [`Queue::get_nowait`](super::Queue::get_nowait) returned no item.
///
/// # Examples
///
/// ```
/// use ringloop::sync::{Queue, TryGetError};
/// let q = Queue::<u8>::new(0);
/// assert!(matches!(q.get_nowait(), Err(TryGetError::Empty(_))));
/// q.shutdown(false);
/// assert!(matches!(q.get_nowait(), Err(TryGetError::ShutDown(_))));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TryGetError {
    /// No item to take now.
    Empty(QueueEmpty),
    /// No item, and the queue is shut down: none will come.
    ShutDown(QueueShutDown),
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty(e) => e.fmt(f),
            TryGetError::ShutDown(e) => e.fmt(f),
        }
    }
}

impl Error for TryGetError {}

/// Why [`Queue::put_nowait`](super::Queue::put_nowait) did not put its item
/// (which it carries back).
///
/// # Examples
///
/// ```
/// use ringloop::sync::{Queue, TryPutError};
/// let q = Queue::new(1);
/// q.put_nowait(1).unwrap();
/// assert!(matches!(q.put_nowait(2), Err(TryPutError::Full(_))));
/// q.shutdown(false);
/// let err = q.put_nowait(3).unwrap_err();
/// assert!(matches!(err, TryPutError::ShutDown(_)));
/// assert_eq!(err.into_inner(), 3);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// No room now.
    Full(QueueFull<T>),
    /// The queue is shut down.
    ShutDown(QueueShutDown<T>),
}

impl<T> TryPutError<T> {
    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// See [`TryPutError`].
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(e) => e.0,
            TryPutError::ShutDown(e) => e.0,
        }
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(e) => f.debug_tuple("Full").field(e).finish(),
            TryPutError::ShutDown(e) => f.debug_tuple("ShutDown").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(e) => e.fmt(f),
            TryPutError::ShutDown(e) => e.fmt(f),
        }
    }
}

impl<T> Error for TryPutError<T> {}
