//! A multi-producer, single-consumer channel between tasks of one loop,
//! bounded ([`channel`]) or not ([`unbounded_channel`]).
//!
//! It is a FIFO [`Queue`] underneath, with tokio's closing rules: when
//! every [`Sender`] is gone the channel closes for receiving once drained
//! ([`Receiver::recv`] returns `None`), and when the [`Receiver`] is gone
//! sends fail, giving the value back. The queue's fairness and cancel
//! safety carry over: a dropped `send` never sent its value, a dropped
//! `recv` never lost one.
//!
//! # Examples
//!
//! ```
//! use ringloop::sync::mpsc;
//!
//! ringloop::run(async {
//!     let (tx, mut rx) = mpsc::channel(8);
//!     for id in 0..3 {
//!         let tx = tx.clone();
//!         ringloop::spawn(async move {
//!             tx.send(id).await.unwrap();
//!         })
//!         .detach();
//!     }
//!     drop(tx); // `recv` returns `None` once the three clones are gone
//!     let mut got = Vec::new();
//!     while let Some(id) = rx.recv().await {
//!         got.push(id);
//!     }
//!     assert_eq!(got, [0, 1, 2]);
//! })
//! .unwrap();
//! ```

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::rc::Rc;

use super::error::{TryGetError, TryPutError};
use super::queue::Queue;

/// Makes a channel holding at most `capacity` values; [`Sender::send`]
/// waits while it is full.
///
/// # Panics
///
/// If `capacity` is 0 (use [`unbounded_channel`] for no bound).
///
/// # Examples
///
/// ```
/// use ringloop::sync::mpsc::{self, TrySendError};
/// let (tx, _rx) = mpsc::channel(1);
/// tx.try_send(1).unwrap();
/// assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc::channel capacity must be positive");
    make(Queue::new(capacity))
}

/// Makes a channel without bound: [`Sender::send`] never waits.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = ringloop::sync::mpsc::unbounded_channel();
/// for i in 0..1000 {
///     tx.try_send(i).unwrap();
/// }
/// assert_eq!(rx.try_recv(), Ok(0));
/// ```
pub fn unbounded_channel<T>() -> (Sender<T>, Receiver<T>) {
    make(Queue::new(0))
}

fn make<T>(queue: Queue<T>) -> (Sender<T>, Receiver<T>) {
    let tx = Sender {
        queue: queue.clone(),
        senders: Rc::new(Cell::new(1)),
    };
    (tx, Receiver { queue })
}

/// The sending half of a channel; clone it for more producers.
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let (tx, mut rx) = ringloop::sync::mpsc::unbounded_channel();
///     let tx2 = tx.clone();
///     tx.send("a").await.unwrap();
///     tx2.send("b").await.unwrap();
///     assert_eq!(rx.recv().await, Some("a"));
///     assert_eq!(rx.recv().await, Some("b"));
/// })
/// .unwrap();
/// ```
pub struct Sender<T> {
    queue: Queue<T>,
    /// Live `Sender`s of this channel.
    senders: Rc<Cell<usize>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting (in FIFO order with other senders) while the
    /// channel is full.
    ///
    /// Cancel safety: if the future is dropped before it returns, the value
    /// was not sent.
    ///
    /// # Errors
    ///
    /// [`SendError`] carrying `value` back if the receiver is gone or
    /// closed.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let (tx, rx) = ringloop::sync::mpsc::channel(1);
    ///     drop(rx);
    ///     assert_eq!(tx.send(3).await.unwrap_err().0, 3);
    /// })
    /// .unwrap();
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.queue
            .put(value)
            .await
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], carrying
    /// `value` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::mpsc::{self, TrySendError};
    /// let (tx, rx) = mpsc::channel(1);
    /// assert!(tx.try_send(1).is_ok());
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.queue.put_nowait(value).map_err(|e| match e {
            TryPutError::Full(e) => TrySendError::Full(e.into_inner()),
            TryPutError::ShutDown(e) => TrySendError::Closed(e.into_inner()),
        })
    }

    /// Whether the receiver is gone or closed (sends fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringloop::sync::mpsc::channel::<u8>(1);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.queue.is_shut_down()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.senders.set(self.senders.get() + 1);
        Sender {
            queue: self.queue.clone(),
            senders: self.senders.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let left = self.senders.get() - 1;
        self.senders.set(left);
        if left == 0 {
            // The receiver drains what is queued, then sees the end.
            self.queue.shutdown(false);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Sender")
            .field("senders", &self.senders.get())
            .field("queued", &self.queue.qsize())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The receiving half of a channel.
///
/// Dropping it closes the channel and drops the values still queued.
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let (tx, mut rx) = ringloop::sync::mpsc::channel(4);
///     tx.send(1).await.unwrap();
///     drop(tx);
///     assert_eq!(rx.recv().await, Some(1));
///     assert_eq!(rx.recv().await, None); // every sender is gone
/// })
/// .unwrap();
/// ```
pub struct Receiver<T> {
    queue: Queue<T>,
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
    ///     let (tx, mut rx) = ringloop::sync::mpsc::channel(1);
    ///     ringloop::spawn(async move { tx.send("hi").await.unwrap() }).detach();
    ///     assert_eq!(rx.recv().await, Some("hi"));
    ///     assert_eq!(rx.recv().await, None);
    /// })
    /// .unwrap();
    /// ```
    pub async fn recv(&mut self) -> Option<T> {
        self.queue.get().await.ok()
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
    /// use ringloop::sync::mpsc::{self, TryRecvError};
    /// let (tx, mut rx) = mpsc::channel(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.queue.get_nowait().map_err(|e| match e {
            TryGetError::Empty(_) => TryRecvError::Empty,
            TryGetError::ShutDown(_) => TryRecvError::Disconnected,
        })
    }

    /// Closes the channel: sends fail from now on, and tasks waiting in
    /// `send` fail at once; the values already queued can still be
    /// received.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::mpsc;
    /// let (tx, mut rx) = mpsc::channel(2);
    /// tx.try_send(1).unwrap();
    /// rx.close();
    /// assert!(tx.try_send(2).is_err());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn close(&mut self) {
        self.queue.shutdown(false);
    }

    /// The number of values queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringloop::sync::mpsc::unbounded_channel();
    /// tx.try_send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether no value is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = ringloop::sync::mpsc::unbounded_channel::<u8>();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.qsize() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.queue.shutdown(true);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Receiver")
            .field("queued", &self.queue.qsize())
            .finish()
    }
}

/// The receiver is gone or closed; carries the value back (in the public
/// field, as tokio's).
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let (tx, rx) = ringloop::sync::mpsc::channel(1);
///     drop(rx);
///     let err = tx.send("lost").await.unwrap_err();
///     assert_eq!(err.to_string(), "channel closed");
///     assert_eq!(err.0, "lost");
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl<T> Error for SendError<T> {}

/// Why [`Sender::try_send`] did not send; carries the value back.
///
/// # Examples
///
/// ```
/// use ringloop::sync::mpsc::{self, TrySendError};
/// let (tx, _rx) = mpsc::channel(1);
/// tx.try_send('a').unwrap();
/// let err = tx.try_send('b').unwrap_err();
/// assert_eq!(err.to_string(), "channel full");
/// assert_eq!(err.into_inner(), 'b');
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// The receiver is gone or closed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// See [`TrySendError`].
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "channel full",
            TrySendError::Closed(_) => "channel closed",
        })
    }
}

impl<T> Error for TrySendError<T> {}

/// Why [`Receiver::try_recv`] gave no value.
///
/// # Examples
///
/// ```
/// use ringloop::sync::mpsc::{self, TryRecvError};
/// let (tx, mut rx) = mpsc::channel::<u8>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// No value queued now.
    Empty,
    /// No value queued, and every sender is gone (or the receiver closed).
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "channel empty",
            TryRecvError::Disconnected => "channel disconnected",
        })
    }
}

impl Error for TryRecvError {}
