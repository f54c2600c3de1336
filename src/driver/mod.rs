//! The io_uring proactor: one ring, a slab of in-flight ops, submit and reap.
//!
//! # Invariants
//!
//! 1. **Ownership.** Every SQE pushed into the submission queue points only at
//!    memory owned by its op's slot (the op future while it lives, then
//!    [`Lifecycle::Abandoned`]) or by the driver itself (the wake-up buffer).
//!    That memory is freed only after the SQE's CQE has been reaped, whatever
//!    `io_uring_enter` returned in between. If the ring must be torn down with
//!    ops still in the kernel (they refused to finish within
//!    [`SHUTDOWN_GRACE`]), the ring *and* those resources are leaked, never
//!    freed: a leak is safe, a use-after-free is not.
//! 2. **No lost completion, no starvation.** Ops in the kernel are not
//!    limited by the CQ's size: ops that wait indefinitely (a read on an idle
//!    connection, an accept) must never keep out the ops that would end the
//!    wait (a write feeding that read): a cap of any size would deadlock
//!    once that many idle ops are in flight (found by the small-ring stress
//!    test; tests/regressions.rs). CQEs beyond the CQ's size are held by the
//!    kernel (IORING_FEAT_NODROP, required at set-up) and flushed into the
//!    CQ when the overflow flag is seen. Only if the kernel cannot allocate
//!    that overflow entry is a CQE dropped; it then fails `io_uring_enter`
//!    with `EBADR`, which the loop reports as an error (and
//!    [`crate::runtime::RingStats::cq_overflow`] counts) instead of hanging.
//!    `backlog` holds SQEs only while the SQ is full and cannot be flushed.
//! 3. **Generations.** `user_data` is `generation << 32 | slab index`; a CQE
//!    whose generation does not match its slot is stale and ignored, so a late
//!    or duplicate CQE can never complete the wrong op. Generation
//!    `u32::MAX` is never handed out: it marks the driver's own SQEs.
//! 4. **One enter per turn.** [`Driver::turn`] makes at most one
//!    `io_uring_enter` in the common case, and none at all when nothing was
//!    queued, no task work is pending and the caller does not want to wait.

mod backend;
pub(crate) mod bufring;
mod epoll;
mod fork;
pub use backend::Backend;
pub(crate) use epoll::Offload;
pub(crate) use fork::generation_for_new_ring as fork_generation;
mod lifecycle;
mod stats;
pub use stats::RingStats;
pub(crate) mod op;
mod setup;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, squeue, types};
use slab::Slab;

pub(crate) use lifecycle::{Completion, Garbage, Lifecycle, Orphan};
pub(crate) use setup::RingConfig;

/// The kernel interface behind the driver: a real ring, or epoll playing
/// the ring's part (`epoll/mod.rs`): the same SQEs in, the same
/// completions out.
#[expect(
    clippy::large_enum_variant,
    reason = "one per loop, made once: the probe's size does not matter"
)]
enum Kernel {
    Uring {
        ring: IoUring,
        config: setup::Applied,
    },
    Epoll(epoll::Epoll),
}

/// `user_data` of the driver's own `AsyncCancel` SQEs (their CQEs are ignored).
const CANCEL_UD: u64 = u64::MAX;
/// `user_data` of the driver's read on the loop's wake-up eventfd.
const WAKE_UD: u64 = u64::MAX - 1;
/// [`Slot::bgid`] of an op that selects no provided buffer.
pub(crate) const NO_GROUP: u16 = u16::MAX;
/// How long dropping a driver waits for cancelled ops before leaking them.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Identifies an in-flight op: its slab index and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpKey {
    index: u32,
    /// Never 0 (nor `u32::MAX`, which the driver's own `user_data` use): an
    /// `Option<OpKey>`, in every op future, is 8 bytes.
    generation: std::num::NonZeroU32,
}

impl OpKey {
    fn user_data(self) -> u64 {
        (u64::from(self.generation.get()) << 32) | u64::from(self.index)
    }
}

struct Slot {
    generation: u32,
    /// The buffer group the op selects from (`IOSQE_BUFFER_SELECT`), or
    /// [`NO_GROUP`]: a completion naming a buffer counts it out of that
    /// group's ring as it is reaped (`bufring.rs`).
    bgid: u16,
    /// The SQE has been pushed into the submission queue (the kernel may see it).
    pushed: bool,
    life: Lifecycle,
}

/// What [`Driver::turn`] may do when nothing completes at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Submit and reap without blocking.
    No,
    /// Block until a completion arrives or the duration passes.
    For(Duration),
    /// Block until a completion arrives.
    Forever,
}

/// An SQE waiting for room, or two linked SQEs that must be pushed together.
enum Queued {
    One(squeue::Entry),
    /// `IOSQE_IO_LINK`ed pair: an op and its `LinkTimeout`.
    Linked(squeue::Entry, squeue::Entry),
}

/// The loop's wake-up eventfd, watched through the ring.
///
/// Preferably by one multishot `POLL_ADD` (Linux 5.13+) that stays armed:
/// each write to the eventfd posts one CQE (the poll is edge-triggered) and
/// nothing is re-submitted or read back; the counter is never reset, and at
/// one write per parked wake-up it cannot reach its 2^64 - 2 limit. A
/// kernel that refuses the multishot poll gets a `READ` of the counter
/// instead, re-armed after each wake-up.
struct WakeRead {
    fd: Arc<OwnedFd>,
    /// The SQE is in the kernel (until a CQE without `IORING_CQE_F_MORE`).
    armed: bool,
    mode: WakeMode,
}

enum WakeMode {
    MultishotPoll,
    /// Written by the kernel while the read is in flight; boxed so its
    /// address is stable, and owned here until the read's CQE.
    Read(Box<u64>),
}

/// The completion driver: ops go to io_uring, or to the epoll backend that
/// carries out the same SQEs (`epoll/`). One per event loop; `!Send`.
pub(crate) struct Driver {
    ops: Slab<Slot>,
    /// SQEs not yet pushed because the SQ was full.
    backlog: VecDeque<Queued>,
    /// Op SQEs pushed whose CQE has not been reaped (invariant 2).
    ops_in_kernel: usize,
    /// The driver's own SQEs (cancel, wake-up) pushed and not yet reaped.
    internal_in_kernel: usize,
    next_generation: std::num::NonZeroU32,
    wake: Option<WakeRead>,
    woken: bool,
    shutting_down: bool,
    /// Wakers of ops completed in the last turn, woken by the caller once it
    /// has released its borrow of the driver.
    ready_wakers: Vec<Waker>,
    /// Resources of abandoned ops whose CQE arrived, completed by the caller
    /// outside its borrow of the driver (a buffer's `Drop` may run user code).
    garbage: Vec<Garbage>,
    /// Statistics, for tests and debugging.
    stats: Stats,
    /// Scratch space for one reap's CQEs.
    cqes: Vec<(u64, i32, u32)>,
    /// The fork generation the ring was made in: another one means this
    /// driver was inherited across `fork()` and must stay inert (`fork.rs`).
    born: u64,
    /// Tests: act as if the SQ were full, so new ops wait in the backlog.
    #[cfg(test)]
    pub(super) test_hold_sq: bool,
    /// Why `Auto` fell back to epoll (the io_uring setup error), if it did.
    fallback: Option<String>,
    /// Registered buffer rings by group id (`bufring.rs`, invariant 2:
    /// their memory lives while the kernel may pick from them).
    buf_rings: Vec<Option<std::rc::Rc<bufring::BufRing>>>,
    /// The loop's default buffer group (made by the net layer on first
    /// use; opaque here).
    default_group: Option<std::rc::Rc<dyn std::any::Any>>,
    /// Unmapped in `Drop for Driver` only once every op has been reaped, and
    /// leaked instead if some never complete (invariant 1).
    kernel: ManuallyDrop<Kernel>,
}

/// Counters kept by the driver.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    pub(crate) enters: u64,
    pub(crate) stale_cqes: u64,
    pub(crate) overflow_flushes: u64,
}

impl Driver {
    /// Creates the ring; see [`RingConfig`] for the flags tried, and
    /// [`Backend`] for how the backend is chosen.
    pub(crate) fn new(cfg: &RingConfig) -> io::Result<Driver> {
        let born = fork::generation_for_new_ring();
        setup::validate(cfg)?;
        let (kernel, fallback) = match backend::Choice::resolve(cfg.backend)? {
            backend::Choice::Force(Backend::Epoll) => (Kernel::Epoll(epoll::Epoll::new()?), None),
            backend::Choice::Force(Backend::IoUring) => {
                let (ring, config) = setup::build(cfg).map_err(|r| r.error)?;
                (Kernel::Uring { ring, config }, None)
            }
            backend::Choice::Auto => match setup::build(cfg) {
                Ok((ring, config)) => (Kernel::Uring { ring, config }, None),
                Err(r) if r.unavailable => (
                    Kernel::Epoll(epoll::Epoll::new()?),
                    Some(r.error.to_string()),
                ),
                Err(r) => return Err(r.error),
            },
        };
        setup::trace_chosen(&kernel, cfg, fallback.as_deref());
        Ok(Driver {
            ops: Slab::with_capacity(64),
            backlog: VecDeque::new(),
            ops_in_kernel: 0,
            internal_in_kernel: 0,
            next_generation: std::num::NonZeroU32::MIN,
            wake: None,
            woken: false,
            shutting_down: false,
            ready_wakers: Vec::new(),
            garbage: Vec::new(),
            stats: Stats::default(),
            cqes: Vec::new(),
            born,
            #[cfg(test)]
            test_hold_sq: false,
            fallback,
            buf_rings: Vec::new(),
            default_group: None,
            kernel: ManuallyDrop::new(kernel),
        })
    }

    /// The backend this driver runs on.
    pub(crate) fn backend(&self) -> Backend {
        match &*self.kernel {
            Kernel::Uring { .. } => Backend::IoUring,
            Kernel::Epoll(_) => Backend::Epoll,
        }
    }

    /// Why the loop runs on epoll although io_uring was not ruled out by
    /// the caller: io_uring's setup error. `None` otherwise.
    pub(crate) fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// `fd` leaves the driver without a `CLOSE` through it (handed to the
    /// caller by `into_std`/`into_raw_fd`, or closed by plain `close(2)`):
    /// the epoll backend drops it from its epoll set and forgets what it
    /// knew, so the next fd with that number starts clean. No op may still
    /// use `fd`. Nothing to do on io_uring.
    pub(crate) fn forget_fd(&mut self, fd: std::os::fd::RawFd) {
        if let Kernel::Epoll(e) = &mut *self.kernel {
            e.forget_fd(fd);
        }
    }

    /// Gives the epoll backend its way to run blocking syscalls (files,
    /// paths) on a thread; without it they block the loop. The io_uring
    /// backend does not need one.
    pub(crate) fn set_offload(&mut self, offload: Offload) {
        if let Kernel::Epoll(e) = &mut *self.kernel {
            e.set_offload(offload);
        }
    }

    /// Whether this process is a `fork()` child of the one that made the
    /// ring: then nothing may touch the ring (`fork.rs`).
    #[inline]
    fn inherited(&self) -> bool {
        fork::current() != self.born
    }

    /// The flags the ring was actually set up with (`"epoll"` on epoll).
    pub(crate) fn flags_description(&self) -> String {
        match &*self.kernel {
            Kernel::Uring { config, .. } => config.describe(),
            Kernel::Epoll(_) => "epoll".to_owned(),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    /// The public counters ([`RingStats`]).
    pub(crate) fn ring_stats(&mut self) -> RingStats {
        let inherited = self.inherited();
        let (cq_overflow, sq_entries, cq_entries) = match &mut *self.kernel {
            // An inherited ring's CQ is not mapped here (`fork.rs`).
            Kernel::Uring { ring, .. } => (
                if inherited {
                    0
                } else {
                    ring.completion().overflow()
                },
                ring.params().sq_entries(),
                ring.params().cq_entries(),
            ),
            Kernel::Epoll(_) => (0, 0, 0),
        };
        RingStats {
            backend: self.backend(),
            enters: self.stats.enters,
            overflow_flushes: self.stats.overflow_flushes,
            stale_cqes: self.stats.stale_cqes,
            cq_overflow,
            ops_in_flight: self.ops.len(),
            sq_entries,
            cq_entries,
        }
    }

    /// Starts reading `fd` (an eventfd) through the ring; a write to it makes
    /// [`Driver::take_woken`] return true and ends any wait in [`Driver::turn`].
    pub(crate) fn enable_wake(&mut self, fd: Arc<OwnedFd>) {
        // Replacing an armed read would free its buffer under the kernel.
        if self.wake.is_some() {
            debug_assert!(false, "enable_wake called twice");
            return;
        }
        self.wake = Some(WakeRead {
            fd,
            armed: false,
            mode: WakeMode::MultishotPoll,
        });
        self.arm_wake();
    }

    /// Whether the wake-up eventfd fired since the last call.
    pub(crate) fn take_woken(&mut self) -> bool {
        std::mem::take(&mut self.woken)
    }

    fn arm_wake(&mut self) {
        let Some(w) = self.wake.as_mut() else { return };
        if w.armed || self.shutting_down {
            return;
        }
        w.armed = true;
        let fd = types::Fd(w.fd.as_raw_fd());
        let sqe = match &mut w.mode {
            WakeMode::MultishotPoll => opcode::PollAdd::new(fd, libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(WAKE_UD),
            WakeMode::Read(buf) => {
                let ptr: *mut u64 = &mut **buf;
                opcode::Read::new(fd, ptr.cast(), 8)
                    .build()
                    .user_data(WAKE_UD)
            }
        };
        self.push(sqe);
    }

    /// Pushes an SQE into the SQ, or into the backlog when the SQ has no room
    /// even after flushing it to the kernel.
    ///
    /// Ops keep FIFO order among themselves. The driver's own SQEs jump the
    /// queue: a cancel only ever targets an op already pushed (one still in
    /// the backlog is freed without a cancel), and must not wait behind ops
    /// it is needed to free.
    fn push(&mut self, sqe: squeue::Entry) {
        let ud = sqe.get_user_data();
        if ud == CANCEL_UD || ud == WAKE_UD {
            if !self.try_push_one(&sqe) {
                self.backlog.push_front(Queued::One(sqe));
            }
        } else if !self.backlog.is_empty() || !self.try_push_one(&sqe) {
            self.backlog.push_back(Queued::One(sqe));
        }
    }

    fn is_internal(ud: u64) -> bool {
        ud == CANCEL_UD || ud == WAKE_UD
    }

    /// Room for `n` more SQEs in the SQ, flushing it to the kernel if needed.
    fn sq_room(&mut self, n: usize) -> bool {
        if self.inherited() {
            // Never into the parent's ring: SQEs wait in the backlog forever.
            return false;
        }
        #[cfg(test)]
        if self.test_hold_sq {
            return false;
        }
        let free = |kernel: &mut Kernel| match kernel {
            Kernel::Uring { ring, .. } => {
                let sq = ring.submission();
                sq.capacity() - sq.len()
            }
            // SQEs are carried out as they are pushed: never full.
            Kernel::Epoll(_) => usize::MAX,
        };
        free(&mut self.kernel) >= n || (self.flush_sq().is_ok() && free(&mut self.kernel) >= n)
    }

    /// Tries to push one SQE; false if the SQ is full even after flushing it
    /// to the kernel.
    fn try_push_one(&mut self, sqe: &squeue::Entry) -> bool {
        let ud = sqe.get_user_data();
        let internal = Self::is_internal(ud);
        if !internal && self.slot_mut(ud).is_none() {
            // The op was dropped before its SQE reached the ring.
            return true;
        }
        if !self.sq_room(1) {
            return false;
        }
        self.push_sq(sqe);
        if internal {
            self.internal_in_kernel += 1;
        } else {
            self.mark_pushed(ud);
            self.ops_in_kernel += 1;
        }
        self.reap_epoll();
        true
    }

    /// Tries to push a linked pair (both ops) into the SQ back to back.
    fn try_push_linked(&mut self, first: &squeue::Entry, second: &squeue::Entry) -> bool {
        let (ud1, ud2) = (first.get_user_data(), second.get_user_data());
        if self.slot_mut(ud1).is_none() {
            // The op was dropped before submission: its link goes with it.
            self.forget_unpushed(ud2);
            return true;
        }
        if !self.sq_room(2) {
            return false;
        }
        self.push_sq(first);
        self.push_sq(second);
        self.mark_pushed(ud1);
        self.mark_pushed(ud2);
        self.ops_in_kernel += 2;
        self.reap_epoll();
        true
    }

    /// Frees the slot of a detached op whose SQE will never be pushed.
    fn forget_unpushed(&mut self, ud: u64) {
        if self.slot_mut(ud).is_some() {
            self.ops.remove((ud & 0xffff_ffff) as usize);
        }
    }

    /// SQEs of any kind pushed and not yet reaped.
    fn in_kernel(&self) -> usize {
        self.ops_in_kernel + self.internal_in_kernel
    }

    /// Pushes into the SQ; the caller checked there is room.
    fn push_sq(&mut self, sqe: &squeue::Entry) {
        match &mut *self.kernel {
            Kernel::Uring { ring, .. } => {
                // SAFETY: by `submit`'s contract (and for the driver's own
                // SQEs, by `WakeMode::Read`'s box, owned by the driver until
                // the read's CQE, and `PollAdd` and `AsyncCancel` carrying no
                // pointer) every pointer in `sqe` stays valid until its CQE
                // is reaped (invariant 1).
                let pushed = unsafe { ring.submission().push(sqe).is_ok() };
                debug_assert!(pushed, "push_sq without room");
            }
            // Carried out now; its completion waits in the backend's CQ
            // until `reap_epoll` (after the caller's bookkeeping).
            Kernel::Epoll(e) => e.submit(sqe.clone()),
        }
    }

    /// Applies the completions the epoll backend produced while SQEs were
    /// pushed (an op done at once: its first poll is then `Ready`, with no
    /// turn in between). Called once the push's bookkeeping is done.
    fn reap_epoll(&mut self) {
        let Kernel::Epoll(e) = &mut *self.kernel else {
            return;
        };
        if !e.has_cqes() {
            return;
        }
        let mut batch = std::mem::take(&mut self.cqes);
        e.take_cq(&mut batch);
        for &(ud, result, flags) in &batch {
            self.complete(ud, result, flags);
        }
        batch.clear();
        self.cqes = batch;
    }

    fn mark_pushed(&mut self, ud: u64) {
        if let Some(slot) = self.slot_mut(ud) {
            slot.pushed = true;
        }
    }

    fn slot_mut(&mut self, ud: u64) -> Option<&mut Slot> {
        let (index, generation) = ((ud & 0xffff_ffff) as usize, (ud >> 32) as u32);
        self.ops
            .get_mut(index)
            .filter(|slot| slot.generation == generation)
    }

    /// Hands the SQ's contents to the kernel without waiting (used when the
    /// SQ is full). Completions are reaped by the next `turn`.
    fn flush_sq(&mut self) -> io::Result<()> {
        match &mut *self.kernel {
            Kernel::Uring { ring, .. } => {
                self.stats.enters += 1;
                ring.submit().map(drop)
            }
            Kernel::Epoll(_) => Ok(()),
        }
    }

    /// Moves backlog entries into the SQ while there is room.
    fn flush_backlog(&mut self) {
        while let Some(q) = self.backlog.pop_front() {
            let pushed = match &q {
                Queued::One(sqe) => self.try_push_one(sqe),
                Queued::Linked(a, b) => self.try_push_linked(a, b),
            };
            if !pushed {
                self.backlog.push_front(q);
                break;
            }
        }
    }

    /// One turn: push the backlog, make (at most) one `io_uring_enter` that
    /// submits everything and waits as `wait` says, then reap every CQE.
    ///
    /// Wakers of completed ops are collected in `ready_wakers`, freed
    /// resources in `garbage`; the caller takes them with
    /// [`Driver::take_ready`] after releasing its borrow.
    pub(crate) fn turn(&mut self, wait: Wait) -> io::Result<()> {
        if self.inherited() {
            return Err(fork::inherited_error());
        }
        self.flush_backlog();
        // Completions applied outside a turn (the epoll backend completes
        // ops as they are pushed, a cancel among them) are the caller's to
        // collect first: waiting now could sleep on work already done.
        let wait = if self.has_ready() { Wait::No } else { wait };
        let ring = match &mut *self.kernel {
            Kernel::Uring { ring, .. } => ring,
            Kernel::Epoll(e) => {
                let timeout = match wait {
                    Wait::No => Some(Duration::ZERO),
                    Wait::For(d) => Some(d),
                    Wait::Forever => None,
                };
                e.wait(timeout)?;
                self.stats.enters = e.waits;
                self.reap_epoll();
                return Ok(());
            }
        };
        let wait = if ring.completion().is_empty() {
            wait
        } else {
            Wait::No
        };
        let res = match wait {
            Wait::No => {
                let mut sq = ring.submission();
                sq.sync();
                let needed = !sq.is_empty() || sq.taskrun() || sq.cq_overflow();
                if sq.cq_overflow() {
                    self.stats.overflow_flushes += 1;
                }
                drop(sq);
                if needed {
                    self.stats.enters += 1;
                    ring.submit().map(drop)
                } else {
                    Ok(())
                }
            }
            Wait::For(d) => {
                self.stats.enters += 1;
                let ts = crate::sys::timespec(d);
                let args = types::SubmitArgs::new().timespec(&ts);
                ring.submitter().submit_with_args(1, &args).map(drop)
            }
            Wait::Forever => {
                self.stats.enters += 1;
                ring.submit_and_wait(1).map(drop)
            }
        };
        match res {
            Ok(()) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBADR) => {
                return Err(io::Error::other(
                    "io_uring_enter failed with EBADR: the kernel dropped completions (it could \
                     not allocate room for CQEs beyond the completion queue, so the system is \
                     out of memory); ops whose completion was lost would never finish. A larger \
                     Builder::cq_entries makes overflow rarer",
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("io_uring_enter failed: {e}"),
                ));
            }
        }
        self.reap();
        Ok(())
    }

    /// Whether the last turn completed ops (wakers or orphans to collect).
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready_wakers.is_empty() || !self.garbage.is_empty()
    }

    /// Takes the wakers of completed ops and the resources to free.
    pub(crate) fn take_ready(&mut self, wakers: &mut Vec<Waker>, garbage: &mut Vec<Garbage>) {
        wakers.append(&mut self.ready_wakers);
        garbage.append(&mut self.garbage);
    }

    fn reap(&mut self) {
        // The CQ borrows the ring, `complete` the slab: collect, then dispatch.
        let Kernel::Uring { ring, .. } = &mut *self.kernel else {
            return self.reap_epoll();
        };
        let mut batch = std::mem::take(&mut self.cqes);
        let mut cq = ring.completion();
        cq.sync();
        batch.extend((&mut cq).map(|c| (c.user_data(), c.result(), c.flags())));
        drop(cq);
        for &(ud, result, flags) in &batch {
            self.complete(ud, result, flags);
        }
        batch.clear();
        self.cqes = batch;
        // The kernel consumed SQEs: push what waited for room.
        if !self.backlog.is_empty() {
            self.flush_backlog();
        }
    }

    fn complete(&mut self, ud: u64, result: i32, flags: u32) {
        match ud {
            CANCEL_UD => {
                self.internal_in_kernel -= 1;
                return;
            }
            WAKE_UD => {
                // A spurious wake-up is harmless (one more turn).
                self.woken = true;
                if !io_uring::cqueue::more(flags) {
                    // The SQE is done: a read completed, or the multishot
                    // poll ended (cancelled, or stopped by the kernel, e.g.
                    // on a full CQ). Re-arm; if the eventfd was written
                    // meanwhile, the new poll fires at once.
                    self.internal_in_kernel -= 1;
                    if let Some(w) = self.wake.as_mut() {
                        w.armed = false;
                        let refused = result < 0 && result != -libc::ECANCELED;
                        if refused && matches!(w.mode, WakeMode::MultishotPoll) {
                            // Multishot poll unsupported (Linux < 5.13
                            // answers EINVAL): re-arming it would spin.
                            w.mode = WakeMode::Read(Box::new(0));
                        }
                    }
                    self.arm_wake();
                }
                return;
            }
            _ => {}
        }
        let index = (ud & 0xffff_ffff) as usize;
        if self.slot_mut(ud).is_none() {
            // Not ours any more: a late or duplicate CQE. Counted, never
            // applied to the op that now holds the slot.
            self.stats.stale_cqes += 1;
            return;
        }
        let more = io_uring::cqueue::more(flags);
        if !more {
            // The op's last CQE: it leaves the kernel.
            self.ops_in_kernel -= 1;
        }
        let slot = &mut self.ops[index];
        if slot.bgid != NO_GROUP
            && bufring::buffer_id(flags).is_some()
            && let Some(Some(ring)) = self.buf_rings.get(usize::from(slot.bgid))
        {
            // The kernel took a buffer from the ring: whoever takes this
            // completion owns it (bufring.rs, invariant 1).
            ring.taken();
        }
        let completion = Completion { result, flags };
        match &mut slot.life {
            Lifecycle::Multi {
                queue,
                waker,
                ended,
            } => {
                queue.push_back(completion);
                *ended |= !more;
                if let Some(w) = waker.take() {
                    self.ready_wakers.push(w);
                }
                return;
            }
            Lifecycle::Abandoned(res) if more => {
                res.more(completion);
                return;
            }
            _ => {}
        }
        match std::mem::replace(&mut slot.life, Lifecycle::Completed(completion)) {
            Lifecycle::Waiting(Some(w)) => self.ready_wakers.push(w),
            Lifecycle::Waiting(None) => {}
            Lifecycle::Abandoned(res) => {
                self.ops.remove(index);
                self.garbage.push((res, completion));
            }
            Lifecycle::Completed(c) => {
                // A second CQE for a single-shot op: keep the first result.
                self.ops_in_kernel += 1;
                self.stats.stale_cqes += 1;
                if let Some(slot) = self.slot_mut(ud) {
                    slot.life = Lifecycle::Completed(c);
                }
            }
            Lifecycle::Multi { .. } => unreachable!("multishot CQEs are queued above"),
        }
    }

    /// Cancels everything in the kernel and reaps until nothing is left, or
    /// until [`SHUTDOWN_GRACE`] passes with ops still refusing to finish.
    /// Returns the number of ops still in the kernel (0 on a clean shutdown).
    fn shutdown(&mut self) -> usize {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        loop {
            let more = self.shutdown_turn(deadline);
            // Orphans complete right here: no user code waits on this
            // driver any more (an accepted fd is closed, a buffer freed).
            for (orphan, c) in self.garbage.drain(..) {
                orphan.complete(c);
            }
            if !more {
                return self.in_kernel() + self.backlog.len();
            }
        }
    }

    /// One step of shutting down: cancels everything (the first time), then,
    /// while anything is left in the kernel or the backlog and `deadline`
    /// has not passed, turns once. Whether another step may help: false
    /// when done, out of time, or the ring failed (what is still in the
    /// kernel then stays, leaked with the driver: invariant 1).
    fn shutdown_turn(&mut self, deadline: Instant) -> bool {
        self.cancel_everything();
        let now = Instant::now();
        let busy = self.in_kernel() > 0 || !self.backlog.is_empty();
        let more = busy
            && now < deadline
            && self
                .turn(Wait::For((deadline - now).min(Duration::from_millis(100))))
                .is_ok();
        self.ready_wakers.clear();
        more
    }

    /// The first step of shutting down (once): drops the backlog's SQEs that
    /// need not run and asks the kernel to cancel every op it holds.
    fn cancel_everything(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        // SQEs that never reached the ring need no cancellation. Detached
        // ops (closes) still in the backlog are kept: they must run.
        let ops = &self.ops;
        let live = |ud: u64| {
            ops.get((ud & 0xffff_ffff) as usize)
                .is_some_and(|s| u64::from(s.generation) == ud >> 32)
        };
        self.backlog.retain(|q| match q {
            Queued::One(sqe) => {
                let ud = sqe.get_user_data();
                ud == CANCEL_UD || (ud != WAKE_UD && live(ud))
            }
            Queued::Linked(a, _) => live(a.get_user_data()),
        });
        let in_kernel: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, s)| {
                s.pushed
                    && !matches!(
                        s.life,
                        Lifecycle::Completed(_) | Lifecycle::Multi { ended: true, .. }
                    )
            })
            .map(|(i, s)| (u64::from(s.generation) << 32) | i as u64)
            .collect();
        let wake_armed = self.wake.as_ref().is_some_and(|w| w.armed);
        for ud in in_kernel.into_iter().chain(wake_armed.then_some(WAKE_UD)) {
            self.push(opcode::AsyncCancel::new(ud).build().user_data(CANCEL_UD));
        }
    }
}

/// Shuts `driver` down while others still hold it: cancels every op in the
/// kernel and reaps them all (within [`SHUTDOWN_GRACE`]), completing the
/// abandoned ops' resources outside the driver's borrow. Called when the
/// loop that owns the driver is dropped.
///
/// Those resources (a socket, a pipe) own a clone of the driver's `Rc`: left
/// in the slab, they keep the driver alive and its `Drop`, which does the
/// same work, never runs (a reference cycle leaking the ring, the fds and
/// the buffers of every op in flight when the loop goes). Dropping them
/// here closes their fds through this driver; those closes are reaped too.
pub(crate) fn drain(driver: &std::rc::Rc<std::cell::RefCell<Driver>>) {
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    loop {
        let (more, garbage) = {
            let mut d = driver.borrow_mut();
            let more = d.shutdown_turn(deadline);
            (more, std::mem::take(&mut d.garbage))
        };
        if !more && garbage.is_empty() {
            return;
        }
        // Outside the borrow: a resource's `Drop` may submit a detached
        // close to this driver (reaped by the next step).
        for (orphan, c) in garbage {
            orphan.complete(c);
        }
    }
}

/// The op-facing half of the driver (used by [`op::Op`]).
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "no non-test caller until the I/O layer lands")
)]
impl Driver {
    /// Whether the kernel supports `opcode` (from `IORING_REGISTER_PROBE`).
    pub(crate) fn supports(&self, opcode: u8) -> bool {
        match &*self.kernel {
            Kernel::Uring { config, .. } => config.probe.is_supported(opcode),
            Kernel::Epoll(_) => epoll::supports(opcode),
        }
    }

    /// Number of ops the driver still tracks (in the kernel, queued, or
    /// completed and not yet collected).
    pub(crate) fn live_ops(&self) -> usize {
        self.ops.len()
    }

    /// Registers a new op whose SQE is `sqe` and queues it for submission;
    /// `bgid` is the provided buffer group it selects from ([`NO_GROUP`]:
    /// none).
    ///
    /// # Safety
    ///
    /// Every pointer in `sqe` must point into memory that stays valid, at the
    /// same address, until the op's CQE has been reaped: memory owned by the
    /// op's resources (which the caller hands over through
    /// [`Driver::drop_op`] if it stops waiting) and never freed earlier.
    pub(crate) unsafe fn submit(&mut self, sqe: squeue::Entry, bgid: u16) -> OpKey {
        let key = self.insert_slot(Lifecycle::Waiting(None), bgid);
        self.push(sqe.user_data(key.user_data()));
        key
    }

    /// [`Driver::submit`], or, on the epoll backend, the op carried out at
    /// once when it can be without waiting (a `recv` with data there, a
    /// `send` with room): then no slot is taken and its completion is
    /// returned as `Err`, ready for its future's first poll.
    ///
    /// # Safety
    ///
    /// As for [`Driver::submit`]; on `Err` the syscall has returned and the
    /// op's memory is no longer used.
    pub(crate) unsafe fn submit_or_complete(
        &mut self,
        sqe: squeue::Entry,
        bgid: u16,
    ) -> Result<OpKey, Completion> {
        // (`try_now` never carries out a buffer-selecting op.)
        if let Kernel::Epoll(e) = &mut *self.kernel
            && self.backlog.is_empty()
            && let Some((result, flags)) = e.try_now(&sqe)
        {
            return Err(Completion { result, flags });
        }
        // SAFETY: the caller's contract.
        Ok(unsafe { self.submit(sqe, bgid) })
    }

    /// Submits an op nobody will wait for (e.g. the `close` of a dropped
    /// socket): `resources` are kept, then completed, at its CQE. Unlike a
    /// dropped op, a detached op still in the backlog runs at shutdown.
    ///
    /// # Safety
    ///
    /// As for [`Driver::submit`], with `resources` owning what `sqe` points at.
    pub(crate) unsafe fn submit_detached(
        &mut self,
        sqe: squeue::Entry,
        resources: Box<dyn Orphan>,
    ) {
        let key = self.insert_slot(Lifecycle::Abandoned(resources), NO_GROUP);
        self.push(sqe.user_data(key.user_data()));
    }

    /// Submits `sqe` linked (`IOSQE_IO_LINK`) to a `LinkTimeout` SQE whose
    /// resources (its `Timespec`) are `timeout_res`; both enter the SQ back
    /// to back. Returns the key of the first op.
    ///
    /// # Safety
    ///
    /// As for [`Driver::submit`], for both SQEs.
    pub(crate) unsafe fn submit_linked(
        &mut self,
        sqe: squeue::Entry,
        timeout_sqe: squeue::Entry,
        timeout_res: Box<dyn Orphan>,
    ) -> OpKey {
        let key = self.insert_slot(Lifecycle::Waiting(None), NO_GROUP);
        let tkey = self.insert_slot(Lifecycle::Abandoned(timeout_res), NO_GROUP);
        let first = sqe.flags(squeue::Flags::IO_LINK).user_data(key.user_data());
        let second = timeout_sqe.user_data(tkey.user_data());
        if !self.backlog.is_empty() || !self.try_push_linked(&first, &second) {
            self.backlog.push_back(Queued::Linked(first, second));
        }
        key
    }

    /// Registers a multishot op (several CQEs, the last without
    /// `IORING_CQE_F_MORE`) and queues its SQE.
    ///
    /// # Safety
    ///
    /// As for [`Driver::submit`], until the op's final CQE.
    pub(crate) unsafe fn submit_multi(&mut self, sqe: squeue::Entry, bgid: u16) -> OpKey {
        let key = self.insert_slot(
            Lifecycle::Multi {
                queue: lifecycle::Completions::default(),
                waker: None,
                ended: false,
            },
            bgid,
        );
        self.push(sqe.user_data(key.user_data()));
        key
    }

    /// The next completion of a multishot op; `None` once its final CQE
    /// has been taken (the slot is then freed).
    pub(crate) fn poll_multi(
        &mut self,
        key: OpKey,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Completion>> {
        let index = key.index as usize;
        let slot = &mut self.ops[index];
        debug_assert_eq!(slot.generation, key.generation.get());
        let Lifecycle::Multi {
            queue,
            waker,
            ended,
        } = &mut slot.life
        else {
            unreachable!("poll_multi on a single-shot op")
        };
        if let Some(c) = queue.pop_front() {
            return Poll::Ready(Some(c));
        }
        if *ended {
            self.ops.remove(index);
            return Poll::Ready(None);
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Drops the completions a multishot op queued and nobody took yet
    /// (its final one stays, so the stream still ends).
    pub(crate) fn discard_multi(&mut self, key: OpKey) {
        let slot = &mut self.ops[key.index as usize];
        debug_assert_eq!(slot.generation, key.generation.get());
        if let Lifecycle::Multi { queue, ended, .. } = &mut slot.life {
            queue.clear_keeping_last(*ended);
        }
    }

    /// A multishot op's stream was dropped. Completions already queued go
    /// to `resources.more` (here, inside the driver: they must not run user
    /// code); if the op still runs, the resources stay until its final CQE
    /// and it is cancelled, else they are handed back to be dropped.
    pub(crate) fn drop_multi(
        &mut self,
        key: OpKey,
        mut resources: Box<dyn Orphan>,
    ) -> Option<Box<dyn Orphan>> {
        let index = key.index as usize;
        let slot = &mut self.ops[index];
        debug_assert_eq!(slot.generation, key.generation.get());
        let (queue, ended) = match &mut slot.life {
            Lifecycle::Multi { queue, ended, .. } => (std::mem::take(queue), *ended),
            _ => unreachable!("drop_multi on a single-shot op"),
        };
        for c in queue {
            resources.more(c);
        }
        if ended || !slot.pushed {
            self.ops.remove(index);
            return Some(resources);
        }
        slot.life = Lifecycle::Abandoned(resources);
        self.push(
            opcode::AsyncCancel::new(key.user_data())
                .build()
                .user_data(CANCEL_UD),
        );
        None
    }

    fn insert_slot(&mut self, life: Lifecycle, bgid: u16) -> OpKey {
        let generation = self.next_generation;
        self.next_generation = match generation.get().wrapping_add(1) {
            0 | u32::MAX => std::num::NonZeroU32::MIN,
            g => std::num::NonZeroU32::new(g).expect("0 is skipped above"),
        };
        let index = self.ops.insert(Slot {
            generation: generation.get(),
            bgid,
            pushed: false,
            life,
        });
        OpKey {
            index: u32::try_from(index).expect("more than 4 billion ops in flight"),
            generation,
        }
    }

    /// Polls the op `key`: its completion, once its CQE has been reaped.
    pub(crate) fn poll_op(&mut self, key: OpKey, cx: &mut Context<'_>) -> Poll<Completion> {
        let slot = &mut self.ops[key.index as usize];
        debug_assert_eq!(slot.generation, key.generation.get());
        match &mut slot.life {
            Lifecycle::Completed(_) => {
                let slot = self.ops.remove(key.index as usize);
                match slot.life {
                    Lifecycle::Completed(c) => Poll::Ready(c),
                    _ => unreachable!("matched Completed above"),
                }
            }
            Lifecycle::Waiting(w) => {
                match w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Lifecycle::Abandoned(_) => unreachable!("an abandoned op has no future to poll it"),
            Lifecycle::Multi { .. } => unreachable!("a multishot op is polled with poll_multi"),
        }
    }

    /// The op's future was dropped before it collected its completion.
    /// `resources` is everything its SQE points at.
    ///
    /// Returns the resources when the kernel is done with them: with `None`
    /// if the SQE never reached the ring (just drop them), with the
    /// completion if the CQE already arrived (the caller must complete the
    /// orphan, so received bytes are kept and accepted fds closed).
    /// Otherwise keeps them until the CQE and, if `cancel`, asks the kernel
    /// to cancel the op.
    pub(crate) fn drop_op(
        &mut self,
        key: OpKey,
        resources: Box<dyn Orphan>,
        cancel: bool,
    ) -> Option<(Box<dyn Orphan>, Option<Completion>)> {
        let index = key.index as usize;
        let slot = &mut self.ops[index];
        debug_assert_eq!(slot.generation, key.generation.get());
        if let Lifecycle::Completed(c) = slot.life {
            self.ops.remove(index);
            return Some((resources, Some(c)));
        }
        if !slot.pushed {
            // Never reached the kernel: its backlog entry is skipped as stale.
            self.ops.remove(index);
            return Some((resources, None));
        }
        slot.life = Lifecycle::Abandoned(resources);
        if cancel {
            self.push(
                opcode::AsyncCancel::new(key.user_data())
                    .build()
                    .user_data(CANCEL_UD),
            );
        }
        None
    }
}

/// Provided buffer rings (`bufring.rs`).
impl Driver {
    /// Registers `ring` as a new buffer group (`IORING_REGISTER_PBUF_RING`,
    /// Linux 5.19+; on epoll, the backend picks from it itself) and keeps
    /// it until [`Driver::unregister_buf_ring`] or the driver's end.
    ///
    /// # Errors
    ///
    /// `Unsupported` when the kernel cannot register buffer rings; the
    /// registration's other failures; 65,536 groups already.
    pub(crate) fn register_buf_ring(
        &mut self,
        ring: &std::rc::Rc<bufring::BufRing>,
    ) -> io::Result<u16> {
        if self.inherited() {
            return Err(fork::inherited_error());
        }
        let index = self
            .buf_rings
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.buf_rings.len());
        let bgid = u16::try_from(index)
            .ok()
            .filter(|&g| g != NO_GROUP)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "ringloop: 65,535 buffer groups are registered on this loop already",
                )
            })?;
        match &mut *self.kernel {
            Kernel::Uring { ring: uring, .. } => {
                // SAFETY: the ring's memory stays allocated at this address
                // until it is unregistered or the io_uring is gone: the
                // registry below holds it until then (bufring.rs,
                // invariant 2), and leaks it with a leaked ring.
                let res = unsafe {
                    uring.submitter().register_buf_ring_with_flags(
                        ring.ring_addr(),
                        ring.entries(),
                        bgid,
                        0,
                    )
                };
                res.map_err(|e| match e.raw_os_error() {
                    // Kernels before 5.19 do not know the opcode.
                    Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("ringloop: IORING_REGISTER_PBUF_RING refused ({e}): Linux 5.19+"),
                    ),
                    _ => io::Error::new(
                        e.kind(),
                        format!("ringloop: registering buffer ring {bgid}: {e}"),
                    ),
                })?;
            }
            Kernel::Epoll(e) => e.register_buf_ring(bgid, ring.clone()),
        }
        if index == self.buf_rings.len() {
            self.buf_rings.push(Some(ring.clone()));
        } else {
            self.buf_rings[index] = Some(ring.clone());
        }
        Ok(bgid)
    }

    /// Unregisters buffer group `bgid` (no op may name it any more) and
    /// lets its memory go. If the kernel refuses, the registration and
    /// the memory stay until the driver's end.
    pub(crate) fn unregister_buf_ring(&mut self, bgid: u16) {
        if self.inherited() {
            return;
        }
        let index = usize::from(bgid);
        if self.buf_rings.get(index).is_none_or(Option::is_none) {
            return;
        }
        match &mut *self.kernel {
            Kernel::Uring { ring, .. } => {
                if ring.submitter().unregister_buf_ring(bgid).is_err() {
                    return;
                }
            }
            Kernel::Epoll(e) => e.unregister_buf_ring(bgid),
        }
        self.buf_rings[index] = None;
    }

    /// Moves the completions the kernel has already posted into their ops
    /// (no syscall), so that what was received so far is known now; their
    /// wakers and orphans are collected by the loop's next turn. Used by
    /// `StreamReader::at_eof` after a peek of the socket.
    pub(crate) fn reap_posted(&mut self) {
        if !self.inherited() {
            self.reap();
        }
    }

    /// Whether every completion is posted only while this thread is in
    /// the driver (no `SQPOLL` thread): then, after [`Driver::reap_posted`],
    /// what a receive took from a socket before a peek of it is known.
    pub(crate) fn posts_only_when_entered(&self) -> bool {
        match &*self.kernel {
            Kernel::Uring { config, .. } => !config.sqpoll,
            Kernel::Epoll(_) => true,
        }
    }

    /// The slot of the loop's default buffer group (the net layer's).
    pub(crate) fn default_group(&mut self) -> &mut Option<std::rc::Rc<dyn std::any::Any>> {
        &mut self.default_group
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ETIME)
    )
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.inherited() {
            // Inherited across fork(): the ring and its ops are the parent's
            // (`fork.rs`). Cancel, reap, unmap, close nothing; leak the ops'
            // resources without running their code. (`ring` is never
            // dropped: its mappings are not this process's.)
            std::mem::forget(std::mem::take(&mut self.ops));
            std::mem::forget(std::mem::take(&mut self.garbage));
            std::mem::forget(std::mem::take(&mut self.ready_wakers));
            std::mem::forget(self.wake.take());
            std::mem::forget(std::mem::take(&mut self.buf_rings));
            return;
        }
        let stuck = self.shutdown();
        if stuck > 0 {
            eprintln!(
                "ringloop: {stuck} io_uring ops did not finish within {SHUTDOWN_GRACE:?} of \
                 the loop closing; leaking the ring and their buffers rather than freeing \
                 memory the kernel may still write"
            );
            // Invariant 1: leak rather than free memory the kernel may write.
            std::mem::forget(std::mem::take(&mut self.ops));
            std::mem::forget(self.wake.take());
            std::mem::forget(std::mem::take(&mut self.buf_rings));
            return;
        }
        // SAFETY: `shutdown` returned 0, so no SQE is in the kernel and no
        // memory is shared with it any more; `ring` is not used after this.
        unsafe { ManuallyDrop::drop(&mut self.kernel) };
    }
}
