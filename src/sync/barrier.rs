//! [`Barrier`]: asyncio's `Barrier` (Python 3.11).

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::error::BrokenBarrierError;
use super::wait_list::{WaitList, wake_all};

type Note = Result<usize, BrokenBarrierError>;

#[derive(Debug)]
struct Inner {
    parties: usize,
    broken: bool,
    /// The tasks that arrived in the current cycle, in arrival order.
    waiters: WaitList<Note>,
}

/// Makes `parties` tasks wait for each other (asyncio's `Barrier`).
///
/// Each task calls [`wait`](Barrier::wait); when the last of `parties`
/// arrives, all of them return, each with a distinct index in
/// `0..parties` (its rank of arrival among those still waiting; the last
/// one, index `parties - 1`, is the [leader](BarrierWaitResult::is_leader)),
/// and the barrier starts over for the next cycle.
///
/// [`abort`](Barrier::abort) breaks the barrier: waiting tasks and every
/// later `wait` get [`BrokenBarrierError`] until [`reset`](Barrier::reset).
/// `reset` empties the barrier (tasks waiting get `BrokenBarrierError`)
/// and makes it usable again.
///
/// Cancel safety: dropping a waiting `wait` future just leaves the barrier
/// (one fewer task waiting), as cancelling does in asyncio; it never breaks
/// the barrier.
///
/// A cheap handle: clones share the same barrier. `!Send`.
///
/// # Examples
///
/// ```
/// use ringloop::sync::Barrier;
///
/// ringloop::run(async {
///     let barrier = Barrier::new(3);
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let barrier = barrier.clone();
///             ringloop::spawn(async move { barrier.wait().await.unwrap() })
///         })
///         .collect();
///     let mut indices = Vec::new();
///     let mut leaders = 0;
///     for t in tasks {
///         let r = t.await.unwrap();
///         indices.push(r.index());
///         leaders += usize::from(r.is_leader());
///     }
///     assert_eq!(indices, [0, 1, 2]);
///     assert_eq!(leaders, 1);
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Rc<RefCell<Inner>>,
}

/// What [`Barrier::wait`] returns: the task's index in its cycle.
///
/// # Examples
///
/// ```
/// ringloop::run(async {
///     let barrier = ringloop::sync::Barrier::new(1);
///     let r = barrier.wait().await.unwrap();
///     assert_eq!(r.index(), 0);
///     assert!(r.is_leader());
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult {
    index: usize,
    leader: bool,
}

impl BarrierWaitResult {
    /// The task's index, in `0..parties`, distinct for every task of a
    /// cycle (asyncio's return value of `wait`).
    ///
    /// # Examples
    ///
    /// See [`BarrierWaitResult`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether this task was the last to arrive (index `parties - 1`), the
    /// one chosen to do any once-per-cycle work (tokio's `is_leader`).
    ///
    /// # Examples
    ///
    /// See [`BarrierWaitResult`].
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

impl Barrier {
    /// A barrier for `parties` tasks.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 (asyncio raises `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = ringloop::sync::Barrier::new(4);
    /// assert_eq!(barrier.parties(), 4);
    /// ```
    pub fn new(parties: usize) -> Barrier {
        assert!(parties > 0, "a Barrier needs at least one party");
        Barrier {
            inner: Rc::new(RefCell::new(Inner {
                parties,
                broken: false,
                waiters: WaitList::default(),
            })),
        }
    }

    /// Waits until `parties` tasks are waiting, then returns for all of
    /// them.
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] if the barrier is broken, or is aborted or
    /// reset while the task waits.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let barrier = ringloop::sync::Barrier::new(2);
    ///     let other = ringloop::spawn({
    ///         let barrier = barrier.clone();
    ///         async move { barrier.wait().await.unwrap() }
    ///     });
    ///     // This task arrives first and waits; `other` arrives second.
    ///     let mine = barrier.wait().await.unwrap();
    ///     let theirs = other.await.unwrap();
    ///     assert_eq!((mine.index(), theirs.index()), (0, 1));
    ///     assert!(theirs.is_leader());
    /// })
    /// .unwrap();
    /// ```
    pub async fn wait(&self) -> Result<BarrierWaitResult, BrokenBarrierError> {
        let mut waiter = Wait {
            inner: &self.inner,
            key: None,
        };
        let index = poll_fn(|cx| waiter.poll(cx)).await?;
        let leader = index + 1 == self.parties();
        Ok(BarrierWaitResult { index, leader })
    }

    /// Breaks the barrier: tasks waiting now, and every later
    /// [`wait`](Barrier::wait) until [`reset`](Barrier::reset), get
    /// [`BrokenBarrierError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = ringloop::sync::Barrier::new(2);
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// ```
    pub fn abort(&self) {
        let mut wakers = Vec::new();
        {
            let mut inner = self.inner.borrow_mut();
            inner.broken = true;
            inner
                .waiters
                .notify_all(|| Err(BrokenBarrierError(())), &mut wakers);
        }
        wake_all(wakers);
    }

    /// Returns the barrier to its empty, unbroken state; tasks waiting on
    /// it get [`BrokenBarrierError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = ringloop::sync::Barrier::new(2);
    /// barrier.abort();
    /// barrier.reset();
    /// assert!(!barrier.broken());
    /// ```
    pub fn reset(&self) {
        let mut wakers = Vec::new();
        {
            let mut inner = self.inner.borrow_mut();
            inner.broken = false;
            inner
                .waiters
                .notify_all(|| Err(BrokenBarrierError(())), &mut wakers);
        }
        wake_all(wakers);
    }

    /// The number of tasks needed to pass the barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringloop::sync::Barrier::new(3).parties(), 3);
    /// ```
    pub fn parties(&self) -> usize {
        self.inner.borrow().parties
    }

    /// The number of tasks waiting in the current cycle.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let barrier = ringloop::sync::Barrier::new(2);
    ///     let t = ringloop::spawn({
    ///         let barrier = barrier.clone();
    ///         async move { barrier.wait().await.is_ok() }
    ///     });
    ///     ringloop::yield_now().await;
    ///     assert_eq!(barrier.n_waiting(), 1);
    ///     barrier.wait().await.unwrap();
    ///     assert!(t.await.unwrap());
    /// })
    /// .unwrap();
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.inner.borrow().waiters.waiting()
    }

    /// Whether the barrier is broken (by [`abort`](Barrier::abort)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!ringloop::sync::Barrier::new(2).broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.inner.borrow().broken
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Barrier")
            .field("parties", &inner.parties)
            .field("waiting", &inner.waiters.waiting())
            .field("broken", &inner.broken)
            .finish()
    }
}

struct Wait<'a> {
    inner: &'a RefCell<Inner>,
    key: Option<usize>,
}

impl Wait<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Note> {
        let mut wakers = Vec::new();
        let ready = {
            let mut inner = self.inner.borrow_mut();
            match self.key {
                None if inner.broken => Poll::Ready(Err(BrokenBarrierError(()))),
                None if inner.waiters.waiting() + 1 == inner.parties => {
                    // The last party: release the others, ranked by arrival.
                    let mut index = 0;
                    inner.waiters.notify_all(
                        || {
                            index += 1;
                            Ok(index - 1)
                        },
                        &mut wakers,
                    );
                    Poll::Ready(Ok(inner.parties - 1))
                }
                None => {
                    self.key = Some(inner.waiters.push(cx.waker()));
                    Poll::Pending
                }
                Some(key) => match inner.waiters.poll_note(key, cx.waker()) {
                    Some(note) => {
                        self.key = None;
                        Poll::Ready(note)
                    }
                    None => Poll::Pending,
                },
            }
        };
        wake_all(wakers);
        ready
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // Waiting: one fewer party. Released: the cycle is over anyway.
            self.inner.borrow_mut().waiters.remove(key);
        }
    }
}
