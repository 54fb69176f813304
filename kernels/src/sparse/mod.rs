//! Sparse matrices in compressed sparse row (CSR) form and the two products that carry
//! graph networks (DGL's g-SpMM and g-SDDMM, Wang et al. 2019, "Deep Graph Library"):
//!
//! - [`spmm`]: `Y = A X`, a CSR matrix times a dense one: each output row sums the rows of
//!   `X` its entries name, scaled by their values (a GCN's aggregation `Â H`, a sparse
//!   feature matrix times a weight);
//! - [`sddmm`]: one value per stored entry `(i, j)` of `A`, the dot product of row `i` of
//!   `U` and row `j` of `V` (a graph auto-encoder's edge scores `z_i · z_j`, never the dense
//!   `N x N` product).
//!
//! Each is the other's backward: `dX = Aᵀ dY` is [`spmm`] on the transpose
//! ([`Csr::transpose`], built once per structure), and the gradient of `A`'s values is
//! [`sddmm`] of `dY` and `X`. Rows go to the threads in runs of about equal work (entries
//! plus one per row, so power-law degrees balance); every output row is computed by one
//! thread in one fixed order, so results are bit-identical on any thread count.

mod csr;
mod sddmm_rows;
mod spmm_rows;

pub use csr::{Csr, CsrRef, Transposed};

use crate::gemm::GemmConfig;
use crate::threading::for_each_task;
use crate::KernelError;
use sddmm_rows::SddmmRows;
use spmm_rows::SpmmRows;

/// The named kernel instances of this module.
pub(crate) const KERNELS: &[&[crate::isa::Instance]] = &[spmm_rows::INSTANCES, sddmm_rows::INSTANCES];

/// Entries (times features) below which a second thread costs more than it saves.
const MIN_WORK_PER_PART: usize = 1 << 14;

/// Rows `r0..r1` of the `p`-th of `parts` runs of about equal work, counting each row as its
/// entries plus one.
fn part_rows(row_ptr: &[u32], p: usize, parts: usize) -> (usize, usize) {
    let rows = row_ptr.len() - 1;
    let total = row_ptr[rows] as usize + rows;
    let bound = |p: usize| {
        let target = total * p / parts;
        let (mut lo, mut hi) = (0usize, rows);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if (row_ptr[mid] as usize + mid) < target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    };
    (bound(p), if p + 1 == parts { rows } else { bound(p + 1) })
}

/// How many runs of rows a product of `work` multiply-adds is split into.
fn parts_for(cfg: &GemmConfig, work: usize) -> usize {
    cfg.threads().min(work / MIN_WORK_PER_PART).max(1)
}

/// Checks a dense operand of `rows` rows of `f` values, `ld` apart.
fn check_dense(what: &'static str, data: usize, rows: usize, f: usize, ld: usize) -> Result<(), KernelError> {
    if ld < f {
        return Err(KernelError::LeadingDimTooSmall { what, ld, cols: f });
    }
    let need = if rows == 0 { 0 } else { (rows - 1) * ld + f };
    if data < need {
        return Err(KernelError::SliceTooShort { what, rows, cols: f, ld, need, got: data });
    }
    Ok(())
}

/// How an output row combines the rows its entries name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// `Σ a_ij x_j`: the product `A X`.
    Sum,
    /// `max_j a_ij x_j`, per feature; 0 for a row without entries.
    Max,
}

/// `Y = A X` (or `Y += A X` with `accumulate`): `A` is `rows x cols`, `X` is `cols x f`
/// (rows `ldx` apart), `Y` is `rows x f` (rows `ldy` apart); entries without values count
/// as 1.
pub fn spmm(
    cfg: &GemmConfig,
    a: CsrRef,
    x: (&[f32], usize),
    f: usize,
    y: (&mut [f32], usize),
    accumulate: bool,
) -> Result<(), KernelError> {
    aggregate(cfg, a, Reduce::Sum, x, f, y, accumulate)
}

/// Message passing's aggregation: each row of `Y` combines, by `reduce`, the rows of `X`
/// the entries of its row of `A` name, each scaled by the entry's value (1 without values).
/// Shapes as [`spmm`]. With `accumulate` the result is added to `Y` (a sum) or taken into
/// its maximum, a row without entries leaving it as it was.
pub fn aggregate(
    cfg: &GemmConfig,
    a: CsrRef,
    reduce: Reduce,
    (x, ldx): (&[f32], usize),
    f: usize,
    (y, ldy): (&mut [f32], usize),
    accumulate: bool,
) -> Result<(), KernelError> {
    check_dense("SpMM X", x.len(), a.cols(), f, ldx)?;
    check_dense("SpMM Y", y.len(), a.rows(), f, ldy)?;
    if a.rows() == 0 || f == 0 {
        return Ok(());
    }
    let parts = parts_for(cfg, a.nnz() * f);
    let y_ptr = OutPtr(y.as_mut_ptr());
    for_each_task(cfg.threads(), parts, |p| {
        let rows = part_rows(a.row_ptr(), p, parts);
        // SAFETY: the runs of rows are disjoint, so each task writes its own rows of Y,
        // which the checks above put inside the slice.
        let y_part = unsafe { y_ptr.rows(rows, ldy, f) };
        cfg.run(SpmmRows { a, reduce, rows, x, ldx, f, y: y_part, ldy, accumulate });
    });
    Ok(())
}

/// For a maximum `Y` that [`aggregate`] computed from `A` and `X` (shapes as there): per
/// row of `Y` and feature still marked [`NO_ENTRY`] in `arg` (`rows x f`), the first entry
/// of the row (its position in `A`, plus `base`) whose scaled value equals the maximum.
/// The caller marks `arg` first; several matrices over one `Y`, taken in turn with their
/// own bases, leave each place the first entry that won, and rows without entries marked.
pub fn max_entries(
    a: CsrRef,
    (x, ldx): (&[f32], usize),
    f: usize,
    y: &[f32],
    base: u32,
    arg: &mut [u32],
) -> Result<(), KernelError> {
    check_dense("max X", x.len(), a.cols(), f, ldx)?;
    for (what, len) in [("max Y", y.len()), ("max entries", arg.len())] {
        if len != a.rows() * f {
            return Err(KernelError::TensorLength { what, expected: a.rows() * f, got: len });
        }
    }
    for i in 0..a.rows() {
        let (yi, argi) = (&y[i * f..][..f], &mut arg[i * f..][..f]);
        for k in a.row_ptr()[i] as usize..a.row_ptr()[i + 1] as usize {
            let xj = &x[a.col_idx()[k] as usize * ldx..][..f];
            let scale = a.values().map_or(1.0, |v| v[k]);
            for c in 0..f {
                if argi[c] == NO_ENTRY && scale * xj[c] == yi[c] {
                    argi[c] = base + k as u32;
                }
            }
        }
    }
    Ok(())
}

/// Marks a place of [`max_entries`]'s output that no entry has won.
pub const NO_ENTRY: u32 = u32::MAX;

/// `out[e] = U[i] · V[j]` for each stored entry `e = (i, j)` of `A` (its values unused):
/// `U` is `rows x f`, `V` is `cols x f`, rows `ldu` and `ldv` apart; `out` has `nnz` values.
pub fn sddmm(
    cfg: &GemmConfig,
    a: CsrRef,
    (u, ldu): (&[f32], usize),
    (v, ldv): (&[f32], usize),
    f: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    check_dense("SDDMM U", u.len(), a.rows(), f, ldu)?;
    check_dense("SDDMM V", v.len(), a.cols(), f, ldv)?;
    if out.len() != a.nnz() {
        return Err(KernelError::TensorLength {
            what: "SDDMM output (one value per entry)",
            expected: a.nnz(),
            got: out.len(),
        });
    }
    if a.nnz() == 0 {
        return Ok(());
    }
    let parts = parts_for(cfg, a.nnz() * f.max(1));
    let out_ptr = OutPtr(out.as_mut_ptr());
    for_each_task(cfg.threads(), parts, |p| {
        let rows = part_rows(a.row_ptr(), p, parts);
        let (e0, e1) = (a.row_ptr()[rows.0] as usize, a.row_ptr()[rows.1] as usize);
        // SAFETY: the runs of rows own disjoint runs of entries, inside `out` (checked).
        let out_part = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(e0), e1 - e0) };
        cfg.run(SddmmRows { a, rows, u: (u, ldu), v: (v, ldv), f, out: out_part });
    });
    Ok(())
}

/// An output's base pointer, shared by the tasks that write disjoint runs of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

// SAFETY: tasks write disjoint runs of the output, whose only mutable borrow the caller
// holds for the duration of the call.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }

    /// Rows `r0..r1` of a matrix of rows `ld` apart, the last one `f` long.
    ///
    /// # Safety
    /// The rows lie inside the allocation, and no other live reference covers them.
    unsafe fn rows<'a>(self, (r0, r1): (usize, usize), ld: usize, f: usize) -> &'a mut [f32] {
        if r0 == r1 {
            return &mut [];
        }
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.get().add(r0 * ld), (r1 - r0 - 1) * ld + f) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_row_once_and_balance_entries() {
        // A power-law-ish structure: one heavy row among light ones, and empty rows.
        let degrees = [0usize, 50, 1, 1, 0, 2, 30, 0, 1, 1, 1, 1];
        let mut row_ptr = vec![0u32];
        for d in degrees {
            row_ptr.push(row_ptr.last().unwrap() + d as u32);
        }
        for parts in 1..6 {
            let mut next = 0;
            for p in 0..parts {
                let (r0, r1) = part_rows(&row_ptr, p, parts);
                assert_eq!(r0, next, "parts {parts}: part {p} starts where the last ended");
                assert!(r1 >= r0);
                next = r1;
            }
            assert_eq!(next, degrees.len());
        }
        assert_eq!(part_rows(&row_ptr, 0, 2), (0, 2), "the heavy row ends the first half");
    }
}
