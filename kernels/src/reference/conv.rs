//! Naive convolution: six nested loops with f64 sums, and the same signatures as
//! [`crate::conv`]. The backward passes are the textbook derivatives, loop for loop.

use crate::conv::{Conv2dGeom, ConvAlgo};
use crate::gemm::GemmConfig;
use crate::KernelError;

/// Calls `f(b, k, oh, ow, c, r, s, ih, iw)` for every tap that lands inside the input
/// (taps in the padding contribute zero and are skipped).
fn for_each_tap(g: &Conv2dGeom, mut f: impl FnMut([usize; 9])) {
    let (cg, kg) = (g.in_channels / g.groups, g.out_channels / g.groups);
    for b in 0..g.batch {
        for k in 0..g.out_channels {
            let grp = k / kg;
            for oh in 0..g.out_h() {
                for ow in 0..g.out_w() {
                    for c in 0..cg {
                        for r in 0..g.kernel_h {
                            for s in 0..g.kernel_w {
                                let ih = (oh * g.stride_h + r * g.dilation_h) as isize - g.pad_h as isize;
                                let iw = (ow * g.stride_w + s * g.dilation_w) as isize - g.pad_w as isize;
                                if ih >= 0 && iw >= 0 && (ih as usize) < g.in_h && (iw as usize) < g.in_w {
                                    f([b, k, oh, ow, grp * cg + c, r, s, ih as usize, iw as usize]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn x_at(g: &Conv2dGeom, b: usize, c: usize, ih: usize, iw: usize) -> usize {
    ((b * g.in_channels + c) * g.in_h + ih) * g.in_w + iw
}
fn w_at(g: &Conv2dGeom, k: usize, c: usize, r: usize, s: usize) -> usize {
    ((k * (g.in_channels / g.groups) + c % (g.in_channels / g.groups)) * g.kernel_h + r) * g.kernel_w + s
}
fn y_at(g: &Conv2dGeom, b: usize, k: usize, oh: usize, ow: usize) -> usize {
    ((b * g.out_channels + k) * g.out_h() + oh) * g.out_w() + ow
}

/// The convolution in f64, for finite-difference checks of the backward passes.
pub fn conv2d_forward_f64(g: &Conv2dGeom, x: &[f64], w: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
    let mut y = vec![0.0; g.output_len()];
    for_each_tap(g, |[b, k, oh, ow, c, r, s, ih, iw]| {
        y[y_at(g, b, k, oh, ow)] += x[x_at(g, b, c, ih, iw)] * w[w_at(g, k, c, r, s)];
    });
    if let Some(bias) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v += bias[(i / (g.out_h() * g.out_w())) % g.out_channels];
        }
    }
    y
}

/// `y <- relu?(conv(x, w) + bias)`, naively; `cfg` and `algo` are ignored.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    _cfg: &GemmConfig,
    g: &Conv2dGeom,
    _algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    let widen = |v: &[f32]| v.iter().map(|&e| e as f64).collect::<Vec<f64>>();
    let bias = bias.map(widen);
    let out = conv2d_forward_f64(g, &widen(x), &widen(w), bias.as_deref());
    for (o, v) in y.iter_mut().zip(out) {
        *o = if relu { v.max(0.0) as f32 } else { v as f32 };
    }
    Ok(())
}

/// `dx[b, c, ih, iw] = sum over taps reading it of w * dy`.
pub fn conv2d_backward_input(
    _cfg: &GemmConfig,
    g: &Conv2dGeom,
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    let mut acc = vec![0.0f64; g.input_len()];
    for_each_tap(g, |[b, k, oh, ow, c, r, s, ih, iw]| {
        acc[x_at(g, b, c, ih, iw)] += w[w_at(g, k, c, r, s)] as f64 * dy[y_at(g, b, k, oh, ow)] as f64;
    });
    dx.iter_mut().zip(acc).for_each(|(d, v)| *d = v as f32);
    Ok(())
}

/// `dw[k, c, r, s] = sum over images and pixels of x * dy`.
pub fn conv2d_backward_weight(
    _cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    let mut acc = vec![0.0f64; g.weight_len()];
    for_each_tap(g, |[b, k, oh, ow, c, r, s, ih, iw]| {
        acc[w_at(g, k, c, r, s)] += x[x_at(g, b, c, ih, iw)] as f64 * dy[y_at(g, b, k, oh, ow)] as f64;
    });
    dw.iter_mut().zip(acc).for_each(|(d, v)| *d = v as f32);
    Ok(())
}

/// `db[k] = sum over images and pixels of dy[.., k, ..]`.
pub fn conv2d_backward_bias(g: &Conv2dGeom, dy: &[f32], db: &mut [f32]) -> Result<(), KernelError> {
    g.validate()?;
    let pixels = g.out_h() * g.out_w();
    for (k, d) in db.iter_mut().enumerate() {
        *d = (0..g.batch)
            .flat_map(|b| dy[(b * g.out_channels + k) * pixels..][..pixels].iter())
            .map(|&v| v as f64)
            .sum::<f64>() as f32;
    }
    Ok(())
}
