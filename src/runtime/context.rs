//! The running loop of the current thread (asyncio's `get_running_loop`).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::Local;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
    /// Every loop alive on this thread, running or not (so a timer can be
    /// disarmed when its future is dropped while its loop is not running).
    static LOOPS: RefCell<Vec<(u64, Weak<Local>)>> = const { RefCell::new(Vec::new()) };
}

/// Records a new loop of this thread.
pub(crate) fn register(local: &Rc<Local>) {
    LOOPS.with(|l| l.borrow_mut().push((local.id, Rc::downgrade(local))));
}

/// Forgets a loop of this thread (it is being dropped).
pub(crate) fn unregister(id: u64) {
    // `try_with`: the thread may be exiting and its locals gone.
    let _ = LOOPS.try_with(|l| l.borrow_mut().retain(|(i, _)| *i != id));
}

/// Runs `f` with loop `id` if it is alive on this thread.
pub(crate) fn with_loop<R>(id: u64, f: impl FnOnce(&Local) -> R) -> Option<R> {
    let local = CURRENT
        .try_with(|c| c.borrow().as_ref().filter(|l| l.id == id).cloned())
        .ok()
        .flatten()
        .or_else(|| {
            LOOPS
                .try_with(|l| {
                    l.borrow()
                        .iter()
                        .find(|(i, _)| *i == id)
                        .and_then(|(_, w)| w.upgrade())
                })
                .ok()
                .flatten()
        })?;
    Some(f(&local))
}

/// Runs `f` with the loop running on this thread, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Local>) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
}

/// The id of the loop running on this thread, if any (also while the
/// thread's locals are being destroyed: then none).
pub(crate) fn current_id() -> Option<u64> {
    CURRENT
        .try_with(|c| c.try_borrow().ok()?.as_ref().map(|l| l.id))
        .ok()
        .flatten()
}

/// Makes `local` the running loop until dropped (restoring none).
pub(crate) struct Running {
    local: Rc<Local>,
}

impl Running {
    /// Caller has checked that no loop is running on this thread.
    pub(crate) fn enter(local: &Rc<Local>) -> Running {
        CURRENT.with(|c| *c.borrow_mut() = Some(local.clone()));
        local.running.set(true);
        Running {
            local: local.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.local.running.set(false);
        // A stop() that arrived as the run ended must not stop the next run
        // (asyncio resets `_stopping` when run_forever returns).
        self.local.stopping.set(false);
        // `take` first, drop after: dropping the Rc outside the borrow.
        let prev = CURRENT.with(|c| c.borrow_mut().take());
        drop(prev);
    }
}
