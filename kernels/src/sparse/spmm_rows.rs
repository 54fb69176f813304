//! The SpMM kernel: output rows from the rows of `X` their entries name, a block of
//! feature vectors at a time.

// Index loops over constant bounds unroll fully and keep the accumulators in registers.
#![allow(clippy::needless_range_loop)]

use super::CsrRef;
use crate::isa::{instances, Simd, WithSimd};

/// Rows `rows` of `Y = A X` (or `Y += A X`); `y` starts at the first of them.
pub(super) struct SpmmRows<'a> {
    pub a: CsrRef<'a>,
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
        let SpmmRows { a, rows: (r0, r1), x, ldx, f, y, ldy, accumulate } = self;
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
                    match vals {
                        Some(v) => block::<S, 4, 2, true>(s, &row, v, j, lanes),
                        None => block::<S, 4, 2, false>(s, &row, &[], j, lanes),
                    }
                    j += 4 * lanes;
                }
                while j < f {
                    let n = lanes.min(f - j);
                    match vals {
                        Some(v) => block::<S, 1, 4, true>(s, &row, v, j, n),
                        None => block::<S, 1, 4, false>(s, &row, &[], j, n),
                    }
                    j += n;
                }
            }
        }
    }
}

/// One output row's entries and where its sums go.
struct Row<'a> {
    cols: &'a [u32],
    x: *const f32,
    ldx: usize,
    out: *mut f32,
    accumulate: bool,
}

/// Features `j..j + W * LANES` of one output row (the last vector `last` wide): the entries'
/// rows of X summed into `CH` interleaved sets of accumulators (entry `t` into set
/// `t % CH`), so that consecutive entries do not wait on one another's additions.
///
/// # Safety
/// Every column in `row.cols` names a row of X holding features `j..` of the block; `out`
/// holds them too; `vals` has one value per entry when `WEIGHTED`.
#[inline(always)]
unsafe fn block<S: Simd, const W: usize, const CH: usize, const WEIGHTED: bool>(
    s: S,
    row: &Row,
    vals: &[f32],
    j: usize,
    last: usize,
) {
    let lanes = S::LANES;
    let width = |w: usize| if w + 1 == W { last } else { lanes };
    let mut acc = [[s.zero(); W]; CH];
    let n = row.cols.len();
    // One entry into accumulator set `c`.
    // SAFETY (both loops): t < n, and the caller's contract for entry t.
    let add = |acc: &mut [[S::V; W]; CH], c: usize, t: usize| unsafe {
        let p = row.x.add(*row.cols.get_unchecked(t) as usize * row.ldx + j);
        let scale = if WEIGHTED { s.splat(*vals.get_unchecked(t)) } else { s.zero() };
        for w in 0..W {
            let xv = s.load_upto(p.add(w * lanes), width(w));
            acc[c][w] = if WEIGHTED { s.fma(scale, xv, acc[c][w]) } else { s.add(xv, acc[c][w]) };
        }
    };
    let mut t = 0;
    while t + CH <= n {
        for c in 0..CH {
            add(&mut acc, c, t + c);
        }
        t += CH;
    }
    while t < n {
        add(&mut acc, 0, t);
        t += 1;
    }
    for w in 0..W {
        let mut sum = acc[0][w];
        for c in 1..CH {
            sum = s.add(sum, acc[c][w]);
        }
        // SAFETY: the caller's contract.
        unsafe {
            let o = row.out.add(j + w * lanes);
            if row.accumulate {
                sum = s.add(sum, s.load_upto(o, width(w)));
            }
            s.store_upto(o, width(w), sum);
        }
    }
}
