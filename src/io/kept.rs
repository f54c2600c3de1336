//! [`Kept`]: the bytes that reads abandoned in flight received, served to
//! the next read (DESIGN.md decision 4), shared by sockets and pipes.
//!
//! A read whose future is dropped stays in the kernel until its CQE; what it
//! received then lands here ([`ReadGuard::keep_unread`]). A new read first
//! waits until no abandoned read is still in the kernel (its bytes come
//! before any the new read would get), then takes the kept bytes before
//! asking the kernel for more.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Poll, Waker};

use super::{IoBufMut, copy_into};

/// Kept bytes and the count of reads in flight on one fd.
#[derive(Default)]
pub(crate) struct Kept {
    /// Bytes abandoned reads received, in stream order.
    unread: RefCell<Vec<u8>>,
    /// An abandoned read saw end-of-stream.
    eof: Cell<bool>,
    /// Reads in the kernel (only abandoned ones can overlap a new read).
    in_flight: Cell<usize>,
    /// The read waiting in [`Kept::landed`].
    waker: Cell<Option<Waker>>,
}

impl Kept {
    /// Waits until no abandoned read is still in the kernel.
    pub(crate) async fn landed(&self) {
        poll_fn(|cx| {
            if self.in_flight.get() == 0 {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }

    /// Serves a read from what is kept: `Some(n)` bytes copied into `buf`,
    /// `Some(0)` at a kept end-of-stream, `None` when the kernel must be
    /// asked.
    pub(crate) fn serve<B: IoBufMut>(&self, buf: &mut B) -> Option<usize> {
        let mut unread = self.unread.borrow_mut();
        if !unread.is_empty() {
            let n = copy_into(buf, &unread);
            unread.drain(..n);
            release_if_empty(&mut unread);
            return Some(n);
        }
        self.eof.get().then_some(0)
    }

    /// [`Kept::serve`] into several buffers in order.
    pub(crate) fn serve_vectored<B: IoBufMut>(&self, bufs: &mut [B]) -> Option<usize> {
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
            return Some(n);
        }
        self.eof.get().then_some(0)
    }

    /// Keeps bytes after those already kept.
    pub(crate) fn push(&self, bytes: &[u8]) {
        self.unread.borrow_mut().extend_from_slice(bytes);
    }

    /// Puts bytes back in front of the next read (a read that got more
    /// than its caller could take).
    pub(crate) fn push_front(&self, bytes: &[u8]) {
        self.unread.borrow_mut().splice(0..0, bytes.iter().copied());
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
}

impl<H: KeepsReads> Drop for ReadGuard<H> {
    fn drop(&mut self) {
        let kept = self.0.kept();
        kept.in_flight.set(kept.in_flight.get() - 1);
        if let Some(w) = kept.waker.take() {
            w.wake();
        }
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
        assert_eq!(kept.serve(&mut a), Some(4));
        assert_eq!(a, b"head");
        let mut b = Vec::with_capacity(200_000);
        assert_eq!(kept.serve(&mut b), Some(100_000));
        assert!(b.iter().all(|&x| x == 7));
        assert!(kept.unread.borrow().capacity() <= 4096, "high-water kept");
        assert_eq!(kept.serve(&mut b), None, "nothing kept, no EOF");
        kept.eof.set(true);
        assert_eq!(kept.serve(&mut b), Some(0));
    }
}
