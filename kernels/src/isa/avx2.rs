//! AVX2 + FMA: 256-bit vectors, sixteen ymm registers.

use super::simd::Simd;
use super::Kernel;
use core::arch::x86_64::*;

/// Token for AVX2+FMA; only [`crate::Isa`] detection creates it.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    pub(crate) fn detect() -> Option<Self> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Avx2(()))
    }
}

/// Lane mask with the first `n` lanes set, for masked loads and stores.
#[inline(always)]
fn first_lanes(n: usize) -> __m256i {
    const IDX: [i32; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
    // SAFETY: AVX2 is enabled in every frame this is inlined into (token exists).
    unsafe {
        let idx = _mm256_loadu_si256(IDX.as_ptr() as *const __m256i);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx)
    }
}

// SAFETY: the token exists only when the CPU reports AVX2 and FMA, and every method is
// inlined into a frame compiled with those features by `vectorize`.
unsafe impl Simd for Avx2 {
    type V = __m256;
    const LANES: usize = 8;
    // 6 x 16: twelve accumulators + two B vectors + one broadcast of sixteen ymm.
    const GEMM_MR: usize = 6;
    const GEMM_NR_VECS: usize = 2;

    #[inline(always)]
    fn run<K: Kernel>(self, kernel: K) -> K::Output {
        kernel.on_avx2(self)
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: caller guarantees 8 readable f32.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    fn shift_in(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX2 available (token).
        unsafe {
            // [a4..a7, b0..b3], then per 128-bit half the concatenation with a shifted down
            // by 4 bytes: [a1 a2 a3 a4 | a5 a6 a7 b0].
            let t = _mm256_castps_si256(_mm256_permute2f128_ps::<0x21>(a, b));
            _mm256_castsi256_ps(_mm256_alignr_epi8::<4>(t, _mm256_castps_si256(a)))
        }
    }
    #[inline(always)]
    fn shift_up(self, a: __m256, prev: __m256) -> __m256 {
        // SAFETY: AVX2 available (token).
        unsafe {
            // [prev4..prev7, a0..a3], then per 128-bit half the concatenation with a shifted
            // down by 12 bytes: [prev7 a0 a1 a2 | a3 a4 a5 a6].
            let t = _mm256_castps_si256(_mm256_permute2f128_ps::<0x21>(prev, a));
            _mm256_castsi256_ps(_mm256_alignr_epi8::<12>(_mm256_castps_si256(a), t))
        }
    }
    #[inline(always)]
    fn deinterleave(self, a: __m256, b: __m256) -> (__m256, __m256) {
        // SAFETY: AVX2 available (token).
        unsafe {
            // Per 128-bit half: [a0 a2 b0 b2 | a4 a6 b4 b6]; then 64-bit pairs 0, 2, 1, 3.
            let even = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
            let odd = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
            let even = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(even)));
            let odd = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(odd)));
            (even, odd)
        }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> __m256 {
        // SAFETY: masked-off lanes are not accessed; caller guarantees n readable f32.
        unsafe { _mm256_maskload_ps(p, first_lanes(n)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: caller guarantees 8 writable f32.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: __m256) {
        // A masked store (vmaskmovps) is microcoded and slow on AMD Zen: instead, stores
        // of four, two and one lanes.
        // SAFETY: caller guarantees n < 8 writable f32 at p; each store writes the next
        // 4, 2 or 1 of them.
        unsafe {
            let (mut q, mut p, mut n) = (_mm256_castps256_ps128(v), p, n);
            if n >= 4 {
                _mm_storeu_ps(p, q);
                (q, p, n) = (_mm256_extractf128_ps::<1>(v), p.add(4), n - 4);
            }
            if n >= 2 {
                _mm_store_sd(p as *mut f64, _mm_castps_pd(q));
                (q, p, n) = (_mm_movehl_ps(q, q), p.add(2), n - 2);
            }
            if n == 1 {
                _mm_store_ss(p, q);
            }
        }
    }
    #[inline(always)]
    unsafe fn broadcast(self, p: *const f32) -> __m256 {
        // SAFETY: caller guarantees one readable f32.
        unsafe { _mm256_broadcast_ss(&*p) }
    }
    #[inline(always)]
    fn transpose(self, r: [__m256; 16]) -> [__m256; 16] {
        // SAFETY: AVX available (token). Pairs of rows interleaved, 4x4 blocks within each
        // 128-bit half, then the halves swapped into place.
        unsafe {
            let mut t = [_mm256_setzero_ps(); 8];
            for i in 0..4 {
                t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            // u[4g + c]: rows 4g..4g+4 of columns c (low half) and c + 4 (high half).
            let mut u = [_mm256_setzero_ps(); 8];
            for g in 0..2 {
                u[4 * g] = _mm256_shuffle_ps::<0x44>(t[4 * g], t[4 * g + 2]);
                u[4 * g + 1] = _mm256_shuffle_ps::<0xEE>(t[4 * g], t[4 * g + 2]);
                u[4 * g + 2] = _mm256_shuffle_ps::<0x44>(t[4 * g + 1], t[4 * g + 3]);
                u[4 * g + 3] = _mm256_shuffle_ps::<0xEE>(t[4 * g + 1], t[4 * g + 3]);
            }
            let mut out = r;
            for c in 0..4 {
                out[c] = _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]);
                out[c + 4] = _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]);
            }
            out
        }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: FMA available (token).
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn sqrt(self, v: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_sqrt_ps(v) }
    }
    #[inline(always)]
    fn round(self, v: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v) }
    }
    #[inline(always)]
    fn recip(self, v: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        let r = unsafe { _mm256_rcp_ps(v) };
        // r (2 - v r): one Newton step takes the estimate's 12 bits to about 23.
        self.fma(r, self.fma(self.sub(self.zero(), v), r, self.splat(1.0)), r)
    }
    #[inline(always)]
    fn pow2i(self, n: __m256) -> __m256 {
        // SAFETY: AVX2 available (token).
        unsafe {
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                _mm256_cvtps_epi32(n),
                _mm256_set1_epi32(127),
            )))
        }
    }
    #[inline(always)]
    fn select_gt(self, a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
        // SAFETY: AVX available (token).
        unsafe { _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_GT_OQ>(a, b)) }
    }
    #[inline(always)]
    fn hsum(self, v: __m256) -> f32 {
        // SAFETY: AVX available (token).
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            _mm_cvtss_f32(s)
        }
    }
    #[inline(always)]
    fn hmax(self, v: __m256) -> f32 {
        // SAFETY: AVX available (token).
        unsafe {
            let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
            _mm_cvtss_f32(s)
        }
    }
}
