//! `Queue`, `LifoQueue`, `PriorityQueue` (SEMANTICS Q1, Q2): waiting,
//! the `_nowait` variants, `task_done`/`join`, `shutdown`, and dropped
//! `get`/`put` futures.

mod sync_support;

use std::cell::Cell;
use std::rc::Rc;

use ringloop::sync::{LifoQueue, PriorityQueue, Queue, TryGetError, TryPutError};
use ringloop::{Task, spawn, yield_now};
use sync_support::{Log, Rng, new_log, yields};

fn getter<T: 'static>(q: &Queue<T>, log: &Log<(usize, T)>, id: usize) -> Task<()> {
    let (q, log) = (q.clone(), log.clone());
    spawn(async move {
        if let Ok(item) = q.get().await {
            log.borrow_mut().push((id, item));
        }
    })
}

fn putter<T: 'static>(q: &Queue<T>, item: T) -> Task<bool> {
    let q = q.clone();
    spawn(async move { q.put(item).await.is_ok() })
}

// ---------------------------------------------------------------- Q1 basics

#[test]
fn q1_put_waits_while_full_and_get_while_empty() {
    ringloop::run(async {
        let q = Queue::new(2);
        let log = new_log();
        let g = getter(&q, &log, 0);
        yields(2).await;
        assert!(!g.is_done()); // empty: waits
        q.put(1).await.unwrap(); // straight to the waiting getter
        g.await.unwrap();
        assert_eq!(*log.borrow(), [(0, 1)]);

        q.put(2).await.unwrap();
        q.put(3).await.unwrap();
        assert!(q.full());
        let p = putter(&q, 4);
        yields(2).await;
        assert!(!p.is_done()); // full: waits
        assert_eq!(q.get().await, Ok(2));
        assert!(p.await.unwrap());
        assert_eq!(q.get().await, Ok(3));
        assert_eq!(q.get().await, Ok(4));
        assert!(q.empty());
    })
    .unwrap();
}

#[test]
fn q1_nowait_variants_fail_instead_of_waiting() {
    let q = Queue::new(1);
    assert!(matches!(q.get_nowait(), Err(TryGetError::Empty(_))));
    q.put_nowait("a").unwrap();
    let err = q.put_nowait("b").unwrap_err();
    assert!(matches!(err, TryPutError::Full(_)));
    assert_eq!(err.to_string(), "queue is full");
    assert_eq!(err.into_inner(), "b");
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get_nowait(), Ok("a"));
    assert_eq!(q.get_nowait().unwrap_err().to_string(), "queue is empty");
}

#[test]
fn q1_maxsize_zero_is_unbounded() {
    let q = Queue::new(0);
    for i in 0..10_000 {
        q.put_nowait(i).unwrap();
    }
    assert!(!q.full());
    assert_eq!(q.qsize(), 10_000);
    assert_eq!(q.maxsize(), 0);
}

#[test]
fn q1_getters_and_putters_are_served_in_fifo_order() {
    ringloop::run(async {
        let q = Queue::new(1);
        let log = new_log();
        let getters: Vec<_> = (0..4).map(|i| getter(&q, &log, i)).collect();
        yield_now().await;
        for item in 10..14 {
            q.put(item).await.unwrap();
        }
        for g in getters {
            g.await.unwrap();
        }
        assert_eq!(*log.borrow(), [(0, 10), (1, 11), (2, 12), (3, 13)]);

        q.put_nowait(0).unwrap();
        let putters: Vec<_> = (1..5).map(|i| putter(&q, i)).collect();
        yield_now().await;
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(q.get().await.unwrap());
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
        for p in putters {
            assert!(p.await.unwrap());
        }
    })
    .unwrap();
}

#[test]
fn q1_task_done_and_join() {
    ringloop::run(async {
        let q = Queue::new(0);
        q.join().await; // nothing put: at once
        for i in 0..3 {
            q.put(i).await.unwrap();
        }
        let joined = Rc::new(Cell::new(false));
        let joiner = spawn({
            let (q, joined) = (q.clone(), joined.clone());
            async move {
                q.join().await;
                joined.set(true);
            }
        });
        for _ in 0..3 {
            q.get().await.unwrap();
        }
        yields(2).await;
        assert!(!joined.get()); // taken, but not marked done
        q.task_done().unwrap();
        q.task_done().unwrap();
        yields(2).await;
        assert!(!joined.get());
        q.task_done().unwrap();
        joiner.await.unwrap();
        assert!(joined.get());
        let err = q.task_done().unwrap_err();
        assert_eq!(err.to_string(), "task_done() called too many times");
    })
    .unwrap();
}

#[test]
fn q1_lifo_queue_hands_out_the_newest_first() {
    ringloop::run(async {
        let q = LifoQueue::new(3);
        for i in 0..3 {
            q.put(i).await.unwrap();
        }
        assert!(q.full());
        let mut got = Vec::new();
        while let Ok(i) = q.get_nowait() {
            got.push(i);
        }
        assert_eq!(got, [2, 1, 0]);
        let plain: Queue<i32> = Queue::from(q.clone());
        plain.put_nowait(7).unwrap();
        assert_eq!(q.get_nowait(), Ok(7)); // the same queue
        assert!(format!("{q:?}").starts_with("LifoQueue {"));
    })
    .unwrap();
}

#[test]
fn q1_priority_queue_hands_out_the_smallest_first() {
    ringloop::run(async {
        let q = PriorityQueue::new(0);
        let mut rng = Rng::new(7);
        let mut items: Vec<u64> = (0..500).map(|_| rng.next() % 100).collect();
        for &i in &items {
            q.put(i).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..items.len() {
            got.push(q.get().await.unwrap());
        }
        items.sort_unstable();
        assert_eq!(got, items);
        assert!(format!("{q:?}").starts_with("PriorityQueue {"));
    })
    .unwrap();
}

#[test]
fn q1_priority_queue_serves_a_woken_getter_the_smallest_item_at_its_turn() {
    ringloop::run(async {
        let q = PriorityQueue::new(0);
        let log = new_log();
        let g = getter(&q, &log, 0);
        yield_now().await;
        q.put_nowait(5).unwrap(); // wakes `g`...
        q.put_nowait(1).unwrap(); // ... which takes the smallest when it runs
        g.await.unwrap();
        assert_eq!(*log.borrow(), [(0, 1)]);
        assert_eq!(q.get_nowait(), Ok(5));
    })
    .unwrap();
}

#[test]
fn q1_empty_and_full_agree_with_the_nowait_variants_while_an_item_is_reserved() {
    ringloop::run(async {
        let q = Queue::new(1);
        let log = new_log();
        let g = getter(&q, &log, 0);
        yield_now().await;
        q.put_nowait(1).unwrap(); // reserved for `g`, which has not run
        assert_eq!(q.qsize(), 1);
        assert!(q.empty());
        assert!(matches!(q.get_nowait(), Err(TryGetError::Empty(_))));
        assert!(q.full());
        g.await.unwrap();
        assert_eq!(*log.borrow(), [(0, 1)]);

        q.put_nowait(2).unwrap();
        let p = putter(&q, 3);
        yield_now().await;
        assert_eq!(q.get_nowait(), Ok(2)); // the slot is reserved for `p`
        assert!(q.full());
        assert!(matches!(q.put_nowait(4), Err(TryPutError::Full(_))));
        assert!(p.await.unwrap());
        assert_eq!(q.get_nowait(), Ok(3));
    })
    .unwrap();
}

// ---------------------------------------------------------------- shutdown

#[test]
fn q1_shutdown_fails_puts_drains_gets_then_fails_them() {
    ringloop::run(async {
        let q = Queue::new(2);
        q.put(1).await.unwrap();
        q.put(2).await.unwrap();
        let blocked_put = putter(&q, 3);
        yield_now().await;
        q.shutdown(false);
        assert!(q.is_shut_down());
        assert!(!blocked_put.await.unwrap()); // woken with an error
        let err = q.put(4).await.unwrap_err();
        assert_eq!(err.into_inner(), 4);
        assert!(matches!(q.put_nowait(5), Err(TryPutError::ShutDown(_))));
        assert_eq!(q.get().await, Ok(1));
        assert_eq!(q.get_nowait(), Ok(2));
        assert!(q.get().await.is_err());
        assert!(matches!(q.get_nowait(), Err(TryGetError::ShutDown(_))));
    })
    .unwrap();
}

#[test]
fn q1_shutdown_wakes_the_tasks_waiting_in_get() {
    ringloop::run(async {
        let q: Queue<u8> = Queue::new(0);
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                spawn(async move { q.get().await })
            })
            .collect();
        yield_now().await;
        q.shutdown(false);
        for t in waiting {
            assert_eq!(
                t.await.unwrap().unwrap_err().to_string(),
                "queue is shut down"
            );
        }
    })
    .unwrap();
}

#[test]
fn q1_shutdown_keeps_an_item_reserved_for_a_woken_getter() {
    ringloop::run(async {
        let q = Queue::new(0);
        let log = new_log();
        let (a, b) = (getter(&q, &log, 1), getter(&q, &log, 2));
        yield_now().await;
        q.put_nowait(10).unwrap(); // reserved for `a`
        q.shutdown(false); // `b` fails; `a` still gets its item
        a.await.unwrap();
        b.await.unwrap();
        assert_eq!(*log.borrow(), [(1, 10)]);
    })
    .unwrap();
}

/// Counts drops of its values.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn q1_immediate_shutdown_drops_the_items_releases_join_and_fails_gets() {
    ringloop::run(async {
        let dropped = Rc::new(Cell::new(0));
        let q = Queue::new(0);
        for _ in 0..3 {
            q.put(Counted(dropped.clone())).await.unwrap();
        }
        let taken = new_log();
        q.get().await.map(drop).unwrap(); // one taken, not marked done
        let joiner = spawn({
            let q = q.clone();
            async move { q.join().await }
        });
        yield_now().await;
        let g = getter(&q, &taken, 0);
        yield_now().await; // `g` took one at once
        assert_eq!(taken.borrow().len(), 1);
        assert_eq!(q.qsize(), 1);
        q.shutdown(true);
        assert_eq!(dropped.get(), 2); // the one left
        assert_eq!(q.qsize(), 0);
        yields(2).await;
        assert!(!joiner.is_done()); // two taken items still not done
        q.task_done().unwrap();
        q.task_done().unwrap();
        joiner.await.unwrap();
        assert!(q.get().await.is_err());
        g.await.unwrap();
        taken.borrow_mut().clear();
        assert_eq!(dropped.get(), 3);
    })
    .unwrap();
}

#[test]
fn q1_immediate_shutdown_takes_back_an_item_reserved_for_a_woken_getter() {
    ringloop::run(async {
        let q = Queue::new(0);
        let got = Rc::new(Cell::new(None));
        let g = spawn({
            let (q, got) = (q.clone(), got.clone());
            async move { got.set(Some(q.get().await.is_ok())) }
        });
        yield_now().await;
        q.put_nowait(1).unwrap(); // reserved for `g`
        q.shutdown(true); // ... and dropped
        g.await.unwrap();
        assert_eq!(got.get(), Some(false));
        assert_eq!(q.qsize(), 0);
    })
    .unwrap();
}

#[test]
fn q1_an_item_dropped_by_shutdown_may_use_the_queue_in_its_drop() {
    struct Peek(Queue<Peek>, Rc<Cell<Option<usize>>>);
    impl Drop for Peek {
        fn drop(&mut self) {
            self.1.set(Some(self.0.qsize()));
        }
    }
    let seen = Rc::new(Cell::new(None));
    let q = Queue::new(0);
    q.put_nowait(Peek(q.clone(), seen.clone())).unwrap();
    q.shutdown(true); // no `RefCell` borrow is held while it drops
    assert_eq!(seen.get(), Some(0));
}

// ---------------------------------------------------------------- Q2

#[test]
fn q2_a_get_dropped_after_an_item_was_reserved_for_it_passes_the_item_on() {
    ringloop::run(async {
        let q = Queue::new(0);
        let log = new_log();
        let a = getter(&q, &log, 1);
        let b = getter(&q, &log, 2);
        yield_now().await;
        q.put_nowait(10).unwrap(); // reserved for `a`
        drop(a); // cancelled before it ran: `b` gets the item
        b.await.unwrap();
        assert_eq!(*log.borrow(), [(2, 10)]);

        // Nobody else waits: the item stays queued.
        let c = getter(&q, &log, 3);
        yield_now().await;
        q.put_nowait(11).unwrap();
        drop(c);
        assert_eq!(q.qsize(), 1);
        assert_eq!(q.get_nowait(), Ok(11));
    })
    .unwrap();
}

#[test]
fn q2_a_dropped_put_never_inserts_its_item() {
    ringloop::run(async {
        let q = Queue::new(1);
        q.put_nowait(1).unwrap();
        let a = putter(&q, 2);
        let b = putter(&q, 3);
        yield_now().await;
        drop(a); // waiting: leaves the queue with its item
        assert_eq!(q.get().await, Ok(1)); // frees the slot for `b`
        assert!(b.await.unwrap());
        assert_eq!(q.get_nowait(), Ok(3));

        // A slot reserved for a dropped put goes to the next put.
        q.put_nowait(4).unwrap();
        let c = putter(&q, 5);
        let d = putter(&q, 6);
        yield_now().await;
        assert_eq!(q.get_nowait(), Ok(4)); // slot reserved for `c`
        drop(c); // ... which is cancelled: `d` gets the slot
        assert!(d.await.unwrap());
        assert_eq!(q.get_nowait(), Ok(6));
        assert!(q.empty());
    })
    .unwrap();
}

#[test]
fn q2_a_get_future_dropped_unpolled_takes_nothing() {
    let q = Queue::new(0);
    q.put_nowait(1).unwrap();
    drop(q.get());
    drop(q.put(2));
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get_nowait(), Ok(1));
}
