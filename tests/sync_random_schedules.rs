//! SEMANTICS Q2 under random schedules: for each of `SEEDS` seeds, a driver
//! task spawns waiters, cancels (drops) random ones at random moments —
//! while they wait, or after they were woken but before they ran — calls
//! the non-waiting operations, and yields. Between steps it checks the
//! primitive against a model: no item, permit or wake-up is lost or
//! duplicated, FIFO order holds, and once the tasks settle nobody waits for
//! something that is available.

mod sync_support;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use ringloop::sync::{
    Barrier, BarrierWaitResult, BoundedSemaphore, Condition, Event, LifoQueue, Lock, LockGuard,
    PriorityQueue, Queue, Semaphore, SemaphorePermit, TryGetError,
};
use ringloop::{Task, spawn, yield_now};
use sync_support::{Log, Progress, Rng, SEEDS, bump, new_log, settle};

/// The live tasks a driver spawned, by id.
struct Tasks {
    live: Vec<(usize, Task<()>)>,
    next_id: usize,
}

impl Tasks {
    fn new() -> Tasks {
        Tasks {
            live: Vec::new(),
            next_id: 0,
        }
    }

    fn spawn(&mut self, make: impl FnOnce(usize) -> Task<()>) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        self.live.push((id, make(id)));
        id
    }

    /// Cancels (drops) a random task not yet done; returns its id.
    fn cancel_random(&mut self, rng: &mut Rng) -> Option<usize> {
        self.live.retain(|(_, t)| !t.is_done());
        if self.live.is_empty() {
            return None;
        }
        let (id, task) = self.live.swap_remove(rng.below(self.live.len()));
        drop(task);
        Some(id)
    }

    fn pending(&self) -> usize {
        self.live.iter().filter(|(_, t)| !t.is_done()).count()
    }

    fn cancel_all(&mut self) {
        self.live.clear();
    }
}

/// Yields 1–3 times.
async fn random_yields(rng: &mut Rng) {
    for _ in 0..1 + rng.below(3) {
        yield_now().await;
    }
}

/// Whether ids logged in completion order only ever increase (FIFO).
fn increasing(ids: &[usize]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

// ---------------------------------------------------------------- queues

#[derive(Clone, Copy, Debug)]
enum Kind {
    Fifo,
    Lifo,
    Priority,
}

/// What the queue must hold (items in insertion order) and what each get
/// received, on one clock.
struct Model {
    kind: Kind,
    items: RefCell<Vec<u64>>,
    /// Insertion rank of every item put.
    rank: RefCell<HashMap<u64, usize>>,
    /// A get's place in line, taken in the poll where it starts.
    tickets: Cell<usize>,
    clock: Cell<usize>,
    /// (ticket, rank of the item received, time).
    received: RefCell<Vec<(usize, usize, usize)>>,
    /// (ticket, time) of every getter task cancelled after it started.
    cancelled: RefCell<Vec<(usize, usize)>>,
    ins: Cell<usize>,
    outs: Cell<usize>,
}

impl Model {
    fn new(kind: Kind) -> Model {
        Model {
            kind,
            items: RefCell::default(),
            rank: RefCell::default(),
            tickets: Cell::new(0),
            clock: Cell::new(0),
            received: RefCell::default(),
            cancelled: RefCell::default(),
            ins: Cell::new(0),
            outs: Cell::new(0),
        }
    }

    fn tick(&self) -> usize {
        self.clock.set(self.clock.get() + 1);
        self.clock.get()
    }

    fn ticket(&self) -> usize {
        self.tickets.set(self.tickets.get() + 1);
        self.tickets.get()
    }

    fn put(&self, item: u64) {
        self.items.borrow_mut().push(item);
        self.rank.borrow_mut().insert(item, self.ins.get());
        self.ins.set(self.ins.get() + 1);
    }

    /// Checks `item`, received by the get holding `ticket`: it was queued
    /// and, in LIFO and priority order, it is the one to hand out now.
    fn got(&self, ticket: usize, item: u64) {
        let mut items = self.items.borrow_mut();
        let at = match self.kind {
            Kind::Fifo => items.iter().position(|&i| i == item),
            Kind::Lifo => items.len().checked_sub(1),
            Kind::Priority => (0..items.len()).min_by_key(|&i| items[i]),
        };
        let at = at.unwrap_or_else(|| panic!("{item} was handed out but is not queued"));
        assert_eq!(
            item,
            items.remove(at),
            "{:?} handed out the wrong item",
            self.kind
        );
        let rank = self.rank.borrow()[&item];
        let now = self.tick();
        self.received.borrow_mut().push((ticket, rank, now));
        self.outs.set(self.outs.get() + 1);
    }

    fn getter_cancelled(&self, ticket: Option<usize>) {
        if let Some(ticket) = ticket {
            let now = self.tick();
            self.cancelled.borrow_mut().push((ticket, now));
        }
    }

    /// FIFO: gets receive items in the order they asked for them. The one
    /// exception is forced by cancellation: get `a` takes a free item while
    /// an older one is reserved for a woken get `c` that asked before `a`;
    /// `c` is cancelled, and its item goes to a later get `b`. Any other
    /// inversion is a fairness bug.
    fn check_fifo(&self) {
        let received = self.received.borrow();
        let cancelled = self.cancelled.borrow();
        for &(ta, ra, time_a) in received.iter() {
            for &(tb, rb, time_b) in received.iter() {
                if ta < tb && ra > rb {
                    let excused = cancelled
                        .iter()
                        .any(|&(tc, time_c)| tc < ta && time_a < time_c && time_c < time_b);
                    assert!(
                        excused,
                        "get #{ta} received item #{ra}, later get #{tb} the older item #{rb}"
                    );
                }
            }
        }
    }
}

fn make_queue(kind: Kind, maxsize: usize) -> Queue<u64> {
    match kind {
        Kind::Fifo => Queue::new(maxsize),
        Kind::Lifo => LifoQueue::new(maxsize).into(),
        Kind::Priority => PriorityQueue::new(maxsize).into(),
    }
}

/// After `settle`: nobody waits for what is there.
fn check_settled_queue(q: &Queue<u64>, getters: &Tasks, putters: &Tasks, model: &Model) {
    assert_eq!(
        q.qsize(),
        model.items.borrow().len(),
        "items lost or duplicated"
    );
    if getters.pending() > 0 {
        assert_eq!(q.qsize(), 0, "a getter waits while items are queued");
    }
    if putters.pending() > 0 {
        assert!(
            q.maxsize() > 0 && q.qsize() == q.maxsize(),
            "a putter waits with room"
        );
    }
    assert_eq!(q.empty(), q.qsize() == 0);
    assert_eq!(q.full(), q.maxsize() > 0 && q.qsize() >= q.maxsize());
}

fn queue_schedule(seed: u64, kind: Kind) {
    let mut rng = Rng::new(seed);
    let maxsize = rng.below(4); // 0 (unbounded) to 3
    let shutdown = rng.below(3); // none, graceful, immediate
    ringloop::run(async move {
        let q = make_queue(kind, maxsize);
        let model = Rc::new(Model::new(kind));
        let progress = Progress::default();
        // Each getter task's ticket, once it started.
        let tickets: Rc<RefCell<Vec<Option<usize>>>> = Rc::default();
        let (mut getters, mut putters) = (Tasks::new(), Tasks::new());
        let mut next_item = 0u64;
        let mut item = |rng: &mut Rng| {
            next_item += 1;
            // Unique; random order for the priority queue.
            (rng.next() % 1000) * 100_000 + next_item
        };
        for _ in 0..400 {
            match rng.below(20) {
                0..=4 => {
                    tickets.borrow_mut().push(None);
                    getters.spawn(|id| {
                        let (q, model, tickets, p) =
                            (q.clone(), model.clone(), tickets.clone(), progress.clone());
                        spawn(async move {
                            let ticket = model.ticket();
                            tickets.borrow_mut()[id] = Some(ticket);
                            match q.get().await {
                                Ok(x) => model.got(ticket, x),
                                Err(_) => assert!(q.is_shut_down() && q.empty()),
                            }
                            bump(&p);
                        })
                    });
                }
                5..=9 => {
                    let x = item(&mut rng);
                    putters.spawn(|_| {
                        let (q, model, p) = (q.clone(), model.clone(), progress.clone());
                        spawn(async move {
                            match q.put(x).await {
                                Ok(()) => model.put(x),
                                Err(e) => assert!(q.is_shut_down() && e.into_inner() == x),
                            }
                            bump(&p);
                        })
                    });
                }
                10..=11 => {
                    if let Some(id) = getters.cancel_random(&mut rng) {
                        model.getter_cancelled(tickets.borrow()[id]);
                    }
                }
                12..=13 => drop(putters.cancel_random(&mut rng)),
                14 => {
                    let x = item(&mut rng);
                    if q.put_nowait(x).is_ok() {
                        model.put(x);
                    }
                }
                15 => {
                    let ticket = model.ticket();
                    if let Ok(x) = q.get_nowait() {
                        model.got(ticket, x);
                    }
                }
                16..=18 => random_yields(&mut rng).await,
                _ => {
                    settle(&progress).await;
                    check_settled_queue(&q, &getters, &putters, &model);
                }
            }
        }
        settle(&progress).await;
        check_settled_queue(&q, &getters, &putters, &model);

        match shutdown {
            0 => {
                getters.cancel_all();
                putters.cancel_all();
            }
            n => {
                q.shutdown(n == 2);
                if n == 2 {
                    model.items.borrow_mut().clear();
                }
                // Every waiter is woken: putters fail, getters drain what
                // is left, then fail.
                settle(&progress).await;
                assert_eq!(getters.pending() + putters.pending(), 0);
            }
        }
        while let Ok(x) = q.get_nowait() {
            model.got(model.ticket(), x);
        }
        assert!(model.items.borrow().is_empty());
        if shutdown == 2 {
            assert_eq!(q.qsize(), 0);
        } else {
            assert_eq!(model.ins.get(), model.outs.get(), "items in != items out");
        }
        if shutdown > 0 {
            assert!(matches!(q.get_nowait(), Err(TryGetError::ShutDown(_))));
        }
        if let Kind::Fifo = kind {
            model.check_fifo();
        }
    })
    .unwrap();
}

#[test]
fn q2_queue_random_cancellations_lose_no_item_and_keep_fifo_order() {
    for seed in 0..SEEDS {
        queue_schedule(seed, Kind::Fifo);
    }
}

#[test]
fn q2_lifo_queue_random_cancellations_lose_no_item() {
    for seed in 0..SEEDS {
        queue_schedule(seed, Kind::Lifo);
    }
}

#[test]
fn q2_priority_queue_random_cancellations_lose_no_item() {
    for seed in 0..SEEDS {
        queue_schedule(seed, Kind::Priority);
    }
}

// ---------------------------------------------------------------- Lock and semaphores

/// Counts holders; the count drops when the holding task is cancelled too.
struct Holding(Rc<Cell<usize>>);

impl Holding {
    fn enter(count: &Rc<Cell<usize>>) -> Holding {
        count.set(count.get() + 1);
        Holding(count.clone())
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// The three permit-based primitives behind one face.
#[derive(Clone)]
enum Permits {
    Lock(Lock),
    Sem(Semaphore),
    Bounded(BoundedSemaphore),
}

/// A lock guard or a permit, held until dropped.
#[derive(Default)]
struct Held {
    _guard: Option<LockGuard>,
    _permit: Option<SemaphorePermit>,
}

impl Held {
    fn guard(guard: LockGuard) -> Held {
        Held {
            _guard: Some(guard),
            ..Held::default()
        }
    }

    fn permit(permit: SemaphorePermit) -> Held {
        Held {
            _permit: Some(permit),
            ..Held::default()
        }
    }
}

impl Permits {
    async fn acquire(&self) -> Held {
        match self {
            Permits::Lock(l) => Held::guard(l.lock().await),
            Permits::Sem(s) => Held::permit(s.acquire().await),
            Permits::Bounded(s) => Held::permit(s.acquire().await),
        }
    }

    fn try_acquire(&self) -> Option<Held> {
        match self {
            Permits::Lock(l) => l.try_lock().ok().map(Held::guard),
            Permits::Sem(s) => s.try_acquire().ok().map(Held::permit),
            Permits::Bounded(s) => s.try_acquire().ok().map(Held::permit),
        }
    }

    fn available(&self) -> usize {
        match self {
            Permits::Lock(l) => usize::from(!l.locked()),
            Permits::Sem(s) => s.available_permits(),
            Permits::Bounded(s) => s.available_permits(),
        }
    }
}

fn permits_schedule(seed: u64, which: usize) {
    let mut rng = Rng::new(seed);
    let total = if which == 0 { 1 } else { 1 + rng.below(3) };
    ringloop::run(async move {
        let permits = match which {
            0 => Permits::Lock(Lock::new()),
            1 => Permits::Sem(Semaphore::new(total)),
            _ => Permits::Bounded(BoundedSemaphore::new(total)),
        };
        let holders = Rc::new(Cell::new(0));
        let progress = Progress::default();
        let acquired_by: Log<usize> = new_log();
        let mut tasks = Tasks::new();
        let mut mine: Vec<Held> = Vec::new(); // held by the driver
        for _ in 0..300 {
            match rng.below(12) {
                0..=3 => {
                    let hold = rng.below(4);
                    tasks.spawn(|id| {
                        let (permits, holders, log, p) = (
                            permits.clone(),
                            holders.clone(),
                            acquired_by.clone(),
                            progress.clone(),
                        );
                        spawn(async move {
                            let _held = permits.acquire().await;
                            let _holding = Holding::enter(&holders);
                            assert!(holders.get() <= total, "too many holders");
                            log.borrow_mut().push(id);
                            bump(&p);
                            for _ in 0..hold {
                                yield_now().await;
                                bump(&p);
                            }
                        })
                    });
                }
                4..=5 => drop(tasks.cancel_random(&mut rng)),
                6 => mine.extend(permits.try_acquire()),
                7 => drop(mine.pop()),
                8..=10 => random_yields(&mut rng).await,
                _ => {
                    settle(&progress).await;
                    // Every task is done or waits, and nobody waits for a
                    // permit that is free.
                    assert_eq!(holders.get(), 0);
                    assert_eq!(permits.available(), total - mine.len());
                    if tasks.pending() > 0 {
                        assert_eq!(permits.available(), 0, "a waiter missed a permit");
                    }
                }
            }
        }
        mine.clear();
        settle(&progress).await;
        assert_eq!(tasks.pending(), 0, "a waiter was never woken");
        if total == 1 {
            // The lock (or a lone permit) in transit to a woken task cannot
            // be taken by anyone else, so tasks get it in the order they
            // asked. With more permits a newcomer may take a free permit
            // and run before a task that was handed one earlier.
            assert!(
                increasing(&acquired_by.borrow()),
                "permits handed out of order"
            );
        }
        assert_eq!(permits.available(), total, "a permit leaked");
        if let Permits::Bounded(s) = &permits {
            assert!(s.release().is_err());
        }
    })
    .unwrap();
}

#[test]
fn q2_lock_random_cancellations_never_leak_the_lock_and_keep_fifo_order() {
    for seed in 0..SEEDS {
        permits_schedule(seed, 0);
    }
}

#[test]
fn q2_semaphore_random_cancellations_never_leak_a_permit() {
    for seed in 0..SEEDS {
        permits_schedule(seed, 1);
    }
}

#[test]
fn q2_bounded_semaphore_random_cancellations_never_leak_a_permit() {
    for seed in 0..SEEDS {
        permits_schedule(seed, 2);
    }
}

// ---------------------------------------------------------------- Condition

fn condition_schedule(seed: u64) {
    let mut rng = Rng::new(seed);
    ringloop::run(async move {
        let cond = Condition::new();
        let progress = Progress::default();
        let returned: Log<usize> = new_log();
        let mut registered: Vec<Rc<Cell<bool>>> = Vec::new();
        let mut tasks = Tasks::new();
        // The model: who waits (in order), who was notified and has not
        // returned, and every expected return in order.
        let mut known = 0; // registrations folded into the model so far
        let mut waiting: VecDeque<usize> = VecDeque::new();
        let mut notified: Vec<usize> = Vec::new();
        let mut expected: Vec<usize> = Vec::new();
        let mut cancelled = vec![];
        for _ in 0..300 {
            // Fold in what happened since the last step: registrations (in
            // spawn order, which is their order) and returns.
            while known < registered.len() {
                if registered[known].get() {
                    waiting.push_back(known);
                } else if !cancelled.contains(&known) {
                    break; // not polled yet, nor any task spawned after it
                }
                known += 1;
            }
            for id in returned.borrow().iter() {
                notified.retain(|&n| n != *id);
            }
            match rng.below(10) {
                0..=3 => {
                    let flag = Rc::new(Cell::new(false));
                    registered.push(flag.clone());
                    tasks.spawn(|id| {
                        let (cond, log, p) = (cond.clone(), returned.clone(), progress.clone());
                        spawn(async move {
                            let guard = cond.lock().await;
                            flag.set(true);
                            let _guard = cond.wait(guard).await;
                            log.borrow_mut().push(id);
                            bump(&p);
                        })
                    });
                }
                4..=5 => {
                    let n = rng.below(3);
                    let woken = cond.notify(n);
                    assert_eq!(woken, n.min(waiting.len()), "notify woke the wrong number");
                    for _ in 0..woken {
                        let id = waiting.pop_front().unwrap();
                        notified.push(id);
                        expected.push(id);
                    }
                }
                6 => {
                    if let Some(id) = tasks.cancel_random(&mut rng) {
                        cancelled.push(id);
                        waiting.retain(|&w| w != id);
                        if let Some(at) = notified.iter().position(|&n| n == id) {
                            // Notified, not yet returned: passed on.
                            notified.remove(at);
                            expected.retain(|&e| e != id);
                            if let Some(next) = waiting.pop_front() {
                                notified.push(next);
                                expected.push(next);
                            }
                        }
                    }
                }
                7..=8 => random_yields(&mut rng).await,
                _ => {
                    settle(&progress).await;
                    for id in returned.borrow().iter() {
                        notified.retain(|&n| n != *id);
                    }
                    assert!(notified.is_empty(), "a notification was lost");
                }
            }
        }
        settle(&progress).await;
        assert_eq!(*returned.borrow(), expected, "wrong waiters returned");
        assert!(!cond.locked());
    })
    .unwrap();
}

#[test]
fn q2_condition_random_cancellations_lose_no_notification() {
    for seed in 0..SEEDS {
        condition_schedule(seed);
    }
}

// ---------------------------------------------------------------- Event

fn event_schedule(seed: u64) {
    let mut rng = Rng::new(seed);
    ringloop::run(async move {
        let ev = Event::new();
        let progress = Progress::default();
        // Per task: registered, and whether the event was set then.
        let regs: Rc<RefCell<Vec<Option<bool>>>> = Rc::default();
        let returned: Log<usize> = new_log();
        let mut must_return: Vec<usize> = Vec::new();
        let mut cancelled: Vec<usize> = Vec::new();
        let mut tasks = Tasks::new();
        for _ in 0..300 {
            match rng.below(10) {
                0..=3 => {
                    regs.borrow_mut().push(None);
                    tasks.spawn(|id| {
                        let (ev, regs, log, p) =
                            (ev.clone(), regs.clone(), returned.clone(), progress.clone());
                        spawn(async move {
                            regs.borrow_mut()[id] = Some(ev.is_set());
                            ev.wait().await;
                            log.borrow_mut().push(id);
                            bump(&p);
                        })
                    });
                }
                4 => {
                    let regs = regs.borrow();
                    let done = returned.borrow();
                    for (id, r) in regs.iter().enumerate() {
                        if r.is_some() && !done.contains(&id) && !cancelled.contains(&id) {
                            must_return.push(id);
                        }
                    }
                    drop((regs, done));
                    ev.set();
                }
                5 => ev.clear(),
                6 => cancelled.extend(tasks.cancel_random(&mut rng)),
                7..=8 => random_yields(&mut rng).await,
                _ => {
                    settle(&progress).await;
                    check_event(
                        &ev,
                        &regs.borrow(),
                        &returned.borrow(),
                        &must_return,
                        &cancelled,
                    );
                }
            }
        }
        settle(&progress).await;
        check_event(
            &ev,
            &regs.borrow(),
            &returned.borrow(),
            &must_return,
            &cancelled,
        );
    })
    .unwrap();
}

fn check_event(
    ev: &Event,
    regs: &[Option<bool>],
    returned: &[usize],
    must_return: &[usize],
    cancelled: &[usize],
) {
    for &id in must_return {
        assert!(
            returned.contains(&id) || cancelled.contains(&id),
            "a waiter missed a set"
        );
    }
    for &id in returned {
        assert!(
            regs[id] == Some(true) || must_return.contains(&id),
            "a waiter returned without a set"
        );
    }
    if ev.is_set() {
        for (id, r) in regs.iter().enumerate() {
            if r.is_some() && !cancelled.contains(&id) {
                assert!(
                    returned.contains(&id),
                    "a waiter sleeps while the event is set"
                );
            }
        }
    }
}

#[test]
fn q2_event_random_cancellations_lose_no_wake_up() {
    for seed in 0..SEEDS {
        event_schedule(seed);
    }
}

// ---------------------------------------------------------------- Barrier

type Outcome = Result<(usize, bool), ()>;

/// What a barrier must do, replayed from the tasks' registrations.
struct BarrierModel {
    parties: usize,
    /// Registrations replayed so far (tasks register in spawn order).
    known: usize,
    waiting: Vec<usize>,
    broken: bool,
    expected: Vec<Option<Outcome>>,
    cancelled: Vec<usize>,
}

impl BarrierModel {
    fn replay(&mut self, registered: &[bool]) {
        while self.known < registered.len() {
            let id = self.known;
            if !registered[id] {
                if self.cancelled.contains(&id) {
                    self.known += 1;
                    continue; // cancelled before it ever ran
                }
                break; // not polled yet, nor any task spawned after it
            }
            self.known += 1;
            if self.broken {
                self.expected[id] = Some(Err(()));
            } else if self.waiting.len() + 1 == self.parties {
                for (index, w) in self.waiting.drain(..).enumerate() {
                    self.expected[w] = Some(Ok((index, false)));
                }
                self.expected[id] = Some(Ok((self.parties - 1, true)));
            } else {
                self.waiting.push(id);
            }
        }
    }
}

fn barrier_schedule(seed: u64) {
    let mut rng = Rng::new(seed);
    let parties = 1 + rng.below(4);
    ringloop::run(async move {
        let barrier = Barrier::new(parties);
        let progress = Progress::default();
        let registered: Rc<RefCell<Vec<bool>>> = Rc::default();
        let results: Rc<RefCell<Vec<(usize, Outcome)>>> = Rc::default();
        let mut tasks = Tasks::new();
        let mut model = BarrierModel {
            parties,
            known: 0,
            waiting: Vec::new(),
            broken: false,
            expected: Vec::new(),
            cancelled: Vec::new(),
        };
        let outcome =
            |r: Result<BarrierWaitResult, _>| r.map(|r| (r.index(), r.is_leader())).map_err(drop);
        for _ in 0..300 {
            model.replay(&registered.borrow());
            match rng.below(12) {
                0..=4 => {
                    registered.borrow_mut().push(false);
                    model.expected.push(None);
                    tasks.spawn(|id| {
                        let (barrier, registered, results, p) = (
                            barrier.clone(),
                            registered.clone(),
                            results.clone(),
                            progress.clone(),
                        );
                        spawn(async move {
                            registered.borrow_mut()[id] = true;
                            let r = outcome(barrier.wait().await);
                            results.borrow_mut().push((id, r));
                            bump(&p);
                        })
                    });
                }
                5..=6 => {
                    if let Some(id) = tasks.cancel_random(&mut rng) {
                        model.cancelled.push(id);
                        model.waiting.retain(|&w| w != id);
                        model.expected[id] = None; // never reports
                    }
                }
                7 => {
                    if rng.chance(1, 3) {
                        barrier.abort();
                        model.broken = true;
                    } else {
                        barrier.reset();
                        model.broken = false;
                    }
                    for w in model.waiting.drain(..) {
                        model.expected[w] = Some(Err(()));
                    }
                }
                8..=9 => random_yields(&mut rng).await,
                _ => {
                    settle(&progress).await;
                    model.replay(&registered.borrow());
                    assert_eq!(barrier.n_waiting(), model.waiting.len());
                    assert_eq!(barrier.broken(), model.broken);
                }
            }
        }
        settle(&progress).await;
        model.replay(&registered.borrow());
        let mut got: Vec<Option<Outcome>> = vec![None; model.expected.len()];
        for &(id, r) in results.borrow().iter() {
            got[id] = Some(r);
        }
        for &w in &model.waiting {
            assert_eq!(got[w], None); // still waiting
            model.expected[w] = None;
        }
        // Tasks cancelled after their result was decided but before they
        // reported it report nothing.
        for &c in &model.cancelled {
            got[c] = None;
        }
        assert_eq!(got, model.expected);
    })
    .unwrap();
}

#[test]
fn q2_barrier_random_cancellations_keep_indices_distinct_and_lose_no_party() {
    for seed in 0..SEEDS {
        barrier_schedule(seed);
    }
}
