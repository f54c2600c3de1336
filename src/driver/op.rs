//! The [`Op`] future and the [`OpCode`] trait every operation implements.
//!
//! An op is submitted when it is created. Its resources (`T`) live in the
//! future until the CQE; if the future is dropped first they move into the
//! driver's slot ([`super::Lifecycle::Abandoned`]) and live there until the
//! CQE, so the kernel never writes freed memory.

pub(crate) mod accept;
pub(crate) mod cancel;
pub(crate) mod close;
pub(crate) mod connect;
pub(crate) mod fallocate;
pub(crate) mod fsync;
pub(crate) mod ftruncate;
pub(crate) mod kept_read;
pub(crate) mod mkdirat;
// The driver tests drive the ring with these two; the library has its own
// timers (`runtime::timers`) and needs no NOP.
#[cfg(test)]
pub(crate) mod nop;
pub(crate) mod openat;
pub(crate) mod poll_add;
pub(crate) mod poll_multi;
pub(crate) mod read;
pub(crate) mod recv_provided;
pub(crate) mod recvmsg;
pub(crate) mod renameat;
pub(crate) mod send;
pub(crate) mod send_zc;
pub(crate) mod sendmsg;
pub(crate) mod shutdown;
pub(crate) mod statx;
pub(crate) mod timeout;
pub(crate) mod unlinkat;
pub(crate) mod vectored;
pub(crate) mod waitid;
pub(crate) mod write;

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use io_uring::squeue;

use super::{Completion, Driver, OpKey, Orphan};

/// One io_uring operation: how to build its SQE and read its CQE.
///
/// # Safety
///
/// Every pointer [`OpCode::sqe`] puts into the entry must point into memory
/// owned by `self` that stays valid *at the same address* while `self` lives,
/// even when `self` is moved: heap memory (a `Box`, a `Vec`'s buffer), never
/// a field stored inline in `self`. The driver keeps `self` alive until the
/// CQE has been reaped.
pub(crate) unsafe trait OpCode: 'static {
    /// What the op's future resolves to.
    type Output;
    /// The io_uring opcode, probed before submission.
    const CODE: u8;
    /// The opcode's name, for errors (e.g. `"IORING_OP_READ"`).
    const NAME: &'static str;
    /// Builds the SQE (without `user_data`, which the driver sets).
    fn sqe(&mut self) -> squeue::Entry;
    /// Turns the CQE into the output, handing resources back.
    fn complete(self, completion: Completion) -> Self::Output;
    /// Whether a dropped future should ask the kernel to cancel the op
    /// (false for ops that always finish promptly, such as `close`).
    fn cancel_on_drop(&self) -> bool {
        true
    }
    /// The provided buffer group the op selects from (`IOSQE_BUFFER_SELECT`).
    fn buf_group(&self) -> Option<u16> {
        None
    }
    /// The CQE of an op whose future was dropped: rescue what the kernel
    /// produced (keep received bytes, close an accepted fd). Default: drop.
    fn complete_orphan(self, completion: Completion)
    where
        Self: Sized,
    {
        let _ = completion;
    }
}

impl<T: OpCode> Orphan for T {
    fn complete(self: Box<Self>, completion: Completion) {
        (*self).complete_orphan(completion);
    }
}

/// A submitted operation; resolves to `T::Output` once its CQE arrives.
pub(crate) struct Op<T: OpCode> {
    driver: Rc<RefCell<Driver>>,
    key: Option<OpKey>,
    data: Option<T>,
    /// Completed as it was submitted, without a slot in the driver (the
    /// epoll backend's `try_now`): the syscall has returned, nothing of
    /// `data` is shared with anyone.
    done: Option<Completion>,
}

impl<T: OpCode> Op<T> {
    /// Submits `data`'s SQE to `driver`.
    ///
    /// # Errors
    ///
    /// `Unsupported` when the kernel lacks the opcode.
    pub(crate) fn submit(driver: &Rc<RefCell<Driver>>, data: T) -> io::Result<Op<T>> {
        Op::try_submit(driver, data).map_err(|(e, _)| e)
    }

    /// [`Op::submit`], handing `data` back on error (so a buffer is not lost).
    ///
    /// # Errors
    ///
    /// `Unsupported` when the kernel lacks the opcode.
    pub(crate) fn try_submit(
        driver: &Rc<RefCell<Driver>>,
        mut data: T,
    ) -> Result<Op<T>, (io::Error, T)> {
        let mut d = driver.borrow_mut();
        if !d.supports(T::CODE) {
            return Err((unsupported(&d, T::NAME), data));
        }
        let sqe = data.sqe();
        let bgid = data.buf_group().unwrap_or(super::NO_GROUP);
        // SAFETY: `OpCode`'s contract puts every pointer of `sqe` into heap
        // memory owned by `data`; `data` stays in this future until the CQE
        // is collected, or moves into the driver's slot through `drop_op`.
        // Completed at once (epoll), the syscall has returned before this
        // does: `data` is nobody else's.
        let (key, done) = match unsafe { d.submit_or_complete(sqe, bgid) } {
            Ok(key) => (Some(key), None),
            Err(c) => (None, Some(c)),
        };
        drop(d);
        Ok(Op {
            driver: driver.clone(),
            key,
            data: Some(data),
            done,
        })
    }
}

impl<T: OpCode> Op<T> {
    /// Submits `data`'s SQE linked to a `LinkTimeout` of `timeout`: if the op
    /// has not finished by then the kernel cancels it (`ECANCELED`).
    ///
    /// # Errors
    ///
    /// `Unsupported` when the kernel lacks the opcode or `LinkTimeout`.
    pub(crate) fn submit_with_timeout(
        driver: &Rc<RefCell<Driver>>,
        mut data: T,
        timeout: std::time::Duration,
    ) -> io::Result<Op<T>> {
        let mut d = driver.borrow_mut();
        for (code, name) in [
            (T::CODE, T::NAME),
            (timeout::LinkTimeout::CODE, timeout::LinkTimeout::NAME),
        ] {
            if !d.supports(code) {
                return Err(unsupported(&d, name));
            }
        }
        let mut link = timeout::LinkTimeout::new(timeout);
        let (sqe, tsqe) = (data.sqe(), link.sqe());
        // SAFETY: as in `submit`, for `data`; the timeout's `Timespec` is
        // owned by `link`, which the driver keeps until its CQE.
        let key = unsafe { d.submit_linked(sqe, tsqe, Box::new(link)) };
        drop(d);
        Ok(Op {
            driver: driver.clone(),
            key: Some(key),
            data: Some(data),
            done: None,
        })
    }
}

/// Submits an op nobody waits for (closing a dropped socket).
pub(crate) fn submit_detached<T: OpCode>(driver: &Rc<RefCell<Driver>>, mut data: T) {
    let sqe = data.sqe();
    match driver.try_borrow_mut() {
        // SAFETY: `data` owns what `sqe` points at and moves into the slot.
        Ok(mut d) => unsafe { d.submit_detached(sqe, Box::new(data)) },
        // Called from inside the driver (a resource's Drop): leak rather
        // than risk freeing memory the kernel may use.
        Err(_) => std::mem::forget(data),
    }
}

/// `name` is not available on `driver`'s backend: the io_uring kernel's
/// probe said no, or the epoll backend cannot carry it out.
fn unsupported(driver: &Driver, name: &str) -> io::Error {
    let why = match driver.backend() {
        super::Backend::IoUring => {
            format!("the kernel does not support {name} (probed with IORING_REGISTER_PROBE)")
        }
        super::Backend::Epoll => format!("the epoll backend cannot carry out {name}"),
    };
    io::Error::new(io::ErrorKind::Unsupported, format!("ringloop: {why}"))
}

#[cfg(test)]
impl<T: OpCode> Op<T> {
    pub(crate) fn key_for_test(&self) -> OpKey {
        self.key.expect("op not completed")
    }

    /// Completed as it was submitted, with no slot in the driver.
    pub(crate) fn done_at_submit(&self) -> bool {
        self.done.is_some()
    }
}

// `Op` never hands out pinned references to `data`: the kernel only sees
// heap memory that does not move with it (see `OpCode`).
impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        if let Some(c) = self.done.take() {
            let data = self.data.take().expect("Op polled after completion");
            return Poll::Ready(data.complete(c));
        }
        let key = self.key.expect("Op polled after completion");
        let completion = ready!(self.driver.borrow_mut().poll_op(key, cx));
        self.key = None;
        let data = self.data.take().expect("Op data present until completion");
        Poll::Ready(data.complete(completion))
    }
}

impl<T: OpCode> Drop for Op<T> {
    fn drop(&mut self) {
        if let Some(c) = self.done.take() {
            // Done but never collected: rescue what it produced, as the
            // orphan of a completed op would.
            if let Some(data) = self.data.take() {
                data.complete_orphan(c);
            }
            return;
        }
        let Some(key) = self.key.take() else { return };
        let data = self.data.take().expect("Op data present until completion");
        let cancel = data.cancel_on_drop();
        let resources: Box<dyn Orphan> = Box::new(data);
        match self.driver.try_borrow_mut() {
            Ok(mut d) => {
                let done = d.drop_op(key, resources, cancel);
                drop(d);
                // Outside the borrow: a buffer's Drop may run user code. An
                // op that completed before its future saw it completes as an
                // orphan, so nothing the kernel produced is lost or leaked.
                if let Some((orphan, Some(c))) = done {
                    orphan.complete(c);
                }
            }
            // Dropped from inside the driver (a resource's Drop dropping an
            // op): leaking is the only choice that cannot free memory the
            // kernel may still write.
            Err(_) => std::mem::forget(resources),
        }
    }
}

impl<T: OpCode> std::fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("opcode", &T::NAME)
            .field("key", &self.key)
            .finish()
    }
}

/// A multishot operation: one SQE, many CQEs (io_uring_multishot(7)).
///
/// # Safety
///
/// As for [`OpCode`]: every pointer [`MultiCode::sqe`] puts into the entry
/// points into heap memory owned by `self`, valid until the final CQE.
pub(crate) unsafe trait MultiCode: 'static {
    /// What each completion yields.
    type Item;
    /// The io_uring opcode, probed before submission.
    const CODE: u8;
    /// The opcode's name, for errors.
    const NAME: &'static str;
    /// Builds the SQE (without `user_data`).
    fn sqe(&mut self) -> squeue::Entry;
    /// Turns one CQE into an item.
    fn item(&self, completion: Completion) -> Self::Item;
    /// The provided buffer group the op selects from (`IOSQE_BUFFER_SELECT`).
    fn buf_group(&self) -> Option<u16> {
        None
    }
    /// A CQE nobody will take (the stream was dropped): release what it
    /// carries (close an fd). Runs inside the driver: no user code.
    fn orphan(&self, completion: Completion);
}

/// A multishot op's resources once its stream is gone.
struct MultiOrphan<T>(T);

impl<T: MultiCode> Orphan for MultiOrphan<T> {
    fn complete(self: Box<Self>, completion: Completion) {
        self.0.orphan(completion);
    }

    fn more(&mut self, completion: Completion) {
        self.0.orphan(completion);
    }
}

/// The stream of a submitted multishot op.
pub(crate) struct MultiOp<T: MultiCode> {
    driver: Rc<RefCell<Driver>>,
    key: Option<OpKey>,
    data: Option<T>,
}

impl<T: MultiCode> MultiOp<T> {
    /// Submits `data`'s SQE as a multishot op.
    ///
    /// # Errors
    ///
    /// `Unsupported` when the kernel lacks the opcode.
    pub(crate) fn submit(driver: &Rc<RefCell<Driver>>, data: T) -> io::Result<MultiOp<T>> {
        MultiOp::try_submit(driver, data).map_err(|(e, _)| e)
    }

    /// [`MultiOp::submit`], handing `data` back on error (so a buffer is
    /// not lost).
    ///
    /// # Errors
    ///
    /// `Unsupported` when the kernel lacks the opcode.
    pub(crate) fn try_submit(
        driver: &Rc<RefCell<Driver>>,
        mut data: T,
    ) -> Result<MultiOp<T>, (io::Error, T)> {
        let mut d = driver.borrow_mut();
        if !d.supports(T::CODE) {
            return Err((unsupported(&d, T::NAME), data));
        }
        let sqe = data.sqe();
        let bgid = data.buf_group().unwrap_or(super::NO_GROUP);
        // SAFETY: `MultiCode`'s contract; `data` stays in this stream until
        // the final CQE, or moves into the driver's slot through drop_multi.
        let key = unsafe { d.submit_multi(sqe, bgid) };
        drop(d);
        Ok(MultiOp {
            driver: driver.clone(),
            key: Some(key),
            data: Some(data),
        })
    }

    /// The next item; `None` once the op ended (re-submit to continue).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        let Some(key) = self.key else {
            return Poll::Ready(None);
        };
        match ready!(self.driver.borrow_mut().poll_multi(key, cx)) {
            Some(c) => {
                let data = self.data.as_ref().expect("data present while the op runs");
                Poll::Ready(Some(data.item(c)))
            }
            None => {
                self.key = None;
                Poll::Ready(None)
            }
        }
    }
}

impl<T: MultiCode> MultiOp<T> {
    /// The op's resources, once its final completion has been taken
    /// (`poll_next` returned `None`); `None` while it still runs.
    pub(crate) fn into_data(mut self) -> Option<T> {
        if self.key.is_some() {
            return None;
        }
        self.data.take()
    }

    /// Drops the completions queued and not yet taken (a readiness wait
    /// about to wait for the *next* edge: those came before what it saw).
    pub(crate) fn discard_queued(&mut self) {
        if let Some(key) = self.key {
            self.driver.borrow_mut().discard_multi(key);
        }
    }
}

impl<T: MultiCode> Drop for MultiOp<T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let data = self.data.take().expect("data present while the op runs");
        let resources: Box<dyn Orphan> = Box::new(MultiOrphan(data));
        match self.driver.try_borrow_mut() {
            Ok(mut d) => {
                let done = d.drop_multi(key, resources);
                drop(d);
                drop(done);
            }
            Err(_) => std::mem::forget(resources),
        }
    }
}

impl<T: MultiCode> std::fmt::Debug for MultiOp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiOp")
            .field("opcode", &T::NAME)
            .field("key", &self.key)
            .finish()
    }
}
