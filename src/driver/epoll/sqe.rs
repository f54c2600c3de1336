//! An SQE read back as plain fields: the epoll backend carries out the
//! same submission queue entries the io_uring backend hands the kernel.
//!
//! The field names and meanings per opcode are the kernel's (see
//! `io_uring_enter(2)` and liburing's `io_uring_prep_*`); only the opcodes
//! ringloop's ops build are read.

use io_uring::squeue;

/// `struct io_uring_sqe` with each union read as the field ringloop uses.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawSqe {
    pub(crate) opcode: u8,
    pub(crate) flags: u8,
    pub(crate) ioprio: u16,
    pub(crate) fd: i32,
    /// `off`, or `addr2` (accept's `socklen_t *`, statx's buffer, rename's
    /// new path, send's destination).
    pub(crate) off: u64,
    pub(crate) addr: u64,
    pub(crate) len: u32,
    /// `rw_flags`, `msg_flags`, `accept_flags`, `poll32_events`, ...
    pub(crate) op_flags: u32,
    pub(crate) user_data: u64,
    /// `buf_index`, or `buf_group` (the provided buffer group of an op
    /// with `IOSQE_BUFFER_SELECT`).
    pub(crate) buf_group: u16,
    personality: u16,
    /// `file_index`, or send's `addr_len` in the low 16 bits.
    pub(crate) file_index: u32,
    addr3: u64,
    pad: u64,
}

const _: () = assert!(std::mem::size_of::<RawSqe>() == 64);
const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);

impl RawSqe {
    pub(crate) fn new(entry: squeue::Entry) -> RawSqe {
        // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's
        // `io_uring_sqe` (64 bytes, no padding: every field is naturally
        // aligned), whose layout is the kernel ABI that `RawSqe` spells out
        // field for field; every bit pattern is a valid value of `RawSqe`'s
        // integer fields. Sizes are checked at compile time above.
        unsafe { std::mem::transmute::<squeue::Entry, RawSqe>(entry) }
    }

    /// `IOSQE_IO_LINK`: the next SQE (a `LINK_TIMEOUT`) belongs to this one.
    pub(crate) fn linked(&self) -> bool {
        self.flags & (1 << 2) != 0
    }

    /// `IOSQE_BUFFER_SELECT`: the op takes a buffer from group
    /// `buf_group` when data arrives (`addr` is not used).
    pub(crate) fn buffer_select(&self) -> bool {
        self.flags & (1 << 5) != 0
    }

    /// Multishot accept (`IORING_ACCEPT_MULTISHOT` in `ioprio`), poll
    /// (`IORING_POLL_ADD_MULTI` in `len`) or receive
    /// (`IORING_RECV_MULTISHOT` in `ioprio`).
    pub(crate) fn multishot(&self) -> bool {
        match self.opcode {
            OP_ACCEPT => self.ioprio & 1 != 0,
            OP_POLL_ADD => self.len & 1 != 0,
            OP_RECV => self.ioprio & (1 << 1) != 0,
            _ => false,
        }
    }
}

// The opcodes ringloop builds (`io_uring_op` in the kernel's uapi).
pub(crate) const OP_NOP: u8 = 0;
pub(crate) const OP_FSYNC: u8 = 3;
pub(crate) const OP_POLL_ADD: u8 = 6;
pub(crate) const OP_SENDMSG: u8 = 9;
pub(crate) const OP_RECVMSG: u8 = 10;
pub(crate) const OP_TIMEOUT: u8 = 11;
pub(crate) const OP_ACCEPT: u8 = 13;
pub(crate) const OP_ASYNC_CANCEL: u8 = 14;
pub(crate) const OP_LINK_TIMEOUT: u8 = 15;
pub(crate) const OP_CONNECT: u8 = 16;
pub(crate) const OP_FALLOCATE: u8 = 17;
pub(crate) const OP_OPENAT: u8 = 18;
pub(crate) const OP_CLOSE: u8 = 19;
pub(crate) const OP_STATX: u8 = 21;
pub(crate) const OP_READ: u8 = 22;
pub(crate) const OP_WRITE: u8 = 23;
pub(crate) const OP_SEND: u8 = 26;
pub(crate) const OP_RECV: u8 = 27;
pub(crate) const OP_SHUTDOWN: u8 = 34;
pub(crate) const OP_RENAMEAT: u8 = 35;
pub(crate) const OP_UNLINKAT: u8 = 36;
pub(crate) const OP_MKDIRAT: u8 = 37;
pub(crate) const OP_FTRUNCATE: u8 = 55;

#[cfg(test)]
mod tests {
    use io_uring::opcode;
    use io_uring::types;

    use super::*;

    #[test]
    fn opcodes_match_the_crate() {
        for (ours, theirs) in [
            (OP_NOP, opcode::Nop::CODE),
            (OP_FSYNC, opcode::Fsync::CODE),
            (OP_POLL_ADD, opcode::PollAdd::CODE),
            (OP_SENDMSG, opcode::SendMsg::CODE),
            (OP_RECVMSG, opcode::RecvMsg::CODE),
            (OP_TIMEOUT, opcode::Timeout::CODE),
            (OP_ACCEPT, opcode::Accept::CODE),
            (OP_ASYNC_CANCEL, opcode::AsyncCancel::CODE),
            (OP_LINK_TIMEOUT, opcode::LinkTimeout::CODE),
            (OP_CONNECT, opcode::Connect::CODE),
            (OP_FALLOCATE, opcode::Fallocate::CODE),
            (OP_OPENAT, opcode::OpenAt::CODE),
            (OP_CLOSE, opcode::Close::CODE),
            (OP_STATX, opcode::Statx::CODE),
            (OP_READ, opcode::Read::CODE),
            (OP_WRITE, opcode::Write::CODE),
            (OP_SEND, opcode::Send::CODE),
            (OP_RECV, opcode::Recv::CODE),
            (OP_SHUTDOWN, opcode::Shutdown::CODE),
            (OP_RENAMEAT, opcode::RenameAt::CODE),
            (OP_UNLINKAT, opcode::UnlinkAt::CODE),
            (OP_MKDIRAT, opcode::MkDirAt::CODE),
            (OP_FTRUNCATE, opcode::Ftruncate::CODE),
        ] {
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn fields_land_where_the_kernel_reads_them() {
        let mut buf = [0u8; 16];
        let e = opcode::Read::new(types::Fd(7), buf.as_mut_ptr(), 16)
            .offset(42)
            .build()
            .user_data(99)
            .flags(squeue::Flags::IO_LINK);
        let s = RawSqe::new(e);
        assert_eq!(
            (s.opcode, s.fd, s.off, s.len, s.user_data),
            (OP_READ, 7, 42, 16, 99)
        );
        assert_eq!(s.addr, buf.as_mut_ptr() as u64);
        assert!(s.linked());

        let s = RawSqe::new(opcode::AcceptMulti::new(types::Fd(3)).build());
        assert!(s.multishot());
        let s = RawSqe::new(
            opcode::PollAdd::new(types::Fd(3), libc::POLLIN as u32)
                .multi(true)
                .build(),
        );
        assert!(s.multishot());
        assert_eq!(s.op_flags, libc::POLLIN as u32);
        let s = RawSqe::new(opcode::Send::new(types::Fd(3), buf.as_ptr(), 4).build());
        assert_eq!((s.opcode, s.len, s.file_index), (OP_SEND, 4, 0));
        assert!(!s.multishot() && !s.buffer_select());

        let s = RawSqe::new(opcode::RecvMulti::new(types::Fd(3), 9).build());
        assert!(s.multishot() && s.buffer_select());
        assert_eq!((s.opcode, s.buf_group), (OP_RECV, 9));
        let s = RawSqe::new(
            opcode::Recv::new(types::Fd(3), std::ptr::null_mut(), 64)
                .buf_group(5)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
        );
        assert!(!s.multishot() && s.buffer_select());
        assert_eq!((s.buf_group, s.len), (5, 64));
    }
}
