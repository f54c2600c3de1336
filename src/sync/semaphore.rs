//! [`Semaphore`] and [`BoundedSemaphore`]: asyncio's, FIFO-fair, with RAII
//! permits.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::error::{ReleaseError, TryAcquireError};
use super::permits::{self, Permits};

/// A counter of permits for tasks of one loop (asyncio's `Semaphore`).
///
/// [`acquire`](Semaphore::acquire) waits until a permit is free and returns
/// a [`SemaphorePermit`] that gives it back when dropped;
/// [`SemaphorePermit::forget`] keeps it taken and [`release`](Semaphore::release)
/// adds one by hand, asyncio style. Waiting tasks are served in FIFO order: a
/// released permit goes straight to the first waiter, and nobody barges: a
/// task that releases and at once acquires again queues behind the waiter
/// it handed its permit to, and `try_acquire` fails while anyone waits.
/// Dropping a waiting `acquire()` future takes it out of the queue and
/// passes on a permit it had been handed: a cancelled `acquire` never
/// leaks a permit.
///
/// A cheap handle: clones share the same semaphore. `!Send`.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use ringloop::sync::Semaphore;
///
/// ringloop::run(async {
///     let sem = Semaphore::new(2);
///     let (running, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
///     let tasks: Vec<_> = (0..6)
///         .map(|_| {
///             let (sem, running, peak) = (sem.clone(), running.clone(), peak.clone());
///             ringloop::spawn(async move {
///                 let _permit = sem.acquire().await;
///                 running.set(running.get() + 1);
///                 peak.set(peak.get().max(running.get()));
///                 ringloop::sleep(Duration::from_millis(1)).await;
///                 running.set(running.get() - 1);
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(peak.get(), 2); // never more than two at once
///     assert_eq!(sem.available_permits(), 2);
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct Semaphore {
    permits: Rc<RefCell<Permits>>,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Rc::new(RefCell::new(Permits::new(permits, None))),
        }
    }

    /// Waits for a free permit (in FIFO order) and takes it.
    ///
    /// Cancel safety: dropping the future before it completes leaves the
    /// count as if `acquire` had never been called.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let sem = ringloop::sync::Semaphore::new(1);
    ///     let permit = sem.acquire().await;
    ///     assert!(sem.locked());
    ///     drop(permit);
    ///     assert_eq!(sem.available_permits(), 1);
    /// })
    /// .unwrap();
    /// ```
    pub async fn acquire(&self) -> SemaphorePermit {
        permits::acquire(&self.permits).await;
        SemaphorePermit {
            permits: Some(self.permits.clone()),
        }
    }

    /// Takes a permit if one is free now and nobody waits for one.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError`] if no permit is free.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::Semaphore::new(1);
    /// let permit = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_err());
    /// # drop(permit);
    /// ```
    pub fn try_acquire(&self) -> Result<SemaphorePermit, TryAcquireError> {
        try_acquire(&self.permits)
    }

    /// Adds a permit (asyncio's `release`): it goes to the first waiting
    /// task, or to the pool. May raise the count above its initial value,
    /// as in asyncio; [`BoundedSemaphore`] refuses that.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::Semaphore::new(1);
    /// sem.try_acquire().unwrap().forget(); // asyncio's `acquire()`
    /// assert_eq!(sem.available_permits(), 0);
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn release(&self) {
        permits::release(&self.permits);
    }

    /// The number of free permits.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::Semaphore::new(2);
    /// let _p = sem.try_acquire().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.permits.borrow().available()
    }

    /// Whether [`acquire`](Semaphore::acquire) would wait (asyncio's
    /// `locked`).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::Semaphore::new(0);
    /// assert!(sem.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.available_permits() == 0
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_permits("Semaphore", &self.permits, f)
    }
}

/// A [`Semaphore`] that refuses to be released more times than it was
/// acquired (asyncio's `BoundedSemaphore`). FIFO with no barging, as
/// [`Semaphore`].
///
/// # Examples
///
/// ```
/// use ringloop::sync::BoundedSemaphore;
///
/// ringloop::run(async {
///     let sem = BoundedSemaphore::new(1);
///     sem.acquire().await.forget();
///     assert!(sem.release().is_ok());
///     assert!(sem.release().is_err()); // one release too many
///     assert_eq!(sem.available_permits(), 1);
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    permits: Rc<RefCell<Permits>>,
}

impl BoundedSemaphore {
    /// A semaphore with `permits` free permits, never more.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::BoundedSemaphore::new(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            permits: Rc::new(RefCell::new(Permits::new(permits, Some(permits)))),
        }
    }

    /// See [`Semaphore::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let sem = ringloop::sync::BoundedSemaphore::new(1);
    ///     let permit = sem.acquire().await;
    ///     assert!(sem.locked());
    ///     drop(permit);
    ///     assert!(!sem.locked());
    /// })
    /// .unwrap();
    /// ```
    pub async fn acquire(&self) -> SemaphorePermit {
        permits::acquire(&self.permits).await;
        SemaphorePermit {
            permits: Some(self.permits.clone()),
        }
    }

    /// See [`Semaphore::try_acquire`].
    ///
    /// # Errors
    ///
    /// [`TryAcquireError`] if no permit is free.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::BoundedSemaphore::new(1);
    /// let _p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_err());
    /// ```
    pub fn try_acquire(&self) -> Result<SemaphorePermit, TryAcquireError> {
        try_acquire(&self.permits)
    }

    /// Gives back a permit taken by hand (one whose [`SemaphorePermit`] was
    /// [`forget`](SemaphorePermit::forget)-ed): to the first waiting task,
    /// or to the pool.
    ///
    /// # Errors
    ///
    /// [`ReleaseError`] if every permit is already free (or on its way to
    /// a waiting task): releasing would exceed the initial count.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::BoundedSemaphore::new(1);
    /// assert!(sem.release().is_err());
    /// sem.try_acquire().unwrap().forget();
    /// assert!(sem.release().is_ok());
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        let waker = {
            let mut p = self.permits.borrow_mut();
            if !p.may_release() {
                return Err(ReleaseError(()));
            }
            p.release()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// See [`Semaphore::available_permits`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::BoundedSemaphore::new(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.permits.borrow().available()
    }

    /// See [`Semaphore::locked`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::BoundedSemaphore::new(0);
    /// assert!(sem.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.available_permits() == 0
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_permits("BoundedSemaphore", &self.permits, f)
    }
}

fn try_acquire(cell: &Rc<RefCell<Permits>>) -> Result<SemaphorePermit, TryAcquireError> {
    if cell.borrow_mut().try_acquire() {
        Ok(SemaphorePermit {
            permits: Some(cell.clone()),
        })
    } else {
        Err(TryAcquireError(()))
    }
}

fn fmt_permits(name: &str, cell: &RefCell<Permits>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let p = cell.borrow();
    f.debug_struct(name)
        .field("available", &p.available())
        .field("waiting", &p.waiting())
        .finish()
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives
/// the permit back.
///
/// For a `BoundedSemaphore`, a permit dropped when the count is already at
/// its bound (because it was also released by hand) is not added again.
///
/// # Examples
///
/// ```
/// let sem = ringloop::sync::Semaphore::new(1);
/// let permit = sem.try_acquire().unwrap();
/// assert_eq!(sem.available_permits(), 0);
/// drop(permit);
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "dropping the permit releases it at once"]
pub struct SemaphorePermit {
    /// `None` once forgotten.
    permits: Option<Rc<RefCell<Permits>>>,
}

impl SemaphorePermit {
    /// Keeps the permit taken without holding a guard (asyncio's plain
    /// `acquire()`); give it back later with `release`.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = ringloop::sync::Semaphore::new(1);
    /// sem.try_acquire().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = None;
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        let Some(cell) = self.permits.take() else {
            return;
        };
        let waker = {
            let mut p = cell.borrow_mut();
            if !p.may_release() {
                return;
            }
            p.release()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl fmt::Debug for SemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}
