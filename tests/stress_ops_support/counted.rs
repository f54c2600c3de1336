//! [`CountedBuf`]: an I/O buffer that counts its allocations and drops, and
//! catches a double drop directly.
//!
//! Every buffer gets an id registered in a global live set when it is
//! made; its `Drop` removes the id. A buffer dropped twice (a bitwise copy
//! of one already dropped, the way a use-after-free in the driver would
//! show) finds its id gone: that is counted as a double drop and its storage
//! is leaked instead of freed a second time, so the test reports it instead
//! of crashing in the allocator.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use ringloop::io::{IoBuf, IoBufMut};

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static DROPS: AtomicUsize = AtomicUsize::new(0);
static DOUBLE_DROPS: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// A `BTreeSet`, not a `HashSet`: its nodes are reached through pointers to
/// their starts, so valgrind counts the set as reachable, where a hash
/// table's pointer into the middle of its allocation reads as "possibly
/// lost" (the loop-drop test also runs under valgrind).
static LIVE: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());

/// A snapshot of the global counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub allocs: usize,
    pub drops: usize,
    pub double_drops: usize,
    /// Buffers alive now (registered, not yet dropped).
    pub live: usize,
}

impl Counts {
    pub fn now() -> Counts {
        let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).len();
        Counts {
            allocs: ALLOCS.load(Ordering::SeqCst),
            drops: DROPS.load(Ordering::SeqCst),
            double_drops: DOUBLE_DROPS.load(Ordering::SeqCst),
            live,
        }
    }

    /// Allocations and drops since `earlier`.
    pub fn since(self, earlier: Counts) -> (usize, usize) {
        (self.allocs - earlier.allocs, self.drops - earlier.drops)
    }
}

/// A `Vec<u8>` newtype that counts itself.
#[derive(Debug)]
pub struct CountedBuf {
    vec: Vec<u8>,
    id: u64,
}

impl CountedBuf {
    /// An empty buffer with room for `cap` bytes (what a read fills).
    pub fn with_capacity(cap: usize) -> CountedBuf {
        CountedBuf::from_vec(Vec::with_capacity(cap))
    }

    /// A buffer holding `bytes` (what a write sends).
    pub fn from_vec(vec: Vec<u8>) -> CountedBuf {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        CountedBuf { vec, id }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.vec
    }
}

impl Drop for CountedBuf {
    fn drop(&mut self) {
        let was_live = LIVE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        if was_live {
            DROPS.fetch_add(1, Ordering::SeqCst);
        } else {
            DOUBLE_DROPS.fetch_add(1, Ordering::SeqCst);
            eprintln!("CountedBuf {} dropped twice", self.id);
            // The first drop freed this storage: never free it again.
            std::mem::forget(std::mem::take(&mut self.vec));
        }
    }
}

// SAFETY: delegates to `Vec<u8>`, whose heap storage does not move when the
// `CountedBuf` moves; its first `len` bytes are initialised and `capacity`
// bytes are allocated.
unsafe impl IoBuf for CountedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.vec.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.vec.len()
    }
    fn bytes_total(&self) -> usize {
        self.vec.capacity()
    }
}

// SAFETY: as for `IoBuf`; `as_mut_ptr` points at the same storage.
unsafe impl IoBufMut for CountedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.vec.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: the caller guarantees the first `pos` bytes are
        // initialised; `Vec`'s `set_init` only grows `len` within capacity.
        unsafe { self.vec.set_init(pos) };
    }
}
