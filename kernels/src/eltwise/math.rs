//! Vector transcendental functions, written once for every ISA.
//!
//! `exp` follows Cephes `expf` (S. L. Moshier, Cephes Math Library): `e^x = 2^n e^r` with
//! `n = round(x / ln 2)`, `r = x - n ln 2` in two parts (Cody-Waite), and a degree-6
//! polynomial for `e^r` on `|r| <= ln(2)/2`; about 1 ulp. `tanh` follows Cephes `tanhf`:
//! an odd polynomial below 0.625, `1 - 2 / (e^{2|x|} + 1)` above.

use crate::isa::Simd;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that `n * LN2_HI` is exact for the n that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes expf polynomial, highest degree first.
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];
/// Beyond these, e^x overflows to infinity or falls below the smallest normal f32.
const EXP_HI: f32 = 88.722_84;
const EXP_LO: f32 = -87.336_55;
/// Cephes tanhf polynomial (in x^2), highest degree first.
const TANH_P: [f32; 5] = [-5.704_988_7e-3, 2.063_909e-2, -5.373_971_6e-2, 0.133_314_42, -0.333_332_8];

/// Horner's rule.
#[inline(always)]
fn poly<S: Simd>(s: S, x: S::V, coeffs: &[f32]) -> S::V {
    let mut acc = s.splat(coeffs[0]);
    for &c in &coeffs[1..] {
        acc = s.fma(acc, x, s.splat(c));
    }
    acc
}

/// `e^x`; 0 below about -87.3 (where results would be subnormal), infinity above about
/// 88.7, NaN for NaN.
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    let xc = s.min(s.max(x, s.splat(EXP_LO)), s.splat(EXP_HI));
    let n = s.round(s.mul(xc, s.splat(LOG2E)));
    let r = s.fma(n, s.splat(-LN2_HI), xc);
    let r = s.fma(n, s.splat(-LN2_LO), r);
    let p = poly(s, r, &EXP_P);
    let er = s.add(s.fma(p, s.mul(r, r), r), s.splat(1.0));
    // 2^n for n in -126..=128, as 2^(n - n1) * 2^n1 with n1 = round(n / 2): each factor's
    // exponent stays within the normal range.
    let n1 = s.round(s.mul(n, s.splat(0.5)));
    let y = s.mul(s.mul(er, s.pow2i(s.sub(n, n1))), s.pow2i(n1));
    // x - x is 0 for finite x and NaN for NaN or infinities; the selects then fix +-inf.
    let y = s.add(y, s.sub(x, x));
    let y = s.select_gt(x, s.splat(EXP_HI), s.splat(f32::INFINITY), y);
    s.select_gt(s.splat(EXP_LO), x, s.zero(), y)
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid<S: Simd>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    s.div(one, s.add(one, exp(s, s.sub(s.zero(), x))))
}

/// `tanh(x)`.
#[inline(always)]
pub(crate) fn tanh<S: Simd>(s: S, x: S::V) -> S::V {
    let zero = s.zero();
    let ax = s.max(x, s.sub(zero, x));
    // Small |x|: x + x z P(z), z = x^2.
    let z = s.mul(x, x);
    let small = s.fma(s.mul(x, z), poly(s, z, &TANH_P), x);
    // Large |x|: 1 - 2 / (e^{2|x|} + 1), with the sign of x.
    let two = s.splat(2.0);
    let big = s.sub(s.splat(1.0), s.div(two, s.add(exp(s, s.mul(two, ax)), s.splat(1.0))));
    let big = s.select_gt(zero, x, s.sub(zero, big), big);
    s.select_gt(ax, s.splat(0.625), big, small)
}

/// The gates' logistic function `1 / (1 + e^-x)`, leaner than [`sigmoid`]: the exponent
/// clamped to where `e^x` and the reciprocal stay finite and normal (the result is exact to
/// f32 there anyway), `2^n` in one step, and [`Simd::recip`] for the division. NaN stays NaN.
#[inline(always)]
pub(crate) fn gate_sigmoid<S: Simd>(s: S, x: S::V) -> S::V {
    // -x clamped to [-87, 87]: 1 + e^87 is finite and its reciprocal normal.
    let xc = s.min(s.max(s.sub(s.zero(), x), s.splat(-87.0)), s.splat(87.0));
    let n = s.round(s.mul(xc, s.splat(LOG2E)));
    let r = s.fma(n, s.splat(-LN2_HI), xc);
    let r = s.fma(n, s.splat(-LN2_LO), r);
    let p = poly(s, r, &EXP_P);
    let e = s.mul(s.add(s.fma(p, s.mul(r, r), r), s.splat(1.0)), s.pow2i(n));
    // x - x is NaN for NaN and 0 otherwise: the clamp above would hide a NaN.
    s.add(s.recip(s.add(e, s.splat(1.0))), s.sub(x, x))
}

/// The gates' `tanh(x) = 2 sigmoid(2x) - 1` on [`gate_sigmoid`]: within about 1e-7 of
/// [`tanh`] everywhere (an absolute error, which near 0 is a relative one larger than an
/// ulp: cells only ever add such values to others of order 1).
#[inline(always)]
pub(crate) fn gate_tanh<S: Simd>(s: S, x: S::V) -> S::V {
    s.fma(s.splat(2.0), gate_sigmoid(s, s.add(x, x)), s.splat(-1.0))
}
