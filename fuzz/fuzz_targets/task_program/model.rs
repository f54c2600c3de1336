//! The `task_program` target's bookkeeping: what every child future, queue
//! item and task output did, recorded by the things themselves (drop-counting
//! tokens, the child bodies), and the checks made against it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use ringloop::sync::{Lock, LockGuard, Queue, Semaphore, SemaphorePermit};
use ringloop::{JoinError, TaskHandle};

/// Actions in a child's body (at most [`MAX_ACTS`] of them).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Act {
    /// Sleeps `(n % 8) * 250` µs.
    Sleep(u8),
    /// Yields `n % 4` times.
    Yield(u8),
    /// `Queue::get`.
    Get,
    /// `Queue::put` of a new item.
    Put,
    /// Takes the lock, holds it across `hold(n)`, releases it.
    Lock(u8),
    /// Takes a semaphore permit, holds it across `hold(n)`, releases it.
    Acquire(u8),
    /// `wait_for(get, t)`.
    GetWait(u8),
    /// `wait_for(put, t)` of a new item.
    PutWait(u8),
    /// Spawns a grandchild task (its actions derived from `seed`), awaits
    /// it under `wait_for(t)`, drops (cancels) it if not done: a task
    /// cancelled, synchronously, from inside another task, or from inside
    /// that task's own cancellation.
    Sub { seed: u8, t: u8 },
    /// Panics (payload [`ChildPanic`]).
    Panic,
    /// The output is marked as a failure (`Err` for `try_gather` and
    /// `task_group` children).
    Fail,
}

/// A child future: its body, and whether its drop guard panics.
#[derive(Arbitrary, Debug, Clone)]
pub struct ChildDef {
    pub acts: Vec<Act>,
    pub panic_on_drop: bool,
}

pub const MAX_ACTS: usize = 4;

/// The payload of every panic this target provokes on purpose.
pub struct ChildPanic;

/// How a child's body ended (recorded by the body itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Returned,
    Panicked,
}

/// How a child future runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// A task the harness spawned, with a done callback.
    #[default]
    Ours,
    /// A task spawned by a combinator (`try_gather`, `task_group`).
    Combinator,
    /// Polled in place by the program (under `wait_for`).
    InPlace,
}

#[derive(Debug, Default)]
pub struct ChildRec {
    pub end: Option<End>,
    /// Times its future was dropped.
    pub dropped: u32,
    pub kind: Kind,
    /// Its task (recorded at its first poll), to cancel it from outside.
    pub handle: Option<TaskHandle>,
    pub done_callbacks: u32,
    /// Times its result was seen through a handle or a combinator.
    pub observed: u32,
    /// `cancel()` returned true for it.
    pub cancel_requested: bool,
    pub panic_on_drop: bool,
}

#[derive(Debug, Default)]
pub struct ItemRec {
    /// A `put` / `put_nowait` returned `Ok` for it.
    pub put: bool,
    /// A `get` / `get_nowait` returned it.
    pub got: bool,
    pub dropped: u32,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub children: Vec<ChildRec>,
    pub items: Vec<ItemRec>,
    pub outs_created: u32,
    pub outs_dropped: u32,
    pub lock_holders: u32,
    pub permits_held: usize,
    /// Tickets of the `lock()` calls waiting, in the order they started to.
    pub lock_waiters: VecDeque<u64>,
    pub next_ticket: u64,
}

thread_local! {
    static STATS: RefCell<Stats> = RefCell::default();
    /// After it, sleeps and timeouts are zero (keeps executions short).
    static BUDGET_END: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` on the records (never drops a token inside: no re-entry).
pub fn with<R>(f: impl FnOnce(&mut Stats) -> R) -> R {
    STATS.with(|s| f(&mut s.borrow_mut()))
}

pub fn reset(budget: Duration) {
    with(|s| *s = Stats::default());
    BUDGET_END.with(|b| b.set(Some(Instant::now() + budget)));
}

fn over_budget() -> bool {
    BUDGET_END.with(|b| b.get().is_none_or(|end| Instant::now() >= end))
}

/// `n` steps of `unit_us`, or zero once the time budget is spent.
pub fn dur(n: u64, unit_us: u64) -> Duration {
    if over_budget() {
        Duration::ZERO
    } else {
        Duration::from_micros(n * unit_us)
    }
}

/// A `wait_for` timeout: 0–3 ms (0 never polls the future).
pub fn timeout(n: u8) -> Option<Duration> {
    Some(dur(u64::from(n % 16), 200))
}

/// A queue item: counts its drops. Ordered by id (for `PriorityQueue`).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item(pub usize);

impl Item {
    pub fn new() -> Item {
        Item(with(|s| {
            s.items.push(ItemRec::default());
            s.items.len() - 1
        }))
    }

    /// Records that `put` returned `Ok` for item `id`.
    pub fn mark_put(id: usize) {
        with(|s| s.items[id].put = true);
    }

    /// Records that a `get` returned this item, then drops it.
    pub fn take(self) {
        let id = self.0;
        with(|s| {
            let r = &mut s.items[id];
            assert!(r.put, "item {id} got but never put");
            assert!(!r.got, "item {id} got twice");
            r.got = true;
        });
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        let n = with(|s| {
            s.items[self.0].dropped += 1;
            s.items[self.0].dropped
        });
        assert_eq!(n, 1, "item {} dropped twice", self.0);
    }
}

/// A child's output: counts its drops.
#[derive(Debug)]
pub struct Out {
    pub id: usize,
    pub fail: bool,
}

impl Out {
    pub fn new(id: usize, fail: bool) -> Out {
        with(|s| s.outs_created += 1);
        Out { id, fail }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        with(|s| s.outs_dropped += 1);
    }
}

/// The primitives the children share.
pub struct World {
    pub q: Queue<Item>,
    pub lock: Lock,
    pub sem: Semaphore,
    pub permits: usize,
}

/// `lock.lock()`, checking FIFO fairness (SEMANTICS Q2): a `lock()` that
/// had to wait gets the lock only when every `lock()` that started waiting
/// before it got it or was dropped, and one that did not wait found nobody
/// waiting.
pub async fn fair_lock(lock: &Lock) -> LockGuard {
    /// Leaves the waiting line when the `lock()` is dropped.
    struct Ticket(Option<u64>);
    impl Drop for Ticket {
        fn drop(&mut self) {
            if let Some(t) = self.0 {
                with(|s| s.lock_waiters.retain(|&w| w != t));
            }
        }
    }
    let mut fut = pin!(lock.lock());
    let mut ticket = Ticket(None);
    poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Pending => {
            if ticket.0.is_none() {
                ticket.0 = Some(with(|s| {
                    s.next_ticket += 1;
                    s.lock_waiters.push_back(s.next_ticket);
                    s.next_ticket
                }));
            }
            Poll::Pending
        }
        Poll::Ready(g) => {
            with(|s| match ticket.0.take() {
                Some(t) => {
                    assert_eq!(
                        s.lock_waiters.front(),
                        Some(&t),
                        "lock: a later waiter overtook"
                    );
                    s.lock_waiters.pop_front();
                }
                None => assert!(
                    s.lock_waiters.is_empty(),
                    "lock: taken at once while others wait"
                ),
            });
            Poll::Ready(g)
        }
    })
    .await
}

/// A held lock or permit, counted while held.
pub enum Held {
    Lock(#[allow(dead_code)] LockGuard),
    Permit(#[allow(dead_code)] SemaphorePermit),
}

impl Held {
    pub fn lock(g: LockGuard) -> Held {
        with(|s| {
            assert_eq!(s.lock_holders, 0, "two holders of the lock");
            s.lock_holders = 1;
        });
        Held::Lock(g)
    }

    pub fn permit(p: SemaphorePermit, permits: usize) -> Held {
        with(|s| {
            s.permits_held += 1;
            assert!(s.permits_held <= permits, "more permits held than exist");
        });
        Held::Permit(p)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Counted as released first: the release hands the lock or permit
        // straight to the next waiter.
        with(|s| match self {
            Held::Lock(_) => s.lock_holders -= 1,
            Held::Permit(_) => s.permits_held -= 1,
        });
    }
}

/// Checks a child's result against what its body did, and that no result
/// of it was seen before.
pub fn observe(id: usize, res: &Result<Out, JoinError>) {
    with(|s| {
        let r = &mut s.children[id];
        r.observed += 1;
        assert_eq!(r.observed, 1, "child {id}: result seen twice");
        match res {
            Ok(out) => {
                assert_eq!(out.id, id, "child {id}: another child's output");
                assert_eq!(r.end, Some(End::Returned), "child {id}: Ok but {r:?}");
                assert!(
                    !r.cancel_requested,
                    "child {id}: Ok after cancel() returned true"
                );
                assert!(!r.panic_on_drop, "child {id}: Ok but its drop panics");
            }
            Err(e) if e.is_panic() => assert!(
                r.end == Some(End::Panicked) || r.panic_on_drop,
                "child {id}: panic reported but {r:?}"
            ),
            Err(e) => {
                assert!(e.is_cancelled(), "child {id}: {e:?}");
                assert!(
                    !r.panic_on_drop,
                    "child {id}: cancelled, but its drop panics"
                );
                assert_eq!(r.end, None, "child {id}: cancelled after its body ended");
            }
        }
    });
}

/// Cancels the `i`th (modulo) child task still running through its
/// `TaskHandle`, as code outside the combinators would.
pub fn cancel_any(i: u8) {
    let h = with(|s| {
        let live: Vec<usize> = (0..s.children.len())
            .filter(|&id| {
                let r = &s.children[id];
                r.handle.is_some() && r.end.is_none() && r.dropped == 0
            })
            .collect();
        let id = *live.get(usize::from(i) % live.len().max(1))?;
        Some((id, s.children[id].handle.clone()?))
    });
    if let Some((id, h)) = h
        && h.cancel()
    {
        with(|s| s.children[id].cancel_requested = true);
    }
}

/// Our tasks not finished yet.
pub fn ours_pending() -> Vec<usize> {
    with(|s| {
        (0..s.children.len())
            .filter(|&id| {
                let r = &s.children[id];
                r.kind == Kind::Ours && r.handle.as_ref().is_some_and(|h| !h.is_done())
            })
            .collect()
    })
}

/// Whether one of `ids` was cancelled from outside.
pub fn any_cancelled(ids: &[usize]) -> bool {
    with(|s| ids.iter().any(|&id| s.children[id].cancel_requested))
}

/// Drops the recorded task handles (outside the records' borrow).
pub fn forget_handles() {
    let hs: Vec<TaskHandle> = with(|s| {
        s.children
            .iter_mut()
            .filter_map(|r| r.handle.take())
            .collect()
    });
    drop(hs);
}

/// Whether child `id`'s future was dropped (exactly once).
pub fn dropped(id: usize) -> bool {
    with(|s| s.children[id].dropped == 1)
}
