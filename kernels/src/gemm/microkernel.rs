//! The register-blocked microkernel, written once for every ISA.
//!
//! `C[0..m, 0..n] <- epilogue(alpha * A~ * B~ + beta * C)` for one `MR x NR` tile, with
//! `NR = NR_VECS * S::LANES`. The accumulators live in `MR * NR_VECS` vector registers for
//! the whole `kc` loop; each k step loads `NR_VECS` vectors of B and broadcasts `MR` values
//! of A (BLIS, "Anatomy of High-Performance Matrix Multiplication", Goto & van de Geijn 2008).

// Index loops over constant bounds are deliberate here: they unroll fully, which keeps the
// accumulators in registers; iterator chains with `take(m)` did not.
#![allow(clippy::needless_range_loop)]

use super::epilogue::{Bias, Epilogue};
use crate::isa::{prefetch, Simd};
use std::mem::MaybeUninit;

/// The largest register tile of any ISA (12 x 32 on AVX-512), in f32.
const MAX_TILE: usize = 12 * 32;

/// How a tile is finished: the user's epilogue, with `alpha` and the `beta` of this k block.
#[derive(Clone, Copy)]
pub(crate) struct TileFinish<'a> {
    pub alpha: f32,
    pub beta: f32,
    pub epilogue: Epilogue<'a>,
}

/// Where a tile goes: rows `0..m` of `n` elements from `c`, `ldc` apart, which are rows
/// `row0..` and columns `col0..` of C (for the bias), finished by `finish`.
#[derive(Clone, Copy)]
pub(crate) struct CTile<'a> {
    pub c: *mut f32,
    pub ldc: usize,
    pub size: (usize, usize),
    pub at: (usize, usize),
    pub finish: &'a TileFinish<'a>,
}

/// One k step: `NR_VECS` loads of B, `MR` broadcasts of A, `MR * NR_VECS` FMAs.
/// A function, not a closure: it must inline into the `#[target_feature]` frame; `acc` by
/// value, since a reference would keep the accumulators in memory.
///
/// # Safety
/// `a` holds `MR` readable values `a_rs` apart and `b` holds `NR_VECS * S::LANES`.
#[inline(always)]
unsafe fn k_step<S: Simd, const MR: usize, const NR_VECS: usize>(
    s: S,
    mut acc: [[S::V; NR_VECS]; MR],
    a: *const f32,
    a_rs: usize,
    b: *const f32,
) -> [[S::V; NR_VECS]; MR] {
    let mut bv = [s.zero(); NR_VECS];
    for j in 0..NR_VECS {
        // SAFETY: within the packed B micropanel.
        bv[j] = unsafe { s.load(b.add(j * S::LANES)) };
    }
    for i in 0..MR {
        // SAFETY: within the packed A micropanel.
        let av = unsafe { s.broadcast(a.add(i * a_rs)) };
        for j in 0..NR_VECS {
            acc[i][j] = s.fma(av, bv[j], acc[i][j]);
        }
    }
    acc
}

/// Computes one tile.
///
/// # Safety
/// `a` holds `MR` rows of `kc` values, `a_rs` apart (packed, or A in place); `b` holds
/// `kc` rows of at least `NR` packed values, `b_stride` apart (a narrower kernel may run on
/// the first columns of a wider panel); `out.c` is valid for rows `0..m` (`m <= MR`) of
/// `n <= NR` elements, `ldc` apart; `row0 + m` and `col0 + n` are within the bias, if any.
#[inline(always)]
pub(crate) unsafe fn gemm_tile<S: Simd, const MR: usize, const NR_VECS: usize>(
    s: S,
    kc: usize,
    (a, a_rs): (*const f32, usize),
    (b, b_stride): (*const f32, usize),
    out: CTile,
) {
    let CTile { c, ldc, size: (m, n), at: (row0, col0), finish } = out;
    let lanes = S::LANES;
    let nr = NR_VECS * lanes;
    debug_assert!(b_stride >= nr);
    // C rows are far apart and leave cache between k blocks: fetch them (to read, or to own
    // for writing) while the k loop runs.
    for i in 0..m {
        prefetch(c.wrapping_add(i * ldc));
        prefetch(c.wrapping_add(i * ldc + n - 1));
    }
    // Constant trip counts only, so the loops unroll fully and `acc` lives in registers
    // (a dynamic index into it would keep it in memory).
    let mut acc = [[s.zero(); NR_VECS]; MR];
    let (mut a, mut b) = (a, b);
    // Unrolled by four: fewer loop-carried pointer updates per FMA.
    for _ in 0..kc / 4 {
        // SAFETY: four k steps remain in both micropanels.
        unsafe {
            acc = k_step::<S, MR, NR_VECS>(s, acc, a, a_rs, b);
            acc = k_step::<S, MR, NR_VECS>(s, acc, a.add(1), a_rs, b.add(b_stride));
            acc = k_step::<S, MR, NR_VECS>(s, acc, a.add(2), a_rs, b.add(2 * b_stride));
            acc = k_step::<S, MR, NR_VECS>(s, acc, a.add(3), a_rs, b.add(3 * b_stride));
            a = a.add(4);
            b = b.add(4 * b_stride);
        }
    }
    for _ in 0..kc % 4 {
        // SAFETY: one k step remains; advancing within (or one past) the micropanels.
        unsafe {
            acc = k_step::<S, MR, NR_VECS>(s, acc, a, a_rs, b);
            a = a.add(1);
            b = b.add(b_stride);
        }
    }

    // The common case, a full tile with a plain epilogue (every k block but the last, and
    // plain GEMMs): stored straight from registers, every index constant.
    if m == MR && n == nr && finish.alpha == 1.0 && matches!(finish.epilogue.bias, Bias::None) && !finish.epilogue.relu
    {
        for i in 0..MR {
            for j in 0..NR_VECS {
                // SAFETY: the full tile lies inside C.
                unsafe {
                    let p = c.add(i * ldc + j * lanes);
                    let v = if finish.beta == 0.0 {
                        acc[i][j]
                    } else if finish.beta == 1.0 {
                        s.add(acc[i][j], s.load(p))
                    } else {
                        s.fma(s.load(p), s.splat(finish.beta), acc[i][j])
                    };
                    s.store(p, v);
                }
            }
        }
        return;
    }

    // Spill the accumulators to a stack tile with constant indices (these loops unroll),
    // so the finishing loop below may index dynamically without pinning `acc` to memory
    // during the k loop.
    let mut tile = MaybeUninit::<[f32; MAX_TILE]>::uninit();
    let tile_ptr = tile.as_mut_ptr() as *mut f32;
    debug_assert!(MR * nr <= MAX_TILE);
    for i in 0..MR {
        for j in 0..NR_VECS {
            // SAFETY: (i * NR_VECS + j + 1) * lanes <= MR * nr <= MAX_TILE.
            unsafe { s.store(tile_ptr.add((i * NR_VECS + j) * lanes), acc[i][j]) };
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
            // SAFETY: written above.
            let acc_ij = unsafe { s.load(tile_ptr.add((i * NR_VECS + j) * lanes)) };
            let col = j * lanes;
            if col >= n {
                break;
            }
            let width = lanes.min(n - col);
            let mut v = if finish.alpha == 1.0 { acc_ij } else { s.mul(acc_ij, alpha) };
            // SAFETY (loads and stores below): columns col..col+width of this row are in C,
            // and col0+col..col0+col+width are in a per-column bias.
            if finish.beta != 0.0 {
                let old = unsafe { s.load_upto(c_row.add(col), width) };
                v = s.fma(old, beta, v);
            }
            match finish.epilogue.bias {
                Bias::PerCol(bias) => {
                    let p = bias[col0 + col..col0 + col + width].as_ptr();
                    let bv = unsafe { s.load_upto(p, width) };
                    v = s.add(v, bv);
                }
                Bias::PerRow(_) => v = s.add(v, row_bias.unwrap_or(zero)),
                Bias::None => {}
            }
            if finish.epilogue.relu {
                v = s.max(v, zero);
            }
            unsafe { s.store_upto(c_row.add(col), width, v) };
        }
    }
}

/// The largest kc a narrow tile's transposed B columns are sized for ([`super::params`]).
pub(crate) const NARROW_MAX_KC: usize = 320;

/// The last one or two columns of C, where a tile would compute a whole vector of columns
/// for them with too few accumulators to hide the FMA latency: `NJ` dot products per row
/// instead, vectorised along k (`MR * NJ` accumulators), then summed across lanes.
///
/// # Safety
/// `a` holds `MR` rows of `kc` values, `a_rs` apart; `bt` holds `NJ` rows of `kc` values
/// (B's columns, transposed), `bt_rs` apart; `out` as for [`gemm_tile`], with `n <= NJ`.
#[inline(always)]
pub(crate) unsafe fn narrow_tile<S: Simd, const MR: usize, const NJ: usize>(
    s: S,
    kc: usize,
    (a, a_rs): (*const f32, usize),
    (bt, bt_rs): (*const f32, usize),
    out: CTile,
) {
    let CTile { c, ldc, size: (m, n), at: (row0, col0), finish } = out;
    let lanes = S::LANES;
    let mut acc = [[s.zero(); NJ]; MR];
    let mut k = 0;
    while k < kc {
        let width = lanes.min(kc - k);
        // SAFETY: k + width <= kc values of every row of A and of B^T.
        unsafe {
            let mut bv = [s.zero(); NJ];
            for j in 0..NJ {
                bv[j] = s.load_upto(bt.add(j * bt_rs + k), width);
            }
            for i in 0..MR {
                let av = s.load_upto(a.add(i * a_rs + k), width);
                for j in 0..NJ {
                    acc[i][j] = s.fma(av, bv[j], acc[i][j]);
                }
            }
        }
        k += lanes;
    }
    for i in 0..m.min(MR) {
        for j in 0..n.min(NJ) {
            // SAFETY: (row i, column j) lies in C (the caller's contract).
            let p = unsafe { c.add(i * ldc + j) };
            // The same steps as a tile's slow path, one element at a time.
            let mut v = s.hsum(acc[i][j]);
            if finish.alpha != 1.0 {
                v *= finish.alpha;
            }
            if finish.beta != 0.0 {
                // SAFETY: as above.
                v = unsafe { *p }.mul_add(finish.beta, v);
            }
            match finish.epilogue.bias {
                Bias::PerRow(bias) => v += bias[row0 + i],
                Bias::PerCol(bias) => v += bias[col0 + j],
                Bias::None => {}
            }
            if finish.epilogue.relu {
                v = v.max(0.0);
            }
            // SAFETY: as above.
            unsafe { *p = v };
        }
    }
}
