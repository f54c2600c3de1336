//! The running loop of the current thread (asyncio's `get_running_loop`).

use std::cell::RefCell;
use std::rc::Rc;

use super::Local;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

/// Runs `f` with the loop running on this thread, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Local>) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
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
        // `take` first, drop after: dropping the Rc outside the borrow.
        let prev = CURRENT.with(|c| c.borrow_mut().take());
        drop(prev);
    }
}
