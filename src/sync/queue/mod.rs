//! [`Queue`], [`LifoQueue`] and [`PriorityQueue`]: asyncio's queues,
//! including Python 3.13's `shutdown`.

mod order;
mod state;

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::ops::Deref;
use std::rc::Rc;

use self::order::Order;
use self::state::{Core, Get, Join, Put};
use super::error::{QueueEmpty, QueueFull, QueueShutDown, TaskDoneError, TryGetError, TryPutError};
use super::wait_list::wake_all;

/// A FIFO queue for tasks of one loop (asyncio's `Queue`).
///
/// With a `maxsize` (0: unbounded), [`put`](Queue::put) waits while the
/// queue is full and [`get`](Queue::get) while it is empty; the `_nowait`
/// variants fail instead. [`task_done`](Queue::task_done) and
/// [`join`](Queue::join) track the processing of the items, and
/// [`shutdown`](Queue::shutdown) (Python 3.13) ends the queue.
/// [`LifoQueue`] and [`PriorityQueue`] hand the items out in another order;
/// both dereference to `Queue`, so everything here applies to them.
///
/// A `Queue` is a cheap handle (an `Rc`): clones share the same queue, so
/// give each task its own clone. It is `!Send`: it belongs to the loop's
/// thread.
///
/// Fairness and cancel safety: tasks waiting in `get` are served in
/// FIFO order, and so are tasks waiting in `put`; a newcomer never takes
/// an item (or a slot) that a waiting task is owed. When an item arrives
/// for a waiting `get`, it is *reserved* for that task, not handed over:
/// the task takes it in the poll that returns it. So a `get` future dropped
/// before it returned never loses an item (the reservation passes to the
/// next waiting `get`, or the item just stays queued), and a `put` future
/// dropped before it returned never inserted its item.
///
/// In a FIFO `Queue`, gets receive items in the order they asked for them
/// (the reserved items are the oldest ones); the only exception is the one
/// a cancellation forces, when a reserved item is passed on to a get that
/// asked later than one already served. A `put` inserts its item when it
/// returns, so puts woken in FIFO order insert in the order they run. In a
/// [`LifoQueue`] or [`PriorityQueue`], a woken get takes whichever item is
/// on top when it runs (as in asyncio).
///
/// While an item is
/// reserved for a woken task that has not run yet, [`qsize`](Queue::qsize)
/// counts it but [`empty`](Queue::empty) and
/// [`get_nowait`](Queue::get_nowait) treat it as taken (likewise for a
/// slot reserved for a `put`, [`full`](Queue::full) and
/// [`put_nowait`](Queue::put_nowait)): `empty()` and `full()` always agree
/// with what `get_nowait` and `put_nowait` would do.
///
/// # Examples
///
/// ```
/// use ringloop::sync::Queue;
///
/// ringloop::run(async {
///     let q = Queue::new(2);
///     let producer = ringloop::spawn({
///         let q = q.clone();
///         async move {
///             for i in 0..5 {
///                 q.put(i).await.unwrap(); // waits while two items are queued
///             }
///         }
///     });
///     let mut got = Vec::new();
///     for _ in 0..5 {
///         got.push(q.get().await.unwrap());
///         q.task_done().unwrap();
///     }
///     producer.await.unwrap();
///     q.join().await; // every item was marked done
///     assert_eq!(got, [0, 1, 2, 3, 4]);
/// })
/// .unwrap();
/// ```
pub struct Queue<T> {
    core: Rc<RefCell<Core<T>>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            core: self.core.clone(),
        }
    }
}

impl<T> Queue<T> {
    /// A FIFO queue holding at most `maxsize` items (0: unbounded).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::Queue::<String>::new(10);
    /// assert_eq!(q.maxsize(), 10);
    /// ```
    pub fn new(maxsize: usize) -> Queue<T> {
        Queue::with_order(maxsize, Order::Fifo)
    }

    fn with_order(maxsize: usize, order: Order<T>) -> Queue<T> {
        Queue {
            core: Rc::new(RefCell::new(Core::new(maxsize, order))),
        }
    }

    /// The capacity given to `new` (0: unbounded).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringloop::sync::Queue::<u8>::new(0).maxsize(), 0);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.core.borrow().maxsize
    }

    /// The number of items in the queue (including any reserved for a
    /// woken `get` that has not run yet).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::Queue::new(0);
    /// q.put_nowait('a').unwrap();
    /// q.put_nowait('b').unwrap();
    /// assert_eq!(q.qsize(), 2);
    /// ```
    pub fn qsize(&self) -> usize {
        self.core.borrow().items.len()
    }

    /// Whether there is no item [`get_nowait`](Queue::get_nowait) could
    /// take.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::Queue::new(0);
    /// assert!(q.empty());
    /// q.put_nowait(1).unwrap();
    /// assert!(!q.empty());
    /// ```
    pub fn empty(&self) -> bool {
        !self.core.borrow().has_item()
    }

    /// Whether there is no room for [`put_nowait`](Queue::put_nowait)
    /// (never true for an unbounded queue).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::Queue::new(1);
    /// assert!(!q.full());
    /// q.put_nowait(1).unwrap();
    /// assert!(q.full());
    /// ```
    pub fn full(&self) -> bool {
        !self.core.borrow().has_room()
    }

    /// Puts `item` into the queue, waiting (in FIFO order with other
    /// putters) while it is full.
    ///
    /// Cancel safety: if the future is dropped before it returns, `item`
    /// was not put (it is dropped with the future).
    ///
    /// # Errors
    ///
    /// [`QueueShutDown`] carrying `item` back if the queue is, or gets,
    /// shut down before the item went in.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let q = ringloop::sync::Queue::new(1);
    ///     q.put("a").await.unwrap();
    ///     let second = ringloop::spawn({
    ///         let q = q.clone();
    ///         async move { q.put("b").await.unwrap() }
    ///     });
    ///     ringloop::yield_now().await;
    ///     assert!(!second.is_done()); // full: `put("b")` waits
    ///     assert_eq!(q.get().await, Ok("a"));
    ///     second.await.unwrap();
    ///     assert_eq!(q.get_nowait(), Ok("b"));
    /// })
    /// .unwrap();
    /// ```
    pub async fn put(&self, item: T) -> Result<(), QueueShutDown<T>> {
        let mut put = Put {
            core: &self.core,
            key: None,
            item: Some(item),
        };
        poll_fn(|cx| put.poll(cx)).await
    }

    /// Puts `item` into the queue if there is room now.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] if the queue is full (or its free slots are
    /// reserved for waiting putters), [`TryPutError::ShutDown`] if it is
    /// shut down; both carry `item` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringloop::sync::{Queue, TryPutError};
    /// let q = Queue::new(1);
    /// assert!(q.put_nowait(1).is_ok());
    /// assert!(matches!(q.put_nowait(2), Err(TryPutError::Full(_))));
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>> {
        let waker = {
            let mut core = self.core.borrow_mut();
            if core.shut_down {
                return Err(TryPutError::ShutDown(QueueShutDown(item)));
            }
            if !core.has_room() {
                return Err(TryPutError::Full(QueueFull(item)));
            }
            core.insert(item)
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Takes the next item, waiting (in FIFO order with other getters)
    /// while there is none.
    ///
    /// Cancel safety: if the future is dropped before it returns, no item
    /// was taken.
    ///
    /// # Errors
    ///
    /// [`QueueShutDown`] if the queue is shut down and has no item left
    /// (after a `shutdown(false)`, the items left are handed out first).
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let q = ringloop::sync::Queue::new(0);
    ///     let getter = ringloop::spawn({
    ///         let q = q.clone();
    ///         async move { q.get().await.unwrap() }
    ///     });
    ///     ringloop::yield_now().await; // the getter waits
    ///     q.put(42).await.unwrap();
    ///     assert_eq!(getter.await.unwrap(), 42);
    /// })
    /// .unwrap();
    /// ```
    pub async fn get(&self) -> Result<T, QueueShutDown> {
        let mut get = Get {
            core: &self.core,
            key: None,
        };
        poll_fn(|cx| get.poll(cx)).await
    }

    /// Takes the next item if there is one free now.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] if there is none (or all are reserved for
    /// waiting getters), [`TryGetError::ShutDown`] if there is none and the
    /// queue is shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::Queue::new(0);
    /// q.put_nowait(7).unwrap();
    /// assert_eq!(q.get_nowait(), Ok(7));
    /// assert!(q.get_nowait().is_err());
    /// ```
    pub fn get_nowait(&self) -> Result<T, TryGetError> {
        let (item, waker) = {
            let mut core = self.core.borrow_mut();
            if !core.has_item() {
                return Err(if core.shut_down {
                    TryGetError::ShutDown(QueueShutDown(()))
                } else {
                    TryGetError::Empty(QueueEmpty(()))
                });
            }
            core.take(false)
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(item)
    }

    /// Marks one item taken from the queue as processed; when every item
    /// put has been marked, [`join`](Queue::join) returns.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] if called more times than items were put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::Queue::new(0);
    /// q.put_nowait(1).unwrap();
    /// let _ = q.get_nowait().unwrap();
    /// assert!(q.task_done().is_ok());
    /// assert!(q.task_done().is_err()); // one call too many
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut wakers = Vec::new();
        let res = self.core.borrow_mut().task_done(&mut wakers);
        wake_all(wakers);
        res
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](Queue::task_done); returns at once if none is
    /// pending.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let q = ringloop::sync::Queue::new(0);
    ///     let worker = ringloop::spawn({
    ///         let q = q.clone();
    ///         async move {
    ///             loop {
    ///                 let _job: u32 = q.get().await.unwrap();
    ///                 q.task_done().unwrap();
    ///             }
    ///         }
    ///     });
    ///     for job in 0..10 {
    ///         q.put(job).await.unwrap();
    ///     }
    ///     q.join().await;
    ///     assert!(q.empty());
    ///     drop(worker); // cancels it
    /// })
    /// .unwrap();
    /// ```
    pub async fn join(&self) {
        let mut join = Join {
            core: &self.core,
            key: None,
        };
        poll_fn(|cx| join.poll(cx)).await;
    }

    /// Shuts the queue down (Python 3.13): every later `put` fails with
    /// [`QueueShutDown`], and so do tasks waiting in `put`. With
    /// `immediate` false, `get` keeps handing out the items left and fails
    /// once there are none; tasks waiting in `get` fail at once. With
    /// `immediate` true, the items left are dropped (each counted as done,
    /// which may release [`join`](Queue::join)) and every `get` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let q = ringloop::sync::Queue::new(0);
    ///     let getter = ringloop::spawn({
    ///         let q = q.clone();
    ///         async move { q.get().await }
    ///     });
    ///     ringloop::yield_now().await; // the getter waits
    ///     q.shutdown(false);
    ///     assert!(getter.await.unwrap().is_err());
    ///     assert!(q.put(1).await.is_err());
    ///     assert!(q.is_shut_down());
    /// })
    /// .unwrap();
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        let mut wakers = Vec::new();
        let dropped = self.core.borrow_mut().shutdown(immediate, &mut wakers);
        drop(dropped); // outside the borrow: items' `Drop` may use the queue
        wake_all(wakers);
    }

    /// Whether [`shutdown`](Queue::shutdown) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::Queue::<u8>::new(0);
    /// assert!(!q.is_shut_down());
    /// q.shutdown(true);
    /// assert!(q.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.core.borrow().shut_down
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.borrow();
        f.debug_struct(core.order.name())
            .field("maxsize", &core.maxsize)
            .field("qsize", &core.items.len())
            .field("unfinished", &core.unfinished)
            .field("getters", &core.getters.waiting())
            .field("putters", &core.putters.waiting())
            .field("shut_down", &core.shut_down)
            .finish()
    }
}

/// A [`Queue`] that hands out the most recently put item first (asyncio's
/// `LifoQueue`). It dereferences to `Queue`: every `Queue` method works on
/// it, and `Queue::from` turns it into a plain `Queue` handle (same items,
/// same order).
///
/// # Examples
///
/// ```
/// use ringloop::sync::LifoQueue;
///
/// let q = LifoQueue::new(0);
/// for i in 1..=3 {
///     q.put_nowait(i).unwrap();
/// }
/// assert_eq!(q.get_nowait(), Ok(3));
/// assert_eq!(q.get_nowait(), Ok(2));
/// ```
pub struct LifoQueue<T>(Queue<T>);

impl<T> LifoQueue<T> {
    /// A LIFO queue holding at most `maxsize` items (0: unbounded).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::LifoQueue::<u8>::new(4);
    /// assert_eq!(q.maxsize(), 4);
    /// ```
    pub fn new(maxsize: usize) -> LifoQueue<T> {
        LifoQueue(Queue::with_order(maxsize, Order::Lifo))
    }
}

/// A [`Queue`] that hands out the smallest item first (asyncio's
/// `PriorityQueue`, a binary heap like Python's `heapq`). The order of
/// equal items is unspecified: put `(priority, sequence, item)` tuples for
/// FIFO among equals. It dereferences to `Queue`: every `Queue` method works
/// on it, and `Queue::from` turns it into a plain `Queue` handle.
///
/// A woken `get` takes the smallest item when it runs, not the one whose
/// arrival woke it.
///
/// # Examples
///
/// ```
/// use ringloop::sync::PriorityQueue;
///
/// let q = PriorityQueue::new(0);
/// for job in [(3, "low"), (1, "urgent"), (2, "normal")] {
///     q.put_nowait(job).unwrap();
/// }
/// assert_eq!(q.get_nowait(), Ok((1, "urgent")));
/// assert_eq!(q.get_nowait(), Ok((2, "normal")));
/// ```
pub struct PriorityQueue<T>(Queue<T>);

impl<T: Ord> PriorityQueue<T> {
    /// A priority queue holding at most `maxsize` items (0: unbounded).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = ringloop::sync::PriorityQueue::<u8>::new(0);
    /// assert!(q.empty());
    /// ```
    pub fn new(maxsize: usize) -> PriorityQueue<T> {
        PriorityQueue(Queue::with_order(maxsize, Order::Priority(T::cmp)))
    }
}

/// Clone, `Deref<Target = Queue<T>>`, `From<_> for Queue<T>` and `Debug`
/// for a queue flavour.
macro_rules! flavour_impls {
    ($name:ident) => {
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name(self.0.clone())
            }
        }

        impl<T> Deref for $name<T> {
            type Target = Queue<T>;

            fn deref(&self) -> &Queue<T> {
                &self.0
            }
        }

        impl<T> From<$name<T>> for Queue<T> {
            fn from(q: $name<T>) -> Queue<T> {
                q.0
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

flavour_impls!(LifoQueue);
flavour_impls!(PriorityQueue);
