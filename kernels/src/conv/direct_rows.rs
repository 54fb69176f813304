//! Direct convolution vectorised along output rows: each vector holds consecutive output
//! pixels of one channel, so tiles store straight into NCHW with the bias and ReLU fused.
//!
//! For few input channels (the 3-channel stems) this beats vectorising over output
//! channels: per tap, `PV` vector loads of input and `CH` broadcasts of weights feed
//! `CH * PV` FMAs, and no tile has to be transposed on its way out.
//!
//! A strided layer reads every `stride`-th input column, so the zero-padded input is first
//! split into `stride` phases per row (polyphase decomposition): phase `p` holds padded
//! columns `p, p + stride, p + 2 stride, ...`. Output column `x` under tap column `t` reads
//! padded column `x * stride + t * dilation`, which is element `x + q` of phase `p` with
//! `(q, p) = divmod(t * dilation, stride)`: consecutive outputs read consecutive values.

// Index loops over constant bounds keep the accumulators in registers (see the GEMM
// microkernel).
#![allow(clippy::needless_range_loop)]

use super::direct::pack_weight_blocks;
use super::{Conv2dGeom, ForwardArgs};
use crate::gemm::GemmConfig;
use crate::isa::{instances, Simd, WithSimd};
use crate::scratch::{IndexScratch, Scratch, Slot};
use crate::threading::{for_each_chunk_mut, for_each_task, AlignedSplit};
use std::ops::Range;

/// Layout of the phase-split, zero-padded input of one image and group.
#[derive(Clone, Copy)]
struct Phases {
    /// Padded rows.
    rows: usize,
    /// Phases per row (the horizontal stride).
    phases: usize,
    /// Values per phase row: the output width rounded up to whole vectors, plus the
    /// furthest tap's shift, so full-vector loads never leave the buffer.
    width: usize,
}

impl Phases {
    fn new(g: &Conv2dGeom, lanes: usize) -> Phases {
        let reach = (g.kernel_w - 1) * g.dilation_w / g.stride_w;
        Phases { rows: g.in_h + 2 * g.pad_h, phases: g.stride_w, width: g.out_w().div_ceil(lanes) * lanes + reach }
    }

    fn channel_len(&self) -> usize {
        self.rows * self.phases * self.width
    }

    /// Offset of phase row `(channel, row, phase)`.
    fn at(&self, channel: usize, row: usize, phase: usize) -> usize {
        ((channel * self.rows + row) * self.phases + phase) * self.width
    }
}

/// Values of the phase-split input of one group, for the widest vectors any path uses
/// (16 lanes), saturating: the algorithm chooser bounds it, also for geometries not yet
/// validated.
pub(crate) fn buffer_len(g: &Conv2dGeom) -> usize {
    let reach = g.kernel_w.saturating_sub(1).saturating_mul(g.dilation_w) / g.stride_w.max(1);
    let width = g.out_w().div_ceil(16).saturating_mul(16).saturating_add(reach);
    let rows = g.pad_h.saturating_mul(2).saturating_add(g.in_h);
    (g.in_channels / g.groups.max(1)).saturating_mul(rows).saturating_mul(g.stride_w).saturating_mul(width)
}

pub(crate) fn forward(cfg: &GemmConfig, g: &Conv2dGeom, args: ForwardArgs, y: &mut [f32]) {
    cfg.dispatch(RowsOp { threads: cfg.threads(), g, args, y });
}

struct RowsOp<'a> {
    threads: usize,
    g: &'a Conv2dGeom,
    args: ForwardArgs<'a>,
    y: &'a mut [f32],
}

impl WithSimd for RowsOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let RowsOp { threads, g, args, y } = self;
        let ForwardArgs { x, w, bias, relu } = args;
        let (cg, kg) = (g.in_channels / g.groups, g.out_channels / g.groups);
        let pixels = g.out_h() * g.out_w();
        let taps = cg * g.kernel_h * g.kernel_w;
        let ph = Phases::new(g, S::LANES);
        // Weights in blocks of the tile's channel count (see `Channels`).
        let ch = S::GEMM_MR;
        let kg_pad = kg.div_ceil(ch) * ch;
        let mut buf = Scratch::take(Slot::Direct, cg * ph.channel_len() + taps * kg_pad);
        let (input, wt) = buf.split_at_mut(cg * ph.channel_len());
        // Where each tap reads, relative to its output row's first input row.
        let mut offsets = IndexScratch::take();
        for c in 0..cg {
            for r in 0..g.kernel_h {
                for t in 0..g.kernel_w {
                    let (q, p) = ((t * g.dilation_w) / g.stride_w, (t * g.dilation_w) % g.stride_w);
                    offsets.push(ph.at(c, r * g.dilation_h, p) + q);
                }
            }
        }
        let plane = g.in_h * g.in_w;
        // Threads split the output rows (all channels each): an even split whatever the
        // channel count, and both threads read the same input rows.
        let row_ranges = AlignedSplit::new(g.out_h(), threads, 1);
        for grp in 0..g.groups {
            pack_weight_blocks(&w[grp * kg * taps..][..kg * taps], taps, ch, wt);
            for b in 0..g.batch {
                let x_bg = &x[(b * g.in_channels + grp * cg) * plane..][..cg * plane];
                split_phases(threads, g, &ph, x_bg, input);
                let y_img = &mut y[(b * g.out_channels + grp * kg) * pixels..][..kg * pixels];
                let bias = bias.map(|v| &v[grp * kg..][..kg]);
                let out = Out { bias, relu, ow_n: g.out_w(), pixels, y: y_img.as_mut_ptr(), len: y_img.len() };
                let (input, wt, offsets): (&[f32], &[f32], &[usize]) = (input, wt, &offsets);
                for_each_task(threads, row_ranges.len(), |i| {
                    let (lo, hi) = row_ranges.get(i);
                    s.run(Channels { g, ph, input, offsets, wt, rows: lo..hi, out: &out });
                });
            }
        }
    }
}
/// Copies one image's group of channels into the zero-padded, phase-split buffer, its
/// padded rows split across `threads`.
fn split_phases(threads: usize, g: &Conv2dGeom, ph: &Phases, x: &[f32], out: &mut [f32]) {
    let row_len = ph.phases * ph.width;
    let rows = out.len() / row_len; // channels x padded rows
    let per_task = rows.div_ceil(threads);
    for_each_chunk_mut(threads, out, per_task * row_len, |i, part| {
        part.fill(0.0);
        for (n, dst) in part.chunks_exact_mut(row_len).enumerate() {
            let (c, row) = ((i * per_task + n) / ph.rows, (i * per_task + n) % ph.rows);
            let Some(ih) = row.checked_sub(g.pad_h).filter(|&ih| ih < g.in_h) else { continue };
            split_row(&x[(c * g.in_h + ih) * g.in_w..][..g.in_w], g.stride_w, g.pad_w, ph.width, dst);
        }
    });
}

/// One input row into its phase rows (`stride` rows of `width`, zeroed): padded column
/// `pad + i` goes to phase `(pad + i) % stride`, position `(pad + i) / stride`.
fn split_row(src: &[f32], stride: usize, pad: usize, width: usize, dst: &mut [f32]) {
    let mut put = |i: usize, v: f32| {
        let (j, p) = ((pad + i) / stride, (pad + i) % stride);
        if j < width {
            dst[p * width + j] = v;
        }
    };
    // Columns up to the first whole group of `stride` (starting at phase 0), one by one.
    let head = ((stride - pad % stride) % stride).min(src.len());
    for (i, &v) in src[..head].iter().enumerate() {
        put(i, v);
    }
    let groups = (src.len() - head) / stride;
    for (i, &v) in src.iter().enumerate().skip(head + groups * stride) {
        put(i, v);
    }
    // Whole groups: one value to each phase (common strides unrolled).
    let j0 = (pad + head) / stride;
    let groups = groups.min(width.saturating_sub(j0));
    let body = &src[head..head + groups * stride];
    match stride {
        1 => dst[j0..j0 + groups].copy_from_slice(body),
        2 => split_groups::<2>(body, width, &mut dst[j0..]),
        4 => split_groups::<4>(body, width, &mut dst[j0..]),
        _ => {
            for (j, group) in body.chunks_exact(stride).enumerate() {
                for (p, &v) in group.iter().enumerate() {
                    dst[p * width + j0 + j] = v;
                }
            }
        }
    }
}

/// Groups of `S` values, value `p` of group `j` to `dst[p * width + j]`.
fn split_groups<const S: usize>(body: &[f32], width: usize, dst: &mut [f32]) {
    let groups = body.len() / S;
    for p in 0..S {
        let phase = &mut dst[p * width..][..groups];
        for (d, group) in phase.iter_mut().zip(body.chunks_exact(S)) {
            *d = group[p];
        }
    }
}

/// A band of output rows of every channel of one image.
struct Channels<'a> {
    g: &'a Conv2dGeom,
    ph: Phases,
    input: &'a [f32],
    offsets: &'a [usize],
    wt: &'a [f32],
    rows: Range<usize>,
    out: &'a Out<'a>,
}

instances! {
    /// Direct convolution along output rows: tiles of GEMM_MR output channels by
    /// GEMM_NR_VECS vectors of output pixels.
    fn(Channels<'_>) => f32_conv_rows_4x8_portable, f32_conv_rows_6x16_avx2, f32_conv_rows_12x32_avx512;
}

impl WithSimd for Channels<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        // The GEMM microkernel's register tile, transposed: GEMM_MR broadcasts of weights
        // against GEMM_NR_VECS vectors of input pixels.
        match (S::GEMM_MR, S::GEMM_NR_VECS) {
            (12, 2) => Band::<S, 12, 2> { s, c: self }.sweep_all(),
            (6, 2) => Band::<S, 6, 2> { s, c: self }.sweep_all(),
            (4, 2) => Band::<S, 4, 2> { s, c: self }.sweep_all(),
            (mr, nrv) => unreachable!("no direct-rows instantiation for a {mr}x{nrv}-vector tile"),
        }
    }
}

/// [`Channels`] at one register tile.
struct Band<'a, S, const CH: usize, const PV: usize> {
    s: S,
    c: Channels<'a>,
}

impl<S: Simd, const CH: usize, const PV: usize> Band<'_, S, CH, PV> {
    #[inline(always)]
    fn sweep_all(&self) {
        let Channels { g, ph, offsets, out, .. } = self.c;
        let taps = offsets.len();
        let vectors = out.ow_n.div_ceil(S::LANES);
        // Channel groups per sweep of the image. A tile's input (a few cache lines of each
        // phase row it reads) is reused by every group of a sweep; but each group's planes
        // are another output stream, and planes a multiple of 4 KiB apart contend for the
        // same L1 sets. So: one group per sweep while an output row's inputs fit in half of
        // L1, else as many as keep the sweep's weights within a third of L1 beside the
        // tile's inputs (at least one group). With the weights in L2 instead, AVX-512's
        // larger groups fell from L1 at every tile: 11x11 stride 4, one thread, 102 -> 124
        // GFLOP/s; 7x7 stride 2 99 -> 110; AVX2 unchanged.
        let phase_rows = g.in_channels / g.groups * g.kernel_h * ph.phases.min(g.kernel_w);
        let row_inputs = phase_rows * ph.width * 4;
        let per_sweep = if row_inputs <= 16 << 10 { CH } else { ((16 << 10) / (taps * 4 * CH)).max(1) * CH };
        // A tile's vectors lie side by side along an output row, or, when a row's vector
        // count leaves a remainder (a narrower tile with too few accumulators to hide the
        // FMA latency), in consecutive output rows at the same columns: then only an odd
        // last row takes smaller tiles. (Side by side is faster where both fit: 7x7 stride
        // 2 and 3x3 stems 4-7 % ahead; AlexNet's 11x11 stride 4, 55 outputs a row, 4-6 %
        // faster down the rows.)
        if vectors % PV != 0 {
            self.sweep::<true>(per_sweep);
        } else {
            self.sweep::<false>(per_sweep);
        }
    }

    /// The tiles, `per_sweep` channels at a time, their vectors `DOWN` consecutive output
    /// rows or side by side along one.
    #[inline(always)]
    fn sweep<const DOWN: bool>(&self, per_sweep: usize) {
        let s = self.s;
        let Channels { g, ph, input, offsets, wt, ref rows, out } = self.c;
        let lanes = S::LANES;
        let taps = offsets.len();
        let channels = out.len / out.pixels;
        let vectors = out.ow_n.div_ceil(lanes);
        let step = if DOWN { g.stride_h * ph.phases * ph.width } else { lanes };
        if rows.is_empty() || vectors == 0 {
            return;
        }
        // Checked once here: per row, the compiler unswitched the row loop on `vectors` and
        // vectorised the checks alone into a loop of their own.
        assert!(ph.at(0, (rows.end - 1) * g.stride_h, 0) <= input.len());
        for k1 in (0..channels).step_by(per_sweep) {
            let mut oh = rows.start;
            while oh < rows.end {
                let row = input.as_ptr().wrapping_add(ph.at(0, oh * g.stride_h, 0));
                let mut v = 0;
                while v < vectors {
                    let pv = PV.min(if DOWN { rows.end - oh } else { vectors - v });
                    let x0 = v * lanes;
                    for k0 in (k1..(k1 + per_sweep).min(channels)).step_by(CH) {
                        let wt_group = &wt[k0 * taps..][..taps * CH];
                        let at = (k0, CH.min(channels - k0), oh, x0);
                        // SAFETY (every tile): `row + offset + x0 + j step` lies in a phase
                        // row of an output row below out_h, and its vector within the row's
                        // width (whole vectors plus reach). The task owns output rows `rows`
                        // of every channel.
                        let p = row.wrapping_add(x0);
                        unsafe {
                            match pv {
                                _ if pv == PV => out.store::<S, CH, PV, DOWN>(
                                    s,
                                    tile::<S, CH, PV>(s, p, step, offsets, wt_group),
                                    at,
                                ),
                                2 => {
                                    out.store::<S, CH, 2, DOWN>(s, tile::<S, CH, 2>(s, p, step, offsets, wt_group), at)
                                }
                                _ => {
                                    out.store::<S, CH, 1, DOWN>(s, tile::<S, CH, 1>(s, p, step, offsets, wt_group), at)
                                }
                            }
                        }
                    }
                    v += if DOWN { 1 } else { pv };
                }
                oh += if DOWN { PV.min(rows.end - oh) } else { 1 };
            }
        }
    }
}

/// `CH` output channels by `PV` vectors of output pixels, vector `j` with its inputs
/// `j * step` after the first's, summed over every tap.
///
/// # Safety
/// `base + offsets[t] + j * step` must be readable for `LANES` values for every tap `t`
/// and `j < PV`; `wt` holds `offsets.len() * CH` values.
#[inline(always)]
unsafe fn tile<S: Simd, const CH: usize, const PV: usize>(
    s: S,
    base: *const f32,
    step: usize,
    offsets: &[usize],
    wt: &[f32],
) -> [[S::V; PV]; CH] {
    debug_assert_eq!(wt.len(), offsets.len() * CH);
    let mut acc = [[s.zero(); PV]; CH];
    let mut w = wt.as_ptr();
    for &off in offsets {
        let mut v = [s.zero(); PV];
        for j in 0..PV {
            // SAFETY: the caller's contract.
            v[j] = unsafe { s.load(base.add(off + j * step)) };
        }
        for i in 0..CH {
            // SAFETY: CH weights per tap.
            let wv = unsafe { s.broadcast(w.add(i)) };
            for j in 0..PV {
                acc[i][j] = s.fma(wv, v[j], acc[i][j]);
            }
        }
        // SAFETY: one tap's CH weights further, at most one past the end.
        w = unsafe { w.add(CH) };
    }
    acc
}

/// The epilogue: bias, ReLU and the store of a tile into the image's output planes, which
/// the tasks write at once, each its own rows.
struct Out<'a> {
    bias: Option<&'a [f32]>,
    relu: bool,
    ow_n: usize,
    pixels: usize,
    y: *mut f32,
    len: usize,
}

// SAFETY: tasks write through `y` only to output rows they own (disjoint across tasks);
// the buffer outlives the tasks (borrowed mutably by the caller throughout).
unsafe impl Send for Out<'_> {}
unsafe impl Sync for Out<'_> {}

impl Out<'_> {
    /// Stores the first `n` channels of a tile of channels `k0..` whose first vector is at
    /// output row `oh`, column `x0`, and vector `j` `j` rows below (`DOWN`) or `j` vectors
    /// along.
    ///
    /// # Safety
    /// No other task may access those rows of these channels meanwhile.
    #[inline(always)]
    unsafe fn store<S: Simd, const CH: usize, const PV: usize, const DOWN: bool>(
        &self,
        s: S,
        acc: [[S::V; PV]; CH],
        (k0, n, oh, x0): (usize, usize, usize, usize),
    ) {
        let lanes = S::LANES;
        for i in 0..n {
            let b = s.splat(self.bias.map_or(0.0, |v| v[k0 + i]));
            let start = (k0 + i) * self.pixels + oh * self.ow_n + x0;
            let rows = if DOWN { PV } else { 1 };
            assert!(start - x0 + rows * self.ow_n <= self.len);
            for j in 0..PV {
                let (at, x) = if DOWN { (start + j * self.ow_n, x0) } else { (start + j * lanes, x0 + j * lanes) };
                if x >= self.ow_n {
                    break;
                }
                let mut v = s.add(acc[i][j], b);
                if self.relu {
                    v = s.max(v, s.zero());
                }
                let cols = lanes.min(self.ow_n - x);
                // SAFETY: cols values of a row inside the buffer (asserted), owned by this
                // task (the caller's contract).
                unsafe { s.store_upto(self.y.add(at), cols, v) };
            }
        }
    }
}
