//! A program of task operations, decoded from the input, run on a real
//! `EventLoop` (a new one per input): spawns of small child futures (sleep,
//! yield, queue get/put, also under `wait_for`, lock and semaphore permit
//! held across a sleep, a grandchild task awaited under `wait_for` and
//! dropped if late, panic, return a failure, a drop guard that may panic),
//! `Task::cancel`, `TaskHandle::cancel` on any running child task (whoever
//! spawned it), dropping and detaching tasks, awaiting them under
//! `wait_for`, `shield`, a future polled in place under `wait_for`,
//! `gather` (plain and `return_exceptions`), `try_gather`, `task_group`, a
//! FIFO, LIFO or priority queue's `put`/`get` (bounded by the input's
//! `maxsize`) with and without waiting, the lock and semaphore taken by the
//! program, queue `shutdown`. Every wait of the program itself has a
//! timeout of at most 3 ms, sleeps at most ~2 ms, and after 15 ms all of
//! them become zero, so an input runs fast. The program ends in one of
//! three ways: drained (the tasks left dropped, the queue shut down, every
//! task must then finish), `cancel_all_tasks` with tasks still waiting, or
//! `close` with tasks still waiting and their handles outliving it.
//!
//! Invariants, each checked where it must hold:
//! - every child future is dropped exactly once (a guard moved into it); a
//!   task dropped, a `wait_for` timed out, a `gather`/`try_gather`/
//!   `task_group` dropped or returned has dropped the futures it cancelled
//!   by the time it returns (W2, G5, TG1);
//! - every task resolves exactly once: one done callback per task the
//!   harness spawned (those `cancel_all_tasks` cancels have theirs when it
//!   returns); a result is seen at most once, and agrees with what the body
//!   did (`Ok` only if it returned, never after `cancel()` said true; a
//!   panic only if it panicked or its drop panics; cancelled only if it had
//!   not ended); `gather` keeps argument order; a `task_group` that returned
//!   `Ok` has the value of every child not cancelled from outside;
//! - every task output and queue item is dropped exactly once; no item is
//!   lost or duplicated: a `get` returns only items put, each once, and
//!   after each step `qsize` equals the items put, not got, not discarded;
//! - no permit is lost: at most one lock holder and never more permits held
//!   than exist at any step; at the end the lock is free and every permit
//!   is back; the lock is FIFO (SEMANTICS Q2): a `lock()` that waited gets
//!   it only after every earlier waiter got it or was dropped, and one that
//!   did not wait found nobody waiting;
//! - the loop drains and closes: drained, every task finishes within 5 s
//!   (else: a hang, reported as such); in every ending `all_tasks()` ends
//!   empty and `close()` succeeds. The whole program runs under a 10 s
//!   `wait_for`, and a watchdog thread aborts an input running over 30 s: a
//!   hang is reported as one, never left to libFuzzer's 20-minute timeout.
//!
//! Harness note: a child body drops its guard before building its output,
//! because Rust leaks a return value when a local's destructor panics
//! (rust-lang/rust#47949); an output leak there would not be ringloop's.
#![no_main]

#[path = "task_program/child.rs"]
mod child;
#[path = "task_program/combinators.rs"]
mod combinators;
#[path = "task_program/model.rs"]
mod model;
#[path = "common/watchdog.rs"]
mod watchdog;

use std::rc::Rc;
use std::sync::Once;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringloop::sync::{LifoQueue, Lock, PriorityQueue, Queue, Semaphore};
use ringloop::{EventLoop, wait_for};

use child::{CatchPanic, Slot, child, spawn_child};
use combinators::Mode;
use model::{ChildDef, ChildPanic, End, Held, Item, Kind, World, dropped, observe, timeout, with};

const MAX_STEPS: usize = 48;
const BUDGET: Duration = Duration::from_millis(15);

#[derive(Arbitrary, Debug)]
enum Step {
    Spawn(ChildDef),
    /// `wait_for(&mut task, t)` on slot `i % len`.
    Await(u8, u8),
    Cancel(u8),
    Drop(u8),
    Detach(u8),
    Shield(ChildDef, u8),
    ShieldSlot(u8, u8),
    InPlace(ChildDef, u8),
    Gather(Vec<ChildDef>, Mode, u8),
    Group(Vec<ChildDef>, u8),
    PutNowait,
    GetNowait,
    Put(u8),
    Get(u8),
    Lock(u8),
    Acquire(u8),
    Sleep(u8),
    Yield(u8),
    Shutdown(bool),
    /// `TaskHandle::cancel` on a running child task, whoever spawned it.
    CancelAny(u8),
}

#[derive(Arbitrary, Debug)]
struct Program {
    /// How the program ends: drained, `cancel_all_tasks`, or `close` with
    /// tasks still waiting.
    end: u8,
    /// FIFO, LIFO or priority queue.
    flavour: u8,
    maxsize: u8,
    permits: u8,
    steps: Vec<Step>,
}

fn pick(slots: &[Slot], i: u8) -> Option<usize> {
    (!slots.is_empty()).then(|| usize::from(i) % slots.len())
}

fn check_step(w: &World) {
    let (in_queue, holders, held) = with(|s| {
        let in_queue = s
            .items
            .iter()
            .filter(|r| r.put && !r.got && r.dropped == 0)
            .count();
        (in_queue, s.lock_holders, s.permits_held)
    });
    assert_eq!(
        w.q.qsize(),
        in_queue,
        "qsize differs from the items put and not got"
    );
    assert!(holders <= 1);
    assert!(
        held + w.sem.available_permits() <= w.permits,
        "permits created"
    );
}

async fn step(w: &Rc<World>, slots: &mut Vec<Slot>, step: Step) {
    match step {
        Step::Spawn(def) => slots.push(spawn_child(w, &def)),
        Step::Await(i, t) => {
            if let Some(i) = pick(slots, i)
                && let Ok(res) = wait_for(&mut slots[i].task, timeout(t)).await
            {
                observe(slots.swap_remove(i).id, &res);
            }
        }
        Step::Cancel(i) => {
            if let Some(i) = pick(slots, i) {
                let s = &slots[i];
                if s.task.cancel() {
                    with(|st| st.children[s.id].cancel_requested = true);
                } else {
                    assert!(s.task.is_done(), "cancel() false for a task not done");
                }
            }
        }
        Step::Drop(i) => {
            if let Some(i) = pick(slots, i) {
                let s = slots.swap_remove(i);
                drop(s.task);
                // Cancelled at once (or done, its future dropped then).
                assert!(dropped(s.id), "task dropped, child {} live", s.id);
            }
        }
        Step::Detach(i) => {
            if let Some(i) = pick(slots, i) {
                slots.swap_remove(i).task.detach();
            }
        }
        Step::Shield(def, t) => {
            let s = spawn_child(w, &def);
            if let Ok(res) = wait_for(ringloop::shield(s.task), timeout(t)).await {
                observe(s.id, &res);
            }
        }
        Step::ShieldSlot(i, t) => {
            if let Some(i) = pick(slots, i) {
                let s = slots.swap_remove(i);
                if let Ok(res) = wait_for(ringloop::shield(s.task), timeout(t)).await {
                    observe(s.id, &res);
                }
            }
        }
        Step::InPlace(mut def, t) => {
            def.panic_on_drop = false; // it would unwind into the program
            let (id, f) = child(w, &def, Kind::InPlace);
            match wait_for(CatchPanic(Box::pin(f)), timeout(t)).await {
                Ok(Ok(out)) => observe(id, &Ok(out)),
                Ok(Err(())) => assert_eq!(with(|s| s.children[id].end), Some(End::Panicked)),
                // W2: the future was dropped before the timeout returned.
                Err(_) => assert!(dropped(id), "wait_for timed out, child {id} live"),
            }
        }
        Step::Gather(defs, mode, t) => combinators::gather(w, &defs, mode, t).await,
        Step::Group(defs, t) => combinators::group(w, &defs, t).await,
        Step::PutNowait => {
            let item = Item::new();
            let id = item.0;
            if w.q.put_nowait(item).is_ok() {
                Item::mark_put(id);
            }
        }
        Step::GetNowait => {
            if let Ok(item) = w.q.get_nowait() {
                item.take();
            }
        }
        Step::Put(t) => {
            let item = Item::new();
            let id = item.0;
            match wait_for(w.q.put(item), timeout(t)).await {
                Ok(Ok(())) => Item::mark_put(id),
                Ok(Err(_)) => {}
                Err(_) => assert!(
                    with(|s| s.items[id].dropped == 1),
                    "put timed out, item kept"
                ),
            }
        }
        Step::Get(t) => {
            if let Ok(Ok(item)) = wait_for(w.q.get(), timeout(t)).await {
                item.take();
            }
        }
        Step::Lock(t) => {
            if let Ok(g) = wait_for(model::fair_lock(&w.lock), timeout(t)).await {
                let held = Held::lock(g);
                ringloop::yield_now().await;
                drop(held);
            }
        }
        Step::Acquire(t) => {
            if let Ok(p) = wait_for(w.sem.acquire(), timeout(t)).await {
                let held = Held::permit(p, w.permits);
                ringloop::yield_now().await;
                drop(held);
            }
        }
        Step::Sleep(n) => ringloop::sleep(model::dur(u64::from(n % 8), 250)).await,
        Step::Yield(n) => {
            for _ in 0..n % 4 {
                ringloop::yield_now().await;
            }
        }
        Step::Shutdown(immediate) => w.q.shutdown(immediate),
        Step::CancelAny(i) => model::cancel_any(i),
    }
}

async fn program(w: Rc<World>, steps: Vec<Step>) -> Vec<Slot> {
    let mut slots = Vec::new();
    for s in steps.into_iter().take(MAX_STEPS) {
        step(&w, &mut slots, s).await;
        check_step(&w);
    }
    slots
}

/// Drops the tasks left (cancelled at once), ends the queue (its waiters
/// fail), then waits for every task still running (detached, shielded,
/// gathered after a failure) to finish: each body is finite, so they all
/// must, and their done callbacks run.
async fn drain(w: &World, slots: Vec<Slot>) {
    for s in slots {
        drop(s.task);
        assert!(dropped(s.id), "task dropped, child {} live", s.id);
    }
    w.q.shutdown(false);
    let drained = wait_for(
        async {
            while !ringloop::all_tasks().is_empty() {
                ringloop::sleep(Duration::from_micros(100)).await;
            }
        },
        Some(Duration::from_secs(5)),
    )
    .await;
    if drained.is_err() {
        panic!(
            "hang: tasks not finished 5 s after the program: {:?}",
            ringloop::all_tasks()
        );
    }
    // Done callbacks run soon after their task finished.
    for _ in 0..100 {
        if with(|s| {
            s.children
                .iter()
                .all(|r| r.kind != Kind::Ours || r.done_callbacks > 0)
        }) {
            break;
        }
        ringloop::yield_now().await;
    }
}

/// Once every task is gone: each future was dropped once, each task of
/// ours had its done callback (if the loop could still run it), the lock
/// is free, every permit is back, the queue holds what the model says.
fn check_end(w: &World, callbacks_ran: bool) {
    check_step(w);
    with(|s| {
        for (id, r) in s.children.iter().enumerate() {
            assert_eq!(
                r.dropped, 1,
                "child {id}'s future dropped {} times",
                r.dropped
            );
            if r.kind == Kind::Ours && callbacks_ran {
                assert_eq!(
                    r.done_callbacks, 1,
                    "child {id}: {} done callbacks",
                    r.done_callbacks
                );
            }
            assert!(
                r.done_callbacks <= 1,
                "child {id}: {} done callbacks",
                r.done_callbacks
            );
        }
        assert_eq!((s.lock_holders, s.permits_held), (0, 0));
    });
    assert!(!w.lock.locked(), "the lock is still locked");
    assert_eq!(w.sem.available_permits(), w.permits, "permits lost");
}

fn quiet_child_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook(); // libFuzzer's: aborts
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<ChildPanic>() {
                previous(info);
            }
        }));
    });
}

fuzz_target!(|p: Program| {
    let _armed = watchdog::arm();
    quiet_child_panics();
    model::reset(BUDGET);
    let ev = EventLoop::new().expect("an io_uring loop");
    ev.set_exception_handler(|_| {}); // detached children's panics
    let permits = usize::from(p.permits % 3) + 1; // 0 would block acquirers forever
    let maxsize = usize::from(p.maxsize % 4);
    let w = Rc::new(World {
        q: match p.flavour % 3 {
            0 => Queue::new(maxsize),
            1 => Queue::from(LifoQueue::new(maxsize)),
            _ => Queue::from(PriorityQueue::new(maxsize)),
        },
        lock: Lock::new(),
        sem: Semaphore::new(permits),
        permits,
    });
    let end = p.end % 3;
    let run = ev.run_until_complete(wait_for(
        async {
            let slots = program(w.clone(), p.steps).await;
            if end == 0 {
                drain(&w, slots).await;
                None
            } else {
                Some(slots)
            }
        },
        Some(Duration::from_secs(10)),
    ));
    let slots = match run {
        Ok(Ok(slots)) => slots,
        Ok(Err(_)) => panic!("hang: the program did not finish in 10 s"),
        Err(e) => panic!("run_until_complete: {e}"),
    };
    if end == 1 {
        // Cancels the tasks left (their handles still held) and runs the
        // loop until they are gone, their done callbacks included.
        let pending = model::ours_pending();
        ev.cancel_all_tasks().expect("cancel_all_tasks");
        for id in pending {
            let n = with(|s| s.children[id].done_callbacks);
            assert_eq!(
                n, 1,
                "child {id} cancelled by cancel_all_tasks: {n} done callbacks"
            );
        }
        drop(slots);
        // Callbacks of tasks that had finished just before are still queued.
        ev.run_until_complete(async {
            for _ in 0..3 {
                ringloop::yield_now().await;
            }
        })
        .expect("a few more turns");
    } else if end == 2 {
        // Closes with tasks still waiting; their handles outlive the close.
        ev.close().expect("close");
        drop(slots);
    }
    model::forget_handles();
    assert!(
        ev.all_tasks().is_empty(),
        "tasks left: {:?}",
        ev.all_tasks()
    );
    ev.close().expect("close");
    check_end(&w, end != 2);
    drop(ev);
    drop(w); // the queue, with the items left in it
    with(|s| {
        assert_eq!(
            s.outs_created, s.outs_dropped,
            "task outputs leaked or dropped twice"
        );
        for (id, r) in s.items.iter().enumerate() {
            assert_eq!(r.dropped, 1, "item {id} dropped {} times", r.dropped);
        }
    });
});
