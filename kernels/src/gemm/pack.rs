//! Packing of A and B into the contiguous micropanels the microkernel streams through.
//!
//! Packed A: for each block of `MR` rows, the rows' `kc`-long segments one after another.
//! Packed B: for each block of `nr` columns, `kc` steps of `nr` consecutive values
//! (a row of the tile). Rows or columns past the matrix edge are zero, so edge tiles run the
//! same microkernel and only their store is masked.

use super::matrix::MatRef;
use crate::isa::prefetch;

/// Packs `a[i0..i0+mc, p0..p0+kc]` (rows and columns given as (start, length)) into `dst`,
/// at least `mc.div_ceil(MR) * MR * kc` long: for each block of `MR` rows, the `MR` row
/// segments of `kc` values one after another (the microkernel broadcasts from each).
#[inline(always)]
pub(crate) fn pack_a<const MR: usize>(a: &MatRef, (i0, mc): (usize, usize), (p0, kc): (usize, usize), dst: &mut [f32]) {
    let (rs, cs) = (a.row_stride(), a.col_stride());
    let src = a.as_ptr();
    for (blk, panel) in dst.chunks_exact_mut(MR * kc).take(mc.div_ceil(MR)).enumerate() {
        let rows = MR.min(mc - blk * MR);
        let first = i0 + blk * MR;
        if cs == 1 {
            // Row-major A: each row segment is a plain copy. The next block's rows are
            // fetched meanwhile: rows of a large A are far apart and read only kc values at
            // a time, too short a stream for the hardware prefetcher to catch.
            let next_rows = (mc - (blk * MR + rows).min(mc)).min(MR);
            for i in 0..next_rows {
                for p in (0..kc).step_by(16) {
                    prefetch(src.wrapping_add((first + MR + i) * rs + p0 + p));
                }
            }
            for (i, out) in panel.chunks_exact_mut(kc).take(rows).enumerate() {
                // SAFETY: (first+i, p0..p0+kc) lies inside the validated view.
                out.copy_from_slice(unsafe { std::slice::from_raw_parts(src.add((first + i) * rs + p0), kc) });
            }
        } else {
            for (i, out) in panel.chunks_exact_mut(kc).take(rows).enumerate() {
                for (p, v) in out.iter_mut().enumerate() {
                    // SAFETY: (first+i, p0+p) lies inside the validated view.
                    *v = unsafe { *src.add((first + i) * rs + (p0 + p) * cs) };
                }
            }
        }
        panel[rows * kc..].fill(0.0);
    }
}

/// Packs panels `first_panel..` of `b[p0..p0+kc, j0..j0+nc]` (each `NR` columns wide) into
/// `dst`, which holds a whole number of `kc * NR` panels.
#[inline(always)]
pub(crate) fn pack_b<const NR: usize>(
    b: &MatRef,
    (p0, kc): (usize, usize),
    (j0, nc): (usize, usize),
    first_panel: usize,
    dst: &mut [f32],
) {
    let (rs, cs) = (b.row_stride(), b.col_stride());
    let src = b.as_ptr();
    if cs == 1 {
        // Row-major B, in bands of ROWS rows: each band reads ROWS rows contiguously (the
        // prefetcher follows them) and writes ROWS * NR contiguous values per panel.
        // Per-panel order would jump a row stride, often a page, per 64 bytes read; whole-row
        // order would write to every panel at once, kc * NR * 4 bytes apart, which aliases in
        // L1 when that is a multiple of 4 KiB.
        const ROWS: usize = 8;
        for pb in (0..kc).step_by(ROWS) {
            let band = ROWS.min(kc - pb);
            for (idx, panel) in dst.chunks_exact_mut(kc * NR).enumerate() {
                let jr = (first_panel + idx) * NR;
                let cols = NR.min(nc - jr);
                for p in pb..pb + band {
                    let out = &mut panel[p * NR..(p + 1) * NR];
                    // SAFETY: (p0+p, j0+jr..j0+jr+cols) lies inside the validated view.
                    let row = unsafe { src.add((p0 + p) * rs + j0 + jr) };
                    if cols == NR {
                        // SAFETY: as above, cols == NR.
                        out.copy_from_slice(unsafe { &*(row as *const [f32; NR]) });
                    } else {
                        // SAFETY: as above.
                        out[..cols].copy_from_slice(unsafe { std::slice::from_raw_parts(row, cols) });
                        out[cols..].fill(0.0);
                    }
                }
            }
        }
        return;
    }
    for (idx, panel) in dst.chunks_exact_mut(kc * NR).enumerate() {
        let jr = (first_panel + idx) * NR;
        let cols = NR.min(nc - jr);
        let base = j0 + jr;
        for j in 0..cols {
            for p in 0..kc {
                // SAFETY: (p0+p, base+j) lies inside the validated view.
                panel[p * NR + j] = unsafe { *src.add((p0 + p) * rs + (base + j) * cs) };
            }
        }
        if cols < NR {
            for out in panel.chunks_exact_mut(NR) {
                out[cols..].fill(0.0);
            }
        }
    }
}

/// [`pack_b`] for the panel widths the ISAs use, chosen at run time.
pub(crate) fn pack_b_dyn(
    b: &MatRef,
    rows: (usize, usize),
    cols: (usize, usize),
    nr: usize,
    first_panel: usize,
    dst: &mut [f32],
) {
    match nr {
        8 => pack_b::<8>(b, rows, cols, first_panel, dst),
        16 => pack_b::<16>(b, rows, cols, first_panel, dst),
        32 => pack_b::<32>(b, rows, cols, first_panel, dst),
        _ => unreachable!("no packing instantiation for nr = {nr}"),
    }
}
