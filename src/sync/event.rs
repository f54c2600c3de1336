//! [`Event`]: asyncio's `Event`.

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::wait_list::{WaitList, wake_all};

#[derive(Debug, Default)]
struct Inner {
    set: bool,
    waiters: WaitList<()>,
}

/// A flag tasks can wait for (asyncio's `Event`).
///
/// [`set`](Event::set) wakes every task waiting in [`wait`](Event::wait);
/// each of them returns even if the event is [`clear`](Event::clear)-ed
/// again before it runs. While the flag is set, `wait` returns at once.
///
/// A cheap handle: clones share the same event. `!Send`.
///
/// # Examples
///
/// ```
/// use ringloop::sync::Event;
///
/// ringloop::run(async {
///     let ready = Event::new();
///     let waiters: Vec<_> = (0..3)
///         .map(|i| {
///             let ready = ready.clone();
///             ringloop::spawn(async move {
///                 ready.wait().await;
///                 i
///             })
///         })
///         .collect();
///     ringloop::yield_now().await; // all three wait now
///     ready.set();
///     for (i, w) in waiters.into_iter().enumerate() {
///         assert_eq!(w.await.unwrap(), i);
///     }
/// })
/// .unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<RefCell<Inner>>,
}

impl Event {
    /// An event not set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!ringloop::sync::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiting task.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = ringloop::sync::Event::new();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ```
    pub fn set(&self) {
        let mut wakers = Vec::new();
        {
            let mut inner = self.inner.borrow_mut();
            if inner.set {
                return;
            }
            inner.set = true;
            inner.waiters.notify_all(|| (), &mut wakers);
        }
        wake_all(wakers);
    }

    /// Clears the flag: later [`wait`](Event::wait)s wait for the next
    /// [`set`](Event::set). Tasks already woken by a `set` still return.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = ringloop::sync::Event::new();
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// ```
    pub fn clear(&self) {
        self.inner.borrow_mut().set = false;
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = ringloop::sync::Event::new();
    /// assert!(!ev.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.inner.borrow().set
    }

    /// Waits until the flag is set; returns at once if it is.
    ///
    /// Cancel safety: dropping the future just stops waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let ev = ringloop::sync::Event::new();
    ///     let setter = ringloop::spawn({
    ///         let ev = ev.clone();
    ///         async move { ev.set() }
    ///     });
    ///     ev.wait().await; // returns once `setter` ran
    ///     setter.await.unwrap();
    /// })
    /// .unwrap();
    /// ```
    pub async fn wait(&self) {
        let mut waiter = Wait {
            inner: &self.inner,
            key: None,
        };
        poll_fn(|cx| waiter.poll(cx)).await;
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Event")
            .field("set", &inner.set)
            .field("waiting", &inner.waiters.waiting())
            .finish()
    }
}

struct Wait<'a> {
    inner: &'a RefCell<Inner>,
    key: Option<usize>,
}

impl Wait<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.inner.borrow_mut();
        match self.key {
            None if inner.set => Poll::Ready(()),
            None => {
                self.key = Some(inner.waiters.push(cx.waker()));
                Poll::Pending
            }
            Some(key) => match inner.waiters.poll_note(key, cx.waker()) {
                Some(()) => {
                    self.key = None;
                    Poll::Ready(())
                }
                None => Poll::Pending,
            },
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // Every waiter was woken by the same `set`: nothing to pass on.
            self.inner.borrow_mut().waiters.remove(key);
        }
    }
}
