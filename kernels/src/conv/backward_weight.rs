//! The weight gradient: partial sums per image part, added in part order.

use super::columns::{batched_columns, columns, group_dims, images_per_gemm, output_block, to_wide};
use super::parts::{for_parts, ImageParts};
use super::{direct_weight, Conv2dGeom};
use crate::gemm::{sgemm, Epilogue, GemmConfig, MatMut, MatRef};
use crate::scratch::{Scratch, Slot};
use crate::KernelError;

/// `dw <- d(loss)/dw = sum over images of dy_g * col(x_g)^T`. `dw` is overwritten.
pub fn conv2d_backward_weight(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) -> Result<(), KernelError> {
    backward_weight(cfg, g, x, dy, 0.0, dw)
}

/// `dw <- dw + d(loss)/dw`: [`conv2d_backward_weight`] added to the gradient already there
/// (layers accumulate gradients over calls, e.g. weights shared across time steps).
pub fn conv2d_backward_weight_accumulate(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) -> Result<(), KernelError> {
    backward_weight(cfg, g, x, dy, 1.0, dw)
}

/// `dw <- beta * dw + sum over images`: each of the [`ImageParts`] sums its images into a
/// partial gradient and the partials are added in part order, so the sum has the same
/// bits on any number of threads.
pub(super) fn backward_weight(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    beta: f32,
    dw: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("x", g.input_len(), x.len())?;
    Conv2dGeom::check_len("dy", g.output_len(), dy.len())?;
    Conv2dGeom::check_len("dw", g.weight_len(), dw.len())?;
    let wlen = g.weight_len();
    let parts = ImageParts::of(g, wlen);
    if parts.count <= 1 {
        return backward_weight_images(cfg, g, x, dy, beta, dw);
    }
    let (in_img, out_img) = (g.in_channels * g.in_h * g.in_w, g.out_channels * g.out_h() * g.out_w());
    let mut partials = Scratch::take(Slot::Reduce, parts.count * wlen);
    for_parts(cfg, g, parts, &mut partials, wlen, |cfg, images, i, part| {
        let first = i * parts.size;
        let (xp, dyp) = (&x[first * in_img..][..images.input_len()], &dy[first * out_img..][..images.output_len()]);
        backward_weight_images(cfg, images, xp, dyp, 0.0, part)
    })?;
    for (j, d) in dw.iter_mut().enumerate() {
        let sum = (0..parts.count).fold(0.0, |s, t| s + partials[t * wlen + j]);
        *d = if beta == 0.0 { sum } else { beta * *d + sum };
    }
    Ok(())
}

/// `dW^T = [col_1 .. col_n] [dy_1 .. dy_n]^T` over chunks of images, then `dw <- beta dw + dW`.
pub(super) fn backward_weight_batched(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    beta: f32,
    per: usize,
    dw: &mut [f32],
) -> Result<(), KernelError> {
    let (_, kg, crs, pixels) = group_dims(g);
    let mut col = Scratch::take(Slot::Im2col, crs * per * pixels);
    let mut wide = Scratch::take(Slot::Gather, kg * per * pixels);
    let mut dw_t = Scratch::take(Slot::Transpose, crs * kg);
    for first in (0..g.batch).step_by(per) {
        let n = per.min(g.batch - first);
        let cols = n * pixels;
        batched_columns(cfg, g, x, first, n, &mut col);
        to_wide(g, &dy[first * kg * pixels..][..n * kg * pixels], &mut wide, n);
        // dW^T = col * dy^T: the large column matrix is the GEMM's A, read row by row,
        // and only the K rows of dy are read across (dW = dy * col^T would read the
        // column matrix across, C R S strided streams).
        let a = MatRef::new(&col[..crs * cols], crs, cols, cols)?;
        let b = MatRef::new(&wide[..kg * cols], kg, cols, cols)?.t();
        let acc = if first == 0 { 0.0 } else { 1.0 };
        sgemm(cfg, 1.0, a, b, acc, MatMut::new(&mut dw_t, crs, kg, kg)?, Epilogue::NONE)?;
    }
    for (k, row) in dw.chunks_exact_mut(crs).enumerate() {
        for (j, d) in row.iter_mut().enumerate() {
            let v = dw_t[j * kg + k];
            *d = if beta == 0.0 { v } else { beta * *d + v };
        }
    }
    Ok(())
}

pub(super) fn backward_weight_images(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    beta: f32,
    dw: &mut [f32],
) -> Result<(), KernelError> {
    if direct_weight::applies(g) {
        cfg.run(direct_weight::WeightGradOp { g, x, dy, beta, dw });
        return Ok(());
    }
    let (_, kg, crs, pixels) = group_dims(g);
    let per = images_per_gemm(g);
    if per > 1 {
        return backward_weight_batched(cfg, g, x, dy, beta, per, dw);
    }
    let mut col = Scratch::take(Slot::Im2col, if g.is_pointwise() { 0 } else { crs * pixels });
    for b in 0..g.batch {
        for grp in 0..g.groups {
            let cols = columns(cfg, g, x, b, grp, &mut col)?;
            let dy_bg = output_block(g, dy, b, grp)?;
            let dw_g = MatMut::new(&mut dw[grp * kg * crs..][..kg * crs], kg, crs, crs)?;
            let beta = if b == 0 { beta } else { 1.0 };
            sgemm(cfg, 1.0, dy_bg, cols.t(), beta, dw_g, Epilogue::NONE)?;
        }
    }
    Ok(())
}
