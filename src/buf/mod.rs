//! Owned buffers the kernel may use while an operation is in flight:
//! [`IoBuf`], [`IoBufMut`] and [`Slice`]; and [`kept`], the bytes that reads
//! abandoned in flight received.
//!
//! A bottom layer, beside `sys`: the driver's ops own these buffers, and
//! `io`, `net`, `fs` and `process` build on them. The public paths are
//! `ringloop::io::{IoBuf, IoBufMut, Slice}` (re-exported by `crate::io`).

pub(crate) mod kept;
mod read_buf;
mod slice;

pub use read_buf::ReadBuf;
pub use slice::Slice;

/// A buffer the kernel may read from while an operation is in flight.
///
/// # Safety
///
/// [`IoBuf::stable_ptr`] must return a pointer to `bytes_total()` bytes that
/// stays valid and at the same address while the buffer lives, *including
/// after the buffer value is moved* (heap storage, or `'static` data), and the
/// first `bytes_init()` of them must be initialised.
pub unsafe trait IoBuf: 'static {
    /// Pointer to the start of the storage.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes (what a write sends).
    fn bytes_init(&self) -> usize;
    /// Total capacity of the storage (what a read may fill).
    fn bytes_total(&self) -> usize;

    /// The initialised bytes.
    fn as_init_slice(&self) -> &[u8] {
        // SAFETY: the trait's contract: `bytes_init()` bytes at
        // `stable_ptr()` are initialised and live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.stable_ptr(), self.bytes_init()) }
    }

    /// A [`Slice`] of the buffer (`range` within `bytes_total()`).
    ///
    /// # Panics
    ///
    /// If `range` is out of `0..bytes_total()`.
    fn slice(self, range: impl std::ops::RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        Slice::new(self, range)
    }
}

/// The first `n` bytes of `buf`'s storage (clamped to `bytes_total()`).
///
/// # Safety
///
/// Those bytes must be initialised: `n` is a count the kernel reported
/// writing into this storage.
pub(crate) unsafe fn kernel_written<B: IoBuf>(buf: &B, n: usize) -> &[u8] {
    let n = n.min(buf.bytes_total());
    // SAFETY: `n` bytes at `stable_ptr()` lie in the storage (clamped) and
    // are initialised (the caller's contract).
    unsafe { std::slice::from_raw_parts(buf.stable_ptr(), n) }
}

/// Copies as much of `src` as fits into `buf`'s storage from its start and
/// marks it initialised; returns the number of bytes copied.
pub(crate) fn copy_into<B: IoBufMut>(buf: &mut B, src: &[u8]) -> usize {
    let n = src.len().min(buf.bytes_total());
    // SAFETY: `buf`'s storage has `bytes_total() >= n` writable bytes at
    // `stable_mut_ptr()`, which cannot overlap `src` (a shared borrow of
    // other memory); the `n` bytes are then initialised.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), buf.stable_mut_ptr(), n);
        buf.set_init(n);
    }
    n
}

/// A buffer the kernel may write into while an operation is in flight.
///
/// # Safety
///
/// As for [`IoBuf`], and [`IoBufMut::stable_mut_ptr`] must point at the same
/// `bytes_total()` bytes, writable.
pub unsafe trait IoBufMut: IoBuf {
    /// Mutable pointer to the start of the storage.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Records that the first `pos` bytes are initialised (after a read).
    ///
    /// # Safety
    ///
    /// The first `pos` bytes, `pos <= bytes_total()`, must be initialised.
    unsafe fn set_init(&mut self, pos: usize);
}

// SAFETY: a Vec's heap buffer does not move when the Vec value moves; the
// first `len` bytes are initialised and `capacity` bytes are allocated.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as for `IoBuf for Vec<u8>`; `as_mut_ptr` points at the same buffer.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if self.len() < pos {
            // SAFETY: the caller guarantees the first `pos <= capacity` bytes
            // are initialised.
            unsafe { self.set_len(pos) };
        }
    }
}

// SAFETY: a boxed slice's heap storage does not move with the box; it is
// fully initialised.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: as for `IoBuf for Box<[u8]>`.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

// SAFETY: a String's heap buffer does not move with the String; its `len`
// bytes are initialised. Only reads from it are allowed (no `IoBufMut`, since
// the kernel could write invalid UTF-8).
unsafe impl IoBuf for String {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: 'static data never moves or goes away.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: 'static data never moves or goes away.
unsafe impl IoBuf for &'static str {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}
