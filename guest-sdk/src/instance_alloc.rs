//! The allocator of a guest that serves one evaluation and is then discarded.
//!
//! The provkey host gives every evaluation a fresh instance and drops the whole
//! linear memory afterwards, so a general-purpose allocator's bookkeeping (free
//! lists, coalescing) is work nobody needs. This one bumps a pointer through memory
//! it grows itself; freeing or growing the most recent block is done in place,
//! anything else freed stays allocated until the instance goes away. Memory is
//! still bounded: the host's per-guest limit refuses a `memory.grow` past it, which
//! surfaces as an allocation failure (a trap the host reports as the memory limit).
//!
//! Feature `instance-allocator` (on by default) installs it on `wasm32` only;
//! native builds (tests, the native benchmark floor) keep the system allocator.

#![allow(unsafe_code, reason = "a global allocator is unsafe by definition")]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

const PAGE: usize = 65_536;
/// Growth is geometric (each step as large as everything grown so far) up to this
/// step, so that small allocations do not call `memory.grow` one page at a time
/// and a small guest stays small.
const MAX_GROW_STEP: usize = 4 << 20;

/// Grows memory by a number of 64 KiB pages; returns the new region's address.
pub type Grow = fn(pages: usize) -> Option<usize>;

/// A bump allocator over `memory.grow`d pages. Wasm guests are single-threaded.
pub struct InstanceAllocator {
    next: Cell<usize>,
    end: Cell<usize>,
    grown: Cell<usize>,
    grow: Grow,
}

// SAFETY: a `wasm32` component instance runs on one thread; the allocator is never
// shared across threads.
unsafe impl Sync for InstanceAllocator {}

impl InstanceAllocator {
    /// An allocator over this instance's linear memory that has not grown it yet.
    pub const fn new() -> Self {
        Self::with_grow(grow_linear_memory)
    }

    /// An allocator over the memory that `grow` hands out (tests use an arena).
    pub const fn with_grow(grow: Grow) -> Self {
        InstanceAllocator {
            next: Cell::new(0),
            end: Cell::new(0),
            grown: Cell::new(0),
            grow,
        }
    }

    /// Makes room for `size` bytes aligned to `align`; returns the block's start.
    fn reserve(&self, size: usize, align: usize) -> Option<usize> {
        let start = self.next.get().checked_add(align - 1)? & !(align - 1);
        let end = start.checked_add(size)?;
        if end <= self.end.get() && self.end.get() != 0 {
            self.next.set(end);
            return Some(start);
        }
        let step = self.grown.get().clamp(PAGE, MAX_GROW_STEP);
        let want = size.checked_add(align)?.max(step);
        let pages = want.div_ceil(PAGE);
        let region = (self.grow)(pages)?;
        self.grown
            .set(self.grown.get().saturating_add(pages.saturating_mul(PAGE)));
        let region_end = region.checked_add(pages.checked_mul(PAGE)?)?;
        // Someone else (wasi-libc's own `malloc`) may have grown memory in between:
        // continue in place only when the new pages follow ours.
        let base = if region == self.end.get() && self.end.get() != 0 {
            self.next.get()
        } else {
            region
        };
        self.end.set(region_end);
        let start = base.checked_add(align - 1)? & !(align - 1);
        let end = start.checked_add(size)?;
        if end > region_end {
            return None;
        }
        self.next.set(end);
        Some(start)
    }
}

impl Default for InstanceAllocator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_arch = "wasm32")]
fn grow_linear_memory(pages: usize) -> Option<usize> {
    let previous = core::arch::wasm32::memory_grow(0, pages);
    (previous != usize::MAX)
        .then_some(previous)?
        .checked_mul(PAGE)
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_linear_memory(_pages: usize) -> Option<usize> {
    None
}

// SAFETY: every block handed out lies in pages this allocator grew and never hands
// out twice: `next` only moves back over the most recent block when it is freed.
unsafe impl GlobalAlloc for InstanceAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.reserve(layout.size(), layout.align()) {
            Some(start) => start as *mut u8,
            None => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let start = ptr as usize;
        if start.checked_add(layout.size()) == Some(self.next.get()) {
            self.next.set(start);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        let old_end = start.checked_add(layout.size());
        // The most recent block grows or shrinks in place while it fits.
        if old_end == Some(self.next.get())
            && let Some(new_end) = start.checked_add(new_size)
            && new_end <= self.end.get()
        {
            self.next.set(new_end);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the caller guarantees `layout` describes `ptr`; the new block is
        // fresh and at least `layout.size()` long, so the copy stays in bounds.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
            }
            new
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};
    use std::sync::Mutex;

    use super::{InstanceAllocator, PAGE};

    /// A fake linear memory: 64 MiB of real memory handed out page by page, with
    /// an optional gap before the next region (another allocator growing memory).
    struct Arena {
        base: usize,
        used: usize,
        gap_pages: usize,
        limit_pages: usize,
    }

    static ARENA: Mutex<Option<Arena>> = Mutex::new(None);
    static TEST_LOCK: Mutex<()> = Mutex::new(());

    fn arena_grow(pages: usize) -> Option<usize> {
        let mut guard = ARENA.lock().unwrap();
        let arena = guard.as_mut()?;
        let start = arena.used + arena.gap_pages;
        if start + pages > arena.limit_pages {
            return None;
        }
        arena.used = start + pages;
        Some(arena.base + start * PAGE)
    }

    fn with_arena(limit_pages: usize, test: impl FnOnce(&InstanceAllocator)) {
        let _serial = TEST_LOCK.lock().unwrap();
        let memory = vec![0u8; 1024 * PAGE + PAGE];
        let base = (memory.as_ptr() as usize).next_multiple_of(PAGE);
        *ARENA.lock().unwrap() = Some(Arena {
            base,
            used: 0,
            gap_pages: 0,
            limit_pages,
        });
        test(&InstanceAllocator::with_grow(arena_grow));
        *ARENA.lock().unwrap() = None;
        drop(memory);
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_and_never_overlap() {
        with_arena(1024, |a| {
            let mut blocks = Vec::new();
            for i in 0..2_000usize {
                let l = layout(1 + i % 97, 1 << (i % 5));
                let p = unsafe { a.alloc(l) };
                assert!(!p.is_null());
                assert_eq!(p as usize % l.align(), 0);
                unsafe { std::ptr::write_bytes(p, (i % 251) as u8, l.size()) };
                blocks.push((p, l, (i % 251) as u8));
            }
            for (p, l, byte) in blocks {
                let got = unsafe { std::slice::from_raw_parts(p, l.size()) };
                assert!(got.iter().all(|b| *b == byte), "a block was overwritten");
            }
        });
    }

    #[test]
    fn the_last_block_is_freed_and_grown_in_place() {
        with_arena(1024, |a| {
            let first = unsafe { a.alloc(layout(16, 8)) };
            let last = unsafe { a.alloc(layout(32, 8)) };
            unsafe { a.dealloc(last, layout(32, 8)) };
            let again = unsafe { a.alloc(layout(32, 8)) };
            assert_eq!(
                again, last,
                "freeing the last block makes its room reusable"
            );
            let grown = unsafe { a.realloc(again, layout(32, 8), 4096) };
            assert_eq!(grown, again, "the last block grows in place");
            unsafe { std::ptr::write_bytes(first, 7, 16) };
            let moved = unsafe { a.realloc(first, layout(16, 8), 64) };
            assert_ne!(moved, first, "an older block moves to grow");
            let kept = unsafe { std::slice::from_raw_parts(moved, 16) };
            assert!(kept.iter().all(|b| *b == 7), "realloc keeps the contents");
        });
    }

    #[test]
    fn large_blocks_grow_memory_and_exhaustion_is_a_null_pointer() {
        with_arena(200, |a| {
            let big = unsafe { a.alloc(layout(10 << 20, 16)) };
            assert!(!big.is_null());
            unsafe { std::ptr::write_bytes(big, 1, 10 << 20) };
            let too_big = unsafe { a.alloc(layout(20 << 20, 16)) };
            assert!(too_big.is_null(), "past the limit, allocation fails");
            let small = unsafe { a.alloc(layout(8, 8)) };
            assert!(!small.is_null(), "what still fits is still served");
        });
    }

    #[test]
    fn memory_grown_by_someone_else_is_never_handed_out() {
        with_arena(1024, |a| {
            let first = unsafe { a.alloc(layout(4 << 20, 8)) };
            // Another allocator takes two pages before our next growth.
            ARENA.lock().unwrap().as_mut().unwrap().gap_pages = 2;
            let base = ARENA.lock().unwrap().as_ref().unwrap().base;
            let used_before = ARENA.lock().unwrap().as_ref().unwrap().used;
            let second = unsafe { a.alloc(layout(4 << 20, 8)) };
            let foreign = base + used_before * PAGE..base + (used_before + 2) * PAGE;
            assert!(!first.is_null() && !second.is_null());
            assert!(!foreign.contains(&(second as usize)));
            assert!(second as usize >= foreign.end);
        });
    }
}
