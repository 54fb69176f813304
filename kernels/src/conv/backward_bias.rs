//! The bias gradient: per output channel, the sum of its gradient planes.

use super::Conv2dGeom;
use crate::KernelError;

/// `db[k] <- sum over images and pixels of dy[.., k, ..]`. `db` is overwritten.
pub fn conv2d_backward_bias(g: &Conv2dGeom, dy: &[f32], db: &mut [f32]) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("dy", g.output_len(), dy.len())?;
    Conv2dGeom::check_len("db", g.out_channels, db.len())?;
    db.fill(0.0);
    conv2d_backward_bias_accumulate(g, dy, db)
}

/// The sum of `v` over eight independent partial sums, which the compiler keeps in one
/// vector register (a single running sum is a serial chain it may not reorder).
pub(super) fn plane_sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `db <- db + d(loss)/db`: [`conv2d_backward_bias`] added to the gradient already there.
pub fn conv2d_backward_bias_accumulate(g: &Conv2dGeom, dy: &[f32], db: &mut [f32]) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("dy", g.output_len(), dy.len())?;
    Conv2dGeom::check_len("db", g.out_channels, db.len())?;
    let pixels = g.out_h() * g.out_w();
    for image in dy.chunks_exact(g.out_channels * pixels) {
        for (d, plane) in db.iter_mut().zip(image.chunks_exact(pixels)) {
            *d += plane_sum(plane);
        }
    }
    Ok(())
}
