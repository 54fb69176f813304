//! Reusable, 64-byte-aligned scratch buffers, one set per thread.
//!
//! Packing buffers are needed on every GEMM call; allocating them fresh would page-fault
//! through megabytes each time. Each thread keeps its buffers between calls. A buffer is
//! taken out of its slot while in use, so a re-entrant call (a nested kernel on the same
//! thread) simply gets a fresh one instead of aliasing.

use std::cell::Cell;

const ALIGN_F32: usize = 16; // 64 bytes

/// An owned f32 buffer whose usable part starts on a 64-byte boundary.
#[derive(Default)]
pub struct AlignedBuf {
    raw: Vec<f32>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` elements.
    pub fn zeroed(len: usize) -> Self {
        let mut b = AlignedBuf::default();
        b.resize(len);
        b
    }

    /// Makes the buffer `len` long, reusing the allocation when it is large enough.
    /// Contents are unspecified afterwards (callers overwrite what they use).
    pub fn resize(&mut self, len: usize) {
        if self.raw.len() < len + ALIGN_F32 {
            self.raw = vec![0.0; len + ALIGN_F32];
        }
        let misalign = (self.raw.as_ptr() as usize / 4) % ALIGN_F32;
        self.offset = (ALIGN_F32 - misalign) % ALIGN_F32;
        self.len = len;
    }

    #[inline(always)]
    pub fn as_slice(&self) -> &[f32] {
        &self.raw[self.offset..self.offset + self.len]
    }

    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.raw[self.offset..self.offset + self.len]
    }
}

/// Which per-thread buffer to use: one call may need several at once.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    PackA,
    PackB,
    Gemv,
    Im2col,
    Pool,
    Winograd,
    Direct,
    Reduce,
    Gather,
    Transpose,
    WinogradFilter,
    GemmTile,
    WinogradStage,
}

thread_local! {
    static SLOTS: [Cell<Option<AlignedBuf>>; 13] = const { [const { Cell::new(None) }; 13] };
}

/// This thread's buffer for one slot, borrowed until the guard drops.
///
/// A guard rather than a closure API: kernels call into it from `#[target_feature]` frames,
/// and a closure that fails to inline would be compiled without those features.
pub(crate) struct Scratch {
    slot: Slot,
    buf: AlignedBuf,
}

impl Scratch {
    /// Takes this thread's `slot` buffer, resized to `len` elements.
    #[inline(always)]
    pub(crate) fn take(slot: Slot, len: usize) -> Scratch {
        let mut buf = SLOTS.with(|s| s[slot as usize].take()).unwrap_or_default();
        buf.resize(len);
        Scratch { slot, buf }
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    #[inline(always)]
    fn deref(&self) -> &[f32] {
        self.buf.as_slice()
    }
}

impl std::ops::DerefMut for Scratch {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [f32] {
        self.buf.as_mut_slice()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let slot = self.slot as usize;
        // During thread teardown the slot may be gone; the buffer is then simply freed.
        let _ = SLOTS.try_with(|s| s[slot].set(Some(buf)));
    }
}

thread_local! {
    static INDICES: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
}

/// This thread's list of indices (a kernel's precomputed offsets), empty, borrowed until
/// the guard drops: reused call after call instead of allocated.
pub(crate) struct IndexScratch(Vec<usize>);

impl IndexScratch {
    pub(crate) fn take() -> IndexScratch {
        let mut v = INDICES.with(Cell::take);
        v.clear();
        IndexScratch(v)
    }
}

impl std::ops::Deref for IndexScratch {
    type Target = Vec<usize>;
    fn deref(&self) -> &Vec<usize> {
        &self.0
    }
}

impl std::ops::DerefMut for IndexScratch {
    fn deref_mut(&mut self) -> &mut Vec<usize> {
        &mut self.0
    }
}

impl Drop for IndexScratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        let _ = INDICES.try_with(|c| c.set(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_reused() {
        let mut b = AlignedBuf::zeroed(10);
        assert_eq!(b.as_slice().as_ptr() as usize % 64, 0);
        b.resize(5);
        assert_eq!(b.as_slice().len(), 5);
        let first = {
            let s = Scratch::take(Slot::PackA, 1000);
            assert_eq!(s.as_ptr() as usize % 64, 0);
            s.as_ptr()
        };
        let again = Scratch::take(Slot::PackA, 500);
        assert_eq!(again.as_ptr(), first, "the thread's buffer is reused");
        // A nested take of a slot in use gets a buffer of its own.
        let nested = Scratch::take(Slot::PackA, 500);
        assert_ne!(nested.as_ptr(), again.as_ptr());
    }
}
