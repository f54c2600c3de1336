//! [`Slice`]: a sub-range of an owned buffer, itself an owned buffer.

use std::ops::{Bound, RangeBounds};

use super::{IoBuf, IoBufMut};

/// A range of an owned buffer, lent to the kernel in its place (to write the
/// rest of a buffer, or read into its unfilled part).
///
/// A read into a slice that starts beyond the buffer's initialised bytes
/// fills the storage but cannot mark it initialised (that would expose the
/// gap before it); read into slices that continue the initialised part.
///
/// # Examples
///
/// ```
/// use ringloop::io::{IoBuf, Slice};
/// let s: Slice<Vec<u8>> = b"hello world".to_vec().slice(6..);
/// assert_eq!(s.bytes_init(), 5);
/// assert_eq!(s.into_inner(), b"hello world");
/// ```
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B: IoBuf> Slice<B> {
    pub(crate) fn new(buf: B, range: impl RangeBounds<usize>) -> Slice<B> {
        let total = buf.bytes_total();
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => total,
        };
        assert!(
            begin <= end && end <= total,
            "slice {begin}..{end} out of 0..{total}"
        );
        Slice { buf, begin, end }
    }

    /// The start of the range in the underlying buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// The end of the range in the underlying buffer.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// A reference to the underlying buffer.
    pub fn get_ref(&self) -> &B {
        &self.buf
    }
}

// SAFETY: points into `buf`'s stable storage at `begin`; `begin..end` lies
// within `bytes_total()` (checked at construction), and the initialised
// prefix is clamped to the underlying buffer's.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr().wrapping_add(self.begin)
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: as for `IoBuf`; `set_init` forwards the offset into the buffer.
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr().wrapping_add(self.begin)
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // Only a slice that continues the buffer's initialised prefix may
        // extend it: otherwise the bytes between that prefix and `begin`
        // would count as initialised without ever being written.
        if self.begin <= self.buf.bytes_init() {
            // SAFETY: the caller initialised `pos` bytes from `begin`, and
            // every byte before `begin` is initialised (checked above).
            unsafe { self.buf.set_init(self.begin + pos) };
        }
    }
}
