//! A one-shot channel between tasks of one loop: one value, sent once.
//!
//! [`channel`] makes a [`Sender`] and a [`Receiver`]; the receiver is a
//! future that gives the value, or [`RecvError`] if the sender was dropped
//! without sending. [`Sender::send`] fails, giving the value back, if the
//! receiver is gone.
//!
//! # Examples
//!
//! ```
//! use ringloop::sync::oneshot;
//!
//! ringloop::run(async {
//!     let (tx, rx) = oneshot::channel();
//!     ringloop::spawn(async move {
//!         tx.send("done").unwrap();
//!     })
//!     .detach();
//!     assert_eq!(rx.await, Ok("done"));
//! })
//! .unwrap();
//! ```

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Inner<T> {
    value: Option<T>,
    /// The sender was used or dropped.
    tx_gone: bool,
    /// The receiver was closed or dropped.
    rx_gone: bool,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
}

/// Makes a one-shot channel.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = ringloop::sync::oneshot::channel();
/// tx.send(5).unwrap();
/// assert_eq!(rx.try_recv(), Ok(5));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(RefCell::new(Inner {
        value: None,
        tx_gone: false,
        rx_gone: false,
        rx_waker: None,
        tx_waker: None,
    }));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// The sending half of a [`channel`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = ringloop::sync::oneshot::channel::<u8>();
/// drop(rx);
/// assert!(tx.is_closed());
/// assert_eq!(tx.send(1), Err(1));
/// ```
pub struct Sender<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

impl<T> Sender<T> {
    /// Sends `value` and wakes the receiver.
    ///
    /// # Errors
    ///
    /// `Err(value)` if the receiver was dropped or closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = ringloop::sync::oneshot::channel();
    /// assert!(tx.send("hi").is_ok());
    /// assert_eq!(rx.try_recv(), Ok("hi"));
    /// ```
    pub fn send(self, value: T) -> Result<(), T> {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            if inner.rx_gone {
                return Err(value);
            }
            inner.value = Some(value);
            inner.tx_gone = true;
            inner.rx_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether the receiver was dropped or closed (a `send` would fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringloop::sync::oneshot::channel::<()>();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().rx_gone
    }

    /// Waits until the receiver is dropped or closed: lets a producer stop
    /// work nobody will receive.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let (mut tx, rx) = ringloop::sync::oneshot::channel::<u32>();
    ///     ringloop::spawn(async move { drop(rx) }).detach();
    ///     tx.closed().await;
    ///     assert!(tx.is_closed());
    /// })
    /// .unwrap();
    /// ```
    pub async fn closed(&mut self) {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if inner.rx_gone {
                return Poll::Ready(());
            }
            set_waker(&mut inner.tx_waker, cx.waker());
            Poll::Pending
        })
        .await;
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            inner.tx_gone = true;
            inner.rx_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The receiving half of a [`channel`]: a future of the value.
///
/// Dropping it (cancelling the wait) drops a value already sent and makes
/// later sends fail.
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let (tx, rx) = ringloop::sync::oneshot::channel::<u8>();
///     drop(tx); // never sends
///     assert!(rx.await.is_err());
/// })
/// .unwrap();
/// ```
pub struct Receiver<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

impl<T> Receiver<T> {
    /// Takes the value if it was sent.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if not sent yet, [`TryRecvError::Closed`]
    /// if it never will be (the sender is gone) or was already received.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::oneshot::{self, TryRecvError};
    /// let (tx, mut rx) = oneshot::channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut inner = self.inner.borrow_mut();
        match inner.value.take() {
            Some(v) => Ok(v),
            None if inner.tx_gone => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Closes the channel: a later `send` fails, a value already sent can
    /// still be received.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = ringloop::sync::oneshot::channel();
    /// rx.close();
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn close(&mut self) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            inner.rx_gone = true;
            inner.tx_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.inner.borrow_mut();
        match inner.value.take() {
            Some(v) => Poll::Ready(Ok(v)),
            None if inner.tx_gone => Poll::Ready(Err(RecvError(()))),
            None => {
                set_waker(&mut inner.rx_waker, cx.waker());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (value, waker) = {
            let mut inner = self.inner.borrow_mut();
            inner.rx_gone = true;
            (inner.value.take(), inner.tx_waker.take())
        };
        drop(value); // outside the borrow
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("oneshot::Receiver")
            .field("sent", &inner.value.is_some())
            .field("sender_gone", &inner.tx_gone)
            .finish()
    }
}

/// The sender was dropped without sending (or the value was already
/// received).
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let (tx, rx) = ringloop::sync::oneshot::channel::<()>();
///     drop(tx);
///     let err = rx.await.unwrap_err();
///     assert_eq!(err.to_string(), "oneshot sender dropped without sending");
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError(());

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot sender dropped without sending")
    }
}

impl Error for RecvError {}

/// Why [`Receiver::try_recv`] gave no value.
///
/// # Examples
///
/// ```
/// use ringloop::sync::oneshot::{self, TryRecvError};
/// let (tx, mut rx) = oneshot::channel::<u8>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Not sent yet.
    Empty,
    /// The sender is gone without sending, or the value was received.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "no value sent yet",
            TryRecvError::Closed => "oneshot channel closed",
        })
    }
}

impl Error for TryRecvError {}
