//! The forward drivers: the algorithm over the image parts, im2col + GEMM image by image,
//! several images per GEMM, or a strip of output rows at a time.

use super::algo::ConvAlgo;
use super::columns::{
    batched_columns, columns, group_dims, im2col_parallel, images_per_gemm, plane_offsets, BATCHED_COLUMNS,
};
use super::parts::per_image_batches;
use super::{direct, direct_rows, winograd, Conv2dGeom};
use crate::gemm::{sgemm, Bias, Epilogue, GemmConfig, MatMut, MatRef};
use crate::scratch::{Scratch, Slot};
use crate::KernelError;

/// `y <- relu?(conv(x, w) + bias)`.
///
/// Shapes: `x: [batch, in_channels, in_h, in_w]`, `w: [out_channels, in_channels / groups,
/// kernel_h, kernel_w]`, `bias: [out_channels]`, `y: [batch, out_channels, out_h, out_w]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("x", g.input_len(), x.len())?;
    Conv2dGeom::check_len("w", g.weight_len(), w.len())?;
    Conv2dGeom::check_len("y", g.output_len(), y.len())?;
    if let Some(b) = bias {
        Conv2dGeom::check_len("bias", g.out_channels, b.len())?;
    }
    let algo = algo.resolve(g)?;
    run_forward(cfg, g, algo, ForwardArgs { x, w, bias, relu }, None, y)
}

/// The forward pass of a validated call with a resolved algorithm; `winograd_filters`, if
/// given, are `w` already transformed ([`PreparedConv`]).
pub(crate) fn run_forward(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    algo: ConvAlgo,
    args: ForwardArgs,
    winograd_filters: Option<&[f32]>,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let out_image = g.out_channels * g.out_h() * g.out_w();
    let in_image = g.in_channels * g.in_h * g.in_w;
    let images_of = |first: usize, images: &Conv2dGeom| ForwardArgs {
        x: &args.x[first * in_image..][..images.input_len()],
        ..args
    };
    if algo == ConvAlgo::Winograd {
        // One filter transform (or none, when prepared), on every thread, shared by all
        // images: each thread would otherwise repeat it (36 C K values, 37 MB at 512
        // channels).
        let mut own;
        let u: &[f32] = match winograd_filters {
            Some(u) => u,
            None => {
                own = Scratch::take(Slot::WinogradFilter, winograd::filter_len(g));
                winograd::transform_filters(cfg, g, args.w, &mut own);
                &own
            }
        };
        return per_image_batches(cfg, g, y, out_image, |cfg, images, first, yp| {
            winograd::forward_transformed(cfg, images, images_of(first, images), u, yp)
        });
    }
    per_image_batches(cfg, g, y, out_image, |cfg, images, first, yp| {
        forward_images(cfg, images, algo, images_of(first, images), yp)
    })
}

/// A forward call's inputs, as they travel to the algorithms (lengths validated).
#[derive(Clone, Copy)]
pub(crate) struct ForwardArgs<'a> {
    pub x: &'a [f32],
    pub w: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

/// One algorithm over the images of `g`.
pub(super) fn forward_images(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    algo: ConvAlgo,
    args: ForwardArgs,
    y: &mut [f32],
) -> Result<(), KernelError> {
    match algo {
        ConvAlgo::Winograd => winograd::forward(cfg, g, args, y),
        ConvAlgo::Direct => {
            direct::forward(cfg, g, args, y);
            Ok(())
        }
        ConvAlgo::DirectRows => {
            direct_rows::forward(cfg, g, args, y);
            Ok(())
        }
        ConvAlgo::Auto | ConvAlgo::Im2colGemm => forward_im2col(cfg, g, args, y),
    }
}

/// Forward over chunks of images, each one GEMM `W * [col_1 .. col_n]` scattered back to NCHW.
pub(super) fn forward_batched(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    args: ForwardArgs,
    per: usize,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let ForwardArgs { x, w, bias, relu } = args;
    let (_, k, crs, pixels) = group_dims(g);
    let mut col = Scratch::take(Slot::Im2col, crs * per * pixels);
    let mut wide = Scratch::take(Slot::Gather, k * per * pixels);
    for first in (0..g.batch).step_by(per) {
        let n = per.min(g.batch - first);
        let cols = n * pixels;
        batched_columns(cfg, g, x, first, n, &mut col);
        let epi = Epilogue { bias: bias.map_or(Bias::None, Bias::PerRow), relu };
        let out = MatMut::new(&mut wide[..k * cols], k, cols, cols)?;
        sgemm(
            cfg,
            1.0,
            MatRef::new(w, k, crs, crs)?,
            MatRef::new(&col[..crs * cols], crs, cols, cols)?,
            0.0,
            out,
            epi,
        )?;
        let y_chunk = &mut y[first * k * pixels..][..n * k * pixels];
        for (a, b) in plane_offsets(g, n) {
            y_chunk[a..a + pixels].copy_from_slice(&wide[b..b + pixels]);
        }
    }
    Ok(())
}

/// Output rows per strip when one image's column matrix outgrows `BATCHED_COLUMNS` (one
/// group, on any number of threads, so that the bits do not depend on it): the matrix is
/// then built and multiplied a strip of output rows at a time, so it is written and packed
/// while in L2 instead of streaming through L3.
/// 3 -> 64 channels 3x3 on 224x224 (a 27 x 50176 matrix per image), batch 8, one thread:
/// 29 -> 44 GFLOP/s. Not when strips would be under `MIN_STRIP_COLUMNS` wide: deep, small
/// layers gain nothing from them (the GEMM blocks K itself) and lose full column panels
/// (512 channels 7x7, batch 1: strips of 28 and 21 columns, 63-67 against 73-80 GFLOP/s
/// whole, best of runs).
pub(super) fn strip_rows(g: &Conv2dGeom) -> Option<usize> {
    let (_, _, crs, pixels) = group_dims(g);
    let row = crs * g.out_w();
    let rows = (BATCHED_COLUMNS / row.max(1)).clamp(1, g.out_h());
    let wide = rows * g.out_w() >= MIN_STRIP_COLUMNS;
    (g.groups == 1 && !g.is_pointwise() && crs * pixels > BATCHED_COLUMNS && wide).then_some(rows)
}

/// The narrowest strip worth its GEMM: four full column panels.
pub(super) const MIN_STRIP_COLUMNS: usize = 64;

/// Forward image by image, a strip of `rows` output rows per GEMM written in place into y.
pub(super) fn forward_strips(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    args: ForwardArgs,
    rows: usize,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let ForwardArgs { x, w, bias, relu } = args;
    let (c, k, crs, pixels) = group_dims(g);
    let (plane, ow_n) = (c * g.in_h * g.in_w, g.out_w());
    let mut col = Scratch::take(Slot::Im2col, crs * rows * ow_n);
    let epi = Epilogue { bias: bias.map_or(Bias::None, Bias::PerRow), relu };
    let w_m = MatRef::new(w, k, crs, crs)?;
    for b in 0..g.batch {
        let x_b = &x[b * plane..][..plane];
        for oh0 in (0..g.out_h()).step_by(rows) {
            let oh1 = (oh0 + rows).min(g.out_h());
            let cols = (oh1 - oh0) * ow_n;
            im2col_parallel(cfg, g, c, x_b, &mut col, oh0..oh1);
            // Columns oh0 * ow_n.. of every output plane of image b (row stride: the plane).
            let y_strip = &mut y[b * k * pixels + oh0 * ow_n..][..(k - 1) * pixels + cols];
            let out = MatMut::new(y_strip, k, cols, pixels)?;
            sgemm(cfg, 1.0, w_m, MatRef::new(&col[..crs * cols], crs, cols, cols)?, 0.0, out, epi)?;
        }
    }
    Ok(())
}

/// The im2col + GEMM forward pass, image after image (or several images per GEMM).
pub(super) fn forward_im2col(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    args: ForwardArgs,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let per = images_per_gemm(g);
    if per > 1 {
        return forward_batched(cfg, g, args, per, y);
    }
    if let Some(rows) = strip_rows(g) {
        return forward_strips(cfg, g, args, rows, y);
    }
    let ForwardArgs { x, w, bias, relu } = args;
    let (_, kg, crs, pixels) = group_dims(g);
    let mut col = Scratch::take(Slot::Im2col, if g.is_pointwise() { 0 } else { crs * pixels });
    for b in 0..g.batch {
        for grp in 0..g.groups {
            let cols = columns(cfg, g, x, b, grp, &mut col)?;
            let w_g = MatRef::new(&w[grp * kg * crs..][..kg * crs], kg, crs, crs)?;
            let y_bg = &mut y[(b * g.out_channels + grp * kg) * pixels..][..kg * pixels];
            let bias = bias.map_or(Bias::None, |v| Bias::PerRow(&v[grp * kg..(grp + 1) * kg]));
            sgemm(cfg, 1.0, w_g, cols, 0.0, MatMut::new(y_bg, kg, pixels, pixels)?, Epilogue { bias, relu })?;
        }
    }
    Ok(())
}
