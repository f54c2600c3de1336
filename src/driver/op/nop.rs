//! `IORING_OP_NOP` (io_uring_prep_nop(3)): completes at once.

use io_uring::{opcode, squeue};

use super::OpCode;
use crate::driver::Completion;

/// A no-op; resolves to the CQE's result (0).
#[derive(Debug)]
pub(crate) struct Nop;

// SAFETY: a NOP's SQE carries no pointer.
unsafe impl OpCode for Nop {
    type Output = std::io::Result<u32>;
    const CODE: u8 = opcode::Nop::CODE;
    const NAME: &'static str = "IORING_OP_NOP";

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Nop::new().build()
    }

    fn complete(self, c: Completion) -> Self::Output {
        c.into_result()
    }
}
