//! The five loops around the microkernel (BLIS order jc -> pc -> ic -> jr -> ir) and their
//! split across threads.
//!
//! Threads split the M and N extents of C, never K, so every element of C is summed in the
//! same order whatever the thread count: results are bit-identical from 1 to T threads.

use super::matrix::MatRef;
use super::microkernel::{gemm_tile, narrow_tile, CTile, TileFinish, NARROW_MAX_KC};
use super::pack::{pack_a, pack_b_dyn};
use super::packed_b::PackedB;
use super::params::Blocking;
use super::Epilogue;
use crate::isa::{Simd, WithSimd};
use crate::scratch::{Scratch, Slot};
use crate::threading::{for_each_task, split_aligned};

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

/// At most this many column panels per thread read A in place instead of packing it.
const DIRECT_A_MAX_PANELS: usize = 8;

/// Below this many multiply-adds a second thread costs more than it saves.
const MIN_MACS_PER_THREAD: usize = 32 * 32 * 32;

/// Chooses how many ways to split M and N (`pm * pn = threads`) so that the largest task,
/// counted in padded tiles, is smallest; ties go to splitting M (the tasks then share B).
fn partition(m: usize, n: usize, threads: usize, mr: usize, nr: usize) -> (usize, usize) {
    let padded = |len: usize, parts: usize, align: usize| len.div_ceil(parts).div_ceil(align) * align;
    (1..=threads)
        .filter(|&pm| threads.is_multiple_of(pm))
        .map(|pm| (pm, threads / pm))
        .min_by_key(|&(pm, pn)| (padded(m, pm, mr) * padded(n, pn, nr), pn))
        .unwrap_or((1, 1))
}

pub(crate) struct GemmOp<'a>(pub Problem<'a>);

impl WithSimd for GemmOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        // Each ISA's tile shape is a constant, so exactly one arm survives per instantiation.
        match (S::GEMM_MR, S::GEMM_NR_VECS) {
            (4, 1) => drive::<S, 4, 1>(s, &self.0),
            (6, 2) => drive::<S, 6, 2>(s, &self.0),
            (12, 2) => drive::<S, 12, 2>(s, &self.0),
            (mr, nrv) => unreachable!("no GEMM instantiation for a {mr}x{nrv}-vector tile"),
        }
    }
}

#[inline(always)]
fn drive<S: Simd, const MR: usize, const NR_VECS: usize>(s: S, p: &Problem) {
    let blk = Blocking::of::<S>();
    debug_assert_eq!((blk.mr, blk.nr), (MR, NR_VECS * S::LANES));
    let threads = if p.m * p.n * p.k < MIN_MACS_PER_THREAD * 2 { 1 } else { p.threads };
    let (pm, pn) = partition(p.m, p.n, threads, MR, blk.nr);
    let m_ranges = split_aligned(p.m, pm, MR);
    let n_ranges = split_aligned(p.n, pn, blk.nr);
    let tasks: Vec<_> = m_ranges.iter().flat_map(|&rows| n_ranges.iter().map(move |&cols| (rows, cols))).collect();
    // One parallel region per call: each task owns a block of C for the whole K loop and
    // packs what it needs itself, so threads never wait on each other.
    for_each_task(threads, tasks.len(), |t| {
        let (rows, cols) = tasks[t];
        s.vectorize(BlockTask::<S, MR, NR_VECS> { s, p, blk, rows, cols });
    });
}

/// One thread's share: rows `rows` and columns `cols` of C, the whole K loop.
struct BlockTask<'a, 'p, S, const MR: usize, const NR_VECS: usize> {
    s: S,
    p: &'p Problem<'a>,
    blk: Blocking,
    rows: (usize, usize),
    cols: (usize, usize),
}

impl<S: Simd, const MR: usize, const NR_VECS: usize> WithSimd for BlockTask<'_, '_, S, MR, NR_VECS> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S2: Simd>(self, _: S2) {
        let BlockTask { s, p, blk, rows, cols } = self;
        let nr = blk.nr;
        let kc_step = blk.kc_for(p.k);
        // A thread with a single block of A rows gets no reuse of B across blocks: it keeps
        // its packed B panel small enough for L2, and packs A once for the whole K instead of
        // once per jc step.
        let single_block = rows.1 - rows.0 <= blk.mc;
        let nc_step = if single_block { blk.nc_l2 } else { blk.nc };
        // With few column panels, each A micropanel is used only a few times and copying it
        // costs more than it saves: row-major A is then read in place (the microkernel
        // broadcasts from MR row segments, which is what packing would copy them into), and
        // only a last, partial panel of rows is packed, to pad it with zeros. With many
        // panels the contiguous copy wins (rows of A a page apart alias in L1 and the TLB).
        let direct_a = p.a.col_stride() == 1 && cols.1 - cols.0 <= DIRECT_A_MAX_PANELS * nr;
        let m_pad = (rows.1 - rows.0).min(blk.mc).div_ceil(MR) * MR;
        let a_len = if direct_a { MR * kc_step } else { m_pad * if single_block { p.k } else { kc_step } };
        let mut a_packed = Scratch::take(Slot::PackA, a_len);
        let mut bt = [0.0f32; 2 * NARROW_MAX_KC];
        if single_block && !direct_a {
            for pc in (0..p.k).step_by(kc_step) {
                let kc = kc_step.min(p.k - pc);
                pack_a::<MR>(&p.a, (rows.0, rows.1 - rows.0), (pc, kc), &mut a_packed[pc * m_pad..]);
            }
        }
        for jc in (cols.0..cols.1).step_by(nc_step) {
            let nc = nc_step.min(cols.1 - jc);
            for pc in (0..p.k).step_by(kc_step) {
                let kc = kc_step.min(p.k - pc);
                let finish = TileFinish {
                    alpha: p.alpha,
                    beta: if pc == 0 { p.beta } else { 1.0 },
                    epilogue: if pc + kc == p.k { p.epilogue } else { Epilogue::NONE },
                };
                let b_len = match p.b {
                    BSource::Packed(_) => 0,
                    BSource::View(_) => nc.div_ceil(nr) * nr * kc,
                };
                let mut b_packed = Scratch::take(Slot::PackB, b_len);
                if let BSource::View(b) = p.b {
                    pack_b_dyn(&b, (pc, kc), (jc, nc), nr, 0, &mut b_packed);
                }
                for ic in (rows.0..rows.1).step_by(blk.mc) {
                    let mc = blk.mc.min(rows.1 - ic);
                    let full_rows = mc - mc % MR;
                    let a_block = if direct_a {
                        if full_rows < mc {
                            pack_a::<MR>(&p.a, (ic + full_rows, mc - full_rows), (pc, kc), &mut a_packed);
                        }
                        &a_packed[..]
                    } else if single_block {
                        &a_packed[pc * m_pad..]
                    } else {
                        pack_a::<MR>(&p.a, (ic, mc), (pc, kc), &mut a_packed);
                        &a_packed[..]
                    };
                    for jr in (jc..jc + nc).step_by(nr) {
                        let n_tile = nr.min(jc + nc - jr);
                        let panel = (jr - jc) / nr;
                        let b = match p.b {
                            BSource::Packed(packed) => packed.panels(pc, kc, jc, nc)[panel * kc * nr..].as_ptr(),
                            BSource::View(_) => b_packed[panel * kc * nr..].as_ptr(),
                        };
                        // One or two columns left: their B columns transposed, for dot
                        // products along k (N = 49 otherwise spends a quarter of its time on
                        // the 49th column).
                        let narrow = n_tile <= 2 && nr > 2 && kc <= NARROW_MAX_KC;
                        if narrow {
                            for j in 0..n_tile {
                                for (kk, t) in bt[j * kc..][..kc].iter_mut().enumerate() {
                                    // SAFETY: the packed panel holds kc rows of nr values.
                                    *t = unsafe { *b.add(kk * nr + j) };
                                }
                            }
                        }
                        for ir in (0..mc).step_by(MR) {
                            let m_tile = MR.min(mc - ir);
                            let a = if !direct_a {
                                (a_block[(ir / MR) * kc * MR..].as_ptr(), kc)
                            } else if ir < full_rows {
                                let rs = p.a.row_stride();
                                // SAFETY: rows ic+ir..ic+ir+MR, columns pc..pc+kc lie in the view.
                                (unsafe { p.a.as_ptr().add((ic + ir) * rs + pc) }, rs)
                            } else {
                                (a_block.as_ptr(), kc)
                            };
                            let (row, col) = (ic + ir, jr);
                            // SAFETY: a points at MR rows of kc values a_rs apart (a packed panel,
                            // or full rows of the validated A read in place); the packed B panel
                            // holds kc*nr values; the m_tile x n_tile tile at (row, col) lies
                            // inside the validated C.
                            unsafe {
                                let c = p.c.0.add(row * p.ldc + col);
                                let out =
                                    CTile { c, ldc: p.ldc, size: (m_tile, n_tile), at: (row, col), finish: &finish };
                                if narrow && n_tile == 1 {
                                    narrow_tile::<S, MR, 1>(s, kc, a, (bt.as_ptr(), kc), out);
                                } else if narrow {
                                    narrow_tile::<S, MR, 2>(s, kc, a, (bt.as_ptr(), kc), out);
                                } else if NR_VECS == 2 && n_tile <= S::LANES {
                                    // A last panel at most half full: the half-width kernel
                                    // skips the empty half.
                                    gemm_tile::<S, MR, 1>(s, kc, a, (b, nr), out);
                                } else {
                                    gemm_tile::<S, MR, NR_VECS>(s, kc, a, (b, nr), out);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
