//! The readiness backend: io_uring's submission/completion contract carried
//! out in user space over epoll, for where io_uring is refused (container
//! seccomp profiles, `kernel.io_uring_disabled`, gVisor, old kernels).
//!
//! The driver above does not change: it pushes the same SQEs its ops build
//! and reaps `(user_data, res, flags)` completions, with the same slab,
//! generations, abandonment and drain on drop. This module plays the
//! kernel's part:
//!
//! - **Sockets, pipes, eventfds, signalfds, pidfds** are tried at once
//!   without blocking (`MSG_DONTWAIT`, or `O_NONBLOCK` on our own pipe
//!   ends); on `EAGAIN` the op waits in its fd's FIFO until epoll reports
//!   the fd ready, then is tried again. Each fd is registered once,
//!   edge-triggered for both directions, and dropped from the epoll set at
//!   its `CLOSE`. Per-fd readiness bits (tokio's scheme) skip the syscall
//!   that would only say `EAGAIN`: a bit clears on `EAGAIN` or on a short
//!   read or write of a byte stream, and sets on the next edge.
//! - **Files and paths** go to a pool thread (the loop's blocking pool),
//!   which makes the blocking syscall on the op's memory and posts the
//!   result back; a file read is first tried with `RWF_NOWAIT`, which the
//!   page cache answers without a thread.
//! - **Timeouts and linked timeouts** are kept in a deadline set here; the
//!   one kernel wait is `epoll_pwait2` (nanoseconds), or `epoll_wait`
//!   rounded up to whole milliseconds where that is refused.
//! - **Cancellation** of an op waiting for readiness completes it with
//!   `-ECANCELED` at once (no syscall was started, so nothing is lost); an
//!   op already on a pool thread answers `-EALREADY`, as io_uring does for
//!   a running op, and its real result still arrives (a read's bytes are
//!   kept by its orphan).
//!
//! Memory: an SQE's pointers are used by a syscall made here (or on a pool
//! thread) before its completion is posted, and the driver keeps the op's
//! memory until that completion is reaped, exactly as with the kernel.

mod sqe;
mod syscall;

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use io_uring::squeue;

use super::bufring::{BufRing, CQE_BUFFER_SHIFT, CQE_F_BUFFER};
use sqe::*;
use syscall::Kind;

/// How the epoll backend hands a blocking syscall to a thread (the loop's
/// blocking pool; set by the runtime, which owns the pool).
pub(crate) type Offload = Box<dyn Fn(Box<dyn FnOnce() + Send>)>;

/// `IORING_CQE_F_MORE`: a multishot op's completion with more to come.
const F_MORE: u32 = 1 << 1;
/// `epoll_event.u64` of the pool's completion eventfd (fds are `i32`).
const DONE_TOKEN: u64 = u64::MAX;
const READ: u8 = 1;
const WRITE: u8 = 2;

/// The opcodes this backend carries out (`Driver::supports`).
pub(crate) fn supports(opcode: u8) -> bool {
    matches!(
        opcode,
        OP_NOP
            | OP_FSYNC
            | OP_POLL_ADD
            | OP_SENDMSG
            | OP_RECVMSG
            | OP_TIMEOUT
            | OP_ACCEPT
            | OP_ASYNC_CANCEL
            | OP_LINK_TIMEOUT
            | OP_CONNECT
            | OP_FALLOCATE
            | OP_OPENAT
            | OP_CLOSE
            | OP_STATX
            | OP_READ
            | OP_WRITE
            | OP_SEND
            | OP_RECV
            | OP_SHUTDOWN
            | OP_RENAMEAT
            | OP_UNLINKAT
            | OP_MKDIRAT
            | OP_FTRUNCATE
    )
}

/// Ops not completed yet, by `user_data` (`generation << 32 | slab
/// index`, made by the driver): a vector indexed by the slab index, which
/// the driver keeps small and dense, holding the whole `user_data` to
/// check; the driver's own ops (their index is near `u32::MAX`) in a short
/// list. No hashing on the path every waiting op takes.
#[derive(Default)]
struct PendingTable {
    slots: Vec<Option<(u64, Pending)>>,
    internal: Vec<(u64, Pending)>,
}

impl PendingTable {
    /// Slab indexes at or above this go to `internal`.
    const DENSE: u64 = 1 << 24;

    fn index(ud: u64) -> Option<usize> {
        let i = ud & 0xffff_ffff;
        (i < Self::DENSE).then_some(i as usize)
    }

    fn insert(&mut self, ud: u64, p: Pending) {
        match Self::index(ud) {
            Some(i) => {
                if i >= self.slots.len() {
                    self.slots.resize_with(i + 1, || None);
                }
                self.slots[i] = Some((ud, p));
            }
            None => {
                self.internal.retain(|(u, _)| *u != ud);
                self.internal.push((ud, p));
            }
        }
    }

    fn get(&self, ud: &u64) -> Option<&Pending> {
        match Self::index(*ud) {
            Some(i) => match self.slots.get(i) {
                Some(Some((u, p))) if u == ud => Some(p),
                _ => None,
            },
            None => self.internal.iter().find(|(u, _)| u == ud).map(|(_, p)| p),
        }
    }

    fn get_mut(&mut self, ud: &u64) -> Option<&mut Pending> {
        match Self::index(*ud) {
            Some(i) => match self.slots.get_mut(i) {
                Some(Some((u, p))) if u == ud => Some(p),
                _ => None,
            },
            None => self
                .internal
                .iter_mut()
                .find(|(u, _)| u == ud)
                .map(|(_, p)| p),
        }
    }

    fn remove(&mut self, ud: &u64) -> Option<Pending> {
        match Self::index(*ud) {
            Some(i) => {
                let slot = self.slots.get_mut(i)?;
                if slot.as_ref().is_some_and(|(u, _)| u == ud) {
                    slot.take().map(|(_, p)| p)
                } else {
                    None
                }
            }
            None => {
                let at = self.internal.iter().position(|(u, _)| u == ud)?;
                Some(self.internal.swap_remove(at).1)
            }
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.internal.is_empty() && self.slots.iter().all(Option::is_none)
    }
}

/// Results posted by pool threads, and the eventfd that wakes the loop.
struct Done {
    list: Mutex<Vec<(u64, i32)>>,
    fd: OwnedFd,
}

/// What the backend knows of one fd.
#[derive(Default)]
struct FdState {
    /// `READ`/`WRITE` bits: may be ready (an attempt may succeed).
    ready: u8,
    /// `READ`/`WRITE` bits that stay: the peer closed (`EPOLLRDHUP`,
    /// `EPOLLHUP`) or the fd has an error. A short read then does not mean
    /// drained: the end of stream (or the error) is still to be read, and
    /// no further edge will announce it (tokio keeps "closed" the same way).
    closed: u8,
    /// In the epoll set.
    registered: bool,
    /// Only polls ever waited on this fd (a pidfd): it leaves the epoll
    /// set, and this state is forgotten, when its last poll ends. Such fds
    /// are closed outside the driver (no `CLOSE` to forget them at), so
    /// state kept past the poll would outlive the fd and mislead whatever
    /// fd gets the number next.
    poll_only: bool,
    kind: Option<Kind>,
    /// A byte stream (a short read or write means drained or full).
    stream: Option<bool>,
    /// `O_NONBLOCK` set (listeners: an accepted connection may be gone by
    /// the time `accept4` runs).
    nonblocking: bool,
    readers: VecDeque<u64>,
    writers: VecDeque<u64>,
    polls: Vec<u64>,
}

impl FdState {
    fn new() -> FdState {
        FdState {
            ready: READ | WRITE,
            ..FdState::default()
        }
    }

    fn queue(&mut self, dir: u8) -> &mut VecDeque<u64> {
        if dir == READ {
            &mut self.readers
        } else {
            &mut self.writers
        }
    }
}

/// An op that has not completed yet.
enum Pending {
    /// Waiting for its fd to become ready; `dir` 0 is a poll.
    Io {
        sqe: RawSqe,
        dir: u8,
        /// Its linked timeout's `user_data`.
        link: Option<u64>,
        /// A connect in progress, and whether the socket was `O_NONBLOCK`
        /// before it (the flag is put back when the connect ends).
        connecting: Option<bool>,
    },
    /// A `TIMEOUT` or `LINK_TIMEOUT` (with the op it limits).
    Timer { at: Instant, link: Option<u64> },
    /// Its syscall runs on a pool thread.
    Offloaded { opcode: u8 },
}

/// The epoll backend's state (one per driver).
pub(crate) struct Epoll {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
    fds: Vec<Option<FdState>>,
    pending: PendingTable,
    timers: BTreeSet<(Instant, u64)>,
    cq: Vec<(u64, i32, u32)>,
    done: Arc<Done>,
    offload: Option<Offload>,
    offloaded: usize,
    /// `epoll_pwait2` works here (else `epoll_wait`, in milliseconds).
    pwait2: bool,
    /// The previous SQE asked for `IOSQE_IO_LINK` (its `user_data`).
    last_linked: Option<u64>,
    /// Waits made (`epoll_pwait2`/`epoll_wait` calls).
    pub(crate) waits: u64,
    /// Provided buffer rings by group id: a receive with
    /// `IOSQE_BUFFER_SELECT` takes a buffer from its group only once data
    /// is there (as the kernel does), so a waiting receive holds none.
    groups: Vec<Option<Rc<BufRing>>>,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointer.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("ringloop: epoll_create1 failed: {e}"),
            ));
        }
        // SAFETY: a new fd that nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
        let done_fd = crate::sys::eventfd()?;
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: DONE_TOKEN,
        };
        // SAFETY: `ev` is a valid epoll_event; both fds are open.
        if unsafe {
            libc::epoll_ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                done_fd.as_raw_fd(),
                &mut ev,
            )
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            epfd,
            events: Vec::with_capacity(256),
            fds: Vec::new(),
            pending: PendingTable::default(),
            timers: BTreeSet::new(),
            cq: Vec::new(),
            done: Arc::new(Done {
                list: Mutex::new(Vec::new()),
                fd: done_fd,
            }),
            offload: None,
            offloaded: 0,
            pwait2: true,
            last_linked: None,
            waits: 0,
            groups: Vec::new(),
        })
    }

    /// `IORING_REGISTER_PBUF_RING`'s part: receives selecting buffers from
    /// group `bgid` take them from `ring`.
    pub(crate) fn register_buf_ring(&mut self, bgid: u16, ring: Rc<BufRing>) {
        let i = usize::from(bgid);
        if i >= self.groups.len() {
            self.groups.resize_with(i + 1, || None);
        }
        self.groups[i] = Some(ring);
    }

    /// `IORING_UNREGISTER_PBUF_RING`'s part.
    pub(crate) fn unregister_buf_ring(&mut self, bgid: u16) {
        if let Some(g) = self.groups.get_mut(usize::from(bgid)) {
            *g = None;
        }
    }

    /// One attempt at a readiness op (see [`syscall::attempt`]); a receive
    /// with `IOSQE_BUFFER_SELECT` first takes the buffer at its group's
    /// head (`-ENOBUFS` when the group is empty or unknown), and keeps it
    /// only if bytes landed in it. Returns the result, the completion's
    /// flags (`IORING_CQE_F_BUFFER` and the buffer id), and the SQE as
    /// carried out (with the buffer's address and length).
    ///
    /// # Safety
    ///
    /// As for [`syscall::attempt`].
    unsafe fn attempt(&mut self, s: &RawSqe, kind: Kind) -> (i32, u32, RawSqe) {
        if !s.buffer_select() {
            // SAFETY: the caller's contract.
            return (unsafe { syscall::attempt(s, kind) }, 0, *s);
        }
        let group = self
            .groups
            .get(usize::from(s.buf_group))
            .and_then(Option::as_ref);
        let Some((ring, pick)) = group.and_then(|g| g.peek().map(|p| (g, p))) else {
            return (-libc::ENOBUFS, 0, *s);
        };
        let mut with_buf = *s;
        with_buf.addr = pick.addr as u64;
        with_buf.len = if s.len == 0 {
            pick.len
        } else {
            s.len.min(pick.len)
        };
        // SAFETY: the buffer at the ring's head is in the ring, owned by
        // the ring's memory (kept alive by `groups`), and nobody else
        // writes it: it leaves the ring (`consume`) only if this fills it.
        let r = unsafe { syscall::attempt(&with_buf, kind) };
        if r > 0 {
            ring.consume();
            let flags = CQE_F_BUFFER | (u32::from(pick.bid) << CQE_BUFFER_SHIFT);
            return (r, flags, with_buf);
        }
        (r, 0, with_buf)
    }

    /// Whether a multishot op goes on after result `r`: an accept while
    /// it gets connections, a receive while it gets bytes (0 is the end of
    /// the stream, which ends it, as does an error).
    fn continues(s: &RawSqe, r: i32) -> bool {
        s.multishot() && (r > 0 || (r == 0 && s.opcode == OP_ACCEPT))
    }

    pub(crate) fn set_offload(&mut self, offload: Offload) {
        self.offload = Some(offload);
    }

    /// Completions ready to be reaped (`take_cq`) without waiting.
    pub(crate) fn has_cqes(&self) -> bool {
        !self.cq.is_empty()
    }

    pub(crate) fn take_cq(&mut self, out: &mut Vec<(u64, i32, u32)>) {
        out.append(&mut self.cq);
    }

    fn post(&mut self, ud: u64, res: i32, flags: u32) {
        self.cq.push((ud, res, flags));
    }

    fn state(&mut self, fd: i32) -> &mut FdState {
        let i = fd as usize;
        if i >= self.fds.len() {
            self.fds.resize_with(i + 1, || None);
        }
        self.fds[i].get_or_insert_with(FdState::new)
    }

    /// Carries out (or starts) one SQE. Completions land in the CQ.
    pub(crate) fn submit(&mut self, entry: squeue::Entry) {
        let s = RawSqe::new(entry);
        if s.opcode == OP_LINK_TIMEOUT {
            self.link_timeout(&s);
            return;
        }
        self.last_linked = None;
        let ud = s.user_data;
        if s.fd < 0 && uses_fd(s.opcode) {
            self.post(ud, -libc::EBADF, 0);
        } else {
            match s.opcode {
                OP_NOP => self.post(ud, 0, 0),
                OP_ASYNC_CANCEL => self.cancel(&s),
                OP_TIMEOUT => {
                    let at = timeout_deadline(&s);
                    self.add_timer(ud, at, None);
                }
                OP_CLOSE => {
                    self.forget(s.fd);
                    let r = syscall::immediate(&s);
                    self.post(ud, r, 0);
                }
                OP_SHUTDOWN => {
                    let r = syscall::immediate(&s);
                    self.post(ud, r, 0);
                }
                OP_POLL_ADD => self.poll_add(s),
                OP_CONNECT => self.connect(s),
                OP_READ | OP_WRITE => {
                    let kind = self.kind(s.fd);
                    if kind == Kind::Blocking {
                        self.file_io(s);
                    } else {
                        self.try_io(s, kind);
                    }
                }
                OP_ACCEPT => {
                    let st = self.state(s.fd);
                    if !st.nonblocking {
                        st.nonblocking = true;
                        syscall::set_nonblocking(s.fd, true);
                    }
                    self.try_io(s, Kind::Socket);
                }
                OP_RECV | OP_SEND | OP_RECVMSG | OP_SENDMSG => self.try_io(s, Kind::Socket),
                OP_OPENAT | OP_STATX | OP_FSYNC | OP_FTRUNCATE | OP_FALLOCATE | OP_MKDIRAT
                | OP_UNLINKAT | OP_RENAMEAT => self.offload(s),
                _ => self.post(ud, -libc::EINVAL, 0),
            }
        }
        if s.linked() {
            self.last_linked = Some(ud);
        }
    }

    /// The fast path of [`Epoll::submit`] for the ops a server makes per
    /// message: carries out a single-shot `RECV`/`SEND`/`RECVMSG`/`SENDMSG`
    /// (or `READ`/`WRITE` on a socket or pipe) right now if its fd may be
    /// ready and no older op waits there, and returns its result, which
    /// then needs no `user_data`, no slot and no completion queue. `None`
    /// (nothing done, except learning that the fd is not ready): the
    /// caller submits it the normal way, and it waits.
    pub(crate) fn try_now(&mut self, entry: &squeue::Entry) -> Option<(i32, u32)> {
        let s = RawSqe::new(entry.clone());
        if s.linked() || s.fd < 0 || s.buffer_select() {
            return None;
        }
        let kind = match s.opcode {
            OP_RECV | OP_SEND | OP_RECVMSG | OP_SENDMSG => Kind::Socket,
            OP_READ | OP_WRITE => match self.kind(s.fd) {
                Kind::Blocking => return None,
                k => k,
            },
            _ => return None,
        };
        let dir = direction(s.opcode);
        let st = self.state(s.fd);
        if st.ready & dir == 0 || !st.queue(dir).is_empty() {
            return None;
        }
        // SAFETY: the op owns the SQE's memory until its completion is
        // handed back (module docs); here that is when this returns.
        let r = unsafe { syscall::attempt(&s, kind) };
        if r == -libc::EAGAIN {
            self.state(s.fd).ready &= !dir;
            return None;
        }
        self.after_io(&s, dir, r);
        Some((r, 0))
    }

    fn kind(&mut self, fd: i32) -> Kind {
        let st = self.state(fd);
        *st.kind.get_or_insert_with(|| syscall::classify(fd))
    }

    /// A regular file or device: the page cache at once, else a thread.
    fn file_io(&mut self, s: RawSqe) {
        if s.opcode == OP_READ {
            // SAFETY: the SQE's buffer is owned by the op until its
            // completion is reaped (module docs).
            let r = unsafe { syscall::read_nowait(&s) };
            if r != -libc::EAGAIN && r != -libc::EOPNOTSUPP {
                self.post(s.user_data, r, 0);
                return;
            }
        }
        self.offload(s);
    }

    /// Hands a blocking syscall to a pool thread.
    fn offload(&mut self, s: RawSqe) {
        let Some(offload) = &self.offload else {
            // No pool (driver tests): block right here.
            // SAFETY: the op's memory outlives this call (module docs).
            let r = unsafe { syscall::blocking(&s) };
            self.post(s.user_data, r, 0);
            return;
        };
        let done = self.done.clone();
        let ud = s.user_data;
        offload(Box::new(move || {
            // SAFETY: the driver keeps the op's memory until this result
            // has been posted and reaped (module docs); the mutex orders
            // this thread's writes before the loop's reads.
            let r = unsafe { syscall::blocking(&s) };
            done.list
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((ud, r));
            crate::sys::eventfd_signal(&done.fd);
        }));
        self.offloaded += 1;
        self.pending
            .insert(ud, Pending::Offloaded { opcode: s.opcode });
    }

    /// Tries a readiness op now (unless the fd is known not ready or older
    /// ops wait on it); otherwise queues it for the fd's next edge.
    fn try_io(&mut self, s: RawSqe, kind: Kind) {
        let dir = direction(s.opcode);
        let st = self.state(s.fd);
        if st.ready & dir != 0 && st.queue(dir).is_empty() {
            loop {
                // SAFETY: the op owns the SQE's memory (module docs).
                let (r, flags, done) = unsafe { self.attempt(&s, kind) };
                if r == -libc::EAGAIN {
                    self.state(s.fd).ready &= !dir;
                    break;
                }
                if s.opcode == OP_ACCEPT {
                    self.born(r);
                }
                self.after_io(&done, dir, r);
                if Self::continues(&s, r) {
                    self.post(s.user_data, r, flags | F_MORE);
                    if self.state(s.fd).ready & dir == 0 {
                        break;
                    }
                    continue;
                }
                self.post(s.user_data, r, flags);
                return;
            }
        }
        self.park(s, dir, None);
    }

    /// A short read or write of a byte stream: the fd is drained (or full)
    /// now, and its next edge says when to try again.
    fn after_io(&mut self, s: &RawSqe, dir: u8, r: i32) {
        let short = r > 0 && (r as u32) < s.len;
        if !short || !matches!(s.opcode, OP_RECV | OP_READ | OP_SEND | OP_WRITE) {
            return;
        }
        let fd = s.fd;
        let st = self.state(fd);
        let stream = match st.kind {
            Some(Kind::Pollable) => true,
            _ => *st
                .stream
                .get_or_insert_with(|| syscall::is_stream_socket(fd)),
        };
        if stream && st.closed & dir == 0 {
            st.ready &= !dir;
        }
    }

    /// Queues `s` on its fd until the next readiness edge.
    fn park(&mut self, s: RawSqe, dir: u8, connecting: Option<bool>) {
        let (fd, ud) = (s.fd, s.user_data);
        let fresh = !self.state(fd).registered;
        if let Err(e) = self.register(fd) {
            if let Some(restore) = connecting {
                syscall::set_nonblocking(fd, restore);
            }
            self.post(ud, -e, 0);
            return;
        }
        let st = self.state(fd);
        if dir == 0 {
            st.poll_only |= fresh;
            st.polls.push(ud);
        } else {
            st.poll_only = false;
            st.queue(dir).push_back(ud);
        }
        self.pending.insert(
            ud,
            Pending::Io {
                sqe: s,
                dir,
                link: None,
                connecting,
            },
        );
    }

    /// Adds `fd` to the epoll set (once), edge-triggered both ways.
    fn register(&mut self, fd: i32) -> Result<(), i32> {
        if self.state(fd).registered {
            return Ok(());
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a valid epoll_event; the kernel checks the fd.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            let e = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            if e != libc::EEXIST {
                return Err(e);
            }
        }
        self.state(fd).registered = true;
        Ok(())
    }

    /// `fd` is being closed: out of the epoll set, its state forgotten (the
    /// number will be reused). Ops still waiting on it (none should: their
    /// handles keep the fd open) are cancelled rather than left hanging.
    fn forget(&mut self, fd: i32) {
        let Some(st) = self.fds.get_mut(fd as usize).and_then(Option::take) else {
            return;
        };
        if st.registered {
            // SAFETY: EPOLL_CTL_DEL ignores the event pointer.
            unsafe {
                libc::epoll_ctl(
                    self.epfd.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    std::ptr::null_mut(),
                )
            };
        }
        let waiting: Vec<u64> = st
            .readers
            .iter()
            .chain(&st.writers)
            .chain(&st.polls)
            .copied()
            .collect();
        for ud in waiting {
            self.cancel_one(ud);
        }
    }

    /// `fd` leaves the driver without a `CLOSE` (see `Driver::forget_fd`).
    pub(crate) fn forget_fd(&mut self, fd: i32) {
        self.forget(fd);
    }

    /// `fd` was just made by an op this backend carried out (an accepted
    /// connection, an opened file): whatever is known of an older fd with
    /// that number is stale (that fd was closed without a `CLOSE` here).
    fn born(&mut self, fd: i32) {
        if let Some(slot) = usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)) {
            *slot = None;
        }
    }

    /// A failed or cancelled connect: the op drops its socket without a
    /// `CLOSE`, so its state goes now, before the number is reused.
    fn dies(&mut self, fd: i32) {
        self.forget(fd);
    }

    fn poll_add(&mut self, s: RawSqe) {
        let ready = syscall::poll_now(s.fd, s.op_flags);
        if ready != 0 {
            if !s.multishot() {
                self.post(s.user_data, ready as i32, 0);
                return;
            }
            self.post(s.user_data, ready as i32, F_MORE);
        }
        self.park(s, 0, None);
    }

    fn connect(&mut self, s: RawSqe) {
        let was = syscall::set_nonblocking(s.fd, true);
        // SAFETY: the op owns the address the SQE points at (module docs).
        let r = unsafe { syscall::connect(&s) };
        if r == -libc::EINPROGRESS {
            // A fresh connect cannot be writable yet: wait for the edge.
            self.state(s.fd).ready &= !WRITE;
            self.park(s, WRITE, Some(was));
        } else {
            if !was {
                syscall::set_nonblocking(s.fd, false);
            }
            self.post(s.user_data, r, 0);
            if r < 0 {
                self.dies(s.fd);
            }
        }
    }

    fn link_timeout(&mut self, s: &RawSqe) {
        let ud = s.user_data;
        let target = self.last_linked.take();
        match target.and_then(|t| self.pending.get_mut(&t).map(|p| (t, p))) {
            Some((t, Pending::Io { link, .. })) => {
                *link = Some(ud);
                let at = timeout_deadline(s);
                self.add_timer(ud, at, Some(t));
            }
            // The op finished (or went to a thread, which cannot be
            // interrupted): the timeout has nothing left to cut short.
            _ => self.post(ud, -libc::ECANCELED, 0),
        }
    }

    fn add_timer(&mut self, ud: u64, at: Instant, link: Option<u64>) {
        self.timers.insert((at, ud));
        self.pending.insert(ud, Pending::Timer { at, link });
    }

    /// `IORING_OP_ASYNC_CANCEL`, by `user_data` or (`IORING_ASYNC_CANCEL_FD`)
    /// every op on an fd.
    fn cancel(&mut self, s: &RawSqe) {
        const CANCEL_FD: u32 = 1 << 1;
        if s.op_flags & CANCEL_FD != 0 {
            let waiting: Vec<u64> = self
                .fds
                .get(s.fd as usize)
                .and_then(Option::as_ref)
                .map(|st| {
                    st.readers
                        .iter()
                        .chain(&st.writers)
                        .chain(&st.polls)
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            let n = waiting.iter().filter(|&&ud| self.cancel_one(ud)).count();
            let res = if n == 0 { -libc::ENOENT } else { n as i32 };
            self.post(s.user_data, res, 0);
            return;
        }
        let res = match self.pending.get(&s.addr) {
            None => -libc::ENOENT,
            Some(Pending::Offloaded { .. }) => -libc::EALREADY,
            Some(_) => {
                self.cancel_one(s.addr);
                0
            }
        };
        self.post(s.user_data, res, 0);
    }

    /// Completes a waiting op with `-ECANCELED`; false if it was not
    /// waiting (done, or on a thread).
    fn cancel_one(&mut self, ud: u64) -> bool {
        match self.pending.remove(&ud) {
            Some(Pending::Io {
                sqe,
                dir,
                link,
                connecting,
            }) => {
                if let Some(st) = self.fds.get_mut(sqe.fd as usize).and_then(Option::as_mut) {
                    if dir == 0 {
                        st.polls.retain(|&u| u != ud);
                    } else {
                        st.queue(dir).retain(|&u| u != ud);
                    }
                }
                if dir == 0 {
                    self.release_poll_only(sqe.fd);
                }
                if let Some(restore) = connecting {
                    syscall::set_nonblocking(sqe.fd, restore);
                }
                self.post(ud, -libc::ECANCELED, 0);
                self.end_link(link);
                if connecting.is_some() {
                    self.dies(sqe.fd);
                }
                true
            }
            Some(Pending::Timer { at, .. }) => {
                self.timers.remove(&(at, ud));
                self.post(ud, -libc::ECANCELED, 0);
                true
            }
            Some(p @ Pending::Offloaded { .. }) => {
                self.pending.insert(ud, p);
                false
            }
            None => false,
        }
    }

    /// The op a linked timeout limited finished first: the timeout ends
    /// with `-ECANCELED`, as in io_uring.
    fn end_link(&mut self, link: Option<u64>) {
        if let Some(t) = link
            && let Some(Pending::Timer { at, .. }) = self.pending.remove(&t)
        {
            self.timers.remove(&(at, t));
            self.post(t, -libc::ECANCELED, 0);
        }
    }

    /// Waits for readiness (at most `timeout`, `None`: no limit) and
    /// carries out whatever became possible; completions land in the CQ.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let now = Instant::now();
        let mut timeout = if self.cq.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        if let Some(&(at, _)) = self.timers.first() {
            let d = at.saturating_duration_since(now);
            timeout = Some(timeout.map_or(d, |t| t.min(d)));
        }
        self.waits += 1;
        let n = self.epoll_wait(timeout)?;
        for i in 0..n {
            let ev = self.events[i];
            let (token, bits) = (ev.u64, ev.events);
            if token == DONE_TOKEN {
                self.collect_done();
            } else {
                self.on_event(token as i32, bits);
            }
        }
        if !self.timers.is_empty() {
            self.expire(Instant::now());
        }
        Ok(())
    }

    fn epoll_wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let cap = self.events.capacity();
        let ptr = self.events.as_mut_ptr();
        let epfd = self.epfd.as_raw_fd();
        let mut n = -1;
        if self.pwait2 {
            let ts = timeout.map(|d| {
                // Capped as `sys::timespec` caps the ring's waits.
                let d = d.min(Duration::from_secs(1 << 32));
                libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
                }
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `ptr` has room for `cap` events; `tsp` is null or a
            // live timespec; no signal mask is passed.
            n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    ptr,
                    cap as libc::c_int,
                    tsp,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            } as i32;
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::ENOSYS | libc::EPERM) => self.pwait2 = false,
                    Some(libc::EINTR) => return Ok(0),
                    _ => return Err(wait_error(e)),
                }
            }
        }
        if !self.pwait2 {
            // Whole milliseconds, rounded up: never wake before a deadline.
            let ms = timeout.map_or(-1, |d| {
                let ms = d.as_nanos().div_ceil(1_000_000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            });
            // SAFETY: `ptr` has room for `cap` events.
            n = unsafe { libc::epoll_wait(epfd, ptr, cap as libc::c_int, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    return Ok(0);
                }
                return Err(wait_error(e));
            }
        }
        let n = n as usize;
        // SAFETY: the kernel initialised the first `n` events.
        unsafe { self.events.set_len(n) };
        Ok(n)
    }

    fn collect_done(&mut self) {
        let list = std::mem::take(&mut *self.done.list.lock().unwrap_or_else(|e| e.into_inner()));
        for (ud, r) in list {
            if let Some(Pending::Offloaded { opcode: OP_OPENAT }) = self.pending.remove(&ud) {
                self.born(r);
            }
            self.offloaded -= 1;
            self.post(ud, r, 0);
        }
    }

    fn on_event(&mut self, fd: i32, bits: u32) {
        let Some(st) = self.fds.get_mut(fd as usize).and_then(Option::as_mut) else {
            return;
        };
        let err = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        if bits & (libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32 | err) != 0 {
            st.ready |= READ;
        }
        if bits & (libc::EPOLLRDHUP as u32 | err) != 0 {
            st.closed |= READ;
        }
        if bits & (libc::EPOLLOUT as u32 | err) != 0 {
            st.ready |= WRITE;
        }
        if bits & err != 0 {
            st.closed |= WRITE;
        }
        if !st.polls.is_empty() {
            self.fire_polls(fd, bits);
        }
        self.drive(fd, READ);
        self.drive(fd, WRITE);
    }

    /// Polls on `fd` whose events are in `bits` complete (single-shot) or
    /// post a completion and stay (multishot): once per edge.
    fn fire_polls(&mut self, fd: i32, bits: u32) {
        let polls = std::mem::take(&mut self.state(fd).polls);
        let mut keep = Vec::with_capacity(polls.len());
        for ud in polls {
            let Some(Pending::Io { sqe, .. }) = self.pending.get(&ud) else {
                continue;
            };
            let always = (libc::POLLERR | libc::POLLHUP) as u32;
            let revents = bits & (sqe.op_flags | always) & 0xffff;
            if revents == 0 {
                keep.push(ud);
            } else if sqe.multishot() {
                self.post(ud, revents as i32, F_MORE);
                keep.push(ud);
            } else {
                self.pending.remove(&ud);
                self.post(ud, revents as i32, 0);
            }
        }
        let st = self.state(fd);
        keep.append(&mut st.polls);
        st.polls = keep;
        self.release_poll_only(fd);
    }

    /// An fd only polls waited on, with no poll left: out of the set, and
    /// forgotten (see `FdState::poll_only`).
    fn release_poll_only(&mut self, fd: i32) {
        let idle = self
            .fds
            .get(fd as usize)
            .and_then(Option::as_ref)
            .is_some_and(|st| st.poll_only && st.polls.is_empty());
        if idle {
            self.forget(fd);
        }
    }

    /// Retries the ops waiting on `fd` in one direction, in order, while
    /// the fd stays ready.
    fn drive(&mut self, fd: i32, dir: u8) {
        loop {
            let st = self.state(fd);
            if st.ready & dir == 0 {
                return;
            }
            let kind = st.kind.unwrap_or(Kind::Socket);
            let Some(&ud) = st.queue(dir).front() else {
                return;
            };
            let Some(Pending::Io {
                sqe, connecting, ..
            }) = self.pending.get(&ud)
            else {
                self.state(fd).queue(dir).pop_front();
                continue;
            };
            let (s, connecting) = (*sqe, *connecting);
            let (r, flags, done) = match connecting {
                Some(_) => (syscall::connect_result(fd), 0, s),
                // SAFETY: the op owns the SQE's memory (module docs).
                None => unsafe { self.attempt(&s, kind) },
            };
            if r == -libc::EAGAIN {
                self.state(fd).ready &= !dir;
                return;
            }
            if s.opcode == OP_ACCEPT {
                self.born(r);
            }
            if Self::continues(&s, r) {
                self.after_io(&done, dir, r);
                self.post(ud, r, flags | F_MORE);
                continue;
            }
            self.state(fd).queue(dir).pop_front();
            let Some(Pending::Io { link, .. }) = self.pending.remove(&ud) else {
                unreachable!("checked above")
            };
            if let Some(restore) = connecting
                && !restore
            {
                syscall::set_nonblocking(fd, false);
            }
            self.after_io(&done, dir, r);
            self.post(ud, r, flags);
            self.end_link(link);
            if connecting.is_some() && r < 0 {
                self.dies(fd);
            }
        }
    }

    /// Timeouts due by `now`: a `TIMEOUT` ends with `-ETIME`; a linked one
    /// cancels its op (`-ECANCELED`) and ends with `-ETIME`.
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, ud)) = self.timers.first() {
            if at > now {
                return;
            }
            self.timers.pop_first();
            if let Some(Pending::Timer { link, .. }) = self.pending.remove(&ud) {
                if let Some(op) = link {
                    // The op's own entry names this timer; cancelling it
                    // must not end the timer a second time.
                    if let Some(Pending::Io { link, .. }) = self.pending.get_mut(&op) {
                        *link = None;
                    }
                    self.cancel_one(op);
                }
                self.post(ud, -libc::ETIME, 0);
            }
        }
    }
}

fn wait_error(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("ringloop: epoll_wait failed: {e}"))
}

/// Which readiness an op waits for.
fn direction(opcode: u8) -> u8 {
    match opcode {
        OP_WRITE | OP_SEND | OP_SENDMSG | OP_CONNECT => WRITE,
        _ => READ,
    }
}

/// Whether the opcode's `fd` field is an fd (path ops may pass `AT_FDCWD`).
fn uses_fd(opcode: u8) -> bool {
    matches!(
        opcode,
        OP_READ
            | OP_WRITE
            | OP_RECV
            | OP_SEND
            | OP_RECVMSG
            | OP_SENDMSG
            | OP_ACCEPT
            | OP_CONNECT
            | OP_SHUTDOWN
            | OP_CLOSE
            | OP_POLL_ADD
            | OP_FSYNC
            | OP_FTRUNCATE
            | OP_FALLOCATE
    )
}

/// When a `TIMEOUT`/`LINK_TIMEOUT` SQE's timespec says it expires.
fn timeout_deadline(s: &RawSqe) -> Instant {
    const ABS: u32 = 1;
    // SAFETY: a timeout SQE's `addr` points at the op's `Timespec` (a
    // `struct __kernel_timespec`), owned by the op until its completion.
    let ts = unsafe { *(s.addr as *const libc::timespec) };
    let d = Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    );
    if s.op_flags & ABS != 0 {
        // Absolute CLOCK_MONOTONIC: measure from the clock's now.
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        return Instant::now() + d.saturating_sub(now);
    }
    Instant::now().checked_add(d).unwrap_or_else(far_future)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(1 << 32)
}

#[cfg(test)]
mod tests;
