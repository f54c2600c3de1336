//! [`Condition`]: asyncio's `Condition`, a wait list tied to a [`Lock`].

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::error::TryLockError;
use super::lock::{Lock, LockGuard};
use super::wait_list::{WaitList, wake_all};

/// A condition variable for tasks of one loop (asyncio's `Condition`).
///
/// A condition is tied to a [`Lock`] (its own, or one given to
/// [`with_lock`](Condition::with_lock) so several conditions can share it).
/// [`wait`](Condition::wait) takes the lock's guard, unlocks, waits to be
/// notified, locks again and gives the guard back, as asyncio's `wait`
/// does; [`wait_for`](Condition::wait_for) loops until a predicate holds.
/// [`notify`](Condition::notify) wakes up to `n` waiting tasks in FIFO
/// order, [`notify_all`](Condition::notify_all) all of them.
///
/// Cancel safety: dropping a `wait` future before it was notified just
/// leaves the queue; dropping it after it was notified but before it
/// returned (say, while it waits to lock again) passes the notification on
/// to the next waiting task (as Python 3.13 does), so no wake-up is lost.
/// A waiter may therefore see a spurious wake-up: check the predicate, or
/// use `wait_for`.
///
/// Unlike asyncio, `notify` does not require the lock to be held: one loop
/// is one thread, so nothing can slip between a check and a wait.
///
/// A cheap handle: clones share the same condition (and lock). `!Send`.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use ringloop::sync::Condition;
///
/// ringloop::run(async {
///     let cond = Condition::new();
///     let items = Rc::new(RefCell::new(Vec::new()));
///     let consumer = ringloop::spawn({
///         let (cond, items) = (cond.clone(), items.clone());
///         async move {
///             let guard = cond.lock().await;
///             let _guard = cond.wait_for(guard, || !items.borrow().is_empty()).await;
///             items.borrow_mut().pop()
///         }
///     });
///     ringloop::yield_now().await; // the consumer waits
///     {
///         let _guard = cond.lock().await;
///         items.borrow_mut().push("job");
///         cond.notify(1);
///     }
///     assert_eq!(consumer.await.unwrap(), Some("job"));
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct Condition {
    lock: Lock,
    waiters: Rc<RefCell<WaitList<()>>>,
}

impl Default for Condition {
    fn default() -> Self {
        Condition::new()
    }
}

impl Condition {
    /// A condition with a lock of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = ringloop::sync::Condition::new();
    /// assert!(!cond.locked());
    /// ```
    pub fn new() -> Condition {
        Condition::with_lock(Lock::new())
    }

    /// A condition tied to `lock` (a handle to a lock other conditions or
    /// tasks may use too).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::{Condition, Lock};
    /// let lock = Lock::new();
    /// let (a, b) = (Condition::with_lock(lock.clone()), Condition::with_lock(lock.clone()));
    /// let _guard = a.try_lock().unwrap();
    /// assert!(b.locked() && lock.locked());
    /// ```
    pub fn with_lock(lock: Lock) -> Condition {
        Condition {
            lock,
            waiters: Rc::default(),
        }
    }

    /// Waits for the underlying lock (see [`Lock::lock`]).
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let cond = ringloop::sync::Condition::new();
    ///     let _guard = cond.lock().await;
    ///     assert!(cond.locked());
    /// })
    /// .unwrap();
    /// ```
    pub async fn lock(&self) -> LockGuard {
        self.lock.lock().await
    }

    /// Takes the underlying lock if it is free (see [`Lock::try_lock`]).
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if the lock is held.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = ringloop::sync::Condition::new();
    /// let _guard = cond.try_lock().unwrap();
    /// assert!(cond.try_lock().is_err());
    /// ```
    pub fn try_lock(&self) -> Result<LockGuard, TryLockError> {
        self.lock.try_lock()
    }

    /// Whether the underlying lock is held.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = ringloop::sync::Condition::new();
    /// assert!(!cond.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Unlocks (by consuming `guard`), waits until notified, then locks
    /// again and returns the new guard.
    ///
    /// # Panics
    ///
    /// If `guard` holds another lock than this condition's (asyncio raises
    /// `RuntimeError` when waiting without the lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// ringloop::run(async {
    ///     let cond = ringloop::sync::Condition::new();
    ///     let ready = Rc::new(Cell::new(false));
    ///     let notifier = ringloop::spawn({
    ///         let (cond, ready) = (cond.clone(), ready.clone());
    ///         async move {
    ///             let _guard = cond.lock().await;
    ///             ready.set(true);
    ///             cond.notify_all();
    ///         }
    ///     });
    ///     let mut guard = cond.lock().await;
    ///     while !ready.get() {
    ///         guard = cond.wait(guard).await; // the notifier runs meanwhile
    ///     }
    ///     assert!(cond.locked());
    ///     drop(guard);
    ///     notifier.await.unwrap();
    /// })
    /// .unwrap();
    /// ```
    pub async fn wait(&self, guard: LockGuard) -> LockGuard {
        assert!(
            self.lock.owns(&guard),
            "Condition::wait called with the guard of another lock"
        );
        drop(guard);
        let mut waiter = Wait {
            waiters: &self.waiters,
            key: None,
            notified: false,
        };
        poll_fn(|cx| waiter.poll(cx)).await;
        let guard = self.lock.lock().await;
        // The notification is used: nothing to pass on any more.
        waiter.notified = false;
        guard
    }

    /// Waits (see [`wait`](Condition::wait)) until `predicate` returns
    /// true; checks it first, with the lock held, and after every wake-up.
    ///
    /// # Panics
    ///
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// ringloop::run(async {
    ///     let cond = ringloop::sync::Condition::new();
    ///     let count = Rc::new(Cell::new(0));
    ///     let counter = ringloop::spawn({
    ///         let (cond, count) = (cond.clone(), count.clone());
    ///         async move {
    ///             for _ in 0..3 {
    ///                 let _guard = cond.lock().await;
    ///                 count.set(count.get() + 1);
    ///                 cond.notify_all();
    ///             }
    ///         }
    ///     });
    ///     let guard = cond.lock().await;
    ///     let _guard = cond.wait_for(guard, || count.get() == 3).await;
    ///     assert_eq!(count.get(), 3);
    ///     # drop(_guard);
    ///     counter.await.unwrap();
    /// })
    /// .unwrap();
    /// ```
    pub async fn wait_for(
        &self,
        mut guard: LockGuard,
        mut predicate: impl FnMut() -> bool,
    ) -> LockGuard {
        while !predicate() {
            guard = self.wait(guard).await;
        }
        guard
    }

    /// Wakes up to `n` tasks waiting in [`wait`](Condition::wait), the
    /// longest-waiting first; returns how many it woke.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let cond = ringloop::sync::Condition::new();
    ///     let waiters: Vec<_> = (0..3)
    ///         .map(|_| {
    ///             let cond = cond.clone();
    ///             ringloop::spawn(async move { drop(cond.wait(cond.lock().await).await) })
    ///         })
    ///         .collect();
    ///     ringloop::yield_now().await;
    ///     assert_eq!(cond.notify(2), 2);
    ///     ringloop::yield_now().await;
    ///     let done = waiters.iter().filter(|w| w.is_done()).count();
    ///     assert_eq!(done, 2);
    ///     cond.notify_all();
    ///     for w in waiters {
    ///         w.await.unwrap();
    ///     }
    /// })
    /// .unwrap();
    /// ```
    pub fn notify(&self, n: usize) -> usize {
        notify(&self.waiters, n)
    }

    /// Wakes every task waiting in [`wait`](Condition::wait); returns how
    /// many it woke.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = ringloop::sync::Condition::new();
    /// assert_eq!(cond.notify_all(), 0); // nobody waits
    /// ```
    pub fn notify_all(&self) -> usize {
        notify(&self.waiters, usize::MAX)
    }
}

fn notify(waiters: &RefCell<WaitList<()>>, n: usize) -> usize {
    let mut wakers = Vec::new();
    {
        let mut list = waiters.borrow_mut();
        while wakers.len() < n {
            match list.notify_first(()) {
                Some(w) => wakers.push(w),
                None => break,
            }
        }
    }
    let woken = wakers.len();
    wake_all(wakers);
    woken
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.lock.locked())
            .field("waiting", &self.waiters.borrow().waiting())
            .finish()
    }
}

/// A task's place among a condition's waiters.
struct Wait<'a> {
    waiters: &'a RefCell<WaitList<()>>,
    key: Option<usize>,
    /// Notified, and not yet returned from `wait`.
    notified: bool,
}

impl Wait<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut list = self.waiters.borrow_mut();
        match self.key {
            None => {
                self.key = Some(list.push(cx.waker()));
                Poll::Pending
            }
            Some(key) => match list.poll_note(key, cx.waker()) {
                Some(()) => {
                    self.key = None;
                    self.notified = true;
                    Poll::Ready(())
                }
                None => Poll::Pending,
            },
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let mut pass_on = self.notified;
        if let Some(key) = self.key.take() {
            pass_on |= self.waiters.borrow_mut().remove(key).is_some();
        }
        if pass_on {
            notify(self.waiters, 1);
        }
    }
}
