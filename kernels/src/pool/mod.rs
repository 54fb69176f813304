//! Pooling over NCHW planes: max (with argmax, optionally fused with a preceding ReLU),
//! average (PyTorch's divisor rules) and global average, forward and backward.
//!
//! NaN inputs: max pooling does not propagate NaN the way PyTorch does (which lane wins a
//! comparison with NaN depends on the path); average pooling does.
//!
//! The forward passes split the planes across the configuration's threads.
//!
//! ```
//! use simdnn_kernels::gemm::GemmConfig;
//! use simdnn_kernels::pool::{max_pool2d_forward, Pool2dGeom};
//! let x = [1., 2., 5., 3., 4., 0., 1., 1., 7., 1., 2., 6., 0., 9., 3., 2.]; // 4x4
//! let (mut y, mut arg) = ([0.0; 4], [0u32; 4]);
//! max_pool2d_forward(&GemmConfig::from_env()?, &Pool2dGeom::new(1, 1, (4, 4), 2, 2), &x, &mut y, Some(&mut arg))?;
//! assert_eq!((y, arg), ([4., 5., 9., 6.], [4, 2, 13, 11]));
//! # Ok::<(), simdnn_kernels::KernelError>(())
//! ```

mod avg;
mod geometry;
mod max;
mod window;

pub use geometry::Pool2dGeom;

/// The named kernels of pooling.
pub(crate) const KERNELS: &[&[Instance]] = &[max::INSTANCES, avg::INSTANCES];

use crate::conv::Conv2dGeom;
use crate::gemm::GemmConfig;
use crate::isa::Instance;
use crate::threading::{for_each_task, DisjointChunks};
use crate::KernelError;
use avg::{avg_pool_backward, AvgPoolOp, GlobalAvgOp};
use max::MaxPoolOp;

fn check_io(g: &Pool2dGeom, x_len: usize, y_len: usize) -> Result<(), KernelError> {
    Conv2dGeom::check_len("pooling input", g.input_len(), x_len)?;
    Conv2dGeom::check_len("pooling output", g.output_len(), y_len)
}

/// Inputs below this many values are pooled on one thread (waking a helper costs more).
const MIN_PARALLEL: usize = 1 << 15;

/// One task's share of a pooling call: a run of whole planes of the input, output and
/// argmax.
struct Planes<'a> {
    geom: Pool2dGeom,
    x: &'a [f32],
    y: &'a mut [f32],
    argmax: Option<&'a mut [u32]>,
}

/// Runs `f` on runs of whole planes of `all`, one run per thread.
fn for_each_plane_run(cfg: &GemmConfig, all: Planes, f: impl Fn(Planes) + Sync + Send) {
    let Planes { geom: g, x, y, argmax } = all;
    let (plane_in, plane_out) = (g.in_h * g.in_w, g.out_h() * g.out_w());
    let planes = g.planes();
    let threads = if x.len() < MIN_PARALLEL { 1 } else { cfg.threads().min(planes) };
    let per_task = planes.div_ceil(threads.max(1)).max(1);
    let ys = DisjointChunks::new(y, per_task * plane_out);
    let argmaxes = argmax.map(|a| DisjointChunks::new(a, per_task * plane_out));
    for_each_task(threads, ys.len(), |i| {
        let x = x.chunks(per_task * plane_in).nth(i).unwrap_or_default();
        let geom = Pool2dGeom { batch: 1, channels: x.len() / plane_in.max(1), ..g };
        // SAFETY: `for_each_task` runs each index once, so each chunk is taken once.
        let (y, argmax) = unsafe { (ys.take(i), argmaxes.as_ref().map(|a| a.take(i))) };
        f(Planes { geom, x, y, argmax })
    });
}

fn max_pool(
    cfg: &GemmConfig,
    g: &Pool2dGeom,
    x: &[f32],
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
    relu: bool,
) -> Result<(), KernelError> {
    g.validate_argmax()?;
    check_io(g, x.len(), y.len())?;
    if let Some(a) = &argmax {
        Conv2dGeom::check_len("argmax", g.output_len(), a.len())?;
    }
    for_each_plane_run(cfg, Planes { geom: *g, x, y, argmax }, |p| {
        cfg.run(MaxPoolOp { g: &p.geom, x: p.x, y: p.y, argmax: p.argmax, relu })
    });
    Ok(())
}

/// `y = max over each window of x`; `argmax`, if given, receives each maximum's position
/// within its input plane (`ih * in_w + iw`; the first one in row-major order on ties).
pub fn max_pool2d_forward(
    cfg: &GemmConfig,
    g: &Pool2dGeom,
    x: &[f32],
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
) -> Result<(), KernelError> {
    max_pool(cfg, g, x, y, argmax, false)
}

/// `y = max(0, max over each window of x)`: ReLU and max pooling in one pass over `x`
/// (equal to pooling `relu(x)`, since ReLU is monotone).
pub fn relu_max_pool2d_forward(
    cfg: &GemmConfig,
    g: &Pool2dGeom,
    x: &[f32],
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
) -> Result<(), KernelError> {
    max_pool(cfg, g, x, y, argmax, true)
}

fn max_backward(
    g: &Pool2dGeom,
    y: Option<&[f32]>,
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    check_io(g, dx.len(), dy.len())?;
    Conv2dGeom::check_len("argmax", g.output_len(), argmax.len())?;
    if let Some(y) = y {
        Conv2dGeom::check_len("y", g.output_len(), y.len())?;
    }
    let (plane_in, plane_out) = (g.in_h * g.in_w, g.out_h() * g.out_w());
    if let Some((index, &value)) = argmax.iter().enumerate().find(|(_, &a)| a as usize >= plane_in) {
        return Err(KernelError::ArgmaxOutOfRange { index, value, plane: plane_in });
    }
    dx.fill(0.0);
    for (p, (dxp, (dyp, ap))) in
        dx.chunks_exact_mut(plane_in).zip(dy.chunks_exact(plane_out).zip(argmax.chunks_exact(plane_out))).enumerate()
    {
        for (o, (&d, &a)) in dyp.iter().zip(ap).enumerate() {
            // Through a fused ReLU, only outputs above zero pass a gradient.
            if y.is_none_or(|y| y[p * plane_out + o] > 0.0) {
                dxp[a as usize] += d;
            }
        }
    }
    Ok(())
}

/// `dx` from `dy` through the recorded argmax: each output's gradient goes to the input
/// element that was its maximum. `dx` is overwritten.
pub fn max_pool2d_backward(g: &Pool2dGeom, dy: &[f32], argmax: &[u32], dx: &mut [f32]) -> Result<(), KernelError> {
    max_backward(g, None, dy, argmax, dx)
}

/// The backward pass of [`relu_max_pool2d_forward`]: as max pooling, but outputs that the
/// ReLU clamped to zero (`y <= 0`) pass no gradient. `dx` is overwritten.
pub fn relu_max_pool2d_backward(
    g: &Pool2dGeom,
    y: &[f32],
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    max_backward(g, Some(y), dy, argmax, dx)
}

/// `y = mean over each window of x`. With `count_pad`, the divisor counts the padding
/// inside the window (PyTorch's `count_include_pad=True`, its default); without, only the
/// input elements.
pub fn avg_pool2d_forward(
    cfg: &GemmConfig,
    g: &Pool2dGeom,
    count_pad: bool,
    x: &[f32],
    y: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    check_io(g, x.len(), y.len())?;
    let all = Planes { geom: *g, x, y, argmax: None };
    for_each_plane_run(cfg, all, |p| cfg.run(AvgPoolOp { g: &p.geom, count_pad, x: p.x, y: p.y }));
    Ok(())
}

/// The backward pass of [`avg_pool2d_forward`]. `dx` is overwritten.
pub fn avg_pool2d_backward(g: &Pool2dGeom, count_pad: bool, dy: &[f32], dx: &mut [f32]) -> Result<(), KernelError> {
    g.validate()?;
    check_io(g, dx.len(), dy.len())?;
    avg_pool_backward(g, count_pad, dy, dx);
    Ok(())
}

/// `y[p] = mean of plane p of x`, for `x: [planes, plane]` and `y: [planes]`.
pub fn global_avg_pool_forward(cfg: &GemmConfig, plane: usize, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    if plane == 0 {
        return Err(KernelError::ZeroSize { what: "plane" });
    }
    let need = y.len().checked_mul(plane).ok_or(KernelError::SizeOverflow { what: "global pooling input" })?;
    Conv2dGeom::check_len("global pooling input", need, x.len())?;
    // Each plane as a 1 x plane image pooled whole, for the plane split across threads.
    let geom = Pool2dGeom { kernel_w: plane, ..Pool2dGeom::new(1, y.len(), (1, plane), 1, 1) };
    let all = Planes { geom, x, y, argmax: None };
    for_each_plane_run(cfg, all, |p| cfg.run(GlobalAvgOp { plane, x: p.x, y: p.y }));
    Ok(())
}

/// The backward pass of [`global_avg_pool_forward`]: `dx[p, i] = dy[p] / plane`.
pub fn global_avg_pool_backward(plane: usize, dy: &[f32], dx: &mut [f32]) -> Result<(), KernelError> {
    if plane == 0 {
        return Err(KernelError::ZeroSize { what: "plane" });
    }
    let need = dy.len().checked_mul(plane).ok_or(KernelError::SizeOverflow { what: "global pooling input" })?;
    Conv2dGeom::check_len("global pooling input gradient", need, dx.len())?;
    for (dxp, &d) in dx.chunks_exact_mut(plane).zip(dy) {
        dxp.fill(d / plane as f32);
    }
    Ok(())
}
