//! The SpMM kernel: output rows from the rows of `X` their entries name, a block of
//! feature vectors at a time, summed or reduced to their maximum.

// Index loops over constant bounds unroll fully and keep the accumulators in registers.
#![allow(clippy::needless_range_loop)]

use super::{CsrRef, Reduce};
use crate::isa::{instances, Simd, WithSimd};

/// Rows `rows` of `Y = A X` (or `Y += A X`; for a maximum, `Y = max(Y, A ⊙ X)`); `y`
/// starts at the first of them.
pub(super) struct SpmmRows<'a> {
    pub a: CsrRef<'a>,
    pub reduce: Reduce,
    pub rows: (usize, usize),
    pub x: &'a [f32],
    pub ldx: usize,
    pub f: usize,
    pub y: &'a mut [f32],
    pub ldy: usize,
    pub accumulate: bool,
}

instances! {
    /// Rows of a CSR matrix times a dense matrix.
    fn(SpmmRows<'_>) => f32_spmm_portable, f32_spmm_avx2, f32_spmm_avx512;
}

impl WithSimd for SpmmRows<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let SpmmRows { a, reduce, rows: (r0, r1), x, ldx, f, y, ldy, accumulate } = self;
        let lanes = S::LANES;
        let (row_ptr, col_idx) = (a.row_ptr(), a.col_idx());
        for i in r0..r1 {
            let (k0, k1) = (row_ptr[i] as usize, row_ptr[i + 1] as usize);
            let cols = &col_idx[k0..k1];
            let vals = a.values().map(|v| &v[k0..k1]);
            let out = y[(i - r0) * ldy..][..f].as_mut_ptr();
            let row = Row { cols, x: x.as_ptr(), ldx, out, accumulate };
            let mut j = 0;
            // SAFETY (all blocks): CsrRef checked every column below `a.cols()`, and spmm
            // checked that X holds `a.cols()` rows of `f` values `ldx` apart and that `y`
            // holds this part's rows of `f` values `ldy` apart; blocks stay below `f`.
            unsafe {
                while j + 4 * lanes <= f {
                    match (vals, reduce) {
                        (Some(v), Reduce::Sum) => block::<S, 4, 2, true, false>(s, &row, v, j, lanes),
                        (None, Reduce::Sum) => block::<S, 4, 2, false, false>(s, &row, &[], j, lanes),
                        // One set for a maximum: its extra product per entry leaves no
                        // registers for a second on the portable path.
                        (Some(v), Reduce::Max) => block::<S, 4, 1, true, true>(s, &row, v, j, lanes),
                        (None, Reduce::Max) => block::<S, 4, 1, false, true>(s, &row, &[], j, lanes),
                    }
                    j += 4 * lanes;
                }
                while j < f {
                    let n = lanes.min(f - j);
                    match (vals, reduce) {
                        (Some(v), Reduce::Sum) => block::<S, 1, 4, true, false>(s, &row, v, j, n),
                        (None, Reduce::Sum) => block::<S, 1, 4, false, false>(s, &row, &[], j, n),
                        (Some(v), Reduce::Max) => block::<S, 1, 4, true, true>(s, &row, v, j, n),
                        (None, Reduce::Max) => block::<S, 1, 4, false, true>(s, &row, &[], j, n),
                    }
                    j += n;
                }
            }
        }
    }
}

/// One output row's entries and where its result goes.
struct Row<'a> {
    cols: &'a [u32],
    x: *const f32,
    ldx: usize,
    out: *mut f32,
    accumulate: bool,
}

/// Features `j..j + W * LANES` of one output row (the last vector `last` wide): the entries'
/// rows of X combined into `CH` interleaved sets of accumulators (entry `t` into set
/// `t % CH`), so that consecutive entries do not wait on one another's results. A maximum
/// of no entries is 0, or leaves an accumulated row as it was.
///
/// # Safety
/// Every column in `row.cols` names a row of X holding features `j..` of the block; `out`
/// holds them too; `vals` has one value per entry when `WEIGHTED`.
#[inline(always)]
unsafe fn block<S: Simd, const W: usize, const CH: usize, const WEIGHTED: bool, const MAX: bool>(
    s: S,
    row: &Row,
    vals: &[f32],
    j: usize,
    last: usize,
) {
    let lanes = S::LANES;
    let width = |w: usize| if w + 1 == W { last } else { lanes };
    let start = if MAX { s.splat(f32::NEG_INFINITY) } else { s.zero() };
    let mut acc = [[start; W]; CH];
    let n = row.cols.len();
    let mut t = 0;
    // SAFETY (both loops): t < n, and the caller's contract for entry t.
    unsafe {
        while t + CH <= n {
            for c in 0..CH {
                acc[c] = entry::<S, W, WEIGHTED, MAX>(s, acc[c], row, vals, t + c, (j, last));
            }
            t += CH;
        }
        while t < n {
            acc[0] = entry::<S, W, WEIGHTED, MAX>(s, acc[0], row, vals, t, (j, last));
            t += 1;
        }
    }
    if MAX && n == 0 && row.accumulate {
        return;
    }
    for w in 0..W {
        let mut r = acc[0][w];
        for c in 1..CH {
            r = if MAX { s.max(r, acc[c][w]) } else { s.add(r, acc[c][w]) };
        }
        if MAX && n == 0 {
            r = s.zero();
        }
        // SAFETY: the caller's contract.
        unsafe {
            let o = row.out.add(j + w * lanes);
            if row.accumulate {
                let old = s.load_upto(o, width(w));
                r = if MAX { s.max(r, old) } else { s.add(r, old) };
            }
            s.store_upto(o, width(w), r);
        }
    }
}

/// `acc` with entry `t`'s row of X (features `j..`, the last vector `last` wide) added, or
/// taken into the maximum, scaled by its value when `WEIGHTED`. A function of its own
/// rather than a closure, so that it always inlines into the instance: a closure called
/// in a loop of a `#[target_feature]` function was compiled out of line, its intrinsics
/// became calls, and wide blocks ran eight times slower.
///
/// # Safety
/// `t` is below `row.cols.len()` (and `vals.len()` when `WEIGHTED`), and the row of X that
/// entry `t` names holds features `j..j + (W - 1) * LANES + last`.
#[inline(always)]
unsafe fn entry<S: Simd, const W: usize, const WEIGHTED: bool, const MAX: bool>(
    s: S,
    mut acc: [S::V; W],
    row: &Row,
    vals: &[f32],
    t: usize,
    (j, last): (usize, usize),
) -> [S::V; W] {
    let lanes = S::LANES;
    // SAFETY: the caller's contract.
    unsafe {
        let p = row.x.add(*row.cols.get_unchecked(t) as usize * row.ldx + j);
        let scale = if WEIGHTED { s.splat(*vals.get_unchecked(t)) } else { s.zero() };
        for w in 0..W {
            let xv = s.load_upto(p.add(w * lanes), if w + 1 == W { last } else { lanes });
            acc[w] = match (WEIGHTED, MAX) {
                (true, false) => s.fma(scale, xv, acc[w]),
                (false, false) => s.add(xv, acc[w]),
                (true, true) => s.max(s.mul(scale, xv), acc[w]),
                (false, true) => s.max(xv, acc[w]),
            };
        }
    }
    acc
}
