//! Packing of A and B into the contiguous micropanels the microkernel streams through.
//!
//! Packed A: for each block of `MR` rows, `kc` steps of `MR` values (a column of the tile).
//! Packed B: for each block of `nr` columns, `kc` steps of `nr` consecutive values
//! (a row of the tile). Rows or columns past the matrix edge are zero, so edge tiles run the
//! same microkernel and only their store is masked.
//!
//! Where packing reads across the contiguous axis of its source (row-major A, whose rows
//! become columns of the panel; B stored transposed), it moves `LANES x LANES` blocks
//! through registers with [`Simd::transpose`]: one vector load per source row, one store
//! per packed step.

// Index loops over constant bounds keep the blocks in registers.
#![allow(clippy::needless_range_loop)]

use super::matrix::MatRef;
use crate::isa::{instances, Simd, WithSimd};

/// Packs rows `rows` (start, length) and columns `cols` of A into `dst`, which holds at
/// least `rows.1.div_ceil(MR) * MR * cols.1` values plus one vector of slack (whole-vector
/// stores run past a panel's last step): for each block of `MR` rows, the `MR` values of
/// each k step together; rows past the edge are zero.
pub(crate) struct PackA<'a> {
    pub a: MatRef<'a>,
    pub rows: (usize, usize),
    pub cols: (usize, usize),
    pub dst: &'a mut [f32],
}

/// Packs rows `rows` (start, length) and columns `cols` of B into panels `nr` columns wide
/// (`nr` a whole number of vectors) in `dst`, which holds exactly the panels of the columns.
pub(crate) struct PackB<'a> {
    pub b: MatRef<'a>,
    pub rows: (usize, usize),
    pub cols: (usize, usize),
    pub nr: usize,
    pub dst: &'a mut [f32],
}

instances! {
    /// Packing of A into k-major panels of GEMM_MR rows.
    fn(PackA<'_>) => f32_gemm_pack_a_4_portable, f32_gemm_pack_a_6_avx2, f32_gemm_pack_a_12_avx512;
    /// Packing of B into panels of nr columns.
    fn(PackB<'_>) => f32_gemm_pack_b_portable, f32_gemm_pack_b_avx2, f32_gemm_pack_b_avx512;
}

impl WithSimd for PackA<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        match S::GEMM_MR {
            4 => pack_a::<S, 4>(s, self),
            6 => pack_a::<S, 6>(s, self),
            12 => pack_a::<S, 12>(s, self),
            mr => unreachable!("no packing instantiation for {mr}-row panels"),
        }
    }
}

#[inline(always)]
fn pack_a<S: Simd, const MR: usize>(s: S, op: PackA) {
    let PackA { a, rows: (i0, mc), cols: (p0, kc), dst } = op;
    let (rs, cs, lanes) = (a.row_stride(), a.col_stride(), S::LANES);
    let src = a.as_ptr();
    let panels = mc.div_ceil(MR);
    assert!(dst.len() >= panels * MR * kc + lanes, "packed A buffer too short");
    let body = kc - kc % lanes;
    for blk in 0..panels {
        let rows = MR.min(mc - blk * MR);
        // SAFETY: (first + i, p0..p0 + kc) for i < rows lies inside the validated view; the
        // panel's MR * kc values (plus the slack asserted above, for the last) lie in dst.
        unsafe {
            let first = src.add((i0 + blk * MR) * rs + p0 * cs);
            let panel = dst.as_mut_ptr().add(blk * MR * kc);
            if cs == 1 {
                // Row-major: LANES steps at a time, rows transposed into steps. Each step's
                // store is a whole vector; the lanes past MR land where the next step (or
                // the next panel, or the slack) is stored afterwards.
                let mut p = 0;
                while p < body {
                    let steps = transposed_rows::<S, MR>(s, first.add(p), rs, rows, lanes);
                    for q in 0..S::LANES {
                        s.store(panel.add((p + q) * MR), steps[q]);
                    }
                    p += lanes;
                }
                if body < kc {
                    let steps = transposed_rows::<S, MR>(s, first.add(body), rs, rows, kc - body);
                    for q in 0..kc - body {
                        s.store(panel.add((body + q) * MR), steps[q]);
                    }
                }
            } else {
                for p in 0..kc {
                    for i in 0..MR {
                        *panel.add(p * MR + i) = if i < rows { *first.add(i * rs + p * cs) } else { 0.0 };
                    }
                }
            }
        }
    }
}

/// `width <= LANES` values of each of `rows <= MR` rows `rs` apart (zero past them),
/// transposed: entry `q` holds value `q` of every row.
///
/// # Safety
/// Each of the `rows` rows holds `width` readable values.
#[inline(always)]
unsafe fn transposed_rows<S: Simd, const MR: usize>(
    s: S,
    first: *const f32,
    rs: usize,
    rows: usize,
    width: usize,
) -> [S::V; 16] {
    let mut block = [s.zero(); 16];
    for i in 0..MR {
        if i < rows {
            // SAFETY: the caller's contract.
            block[i] = unsafe { s.load_upto(first.add(i * rs), width) };
        }
    }
    s.transpose(block)
}

impl WithSimd for PackB<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let PackB { b, rows: (p0, kc), cols: (j0, nc), nr, dst } = self;
        let (rs, cs, lanes) = (b.row_stride(), b.col_stride(), S::LANES);
        let src = b.as_ptr();
        assert!(nr.is_multiple_of(lanes) && dst.len().is_multiple_of(kc * nr), "bad B panel layout");
        if cs == 1 {
            // Row-major B, in bands of ROWS rows: each band reads ROWS rows contiguously (the
            // prefetcher follows them) and writes ROWS * nr contiguous values per panel.
            // Per-panel order would jump a row stride, often a page, per 64 bytes read;
            // whole-row order would write to every panel at once, kc * nr * 4 bytes apart,
            // which aliases in L1 when that is a multiple of 4 KiB.
            const ROWS: usize = 8;
            for pb in (0..kc).step_by(ROWS) {
                for (idx, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
                    let jr = idx * nr;
                    let cols = nr.min(nc - jr);
                    for p in pb..(pb + ROWS).min(kc) {
                        // SAFETY: (p0 + p, j0 + jr..j0 + jr + cols) lies inside the validated
                        // view; the panel row holds nr values.
                        unsafe {
                            let row = src.add((p0 + p) * rs + j0 + jr);
                            let out = panel.as_mut_ptr().add(p * nr);
                            let mut j = 0;
                            while j < nr {
                                let v = if j < cols { s.load_upto(row.add(j), lanes.min(cols - j)) } else { s.zero() };
                                s.store(out.add(j), v);
                                j += lanes;
                            }
                        }
                    }
                }
            }
        } else if rs == 1 {
            // B stored transposed (X W^T): each column of B is contiguous. LANES columns by
            // LANES rows at a time, transposed into panel rows.
            for (idx, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
                let jr = idx * nr;
                let cols = nr.min(nc - jr);
                for jv in (0..nr).step_by(lanes) {
                    let n = cols.saturating_sub(jv).min(lanes);
                    let mut p = 0;
                    while p < kc {
                        let width = lanes.min(kc - p);
                        // SAFETY: columns j0 + jr + jv.. (n of them) and rows p0 + p..+width lie
                        // inside the validated view; panel rows p..p+width hold nr values.
                        unsafe {
                            let first = src.add((p0 + p) + (j0 + jr + jv) * cs);
                            let mut block = [s.zero(); 16];
                            for c in 0..S::LANES {
                                if c < n {
                                    block[c] = s.load_upto(first.add(c * cs), width);
                                }
                            }
                            let steps = s.transpose(block);
                            let out = panel.as_mut_ptr().add(p * nr + jv);
                            for q in 0..S::LANES {
                                if q < width {
                                    s.store(out.add(q * nr), steps[q]);
                                }
                            }
                        }
                        p += lanes;
                    }
                }
            }
        } else {
            for (idx, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
                let jr = idx * nr;
                let cols = nr.min(nc - jr);
                for p in 0..kc {
                    for j in 0..nr {
                        // SAFETY: (p0 + p, j0 + jr + j) lies inside the validated view.
                        panel[p * nr + j] =
                            if j < cols { unsafe { *src.add((p0 + p) * rs + (j0 + jr + j) * cs) } } else { 0.0 };
                    }
                }
            }
        }
    }
}
