//! Naive pooling with PyTorch's window and divisor rules, window by window.

use crate::gemm::GemmConfig;
use crate::pool::Pool2dGeom;
use crate::KernelError;

/// Calls `f(plane, oh, ow, taps)` with each window's in-input positions in row-major order
/// and its divisor with and without the padding counted.
fn for_each_window(g: &Pool2dGeom, mut f: impl FnMut(usize, usize, usize, &[usize], (usize, usize))) {
    let mut taps = Vec::new();
    for p in 0..g.planes() {
        for oh in 0..g.out_h() {
            for ow in 0..g.out_w() {
                taps.clear();
                let (h0, w0) =
                    ((oh * g.stride_h) as isize - g.pad_h as isize, (ow * g.stride_w) as isize - g.pad_w as isize);
                let (h1, w1) = (
                    (h0 + g.kernel_h as isize).min((g.in_h + g.pad_h) as isize),
                    (w0 + g.kernel_w as isize).min((g.in_w + g.pad_w) as isize),
                );
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        if ih >= 0 && iw >= 0 && (ih as usize) < g.in_h && (iw as usize) < g.in_w {
                            taps.push(ih as usize * g.in_w + iw as usize);
                        }
                    }
                }
                let with_pad = ((h1 - h0) * (w1 - w0)) as usize;
                f(p, oh, ow, &taps, (with_pad, taps.len()));
            }
        }
    }
}

/// Max pooling (optionally of `relu(x)`), argmax the first maximum in row-major order.
pub fn max_pool2d(g: &Pool2dGeom, relu: bool, x: &[f32], y: &mut [f32], argmax: &mut [u32]) -> Result<(), KernelError> {
    g.validate()?;
    let (plane_in, ow_n, oh_n) = (g.in_h * g.in_w, g.out_w(), g.out_h());
    for_each_window(g, |p, oh, ow, taps, _| {
        let xp = &x[p * plane_in..][..plane_in];
        let mut best = taps[0];
        for &t in &taps[1..] {
            if xp[t] > xp[best] {
                best = t;
            }
        }
        let o = (p * oh_n + oh) * ow_n + ow;
        y[o] = if relu { xp[best].max(0.0) } else { xp[best] };
        argmax[o] = best as u32;
    });
    Ok(())
}

/// Average pooling; the divisor counts the padding when `count_pad`.
pub fn avg_pool2d(g: &Pool2dGeom, count_pad: bool, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    g.validate()?;
    let (plane_in, ow_n, oh_n) = (g.in_h * g.in_w, g.out_w(), g.out_h());
    for_each_window(g, |p, oh, ow, taps, (with_pad, without)| {
        let sum: f64 = taps.iter().map(|&t| x[p * plane_in + t] as f64).sum();
        y[(p * oh_n + oh) * ow_n + ow] = (sum / if count_pad { with_pad } else { without } as f64) as f32;
    });
    Ok(())
}

/// The gradient of average pooling, window by window.
pub fn avg_pool2d_backward(g: &Pool2dGeom, count_pad: bool, dy: &[f32], dx: &mut [f32]) -> Result<(), KernelError> {
    g.validate()?;
    let (plane_in, ow_n, oh_n) = (g.in_h * g.in_w, g.out_w(), g.out_h());
    dx.fill(0.0);
    for_each_window(g, |p, oh, ow, taps, (with_pad, without)| {
        let d = dy[(p * oh_n + oh) * ow_n + ow] / if count_pad { with_pad } else { without } as f32;
        taps.iter().for_each(|&t| dx[p * plane_in + t] += d);
    });
    Ok(())
}

/// Plane means.
pub fn global_avg_pool(_cfg: &GemmConfig, plane: usize, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    for (xp, out) in x.chunks_exact(plane).zip(y.iter_mut()) {
        *out = (xp.iter().map(|&v| v as f64).sum::<f64>() / plane as f64) as f32;
    }
    Ok(())
}
