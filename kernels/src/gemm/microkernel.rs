//! The register-blocked microkernel, written once for every ISA.
//!
//! `C[0..m, 0..n] <- epilogue(alpha * A~ * B~ + beta * C)` for one `MR x NR` tile, with
//! `NR = NR_VECS * S::LANES`. The accumulators live in `MR * NR_VECS` vector registers for
//! the whole `kc` loop; each k step loads `NR_VECS` vectors of B and broadcasts `MR` values
//! of A (BLIS, "Anatomy of High-Performance Matrix Multiplication", Goto & van de Geijn 2008).

use super::epilogue::{Bias, Epilogue};
use crate::isa::{prefetch, Simd};

/// How a tile is finished: the user's epilogue, with `alpha` and the `beta` of this k block.
#[derive(Clone, Copy)]
pub(crate) struct TileFinish<'a> {
    pub alpha: f32,
    pub beta: f32,
    pub epilogue: Epilogue<'a>,
}

/// Computes one tile.
///
/// # Safety
/// `a` holds `kc * MR` and `b` holds `kc * NR` packed values; `c` is valid for rows
/// `0..m` (`m <= MR`) of `n <= NR` elements, `ldc` apart; `row0 + m` and `col0 + n` are
/// within the bias, if any.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn gemm_tile<S: Simd, const MR: usize, const NR_VECS: usize>(
    s: S,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    (m, n): (usize, usize),
    (row0, col0): (usize, usize),
    finish: &TileFinish,
) {
    let lanes = S::LANES;
    let nr = NR_VECS * lanes;
    // C rows are far apart and leave cache between k blocks: fetch them while the k loop runs.
    if finish.beta != 0.0 {
        for i in 0..m {
            prefetch(c.wrapping_add(i * ldc));
            prefetch(c.wrapping_add(i * ldc + n - 1));
        }
    }
    // Constant trip counts everywhere below, so the loops unroll fully and `acc` lives in
    // registers (a dynamic index into it would force it onto the stack).
    let mut acc = [[s.zero(); NR_VECS]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        let mut bv = [s.zero(); NR_VECS];
        for j in 0..NR_VECS {
            // SAFETY: within the packed B micropanel.
            bv[j] = unsafe { s.load(b.add(j * lanes)) };
        }
        for i in 0..MR {
            // SAFETY: within the packed A micropanel.
            let av = unsafe { s.broadcast(a.add(i)) };
            for j in 0..NR_VECS {
                acc[i][j] = s.fma(av, bv[j], acc[i][j]);
            }
        }
        // SAFETY: advancing within (or one past) the micropanels.
        unsafe {
            a = a.add(MR);
            b = b.add(nr);
        }
    }

    let alpha = s.splat(finish.alpha);
    let beta = s.splat(finish.beta);
    let zero = s.zero();
    for i in 0..MR {
        if i >= m {
            break;
        }
        // SAFETY: row i < m of C.
        let c_row = unsafe { c.add(i * ldc) };
        let row_bias = match finish.epilogue.bias {
            Bias::PerRow(bias) => Some(s.splat(bias[row0 + i])),
            _ => None,
        };
        for j in 0..NR_VECS {
            let acc_ij = acc[i][j];
            let col = j * lanes;
            if col >= n {
                break;
            }
            let width = lanes.min(n - col);
            let mut v = if finish.alpha == 1.0 { acc_ij } else { s.mul(acc_ij, alpha) };
            // SAFETY (loads and stores below): columns col..col+width of this row are in C,
            // and col0+col..col0+col+width are in a per-column bias.
            if finish.beta != 0.0 {
                let old = unsafe {
                    if width == lanes {
                        s.load(c_row.add(col))
                    } else {
                        s.load_partial(c_row.add(col), width)
                    }
                };
                v = s.fma(old, beta, v);
            }
            match finish.epilogue.bias {
                Bias::PerCol(bias) => {
                    let p = bias[col0 + col..col0 + col + width].as_ptr();
                    let bv = unsafe {
                        if width == lanes {
                            s.load(p)
                        } else {
                            s.load_partial(p, width)
                        }
                    };
                    v = s.add(v, bv);
                }
                Bias::PerRow(_) => v = s.add(v, row_bias.unwrap_or(zero)),
                Bias::None => {}
            }
            if finish.epilogue.relu {
                v = s.max(v, zero);
            }
            unsafe {
                if width == lanes {
                    s.store(c_row.add(col), v)
                } else {
                    s.store_partial(c_row.add(col), width, v)
                }
            }
        }
    }
}
