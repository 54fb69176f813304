//! A test-only stand-in for AVX-512's register layout: 16 lanes (`wide::f32x16`) and the
//! 12 x 32 GEMM tile, computed with portable instructions. It runs the exact blocking,
//! packing and edge handling of the AVX-512 path on any CPU, so that path's generic code is
//! tested even where no AVX-512 hardware (or emulator) is at hand. Only the intrinsics of
//! `avx512.rs` themselves are left to a CPU that has them.

use super::portable::impl_simd_on_wide;
use super::simd::Simd;
use super::Kernel;

/// Token for the emulated 16-lane layout (feature `reference`).
#[derive(Clone, Copy, Debug)]
pub struct Emulated512(());

impl Emulated512 {
    pub(crate) fn new() -> Self {
        Emulated512(())
    }
}

// The AVX-512 path's register tile: 12 x 32 (two 16-lane vectors per row). Kernels run
// inline: the emulation is a test of layouts, with no instance of its own.
impl_simd_on_wide!(Emulated512, f32x16, 16, 12, 2, |s, kernel| kernel.with_simd(s));
