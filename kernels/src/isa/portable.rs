//! The portable path: `wide::f32x8`, which compiles to whatever the build's target features
//! allow (two SSE2 halves on a default x86-64 build, one AVX register with
//! `-C target-cpu=native`).

use super::simd::{Simd, WithSimd};
use wide::f32x8;

/// Token for the portable path; available on every CPU.
#[derive(Clone, Copy, Debug)]
pub struct Portable(());

impl Portable {
    pub(crate) fn new() -> Self {
        Portable(())
    }
}

// SAFETY: uses only baseline instructions of the build target.
unsafe impl Simd for Portable {
    type V = f32x8;
    const LANES: usize = 8;
    // 4 x 8: eight accumulators, sixteen SSE registers with the split halves.
    const GEMM_MR: usize = 4;
    const GEMM_NR_VECS: usize = 1;

    #[inline(always)]
    fn vectorize<Op: WithSimd>(self, op: Op) -> Op::Output {
        op.with_simd(self)
    }
    #[inline(always)]
    fn splat(self, x: f32) -> f32x8 {
        f32x8::splat(x)
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32x8 {
        // SAFETY: caller guarantees 8 readable f32; read_unaligned has no alignment need.
        unsafe { core::ptr::read_unaligned(p as *const f32x8) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> f32x8 {
        let mut tmp = [0.0f32; 8];
        // SAFETY: caller guarantees n < 8 readable f32.
        unsafe { core::ptr::copy_nonoverlapping(p, tmp.as_mut_ptr(), n) };
        f32x8::from(tmp)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32x8) {
        // SAFETY: caller guarantees 8 writable f32.
        unsafe { core::ptr::write_unaligned(p as *mut f32x8, v) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: f32x8) {
        let tmp = v.to_array();
        // SAFETY: caller guarantees n < 8 writable f32.
        unsafe { core::ptr::copy_nonoverlapping(tmp.as_ptr(), p, n) };
    }
    #[inline(always)]
    fn add(self, a: f32x8, b: f32x8) -> f32x8 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32x8, b: f32x8) -> f32x8 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32x8, b: f32x8) -> f32x8 {
        a * b
    }
    #[inline(always)]
    fn fma(self, a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn max(self, a: f32x8, b: f32x8) -> f32x8 {
        a.fast_max(b)
    }
    #[inline(always)]
    fn min(self, a: f32x8, b: f32x8) -> f32x8 {
        a.fast_min(b)
    }
    #[inline(always)]
    fn hsum(self, v: f32x8) -> f32 {
        v.reduce_add()
    }
    #[inline(always)]
    fn hmax(self, v: f32x8) -> f32 {
        v.to_array().into_iter().fold(f32::NEG_INFINITY, f32::max)
    }
}
