//! The queue other threads use to hand work to a loop, and the handshake
//! that wakes the loop only when it is parked.
//!
//! A producer pushes under the lock, then sets `pending`; the owner sets
//! `parked` before it blocks and re-checks `pending`. Each side puts a
//! `SeqCst` fence between its store and its load of the other's flag, so
//! either the owner sees `pending` and does not block, or the producer sees
//! `parked` and must signal the owner (write its eventfd): a wake-up cannot
//! be lost, and a busy loop costs producers no syscall. The loom models in
//! `loom_tests` check this. (Fences rather than `SeqCst` stores and loads:
//! both are correct, but loom models `SeqCst` accesses only as `AcqRel`,
//! which allows this store-buffering pattern to fail, while it models
//! `SeqCst` fences exactly; see tokio-rs/loom#180.)

use crate::loom::{AtomicBool, Mutex, Ordering, fence, lock};

pub(crate) struct RemoteQueue<T> {
    items: Mutex<Vec<T>>,
    /// Something was pushed since the owner last drained.
    pending: AtomicBool,
    /// The owner is (about to be) blocked and must be signalled.
    parked: AtomicBool,
    /// The owner is gone or closed: pushes are refused.
    closed: AtomicBool,
}

/// What [`RemoteQueue::push`] asks of the producer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; the owner is running and will drain it.
    Queued,
    /// Queued; the owner is parked: signal it.
    Signal,
}

impl<T> RemoteQueue<T> {
    pub(crate) fn new() -> RemoteQueue<T> {
        RemoteQueue {
            items: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues `item` for the owner, or gives it back if the queue is closed.
    pub(crate) fn push(&self, item: T) -> Result<Pushed, T> {
        let mut items = lock(&self.items);
        // Checked under the lock: `close` sets it under the same lock, so
        // nothing is queued after `close` took the items.
        if self.closed.load(Ordering::Acquire) {
            return Err(item);
        }
        items.push(item);
        drop(items);
        self.pending.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) {
            Ok(Pushed::Signal)
        } else {
            Ok(Pushed::Queued)
        }
    }

    /// Owner: whether something was pushed since the last drain. A plain
    /// load: a push that happens-before this call is seen (the owner is the
    /// only one that clears the flag, when it drains), so the owner can
    /// drain before queueing work of its own and keep one FIFO order.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Owner: marks itself parked. False (and not parked) if work is
    /// already pending, in which case the owner must not block.
    pub(crate) fn park(&self) -> bool {
        self.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.pending.load(Ordering::Relaxed) {
            self.parked.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Owner: no longer blocked.
    pub(crate) fn unpark(&self) {
        self.parked.store(false, Ordering::Relaxed);
    }

    /// Owner: moves everything queued into `out`, which must be empty
    /// (nothing happens, cheaply, if nothing is queued). The queue and `out`
    /// swap buffers, so neither side allocates once both have grown: pass
    /// the same emptied `out` every time.
    pub(crate) fn drain_into(&self, out: &mut Vec<T>) {
        debug_assert!(out.is_empty());
        // A plain load first: the common case (nothing) costs no RMW.
        if !self.pending.load(Ordering::Relaxed) || !self.pending.swap(false, Ordering::Acquire) {
            return;
        }
        std::mem::swap(&mut *lock(&self.items), out);
    }

    /// [`drain_into`](RemoteQueue::drain_into) a new vector (the models).
    #[cfg(all(test, loom))]
    fn drain(&self) -> Vec<T> {
        let mut out = Vec::new();
        self.drain_into(&mut out);
        out
    }

    /// Refuses later pushes and returns what was queued.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut items = lock(&self.items);
        self.closed.store(true, Ordering::Release);
        std::mem::take(&mut *items)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// loom models of the park/push handshake and of `close` racing `push`
/// (`scripts/loom.sh`). The owner blocks on a model of its eventfd, so a
/// lost wake-up shows up as a deadlock loom reports.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::{Arc, Condvar};
    use loom::thread;

    use super::{Pushed, RemoteQueue};
    use crate::loom::{Mutex, lock};

    /// The loop's eventfd: writes add to a counter; the owner's blocking
    /// read waits for it to be non-zero and resets it.
    struct EventFd {
        count: Mutex<u64>,
        cond: Condvar,
    }

    impl EventFd {
        fn new() -> EventFd {
            EventFd {
                count: Mutex::new(0),
                cond: Condvar::new(),
            }
        }

        fn write(&self) {
            *lock(&self.count) += 1;
            self.cond.notify_one();
        }

        fn read(&self) {
            let mut count = lock(&self.count);
            while *count == 0 {
                count = self.cond.wait(count).unwrap();
            }
            *count = 0;
        }
    }

    /// A producer: pushes, and signals the owner if it is parked.
    fn push(q: &RemoteQueue<usize>, efd: &EventFd, item: usize) {
        if q.push(item).unwrap() == Pushed::Signal {
            efd.write();
        }
    }

    /// The owner's loop, as in `EventLoop::run_once`: drain, and block
    /// until signalled only if `park` allows it. Returns what it drained.
    fn own(q: &RemoteQueue<usize>, efd: &EventFd, expected: usize) -> Vec<usize> {
        let mut got = Vec::new();
        loop {
            got.extend(q.drain());
            if got.len() >= expected {
                break;
            }
            if q.park() {
                efd.read();
                q.unpark();
            }
        }
        got.sort_unstable();
        got
    }

    /// Runs `producers` threads pushing `each` items apiece against the
    /// owner, and checks every item is drained exactly once.
    fn handshake(producers: usize, each: usize) {
        loom::model(move || {
            let q = Arc::new(RemoteQueue::new());
            let efd = Arc::new(EventFd::new());
            let threads: Vec<_> = (0..producers)
                .map(|p| {
                    let (q, efd) = (q.clone(), efd.clone());
                    thread::spawn(move || {
                        for i in 0..each {
                            push(&q, &efd, p * each + i);
                        }
                    })
                })
                .collect();
            let got = own(&q, &efd, producers * each);
            assert_eq!(got, (0..producers * each).collect::<Vec<_>>());
            threads.into_iter().for_each(|t| t.join().unwrap());
            assert!(q.drain().is_empty());
        });
    }

    #[test]
    fn loom_remote_one_producer_no_lost_wakeup() {
        handshake(1, 2);
    }

    #[test]
    fn loom_remote_two_producers_no_lost_wakeup() {
        handshake(2, 1);
    }

    /// A push that happens-before the owner's check (here: the producer
    /// publishes a flag after pushing, and the owner saw the flag) is seen
    /// by `has_pending`, and the drain that follows gets the item: what
    /// the loop relies on to queue its own `call_soon` after it.
    #[test]
    fn loom_remote_push_seen_by_a_later_owner_check() {
        use loom::sync::atomic::{AtomicBool, Ordering};
        loom::model(|| {
            let q = Arc::new(RemoteQueue::new());
            let published = Arc::new(AtomicBool::new(false));
            let producer = thread::spawn({
                let (q, published) = (q.clone(), published.clone());
                move || {
                    q.push(1usize).unwrap();
                    published.store(true, Ordering::Release);
                }
            });
            let mut got = Vec::new();
            if published.load(Ordering::Acquire) {
                assert!(q.has_pending());
                got = q.drain();
                assert_eq!(got, [1]);
            }
            producer.join().unwrap();
            got.extend(q.drain());
            assert_eq!(got, [1]);
        });
    }

    /// `close` racing `push` (after a drain): the item is drained, taken by
    /// `close`, or given back to the pusher, exactly one of the three; and
    /// nothing is queued after `close`.
    #[test]
    fn loom_remote_close_racing_push() {
        loom::model(|| {
            let q = Arc::new(RemoteQueue::new());
            let producer = thread::spawn({
                let q = q.clone();
                move || q.push(7usize).err()
            });
            let mut seen = q.drain();
            seen.extend(q.close());
            seen.extend(producer.join().unwrap());
            assert_eq!(seen, [7]);
            assert!(q.is_closed());
            assert_eq!(q.push(8), Err(8));
            assert!(q.drain().is_empty());
        });
    }
}
