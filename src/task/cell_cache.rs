//! A per-thread cache of freed task allocations, by layout.
//!
//! Spawning is one allocation; a server spawns and finishes tasks of the
//! same few types all day. Freed task cells go to a small per-thread free
//! list for their layout and are reused by the next spawn of that layout,
//! instead of round-tripping through `malloc`/`free` (whose consolidation
//! and heap trimming showed up as ~20% of `spawn_join`). Bounded: at most
//! [`MAX_BINS`] layouts and [`MAX_BYTES`] of cached cells per thread; the
//! rest goes back to the global allocator, as does everything when the
//! thread exits. The cost is that memory: a thread that once finished a
//! burst of tasks keeps up to 4 MiB of cells for the next burst.
//!
//! Blocks come from and return to the global allocator with the same
//! layout, so a cell freed on another thread (the last reference to a task
//! may be released anywhere) simply joins that thread's cache.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::RefCell;
use std::ptr::NonNull;

const MAX_BINS: usize = 8;
/// Bytes of cached cells per thread, all layouts together.
const MAX_BYTES: usize = 4 << 20;

struct Bin {
    layout: Layout,
    free: Vec<NonNull<u8>>,
}

#[derive(Default)]
struct Cache {
    bins: Vec<Bin>,
    /// Bytes held in `bins`.
    bytes: usize,
}

impl Drop for Cache {
    fn drop(&mut self) {
        for bin in self.bins.drain(..) {
            for p in bin.free {
                // SAFETY: every cached block was allocated by `alloc` with
                // this layout and is owned by the cache alone.
                unsafe { dealloc(p.as_ptr(), bin.layout) };
            }
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// A block for `layout` (non-zero size): a cached one, or a new one.
pub(super) fn allocate(layout: Layout) -> NonNull<u8> {
    debug_assert!(layout.size() > 0);
    let cached = CACHE
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            let p = c
                .bins
                .iter_mut()
                .find(|b| b.layout == layout)
                .and_then(|b| b.free.pop())?;
            c.bytes -= layout.size();
            Some(p)
        })
        .ok()
        .flatten();
    if let Some(p) = cached {
        return p;
    }
    // SAFETY: `layout` has a non-zero size (a task cell holds its header).
    let p = unsafe { alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Returns a block from [`allocate`] with the same `layout`.
///
/// # Safety
///
/// `p` came from [`allocate`] with `layout`, nothing uses it any more, and
/// whatever it held was dropped.
pub(super) unsafe fn free(p: NonNull<u8>, layout: Layout) {
    let kept = CACHE
        .try_with(|c| {
            let Ok(mut c) = c.try_borrow_mut() else {
                return false;
            };
            let idx = match c.bins.iter().position(|b| b.layout == layout) {
                Some(i) => i,
                None if c.bins.len() < MAX_BINS => {
                    c.bins.push(Bin {
                        layout,
                        free: Vec::new(),
                    });
                    c.bins.len() - 1
                }
                None => return false,
            };
            if c.bytes + layout.size() > MAX_BYTES {
                return false;
            }
            c.bytes += layout.size();
            c.bins[idx].free.push(p);
            true
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: per the contract, `p` was allocated with `layout` and is
        // unused.
        unsafe { dealloc(p.as_ptr(), layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached_bytes() -> usize {
        CACHE.with(|c| c.borrow().bytes)
    }

    #[test]
    fn freed_cells_are_reused_by_layout_and_capped_in_bytes() {
        let small = Layout::from_size_align(96, 8).unwrap();
        let big = Layout::from_size_align(4096, 64).unwrap();
        let before = cached_bytes();
        let a = allocate(small);
        // SAFETY: `a` came from `allocate(small)` and holds nothing.
        unsafe { free(a, small) };
        assert_eq!(cached_bytes(), before + 96);
        // The same layout gets the same block back; another does not.
        let b = allocate(big);
        assert_ne!(b, a);
        assert_eq!(b.as_ptr() as usize % 64, 0, "alignment kept");
        let c = allocate(small);
        assert_eq!(c, a);
        assert_eq!(cached_bytes(), before);
        // SAFETY: as above, each with its own layout.
        unsafe {
            free(c, small);
            free(b, big);
        }
        // Far more than the cap: the excess goes back to the allocator.
        let blocks: Vec<_> = (0..(MAX_BYTES / 4096 + 100))
            .map(|_| allocate(big))
            .collect();
        for p in blocks {
            // SAFETY: each came from `allocate(big)`.
            unsafe { free(p, big) };
        }
        assert!(cached_bytes() <= MAX_BYTES);
    }

    #[test]
    fn a_cell_freed_on_another_thread_joins_that_threads_cache() {
        let layout = Layout::from_size_align(200, 16).unwrap();
        let p = allocate(layout);
        let addr = p.as_ptr() as usize;
        let reused = std::thread::spawn(move || {
            let p = NonNull::new(addr as *mut u8).unwrap();
            // SAFETY: allocated above with `layout`, unused.
            unsafe { free(p, layout) };
            allocate(layout).as_ptr() as usize
        })
        .join()
        .unwrap();
        assert_eq!(reused, addr);
        // The block now belongs to nobody's cache: give it back.
        // SAFETY: allocated with `layout` by the global allocator.
        unsafe { dealloc(reused as *mut u8, layout) };
    }
}
