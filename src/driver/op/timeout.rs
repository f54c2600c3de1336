//! `IORING_OP_TIMEOUT` (io_uring_prep_timeout(3)): a kernel timer.
//!
//! The event loop keeps its timers in user space: per-operation deadlines
//! use [`LinkTimeout`]; [`Timeout`] serves the driver tests (ops that
//! never finish).

use std::time::Duration;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::driver::Completion;

/// Completes with `ETIME` after `duration` (saturated at the longest
/// timeout ringloop hands the kernel, about 136 years), or `ECANCELED` if
/// cancelled.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Timeout {
    /// Boxed: the kernel reads it through a pointer (see `OpCode`).
    ts: Box<types::Timespec>,
}

#[cfg(test)]
impl Timeout {
    pub(crate) fn new(duration: Duration) -> Timeout {
        Timeout {
            ts: Box::new(crate::sys::timespec(duration)),
        }
    }
}

// SAFETY: the SQE points only at `*self.ts`, a heap allocation owned by self.
#[cfg(test)]
unsafe impl OpCode for Timeout {
    /// `Ok(())` when the time passed, the error (`ECANCELED`, ...) otherwise.
    type Output = std::io::Result<()>;
    const CODE: u8 = opcode::Timeout::CODE;
    const NAME: &'static str = "IORING_OP_TIMEOUT";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&*self.ts).build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        match c.into_result() {
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }
}

/// `IORING_OP_LINK_TIMEOUT` (io_uring_prep_link_timeout(3)): cancels the op
/// it is linked to if that op has not finished within the duration
/// (saturated like [`Timeout`]'s).
#[derive(Debug)]
pub(crate) struct LinkTimeout {
    /// Boxed: the kernel reads it through a pointer.
    ts: Box<types::Timespec>,
}

impl LinkTimeout {
    pub(crate) fn new(duration: Duration) -> LinkTimeout {
        LinkTimeout {
            ts: Box::new(crate::sys::timespec(duration)),
        }
    }
}

// SAFETY: the SQE points only at `*self.ts`, a heap allocation owned by self.
unsafe impl OpCode for LinkTimeout {
    type Output = ();
    const CODE: u8 = opcode::LinkTimeout::CODE;
    const NAME: &'static str = "IORING_OP_LINK_TIMEOUT";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::LinkTimeout::new(&*self.ts).build()
    }

    fn complete(self, _c: Completion) {}
}
