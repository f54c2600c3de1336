//! The few raw syscalls ringloop makes outside io_uring, fd helpers, and
//! the conversion of durations to the kernel's timespec.
//!
//! Everything here is a thin, documented wrapper over `libc`; nothing above
//! this module calls `libc` for a syscall directly.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub(crate) mod nowait;

/// Creates a non-blocking, close-on-exec eventfd (`eventfd(2)`).
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; a non-negative return is a new fd
    // that nothing else owns.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter, waking whoever reads it.
///
/// `EAGAIN` (counter saturated) is fine: a reader is already due to wake.
pub(crate) fn eventfd_signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: the pointer and length describe `one`, a live 8-byte value;
    // `fd` is a valid eventfd for the duration of the call.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// The longest timeout handed to the kernel: 2^32 s, about 136 years.
/// The kernel turns a relative timeout into an absolute one by adding the
/// current time in nanoseconds of a signed 64-bit count (about 292 years);
/// a timeout well inside that range cannot wrap to a deadline in the past,
/// whatever overflow handling a kernel version has.
const MAX_KERNEL_TIMEOUT: Duration = Duration::from_secs(1 << 32);

/// `d` as the kernel's timespec, saturating at [`MAX_KERNEL_TIMEOUT`]
/// (`io_uring::types::Timespec::from` casts the seconds to `i64`: 2^63 s
/// or more would go negative and time out at once).
pub(crate) fn timespec(d: Duration) -> io_uring::types::Timespec {
    io_uring::types::Timespec::from(d.min(MAX_KERNEL_TIMEOUT))
}

/// Creates a pipe with both ends close-on-exec (`pipe2(2)`); used by tests
/// and by ops that need a kernel object that never becomes ready by itself.
#[cfg(test)]
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as std::os::fd::RawFd; 2];
    // SAFETY: `fds` is a writable array of two c_ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The soft `RLIMIT_MEMLOCK` in bytes, if it can be read (for error messages).
pub(crate) fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0 {
        Some(lim.rlim_cur)
    } else {
        None
    }
}

/// The value of the `kernel.io_uring_disabled` sysctl, when the kernel has it.
pub(crate) fn io_uring_disabled_sysctl() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A number unique to the calling thread for the life of the process, cheap
/// to read (one thread-local load). Used to tell the owning thread of a loop
/// from foreign threads without touching `std::thread::current()`.
pub(crate) fn thread_token() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    thread_local! {
        static TOKEN: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}

/// A socket address in the kernel's layout, boxed by ops so its address is
/// stable while the kernel reads or writes it.
#[derive(Clone, Copy)]
pub(crate) struct RawAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl RawAddr {
    /// An empty address for the kernel to fill (accept, recvfrom).
    pub(crate) fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
            storage: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn from_std(addr: &std::net::SocketAddr) -> RawAddr {
        let mut raw = RawAddr::empty();
        match addr {
            std::net::SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in (that is its purpose).
                unsafe {
                    std::ptr::write(&mut raw.storage as *mut _ as *mut libc::sockaddr_in, sin)
                };
                raw.len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            std::net::SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe {
                    std::ptr::write(&mut raw.storage as *mut _ as *mut libc::sockaddr_in6, sin6)
                };
                raw.len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }

    /// A Unix socket address: a path, or an abstract name when `path`
    /// starts with a NUL byte.
    pub(crate) fn from_unix(path: &[u8]) -> io::Result<RawAddr> {
        let mut sun = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; 108],
        };
        if path.len() >= sun.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unix socket path is {} bytes; at most 107 fit", path.len()),
            ));
        }
        for (d, s) in sun.sun_path.iter_mut().zip(path) {
            *d = *s as libc::c_char;
        }
        let mut raw = RawAddr::empty();
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        unsafe { std::ptr::write(&mut raw.storage as *mut _ as *mut libc::sockaddr_un, sun) };
        let base = std::mem::size_of::<libc::sa_family_t>();
        // Path names include their NUL terminator; abstract names do not.
        let extra = usize::from(path.first() != Some(&0));
        raw.len = (base + path.len() + extra) as libc::socklen_t;
        Ok(raw)
    }

    pub(crate) fn family(&self) -> i32 {
        i32::from(self.storage.ss_family)
    }

    /// The address as an internet address, if it is one.
    pub(crate) fn inet(&self) -> Option<std::net::SocketAddr> {
        match self.family() {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in) };
                Some(std::net::SocketAddr::new(
                    std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()).into(),
                    u16::from_be(sin.sin_port),
                ))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6 = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in6) };
                Some(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                    sin6.sin6_addr.s6_addr.into(),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// The path bytes of a Unix address (leading NUL for abstract names;
    /// empty for an unnamed socket).
    pub(crate) fn unix_path(&self) -> Option<Vec<u8>> {
        if self.family() != libc::AF_UNIX {
            return None;
        }
        // SAFETY: the family says the storage holds a sockaddr_un.
        let sun = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_un) };
        let base = std::mem::size_of::<libc::sa_family_t>();
        let n = (self.len as usize)
            .saturating_sub(base)
            .min(sun.sun_path.len());
        let mut bytes: Vec<u8> = sun.sun_path[..n].iter().map(|&c| c as u8).collect();
        if bytes.first() != Some(&0) {
            // A path: cut at the NUL terminator.
            if let Some(end) = bytes.iter().position(|&b| b == 0) {
                bytes.truncate(end);
            }
        }
        Some(bytes)
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `socket(2)` with `SOCK_CLOEXEC`.
pub(crate) fn socket(domain: i32, ty: i32) -> io::Result<OwnedFd> {
    // SAFETY: no pointers; a non-negative result is a new fd we own.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bind(2)`.
pub(crate) fn bind(fd: &OwnedFd, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `addr.storage` is valid for `addr.len` bytes.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr.storage as *const libc::sockaddr_storage).cast(),
            addr.len,
        )
    })
    .map(drop)
}

/// `listen(2)`.
pub(crate) fn listen(fd: &OwnedFd, backlog: i32) -> io::Result<()> {
    // SAFETY: no pointers.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// `setsockopt(2)` for an `int` option.
pub(crate) fn setsockopt_int(
    fd: &impl AsRawFd,
    level: i32,
    name: i32,
    value: i32,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `getsockopt(2)` for an `int` option.
pub(crate) fn getsockopt_int(fd: &impl AsRawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: the pointers describe `value` and `len`.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// Whether `fd`'s open file description has `O_NONBLOCK` (`fcntl(2)`).
pub(crate) fn nonblocking(fd: &impl AsRawFd) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no pointer.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Sets or clears `O_NONBLOCK` on `fd`'s open file description, with no
/// second syscall when it is already as asked.
pub(crate) fn set_nonblocking(fd: &impl AsRawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    if (flags & libc::O_NONBLOCK != 0) == on {
        return Ok(());
    }
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an int, no pointer.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) }).map(drop)
}

/// `recv(2)` of one byte with `MSG_PEEK | MSG_DONTWAIT`: what the next
/// read would see, without taking it or waiting. `Ok(0)`: end of stream;
/// `Ok(1)`: data; `WouldBlock`: nothing yet; else the socket's pending
/// error (which the kernel then clears, as a read would).
pub(crate) fn peek_byte(fd: &impl AsRawFd) -> io::Result<usize> {
    let mut byte = 0u8;
    // SAFETY: the pointer and length describe `byte`, writable for the
    // call's duration.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `getsockname(2)`.
pub(crate) fn local_addr(fd: &impl AsRawFd) -> io::Result<RawAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: the pointers describe `raw.storage` and `raw.len`.
    cvt(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut raw.storage as *mut libc::sockaddr_storage).cast(),
            &mut raw.len,
        )
    })?;
    Ok(raw)
}

/// `getpeername(2)`.
pub(crate) fn peer_addr(fd: &impl AsRawFd) -> io::Result<RawAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: the pointers describe `raw.storage` and `raw.len`.
    cvt(unsafe {
        libc::getpeername(
            fd.as_raw_fd(),
            (&mut raw.storage as *mut libc::sockaddr_storage).cast(),
            &mut raw.len,
        )
    })?;
    Ok(raw)
}

/// Takes ownership of an fd the kernel returned in a CQE.
pub(crate) fn owned_fd(fd: i32) -> OwnedFd {
    // SAFETY: the kernel just created `fd` for us (accept, open, socket
    // CQEs) and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A `msghdr` with one `iovec` and an address, kept together in one box by
/// `SendMsg`/`RecvMsg` so the pointers between them stay valid.
pub(crate) struct MsgHdr {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: RawAddr,
}

/// A `msghdr` over several buffers and no address (vectored stream I/O).
/// Boxed by its op; the iovec array is a separate heap allocation.
pub(crate) struct IoVecs {
    hdr: libc::msghdr,
    iovs: Vec<libc::iovec>,
}

impl IoVecs {
    /// One iovec per `(ptr, len)`.
    pub(crate) fn new(bufs: impl Iterator<Item = (*mut u8, usize)>) -> IoVecs {
        IoVecs {
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            hdr: unsafe { std::mem::zeroed() },
            iovs: bufs
                .map(|(p, len)| libc::iovec {
                    iov_base: p.cast(),
                    iov_len: len,
                })
                .collect(),
        }
    }

    /// The header, linked to the iovecs (which do not move: heap).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::msghdr {
        self.hdr.msg_iov = self.iovs.as_mut_ptr();
        self.hdr.msg_iovlen = self.iovs.len();
        &mut self.hdr
    }
}

impl MsgHdr {
    pub(crate) fn new(addr: RawAddr) -> MsgHdr {
        MsgHdr {
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            hdr: unsafe { std::mem::zeroed() },
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            addr,
        }
    }

    /// Points the single iovec at `len` bytes at `ptr`.
    pub(crate) fn set_buf(&mut self, ptr: *mut u8, len: usize) {
        self.iov = libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        };
    }

    /// Links the header to its iovec and address (call once boxed: the
    /// pointers are to this value's own fields) and returns it.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::msghdr {
        self.hdr.msg_iov = &mut self.iov;
        self.hdr.msg_iovlen = 1;
        // A receive's kernel fills the address in; a send's reads it.
        self.hdr.msg_name = (&mut self.addr.storage as *mut libc::sockaddr_storage).cast();
        self.hdr.msg_namelen = self.addr.len;
        &mut self.hdr
    }

    /// The address the kernel filled in (receive) or was given (send).
    pub(crate) fn addr(&self) -> RawAddr {
        let mut a = self.addr;
        a.len = self.hdr.msg_namelen;
        a
    }
}

/// `socketpair(2)` with `SOCK_CLOEXEC`.
pub(crate) fn socketpair(domain: i32, ty: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as std::os::fd::RawFd; 2];
    // SAFETY: `fds` is a writable array of two c_ints, as socketpair needs.
    cvt(unsafe { libc::socketpair(domain, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    // SAFETY: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `ftruncate(2)`: sets the length of the file `fd`. A blocking syscall on
/// the loop's thread, used only when the kernel lacks `IORING_OP_FTRUNCATE`
/// (before Linux 6.9): `fallocate` can grow a file but never shrink it.
pub(crate) fn ftruncate(fd: &impl AsRawFd, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("file length {len} is too large"),
        )
    })?;
    // SAFETY: no pointers; `fd` is open for the duration of the call.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// `close(2)`, reporting its error (dropping an `OwnedFd` ignores it). Used
/// only when the kernel lacks `IORING_OP_CLOSE` (before Linux 5.6).
pub(crate) fn close(fd: OwnedFd) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    // SAFETY: `fd` is owned and open; ownership ends here, so nothing else
    // can close or use it after this call, whatever close returns.
    cvt(unsafe { libc::close(fd.into_raw_fd()) }).map(drop)
}

/// `waitid(2)`'s `P_PIDFD` id type (Linux 5.4; not in `libc` yet).
pub(crate) const P_PIDFD: libc::idtype_t = 3;

/// `pidfd_open(2)` (Linux 5.3): an fd (close-on-exec) that refers to
/// process `pid` for as long as it is open, even once `pid` is reused.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad pid {pid}")))?;
    // SAFETY: pidfd_open takes no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return is a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)` (Linux 5.1): sends `sig` to the process behind
/// the pidfd; no pid-reuse race.
pub(crate) fn pidfd_send_signal(pidfd: &impl AsRawFd, sig: i32) -> io::Result<()> {
    // SAFETY: a null `info` is allowed (the kernel fills it as kill(2)
    // does); `pidfd` is open for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reaps the child behind `pidfd` (`waitid(P_PIDFD, WEXITED)`) and returns
/// its `waitpid(2)`-style status. With `block` false (`WNOHANG`) it never
/// sleeps and returns `Ok(None)` while the child runs; with `block` true it
/// sleeps until the child exits (never on a loop thread).
pub(crate) fn waitid_pidfd(pidfd: &impl AsRawFd, block: bool) -> io::Result<Option<i32>> {
    let flags = libc::WEXITED | if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is valid (and si_pid 0
        // is how WNOHANG reports "still running").
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a writable siginfo_t; `pidfd` is open.
        let r = unsafe { libc::waitid(P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, flags) };
        if r == 0 {
            return Ok(wait_status(&info));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The `waitpid(2)`-style status (what `ExitStatusExt::from_raw` takes) of
/// a `siginfo_t` filled by `waitid(2)`; `None` when it names no child
/// (`si_pid` 0: `WNOHANG` and nothing exited yet).
pub(crate) fn wait_status(info: &libc::siginfo_t) -> Option<i32> {
    // SAFETY: waitid fills the SIGCHLD fields (pid, status) of the union,
    // or leaves them zero; both reads are of plain integers.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return None;
    }
    Some(match info.si_code {
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        libc::CLD_STOPPED | libc::CLD_TRAPPED => ((status & 0xff) << 8) | 0x7f,
        libc::CLD_CONTINUED => 0xffff,
        // CLD_EXITED
        _ => (status & 0xff) << 8,
    })
}

/// The CPUs the calling thread may run on (`sched_getaffinity(2)`),
/// ascending.
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("sched_getaffinity: {e}")));
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads the set for an index below its capacity.
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `cpu` (`sched_setaffinity(2)`).
pub(crate) fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if cpu >= max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the {max} CPUs a cpu_set_t can name"),
        ));
    }
    // SAFETY: cpu_set_t is plain data; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` was checked to be below the set's capacity.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
