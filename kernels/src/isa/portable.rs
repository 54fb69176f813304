//! The portable path: `wide::f32x4`, one SSE2 register on a default x86-64 build (one NEON
//! register on AArch64). Four lanes rather than eight in two halves: a vector is then one
//! register, so the kernels' register tiles fit the sixteen of SSE2.

use super::simd::Simd;
use super::Kernel;

/// Token for the portable path; available on every CPU.
#[derive(Clone, Copy, Debug)]
pub struct Portable(());

impl Portable {
    pub(crate) fn new() -> Self {
        Portable(())
    }
}

/// Implements [`Simd`] for a token over one of `wide`'s f32 vector types (portable code,
/// whatever the build's target features allow).
macro_rules! impl_simd_on_wide {
    ($token:ty, $v:ident, $lanes:literal, $mr:literal, $nr_vecs:literal, |$s:ident, $k:ident| $run:expr) => {
        // SAFETY: portable instructions of the build target only.
        unsafe impl Simd for $token {
            type V = wide::$v;
            const LANES: usize = $lanes;
            const GEMM_MR: usize = $mr;
            const GEMM_NR_VECS: usize = $nr_vecs;

            #[inline(always)]
            fn run<K: Kernel>(self, kernel: K) -> K::Output {
                let ($s, $k) = (self, kernel);
                $run
            }
            #[inline(always)]
            fn splat(self, x: f32) -> wide::$v {
                wide::$v::splat(x)
            }
            #[inline(always)]
            unsafe fn load(self, p: *const f32) -> wide::$v {
                // SAFETY: caller guarantees LANES readable f32; no alignment needed.
                unsafe { wide::$v::from(core::ptr::read_unaligned(p as *const [f32; $lanes])) }
            }
            #[inline(always)]
            fn shift_in(self, a: wide::$v, b: wide::$v) -> wide::$v {
                let (a, b) = (a.to_array(), b.to_array());
                wide::$v::from(core::array::from_fn::<f32, $lanes, _>(|i| if i + 1 < $lanes { a[i + 1] } else { b[0] }))
            }
            #[inline(always)]
            fn shift_up(self, a: wide::$v, prev: wide::$v) -> wide::$v {
                let (a, prev) = (a.to_array(), prev.to_array());
                wide::$v::from(core::array::from_fn::<f32, $lanes, _>(
                    |i| if i == 0 { prev[$lanes - 1] } else { a[i - 1] },
                ))
            }
            #[inline(always)]
            fn deinterleave(self, a: wide::$v, b: wide::$v) -> (wide::$v, wide::$v) {
                let (a, b) = (a.to_array(), b.to_array());
                let at = |i: usize| if i < $lanes { a[i] } else { b[i - $lanes] };
                (
                    wide::$v::from(core::array::from_fn::<f32, $lanes, _>(|i| at(2 * i))),
                    wide::$v::from(core::array::from_fn::<f32, $lanes, _>(|i| at(2 * i + 1))),
                )
            }
            #[inline(always)]
            unsafe fn load_partial(self, p: *const f32, n: usize) -> wide::$v {
                /// The first `K` values from `p`, the rest zero: constant indices, so the vector
                /// is built in registers (a copy into a stack array would be stack traffic in
                /// the kernels' loops, and a branch per lane ties up registers).
                #[inline(always)]
                unsafe fn first<const K: usize>(p: *const f32) -> wide::$v {
                    // SAFETY: the caller's K readable values.
                    wide::$v::from(core::array::from_fn::<f32, $lanes, _>(|i| {
                        if i < K {
                            unsafe { *p.add(i) }
                        } else {
                            0.0
                        }
                    }))
                }
                // SAFETY (every arm): n < LANES readable values (the caller's contract).
                unsafe {
                    match n {
                        0 => wide::$v::splat(0.0),
                        1 => first::<1>(p),
                        2 => first::<2>(p),
                        3 => first::<3>(p),
                        4 if $lanes > 4 => first::<4>(p),
                        5 if $lanes > 5 => first::<5>(p),
                        6 if $lanes > 6 => first::<6>(p),
                        7 if $lanes > 7 => first::<7>(p),
                        // Wider vectors (the emulated 16 lanes) take the rest lane by lane.
                        _ => {
                            wide::$v::from(core::array::from_fn::<f32, $lanes, _>(
                                |i| if i < n { *p.add(i) } else { 0.0 },
                            ))
                        }
                    }
                }
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut f32, v: wide::$v) {
                // SAFETY: caller guarantees LANES writable f32; no alignment needed.
                unsafe { core::ptr::write_unaligned(p as *mut [f32; $lanes], v.to_array()) }
            }
            #[inline(always)]
            unsafe fn store_partial(self, p: *mut f32, n: usize, v: wide::$v) {
                let lanes = v.to_array();
                for (i, &x) in lanes.iter().enumerate() {
                    if i < n {
                        // SAFETY: caller guarantees n < LANES writable f32.
                        unsafe { *p.add(i) = x };
                    }
                }
            }
            #[inline(always)]
            fn transpose(self, rows: [wide::$v; 16]) -> [wide::$v; 16] {
                let m: [[f32; $lanes]; $lanes] = core::array::from_fn(|i| rows[i].to_array());
                let mut out = rows;
                for (j, col) in out.iter_mut().take($lanes).enumerate() {
                    *col = wide::$v::from(core::array::from_fn::<f32, $lanes, _>(|i| m[i][j]));
                }
                out
            }
            #[inline(always)]
            fn add(self, a: wide::$v, b: wide::$v) -> wide::$v {
                a + b
            }
            #[inline(always)]
            fn sub(self, a: wide::$v, b: wide::$v) -> wide::$v {
                a - b
            }
            #[inline(always)]
            fn mul(self, a: wide::$v, b: wide::$v) -> wide::$v {
                a * b
            }
            #[inline(always)]
            fn fma(self, a: wide::$v, b: wide::$v, c: wide::$v) -> wide::$v {
                a.mul_add(b, c)
            }
            #[inline(always)]
            fn max(self, a: wide::$v, b: wide::$v) -> wide::$v {
                a.fast_max(b)
            }
            #[inline(always)]
            fn min(self, a: wide::$v, b: wide::$v) -> wide::$v {
                a.fast_min(b)
            }
            #[inline(always)]
            fn div(self, a: wide::$v, b: wide::$v) -> wide::$v {
                a / b
            }
            #[inline(always)]
            fn sqrt(self, v: wide::$v) -> wide::$v {
                v.sqrt()
            }
            #[inline(always)]
            fn round(self, v: wide::$v) -> wide::$v {
                v.round()
            }
            #[inline(always)]
            fn pow2i(self, n: wide::$v) -> wide::$v {
                wide::$v::from(n.to_array().map(|e| f32::from_bits(((e as i32 + 127) as u32) << 23)))
            }
            #[inline(always)]
            fn select_gt(self, a: wide::$v, b: wide::$v, x: wide::$v, y: wide::$v) -> wide::$v {
                a.simd_gt(b).select(x, y)
            }
            #[inline(always)]
            fn hsum(self, v: wide::$v) -> f32 {
                v.to_array().iter().sum()
            }
            #[inline(always)]
            fn hmax(self, v: wide::$v) -> f32 {
                v.to_array().into_iter().fold(f32::NEG_INFINITY, f32::max)
            }
        }
    };
}
#[cfg(feature = "reference")]
pub(crate) use impl_simd_on_wide;

// 4 x 8 (two 4-lane vectors per row): eight accumulators of the sixteen SSE registers.
impl_simd_on_wide!(Portable, f32x4, 4, 4, 2, |s, kernel| kernel.on_portable(s));
