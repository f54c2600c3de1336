//! [`Lock`]: asyncio's `Lock`, FIFO-fair.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::error::TryLockError;
use super::permits::{self, Permits};

/// A mutual-exclusion lock for tasks of one loop (asyncio's `Lock`).
///
/// [`lock`](Lock::lock) waits until the lock is free and returns a
/// [`LockGuard`]; dropping the guard unlocks it. Waiting tasks get the lock
/// in the order they asked for it (FIFO): an unlock hands the lock straight
/// to the first waiter, so a task calling `lock` or `try_lock` meanwhile
/// cannot jump the queue. Dropping a waiting `lock()` future takes it out of
/// the queue; if the lock had already been handed to it, it goes on to the
/// next waiter (a cancelled `lock` never leaks the lock).
///
/// Like asyncio's, the lock guards no data and is not reentrant. It is a
/// cheap handle: clones share the same lock. It is `!Send`: it belongs to
/// the loop's thread.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use ringloop::sync::Lock;
///
/// ringloop::run(async {
///     let lock = Lock::new();
///     let log = Rc::new(RefCell::new(Vec::new()));
///     let tasks: Vec<_> = (0..3)
///         .map(|i| {
///             let (lock, log) = (lock.clone(), log.clone());
///             ringloop::spawn(async move {
///                 let _guard = lock.lock().await;
///                 log.borrow_mut().push(i); // the critical section spans a yield
///                 ringloop::yield_now().await;
///                 log.borrow_mut().push(i);
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(*log.borrow(), [0, 0, 1, 1, 2, 2]);
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct Lock {
    permits: Rc<RefCell<Permits>>,
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl Lock {
    /// An unlocked lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = ringloop::sync::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub fn new() -> Lock {
        Lock {
            permits: Rc::new(RefCell::new(Permits::new(1, None))),
        }
    }

    /// Waits until the lock is free, takes it and returns the guard that
    /// unlocks it when dropped.
    ///
    /// Cancel safety: dropping the future before it completes leaves the
    /// lock as if `lock` had never been called.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let lock = ringloop::sync::Lock::new();
    ///     let guard = lock.lock().await;
    ///     assert!(lock.locked());
    ///     drop(guard);
    ///     assert!(!lock.locked());
    /// })
    /// .unwrap();
    /// ```
    pub async fn lock(&self) -> LockGuard {
        permits::acquire(&self.permits).await;
        LockGuard {
            permits: self.permits.clone(),
        }
    }

    /// Takes the lock if it is free now.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if the lock is held (or handed to a waiting task
    /// that has not run yet).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = ringloop::sync::Lock::new();
    /// let guard = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_err());
    /// drop(guard);
    /// assert!(lock.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> Result<LockGuard, TryLockError> {
        if self.permits.borrow_mut().try_acquire() {
            Ok(LockGuard {
                permits: self.permits.clone(),
            })
        } else {
            Err(TryLockError(()))
        }
    }

    /// Whether the lock is held. Also true in the moment between an unlock
    /// and the first waiting task, to which the lock was handed, running.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = ringloop::sync::Lock::new();
    /// let guard = lock.try_lock().unwrap();
    /// assert!(lock.locked());
    /// # drop(guard);
    /// ```
    pub fn locked(&self) -> bool {
        self.permits.borrow().available() == 0
    }

    /// Whether `guard` holds this lock.
    pub(crate) fn owns(&self, guard: &LockGuard) -> bool {
        Rc::ptr_eq(&self.permits, &guard.permits)
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.permits.borrow();
        f.debug_struct("Lock")
            .field("locked", &(p.available() == 0))
            .field("waiting", &p.waiting())
            .finish()
    }
}

/// Holds a [`Lock`]; dropping it unlocks the lock (and hands it to the
/// first waiting task, if any).
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let lock = ringloop::sync::Lock::new();
///     {
///         let _guard = lock.lock().await;
///         assert!(lock.locked());
///     } // unlocked here
///     assert!(!lock.locked());
/// })
/// .unwrap();
/// ```
#[must_use = "dropping the guard unlocks the lock at once"]
pub struct LockGuard {
    permits: Rc<RefCell<Permits>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        permits::release(&self.permits);
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}
