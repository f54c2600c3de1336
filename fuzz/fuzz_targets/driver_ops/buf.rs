//! [`Buf`]: a `Vec<u8>` I/O buffer that counts its allocations and drops,
//! and whose storage outlives it, canary-filled, until [`check`].

use std::cell::{Cell, RefCell};
use std::ops::Deref;

use ringloop::io::{IoBuf, IoBufMut};

const CANARY: u8 = 0xA5;

thread_local! {
    static CREATED: Cell<u64> = const { Cell::new(0) };
    static DROPPED: Cell<u64> = const { Cell::new(0) };
    /// Storage of dropped buffers, canary-filled, kept until `check`.
    static GRAVEYARD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A drop-counting buffer.
#[derive(Debug)]
pub struct Buf {
    /// Set while alive; taken by `Drop`.
    vec: Option<Vec<u8>>,
}

impl Buf {
    pub fn from_vec(vec: Vec<u8>) -> Buf {
        CREATED.with(|c| c.set(c.get() + 1));
        Buf { vec: Some(vec) }
    }

    pub fn with_capacity(n: usize) -> Buf {
        Buf::from_vec(Vec::with_capacity(n))
    }

    fn vec(&self) -> &Vec<u8> {
        self.vec.as_ref().expect("a live Buf")
    }
}

impl Deref for Buf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.vec()
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let mut vec = self.vec.take().expect("a Buf dropped twice");
        DROPPED.with(|c| c.set(c.get() + 1));
        // Kept, canary-filled: a kernel write into it after this point (the
        // op was still in flight) shows in `check`. No reallocation: the
        // resize stays within the capacity.
        let cap = vec.capacity();
        vec.clear();
        vec.resize(cap, CANARY);
        GRAVEYARD.with(|g| g.borrow_mut().push(vec));
    }
}

// SAFETY: the storage is the Vec's heap buffer, which does not move when
// the `Buf` moves and lives until the `Buf` is dropped (longer, in fact: it
// goes to the graveyard); its first `len` bytes are initialised and
// `capacity` bytes are allocated.
unsafe impl IoBuf for Buf {
    fn stable_ptr(&self) -> *const u8 {
        self.vec().as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.vec().len()
    }

    fn bytes_total(&self) -> usize {
        self.vec().capacity()
    }
}

// SAFETY: as for `IoBuf`; `as_mut_ptr` points at the same heap buffer.
unsafe impl IoBufMut for Buf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.vec.as_mut().expect("a live Buf").as_mut_ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        let vec = self.vec.as_mut().expect("a live Buf");
        if vec.len() < pos {
            // SAFETY: the caller guarantees the first `pos <= capacity`
            // bytes are initialised.
            unsafe { vec.set_len(pos) };
        }
    }
}

/// Forgets the buffers of the previous input.
pub fn reset() {
    CREATED.with(|c| c.set(0));
    DROPPED.with(|c| c.set(0));
    GRAVEYARD.with(|g| g.borrow_mut().clear());
}

/// Once nothing can touch the buffers any more (the loop was dropped):
/// every buffer was dropped exactly once, and none was written after.
pub fn check() {
    let (created, dropped) = (CREATED.with(Cell::get), DROPPED.with(Cell::get));
    assert_eq!(created, dropped, "buffers created vs dropped");
    GRAVEYARD.with(|g| {
        for (i, v) in g.borrow().iter().enumerate() {
            if let Some(at) = v.iter().position(|&b| b != CANARY) {
                panic!(
                    "buffer {i} ({} bytes) written at {at} after it was dropped",
                    v.len()
                );
            }
        }
    });
}
