//! [`Promise`]: asyncio's `Future`, a result set by hand and awaited by many.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::runtime::with_current;
use crate::task::sched::Callback;
use crate::task::{CallbackId, ExceptionContext};

/// The operation is not allowed in the promise's current state (asyncio's
/// `InvalidStateError`): setting a result twice, or reading a pending one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidStateError {
    what: &'static str,
}

impl InvalidStateError {
    /// An error saying `what` (a full sentence, as asyncio's messages).
    pub(crate) const fn new(what: &'static str) -> InvalidStateError {
        InvalidStateError { what }
    }
}

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

impl Error for InvalidStateError {}

/// Why a [`Promise`] has no value.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PromiseError {
    /// [`Promise::cancel`] was called.
    Cancelled,
    /// [`Promise::set_error`] was called with this error.
    Failed(Rc<dyn Error>),
    /// [`Promise::result`] was called before the promise was done.
    InvalidState(InvalidStateError),
}

impl fmt::Display for PromiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromiseError::Cancelled => f.write_str("promise was cancelled"),
            PromiseError::Failed(e) => write!(f, "promise failed: {e}"),
            PromiseError::InvalidState(e) => e.fmt(f),
        }
    }
}

impl Error for PromiseError {}

type PromiseCallback<T> = Box<dyn FnOnce(&Promise<T>)>;

enum State<T> {
    Pending {
        waiters: Slab<Waker>,
        callbacks: Vec<(CallbackId, PromiseCallback<T>)>,
    },
    Done(Result<T, PromiseError>),
}

/// A value that will be set later, awaited by any number of tasks
/// (asyncio's `Future`).
///
/// Clones are handles to the same promise. Awaiting a handle gives a clone
/// of the result, so `T: Clone`. Dropping one awaiter does not cancel the
/// promise for the others (a deliberate difference from asyncio); call
/// [`Promise::cancel`] to cancel it for everyone.
///
/// An error nobody retrieved is reported, as asyncio's "Future exception
/// was never retrieved": when the last handle to a promise that failed
/// ([`Promise::set_error`]) goes away and no handle ever read the error,
/// the loop's exception handler (see
/// [`EventLoop::set_exception_handler`](crate::EventLoop::set_exception_handler))
/// gets one [`ExceptionKind::NeverRetrieved`](crate::ExceptionKind::NeverRetrieved)
/// report. Reading means what it does in asyncio: a [`Promise::result`] or
/// [`Promise::exception`] call after the promise is done, or an `.await`
/// that completes. A result, a cancellation or a pending promise is never
/// reported. The report goes to the loop that was running when the error
/// was set (even if it was closed since), else to the loop running where
/// the promise is dropped, else to standard error.
///
/// # Examples
///
/// ```
/// use ringloop::Promise;
/// ringloop::run(async {
///     let p: Promise<u32> = Promise::new();
///     let waiter = ringloop::spawn({
///         let p = p.clone();
///         async move { p.await.unwrap() + 1 }
///     });
///     p.set_result(41).unwrap();
///     assert_eq!(waiter.await.unwrap(), 42);
///     assert!(p.set_result(0).is_err()); // already done
/// })
/// .unwrap();
/// ```
pub struct Promise<T> {
    shared: Rc<Shared<T>>,
    /// This handle's slot among the waiters, while it awaits.
    waiter: Option<usize>,
}

/// The state every handle shares, and what the report of an error nobody
/// retrieved needs.
struct Shared<T> {
    state: RefCell<State<T>>,
    /// A handle read the finished state (see [`Shared::read`]).
    retrieved: Cell<bool>,
    /// The loop running when the error was set.
    loop_id: Cell<Option<u64>>,
}

impl<T> Shared<T> {
    /// The finished state, marked as retrieved; `None` while pending.
    fn read<R>(&self, f: impl FnOnce(&Result<T, PromiseError>) -> R) -> Option<R> {
        match &*self.state.borrow() {
            State::Done(r) => {
                self.retrieved.set(true);
                Some(f(r))
            }
            State::Pending { .. } => None,
        }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if self.retrieved.get() {
            return;
        }
        if let State::Done(Err(PromiseError::Failed(e))) = self.state.get_mut() {
            let ctx = ExceptionContext::future_never_retrieved(&**e);
            crate::runtime::report_exception(self.loop_id.get(), &ctx);
        }
    }
}

impl<T: 'static> Default for Promise<T> {
    fn default() -> Self {
        Promise::new()
    }
}

impl<T> Clone for Promise<T> {
    fn clone(&self) -> Self {
        Promise {
            shared: self.shared.clone(),
            waiter: None,
        }
    }
}

impl<T: 'static> Promise<T> {
    /// A pending promise.
    pub fn new() -> Promise<T> {
        Promise {
            shared: Rc::new(Shared {
                state: RefCell::new(State::Pending {
                    waiters: Slab::new(),
                    callbacks: Vec::new(),
                }),
                retrieved: Cell::new(false),
                loop_id: Cell::new(None),
            }),
            waiter: None,
        }
    }

    fn finish(&self, out: Result<T, PromiseError>) -> Result<(), InvalidStateError> {
        let old = {
            let mut st = self.shared.state.borrow_mut();
            if matches!(*st, State::Done(_)) {
                return Err(InvalidStateError {
                    what: "invalid state: the promise is already done",
                });
            }
            std::mem::replace(&mut *st, State::Done(out))
        };
        let State::Pending { waiters, callbacks } = old else {
            unreachable!("checked pending above")
        };
        for (_, w) in waiters {
            w.wake();
        }
        for (_, cb) in callbacks {
            self.schedule_callback(cb);
        }
        Ok(())
    }

    /// Runs `cb` soon on the running loop, or now when no loop runs here.
    fn schedule_callback(&self, cb: PromiseCallback<T>) {
        let me = self.clone();
        let mut run: Option<Box<dyn FnOnce()>> = Some(Box::new(move || cb(&me)));
        with_current(|l| {
            if let Some(run) = run.take() {
                l.exec.call_soon(Callback::new(run));
            }
        });
        // No loop runs on this thread: nothing can run it later, so run it now.
        if let Some(run) = run {
            run();
        }
    }

    /// Completes the promise with `value`, waking every awaiter.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if it is already done.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.finish(Ok(value))
    }

    /// Completes the promise with an error.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if it is already done.
    pub fn set_error(&self, error: impl Into<Box<dyn Error>>) -> Result<(), InvalidStateError> {
        let e: Box<dyn Error> = error.into();
        self.finish(Err(PromiseError::Failed(Rc::from(e))))?;
        // Where a report of the error, if nobody reads it, will go.
        self.shared.loop_id.set(crate::runtime::current_loop_id());
        Ok(())
    }

    /// Cancels the promise for every awaiter. Returns false if it was
    /// already done.
    pub fn cancel(&self) -> bool {
        self.finish(Err(PromiseError::Cancelled)).is_ok()
    }

    /// Whether a result, an error or a cancellation was set.
    pub fn is_done(&self) -> bool {
        matches!(*self.shared.state.borrow(), State::Done(_))
    }

    /// Whether the promise was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            *self.shared.state.borrow(),
            State::Done(Err(PromiseError::Cancelled))
        )
    }

    /// The result, if done. Reading an error this way retrieves it (no
    /// "never retrieved" report).
    ///
    /// # Errors
    ///
    /// [`PromiseError::InvalidState`] while pending, [`PromiseError::Cancelled`]
    /// if cancelled, [`PromiseError::Failed`] with the error set.
    pub fn result(&self) -> Result<T, PromiseError>
    where
        T: Clone,
    {
        self.shared
            .read(Result::clone)
            .unwrap_or_else(|| Err(not_set_yet()))
    }

    /// The error the promise failed with, `None` if it has a result
    /// (asyncio's `exception()`); needs no `T: Clone`. Retrieves the error
    /// (no "never retrieved" report).
    ///
    /// # Errors
    ///
    /// [`PromiseError::InvalidState`] while pending, [`PromiseError::Cancelled`]
    /// if cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let p: ringloop::Promise<u32> = ringloop::Promise::new();
    /// assert!(p.exception().is_err()); // pending
    /// p.set_error("no luck").unwrap();
    /// assert_eq!(p.exception().unwrap().unwrap().to_string(), "no luck");
    /// ```
    pub fn exception(&self) -> Result<Option<Rc<dyn Error>>, PromiseError> {
        self.shared
            .read(|r| match r {
                Ok(_) => Ok(None),
                Err(PromiseError::Failed(e)) => Ok(Some(e.clone())),
                Err(e) => Err(e.clone()),
            })
            .unwrap_or_else(|| Err(not_set_yet()))
    }

    /// Calls `f` soon after the promise is done, in the order added;
    /// scheduled at once if it is already done. Returns the id that
    /// [`remove_done_callback`](Promise::remove_done_callback) takes.
    pub fn add_done_callback(&self, f: impl FnOnce(&Promise<T>) + 'static) -> CallbackId {
        let id = CallbackId::next();
        let mut st = self.shared.state.borrow_mut();
        match &mut *st {
            State::Pending { callbacks, .. } => callbacks.push((id, Box::new(f))),
            State::Done(_) => {
                drop(st);
                self.schedule_callback(Box::new(f));
            }
        }
        id
    }

    /// Removes the done callback registered as `id`; returns how many
    /// registrations went (1, or 0 if `id` is not one of this promise's
    /// callbacks still waiting). asyncio's `remove_done_callback`, by id
    /// rather than by function (see [`CallbackId`]). As in asyncio, a
    /// callback already scheduled (the promise is done) can no longer be
    /// removed and runs.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::run(async {
    ///     let p: ringloop::Promise<u32> = ringloop::Promise::new();
    ///     let id = p.add_done_callback(|_| unreachable!("removed"));
    ///     assert_eq!(p.remove_done_callback(id), 1);
    ///     assert_eq!(p.remove_done_callback(id), 0);
    ///     p.set_result(1).unwrap();
    ///     ringloop::yield_now().await;
    /// })
    /// .unwrap();
    /// ```
    pub fn remove_done_callback(&self, id: CallbackId) -> usize {
        let removed = match &mut *self.shared.state.borrow_mut() {
            State::Pending { callbacks, .. } => callbacks
                .iter()
                .position(|(i, _)| *i == id)
                .map(|at| callbacks.remove(at)),
            State::Done(_) => None,
        };
        // Dropped outside the borrow: its captures' `Drop` may use this
        // promise.
        usize::from(removed.is_some())
    }
}

fn not_set_yet() -> PromiseError {
    PromiseError::InvalidState(InvalidStateError::new(
        "invalid state: the promise's result is not set yet",
    ))
}

impl<T: Clone> Future for Promise<T> {
    type Output = Result<T, PromiseError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = this.shared.state.borrow_mut();
        match &mut *st {
            State::Done(r) => {
                let r = r.clone();
                drop(st);
                this.shared.retrieved.set(true);
                this.waiter = None;
                Poll::Ready(r)
            }
            State::Pending { waiters, .. } => {
                match this.waiter.and_then(|k| waiters.get_mut(k)) {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    Some(w) => *w = cx.waker().clone(),
                    None => this.waiter = Some(waiters.insert(cx.waker().clone())),
                }
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        // An awaiter going away only removes its own waker: the promise is
        // not cancelled for the others.
        if let Some(k) = self.waiter.take() {
            if let Ok(mut st) = self.shared.state.try_borrow_mut() {
                if let State::Pending { waiters, .. } = &mut *st {
                    waiters.try_remove(k);
                }
            }
        }
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.shared.state.borrow() {
            State::Pending { .. } => "pending",
            State::Done(Ok(_)) => "finished",
            State::Done(Err(PromiseError::Cancelled)) => "cancelled",
            State::Done(Err(_)) => "failed",
        };
        write!(f, "<Promise {state}>")
    }
}
