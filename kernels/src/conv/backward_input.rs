//! The input gradient: `dcol = W^T dy`, scattered back by col2im.

use super::columns::{group_dims, images_per_gemm, output_block, to_wide};
use super::im2col::Col2im;
use super::parts::per_image_batches;
use super::Conv2dGeom;
use crate::gemm::{sgemm, Epilogue, GemmConfig, MatMut, MatRef};
use crate::scratch::{Scratch, Slot};
use crate::KernelError;

/// `dx <- d(loss)/dx` given `dy = d(loss)/dy`: for each image and group,
/// `dcol = W_g^T * dy_g`, scattered back by col2im. `dx` is overwritten. Images are split
/// across threads as in the forward pass.
pub fn conv2d_backward_input(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("w", g.weight_len(), w.len())?;
    Conv2dGeom::check_len("dy", g.output_len(), dy.len())?;
    Conv2dGeom::check_len("dx", g.input_len(), dx.len())?;
    per_image_batches(cfg, g, dx, g.in_channels * g.in_h * g.in_w, |cfg, images, first, dxp| {
        let dyp = &dy[first * g.out_channels * g.out_h() * g.out_w()..][..images.output_len()];
        backward_input_images(cfg, images, w, dyp, dxp)
    })
}

pub(super) fn backward_input_images(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    let (cg, kg, crs, pixels) = group_dims(g);
    let plane = g.in_h * g.in_w;
    let per = images_per_gemm(g);
    if per > 1 {
        return backward_input_batched(cfg, g, w, dy, per, dx);
    }
    let mut dcol = Scratch::take(Slot::Im2col, if g.is_pointwise() { 0 } else { crs * pixels });
    if !g.is_pointwise() {
        dx.fill(0.0);
    }
    for b in 0..g.batch {
        for grp in 0..g.groups {
            let w_gt = MatRef::new(&w[grp * kg * crs..][..kg * crs], kg, crs, crs)?.t();
            let dy_bg = output_block(g, dy, b, grp)?;
            let dx_bg = &mut dx[(b * g.in_channels + grp * cg) * plane..][..cg * plane];
            if g.is_pointwise() {
                sgemm(cfg, 1.0, w_gt, dy_bg, 0.0, MatMut::new(dx_bg, cg, pixels, pixels)?, Epilogue::NONE)?;
            } else {
                sgemm(cfg, 1.0, w_gt, dy_bg, 0.0, MatMut::new(&mut dcol, crs, pixels, pixels)?, Epilogue::NONE)?;
                cfg.run(Col2im { g, channels: cg, col: &dcol, ld: pixels, dx: dx_bg });
            }
        }
    }
    Ok(())
}

/// `dcol = W^T [dy_1 .. dy_n]` for chunks of images, scattered back by col2im.
pub(super) fn backward_input_batched(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    w: &[f32],
    dy: &[f32],
    per: usize,
    dx: &mut [f32],
) -> Result<(), KernelError> {
    let (c, k, crs, pixels) = group_dims(g);
    let plane = c * g.in_h * g.in_w;
    let mut dcol = Scratch::take(Slot::Im2col, crs * per * pixels);
    let mut wide = Scratch::take(Slot::Gather, k * per * pixels);
    dx.fill(0.0);
    for first in (0..g.batch).step_by(per) {
        let n = per.min(g.batch - first);
        let cols = n * pixels;
        to_wide(g, &dy[first * k * pixels..][..n * k * pixels], &mut wide, n);
        let w_t = MatRef::new(w, k, crs, crs)?.t();
        let out = MatMut::new(&mut dcol[..crs * cols], crs, cols, cols)?;
        sgemm(cfg, 1.0, w_t, MatRef::new(&wide[..k * cols], k, cols, cols)?, 0.0, out, Epilogue::NONE)?;
        for i in 0..n {
            let dx = &mut dx[(first + i) * plane..][..plane];
            cfg.run(Col2im { g, channels: c, col: &dcol[i * pixels..], ld: cols, dx });
        }
    }
    Ok(())
}
