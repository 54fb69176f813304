//! Packing of A and B into the contiguous micropanels the microkernel streams through.
//!
//! Packed A: for each block of `mr` rows, `kc` steps of `mr` consecutive values (column of
//! the tile). Packed B: for each block of `nr` columns, `kc` steps of `nr` consecutive values
//! (row of the tile). Rows or columns past the matrix edge are zero, so edge tiles run the
//! same microkernel and only their store is masked.

use super::matrix::MatRef;

/// Packs `a[i0..i0+mc, p0..p0+kc]` (rows and columns given as (start, length)) into `dst` (at least `mc.div_ceil(mr) * mr * kc` long).
pub(crate) fn pack_a(a: &MatRef, (i0, mc): (usize, usize), (p0, kc): (usize, usize), mr: usize, dst: &mut [f32]) {
    let (rs, cs) = (a.row_stride(), a.col_stride());
    let src = a.as_ptr();
    for (blk, panel) in dst.chunks_exact_mut(mr * kc).take(mc.div_ceil(mr)).enumerate() {
        let rows = mr.min(mc - blk * mr);
        let base = i0 + blk * mr;
        if cs == 1 {
            // Row-major A: walk each row contiguously, scatter with stride mr.
            for i in 0..rows {
                // SAFETY: (base+i, p0..p0+kc) lies inside the validated view.
                let row = unsafe { std::slice::from_raw_parts(src.add((base + i) * rs + p0), kc) };
                for (p, &v) in row.iter().enumerate() {
                    panel[p * mr + i] = v;
                }
            }
        } else {
            for p in 0..kc {
                for i in 0..rows {
                    // SAFETY: (base+i, p0+p) lies inside the validated view.
                    panel[p * mr + i] = unsafe { *src.add((base + i) * rs + (p0 + p) * cs) };
                }
            }
        }
        if rows < mr {
            for p in 0..kc {
                panel[p * mr + rows..(p + 1) * mr].fill(0.0);
            }
        }
    }
}

/// Packs panels `first_panel..` of `b[p0..p0+kc, j0..j0+nc]` (each `nr` columns wide) into
/// `dst`, which holds a whole number of `kc * nr` panels.
pub(crate) fn pack_b(
    b: &MatRef,
    (p0, kc): (usize, usize),
    (j0, nc): (usize, usize),
    nr: usize,
    first_panel: usize,
    dst: &mut [f32],
) {
    let (rs, cs) = (b.row_stride(), b.col_stride());
    let src = b.as_ptr();
    for (idx, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
        let jr = (first_panel + idx) * nr;
        let cols = nr.min(nc - jr);
        let base = j0 + jr;
        if cs == 1 {
            for p in 0..kc {
                // SAFETY: (p0+p, base..base+cols) lies inside the validated view.
                let row = unsafe { std::slice::from_raw_parts(src.add((p0 + p) * rs + base), cols) };
                panel[p * nr..p * nr + cols].copy_from_slice(row);
            }
        } else {
            for j in 0..cols {
                for p in 0..kc {
                    // SAFETY: (p0+p, base+j) lies inside the validated view.
                    panel[p * nr + j] = unsafe { *src.add((p0 + p) * rs + (base + j) * cs) };
                }
            }
        }
        if cols < nr {
            for p in 0..kc {
                panel[p * nr + cols..(p + 1) * nr].fill(0.0);
            }
        }
    }
}
