//! Reusable, 64-byte-aligned scratch buffers, one set per thread.
//!
//! Packing buffers are needed on every GEMM call; allocating them fresh would page-fault
//! through megabytes each time. Each thread keeps its buffers between calls. A buffer is
//! taken out of its slot while in use, so a re-entrant call (rayon may run another job on a
//! waiting thread) simply gets a fresh one instead of aliasing.

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

    pub fn as_slice(&self) -> &[f32] {
        &self.raw[self.offset..self.offset + self.len]
    }

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
}

thread_local! {
    static SLOTS: [Cell<Option<AlignedBuf>>; 3] = const { [Cell::new(None), Cell::new(None), Cell::new(None)] };
}

/// Runs `f` with this thread's `slot` buffer resized to `len` elements.
pub(crate) fn with_scratch<R>(slot: Slot, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SLOTS.with(|s| s[slot as usize].take()).unwrap_or_default();
    buf.resize(len);
    let r = f(buf.as_mut_slice());
    SLOTS.with(|s| s[slot as usize].set(Some(buf)));
    r
}
