//! The SDDMM kernel: one dot product per stored entry, along the features.

use super::CsrRef;
use crate::isa::{instances, Simd, WithSimd};

/// The entries of rows `rows`: `out[e] = U[i] · V[j]`; `out` starts at the first of them.
pub(super) struct SddmmRows<'a> {
    pub a: CsrRef<'a>,
    pub rows: (usize, usize),
    pub u: (&'a [f32], usize),
    pub v: (&'a [f32], usize),
    pub f: usize,
    pub out: &'a mut [f32],
}

instances! {
    /// Dot products of row pairs named by a CSR structure's entries.
    fn(SddmmRows<'_>) => f32_sddmm_portable, f32_sddmm_avx2, f32_sddmm_avx512;
}

impl WithSimd for SddmmRows<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let SddmmRows { a, rows: (r0, r1), u: (u, ldu), v: (v, ldv), f, out } = self;
        let lanes = S::LANES;
        let (row_ptr, col_idx) = (a.row_ptr(), a.col_idx());
        let base = row_ptr[r0] as usize;
        for i in r0..r1 {
            let ui = u[i * ldu..][..f].as_ptr();
            for k in row_ptr[i] as usize..row_ptr[i + 1] as usize {
                let vj = v[col_idx[k] as usize * ldv..][..f].as_ptr();
                let (mut a0, mut a1) = (s.zero(), s.zero());
                let mut j = 0;
                // SAFETY: both rows hold `f` values (the slices above), and j stays below f.
                unsafe {
                    while j + 2 * lanes <= f {
                        a0 = s.fma(s.load(ui.add(j)), s.load(vj.add(j)), a0);
                        a1 = s.fma(s.load(ui.add(j + lanes)), s.load(vj.add(j + lanes)), a1);
                        j += 2 * lanes;
                    }
                    while j < f {
                        let n = lanes.min(f - j);
                        a0 = s.fma(s.load_upto(ui.add(j), n), s.load_upto(vj.add(j), n), a0);
                        j += n;
                    }
                }
                out[k - base] = s.hsum(s.add(a0, a1));
            }
        }
    }
}
