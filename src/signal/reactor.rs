//! The per-loop half: one ring read on the loop's leased eventfd, and the
//! listeners and handlers it serves.
//!
//! A loop that listens for any signal has one [`LoopSignals`] (found by loop
//! id in a thread-local list). It keeps one `IORING_OP_READ` in flight on
//! its [`Lease`]'s eventfd. When the signal handler writes that eventfd the
//! read completes, the driver wakes [`ReadWaker`] on the loop's thread, and
//! [`LoopSignals::process`] compares each listener's last seen generation
//! with the current one: changed ones are woken (streams) or scheduled with
//! `call_soon` (handlers). Then the read is submitted again.
//!
//! # Invariants
//!
//! 1. A `LoopSignals` is in the thread-local list iff it may still re-arm its
//!    read; it leaves the list when its last listener goes
//!    ([`LoopSignals::retire_if_idle`]), when its loop is torn down or its
//!    read fails ([`LoopSignals::shut`]). Its read op holds a strong
//!    reference to the driver, so it is dropped at that moment too.
//! 2. No `RefCell` borrow is held while a waker is woken or dropped, or a
//!    handler closure dropped: those may drop tasks whose futures own
//!    [`super::Signal`]s, which come back here.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use super::disposition::CountedHold;
use super::handler::{Lease, UserGuard, generation};
use super::number::RUN_CHANNEL;
use crate::driver::Driver;
use crate::driver::op::Op;
use crate::driver::op::read::Read;

type SignalRead = Op<Read<Rc<Lease>, Vec<u8>>>;

thread_local! {
    /// The `LoopSignals` of this thread's loops that listen for signals.
    static LOOPS: RefCell<Vec<Rc<LoopSignals>>> = const { RefCell::new(Vec::new()) };
}

/// The `LoopSignals` of loop `loop_id`, if it lives on this thread.
pub(super) fn find(loop_id: u64) -> Option<Rc<LoopSignals>> {
    LOOPS
        .try_with(|l| l.borrow().iter().find(|s| s.loop_id == loop_id).cloned())
        .ok()
        .flatten()
}

fn unlist(loop_id: u64) {
    let gone = LOOPS
        .try_with(|l| {
            let mut l = l.borrow_mut();
            l.iter()
                .position(|s| s.loop_id == loop_id)
                .map(|i| l.swap_remove(i))
        })
        .ok()
        .flatten();
    drop(gone);
}

/// The signal state of loop `loop_id`, created (and its read armed) on
/// first use.
///
/// # Errors
///
/// No free eventfd slot, `eventfd` failure, or the kernel lacks
/// `IORING_OP_READ`.
pub(super) fn for_loop(loop_id: u64, driver: &Rc<RefCell<Driver>>) -> io::Result<Rc<LoopSignals>> {
    if let Some(s) = find(loop_id) {
        return Ok(s);
    }
    let shared = Rc::new(LoopSignals {
        loop_id,
        driver: Rc::downgrade(driver),
        lease: Rc::new(Lease::new()?),
        read: RefCell::new(None),
        waker: Waker::from(Arc::new(ReadWaker { loop_id })),
        dead: Cell::new(false),
        waiters: RefCell::new(Slab::new()),
        handlers: RefCell::new(Vec::new()),
    });
    shared.submit(driver, Vec::with_capacity(8))?;
    LOOPS.with(|l| l.borrow_mut().push(shared.clone()));
    shared.process();
    Ok(shared)
}

/// Wakes the loop's signal state when its eventfd read completes. Holds
/// only the loop id, so it is `Send`; the driver wakes it on the loop's own
/// thread, where the thread-local lookup finds the state (elsewhere it finds
/// nothing and does nothing).
struct ReadWaker {
    loop_id: u64,
}

impl Wake for ReadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(s) = find(self.loop_id) {
            s.process();
        }
    }
}

/// The `tracing` event (feature `tracing`) of a delivery of generation
/// slot `index` (a signal number, or `run()`'s Ctrl-C watch) to one
/// listener (when it takes it) or handler (when its call is queued) of
/// loop `loop_id`; `to` says which: `"signal"` (a `Signal` stream),
/// `"run"` (`run()`'s Ctrl-C watch) or `"handler"`.
fn trace_delivery(loop_id: u64, index: usize, to: &'static str) {
    let signal = if index == RUN_CHANNEL {
        libc::SIGINT
    } else {
        index as i32
    };
    crate::trace::event!(
        target: "ringloop::signal",
        DEBUG,
        "signal delivered",
        signal = signal,
        to = to,
        loop_id = loop_id,
    );
}

/// A listener: a [`super::Signal`], or `run()`'s Ctrl-C watch.
struct Waiter {
    /// Generation table index (a signal number or the run channel).
    index: usize,
    /// The generation this listener last saw.
    seen: usize,
    waker: Option<Waker>,
}

/// A loop signal handler's closure; `removed` stops a call already queued.
struct HandlerFn {
    f: RefCell<Box<dyn FnMut()>>,
    removed: Cell<bool>,
}

struct Handler {
    signum: i32,
    seen: Cell<usize>,
    f: Rc<HandlerFn>,
    _user: UserGuard,
    _hold: CountedHold,
}

/// One loop's signal listeners and the ring read that wakes them.
pub(super) struct LoopSignals {
    loop_id: u64,
    driver: Weak<RefCell<Driver>>,
    lease: Rc<Lease>,
    /// The read in flight (the lease travels with it until its CQE).
    read: RefCell<Option<SignalRead>>,
    waker: Waker,
    /// The loop was torn down or the read failed: no more deliveries.
    dead: Cell<bool>,
    waiters: RefCell<Slab<Waiter>>,
    handlers: RefCell<Vec<Handler>>,
}

impl LoopSignals {
    fn submit(&self, driver: &Rc<RefCell<Driver>>, mut buf: Vec<u8>) -> io::Result<()> {
        buf.clear();
        let op = Op::submit(driver, Read::new(self.lease.clone(), buf, u64::MAX))?;
        *self.read.borrow_mut() = Some(op);
        Ok(())
    }

    /// Collects the read's completion if it arrived: delivers, re-arms.
    fn process(self: &Rc<Self>) {
        loop {
            let (res, buf) = {
                let Ok(mut slot) = self.read.try_borrow_mut() else {
                    return;
                };
                let Some(op) = slot.as_mut() else { return };
                let mut cx = Context::from_waker(&self.waker);
                match Pin::new(op).poll(&mut cx) {
                    Poll::Pending => return,
                    Poll::Ready(out) => {
                        *slot = None;
                        out
                    }
                }
            };
            match res {
                Ok(_) => self.deliver(),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) => {}
                // ECANCELED (the loop is closing) or a real failure.
                Err(_) => return self.shut(),
            }
            let Some(driver) = self.driver.upgrade() else {
                return self.shut();
            };
            if self.submit(&driver, buf).is_err() {
                return self.shut();
            }
            // Loop: poll the new read once so it registers the waker.
        }
    }

    /// Wakes the listeners whose signal arrived and queues the handlers'.
    fn deliver(&self) {
        let wakers: Vec<Waker> = self
            .waiters
            .borrow_mut()
            .iter_mut()
            .filter(|(_, w)| w.waker.is_some() && generation(w.index) != w.seen)
            .filter_map(|(_, w)| w.waker.take())
            .collect();
        wakers.into_iter().for_each(Waker::wake);
        let due: Vec<(i32, Rc<HandlerFn>)> = self
            .handlers
            .borrow()
            .iter()
            .filter_map(|h| {
                let g = generation(h.signum as usize);
                (g != h.seen.replace(g)).then(|| (h.signum, h.f.clone()))
            })
            .collect();
        for (signum, f) in due {
            trace_delivery(self.loop_id, signum as usize, "handler");
            let call = Box::new(move || {
                if f.removed.get() {
                    return;
                }
                if let Ok(mut f) = f.f.try_borrow_mut() {
                    (*f)();
                }
            });
            // A closed loop refuses the call; its handlers are being dropped.
            let _ = crate::runtime::with_loop(self.loop_id, |l| l.call_at(None, call));
        }
    }

    /// No more deliveries: the loop is torn down or the read failed.
    pub(super) fn shut(&self) {
        self.dead.set(true);
        unlist(self.loop_id);
        let read = self.read.try_borrow_mut().ok().and_then(|mut r| r.take());
        drop(read);
        let handlers = std::mem::take(&mut *self.handlers.borrow_mut());
        for h in &handlers {
            h.f.removed.set(true);
        }
        drop(handlers);
        let wakers: Vec<Waker> = self
            .waiters
            .borrow_mut()
            .iter_mut()
            .filter_map(|(_, w)| w.waker.take())
            .collect();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Stops the read once nobody listens (invariant 1).
    fn retire_if_idle(&self) {
        if self.waiters.borrow().is_empty() && self.handlers.borrow().is_empty() {
            self.dead.set(true);
            unlist(self.loop_id);
            let read = self.read.try_borrow_mut().ok().and_then(|mut r| r.take());
            drop(read);
        }
    }

    /// Adds a listener of generation slot `index`; it sees deliveries from
    /// now on.
    pub(super) fn subscribe(&self, index: usize) -> usize {
        self.waiters.borrow_mut().insert(Waiter {
            index,
            seen: generation(index),
            waker: None,
        })
    }

    /// Whether listener `key` has a delivery it has not taken; `None` once
    /// no more can come.
    pub(super) fn poll_waiter(&self, key: usize, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let old = {
            let mut waiters = self.waiters.borrow_mut();
            let w = &mut waiters[key];
            let g = generation(w.index);
            if g != w.seen {
                w.seen = g;
                let index = w.index;
                drop(waiters);
                let to = if index == RUN_CHANNEL {
                    "run"
                } else {
                    "signal"
                };
                trace_delivery(self.loop_id, index, to);
                return Poll::Ready(Some(()));
            }
            if self.dead.get() {
                return Poll::Ready(None);
            }
            match &w.waker {
                Some(old) if old.will_wake(cx.waker()) => None,
                _ => w.waker.replace(cx.waker().clone()),
            }
        };
        drop(old);
        Poll::Pending
    }

    pub(super) fn unsubscribe(&self, key: usize) {
        let gone = self.waiters.borrow_mut().try_remove(key);
        drop(gone);
        self.retire_if_idle();
    }

    /// Sets the handler of `signum` on this loop, replacing any previous one.
    pub(super) fn add_handler(
        &self,
        signum: i32,
        f: Box<dyn FnMut()>,
        user: UserGuard,
        hold: CountedHold,
    ) {
        let new = Handler {
            signum,
            seen: Cell::new(generation(signum as usize)),
            f: Rc::new(HandlerFn {
                f: RefCell::new(f),
                removed: Cell::new(false),
            }),
            _user: user,
            _hold: hold,
        };
        let old = {
            let mut hs = self.handlers.borrow_mut();
            match hs.iter_mut().find(|h| h.signum == signum) {
                Some(h) => Some(std::mem::replace(h, new)),
                None => {
                    hs.push(new);
                    None
                }
            }
        };
        if let Some(old) = old {
            old.f.removed.set(true);
        }
    }

    /// Removes the handler of `signum`; whether there was one.
    pub(super) fn remove_handler(&self, signum: i32) -> bool {
        let old = {
            let mut hs = self.handlers.borrow_mut();
            hs.iter()
                .position(|h| h.signum == signum)
                .map(|i| hs.remove(i))
        };
        let Some(old) = old else { return false };
        old.f.removed.set(true);
        drop(old);
        self.retire_if_idle();
        true
    }

    pub(super) fn loop_id(&self) -> u64 {
        self.loop_id
    }
}
