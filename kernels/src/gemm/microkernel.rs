//! The register-blocked microkernel, written once for every ISA.
//!
//! `C[0..m, 0..n] <- epilogue(alpha * A~ * B~ + beta * C)` for one `MR x NR` tile, with
//! `NR = NR_VECS * S::LANES`. The accumulators live in `MR * NR_VECS` vector registers for
//! the whole `kc` loop; each k step loads `NR_VECS` vectors of B and broadcasts `MR` values
//! of A (BLIS, "Anatomy of High-Performance Matrix Multiplication", Goto & van de Geijn 2008).
//!
//! A packed panel of A holds the `MR` values of each k step together, so the broadcasts
//! address one pointer at constant offsets and the loop's only integer work is two pointer
//! increments per step: on Intel cores the FMA ports also run integer arithmetic, and the
//! address arithmetic of `MR` separate rows took a fifth of their slots.

// Index loops over constant bounds are deliberate here: they unroll fully, which keeps the
// accumulators in registers; iterator chains with `take(m)` did not.
#![allow(clippy::needless_range_loop)]

use super::epilogue::{Bias, Epilogue};
use crate::isa::{prefetch, Simd};

/// The largest register tile of any ISA (12 x 32 on AVX-512), in f32.
pub(crate) const MAX_TILE: usize = 12 * 32;

/// Where a tile's `MR` rows of A are.
#[derive(Clone, Copy)]
pub(crate) enum APanel {
    /// Packed: the values of each k step together, `step` apart (`step * kc` values;
    /// `step` is the packing's `MR`, which a shorter tile on a partial panel exceeds).
    Packed(*const f32, usize),
    /// Read in place: row `i`'s `kc` values from `ptr + i * rs`.
    Rows(*const f32, usize),
}

/// How a tile is finished: the user's epilogue, with `alpha` and the `beta` of this k block.
#[derive(Clone, Copy)]
pub(crate) struct TileFinish<'a> {
    pub alpha: f32,
    pub beta: f32,
    pub epilogue: Epilogue<'a>,
}

/// Where a tile goes: rows `0..m` of `n` elements from `c`, `ldc` apart, which are rows
/// `row0..` and columns `col0..` of C (for the bias), finished by `finish`. `stage` is
/// scratch memory for [`MAX_TILE`] values, where a tile that cannot be stored straight from
/// registers is staged (scratch, not the stack: stack traffic in a kernel's loops is what
/// the spill check looks for).
#[derive(Clone, Copy)]
pub(crate) struct CTile<'a> {
    pub c: *mut f32,
    pub ldc: usize,
    pub size: (usize, usize),
    pub at: (usize, usize),
    pub finish: &'a TileFinish<'a>,
    pub stage: *mut f32,
}

/// One k step: `NR_VECS` loads of B, `MR` broadcasts of A (value `i` at `a + i * a_rs`),
/// `MR * NR_VECS` FMAs. A function, not a closure: it must inline into the kernel instance;
/// `acc` by value, since a reference would keep the accumulators in memory.
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
        // SAFETY: within the A panel.
        let av = unsafe { s.broadcast(a.add(i * a_rs)) };
        for j in 0..NR_VECS {
            acc[i][j] = s.fma(av, bv[j], acc[i][j]);
        }
    }
    acc
}

/// The k loop of a tile: `kc` steps, A's values `a_rs` apart within a step and `a_step`
/// apart between steps (packed: 1 and `MR`; in place: the row stride and 1).
///
/// # Safety
/// As [`k_step`] for every step.
#[inline(always)]
unsafe fn k_loop<S: Simd, const MR: usize, const NR_VECS: usize>(
    s: S,
    kc: usize,
    (a, a_rs, a_step): (*const f32, usize, usize),
    (b, b_stride): (*const f32, usize),
) -> [[S::V; NR_VECS]; MR] {
    let mut acc = [[s.zero(); NR_VECS]; MR];
    let (mut a, mut b) = (a, b);
    // Small tiles take four steps per iteration: on Intel cores the loop's pointer updates
    // compete with the FMAs for the same ports. Large ones take one: their step already
    // holds MR * NR_VECS FMAs, and with more the scheduler hoists the broadcasts of later
    // steps ahead of their FMAs, past the register file (24 accumulators spilled at two
    // steps on AVX-512).
    let mut k = 0;
    if MR * NR_VECS <= 16 {
        while k + 4 <= kc {
            // SAFETY: four k steps remain in both panels.
            unsafe {
                acc = k_step::<S, MR, NR_VECS>(s, acc, a, a_rs, b);
                acc = k_step::<S, MR, NR_VECS>(s, acc, a.add(a_step), a_rs, b.add(b_stride));
                acc = k_step::<S, MR, NR_VECS>(s, acc, a.add(2 * a_step), a_rs, b.add(2 * b_stride));
                acc = k_step::<S, MR, NR_VECS>(s, acc, a.add(3 * a_step), a_rs, b.add(3 * b_stride));
                a = a.add(4 * a_step);
                b = b.add(4 * b_stride);
            }
            k += 4;
        }
    }
    while k < kc {
        // SAFETY: a k step remains in both panels.
        unsafe {
            acc = k_step::<S, MR, NR_VECS>(s, acc, a, a_rs, b);
            a = a.add(a_step);
            b = b.add(b_stride);
        }
        k += 1;
    }
    acc
}

/// Computes one tile.
///
/// # Safety
/// `a` holds the tile's `MR` rows of `kc` values; `b` holds `kc` rows of at least `NR`
/// packed values, `b_stride` apart (a narrower kernel may run on the first columns of a
/// wider panel); `out.c` is valid for rows `0..m` (`m <= MR`) of `n <= NR` elements, `ldc`
/// apart; `row0 + m` and `col0 + n` are within the bias, if any.
#[inline(always)]
pub(crate) unsafe fn gemm_tile<S: Simd, const MR: usize, const NR_VECS: usize>(
    s: S,
    kc: usize,
    a: APanel,
    (b, b_stride): (*const f32, usize),
    out: CTile,
) {
    let CTile { c, ldc, size: (m, n), at: (row0, col0), finish, stage } = out;
    let lanes = S::LANES;
    let nr = NR_VECS * lanes;
    debug_assert!(b_stride >= nr);
    // C rows are far apart and leave cache between k blocks: fetch them (to read, or to own
    // for writing) while the k loop runs.
    for i in 0..m {
        prefetch(c.wrapping_add(i * ldc));
        prefetch(c.wrapping_add(i * ldc + n - 1));
    }
    // SAFETY: the caller's contract, for either layout.
    let acc = unsafe {
        match a {
            APanel::Packed(p, step) => k_loop::<S, MR, NR_VECS>(s, kc, (p, 1, step), (b, b_stride)),
            APanel::Rows(p, rs) => k_loop::<S, MR, NR_VECS>(s, kc, (p, rs, 1), (b, b_stride)),
        }
    };

    // The common case, a full tile with a plain epilogue (every k block but the last, and
    // plain GEMMs): stored straight from registers, every index constant. One loop per
    // case, each body a single step, so that every loop over `acc` unrolls fully (a loop
    // left rolled would index `acc` dynamically and pin it to the stack, k loop included).
    if m == MR && n == nr && finish.alpha == 1.0 && matches!(finish.epilogue.bias, Bias::None) && !finish.epilogue.relu
    {
        let at = |i: usize, j: usize| c.wrapping_add(i * ldc + j * lanes);
        // SAFETY (all three): the full tile lies inside C.
        if finish.beta == 0.0 {
            for i in 0..MR {
                for j in 0..NR_VECS {
                    unsafe { s.store(at(i, j), acc[i][j]) };
                }
            }
        } else if finish.beta == 1.0 {
            for i in 0..MR {
                for j in 0..NR_VECS {
                    unsafe { s.store(at(i, j), s.add(acc[i][j], s.load(at(i, j)))) };
                }
            }
        } else {
            let beta = s.splat(finish.beta);
            for i in 0..MR {
                for j in 0..NR_VECS {
                    unsafe { s.store(at(i, j), s.fma(s.load(at(i, j)), beta, acc[i][j])) };
                }
            }
        }
        return;
    }

    // Stage the accumulators with constant indices (these loops unroll), so the finishing
    // loop below may index dynamically without pinning `acc` to memory during the k loop.
    let tile_ptr = stage;
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
                // Splatted per vector: a row's splat kept across the loop was spilled (SSE2).
                Bias::PerRow(bias) => v = s.add(v, s.splat(bias[row0 + i])),
                Bias::None => {}
            }
            if finish.epilogue.relu {
                v = s.max(v, zero);
            }
            unsafe { s.store_upto(c_row.add(col), width, v) };
        }
    }
}

/// The last one or two columns of C, where a tile would compute a whole vector of columns
/// for them with too few accumulators to hide the FMA latency. A packed panel's k steps are
/// columns of `MR <= LANES` rows, so the products run along M instead: `NJ` columns of
/// sums, each over four interleaved partial sums (the FMA latency). Each k step loads a
/// whole vector: the lanes past `MR` read the next step's values, and are discarded.
///
/// # Safety
/// `a` holds a packed panel of `MR * kc` values followed by `LANES` readable ones; `b` holds
/// `kc` rows of at least `NJ` values, `b_stride` apart; `out` as for [`gemm_tile`], with
/// `n <= NJ`.
#[inline(always)]
pub(crate) unsafe fn narrow_packed<S: Simd, const MR: usize, const NJ: usize>(
    s: S,
    kc: usize,
    a: *const f32,
    (b, b_stride): (*const f32, usize),
    out: CTile,
) {
    debug_assert!(MR <= S::LANES);
    let mut acc = [[s.zero(); 4]; NJ];
    let mut k = 0;
    while k < kc {
        let steps = 4.min(kc - k);
        for q in 0..4 {
            if q < steps {
                // SAFETY: step k + q < kc of the panel, plus the slack past its end.
                unsafe {
                    let av = s.load(a.add((k + q) * MR));
                    for j in 0..NJ {
                        acc[j][q] = s.fma(av, s.broadcast(b.add((k + q) * b_stride + j)), acc[j][q]);
                    }
                }
            }
        }
        k += 4;
    }
    for j in 0..NJ {
        let sum = s.add(s.add(acc[j][0], acc[j][1]), s.add(acc[j][2], acc[j][3]));
        // SAFETY: the stage holds MAX_TILE >= NJ * LANES values.
        unsafe { s.store(out.stage.add(j * S::LANES), sum) };
    }
    // SAFETY: the caller's contract; the stage holds the sums, column-major.
    unsafe { finish_narrow::<NJ>(S::LANES, out) };
}

/// [`narrow_packed`] for rows of A read in place: `NJ` dot products per row, vectorised
/// along k (`MR * NJ` accumulators), then summed across lanes.
///
/// # Safety
/// `a` holds `MR` rows of `kc` values, `a_rs` apart; `bt` holds `NJ` rows of `kc` values
/// (B's columns, transposed), `bt_rs` apart; `out` as for [`gemm_tile`], with `n <= NJ`.
#[inline(always)]
pub(crate) unsafe fn narrow_rows<S: Simd, const MR: usize, const NJ: usize>(
    s: S,
    kc: usize,
    (a, a_rs): (*const f32, usize),
    (bt, bt_rs): (*const f32, usize),
    out: CTile,
) {
    let lanes = S::LANES;
    let mut acc = [[s.zero(); NJ]; MR];
    let body = kc - kc % lanes;
    let mut k = 0;
    while k < body {
        // SAFETY: k + lanes <= kc values of every row of A and of B^T.
        unsafe { acc = dot_step::<S, MR, NJ>(s, acc, (a.add(k), a_rs), (bt.add(k), bt_rs), lanes) };
        k += lanes;
    }
    if body < kc {
        // SAFETY: the last kc - body values of every row.
        unsafe { acc = dot_step::<S, MR, NJ>(s, acc, (a.add(body), a_rs), (bt.add(body), bt_rs), kc - body) };
    }
    for i in 0..MR {
        for j in 0..NJ {
            // SAFETY: the stage holds MAX_TILE >= NJ * LANES values and MR <= LANES.
            unsafe { *out.stage.add(j * lanes + i) = s.hsum(acc[i][j]) };
        }
    }
    // SAFETY: the caller's contract; the stage holds the sums, column-major.
    unsafe { finish_narrow::<NJ>(lanes, out) };
}

/// One step of [`narrow_rows`]: `width <= LANES` values of every row of A and of B^T.
///
/// # Safety
/// Every row holds `width` readable values.
#[inline(always)]
unsafe fn dot_step<S: Simd, const MR: usize, const NJ: usize>(
    s: S,
    mut acc: [[S::V; NJ]; MR],
    (a, a_rs): (*const f32, usize),
    (bt, bt_rs): (*const f32, usize),
    width: usize,
) -> [[S::V; NJ]; MR] {
    // SAFETY: the caller's contract.
    unsafe {
        let mut bv = [s.zero(); NJ];
        for j in 0..NJ {
            bv[j] = s.load_upto(bt.add(j * bt_rs), width);
        }
        for i in 0..MR {
            let av = s.load_upto(a.add(i * a_rs), width);
            for j in 0..NJ {
                acc[i][j] = s.fma(av, bv[j], acc[i][j]);
            }
        }
    }
    acc
}

/// The finishing steps of a tile's slow path, one element at a time, for a narrow tile
/// whose sums are staged column-major (`stage[j * ld + i]`).
///
/// # Safety
/// As for [`gemm_tile`]; the stage holds the sums of rows `0..m`, columns `0..n`.
#[inline(always)]
unsafe fn finish_narrow<const NJ: usize>(ld: usize, out: CTile) {
    let CTile { c, ldc, size: (m, n), at: (row0, col0), finish, stage } = out;
    for j in 0..n.min(NJ) {
        for i in 0..m {
            // SAFETY: (row i, column j) lies in C, and its sum in the stage.
            let (p, mut v) = unsafe { (c.add(i * ldc + j), *stage.add(j * ld + i)) };
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
