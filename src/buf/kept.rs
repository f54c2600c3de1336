//! [`Kept`]: the bytes that reads abandoned in flight received, served to
//! the next read so that cancelling a read loses no data; shared by sockets and pipes.
//!
//! A read whose future is dropped stays in the kernel until its CQE; what it
//! received then lands here ([`ReadGuard::keep_unread`]). A new read first
//! waits until no abandoned read is still in the kernel (its bytes come
//! before any the new read would get), then takes the kept bytes before
//! asking the kernel for more.
//!
//! The readiness path (`crate::net::ready`) reads the fd itself, with a
//! non-blocking `recv` into a borrowed buffer, in the same order: it waits
//! for in-flight reads to land, takes the kept bytes, and only then asks
//! the kernel ([`Kept::poll_serve_borrowed`]). It has its own waker slot, so
//! it is woken when a read lands or bytes are put back even while it waits
//! for readability instead.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll, Waker};

use super::read_buf::ReadBuf;
use super::{IoBufMut, copy_into};
use crate::sys::RawAddr;

/// Kept bytes and the count of reads in flight on one fd.
///
/// Every socket and pipe has one, and an idle connection should cost
/// little: what only a cancelled read, a read waiting behind one, or a
/// datagram an abandoned receive got needs lives in [`Rare`], allocated on
/// first use and freed once empty again. The common state (no abandoned
/// read, nothing kept) is 40 bytes and no allocation.
#[derive(Default)]
pub(crate) struct Kept {
    /// Reads in the kernel (only abandoned ones can overlap a new read;
    /// an armed multishot receive counts as one).
    in_flight: Cell<u32>,
    /// The error an abandoned read got (a reset), as an errno (0: none):
    /// the next read after the kept bytes reports it, once, as the kernel
    /// would have.
    error: Cell<i32>,
    /// An abandoned read saw end-of-stream.
    eof: Cell<bool>,
    /// Taken out while in use (never across a call that could reach this
    /// `Kept` again: wakers are woken after it is put back).
    rare: Cell<Option<Box<Rare>>>,
    /// The readiness reader (at most one per fd), woken whenever a read
    /// lands or bytes are put back in front.
    ready_waker: Cell<Option<Waker>>,
}

/// The parts of [`Kept`] only cancellation and its waiters use.
#[derive(Default)]
struct Rare {
    /// Bytes abandoned reads received, in stream order.
    unread: Vec<u8>,
    /// The reads waiting in [`Kept::landed`]: several tasks may read one
    /// socket (`read` takes `&self`), and a `RecvStream` may wait beside a
    /// plain read; each must be woken.
    waiters: Vec<Waker>,
    /// Datagrams an orphaned receive got, served before the next receive.
    datagrams: VecDeque<(Vec<u8>, RawAddr)>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.unread.is_empty() && self.waiters.is_empty() && self.datagrams.is_empty()
    }
}

impl Kept {
    /// Runs `f` on the rare part, made if `make` and missing (`None` when
    /// missing and not made); frees it if `f` leaves it empty. `f` must not
    /// reach this `Kept` (it is out of its cell meanwhile).
    fn rare<R>(&self, make: bool, f: impl FnOnce(&mut Rare) -> R) -> Option<R> {
        let mut rare = match self.rare.take() {
            Some(r) => r,
            None if make => Box::default(),
            None => return None,
        };
        let out = f(&mut rare);
        if !rare.is_empty() {
            self.rare.set(Some(rare));
        }
        Some(out)
    }

    /// Waits until no abandoned read is still in the kernel.
    pub(crate) async fn landed(&self) {
        poll_fn(|cx| self.poll_landed(cx)).await;
    }

    /// [`Kept::landed`] as a poll.
    pub(crate) fn poll_landed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.in_flight.get() == 0 {
            Poll::Ready(())
        } else {
            self.rare(true, |r| {
                if !r.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    r.waiters.push(cx.waker().clone());
                }
            });
            Poll::Pending
        }
    }

    /// The readiness reader's turn: `Pending` while a read is in the kernel
    /// (its bytes come first; woken when it lands), else [`Kept::serve`]
    /// into a borrowed [`ReadBuf`]: `Some(Ok(n))` bytes put in, a kept
    /// error, a kept end-of-stream; `None` when the kernel must be asked.
    pub(crate) fn poll_serve_borrowed(
        &self,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<Option<io::Result<usize>>> {
        if self.in_flight.get() > 0 {
            self.watch(cx.waker());
            return Poll::Pending;
        }
        if let Some(n) = self.take_unread(|unread| dst.put_slice(unread)) {
            return Poll::Ready(Some(Ok(n)));
        }
        Poll::Ready(self.kept_end())
    }

    /// Hands the kept bytes, if there are any, to `copy`, which says how
    /// many it took; those leave the front. `None` (and `copy` not called)
    /// when nothing is kept.
    fn take_unread(&self, copy: impl FnOnce(&[u8]) -> usize) -> Option<usize> {
        self.rare(false, |r| {
            if r.unread.is_empty() {
                return None;
            }
            let n = copy(&r.unread);
            r.unread.drain(..n);
            release_if_empty(&mut r.unread);
            Some(n)
        })
        .flatten()
    }

    /// The readiness reader waits for readability: wake it also when a read
    /// lands or bytes are put back (they may be all it waits for).
    pub(crate) fn watch(&self, waker: &Waker) {
        let mut slot = self.ready_waker.take();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            slot = Some(waker.clone());
        }
        self.ready_waker.set(slot);
    }

    fn wake_ready_reader(&self) {
        if let Some(w) = self.ready_waker.take() {
            w.wake();
        }
    }

    /// Serves a read from what is kept: `Some(Ok(n))` bytes copied into
    /// `buf`, then the error an abandoned read got (once), then `Some(Ok(0))`
    /// at a kept end-of-stream; `None` when the kernel must be asked.
    pub(crate) fn serve<B: IoBufMut>(&self, buf: &mut B) -> Option<io::Result<usize>> {
        if let Some(n) = self.take_unread(|unread| copy_into(buf, unread)) {
            return Some(Ok(n));
        }
        self.kept_end()
    }

    /// [`Kept::serve`] into several buffers in order.
    pub(crate) fn serve_vectored<B: IoBufMut>(&self, bufs: &mut [B]) -> Option<io::Result<usize>> {
        let taken = self.take_unread(|unread| {
            let mut n = 0;
            for b in bufs {
                n += copy_into(b, &unread[n..]);
                if n == unread.len() {
                    break;
                }
            }
            n
        });
        if let Some(n) = taken {
            return Some(Ok(n));
        }
        self.kept_end()
    }

    /// With no bytes kept: a kept error (taken), else a kept end-of-stream.
    fn kept_end(&self) -> Option<io::Result<usize>> {
        let errno = self.error.replace(0);
        if errno != 0 {
            return Some(Err(io::Error::from_raw_os_error(errno)));
        }
        self.eof.get().then_some(Ok(0))
    }

    /// Keeps bytes after those already kept.
    pub(crate) fn push(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.rare(true, |r| r.unread.extend_from_slice(bytes));
        }
    }

    /// Puts bytes back in front of the next read (a read that got more
    /// than its caller could take).
    pub(crate) fn push_front(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.rare(true, |r| {
                r.unread.splice(0..0, bytes.iter().copied());
            });
        }
        self.wake_ready_reader();
    }

    /// Bytes kept now.
    pub(crate) fn len(&self) -> usize {
        self.rare(false, |r| r.unread.len()).unwrap_or(0)
    }

    /// Abandoned reads still in the kernel: until they land, what the fd
    /// holds next is not known.
    pub(crate) fn reads_in_flight(&self) -> usize {
        self.in_flight.get() as usize
    }

    /// The error an abandoned read got, kept for the next read (not taken).
    pub(crate) fn pending_error(&self) -> Option<io::Error> {
        match self.error.get() {
            0 => None,
            errno => Some(io::Error::from_raw_os_error(errno)),
        }
    }

    /// Keeps a datagram an abandoned receive got, for the next receive.
    pub(crate) fn push_datagram(&self, bytes: Vec<u8>, from: RawAddr) {
        self.rare(true, |r| r.datagrams.push_back((bytes, from)));
    }

    /// The oldest kept datagram, if any.
    pub(crate) fn pop_datagram(&self) -> Option<(Vec<u8>, RawAddr)> {
        self.rare(false, |r| r.datagrams.pop_front()).flatten()
    }

    /// Datagrams kept now.
    pub(crate) fn datagrams(&self) -> usize {
        self.rare(false, |r| r.datagrams.len()).unwrap_or(0)
    }
}

/// Frees an emptied buffer's storage beyond a small reserve, so a socket
/// does not hold the high-water mark of a burst for its lifetime (an empty
/// [`Rare`] is freed whole).
fn release_if_empty(unread: &mut Vec<u8>) {
    const RESERVE: usize = 4096;
    if unread.is_empty() && unread.capacity() > RESERVE {
        unread.shrink_to(RESERVE);
    }
}

/// An fd handle whose reads keep what they received when abandoned.
pub(crate) trait KeepsReads: Clone + AsRawFd {
    fn kept(&self) -> &Kept;
}

/// Counts a read as in flight on `H` until dropped, and keeps `H` (so its
/// fd) alive until then.
pub(crate) struct ReadGuard<H: KeepsReads>(pub(crate) H);

impl<H: KeepsReads> ReadGuard<H> {
    pub(crate) fn new(handle: &H) -> ReadGuard<H> {
        let kept = handle.kept();
        kept.in_flight.set(kept.in_flight.get() + 1);
        ReadGuard(handle.clone())
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Keeps bytes received after the read's future was dropped
    /// (`eof`: the read returned 0).
    pub(crate) fn keep_unread(&self, bytes: &[u8], eof: bool) {
        let kept = self.0.kept();
        kept.push(bytes);
        if eof {
            kept.eof.set(true);
        }
    }

    /// Keeps the error a read got after its future was dropped (not its
    /// own cancellation): the connection's failure must reach the next
    /// read, not be mistaken for a quiet end-of-stream.
    pub(crate) fn keep_error(&self, error: &io::Error) {
        match error.raw_os_error() {
            Some(libc::ECANCELED | libc::EINTR) | None => {}
            Some(errno) => {
                let kept = self.0.kept();
                if kept.error.get() == 0 {
                    kept.error.set(errno);
                }
            }
        }
    }
}

impl<H: KeepsReads> Drop for ReadGuard<H> {
    fn drop(&mut self) {
        let kept = self.0.kept();
        kept.in_flight.set(kept.in_flight.get() - 1);
        // Every waiter re-checks (and waits again while reads remain).
        let waiters = kept
            .rare(false, |r| std::mem::take(&mut r.waiters))
            .unwrap_or_default();
        for w in waiters {
            w.wake();
        }
        kept.wake_ready_reader();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_bytes_come_in_order_and_an_emptied_buffer_is_freed() {
        let kept = Kept::default();
        kept.push(&[7u8; 100_000]);
        kept.push_front(b"head");
        let mut a = Vec::with_capacity(4);
        assert_eq!(kept.serve(&mut a).unwrap().unwrap(), 4);
        assert_eq!(a, b"head");
        let mut b = Vec::with_capacity(200_000);
        assert_eq!(kept.serve(&mut b).unwrap().unwrap(), 100_000);
        assert!(b.iter().all(|&x| x == 7));
        assert!(
            kept.rare.take().is_none(),
            "an emptied kept buffer is freed"
        );
        assert!(kept.serve(&mut b).is_none(), "nothing kept, no EOF");
        kept.eof.set(true);
        assert_eq!(kept.serve(&mut b).unwrap().unwrap(), 0);
    }

    #[test]
    fn a_kept_error_comes_after_the_kept_bytes_once() {
        let kept = Kept::default();
        kept.push(b"ab");
        kept.error.set(libc::ECONNRESET);
        let mut a = Vec::with_capacity(8);
        assert_eq!(kept.serve(&mut a).unwrap().unwrap(), 2);
        let e = kept.serve(&mut a).unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert!(kept.serve(&mut a).is_none(), "the error is reported once");
    }
}
