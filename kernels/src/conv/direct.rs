//! Direct convolution, vectorised over output channels: an implicit GEMM whose "A" values
//! are read straight from the (zero-padded) input.
//!
//! An output tile is `PIXELS` output positions by `NR_VECS` vectors of output channels,
//! accumulated in registers over every tap `(c, r, s)` of the filter: per tap, `NR_VECS`
//! loads of weights (laid out `[block][tap][k]`, so channels are contiguous) and `PIXELS`
//! broadcasts of input values, then `PIXELS * NR_VECS` FMAs — the shape of the GEMM
//! microkernel, without the im2col matrix (which for a 7x7 stride-2 stem is 49 times the
//! input). The input is copied once per image into a zero-padded buffer so taps need no
//! bounds checks.

// Index loops over constant bounds keep the accumulators in registers (see the GEMM
// microkernel).
#![allow(clippy::needless_range_loop)]

use super::{Conv2dGeom, ForwardArgs};
use crate::gemm::GemmConfig;
use crate::isa::{instances, Simd, WithSimd};
use crate::scratch::{Scratch, Slot};
use crate::threading::for_each_chunk_mut;

/// Output positions per tile (rows of the register tile).
const PIXELS: usize = 6;

/// Vectors of output channels per tile (columns of the register tile), as the GEMM's.
const NR_VECS: usize = 2;

pub(crate) fn forward(cfg: &GemmConfig, g: &Conv2dGeom, args: ForwardArgs, y: &mut [f32]) {
    let ForwardArgs { x, w, bias, relu } = args;
    cfg.dispatch(DirectOp { threads: cfg.threads(), g, x, w, bias, relu, y });
}

struct DirectOp<'a> {
    threads: usize,
    g: &'a Conv2dGeom,
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    relu: bool,
    y: &'a mut [f32],
}

impl WithSimd for DirectOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let DirectOp { threads, g, x, w, bias, relu, y } = self;
        let kb = NR_VECS * S::LANES; // output channels per tile
        let (cg, kg) = (g.in_channels / g.groups, g.out_channels / g.groups);
        let (hp, wp) = (g.in_h + 2 * g.pad_h, g.in_w + 2 * g.pad_w);
        let (oh_n, ow_n) = (g.out_h(), g.out_w());
        let pixels = oh_n * ow_n;
        let taps = cg * g.kernel_h * g.kernel_w;
        let kg_pad = kg.div_ceil(kb) * kb;
        let mut buf = Scratch::take(Slot::Direct, cg * hp * wp + taps * kg_pad);
        let (padded, wt) = buf.split_at_mut(cg * hp * wp);
        padded.fill(0.0);
        let plane = g.in_h * g.in_w;
        for grp in 0..g.groups {
            pack_weight_blocks(&w[grp * kg * taps..][..kg * taps], taps, kb, wt);
            for b in 0..g.batch {
                for c in 0..cg {
                    let src = &x[(b * g.in_channels + grp * cg + c) * plane..][..plane];
                    for ih in 0..g.in_h {
                        let dst = (c * hp + ih + g.pad_h) * wp + g.pad_w;
                        padded[dst..dst + g.in_w].copy_from_slice(&src[ih * g.in_w..][..g.in_w]);
                    }
                }
                let y_img = &mut y[(b * g.out_channels + grp * kg) * pixels..][..kg * pixels];
                // Channel blocks split across threads (each block's output planes are contiguous);
                // within a block its weights (taps x kb, contiguous) stay in L1 while the tiles
                // sweep the image.
                let blocks_per_task = kg.div_ceil(kb).div_ceil(threads);
                let padded: &[f32] = padded;
                let wt: &[f32] = wt;
                for_each_chunk_mut(threads, y_img, blocks_per_task * kb * pixels, |i, part| {
                    let first = i * blocks_per_task * kb;
                    let bias = bias.map(|b| &b[grp * kg + first..grp * kg + kg]);
                    s.run(BlockTiles { g, padded, wt: &wt[first * taps..], bias, relu, y: part });
                });
            }
        }
    }
}
/// The weights of one group (`[k][tap]`) as `[block][tap][k within block]`, blocks of
/// `block` output channels, the last zero-padded: each tap's channels are contiguous.
pub(super) fn pack_weight_blocks(w: &[f32], taps: usize, block: usize, wt: &mut [f32]) {
    wt.fill(0.0);
    for (k, wk) in w.chunks_exact(taps).enumerate() {
        let (blk, lane) = (k / block, k % block);
        for (tap, &v) in wk.iter().enumerate() {
            wt[(blk * taps + tap) * block + lane] = v;
        }
    }
}

/// The tiles of a run of output-channel blocks over one image: `y` holds their planes
/// (`y.len() / pixels` channels), `wt` their packed weights, `bias` theirs.
struct BlockTiles<'a> {
    g: &'a Conv2dGeom,
    padded: &'a [f32],
    wt: &'a [f32],
    bias: Option<&'a [f32]>,
    relu: bool,
    y: &'a mut [f32],
}

instances! {
    /// Direct convolution tiles of 6 output pixels by two vectors of output channels.
    fn(BlockTiles<'_>) => f32_conv_direct_6x8_portable, f32_conv_direct_6x16_avx2, f32_conv_direct_6x32_avx512;
}

impl WithSimd for BlockTiles<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let BlockTiles { g, padded, wt, bias, relu, y: y_img } = self;
        let lanes = S::LANES;
        let kb = NR_VECS * lanes;
        let cg = g.in_channels / g.groups;
        let (hp, wp) = (g.in_h + 2 * g.pad_h, g.in_w + 2 * g.pad_w);
        let (oh_n, ow_n) = (g.out_h(), g.out_w());
        let pixels = oh_n * ow_n;
        let taps = cg * g.kernel_h * g.kernel_w;
        let kg = y_img.len() / pixels;
        for k0 in (0..kg).step_by(kb) {
            let wt_block = &wt[k0 * taps..][..taps * kb];
            for p0 in (0..pixels).step_by(PIXELS) {
                let n_pix = PIXELS.min(pixels - p0);
                let mut base = [padded.as_ptr(); PIXELS];
                for i in 0..PIXELS {
                    // Past the last pixel, repeat it: computed, never stored.
                    let p = p0 + i.min(n_pix - 1);
                    let (oh, ow) = (p / ow_n, p % ow_n);
                    base[i] = padded.as_ptr().wrapping_add(oh * g.stride_h * wp + ow * g.stride_w);
                }
                let mut acc = [[s.zero(); NR_VECS]; PIXELS];
                let mut tap = 0;
                for c in 0..cg {
                    for r in 0..g.kernel_h {
                        let row_off = c * hp * wp + r * g.dilation_h * wp;
                        for t in 0..g.kernel_w {
                            let off = row_off + t * g.dilation_w;
                            let mut wv = [s.zero(); NR_VECS];
                            for j in 0..NR_VECS {
                                // SAFETY: the block holds taps * kb values.
                                wv[j] = unsafe { s.load(wt_block.as_ptr().add(tap * kb + j * lanes)) };
                            }
                            for i in 0..PIXELS {
                                // SAFETY: every tap of a valid output position lies
                                // inside the padded input (the geometry was validated).
                                let a = unsafe { s.broadcast(base[i].add(off)) };
                                for j in 0..NR_VECS {
                                    acc[i][j] = s.fma(a, wv[j], acc[i][j]);
                                }
                            }
                            tap += 1;
                        }
                    }
                }
                // Store: the tile is pixels x channels; y planes are per channel.
                let mut tile = [[0.0f32; 32]; PIXELS];
                for i in 0..PIXELS {
                    for j in 0..NR_VECS {
                        // SAFETY: tile rows hold 32 >= NR_VECS * LANES values.
                        unsafe { s.store(tile[i].as_mut_ptr().add(j * lanes), acc[i][j]) };
                    }
                }
                for k in k0..(k0 + kb).min(kg) {
                    let bk = bias.map_or(0.0, |v| v[k]);
                    let out = &mut y_img[k * pixels + p0..][..n_pix];
                    for (i, o) in out.iter_mut().enumerate() {
                        let v = tile[i][k - k0] + bk;
                        *o = if relu { v.max(0.0) } else { v };
                    }
                }
            }
        }
    }
}
