//! The [`Op`] future and the [`OpCode`] trait every operation implements.
//!
//! An op is submitted when it is created. Its resources (`T`) live in the
//! future until the CQE; if the future is dropped first they move into the
//! driver's slot ([`super::Lifecycle::Abandoned`]) and live there until the
//! CQE, so the kernel never writes freed memory.

pub(crate) mod nop;
pub(crate) mod read;
pub(crate) mod timeout;
pub(crate) mod write;

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use io_uring::squeue;

use super::{Completion, Driver, OpKey};

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
}

/// A submitted operation; resolves to `T::Output` once its CQE arrives.
pub(crate) struct Op<T: OpCode> {
    driver: Rc<RefCell<Driver>>,
    key: Option<OpKey>,
    data: Option<T>,
}

impl<T: OpCode> Op<T> {
    /// Submits `data`'s SQE to `driver`.
    ///
    /// # Errors
    ///
    /// `Unsupported` when the kernel lacks the opcode.
    pub(crate) fn submit(driver: &Rc<RefCell<Driver>>, mut data: T) -> io::Result<Op<T>> {
        let mut d = driver.borrow_mut();
        if !d.supports(T::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "ringloop: the kernel does not support {} (probed with IORING_REGISTER_PROBE)",
                    T::NAME
                ),
            ));
        }
        let sqe = data.sqe();
        // SAFETY: `OpCode`'s contract puts every pointer of `sqe` into heap
        // memory owned by `data`; `data` stays in this future until the CQE
        // is collected, or moves into the driver's slot through `drop_op`.
        let key = unsafe { d.submit(sqe) };
        drop(d);
        Ok(Op {
            driver: driver.clone(),
            key: Some(key),
            data: Some(data),
        })
    }
}

#[cfg(test)]
impl<T: OpCode> Op<T> {
    pub(crate) fn key_for_test(&self) -> OpKey {
        self.key.expect("op not completed")
    }
}

// `Op` never hands out pinned references to `data`: the kernel only sees
// heap memory that does not move with it (see `OpCode`).
impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let key = self.key.expect("Op polled after completion");
        let completion = ready!(self.driver.borrow_mut().poll_op(key, cx));
        self.key = None;
        let data = self.data.take().expect("Op data present until completion");
        Poll::Ready(data.complete(completion))
    }
}

impl<T: OpCode> Drop for Op<T> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let data = self.data.take().expect("Op data present until completion");
        let cancel = data.cancel_on_drop();
        let resources: Box<dyn std::any::Any> = Box::new(data);
        match self.driver.try_borrow_mut() {
            Ok(mut d) => {
                let free_now = d.drop_op(key, resources, cancel);
                drop(d);
                // Dropped outside the borrow: a buffer's Drop may run user code.
                drop(free_now);
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
