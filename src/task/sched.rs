//! The run queue: [`Executor`] (owner thread) and [`Scheduler`] (any thread).
//!
//! A loop's ready queue holds tasks, callbacks (`call_soon`) and the marker of
//! the future passed to `run_until_complete`, in the FIFO order they became
//! ready (asyncio's single ready deque). Wakes on the owner thread push
//! straight onto it; wakes on other threads push onto [`Scheduler`]'s remote
//! queue and write the loop's eventfd only if the loop is parked.
//!
//! The two queues make one FIFO: before the owner thread pushes onto the
//! ready queue, it moves whatever other threads queued meanwhile ahead of
//! its own item (one relaxed load when they queued nothing). So work queued
//! by another thread before (happens-before) a push on the loop's thread
//! runs first, as with asyncio's single deque.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::task::{RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use super::raw::{
    CANCEL_REQUESTED, CANCELLED, COMPLETE, HANDLE, Header, Outcome, PANICKED, RUNNING, SCHEDULED,
    TaskRef,
};
use super::remote::{Pushed, RemoteQueue};
use super::report::{ExceptionContext, Handler};
use super::{CallbackId, Task, TaskHandle};
use crate::sys::thread_token;
use crate::trace::{self, TaskSpan};

/// A `call_soon`-style callback; cancellable until it runs.
pub(crate) struct Callback {
    f: Cell<Option<Box<dyn FnOnce()>>>,
    cancelled: Cell<bool>,
}

impl Callback {
    pub(crate) fn new(f: Box<dyn FnOnce()>) -> Rc<Callback> {
        Rc::new(Callback {
            f: Cell::new(Some(f)),
            cancelled: Cell::new(false),
        })
    }

    /// Cancels the callback; returns false if it already ran or was cancelled.
    pub(crate) fn cancel(&self) -> bool {
        let had = self.f.take().is_some();
        self.cancelled.set(true);
        had
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }

    #[cfg(test)]
    pub(crate) fn run_for_test(&self) {
        if let Some(f) = self.f.take() {
            f();
        }
    }
}

/// An entry of the ready queue.
pub(crate) enum Runnable {
    Task(TaskRef),
    Callback(Rc<Callback>),
    /// The future given to `run_until_complete` was woken.
    Main,
}

/// Work queued from foreign threads.
pub(crate) enum Remote {
    Task(TaskRef),
    Main,
    /// `call_soon_threadsafe`.
    Callback(Box<dyn FnOnce() + Send>),
}

/// The part of a loop other threads may touch. Shared by `Arc`.
pub(crate) struct Scheduler {
    /// [`thread_token`] of the loop's thread.
    owner: usize,
    /// The loop's executor; non-null from creation until the loop starts
    /// dropping. Dereferenced only on the owner thread, which is also the
    /// only thread that nulls it (before freeing the executor).
    local: AtomicPtr<Executor>,
    remote: RemoteQueue<Remote>,
    wake_fd: Arc<OwnedFd>,
}

impl Scheduler {
    pub(crate) fn new(wake_fd: Arc<OwnedFd>) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            owner: thread_token(),
            local: AtomicPtr::new(std::ptr::null_mut()),
            remote: RemoteQueue::new(),
            wake_fd,
        })
    }

    /// Marks the loop closed (later remote wakes are dropped) and returns
    /// what was queued, for the owner thread to drop.
    pub(crate) fn mark_closed(&self) -> Vec<Remote> {
        self.remote.close()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.remote.is_closed()
    }

    /// The loop's executor, kept alive by the returned `Rc`, when called on
    /// the loop's thread while the loop is alive.
    pub(crate) fn executor(&self) -> Option<Rc<Executor>> {
        if !self.is_owner_thread() {
            return None;
        }
        let p = self.local.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: a non-null pointer was published by `Executor::attach`
        // from a live `Rc<Executor>` and is nulled (on this, the owner,
        // thread) before that Rc can be freed; we are on the owner thread,
        // so it cannot be freed concurrently. Taking a count keeps it alive
        // while the caller runs user code.
        unsafe {
            Rc::increment_strong_count(p);
            Some(Rc::from_raw(p))
        }
    }

    pub(crate) fn is_owner_thread(&self) -> bool {
        thread_token() == self.owner
    }

    /// Wakes `task`: onto its loop's ready queue on the owner thread, else
    /// onto the remote queue.
    pub(crate) fn wake(task: TaskRef) {
        let sched = &task.header().sched;
        if sched.is_owner_thread() {
            let exec = sched.local.load(Ordering::Acquire);
            if !exec.is_null() {
                // SAFETY: non-null and we are on the owner thread, the only
                // one that frees the executor, and it nulls this first.
                unsafe { &*exec }.schedule(task);
            }
            // A dead loop: the task can never run again; drop the reference.
        } else {
            let sched = sched.clone();
            // A closed loop: the task can never run again; the reference
            // comes back and is dropped here.
            drop(sched.push_remote(Remote::Task(task)));
        }
    }

    /// Queues `item` for the loop, writing its eventfd if it is parked.
    /// Gives the item back if the loop is closed (nobody would drain it).
    pub(crate) fn push_remote(&self, item: Remote) -> Result<(), Remote> {
        if self.remote.push(item)? == Pushed::Signal {
            crate::sys::eventfd_signal(&self.wake_fd);
        }
        Ok(())
    }

    /// Marks the loop parked; false (and not parked) if remote work is
    /// already waiting, in which case the loop must not block.
    pub(crate) fn park(&self) -> bool {
        self.remote.park()
    }

    pub(crate) fn unpark(&self) {
        self.remote.unpark();
    }

    /// A waker for the future run by `run_until_complete`.
    pub(crate) fn main_waker(self: &Arc<Self>) -> Waker {
        let data = Arc::into_raw(self.clone()).cast::<()>();
        // SAFETY: the vtable treats `data` as an `Arc<Scheduler>` it owns,
        // created by `Arc::into_raw` just above.
        unsafe { Waker::from_raw(RawWaker::new(data, &MAIN_WAKER_VTABLE)) }
    }

    fn wake_main(&self) {
        if self.is_owner_thread() {
            let exec = self.local.load(Ordering::Acquire);
            if !exec.is_null() {
                // SAFETY: as in `wake`.
                unsafe { &*exec }.schedule_main();
            }
        } else {
            drop(self.push_remote(Remote::Main));
        }
    }
}

static MAIN_WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(
    |data| {
        // SAFETY: `data` came from `Arc::into_raw`; the waker owns a count.
        unsafe { Arc::increment_strong_count(data.cast::<Scheduler>()) };
        RawWaker::new(data, &MAIN_WAKER_VTABLE)
    },
    |data| {
        // SAFETY: the waker's count moves into this Arc, dropped at the end.
        let sched = unsafe { Arc::from_raw(data.cast::<Scheduler>()) };
        sched.wake_main();
    },
    |data| {
        // SAFETY: the waker keeps the Arc alive for this call.
        unsafe { &*data.cast::<Scheduler>() }.wake_main();
    },
    |data| {
        // SAFETY: the waker owns one count.
        drop(unsafe { Arc::from_raw(data.cast::<Scheduler>()) });
    },
);

/// Options for running tasks (debug mode).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DebugOptions {
    pub(crate) enabled: bool,
    pub(crate) slow_callback: Duration,
}

/// The owner-thread half of a loop's task machinery.
pub(crate) struct Executor {
    pub(crate) sched: Arc<Scheduler>,
    ready: RefCell<VecDeque<Runnable>>,
    /// The buffer the remote queue is drained into (see `drain_remote`).
    remote_scratch: Cell<Vec<Remote>>,
    main_queued: Cell<bool>,
    /// Every task not yet complete (one reference each).
    registry: RefCell<Slab<TaskRef>>,
    next_number: Cell<u64>,
    current: Cell<Option<NonNull<Header>>>,
    handler: RefCell<Option<Handler>>,
    debug: Cell<DebugOptions>,
}

impl Executor {
    /// A new executor. [`Executor::attach`] must be called once it has its
    /// final address.
    pub(crate) fn new(sched: Arc<Scheduler>, debug: DebugOptions) -> Executor {
        Executor {
            sched,
            ready: RefCell::new(VecDeque::with_capacity(256)),
            remote_scratch: Cell::new(Vec::new()),
            main_queued: Cell::new(false),
            registry: RefCell::new(Slab::with_capacity(64)),
            next_number: Cell::new(1),
            current: Cell::new(None),
            handler: RefCell::new(None),
            debug: Cell::new(debug),
        }
    }

    /// Publishes this executor's address to wakers and task handles, until
    /// [`Executor::detach`] (called by its owner, and at the latest by its
    /// `Drop`): while the pointer is non-null, the `Rc` it came from is
    /// alive, so [`Scheduler::executor`] can take a new reference from it.
    pub(crate) fn attach(this: &Rc<Executor>) {
        this.sched
            .local
            .store(Rc::as_ptr(this).cast_mut(), Ordering::Release);
    }

    /// Unpublishes the executor: later wakes are dropped.
    pub(crate) fn detach(&self) {
        self.sched
            .local
            .store(std::ptr::null_mut(), Ordering::Release);
    }

    pub(crate) fn set_debug(&self, debug: DebugOptions) {
        self.debug.set(debug);
    }

    pub(crate) fn debug(&self) -> DebugOptions {
        self.debug.get()
    }

    pub(crate) fn set_handler(&self, handler: Option<Handler>) {
        // The old handler is dropped outside the borrow: what it owns (a
        // promise whose error nobody read) may report to this very loop.
        let old = self.handler.replace(handler);
        drop(old);
    }

    /// Sends `ctx` to the exception handler (or the default one).
    pub(crate) fn report(&self, ctx: &ExceptionContext) {
        trace::exception(ctx);
        let handler = self.handler.borrow().clone();
        match handler {
            Some(h) => {
                if catch_unwind(AssertUnwindSafe(|| h(ctx))).is_err() {
                    eprintln!("ringloop: the exception handler panicked while handling: {ctx}");
                }
            }
            None => super::report::default_handler(ctx),
        }
    }

    /// Creates a task and queues it (it runs after everything already ready).
    pub(crate) fn spawn<F>(&self, future: F, name: Option<Box<str>>) -> Task<F::Output>
    where
        F: std::future::Future + 'static,
    {
        let number = self.next_number.get();
        self.next_number.set(number + 1);
        let span = TaskSpan::new(number, name.as_deref(), || self.current_number());
        let task = TaskRef::allocate(
            future,
            self.sched.clone(),
            number,
            name,
            span,
            SCHEDULED | HANDLE,
        );
        let key = self.registry.borrow_mut().insert(task.clone());
        task.header()
            .registry_key
            .set(u32::try_from(key).expect("more than 4 billion live tasks"));
        self.push_ready(Runnable::Task(task.clone()));
        Task::from_raw(task)
    }

    /// Appends `item` to the ready queue, after whatever other threads
    /// queued before (see the module docs). Owner thread.
    #[inline]
    fn push_ready(&self, item: Runnable) {
        if self.sched.remote.has_pending() {
            self.drain_remote();
        }
        self.ready.borrow_mut().push_back(item);
    }

    /// Queues `task` unless it is queued already or complete. Owner thread.
    pub(crate) fn schedule(&self, task: TaskRef) {
        if Self::mark_scheduled(&task) {
            self.push_ready(Runnable::Task(task));
        }
    }

    /// Marks `task` queued; false if it is queued already or complete.
    fn mark_scheduled(task: &TaskRef) -> bool {
        let h = task.header();
        if h.has(SCHEDULED | COMPLETE) {
            return false;
        }
        h.set(SCHEDULED);
        true
    }

    pub(crate) fn schedule_main(&self) {
        if !self.main_queued.replace(true) {
            self.push_ready(Runnable::Main);
        }
    }

    pub(crate) fn call_soon(&self, cb: Rc<Callback>) {
        self.push_ready(Runnable::Callback(cb));
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.borrow().is_empty()
    }

    /// Moves work queued by other threads onto the ready queue, in the
    /// order it was queued.
    pub(crate) fn drain_remote(&self) {
        // The common case, nothing queued, costs one load: the loop calls
        // this before and after every wait in the kernel.
        if !self.sched.remote.has_pending() {
            return;
        }
        // Out of the cell while the items are handled; put back emptied, so
        // its capacity serves the next drain.
        let mut items = self.remote_scratch.take();
        self.sched.remote.drain_into(&mut items);
        for item in items.drain(..) {
            // Straight onto the queue (not `push_ready`, which would drain
            // again, ahead of the rest of this batch).
            let item = match item {
                Remote::Task(t) if Self::mark_scheduled(&t) => Runnable::Task(t),
                // Queued already or complete: just released.
                Remote::Task(_) => continue,
                Remote::Main if !self.main_queued.replace(true) => Runnable::Main,
                Remote::Main => continue,
                Remote::Callback(f) => Runnable::Callback(Callback::new(f)),
            };
            self.ready.borrow_mut().push_back(item);
        }
        self.remote_scratch.set(items);
    }

    /// Requests cancellation of `task` (see [`crate::Task::cancel`]).
    pub(crate) fn cancel(&self, task: &TaskRef) -> bool {
        let h = task.header();
        if h.has(COMPLETE) {
            return false;
        }
        h.set(CANCEL_REQUESTED);
        if !h.has(RUNNING) {
            self.schedule(task.clone());
        }
        true
    }

    /// Runs everything that was ready when the call began (asyncio's
    /// `_run_once`); things made ready meanwhile wait for the next call.
    /// `main` polls the `run_until_complete` future when its marker comes up.
    pub(crate) fn run_ready(&self, main: &mut dyn FnMut()) {
        let n = self.ready.borrow().len();
        for _ in 0..n {
            let Some(item) = self.ready.borrow_mut().pop_front() else {
                break;
            };
            match item {
                Runnable::Task(t) => self.run_task(t),
                Runnable::Callback(cb) => self.run_callback(&cb),
                Runnable::Main => {
                    self.main_queued.set(false);
                    main();
                }
            }
        }
    }

    fn run_callback(&self, cb: &Callback) {
        if let Some(f) = cb.f.take() {
            if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
                self.report(&ExceptionContext::callback_panicked(p));
            }
        }
    }

    fn run_task(&self, task: TaskRef) {
        let h = task.header();
        h.clear(SCHEDULED);
        if h.has(COMPLETE) {
            return;
        }
        if h.has(CANCEL_REQUESTED) {
            self.cancel_now(&task);
            return;
        }
        let prev = self.current.replace(Some(task.ptr()));
        h.set(RUNNING);
        let debug = self.debug.get();
        let started = debug.enabled.then(Instant::now);
        let outcome = h.span.in_scope(|| task.poll());
        let took = started.map(|t0| t0.elapsed());
        h.clear(RUNNING);
        self.current.set(prev);
        match outcome {
            Outcome::Done => {
                if h.has(CANCEL_REQUESTED) {
                    // Cancelled during its last poll, then returned: asyncio
                    // ends such a task cancelled, discarding the result.
                    task.cancel_output();
                }
                self.complete(&task);
            }
            Outcome::Pending => {
                if h.has(CANCEL_REQUESTED) {
                    self.schedule(task.clone());
                }
            }
        }
        // Last: the report runs user code (the handler), which must find
        // the task's state settled.
        if let Some(took) = took.filter(|t| *t >= debug.slow_callback) {
            self.report(&ExceptionContext::slow_poll(h.name(), took));
        }
    }

    /// Cancels `task` now: drops its future (its cleanup runs before this
    /// returns) and completes it as cancelled. A task being polled (or being
    /// dropped already) cannot be dropped from inside itself: it gets a
    /// cancellation request instead. Returns false if it was already done.
    pub(crate) fn cancel_now(&self, task: &TaskRef) -> bool {
        let h = task.header();
        if h.has(COMPLETE) {
            return false;
        }
        if h.has(RUNNING) {
            return self.cancel(task);
        }
        h.set(CANCEL_REQUESTED | RUNNING);
        // The future's Drop runs "as" the task (current_task() names it).
        let prev = self.current.replace(Some(task.ptr()));
        h.span.in_scope(|| task.cancel_now());
        self.current.set(prev);
        h.clear(RUNNING);
        if !h.has(PANICKED) {
            h.set(CANCELLED);
        }
        self.complete(task);
        true
    }

    /// Marks `task` complete: wakes its awaiter, schedules its done
    /// callbacks, drops its output if nobody can take it.
    fn complete(&self, task: &TaskRef) {
        let h = task.header();
        if h.has(COMPLETE) {
            return;
        }
        h.set(COMPLETE);
        h.span.close();
        let key = h.registry_key.get() as usize;
        let removed = {
            let mut registry = self.registry.borrow_mut();
            let ours = registry.get(key).is_some_and(|t| t.ptr() == task.ptr());
            if ours { registry.try_remove(key) } else { None }
        };
        if let Some(w) = h.join_waker.take() {
            w.wake();
        }
        let cbs = h.take_callbacks();
        if !cbs.is_empty() {
            let handle = TaskHandle::from_raw(task.clone());
            for (_, cb) in cbs.into_iter() {
                let handle = handle.clone();
                self.call_soon(Callback::new(Box::new(move || cb(&handle))));
            }
        }
        if !h.has(HANDLE) {
            self.discard_output(task);
        }
        drop(removed);
    }

    /// Drops a finished task's output that nobody will take, reporting a
    /// panic nobody retrieved (asyncio: "Task exception was never retrieved").
    pub(crate) fn discard_output(&self, task: &TaskRef) {
        if let Some(payload) = task.drop_output() {
            self.report(&ExceptionContext::never_retrieved(
                task.header().name(),
                &payload,
            ));
        }
    }

    /// Adds a done callback, or schedules it at once if the task is done.
    pub(crate) fn add_done_callback(
        &self,
        task: &TaskRef,
        id: CallbackId,
        cb: super::raw::DoneCallback,
    ) {
        let h = task.header();
        if h.has(COMPLETE) {
            let handle = TaskHandle::from_raw(task.clone());
            self.call_soon(Callback::new(Box::new(move || cb(&handle))));
            return;
        }
        h.push_callback(id, cb);
    }

    /// Removes the done callback `id` if it still waits for the task to
    /// finish; returns how many went (0 or 1).
    pub(crate) fn remove_done_callback(&self, task: &TaskRef, id: CallbackId) -> usize {
        // Dropped last, with the list back in place: its captures' `Drop`
        // may add or remove callbacks of this task.
        let removed = task.header().remove_callback(id);
        usize::from(removed.is_some())
    }

    /// The `Task-N` number of the task being polled, if any.
    fn current_number(&self) -> Option<u64> {
        let ptr = self.current.get()?;
        // SAFETY: `current` is set only while the task is being run, and
        // the run holds a reference to it, so its header is live.
        Some(unsafe { ptr.as_ref() }.number)
    }

    /// The task being polled, if any.
    pub(crate) fn current(&self) -> Option<TaskHandle> {
        let ptr = self.current.get()?;
        let registry = self.registry.borrow();
        // SAFETY: `current` is set only while the task is being run, and
        // the run holds a reference; find that reference to clone it.
        let h = unsafe { ptr.as_ref() };
        registry
            .get(h.registry_key.get() as usize)
            .filter(|t| t.ptr() == ptr)
            .map(|t| TaskHandle::from_raw(t.clone()))
    }

    /// Every task not yet done.
    pub(crate) fn all(&self) -> Vec<TaskHandle> {
        self.registry
            .borrow()
            .iter()
            .map(|(_, t)| TaskHandle::from_raw(t.clone()))
            .collect()
    }

    pub(crate) fn live_tasks(&self) -> usize {
        self.registry.borrow().len()
    }

    /// Cancels every live task *now* (drops their futures) and clears the
    /// ready queue. Used when the loop closes or is dropped.
    pub(crate) fn cancel_all_now(&self) {
        // Cancelling may spawn (a future's Drop): repeat while it progresses.
        // Tasks being polled further up the stack (RUNNING) cannot be
        // dropped from here; whoever polls them completes them.
        loop {
            let tasks: Vec<TaskRef> = self
                .registry
                .borrow()
                .iter()
                .map(|(_, t)| t.clone())
                .collect();
            let mut progressed = false;
            for t in tasks {
                if !t.header().has(RUNNING) {
                    progressed |= self.cancel_now(&t);
                }
            }
            if !progressed {
                break;
            }
        }
        let ready = std::mem::take(&mut *self.ready.borrow_mut());
        drop(ready);
        self.main_queued.set(false);
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.detach();
        // A task still in the registry here never completed (it was being
        // polled when its loop went away): its future may be `!Send`, and
        // its last reference could be released on another thread. Leak it.
        for (_, t) in std::mem::take(&mut *self.registry.borrow_mut()) {
            if !t.header().has(COMPLETE) {
                std::mem::forget(t);
            }
        }
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("ready", &self.ready.borrow().len())
            .field("tasks", &self.registry.borrow().len())
            .finish()
    }
}
