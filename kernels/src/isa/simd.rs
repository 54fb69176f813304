//! The vector vocabulary every kernel is written in.
//!
//! A kernel is written once as `#[inline(always)]` code generic over [`Simd`], and
//! instantiated per instruction set inside a named `#[target_feature]` function (see
//! [`Kernel`]), which [`Simd::run`] calls. Tokens (the types implementing `Simd`) can be created only after
//! the CPU has been checked, so safe code can never run an instruction the CPU lacks.

use super::Kernel;

/// A vector instruction set, as seen by kernels.
///
/// Kernels call these methods only inside their named instances ([`Simd::run`]), which are
/// compiled with the set's target features, so every method inlines to its instruction.
///
/// # Safety
/// Implementors must only be constructible when the CPU supports every instruction their
/// methods use; the raw-pointer methods are `unsafe` and state their own contracts.
pub unsafe trait Simd: Copy + Send + Sync + 'static {
    /// One vector of `LANES` f32 values.
    type V: Copy;
    /// f32 lanes per vector.
    const LANES: usize;
    /// GEMM register tile: rows of C (broadcast from packed A).
    const GEMM_MR: usize;
    /// GEMM register tile: vectors of C per row (NR = NR_VECS * LANES).
    const GEMM_NR_VECS: usize;

    /// Runs `kernel` in its named instance for this instruction set.
    fn run<K: Kernel>(self, kernel: K) -> K::Output;

    fn splat(self, x: f32) -> Self::V;
    #[inline(always)]
    fn zero(self) -> Self::V {
        self.splat(0.0)
    }
    /// # Safety
    /// `p` must be valid for reading `LANES` f32 (no alignment needed).
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// Loads `n < LANES` values, the rest of the vector is zero.
    /// # Safety
    /// `p` must be valid for reading `n` f32.
    unsafe fn load_partial(self, p: *const f32, n: usize) -> Self::V;
    /// # Safety
    /// `p` must be valid for writing `LANES` f32 (no alignment needed).
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// Stores the first `n < LANES` lanes.
    /// # Safety
    /// `p` must be valid for writing `n` f32.
    unsafe fn store_partial(self, p: *mut f32, n: usize, v: Self::V);
    /// The lanes of `a` then `b` at even positions and at odd positions, each in order (a
    /// stride-2 gather in registers: pooling windows a stride of 2 apart).
    fn deinterleave(self, a: Self::V, b: Self::V) -> (Self::V, Self::V);
    /// Lanes `1..LANES` of `a`, then lane 0 of `b`: `a` shifted down by one lane, `b`
    /// shifted in (a window's next column, across a vector boundary).
    fn shift_in(self, a: Self::V, b: Self::V) -> Self::V;
    /// The last lane of `prev`, then lanes `0..LANES - 1` of `a`: `a` shifted up by one
    /// lane, `prev` shifted in (a window's previous column, across a vector boundary).
    fn shift_up(self, a: Self::V, prev: Self::V) -> Self::V;
    /// Loads `n <= LANES` values, the rest of the vector zero: a full load when `n == LANES`
    /// (row ends of kernels that run whole vectors otherwise).
    /// # Safety
    /// `p` must be valid for reading `n` f32.
    #[inline(always)]
    unsafe fn load_upto(self, p: *const f32, n: usize) -> Self::V {
        // SAFETY: forwarded contract.
        unsafe {
            if n == Self::LANES {
                self.load(p)
            } else {
                self.load_partial(p, n)
            }
        }
    }
    /// Stores the first `n <= LANES` lanes: a full store when `n == LANES`.
    /// # Safety
    /// `p` must be valid for writing `n` f32.
    #[inline(always)]
    unsafe fn store_upto(self, p: *mut f32, n: usize, v: Self::V) {
        // SAFETY: forwarded contract.
        unsafe {
            if n == Self::LANES {
                self.store(p, v)
            } else {
                self.store_partial(p, n, v)
            }
        }
    }
    /// Loads `2 * LANES` values and [`Simd::deinterleave`]s them.
    /// # Safety
    /// `p` must be valid for reading `2 * LANES` f32 (no alignment needed).
    #[inline(always)]
    unsafe fn load_deinterleave(self, p: *const f32) -> (Self::V, Self::V) {
        // SAFETY: forwarded contract.
        unsafe { self.deinterleave(self.load(p), self.load(p.add(Self::LANES))) }
    }
    /// Loads one f32 and broadcasts it to every lane.
    /// # Safety
    /// `p` must be valid for reading one f32.
    #[inline(always)]
    unsafe fn broadcast(self, p: *const f32) -> Self::V {
        // SAFETY: forwarded contract.
        self.splat(unsafe { *p })
    }

    /// Transposes the `LANES x LANES` block in `rows[..LANES]` (row `i` in `rows[i]`), so
    /// that `rows[j]` holds column `j`; entries past `LANES` are left as they are (16 is the
    /// widest path's lane count).
    fn transpose(self, rows: [Self::V; 16]) -> [Self::V; 16];

    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, fused where the ISA has FMA.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `1 / v` to within about 2 ulp for finite nonzero `v` (a hardware estimate refined by
    /// one Newton step where the ISA has one: a fraction of a division's cost).
    #[inline(always)]
    fn recip(self, v: Self::V) -> Self::V {
        self.div(self.splat(1.0), v)
    }
    /// The square root (IEEE, correctly rounded).
    fn sqrt(self, v: Self::V) -> Self::V;
    /// Rounds to the nearest integer (ties to even).
    fn round(self, v: Self::V) -> Self::V;
    /// `2^n` for lanes holding integers `n` in `-126..=127` (built from the exponent bits).
    fn pow2i(self, n: Self::V) -> Self::V;
    /// Lane-wise `if a > b { x } else { y }` (false for NaN).
    fn select_gt(self, a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    /// Sum of all lanes.
    fn hsum(self, v: Self::V) -> f32;
    /// Maximum of all lanes.
    fn hmax(self, v: Self::V) -> f32;
}

/// A computation generic over the instruction set: a kernel body (see [`Kernel`]), or
/// driver code that [`crate::Isa::dispatch`] hands a token. A struct rather than a closure,
/// so a kernel body is inlined into its `#[target_feature]` instance for certain.
pub trait WithSimd {
    type Output;
    fn with_simd<S: Simd>(self, s: S) -> Self::Output;
}
