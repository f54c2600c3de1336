//! [`ReadBuf`]: borrowed, possibly uninitialised memory that a poll-based
//! read fills from the front (the readiness path's buffer).

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;

/// A borrowed buffer for a poll-based read: the caller's memory, possibly
/// uninitialised, filled from the front. What a read put in is
/// [`ReadBuf::filled`]; [`ReadBuf::remaining`] is the room left.
///
/// The buffer never writes an uninitialised byte into the memory it
/// borrows: a `ReadBuf` made from an initialised `&mut [u8]` leaves it
/// initialised, so the caller may read all of it afterwards. (tokio's
/// `ReadBuf` and hyper's `ReadBufCursor` make the same promise.)
///
/// # Examples
///
/// ```
/// use std::mem::MaybeUninit;
/// use ringloop::io::ReadBuf;
///
/// let mut storage = [MaybeUninit::<u8>::uninit(); 8];
/// let mut buf = ReadBuf::uninit(&mut storage);
/// assert_eq!(buf.put_slice(b"hello, world"), 8); // truncated to the room
/// assert_eq!(buf.filled(), b"hello, w");
/// assert_eq!(buf.remaining(), 0);
/// ```
pub struct ReadBuf<'a> {
    raw: &'a mut [MaybeUninit<u8>],
    filled: usize,
}

impl<'a> ReadBuf<'a> {
    /// A buffer over initialised memory.
    pub fn new(raw: &'a mut [u8]) -> ReadBuf<'a> {
        let len = raw.len();
        let ptr = raw.as_mut_ptr().cast::<MaybeUninit<u8>>();
        // SAFETY: `MaybeUninit<u8>` has `u8`'s layout; the slice borrows
        // `raw` for `'a`; and a `ReadBuf` never writes an uninitialised
        // byte (the type's invariant), so `raw` stays initialised.
        let raw = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        ReadBuf { raw, filled: 0 }
    }

    /// A buffer over memory that may be uninitialised.
    pub fn uninit(raw: &'a mut [MaybeUninit<u8>]) -> ReadBuf<'a> {
        ReadBuf { raw, filled: 0 }
    }

    /// The bytes filled so far.
    pub fn filled(&self) -> &[u8] {
        let filled = &self.raw[..self.filled];
        // SAFETY: the first `filled` bytes were initialised (by
        // `put_slice`, or by a writer that vouched for them through
        // `assume_filled`).
        unsafe { std::slice::from_raw_parts(filled.as_ptr().cast::<u8>(), filled.len()) }
    }

    /// The room left.
    pub fn remaining(&self) -> usize {
        self.raw.len() - self.filled
    }

    /// The whole buffer's size.
    pub fn capacity(&self) -> usize {
        self.raw.len()
    }

    /// Appends as much of `src` as fits; returns how much did.
    pub fn put_slice(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.remaining());
        for (d, s) in self.raw[self.filled..].iter_mut().zip(&src[..n]) {
            d.write(*s);
        }
        self.filled += n;
        n
    }

    /// The unfilled part, for a writer (a syscall) to fill; then
    /// [`ReadBuf::assume_filled`] says how much it did.
    ///
    /// # Safety
    ///
    /// The caller must not write an uninitialised byte into it (the memory
    /// may belong to a `&mut [u8]` that must stay initialised).
    pub unsafe fn unfilled_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        &mut self.raw[self.filled..]
    }

    /// Marks `n` more bytes after the filled ones as filled.
    ///
    /// # Safety
    ///
    /// Those `n` bytes must be initialised, and `n <= remaining()`.
    pub unsafe fn assume_filled(&mut self, n: usize) {
        debug_assert!(n <= self.remaining());
        self.filled += n;
    }

    /// Fills the room with one non-blocking `recv(2)` from `fd` (the
    /// readiness path's read); `Ok(n)`: `n` bytes more are filled.
    pub(crate) fn recv_nowait(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = crate::sys::nowait::recv(fd, &mut self.raw[self.filled..])?;
        // `recv` initialised the `n` bytes it reports, at most the room.
        self.filled += n.min(self.remaining());
        Ok(n)
    }
}

impl fmt::Debug for ReadBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadBuf")
            .field("filled", &self.filled)
            .field("capacity", &self.raw.len())
            .finish()
    }
}
