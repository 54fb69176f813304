//! A test-only stand-in for AVX-512's register layout: 16 lanes (`wide::f32x16`) and the
//! 12 x 32 GEMM tile, computed with portable instructions. It runs the exact blocking,
//! packing and edge handling of the AVX-512 path on any CPU, so that path's generic code is
//! tested even where no AVX-512 hardware (or emulator) is at hand. Only the intrinsics of
//! `avx512.rs` themselves are left to a CPU that has them.

use super::simd::{Simd, WithSimd};
use wide::f32x16;

/// Token for the emulated 16-lane layout (feature `reference`).
#[derive(Clone, Copy, Debug)]
pub struct Emulated512(());

impl Emulated512 {
    pub(crate) fn new() -> Self {
        Emulated512(())
    }
}

// SAFETY: portable instructions only.
unsafe impl Simd for Emulated512 {
    type V = f32x16;
    const LANES: usize = 16;
    const GEMM_MR: usize = 12;
    const GEMM_NR_VECS: usize = 2;

    #[inline(always)]
    fn vectorize<Op: WithSimd>(self, op: Op) -> Op::Output {
        op.with_simd(self)
    }
    #[inline(always)]
    fn splat(self, x: f32) -> f32x16 {
        f32x16::splat(x)
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32x16 {
        // SAFETY: caller guarantees 16 readable f32.
        unsafe { f32x16::from(core::ptr::read_unaligned(p as *const [f32; 16])) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> f32x16 {
        let mut tmp = [0.0f32; 16];
        // SAFETY: caller guarantees n < 16 readable f32.
        unsafe { core::ptr::copy_nonoverlapping(p, tmp.as_mut_ptr(), n) };
        f32x16::from(tmp)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32x16) {
        // SAFETY: caller guarantees 16 writable f32.
        unsafe { core::ptr::write_unaligned(p as *mut [f32; 16], v.to_array()) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: f32x16) {
        let tmp = v.to_array();
        // SAFETY: caller guarantees n < 16 writable f32.
        unsafe { core::ptr::copy_nonoverlapping(tmp.as_ptr(), p, n) };
    }
    #[inline(always)]
    fn add(self, a: f32x16, b: f32x16) -> f32x16 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32x16, b: f32x16) -> f32x16 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32x16, b: f32x16) -> f32x16 {
        a * b
    }
    #[inline(always)]
    fn fma(self, a: f32x16, b: f32x16, c: f32x16) -> f32x16 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn max(self, a: f32x16, b: f32x16) -> f32x16 {
        a.fast_max(b)
    }
    #[inline(always)]
    fn min(self, a: f32x16, b: f32x16) -> f32x16 {
        a.fast_min(b)
    }
    #[inline(always)]
    fn hsum(self, v: f32x16) -> f32 {
        v.to_array().iter().sum()
    }
    #[inline(always)]
    fn hmax(self, v: f32x16) -> f32 {
        v.to_array().into_iter().fold(f32::NEG_INFINITY, f32::max)
    }
}
