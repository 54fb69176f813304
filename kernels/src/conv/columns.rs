//! The im2col + GEMM building blocks: per-group sizes, column matrices of one image or of
//! several side by side, and output blocks seen as GEMM operands.

use super::im2col::Im2col;
use super::Conv2dGeom;
use crate::gemm::{GemmConfig, MatRef};
use crate::threading::for_each_chunk_mut;
use crate::KernelError;
use std::ops::Range;

/// Per-group sizes: (input channels, output channels, col rows = C_g R S, output pixels).
pub(super) fn group_dims(g: &Conv2dGeom) -> (usize, usize, usize, usize) {
    let cg = g.in_channels / g.groups;
    (cg, g.out_channels / g.groups, cg * g.kernel_h * g.kernel_w, g.out_h() * g.out_w())
}

/// Images whose column matrices together stay within this many values are multiplied in
/// one GEMM (small images: LeNet's 14x14 maps give 150 x 100 columns per image, a GEMM too
/// small to pay for its packing; 64 of them side by side make a well-shaped one).
pub(super) const BATCHED_COLUMNS: usize = 1 << 17;

/// How many images to put side by side in one GEMM: 1 (image by image) unless several fit.
pub(super) fn images_per_gemm(g: &Conv2dGeom) -> usize {
    let (_, _, crs, pixels) = group_dims(g);
    if g.groups != 1 || g.is_pointwise() {
        return 1;
    }
    (BATCHED_COLUMNS / (crs * pixels).max(1)).clamp(1, g.batch)
}

/// Offsets `(nchw, wide)` of each `pixels`-long output plane of a chunk of `n` images, in
/// NCHW and in the GEMM's `[K x n * pixels]` layout (the images' blocks side by side).
pub(super) fn plane_offsets(g: &Conv2dGeom, n: usize) -> impl Iterator<Item = (usize, usize)> {
    let (k, pixels) = (g.out_channels, g.out_h() * g.out_w());
    (0..n).flat_map(move |i| (0..k).map(move |c| ((i * k + c) * pixels, (c * n + i) * pixels)))
}

/// NCHW output-shaped planes of a chunk into the GEMM layout.
pub(super) fn to_wide(g: &Conv2dGeom, nchw: &[f32], wide: &mut [f32], n: usize) {
    let pixels = g.out_h() * g.out_w();
    for (a, b) in plane_offsets(g, n) {
        wide[b..b + pixels].copy_from_slice(&nchw[a..a + pixels]);
    }
}

/// im2col of images `first..first + n` of `x` side by side into `col` (`crs x n * pixels`).
pub(super) fn batched_columns(cfg: &GemmConfig, g: &Conv2dGeom, x: &[f32], first: usize, n: usize, col: &mut [f32]) {
    let (c, pixels, plane) = (g.in_channels, g.out_h() * g.out_w(), g.in_channels * g.in_h * g.in_w);
    for i in 0..n {
        let (x, col) = (&x[(first + i) * plane..][..plane], &mut col[i * pixels..]);
        cfg.run(Im2col { g, channels: c, x, col, ld: n * pixels, rows: 0..g.out_h() });
    }
}

/// The GEMM's right-hand side for image `b`, group `grp`: the input planes themselves for a
/// pointwise convolution, else their im2col matrix built in `col`.
pub(super) fn columns<'a>(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &'a [f32],
    b: usize,
    grp: usize,
    col: &'a mut [f32],
) -> Result<MatRef<'a>, KernelError> {
    let (cg, _, crs, pixels) = group_dims(g);
    let plane = g.in_h * g.in_w;
    let x_bg = &x[(b * g.in_channels + grp * cg) * plane..][..cg * plane];
    if g.is_pointwise() {
        MatRef::new(x_bg, cg, pixels, pixels)
    } else {
        im2col_parallel(cfg, g, cg, x_bg, col, 0..g.out_h());
        MatRef::new(col, crs, pixels, pixels)
    }
}

/// Image `b`, group `grp` of an output-shaped tensor (`y` or `dy`): `K_g x pixels`.
pub(super) fn output_block<'a>(g: &Conv2dGeom, t: &'a [f32], b: usize, grp: usize) -> Result<MatRef<'a>, KernelError> {
    let (_, kg, _, pixels) = group_dims(g);
    MatRef::new(&t[(b * g.out_channels + grp * kg) * pixels..][..kg * pixels], kg, pixels, pixels)
}

/// im2col of output rows `rows` (all of them, or a strip) with the channels split across
/// the threads (each channel fills its own rows of `col`, `rows.len() * out_w` wide).
pub(super) fn im2col_parallel(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    channels: usize,
    x: &[f32],
    col: &mut [f32],
    rows: Range<usize>,
) {
    let ld = rows.len() * g.out_w();
    let (plane, rows_per_channel) = (g.in_h * g.in_w, g.kernel_h * g.kernel_w * ld);
    let threads = cfg.threads();
    if threads <= 1 || channels < 2 {
        return cfg.run(Im2col { g, channels, x, col, ld, rows });
    }
    let per_task = channels.div_ceil(threads);
    for_each_chunk_mut(threads, &mut col[..channels * rows_per_channel], per_task * rows_per_channel, |i, part| {
        let n = part.len() / rows_per_channel;
        let x = &x[i * per_task * plane..][..n * plane];
        cfg.run(Im2col { g, channels: n, x, col: part, ld, rows: rows.clone() });
    });
}
