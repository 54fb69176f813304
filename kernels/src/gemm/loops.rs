//! The five loops around the microkernel (BLIS order jc -> pc -> ic -> jr -> ir) and their
//! split across threads.
//!
//! Threads split the M and N extents of C, never K, so every element of C is summed in the
//! same order whatever the thread count: results are bit-identical from 1 to T threads.

use super::matrix::MatRef;
use super::microkernel::{gemm_tile, narrow_packed, narrow_rows, APanel, CTile, TileFinish, MAX_TILE};
use super::pack::{PackA, PackB};
use super::packed_b::PackedB;
use super::params::Blocking;
use super::Epilogue;
use crate::isa::{instances, Simd, WithSimd};
use crate::scratch::{Scratch, Slot};
use crate::threading::{for_each_task, AlignedSplit};

/// Where B comes from: a view packed on the fly, or panels packed in advance.
#[derive(Clone, Copy)]
pub(crate) enum BSource<'a> {
    View(MatRef<'a>),
    Packed(&'a PackedB),
}

/// C's base pointer, shared by the tasks that write disjoint tiles of it.
#[derive(Clone, Copy)]
pub(crate) struct CPtr(pub *mut f32);
impl CPtr {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    #[inline(always)]
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: tasks write disjoint tiles of C (the M x N split), and the caller holds the only
// mutable borrow of C for the duration of the call.
unsafe impl Send for CPtr {}
// SAFETY: as above.
unsafe impl Sync for CPtr {}

/// A validated GEMM with m, n, k > 0 and alpha != 0.
#[derive(Clone, Copy)]
pub(crate) struct Problem<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub beta: f32,
    pub a: MatRef<'a>,
    pub b: BSource<'a>,
    pub c: CPtr,
    pub ldc: usize,
    pub epilogue: Epilogue<'a>,
    pub threads: usize,
}

/// The widest vector of any path, in f32.
const MAX_LANES: usize = 16;

/// At most this many column panels per thread read A in place instead of packing it.
const DIRECT_A_MAX_PANELS: usize = 8;

/// Multiply-adds each thread should get: a product of a few microseconds gains nothing from
/// a second thread (64^3 on two threads ran at 96 GFLOP/s against 122 on one, 128^3 broke
/// even, 256^3 gained a quarter).
const MIN_MACS_PER_THREAD: usize = 1 << 21;

/// Chooses how many ways to split M and N (`pm * pn = threads`) so that the largest task,
/// counted in padded tiles, is smallest; ties go to splitting M (the tasks then share B).
fn partition(m: usize, n: usize, threads: usize, mr: usize, nr: usize) -> (usize, usize) {
    let padded = |len: usize, parts: usize, align: usize| short_tiles_padded(len.div_ceil(parts), align);
    (1..=threads)
        .filter(|&pm| threads.is_multiple_of(pm))
        .map(|pm| (pm, threads / pm))
        .min_by_key(|&(pm, pn)| (padded(m, pm, mr) * padded(n, pn, nr), pn))
        .unwrap_or((1, 1))
}

/// The rows the register tiles compute for `rows` rows of C: whole `mr`-row tiles, the
/// last of them two thirds tall when that covers it (see [`block_tiles`]).
fn short_tiles_padded(rows: usize, mr: usize) -> usize {
    let rem = rows % mr;
    let short = if mr.is_multiple_of(3) { mr / 3 * 2 } else { mr };
    rows - rem
        + if rem == 0 {
            0
        } else if rem <= short {
            short
        } else {
            mr
        }
}

pub(crate) struct GemmOp<'a>(pub Problem<'a>);

impl WithSimd for GemmOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let p = &self.0;
        let blk = Blocking::of::<S>();
        let threads = (p.m * p.n * p.k / MIN_MACS_PER_THREAD).clamp(1, p.threads);
        let (pm, pn) = partition(p.m, p.n, threads, blk.mr, blk.nr);
        let m_split = AlignedSplit::new(p.m, pm, blk.mr);
        let n_split = AlignedSplit::new(p.n, pn, blk.nr);
        // One parallel region per call: each task owns a block of C for the whole K loop and
        // packs what it needs itself, so threads never wait on each other.
        for_each_task(threads, m_split.len() * n_split.len(), |t| {
            let (rows, cols) = (m_split.get(t / n_split.len()), n_split.get(t % n_split.len()));
            let task = BlockTask { p, blk, rows, cols };
            match S::GEMM_MR {
                4 => block::<S, 4>(s, task),
                6 => block::<S, 6>(s, task),
                12 => block::<S, 12>(s, task),
                mr => unreachable!("no GEMM instantiation for {mr}-row tiles"),
            }
        });
    }
}

/// One thread's share: rows `rows` and columns `cols` of C, the whole K loop.
#[derive(Clone, Copy)]
struct BlockTask<'a, 'p> {
    p: &'p Problem<'a>,
    blk: Blocking,
    rows: (usize, usize),
    cols: (usize, usize),
}

/// The jc, pc and ic loops of one thread's block, with the packing; each column panel of a
/// block of A goes to the [`PanelTiles`] kernel.
fn block<S: Simd, const MR: usize>(s: S, task: BlockTask) {
    let BlockTask { p, blk, rows, cols } = task;
    let nr = blk.nr;
    let kc_step = blk.kc_for(p.k);
    // With few column panels, each A micropanel is used only a few times and copying it
    // costs more than it saves: row-major A is then read in place (the microkernel
    // broadcasts from MR row segments), and only a last, partial panel of rows is packed,
    // to pad it with zeros. With many panels the contiguous copy wins (rows of A a page
    // apart alias in L1 and the TLB). Decided on the whole of N, not a thread's share: the
    // two layouts sum a narrow tile's products in different orders, and results must not
    // depend on the thread count.
    let direct_a = p.a.col_stride() == 1 && p.n <= DIRECT_A_MAX_PANELS * nr;
    let mc_max = (rows.1 - rows.0).min(blk.mc);
    let a_len = if direct_a { MR } else { mc_max.div_ceil(MR) * MR } * kc_step;
    // A vector of slack: the narrow tiles load whole vectors from packed panels.
    let mut a_packed = Scratch::take(Slot::PackA, a_len + MAX_LANES);
    let b_len = match p.b {
        BSource::Packed(_) => 0,
        BSource::View(_) => (cols.1 - cols.0).min(blk.nc).div_ceil(nr) * nr * kc_step,
    };
    let mut b_packed = Scratch::take(Slot::PackB, b_len);
    // A block (L3) is packed once per k block; the B blocks (L2) pass under it.
    for ic in (rows.0..rows.1).step_by(blk.mc) {
        let mc = blk.mc.min(rows.1 - ic);
        for pc in (0..p.k).step_by(kc_step) {
            let kc = kc_step.min(p.k - pc);
            let finish = TileFinish {
                alpha: p.alpha,
                beta: if pc == 0 { p.beta } else { 1.0 },
                epilogue: if pc + kc == p.k { p.epilogue } else { Epilogue::NONE },
            };
            let full_panels = mc / MR;
            let a = if direct_a {
                if full_panels * MR < mc {
                    let rows = (ic + full_panels * MR, mc % MR);
                    s.run(PackA { a: p.a, rows, cols: (pc, kc), dst: &mut a_packed });
                }
                let rs = p.a.row_stride();
                // SAFETY: rows ic.., columns pc.. lie in the view (pointer arithmetic only).
                let first = unsafe { p.a.as_ptr().add(ic * rs + pc) };
                APanels { first, step: MR * rs, rows_rs: Some(rs), full: full_panels, tail: a_packed.as_ptr(), mr: MR }
            } else {
                s.run(PackA { a: p.a, rows: (ic, mc), cols: (pc, kc), dst: &mut a_packed });
                let first = a_packed.as_ptr();
                APanels { first, step: MR * kc, rows_rs: None, full: mc.div_ceil(MR), tail: first, mr: MR }
            };
            for jc in (cols.0..cols.1).step_by(blk.nc) {
                let nc = blk.nc.min(cols.1 - jc);
                let b = match p.b {
                    BSource::Packed(packed) => packed.panels(pc, kc, jc, nc).as_ptr(),
                    BSource::View(b) => {
                        let dst = &mut b_packed[..nc.div_ceil(nr) * nr * kc];
                        s.run(PackB { b, rows: (pc, kc), cols: (jc, nc), nr, dst });
                        b_packed.as_ptr()
                    }
                };
                // SAFETY: row ic, column jc of the validated C (pointer arithmetic only).
                let c = unsafe { p.c.0.add(ic * p.ldc + jc) };
                s.run(BlockTiles { kc, a, b, nr, c, ldc: p.ldc, size: (mc, nc), at: (ic, jc), finish: &finish });
            }
        }
    }
}

/// Where the `MR`-row panels of a block of A are: `full` panels from `first`, `step`
/// apart, packed (`mr` values a k step), or read in place with rows `rows_rs` apart; then
/// a last, partial panel packed at `tail`.
#[derive(Clone, Copy)]
struct APanels {
    first: *const f32,
    step: usize,
    rows_rs: Option<usize>,
    full: usize,
    tail: *const f32,
    mr: usize,
}

impl APanels {
    fn panel(&self, index: usize) -> APanel {
        if index >= self.full {
            return APanel::Packed(self.tail, self.mr);
        }
        let p = self.first.wrapping_add(index * self.step);
        match self.rows_rs {
            Some(rs) => APanel::Rows(p, rs),
            None => APanel::Packed(p, self.mr),
        }
    }
}

/// A block of C (`size`) from a block of A and the packed B panels of its columns (each
/// `kc * nr` values, one after another): the ir and jr loops around the register tiles.
/// `c` is the block's first element, at row and column `at` of C (for the bias).
struct BlockTiles<'a> {
    kc: usize,
    a: APanels,
    b: *const f32,
    nr: usize,
    c: *mut f32,
    ldc: usize,
    size: (usize, usize),
    at: (usize, usize),
    finish: &'a TileFinish<'a>,
}

instances! {
    /// A block of C from packed panels of A and B: register tiles (full, half width, and
    /// dot products for a last one or two columns).
    fn(BlockTiles<'_>) => f32_gemm_4x8_portable, f32_gemm_6x16_avx2, f32_gemm_12x32_avx512;
}

impl WithSimd for BlockTiles<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        match (S::GEMM_MR, S::GEMM_NR_VECS) {
            (4, 2) => block_tiles::<S, 4, 2>(s, self),
            (6, 2) => block_tiles::<S, 6, 2>(s, self),
            (12, 2) => block_tiles::<S, 12, 2>(s, self),
            (mr, nrv) => unreachable!("no GEMM instantiation for a {mr}x{nrv}-vector tile"),
        }
    }
}

#[inline(always)]
fn block_tiles<S: Simd, const MR: usize, const NR_VECS: usize>(s: S, t: BlockTiles) {
    let BlockTiles { kc, a, b, nr, c, ldc, size: (mc, nc), at: (row0, col0), finish } = t;
    // One or two columns left in the last panel: dot products (N = 49 otherwise spends a
    // quarter of its time on the 49th column). Rows of A read in place need that panel's
    // B columns transposed for that.
    let last_cols = nc - (nc - 1) / nr * nr;
    let narrow = last_cols <= 2 && nr > 2;
    let bt_len = if narrow && a.rows_rs.is_some() { last_cols * kc } else { 0 };
    let mut scratch = Scratch::take(Slot::GemmTile, MAX_TILE + bt_len);
    let (stage, bt) = scratch.split_at_mut(MAX_TILE);
    let last = b.wrapping_add((nc - 1) / nr * kc * nr);
    for (j, col) in bt.chunks_exact_mut(kc.max(1)).enumerate() {
        for (kk, t) in col.iter_mut().enumerate() {
            // SAFETY: the last packed panel holds kc rows of nr values.
            *t = unsafe { *last.add(kk * nr + j) };
        }
    }
    let stage = stage.as_mut_ptr();
    // Each A panel (MR x kc, the broadcast side) stays in L1 while the B panels stream
    // past it from L2 (BLIS keeps the broadcast side's micropanel in L1 too).
    for ir in (0..mc).step_by(MR) {
        let panel = a.panel(ir / MR);
        for jr in (0..nc).step_by(nr) {
            let n_tile = nr.min(nc - jr);
            let b = b.wrapping_add(jr / nr * kc * nr);
            let size = (MR.min(mc - ir), n_tile);
            let at = (row0 + ir, col0 + jr);
            // SAFETY: the panel holds MR rows of kc values (packed with a vector of slack, or
            // full rows of the validated A read in place); each packed B panel holds kc*nr
            // values; the tile at (row, col) lies inside the validated C.
            unsafe {
                let out = CTile { c: c.add(ir * ldc + jr), ldc, size, at, finish, stage };
                let narrow = narrow && n_tile <= 2;
                match (panel, narrow, n_tile) {
                    (APanel::Packed(p, _), true, 1) => narrow_packed::<S, MR, 1>(s, kc, p, (b, nr), out),
                    (APanel::Packed(p, _), true, _) => narrow_packed::<S, MR, 2>(s, kc, p, (b, nr), out),
                    (APanel::Rows(p, rs), true, 1) => narrow_rows::<S, MR, 1>(s, kc, (p, rs), (bt.as_ptr(), kc), out),
                    (APanel::Rows(p, rs), true, _) => narrow_rows::<S, MR, 2>(s, kc, (p, rs), (bt.as_ptr(), kc), out),
                    // A last panel at most half full: the half-width kernel skips the empty half.
                    (panel, _, _) if NR_VECS == 2 && n_tile <= S::LANES => {
                        gemm_tile::<S, MR, 1>(s, kc, panel, (b, nr), out)
                    }
                    // A last panel of rows at most two thirds full: a tile of two thirds the
                    // rows skips the empty third (32 rows on AVX-512 are 12 + 12 + 8, not 36).
                    (panel, _, _) if MR == 12 && size.0 <= 8 => gemm_tile::<S, 8, NR_VECS>(s, kc, panel, (b, nr), out),
                    (panel, _, _) if MR == 6 && size.0 <= 4 => gemm_tile::<S, 4, NR_VECS>(s, kc, panel, (b, nr), out),
                    (panel, _, _) => gemm_tile::<S, MR, NR_VECS>(s, kc, panel, (b, nr), out),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::short_tiles_padded;

    #[test]
    fn a_short_last_panel_pads_to_two_thirds_of_a_tile() {
        // AVX-512's 12-row tiles: 32 rows are 12 + 12 + 8, 33 are three whole tiles.
        assert_eq!(short_tiles_padded(32, 12), 32);
        assert_eq!(short_tiles_padded(33, 12), 36);
        assert_eq!(short_tiles_padded(24, 12), 24);
        assert_eq!(short_tiles_padded(1, 12), 8);
        // AVX2's 6-row tiles end in a 4-row one; the portable 4-row tiles have none.
        assert_eq!(short_tiles_padded(10, 6), 10);
        assert_eq!(short_tiles_padded(5, 4), 8);
        assert_eq!(short_tiles_padded(0, 4), 0);
    }
}
