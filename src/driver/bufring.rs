//! Provided buffer rings (`IORING_REGISTER_PBUF_RING`,
//! io_uring_register_buf_ring(3)): a pool of equal buffers the kernel picks
//! from when data arrives, instead of each pending receive holding its own.
//!
//! # Invariants
//!
//! 1. **Each buffer is in exactly one place**: in the ring (the kernel, or
//!    the epoll backend, may pick it and write into it), or out (named by a
//!    completion's `IORING_CQE_F_BUFFER` id, owned by whoever took that
//!    completion: a chunk, or an orphaned receive). Only the owner of an
//!    out buffer gives it back ([`BufRing::provide`]), once. So the ring
//!    never holds more than `count <= entries` buffers, and the slot at
//!    the tail is never one the kernel still reads.
//! 2. **The memory outlives every writer.** A `BufRing` is shared (`Rc`)
//!    by the driver's registry (from registration until it is
//!    unregistered, or until the ring itself is gone), by every op that
//!    names its group (until the op's final completion) and by every
//!    chunk. It is freed when the last of them goes; while the kernel may
//!    pick a buffer, the registry holds it. A driver that leaks its ring
//!    (ops that never finished, a `fork` child) leaks its registry too.
//! 3. **Thread-bound.** A ring belongs to one loop's driver (`!Send`); the
//!    kernel (or the epoll backend) only reads ring entries between its
//!    head and the tail published with a release store; ringloop only
//!    writes the entry after the tail, then publishes.

use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::io;
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

/// `struct io_uring_buf`: one ring entry. In entry 0, `resv` is the ring's
/// tail (`struct io_uring_buf_ring`'s union).
#[repr(C)]
struct RingEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(std::mem::size_of::<RingEntry>() == 16);
const _: () = assert!(
    std::mem::size_of::<RingEntry>() == std::mem::size_of::<io_uring::types::BufRingEntry>()
);

/// The most entries a buffer ring may have (the kernel's limit).
pub(crate) const MAX_ENTRIES: usize = 1 << 15;
/// The ring's alignment: the kernel wants it page-aligned.
const RING_ALIGN: usize = 4096;

/// A buffer the epoll backend took from the ring (its head).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Picked {
    pub(crate) bid: u16,
    pub(crate) addr: *mut u8,
    pub(crate) len: u32,
}

/// The ring's memory and its buffers (see the module's invariants).
pub(crate) struct BufRing {
    ring: NonNull<RingEntry>,
    ring_layout: Layout,
    /// `entries - 1` (`entries` is a power of two).
    mask: u16,
    /// The tail published to the kernel (our copy of entry 0's `resv`).
    tail: Cell<u16>,
    /// The epoll backend's head (on io_uring the kernel keeps its own).
    head: Cell<u16>,
    buf_size: u32,
    /// Buffers may be added up to this many (at most the ring's entries).
    max: usize,
    /// Address of buffer `bid`.
    bufs: RefCell<Vec<NonNull<u8>>>,
    /// The allocations holding the buffers (one per growth step).
    extents: RefCell<Vec<(NonNull<u8>, Layout)>>,
    /// Buffers out of the ring (in a completion, a chunk, an orphan).
    out: Cell<usize>,
    /// Receives waiting for a buffer to come back (after `ENOBUFS`).
    waiters: RefCell<Vec<Waker>>,
}

impl BufRing {
    /// A ring with `count` buffers of `buf_size` bytes, all provided, that
    /// may grow to `max` buffers.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `count` 0, `max < count`, `max` over 32,768,
    /// `buf_size` 0 or over `u32::MAX`; `OutOfMemory` when the memory
    /// cannot be had.
    pub(crate) fn new(count: usize, max: usize, buf_size: usize) -> io::Result<BufRing> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if count == 0 || max < count || max > MAX_ENTRIES {
            return Err(invalid(format!(
                "buffer group: {count} buffers growing to {max}: need 1 <= count <= max <= \
                 {MAX_ENTRIES} (the kernel's limit for one buffer ring)"
            )));
        }
        let buf_size = u32::try_from(buf_size)
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| {
                invalid(format!(
                    "buffer group: a buffer size of {buf_size} bytes: need 1 to {}",
                    u32::MAX
                ))
            })?;
        let entries = max.next_power_of_two();
        let size = (entries * std::mem::size_of::<RingEntry>()).next_multiple_of(RING_ALIGN);
        let ring_layout = Layout::from_size_align(size, RING_ALIGN)
            .map_err(|e| invalid(format!("buffer group: ring of {entries} entries: {e}")))?;
        // SAFETY: the layout's size is at least one page (non-zero).
        let ring = NonNull::new(unsafe { std::alloc::alloc_zeroed(ring_layout) })
            .ok_or_else(|| out_of_memory(size))?
            .cast::<RingEntry>();
        let r = BufRing {
            ring,
            ring_layout,
            mask: (entries - 1) as u16,
            tail: Cell::new(0),
            head: Cell::new(0),
            buf_size,
            max,
            bufs: RefCell::new(Vec::with_capacity(count)),
            extents: RefCell::new(Vec::new()),
            out: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
        };
        r.add(count)?;
        Ok(r)
    }

    /// Allocates `n` more buffers and provides them.
    fn add(&self, n: usize) -> io::Result<()> {
        let first = self.bufs.borrow().len();
        debug_assert!(first + n <= self.max);
        let bytes = n
            .checked_mul(self.buf_size as usize)
            .ok_or_else(|| out_of_memory(usize::MAX))?;
        let layout = Layout::from_size_align(bytes, 64).map_err(|_| out_of_memory(usize::MAX))?;
        // SAFETY: `n >= 1` and `buf_size >= 1`, so the size is non-zero.
        // Not zeroed: the pages are touched only when data lands in them,
        // and bytes are read only after a receive wrote them.
        let base = NonNull::new(unsafe { std::alloc::alloc(layout) })
            .ok_or_else(|| out_of_memory(bytes))?;
        self.extents.borrow_mut().push((base, layout));
        let mut bufs = self.bufs.borrow_mut();
        for i in 0..n {
            // SAFETY: `i * buf_size < bytes`: inside the allocation.
            bufs.push(unsafe { base.add(i * self.buf_size as usize) });
        }
        drop(bufs);
        for bid in first..first + n {
            self.out.set(self.out.get() + 1);
            self.provide(bid as u16);
        }
        Ok(())
    }

    /// Adds buffers (doubling, up to the maximum); false if it may not grow.
    ///
    /// # Errors
    ///
    /// `OutOfMemory`.
    pub(crate) fn grow(&self) -> io::Result<bool> {
        let count = self.count();
        let n = count.min(self.max - count);
        if n == 0 {
            return Ok(false);
        }
        self.add(n)?;
        Ok(true)
    }

    /// Gives buffer `bid` back to the ring (invariant 1: its owner, once).
    /// Wakes no one (it may run inside the driver): see
    /// [`BufRing::wake_waiters`].
    pub(crate) fn provide(&self, bid: u16) {
        let addr = self.bufs.borrow()[usize::from(bid)];
        let tail = self.tail.get();
        let slot = usize::from(tail & self.mask);
        // SAFETY: `slot` is within the ring's `entries`; the entry at the
        // tail is not between the kernel's head and the published tail
        // (invariant 1), so nobody else reads it until the store below.
        // Fields are written one by one: entry 0's `resv` (the tail) is
        // read by the kernel concurrently and must not be overwritten.
        unsafe {
            let e = self.ring.as_ptr().add(slot);
            (&raw mut (*e).addr).write(addr.as_ptr() as u64);
            (&raw mut (*e).len).write(self.buf_size);
            (&raw mut (*e).bid).write(bid);
        }
        let tail = tail.wrapping_add(1);
        self.tail.set(tail);
        self.out.set(self.out.get() - 1);
        // SAFETY: entry 0's `resv` is a properly aligned `u16` in memory
        // this ring owns, accessed atomically by the kernel and by us.
        let shared = unsafe { AtomicU16::from_ptr(&raw mut (*self.ring.as_ptr()).resv) };
        shared.store(tail, Ordering::Release);
    }

    /// A completion naming one of this ring's buffers was reaped: that
    /// buffer is out of the ring until [`BufRing::provide`]d back.
    pub(crate) fn taken(&self) {
        self.out.set(self.out.get() + 1);
    }

    /// Wakes the receives waiting for a buffer (after one came back).
    pub(crate) fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Waits for a buffer: `waker` is woken by [`BufRing::wake_waiters`].
    pub(crate) fn wait(&self, waker: &Waker) {
        let mut ws = self.waiters.borrow_mut();
        if !ws.iter().any(|w| w.will_wake(waker)) {
            ws.push(waker.clone());
        }
    }

    /// The bytes a receive wrote into buffer `bid`.
    ///
    /// # Safety
    ///
    /// `bid` is out of the ring and owned by the caller (invariant 1), and
    /// a receive wrote `len <= buf_size` bytes into it.
    pub(crate) unsafe fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let ptr = self.bufs.borrow()[usize::from(bid)];
        // SAFETY: the caller's contract: `len` initialised bytes inside the
        // buffer, which nobody writes while it is out.
        unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len.min(self.buf_size as usize)) }
    }

    /// The epoll backend's pick: the buffer at the head, if any. It stays
    /// in the ring until [`BufRing::consume`].
    pub(crate) fn peek(&self) -> Option<Picked> {
        let head = self.head.get();
        if head == self.tail.get() {
            return None;
        }
        let slot = usize::from(head & self.mask);
        // SAFETY: `slot` is within the ring; the entry between head and
        // tail was written by `provide` on this thread.
        let e = unsafe { &*self.ring.as_ptr().add(slot) };
        Some(Picked {
            bid: e.bid,
            addr: e.addr as *mut u8,
            len: e.len,
        })
    }

    /// The epoll backend used the buffer [`BufRing::peek`] returned (it is
    /// counted out when its completion is taken, as on io_uring).
    pub(crate) fn consume(&self) {
        self.head.set(self.head.get().wrapping_add(1));
    }

    /// The ring's address, for `IORING_REGISTER_PBUF_RING`.
    pub(crate) fn ring_addr(&self) -> u64 {
        self.ring.as_ptr() as u64
    }

    /// The ring's entries (a power of two).
    pub(crate) fn entries(&self) -> u16 {
        self.mask.wrapping_add(1)
    }

    /// Each buffer's size in bytes.
    pub(crate) fn buf_size(&self) -> usize {
        self.buf_size as usize
    }

    /// Buffers allocated.
    pub(crate) fn count(&self) -> usize {
        self.bufs.borrow().len()
    }

    /// Buffers out of the ring: in completions reaped and not yet taken,
    /// in chunks, in orphaned receives.
    pub(crate) fn out(&self) -> usize {
        self.out.get()
    }

    /// Buffers in the ring, as far as this thread knows: completions the
    /// kernel posted but the driver has not reaped yet still count here
    /// (until the next reap).
    pub(crate) fn available(&self) -> usize {
        self.count() - self.out()
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        for (ptr, layout) in self.extents.get_mut().drain(..) {
            // SAFETY: allocated in `add` with this layout; no one writes it
            // any more (invariant 2: the last holder is gone).
            unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        }
        // SAFETY: allocated in `new` with this layout (invariant 2).
        unsafe { std::alloc::dealloc(self.ring.as_ptr().cast(), self.ring_layout) };
    }
}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("buf_size", &self.buf_size)
            .field("count", &self.count())
            .field("max", &self.max)
            .field("out", &self.out())
            .finish()
    }
}

/// A [`BufRing`] registered with one driver as buffer group `bgid`, or
/// (`bgid` `None`: a kernel without `IORING_REGISTER_PBUF_RING`) not
/// registered at all. Every op naming the group holds an `Rc` of this, so
/// the group id is not reused while an op may still pick from it: it is
/// unregistered when the last holder goes (invariant 2).
pub(crate) struct Provided {
    ring: Rc<BufRing>,
    bgid: Option<u16>,
    driver: Weak<RefCell<super::Driver>>,
    /// Multishot receive works here (cleared when the kernel refuses it).
    multishot: Cell<bool>,
}

impl Provided {
    /// Makes a ring of `count` buffers of `buf_size` bytes (growing to
    /// `max`) and registers it with `driver`. Where the kernel cannot
    /// register buffer rings, the group is made unregistered.
    ///
    /// # Errors
    ///
    /// As for [`BufRing::new`]; the registration's own failures.
    pub(crate) fn new(
        driver: &Rc<RefCell<super::Driver>>,
        count: usize,
        max: usize,
        buf_size: usize,
    ) -> io::Result<Provided> {
        let ring = Rc::new(BufRing::new(count, max, buf_size)?);
        let bgid = match driver.borrow_mut().register_buf_ring(&ring) {
            Ok(bgid) => Some(bgid),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => None,
            Err(e) => return Err(e),
        };
        Ok(Provided {
            ring,
            bgid,
            driver: Rc::downgrade(driver),
            multishot: Cell::new(true),
        })
    }

    pub(crate) fn ring(&self) -> &BufRing {
        &self.ring
    }

    /// The group id, if the ring is registered.
    pub(crate) fn bgid(&self) -> Option<u16> {
        self.bgid
    }

    /// Whether this group's receives belong to `driver`'s loop.
    pub(crate) fn belongs_to(&self, driver: &Rc<RefCell<super::Driver>>) -> bool {
        std::ptr::eq(self.driver.as_ptr(), Rc::as_ptr(driver))
    }

    /// Whether multishot receive may be tried.
    pub(crate) fn multishot(&self) -> bool {
        self.multishot.get()
    }

    /// The kernel refused multishot receive: one-shot from now on.
    pub(crate) fn no_multishot(&self) {
        self.multishot.set(false);
    }

    #[cfg(test)]
    pub(crate) fn force_unregistered(&mut self) {
        if let Some(bgid) = self.bgid.take()
            && let Some(d) = self.driver.upgrade()
        {
            d.borrow_mut().unregister_buf_ring(bgid);
        }
    }
}

impl Drop for Provided {
    fn drop(&mut self) {
        let Some(bgid) = self.bgid else { return };
        // Gone driver: its ring is gone, and the registration with it.
        // Busy driver (dropped from inside it): the registration stays,
        // with the memory, until the driver is dropped (invariant 2).
        if let Some(d) = self.driver.upgrade()
            && let Ok(mut d) = d.try_borrow_mut()
        {
            d.unregister_buf_ring(bgid);
        }
    }
}

impl std::fmt::Debug for Provided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provided")
            .field("bgid", &self.bgid)
            .field("ring", &self.ring)
            .finish()
    }
}

fn out_of_memory(bytes: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!("buffer group: could not allocate {bytes} bytes"),
    )
}

/// `IORING_CQE_F_BUFFER`: the completion used provided buffer
/// `flags >> IORING_CQE_BUFFER_SHIFT`.
pub(crate) const CQE_F_BUFFER: u32 = 1;
/// `IORING_CQE_BUFFER_SHIFT`.
pub(crate) const CQE_BUFFER_SHIFT: u32 = 16;

/// The provided buffer a completion's flags name, if any.
pub(crate) fn buffer_id(flags: u32) -> Option<u16> {
    (flags & CQE_F_BUFFER != 0).then_some((flags >> CQE_BUFFER_SHIFT) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provided_buffers_cycle_through_the_ring_in_order() {
        let r = BufRing::new(3, 4, 8).unwrap();
        assert_eq!(
            (r.entries(), r.count(), r.out(), r.available()),
            (4, 3, 0, 3)
        );
        let picks: Vec<u16> = (0..3)
            .map(|_| {
                let p = r.peek().unwrap();
                assert_eq!(p.len, 8);
                r.consume();
                r.taken();
                p.bid
            })
            .collect();
        assert_eq!(picks, [0, 1, 2]);
        assert!(r.peek().is_none(), "empty ring");
        assert_eq!(r.available(), 0);
        r.provide(1);
        assert_eq!(r.peek().unwrap().bid, 1);
        assert!(r.grow().unwrap(), "3 -> 4");
        assert!(!r.grow().unwrap(), "at the maximum");
        assert_eq!((r.count(), r.available()), (4, 2));
    }

    #[test]
    fn bad_sizes_are_clear_errors() {
        for (count, max, size) in [(0, 1, 8), (2, 1, 8), (1, MAX_ENTRIES + 1, 8), (1, 1, 0)] {
            let e = BufRing::new(count, max, size).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        }
    }
}
