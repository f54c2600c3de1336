//! The syscall each SQE stands for, made by hand: without blocking on the
//! loop's thread (sockets, pipes, eventfds: the caller waits for readiness
//! on `EAGAIN`), or blocking on a pool thread (files, paths).
//!
//! Results are in CQE form: the count or fd, or a negated errno.
//!
//! # Safety
//!
//! Every function here dereferences the pointers an SQE carries. They are
//! valid by the same contract that makes them valid for the kernel
//! (`OpCode`'s: heap memory owned by the op, kept by the driver until the
//! op's completion has been reaped), which the epoll backend upholds by
//! reporting the completion only after the syscall returned.

use std::io;

use super::sqe::*;

fn cqe(ret: isize) -> i32 {
    if ret < 0 {
        -std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        i32::try_from(ret).unwrap_or(i32::MAX)
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// What kind of file an fd is, for `READ`/`WRITE` (which work on any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A socket: `recv`/`send` with `MSG_DONTWAIT`, no fd flag touched.
    Socket,
    /// Pollable but not a socket (a pipe, a FIFO, an eventfd, a signalfd):
    /// `O_NONBLOCK` set on our open file description.
    Pollable,
    /// Always "ready" to epoll, may block anyway: a regular file, a block
    /// or character device (a terminal shared with the shell keeps its
    /// flags): a pool thread does the I/O.
    Blocking,
}

/// Finds `fd`'s kind, setting `O_NONBLOCK` on a pollable non-socket.
pub(crate) fn classify(fd: i32) -> Kind {
    // SAFETY: `st` is a writable stat buffer; fstat writes only into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; an invalid fd makes fstat fail, which is handled.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        // Let the I/O itself report the bad fd.
        return Kind::Pollable;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFREG | libc::S_IFBLK | libc::S_IFCHR | libc::S_IFDIR => Kind::Blocking,
        _ => {
            set_nonblocking(fd, true);
            Kind::Pollable
        }
    }
}

/// Sets or clears `O_NONBLOCK`; returns whether it was set before.
pub(crate) fn set_nonblocking(fd: i32, on: bool) -> bool {
    // SAFETY: F_GETFL/F_SETFL take no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return false;
    }
    let was = flags & libc::O_NONBLOCK != 0;
    if was != on {
        let new = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETFL, new) };
    }
    was
}

/// `SOL_SOCKET` option `name` of socket `fd`.
fn socket_option(fd: i32, name: i32) -> io::Result<i32> {
    // SAFETY: `fd` is the fd of an op still in flight (module contract:
    // the op keeps it open), borrowed only for this call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    crate::sys::getsockopt_int(&fd, libc::SOL_SOCKET, name)
}

/// Whether a socket delivers a byte stream (a short read means drained),
/// rather than messages.
pub(crate) fn is_stream_socket(fd: i32) -> bool {
    socket_option(fd, libc::SO_TYPE).is_ok_and(|ty| ty == libc::SOCK_STREAM)
}

/// One attempt at a readiness op without blocking: `-EAGAIN` means "wait
/// for readiness and try again".
///
/// # Safety
///
/// The module's contract: `s`'s pointers are valid for the op.
pub(crate) unsafe fn attempt(s: &RawSqe, kind: Kind) -> i32 {
    let fd = s.fd;
    let ptr = s.addr as *mut libc::c_void;
    let len = s.len as usize;
    let dontwait = libc::c_long::from(s.op_flags as i32 | libc::MSG_DONTWAIT);
    let (fd, p, n) = (
        libc::c_long::from(fd),
        ptr as libc::c_long,
        len as libc::c_long,
    );
    let null = 0 as libc::c_long;
    // Raw syscall(2), every argument widened to a long: libc's recv, send
    // and friends are thread-cancellation points, whose bookkeeping (pthread
    // enable/disable asynccancel around each call) cost about 1% of an echo
    // server's CPU in a profile; ringloop never cancels threads.
    // SAFETY: (every call below) the SQE's pointers and lengths describe
    // memory the op owns (module contract); the kernel validates the fd.
    let ret = unsafe {
        match (s.opcode, kind) {
            (OP_RECV, _) => libc::syscall(libc::SYS_recvfrom, fd, p, n, dontwait, null, null),
            (OP_READ, Kind::Socket) => {
                let flags = libc::c_long::from(libc::MSG_DONTWAIT);
                libc::syscall(libc::SYS_recvfrom, fd, p, n, flags, null, null)
            }
            (OP_READ, _) => libc::syscall(libc::SYS_read, fd, p, n),
            (OP_SEND, _) => {
                // A destination address (sendto), if the SQE carries one.
                let dest_len = libc::c_long::from(s.file_index & 0xffff);
                let dest = if dest_len == 0 {
                    null
                } else {
                    s.off as libc::c_long
                };
                libc::syscall(libc::SYS_sendto, fd, p, n, dontwait, dest, dest_len)
            }
            (OP_WRITE, Kind::Socket) => {
                let flags = libc::c_long::from(libc::MSG_DONTWAIT);
                libc::syscall(libc::SYS_sendto, fd, p, n, flags, null, null)
            }
            (OP_WRITE, _) => libc::syscall(libc::SYS_write, fd, p, n),
            (OP_RECVMSG, _) => libc::syscall(libc::SYS_recvmsg, fd, p, dontwait),
            (OP_SENDMSG, _) => libc::syscall(libc::SYS_sendmsg, fd, p, dontwait),
            (OP_ACCEPT, _) => libc::syscall(
                libc::SYS_accept4,
                fd,
                p,
                s.off as libc::c_long,
                libc::c_long::from(s.op_flags as i32),
            ),
            _ => return -libc::EINVAL,
        }
    };
    cqe(ret as isize)
}

/// Starts a non-blocking connect: 0, `-EINPROGRESS` (wait until writable,
/// then [`connect_result`]), or the error.
///
/// # Safety
///
/// The module's contract (`addr`/`off` describe a socket address).
pub(crate) unsafe fn connect(s: &RawSqe) -> i32 {
    // SAFETY: the SQE's address and its length (module contract).
    let r = unsafe { libc::connect(s.fd, s.addr as *const libc::sockaddr, s.off as u32) };
    if r < 0 { -errno() } else { 0 }
}

/// The outcome of a connect that reported `EINPROGRESS`, once writable.
pub(crate) fn connect_result(fd: i32) -> i32 {
    match socket_option(fd, libc::SO_ERROR) {
        Ok(err) => -err,
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// `poll(2)` with no wait: the requested events that are ready now.
pub(crate) fn poll_now(fd: i32, events: u32) -> u32 {
    let mut p = libc::pollfd {
        fd,
        events: events as i16,
        revents: 0,
    };
    // SAFETY: `p` is one writable pollfd.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r <= 0 {
        return 0;
    }
    // POLLERR/POLLHUP/POLLNVAL are reported whether asked for or not.
    u32::from(p.revents as u16)
}

/// Ops done at once on the loop's thread: they never wait on the network
/// or a disk (`close` of a socket, `shutdown`).
pub(crate) fn immediate(s: &RawSqe) -> i32 {
    // SAFETY: neither call takes a pointer.
    let r = unsafe {
        match s.opcode {
            OP_CLOSE => libc::close(s.fd),
            OP_SHUTDOWN => libc::shutdown(s.fd, s.len as i32),
            _ => return -libc::EINVAL,
        }
    };
    if r < 0 { -errno() } else { r }
}

/// A file read tried without blocking (`preadv2(RWF_NOWAIT)`: served from
/// the page cache); `-EAGAIN` (or `-EOPNOTSUPP`) sends it to a pool thread.
///
/// # Safety
///
/// The module's contract.
pub(crate) unsafe fn read_nowait(s: &RawSqe) -> i32 {
    let iov = libc::iovec {
        iov_base: s.addr as *mut libc::c_void,
        iov_len: s.len as usize,
    };
    let off = if s.off == u64::MAX { -1 } else { s.off as i64 };
    // SAFETY: `iov` describes the op's buffer (module contract).
    cqe(unsafe { libc::preadv2(s.fd, &iov, 1, off, libc::RWF_NOWAIT) })
}

/// The blocking ops, on a pool thread: file I/O and path operations.
///
/// # Safety
///
/// The module's contract: the pointers stay valid until the result is
/// reported back to the loop, which happens after this returns.
pub(crate) unsafe fn blocking(s: &RawSqe) -> i32 {
    let fd = s.fd;
    let ptr = s.addr as *mut libc::c_void;
    let path = s.addr as *const libc::c_char;
    // SAFETY: (every call below) pointers and lengths from the SQE describe
    // memory the op owns (module contract): buffers, NUL-terminated paths,
    // a statx buffer.
    let ret: isize = unsafe {
        match s.opcode {
            OP_READ if s.off == u64::MAX => libc::read(fd, ptr, s.len as usize),
            OP_READ => libc::pread64(fd, ptr, s.len as usize, s.off as i64),
            OP_WRITE if s.off == u64::MAX => libc::write(fd, ptr, s.len as usize),
            OP_WRITE => libc::pwrite64(fd, ptr, s.len as usize, s.off as i64),
            OP_FSYNC if s.op_flags & 1 != 0 => libc::fdatasync(fd) as isize,
            OP_FSYNC => libc::fsync(fd) as isize,
            OP_FTRUNCATE => libc::ftruncate64(fd, s.off as i64) as isize,
            OP_FALLOCATE => {
                libc::fallocate64(fd, s.len as i32, s.off as i64, s.addr as i64) as isize
            }
            OP_OPENAT => libc::openat(
                fd,
                path,
                s.op_flags as i32 | libc::O_LARGEFILE,
                s.len as libc::c_uint,
            ) as isize,
            OP_STATX => libc::statx(
                fd,
                path,
                s.op_flags as i32,
                s.len,
                s.off as *mut libc::statx,
            ) as isize,
            OP_MKDIRAT => libc::mkdirat(fd, path, s.len as libc::mode_t) as isize,
            OP_UNLINKAT => libc::unlinkat(fd, path, s.op_flags as i32) as isize,
            OP_RENAMEAT => libc::syscall(
                libc::SYS_renameat2,
                fd,
                path,
                s.len as i32,
                s.off as *const libc::c_char,
                s.op_flags,
            ) as isize,
            _ => return -libc::EINVAL,
        }
    };
    cqe(ret)
}
