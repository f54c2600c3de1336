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

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll, Waker};

use super::read_buf::ReadBuf;
use super::{IoBufMut, copy_into};

/// Kept bytes and the count of reads in flight on one fd.
#[derive(Default)]
pub(crate) struct Kept {
    /// Bytes abandoned reads received, in stream order.
    unread: RefCell<Vec<u8>>,
    /// An abandoned read saw end-of-stream.
    eof: Cell<bool>,
    /// The error an abandoned read got (a reset), as an errno: the next
    /// read after the kept bytes reports it, once, as the kernel would have.
    error: Cell<Option<i32>>,
    /// Reads in the kernel (only abandoned ones can overlap a new read).
    in_flight: Cell<usize>,
    /// The reads waiting in [`Kept::landed`]: several tasks may read one
    /// socket (`read` takes `&self`), and a `RecvStream` may wait beside a
    /// plain read; each must be woken.
    waiters: RefCell<Vec<Waker>>,
    /// The readiness reader (at most one per fd), woken whenever a read
    /// lands or bytes are put back in front.
    ready_waker: Cell<Option<Waker>>,
}

impl Kept {
    /// Waits until no abandoned read is still in the kernel.
    pub(crate) async fn landed(&self) {
        poll_fn(|cx| self.poll_landed(cx)).await;
    }

    /// [`Kept::landed`] as a poll.
    pub(crate) fn poll_landed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.in_flight.get() == 0 {
            Poll::Ready(())
        } else {
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
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
        let mut unread = self.unread.borrow_mut();
        if !unread.is_empty() {
            let n = dst.put_slice(&unread);
            unread.drain(..n);
            release_if_empty(&mut unread);
            return Poll::Ready(Some(Ok(n)));
        }
        Poll::Ready(self.kept_end())
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
        let mut unread = self.unread.borrow_mut();
        if !unread.is_empty() {
            let n = copy_into(buf, &unread);
            unread.drain(..n);
            release_if_empty(&mut unread);
            return Some(Ok(n));
        }
        self.kept_end()
    }

    /// [`Kept::serve`] into several buffers in order.
    pub(crate) fn serve_vectored<B: IoBufMut>(&self, bufs: &mut [B]) -> Option<io::Result<usize>> {
        let mut unread = self.unread.borrow_mut();
        if !unread.is_empty() {
            let mut n = 0;
            for b in bufs {
                n += copy_into(b, &unread[n..]);
                if n == unread.len() {
                    break;
                }
            }
            unread.drain(..n);
            release_if_empty(&mut unread);
            return Some(Ok(n));
        }
        self.kept_end()
    }

    /// With no bytes kept: a kept error (taken), else a kept end-of-stream.
    fn kept_end(&self) -> Option<io::Result<usize>> {
        if let Some(errno) = self.error.take() {
            return Some(Err(io::Error::from_raw_os_error(errno)));
        }
        self.eof.get().then_some(Ok(0))
    }

    /// Keeps bytes after those already kept.
    pub(crate) fn push(&self, bytes: &[u8]) {
        self.unread.borrow_mut().extend_from_slice(bytes);
    }

    /// Puts bytes back in front of the next read (a read that got more
    /// than its caller could take).
    pub(crate) fn push_front(&self, bytes: &[u8]) {
        self.unread.borrow_mut().splice(0..0, bytes.iter().copied());
        self.wake_ready_reader();
    }

    /// Bytes kept now.
    pub(crate) fn len(&self) -> usize {
        self.unread.borrow().len()
    }

    /// Abandoned reads still in the kernel: until they land, what the fd
    /// holds next is not known.
    pub(crate) fn reads_in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// The error an abandoned read got, kept for the next read (not taken).
    pub(crate) fn pending_error(&self) -> Option<io::Error> {
        self.error.get().map(io::Error::from_raw_os_error)
    }
}

/// Frees an emptied buffer's storage beyond a small reserve, so a socket
/// does not hold the high-water mark of a burst for its lifetime.
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
                if kept.error.get().is_none() {
                    kept.error.set(Some(errno));
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
        let waiters = std::mem::take(&mut *kept.waiters.borrow_mut());
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
    fn served_bytes_come_in_order_and_an_emptied_buffer_shrinks() {
        let kept = Kept::default();
        kept.push(&[7u8; 100_000]);
        kept.push_front(b"head");
        let mut a = Vec::with_capacity(4);
        assert_eq!(kept.serve(&mut a).unwrap().unwrap(), 4);
        assert_eq!(a, b"head");
        let mut b = Vec::with_capacity(200_000);
        assert_eq!(kept.serve(&mut b).unwrap().unwrap(), 100_000);
        assert!(b.iter().all(|&x| x == 7));
        assert!(kept.unread.borrow().capacity() <= 4096, "high-water kept");
        assert!(kept.serve(&mut b).is_none(), "nothing kept, no EOF");
        kept.eof.set(true);
        assert_eq!(kept.serve(&mut b).unwrap().unwrap(), 0);
    }

    #[test]
    fn a_kept_error_comes_after_the_kept_bytes_once() {
        let kept = Kept::default();
        kept.push(b"ab");
        kept.error.set(Some(libc::ECONNRESET));
        let mut a = Vec::with_capacity(8);
        assert_eq!(kept.serve(&mut a).unwrap().unwrap(), 2);
        let e = kept.serve(&mut a).unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert!(kept.serve(&mut a).is_none(), "the error is reported once");
    }
}
