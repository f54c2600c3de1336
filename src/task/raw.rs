//! The raw task: one allocation holding a [`Header`] and the future's stage.
//!
//! # Invariants
//!
//! - **References.** `Header::refs` counts [`TaskRef`]s: the loop's registry
//!   holds one until the task completes, the [`crate::Task`] handle one, each
//!   run-queue entry one, each [`Waker`] one. The allocation is freed when the
//!   count reaches zero, on whichever thread drops the last reference.
//! - **Owner thread.** Every field but `refs`, `vtable` and `sched` is a
//!   `Cell` touched only on the thread that owns the task's loop. Wakers used
//!   on a foreign thread touch only `refs` and `sched` (they queue the task on
//!   the loop's remote queue).
//! - **Nothing `!Send` outlives completion.** The future is dropped on the
//!   owner thread when the task completes or is cancelled; its output is
//!   dropped there too (by the handle, or at completion when there is no
//!   handle); done callbacks are taken at completion. So when a foreign
//!   thread frees the allocation, only `Send` data is left in it.
//! - **Stage access.** `stage` is read or written only by the vtable
//!   functions, on the owner thread, never re-entrantly: `poll`/`cancel` run
//!   while the task is not `COMPLETE`, `take_output`/`drop_output` only after.

use std::alloc::Layout;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::error::JoinError;
use super::sched::Scheduler;

/// In the run queue (set by whoever pushes it, cleared when it starts running).
pub(crate) const SCHEDULED: u8 = 1 << 0;
/// Its future is being polled (set and cleared around `poll`).
pub(crate) const RUNNING: u8 = 1 << 1;
/// Finished: output (or `JoinError`) stored, future dropped. Never cleared.
pub(crate) const COMPLETE: u8 = 1 << 2;
/// `cancel()` was called; the future is dropped at its next turn.
pub(crate) const CANCEL_REQUESTED: u8 = 1 << 3;
/// A `Task<T>` handle exists (cleared by its drop or `detach`).
pub(crate) const HANDLE: u8 = 1 << 4;
/// Completed because it was cancelled.
pub(crate) const CANCELLED: u8 = 1 << 5;
/// The output was taken by the handle.
pub(crate) const OUTPUT_TAKEN: u8 = 1 << 6;
/// Completed with a panic (of the future, or of its `Drop`).
pub(crate) const PANICKED: u8 = 1 << 7;

/// A done callback, given the finished task.
pub(crate) type DoneCallback = Box<dyn FnOnce(&super::TaskHandle)>;

/// A task's done callbacks, each with the id that can remove it.
pub(crate) type DoneCallbacks = Vec<(super::CallbackId, DoneCallback)>;

/// What running a task did.
pub(crate) enum Outcome {
    Pending,
    /// Completed: the output (or the panic) is stored.
    Done,
}

pub(crate) struct Vtable {
    /// Polls the future (catching panics); on completion stores the output.
    poll: unsafe fn(NonNull<Header>, &Waker) -> Outcome,
    /// Drops the future and stores `JoinError::Cancelled`.
    cancel: unsafe fn(NonNull<Header>),
    /// Moves the output into `*mut Poll<Result<T, JoinError>>`.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops the output; returns the panic payload if it was a panic.
    drop_output: unsafe fn(NonNull<Header>) -> Option<Box<dyn Any + Send>>,
    /// Replaces an `Ok` output with `JoinError::Cancelled`.
    cancel_output: unsafe fn(NonNull<Header>),
    /// A pointer to the stored `Result<T, JoinError>`, null if none is stored.
    output_ptr: unsafe fn(NonNull<Header>) -> *const (),
    dealloc: unsafe fn(NonNull<Header>),
}

/// What few tasks have: a given name, done callbacks.
#[derive(Default)]
struct Extras {
    name: Option<Box<str>>,
    callbacks: DoneCallbacks,
}

/// The type-independent part of a task, first in its allocation.
#[repr(C)]
pub(crate) struct Header {
    refs: AtomicUsize,
    vtable: &'static Vtable,
    /// The loop the task belongs to (cross-thread part).
    pub(crate) sched: Arc<Scheduler>,
    /// Index in the loop's registry of live tasks (beside `state`: the two
    /// share one word).
    pub(crate) registry_key: Cell<u32>,
    pub(crate) state: Cell<u8>,
    /// `Task-N`: N, per loop.
    pub(crate) number: u64,
    pub(crate) join_waker: Cell<Option<Waker>>,
    /// A given name and done callbacks, boxed together: 8 bytes in every
    /// task header instead of 24; most tasks have neither.
    extras: Cell<Option<Box<Extras>>>,
    /// The task's `tracing` span (zero-sized without the feature); closed
    /// at completion.
    pub(crate) span: crate::trace::TaskSpan,
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct TaskCell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// An owned reference to a task (one count of `Header::refs`).
pub(crate) struct TaskRef {
    ptr: NonNull<Header>,
}

// SAFETY: a TaskRef only lets other threads touch `refs` (atomic) and
// `sched` (Sync); everything else is reached only on the owner thread (see
// the module invariants), and the last drop frees only `Send` data.
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// Allocates a task running `future` with `refs` initial references.
    pub(crate) fn allocate<F: Future + 'static>(
        future: F,
        sched: Arc<Scheduler>,
        number: u64,
        name: Option<Box<str>>,
        span: crate::trace::TaskSpan,
        state: u8,
    ) -> TaskRef {
        let cell = TaskCell {
            header: Header {
                refs: AtomicUsize::new(1),
                vtable: &VtableFor::<F>::VTABLE,
                sched,
                state: Cell::new(state),
                number,
                join_waker: Cell::new(None),
                extras: Cell::new(name.map(|name| {
                    Box::new(Extras {
                        name: Some(name),
                        callbacks: Vec::new(),
                    })
                })),
                registry_key: Cell::new(u32::MAX),
                span,
            },
            stage: UnsafeCell::new(Stage::Running(future)),
        };
        let ptr = super::cell_cache::allocate(Layout::new::<TaskCell<F>>()).cast::<TaskCell<F>>();
        // SAFETY: `ptr` is a fresh (or recycled, unused) block with the
        // layout of `TaskCell<F>`; writing initialises it.
        unsafe { ptr.as_ptr().write(cell) };
        TaskRef { ptr: ptr.cast() }
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we hold a reference, so the allocation is live.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    /// Polls the future with a waker borrowing this reference.
    ///
    /// Owner thread only; the task must not be `COMPLETE`.
    pub(crate) fn poll(&self) -> Outcome {
        // A waker that borrows our reference: never dropped, only cloned.
        // SAFETY: `self` keeps the task alive for the whole poll; wrapping in
        // ManuallyDrop means the borrowed count is never released.
        let waker = ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(self.ptr.as_ptr().cast(), &WAKER_VTABLE))
        });
        // SAFETY: owner thread, not COMPLETE (the caller's contract), and no
        // other stage access is live (module invariant "Stage access").
        unsafe { (self.header().vtable.poll)(self.ptr, &waker) }
    }

    /// Drops the future and records cancellation. Owner thread, not COMPLETE.
    pub(crate) fn cancel_now(&self) {
        // SAFETY: as for `poll`.
        unsafe { (self.header().vtable.cancel)(self.ptr) }
    }

    /// Moves the output out. Owner thread; `COMPLETE` and not yet taken; `T`
    /// must be the task's output type.
    pub(crate) unsafe fn take_output<T>(&self) -> Result<T, JoinError> {
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        // SAFETY: the caller guarantees the type and the state.
        unsafe { (self.header().vtable.take_output)(self.ptr, (&mut out as *mut Poll<_>).cast()) };
        match out {
            Poll::Ready(r) => r,
            Poll::Pending => unreachable!("take_output always writes Ready"),
        }
    }

    /// Turns a just-finished `Ok` output into `Cancelled` (the task was
    /// cancelled during its last poll). Owner thread; finished, not taken.
    pub(crate) fn cancel_output(&self) {
        // SAFETY: owner thread, just finished (the caller's contract).
        unsafe { (self.header().vtable.cancel_output)(self.ptr) }
    }

    /// Reads the stored output in place, without taking it: `None` if there
    /// is none (not finished yet, or already taken or dropped). Owner
    /// thread; `T` must be the task's output type.
    pub(crate) unsafe fn peek_output<T, R>(
        &self,
        f: impl FnOnce(&Result<T, JoinError>) -> R,
    ) -> Option<R> {
        // Before completion the stage may be mutably borrowed by a poll in
        // progress (a task peeking at itself): do not touch it.
        if !self.header().has(COMPLETE) {
            return None;
        }
        // SAFETY: owner thread (the caller's contract), COMPLETE (so no
        // poll or cancel holds the stage); the function only reads it.
        let ptr = unsafe { (self.header().vtable.output_ptr)(self.ptr) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: a non-null pointer points at the stored
        // `Result<F::Output, JoinError>`, `F::Output` is `T` (the caller's
        // contract), and the stage is not touched while `f` runs: `f` gets a
        // shared reference and the task is not polled or completed from in here.
        Some(f(unsafe { &*ptr.cast::<Result<T, JoinError>>() }))
    }

    /// Drops a completed task's output; returns a panic payload it held.
    /// Owner thread; `COMPLETE`.
    pub(crate) fn drop_output(&self) -> Option<Box<dyn Any + Send>> {
        // SAFETY: owner thread and COMPLETE (the caller's contract).
        unsafe { (self.header().vtable.drop_output)(self.ptr) }
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        self.header().inc_ref();
        TaskRef { ptr: self.ptr }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: we own one count; `release` frees at zero.
        unsafe { release(self.ptr) }
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}

impl Header {
    fn inc_ref(&self) {
        // Relaxed, as in `Arc::clone`: a new reference is made from an
        // existing one, which already keeps the task alive.
        if self.refs.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
            std::process::abort();
        }
    }

    pub(crate) fn has(&self, bits: u8) -> bool {
        self.state.get() & bits != 0
    }

    pub(crate) fn set(&self, bits: u8) {
        self.state.set(self.state.get() | bits);
    }

    pub(crate) fn clear(&self, bits: u8) {
        self.state.set(self.state.get() & !bits);
    }

    /// The task's name: given, or `Task-N`.
    pub(crate) fn name(&self) -> String {
        let extras = self.extras.take();
        let s = match extras.as_ref().and_then(|e| e.name.as_deref()) {
            Some(n) => n.to_owned(),
            None => format!("Task-{}", self.number),
        };
        self.extras.set(extras);
        s
    }

    /// Gives the task a name.
    pub(crate) fn set_name(&self, name: Box<str>) {
        let mut extras = self.extras.take().unwrap_or_default();
        extras.name = Some(name);
        self.extras.set(Some(extras));
    }

    /// Adds a done callback (the task must not be complete).
    pub(crate) fn push_callback(&self, id: super::CallbackId, cb: DoneCallback) {
        let mut extras = self.extras.take().unwrap_or_default();
        extras.callbacks.push((id, cb));
        self.extras.set(Some(extras));
    }

    /// Removes done callback `id`, if it is there.
    pub(crate) fn remove_callback(&self, id: super::CallbackId) -> Option<DoneCallback> {
        let mut extras = self.extras.take()?;
        let removed = extras
            .callbacks
            .iter()
            .position(|(i, _)| *i == id)
            .map(|at| extras.callbacks.remove(at).1);
        self.extras.set(Some(extras));
        removed
    }

    /// Takes every done callback (at completion; the name stays).
    pub(crate) fn take_callbacks(&self) -> DoneCallbacks {
        let Some(mut extras) = self.extras.take() else {
            return Vec::new();
        };
        let cbs = std::mem::take(&mut extras.callbacks);
        if extras.name.is_some() {
            self.extras.set(Some(extras));
        }
        cbs
    }
}

/// Releases one reference, freeing the task at zero.
///
/// # Safety
///
/// The caller owns one count of `ptr`'s references.
unsafe fn release(ptr: NonNull<Header>) {
    // SAFETY: the caller's count keeps the header alive until fetch_sub.
    let header = unsafe { ptr.as_ref() };
    if header.refs.fetch_sub(1, Ordering::Release) == 1 {
        // Synchronise with every other release before freeing (as `Arc`):
        // an acquire load of the count just brought to zero reads the end
        // of their release sequence. Same guarantee and cost as an acquire
        // fence, but ThreadSanitizer models it (not fences), so a task
        // freed on a foreign thread is not reported as racing with its
        // loop's last writes (tests/cross_thread_release.rs).
        header.refs.load(Ordering::Acquire);
        // SAFETY: the count reached zero: nobody else can reach the task.
        unsafe { (header.vtable.dealloc)(ptr) }
    }
}

struct VtableFor<F>(std::marker::PhantomData<F>);

impl<F: Future + 'static> VtableFor<F> {
    const VTABLE: Vtable = Vtable {
        poll: poll::<F>,
        cancel: cancel::<F>,
        take_output: take_output::<F>,
        drop_output: drop_output::<F>,
        cancel_output: cancel_output::<F>,
        output_ptr: output_ptr::<F>,
        dealloc: dealloc::<F>,
    };
}

/// # Safety
///
/// `ptr` is a live `TaskCell<F>`; see `TaskRef::poll`.
unsafe fn poll<F: Future>(ptr: NonNull<Header>, waker: &Waker) -> Outcome {
    // SAFETY: the header is the first field of a `TaskCell<F>` (repr(C)).
    let cell = unsafe { ptr.cast::<TaskCell<F>>().as_ref() };
    // SAFETY: exclusive stage access per the module invariant.
    let stage = unsafe { &mut *cell.stage.get() };
    let Stage::Running(fut) = stage else {
        unreachable!("a task is polled only while running")
    };
    let mut cx = Context::from_waker(waker);
    // SAFETY: the future lives inside a heap allocation that never moves
    // and is dropped in place (by `finish`) before the allocation is freed.
    let fut = unsafe { Pin::new_unchecked(fut) };
    match catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
        Ok(Poll::Pending) => Outcome::Pending,
        Ok(Poll::Ready(v)) => {
            finish(&cell.header, stage, Ok(v));
            Outcome::Done
        }
        Err(payload) => {
            finish(&cell.header, stage, Err(JoinError::panicked(payload)));
            Outcome::Done
        }
    }
}

/// Drops the future **in place** (catching a panicking `Drop`), stores
/// `out`, and marks the header `PANICKED` if the task ends in a panic.
///
/// In place matters: the future is pinned and may be self-referential (an
/// async block holding a reference to one of its own locals across an
/// await); moving it out before dropping it would leave those references
/// pointing at the old location.
fn finish<F: Future>(header: &Header, stage: &mut Stage<F>, out: Result<F::Output, JoinError>) {
    let slot: *mut Stage<F> = stage;
    // SAFETY: `slot` is valid and initialised; after this call its value
    // counts as dropped (also if a `Drop` panics: drop glue still drops the
    // remaining fields while unwinding), and it is only overwritten below
    // with `ptr::write`, never read or dropped again.
    let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
        std::ptr::drop_in_place(slot)
    }));
    let out = match dropped {
        // A panic in the future's Drop is still a panic of the task; the
        // output it produced is dropped (catching its own Drop's panic).
        Err(p) => {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(out)));
            Err(JoinError::panicked(p))
        }
        Ok(()) => out,
    };
    if out.as_ref().is_err_and(JoinError::is_panic) {
        header.set(PANICKED);
    }
    // SAFETY: the old value was dropped above; writing does not drop it again.
    unsafe { std::ptr::write(slot, Stage::Finished(out)) };
}

/// # Safety
///
/// As for [`poll`].
unsafe fn cancel<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: as in `poll`.
    let cell = unsafe { ptr.cast::<TaskCell<F>>().as_ref() };
    // SAFETY: exclusive stage access per the module invariant.
    let stage = unsafe { &mut *cell.stage.get() };
    // A panic while dropping the cancelled future is recorded as a panic.
    finish(&cell.header, stage, Err(JoinError::cancelled()));
}

/// # Safety
///
/// `ptr` is a live, COMPLETE `TaskCell<F>` whose output was not taken; `dst`
/// points at a `Poll<Result<F::Output, JoinError>>`.
unsafe fn take_output<F: Future>(ptr: NonNull<Header>, dst: *mut ()) {
    // SAFETY: as in `poll`.
    let cell = unsafe { ptr.cast::<TaskCell<F>>().as_ref() };
    // SAFETY: exclusive stage access per the module invariant.
    let stage = unsafe { &mut *cell.stage.get() };
    match std::mem::replace(stage, Stage::Consumed) {
        Stage::Finished(out) => {
            // SAFETY: the caller guarantees `dst`'s type.
            unsafe { *dst.cast::<Poll<Result<F::Output, JoinError>>>() = Poll::Ready(out) };
        }
        _ => unreachable!("output taken twice or before completion"),
    }
}

/// # Safety
///
/// `ptr` is a live, COMPLETE `TaskCell<F>`; owner thread.
unsafe fn drop_output<F: Future>(ptr: NonNull<Header>) -> Option<Box<dyn Any + Send>> {
    // SAFETY: as in `poll`.
    let cell = unsafe { ptr.cast::<TaskCell<F>>().as_ref() };
    // SAFETY: exclusive stage access per the module invariant.
    let stage = unsafe { &mut *cell.stage.get() };
    match std::mem::replace(stage, Stage::Consumed) {
        Stage::Finished(Err(e)) => e.try_into_panic().ok(),
        other => {
            // A panicking Drop of the output has nobody to report to but the
            // loop's exception handler: surface it as that payload.
            catch_unwind(AssertUnwindSafe(move || drop(other))).err()
        }
    }
}

/// # Safety
///
/// `ptr` is a live `TaskCell<F>`; owner thread.
unsafe fn output_ptr<F: Future>(ptr: NonNull<Header>) -> *const () {
    // SAFETY: as in `poll`.
    let cell = unsafe { ptr.cast::<TaskCell<F>>().as_ref() };
    // SAFETY: a shared read of the stage on the owner thread, while no
    // vtable function is running (module invariant "Stage access").
    match unsafe { &*cell.stage.get() } {
        Stage::Finished(out) => (out as *const Result<F::Output, JoinError>).cast(),
        _ => std::ptr::null(),
    }
}

/// # Safety
///
/// `ptr` is a live `TaskCell<F>` that just finished; owner thread.
unsafe fn cancel_output<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: as in `poll`.
    let cell = unsafe { ptr.cast::<TaskCell<F>>().as_ref() };
    // SAFETY: exclusive stage access per the module invariant.
    let stage = unsafe { &mut *cell.stage.get() };
    if matches!(stage, Stage::Finished(Ok(_))) {
        let old = std::mem::replace(stage, Stage::Finished(Err(JoinError::cancelled())));
        if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(old))) {
            *stage = Stage::Finished(Err(JoinError::panicked(p)));
            cell.header.set(PANICKED);
        } else {
            cell.header.set(CANCELLED);
        }
    }
}

/// # Safety
///
/// `ptr` is a `TaskCell<F>` whose reference count just reached zero.
unsafe fn dealloc<F: Future>(ptr: NonNull<Header>) {
    let cell = ptr.cast::<TaskCell<F>>();
    // SAFETY: initialised by `allocate` and never dropped yet; nobody else
    // holds a reference.
    unsafe { std::ptr::drop_in_place(cell.as_ptr()) };
    // SAFETY: the block came from `cell_cache::allocate` with this layout,
    // and its contents were just dropped.
    unsafe { super::cell_cache::free(cell.cast(), Layout::new::<TaskCell<F>>()) };
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is the header of a task this waker keeps alive.
    let header = unsafe { &*data.cast::<Header>() };
    header.inc_ref();
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    let task = TaskRef {
        // SAFETY: `data` came from a NonNull task pointer, and the waker's
        // one reference moves into this TaskRef.
        ptr: unsafe { NonNull::new_unchecked(data as *mut Header) },
    };
    Scheduler::wake(task);
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker keeps the task alive; we take a new reference.
    let header = unsafe { &*data.cast::<Header>() };
    header.inc_ref();
    let task = TaskRef {
        // SAFETY: `data` is non-null (it came from a NonNull).
        ptr: unsafe { NonNull::new_unchecked(data as *mut Header) },
    };
    Scheduler::wake(task);
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: the waker owns one reference.
    unsafe { release(NonNull::new_unchecked(data as *mut Header)) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_stays_small() {
        // Memory per idle task is a benchmark target (< 200 bytes beyond the
        // future, timer included); the header is most of it. The `tracing`
        // feature's span adds 16 bytes (docs/design/tracing.md); without
        // it the span is zero-sized.
        // Idle connections (issue 16) count it too: 64 since the name and
        // done callbacks share one lazily made box.
        let limit = if cfg!(feature = "tracing") { 80 } else { 64 };
        assert!(
            std::mem::size_of::<super::Header>() <= limit,
            "{}",
            std::mem::size_of::<super::Header>()
        );
    }
}
