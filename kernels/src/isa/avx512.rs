//! AVX-512 (F, VL, BW, DQ, as every AVX-512 CPU since Skylake-SP has): 512-bit vectors,
//! thirty-two vector registers, mask registers for tails.
//!
//! VL matters even to 512-bit code: without it the 128- and 256-bit instructions (a
//! horizontal sum's halving steps, say) reach only registers 0-15, so every value flowing
//! into one is confined to them, and a 24-accumulator loop spills.

use super::simd::Simd;
use super::Kernel;
use core::arch::x86_64::*;

/// Token for AVX-512F; only [`crate::Isa`] detection creates it.
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

impl Avx512 {
    pub(crate) fn detect() -> Option<Self> {
        let all = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma");
        all.then_some(Avx512(()))
    }
}

#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

// SAFETY: the token exists only when the CPU reports AVX-512F/VL/BW/DQ, AVX2 and FMA, and
// every method is inlined into a kernel instance compiled with them.
unsafe impl Simd for Avx512 {
    type V = __m512;
    const LANES: usize = 16;
    // 12 x 32: twenty-four accumulators + two B vectors + broadcasts of thirty-two zmm.
    const GEMM_MR: usize = 12;
    const GEMM_NR_VECS: usize = 2;

    #[inline(always)]
    fn run<K: Kernel>(self, kernel: K) -> K::Output {
        kernel.on_avx512(self)
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: caller guarantees 16 readable f32.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    fn shift_in(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token). Lanes 1.. of the concatenation b:a.
        unsafe { _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(_mm512_castps_si512(b), _mm512_castps_si512(a))) }
    }
    #[inline(always)]
    fn shift_up(self, a: __m512, prev: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token). Lanes 15.. of the concatenation a:prev.
        unsafe { _mm512_castsi512_ps(_mm512_alignr_epi32::<15>(_mm512_castps_si512(a), _mm512_castps_si512(prev))) }
    }
    #[inline(always)]
    fn deinterleave(self, a: __m512, b: __m512) -> (__m512, __m512) {
        // SAFETY: AVX-512F available (token).
        unsafe {
            // Indices 0..15 pick from a, 16..31 from b.
            let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
            let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
            (_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b))
        }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> __m512 {
        // SAFETY: masked-off lanes are not accessed; caller guarantees n readable f32.
        unsafe { _mm512_maskz_loadu_ps(first_lanes(n), p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: caller guarantees 16 writable f32.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: __m512) {
        // SAFETY: masked-off lanes are not accessed; caller guarantees n writable f32.
        unsafe { _mm512_mask_storeu_ps(p, first_lanes(n), v) }
    }
    #[inline(always)]
    fn transpose(self, r: [__m512; 16]) -> [__m512; 16] {
        // SAFETY: AVX-512F available (token). Four rounds of 16 shuffles: pairs of rows
        // interleaved, then 4x4 blocks within each 128-bit lane, then the lanes moved into
        // place in two rounds of 128-bit shuffles.
        unsafe {
            let mut t = [_mm512_setzero_ps(); 16];
            for i in 0..8 {
                t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            // u[4g + c]: rows 4g..4g+4 of columns c, c + 4, c + 8, c + 12 (one per 128-bit lane).
            let mut u = [_mm512_setzero_ps(); 16];
            for g in 0..4 {
                u[4 * g] = _mm512_shuffle_ps::<0x44>(t[4 * g], t[4 * g + 2]);
                u[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(t[4 * g], t[4 * g + 2]);
                u[4 * g + 2] = _mm512_shuffle_ps::<0x44>(t[4 * g + 1], t[4 * g + 3]);
                u[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(t[4 * g + 1], t[4 * g + 3]);
            }
            // v[c] (v[c + 4]): columns c and c + 8 (c + 4 and c + 12) of rows 0..8 (g = 0),
            // v[8 + ..] the same of rows 8..16.
            let mut v = [_mm512_setzero_ps(); 16];
            for h in 0..2 {
                for c in 0..4 {
                    v[8 * h + c] = _mm512_shuffle_f32x4::<0x88>(u[8 * h + c], u[8 * h + 4 + c]);
                    v[8 * h + 4 + c] = _mm512_shuffle_f32x4::<0xDD>(u[8 * h + c], u[8 * h + 4 + c]);
                }
            }
            let mut out = [_mm512_setzero_ps(); 16];
            for c in 0..4 {
                out[c] = _mm512_shuffle_f32x4::<0x88>(v[c], v[8 + c]);
                out[c + 8] = _mm512_shuffle_f32x4::<0xDD>(v[c], v[8 + c]);
                out[c + 4] = _mm512_shuffle_f32x4::<0x88>(v[4 + c], v[12 + c]);
                out[c + 12] = _mm512_shuffle_f32x4::<0xDD>(v[4 + c], v[12 + c]);
            }
            out
        }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn sqrt(self, v: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_sqrt_ps(v) }
    }
    #[inline(always)]
    fn round(self, v: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v) }
    }
    #[inline(always)]
    fn recip(self, v: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        let r = unsafe { _mm512_rcp14_ps(v) };
        // r (2 - v r): one Newton step doubles the estimate's 14 bits.
        self.fma(r, self.fma(self.sub(self.zero(), v), r, self.splat(1.0)), r)
    }
    #[inline(always)]
    fn pow2i(self, n: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe {
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
                _mm512_cvtps_epi32(n),
                _mm512_set1_epi32(127),
            )))
        }
    }
    #[inline(always)]
    fn select_gt(self, a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b), y, x) }
    }
    #[inline(always)]
    fn hsum(self, v: __m512) -> f32 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    fn hmax(self, v: __m512) -> f32 {
        // SAFETY: AVX-512F available (token).
        unsafe { _mm512_reduce_max_ps(v) }
    }
}
