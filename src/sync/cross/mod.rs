//! A bounded multi-producer, single-consumer channel between threads: from
//! one loop to another loop on another core, or to and from plain threads.
//!
//! Unlike [`sync::mpsc`](crate::sync::mpsc), which serves the tasks of one
//! loop, this channel is `Send` and `Sync` (for `Send` values): a [`Sender`]
//! can be cloned into any number of threads, and the [`Receiver`] can be
//! moved to the thread that consumes. It has tokio's API and closing
//! rules: when every [`Sender`] is gone, [`Receiver::recv`] returns the
//! values still queued, then `None`; when the receiver is gone or
//! [closed](Receiver::close), sends fail and give the value back.
//!
//! Plain threads use the blocking forms, [`Sender::send_blocking`] and
//! [`Receiver::recv_blocking`], which sleep on a condition variable (do not
//! call them on a loop's thread: they would block the whole loop).
//!
//! # Waking across threads
//!
//! A waiting task is woken with its own waker, from whatever thread made
//! progress possible. A ringloop waker used on another thread queues the
//! task on its own loop, and writes that loop's eventfd only if the loop is
//! parked: a busy receiving loop costs its senders no syscall. The channel's
//! state is one mutex-protected queue; wakers are taken under the lock and
//! woken after it is released.
//!
//! # Fairness and cancel safety
//!
//! Senders waiting for room are served in FIFO order, and a newcomer never
//! takes a slot a waiting sender is owed. A freed slot is *reserved* for the
//! first waiting sender, which inserts its value only in the poll that
//! returns `Ok`: a dropped [`send`](Sender::send) future never sends its
//! value, and passes a slot it was granted on to the next waiting sender. A
//! [`recv`](Receiver::recv) takes a value only in the poll that returns it,
//! so a dropped `recv` future loses nothing.
//!
//! # Capacity
//!
//! The capacity must be at least 1: [`channel`]`(0)` returns a
//! [`CapacityError`] (tokio's `mpsc::channel(0)` panics; a channel without
//! room could never carry a value).
//!
//! # Examples
//!
//! Two loops on two threads: the main loop sends numbers to a worker loop,
//! which sends their squares back.
//!
//! ```
//! use ringloop::sync::cross;
//!
//! let (to_worker, mut jobs) = cross::channel::<u64>(16)?;
//! let (to_main, mut results) = cross::channel::<u64>(16)?;
//!
//! let worker = std::thread::spawn(move || {
//!     ringloop::run(async move {
//!         while let Some(n) = jobs.recv().await {
//!             to_main.send(n * n).await.unwrap();
//!         }
//!         // `to_main` is dropped here: the main loop's `recv` ends.
//!     })
//! });
//!
//! let squares = ringloop::run(async move {
//!     for n in 1..=10 {
//!         to_worker.send(n).await.unwrap();
//!     }
//!     drop(to_worker); // the worker's `recv` returns `None` once drained
//!     let mut squares = Vec::new();
//!     while let Some(sq) = results.recv().await {
//!         squares.push(sq);
//!     }
//!     squares
//! })?;
//! worker.join().expect("worker thread")?;
//! assert_eq!(squares, [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod block;
mod chan;
mod error;
#[cfg(all(test, loom))]
mod loom_tests;

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;

use self::block::block_on;
use self::chan::{Chan, SendFut};
use crate::loom::Arc;

pub use self::error::{CapacityError, SendError, TryRecvError, TrySendError};

/// Makes a channel holding at most `capacity` values; [`Sender::send`]
/// waits while it is full.
///
/// # Errors
///
/// [`CapacityError`] if `capacity` is 0.
///
/// # Examples
///
/// ```
/// use ringloop::sync::cross::{self, TrySendError};
///
/// let (tx, mut rx) = cross::channel(1)?;
/// tx.try_send(1)?;
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(rx.try_recv(), Ok(1));
///
/// assert!(cross::channel::<u8>(0).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn channel<T>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), CapacityError> {
    if capacity == 0 {
        return Err(CapacityError);
    }
    let chan = Arc::new(Chan::new(capacity));
    Ok((Sender { chan: chan.clone() }, Receiver { chan }))
}

/// The sending half of a [`channel`]; clone it for more producers, on any
/// thread.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = ringloop::sync::cross::channel(4)?;
/// let threads: Vec<_> = (0..3)
///     .map(|id| {
///         let tx = tx.clone();
///         std::thread::spawn(move || tx.send_blocking(id).unwrap())
///     })
///     .collect();
/// drop(tx);
/// threads.into_iter().for_each(|t| t.join().unwrap());
/// let mut got: Vec<i32> = std::iter::from_fn(|| rx.recv_blocking()).collect();
/// got.sort();
/// assert_eq!(got, [0, 1, 2]);
/// # Ok::<(), ringloop::sync::cross::CapacityError>(())
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting (in FIFO order with other senders) while the
    /// channel is full.
    ///
    /// Cancel safety: if the future is dropped before it returns, the value
    /// was not sent (and is dropped with the future).
    ///
    /// # Errors
    ///
    /// [`SendError`] carrying `value` back if the receiver is gone or
    /// closed, including while this send waited.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let (tx, mut rx) = ringloop::sync::cross::channel(1).unwrap();
    ///     tx.send("a").await.unwrap();
    ///     assert_eq!(rx.recv().await, Some("a"));
    ///     drop(rx);
    ///     assert_eq!(tx.send("b").await.unwrap_err().0, "b");
    /// })
    /// .unwrap();
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut fut = SendFut::new(&self.chan, value);
        poll_fn(|cx| fut.poll_send(cx)).await
    }

    /// Sends `value` if there is room now (and no sender is waiting for
    /// room, which would be owed it first).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], carrying `value`
    /// back.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::cross::{self, TrySendError};
    /// let (tx, rx) = cross::channel(1).unwrap();
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// [`send`](Sender::send) for plain threads: blocks the thread while
    /// the channel is full. Do not call it on a loop's thread.
    ///
    /// # Errors
    ///
    /// [`SendError`] carrying `value` back if the receiver is gone or
    /// closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = ringloop::sync::cross::channel(1).unwrap();
    /// let producer = std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send_blocking(i).unwrap(); // waits for the receiver
    ///     }
    /// });
    /// assert_eq!(rx.recv_blocking(), Some(0));
    /// assert_eq!(rx.recv_blocking(), Some(1));
    /// assert_eq!(rx.recv_blocking(), Some(2));
    /// assert_eq!(rx.recv_blocking(), None);
    /// producer.join().unwrap();
    /// ```
    pub fn send_blocking(&self, value: T) -> Result<(), SendError<T>> {
        block_on(self.send(value))
    }

    /// Whether the receiver is gone or closed (sends fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringloop::sync::cross::channel::<u8>(1).unwrap();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// The channel's bound, as given to [`channel`] (tokio's
    /// `max_capacity`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = ringloop::sync::cross::channel::<u8>(8).unwrap();
    /// assert_eq!(tx.capacity(), 8);
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross::Sender")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The receiving half of a [`channel`]; move it to the consuming thread.
///
/// Dropping it closes the channel and drops the values still queued. It is
/// a [`Stream`] of the values, ending when [`recv`](Receiver::recv) would
/// return `None`.
///
/// # Examples
///
/// ```
/// use futures_util::StreamExt;
///
/// ringloop::run(async {
///     let (tx, rx) = ringloop::sync::cross::channel(4).unwrap();
///     std::thread::spawn(move || {
///         for i in 1..=3 {
///             tx.send_blocking(i).unwrap();
///         }
///     });
///     let got: Vec<i32> = rx.collect().await;
///     assert_eq!(got, [1, 2, 3]);
/// })
/// .unwrap();
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next value, waiting while there is none; `None` once
    /// the channel is closed (every sender gone, or [`close`](Receiver::close)
    /// called) and drained.
    ///
    /// Cancel safety: if the future is dropped before it returns, no value
    /// was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let (tx, mut rx) = ringloop::sync::cross::channel(1).unwrap();
    ///     std::thread::spawn(move || tx.send_blocking("hi").unwrap());
    ///     assert_eq!(rx.recv().await, Some("hi"));
    ///     assert_eq!(rx.recv().await, None);
    /// })
    /// .unwrap();
    /// ```
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.chan.poll_recv(cx)).await
    }

    /// Polls for the next value: `Ready(Some)` with one, `Ready(None)` at
    /// the end (as [`recv`](Receiver::recv)), else `Pending`, and `cx`'s
    /// waker is woken when that changes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// let (tx, mut rx) = ringloop::sync::cross::channel(1).unwrap();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
    /// tx.try_send(7).unwrap();
    /// assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(7)));
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.chan.poll_recv(cx)
    }

    /// Receives the next value if there is one now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is queued,
    /// [`TryRecvError::Disconnected`] if none is queued and none will come.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::cross::{self, TryRecvError};
    /// let (tx, mut rx) = cross::channel(1).unwrap();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// [`recv`](Receiver::recv) for plain threads: blocks the thread while
    /// the channel is empty. Do not call it on a loop's thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = ringloop::sync::cross::channel(1).unwrap();
    /// ringloop::run(async move { tx.send(5).await.unwrap() }).unwrap();
    /// assert_eq!(rx.recv_blocking(), Some(5));
    /// assert_eq!(rx.recv_blocking(), None); // the sender is gone
    /// ```
    pub fn recv_blocking(&mut self) -> Option<T> {
        block_on(self.recv())
    }

    /// Closes the channel: sends fail from now on, and senders waiting for
    /// room fail at once; the values already queued can still be received.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = ringloop::sync::cross::channel(2).unwrap();
    /// tx.try_send(1).unwrap();
    /// rx.close();
    /// assert!(tx.try_send(2).is_err());
    /// assert_eq!(rx.recv_blocking(), Some(1));
    /// assert_eq!(rx.recv_blocking(), None);
    /// ```
    pub fn close(&mut self) {
        self.chan.close();
    }

    /// Whether the channel is closed for sending: the receiver closed it
    /// or every sender is gone (values may still be queued).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringloop::sync::cross::channel::<u8>(1).unwrap();
    /// assert!(!rx.is_closed());
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_ended()
    }

    /// The number of values queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringloop::sync::cross::channel(4).unwrap();
    /// tx.try_send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = ringloop::sync::cross::channel::<u8>(4).unwrap();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel's bound, as given to [`channel`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = ringloop::sync::cross::channel::<u8>(8).unwrap();
    /// assert_eq!(rx.capacity(), 8);
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Dropped here, outside the channel's lock.
        drop(self.chan.close_and_take());
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cross::Receiver")
            .field("queued", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}
