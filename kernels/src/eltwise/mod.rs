//! Elementwise activations and their derivatives, `exp`, and row-wise softmax, vectorised
//! on every ISA path. Every function checks that its slices have equal lengths.
//!
//! ```
//! use simdnn_kernels::{eltwise, Isa};
//! let x = [-2.0f32, -0.5, 0.0, 3.0];
//! let mut y = [0.0; 4];
//! eltwise::relu(Isa::current()?, &x, &mut y)?;
//! assert_eq!(y, [0.0, 0.0, 0.0, 3.0]);
//! eltwise::softmax(Isa::current()?, 2, &[0.0, 0.0, 1000.0, 1000.0], &mut y)?;
//! assert_eq!(y, [0.5; 4]); // no overflow for large logits
//! # Ok::<(), simdnn_kernels::KernelError>(())
//! ```

pub(crate) mod math;
mod softmax;
mod unary;

use crate::conv::Conv2dGeom;
use crate::gemm::GemmConfig;
use crate::isa::{instances, Instance, Kernel, Simd};
use crate::threading::for_each_chunk_mut;
use crate::{Isa, KernelError};
use softmax::SoftmaxOp;
use unary::{Binary, MapOp, Unary, ZipOp};

#[derive(Clone, Copy)]
struct Relu;
impl Unary for Relu {
    #[inline(always)]
    fn apply<S: Simd>(self, s: S, x: S::V) -> S::V {
        s.max(x, s.zero())
    }
}

/// `y = x`: a plain copy through vector registers.
#[derive(Clone, Copy)]
struct Identity;
impl Unary for Identity {
    #[inline(always)]
    fn apply<S: Simd>(self, _: S, x: S::V) -> S::V {
        x
    }
}

#[derive(Clone, Copy)]
struct Exp;
impl Unary for Exp {
    #[inline(always)]
    fn apply<S: Simd>(self, s: S, x: S::V) -> S::V {
        math::exp(s, x)
    }
}

#[derive(Clone, Copy)]
struct Sigmoid;
impl Unary for Sigmoid {
    #[inline(always)]
    fn apply<S: Simd>(self, s: S, x: S::V) -> S::V {
        math::sigmoid(s, x)
    }
}

#[derive(Clone, Copy)]
struct Tanh;
impl Unary for Tanh {
    #[inline(always)]
    fn apply<S: Simd>(self, s: S, x: S::V) -> S::V {
        math::tanh(s, x)
    }
}

/// `dx = dy where x > 0, else 0` (a = x, b = dy).
#[derive(Clone, Copy)]
struct ReluBackward;
impl Binary for ReluBackward {
    #[inline(always)]
    fn apply<S: Simd>(self, s: S, x: S::V, dy: S::V) -> S::V {
        s.select_gt(x, s.zero(), dy, s.zero())
    }
}

/// `dx = dy * y * (1 - y)` (a = y, b = dy).
#[derive(Clone, Copy)]
struct SigmoidBackward;
impl Binary for SigmoidBackward {
    #[inline(always)]
    fn apply<S: Simd>(self, s: S, y: S::V, dy: S::V) -> S::V {
        s.mul(dy, s.mul(y, s.sub(s.splat(1.0), y)))
    }
}

/// `dx = dy * (1 - y^2)` (a = y, b = dy).
#[derive(Clone, Copy)]
struct TanhBackward;
impl Binary for TanhBackward {
    #[inline(always)]
    fn apply<S: Simd>(self, s: S, y: S::V, dy: S::V) -> S::V {
        s.mul(dy, s.sub(s.splat(1.0), s.mul(y, y)))
    }
}

instances! {
    /// `y = max(x, 0)`.
    fn(MapOp<'_, Relu>) => f32_relu_portable, f32_relu_avx2, f32_relu_avx512;
    /// `y = x`.
    fn(MapOp<'_, Identity>) => f32_copy_portable, f32_copy_avx2, f32_copy_avx512;
    /// `y = e^x`.
    fn(MapOp<'_, Exp>) => f32_exp_portable, f32_exp_avx2, f32_exp_avx512;
    /// `y = 1 / (1 + e^-x)`.
    fn(MapOp<'_, Sigmoid>) => f32_sigmoid_portable, f32_sigmoid_avx2, f32_sigmoid_avx512;
    /// `y = tanh(x)`.
    fn(MapOp<'_, Tanh>) => f32_tanh_portable, f32_tanh_avx2, f32_tanh_avx512;
    /// ReLU's backward pass.
    fn(ZipOp<'_, ReluBackward>) => f32_relu_backward_portable, f32_relu_backward_avx2, f32_relu_backward_avx512;
    /// The sigmoid's backward pass.
    fn(ZipOp<'_, SigmoidBackward>) => f32_sigmoid_backward_portable, f32_sigmoid_backward_avx2, f32_sigmoid_backward_avx512;
    /// tanh's backward pass.
    fn(ZipOp<'_, TanhBackward>) => f32_tanh_backward_portable, f32_tanh_backward_avx2, f32_tanh_backward_avx512;
    /// Row-wise softmax or log-softmax.
    fn(SoftmaxOp<'_>) => f32_softmax_portable, f32_softmax_avx2, f32_softmax_avx512;
}

/// The named kernels of the elementwise functions.
pub(crate) const KERNELS: &[&[Instance]] = &[INSTANCES];

fn same_len(what: &'static str, expected: usize, got: usize) -> Result<(), KernelError> {
    Conv2dGeom::check_len(what, expected, got)
}

fn map<F: Unary>(isa: Isa, f: F, x: &[f32], y: &mut [f32]) -> Result<(), KernelError>
where
    for<'a> MapOp<'a, F>: Kernel<Output = ()>,
{
    same_len("y", x.len(), y.len())?;
    isa.checked()?.run(MapOp { f, x, y });
    Ok(())
}

fn zip<F: Binary>(isa: Isa, f: F, a: &[f32], b: &[f32], y: &mut [f32]) -> Result<(), KernelError>
where
    for<'a> ZipOp<'a, F>: Kernel<Output = ()>,
{
    same_len("dy", a.len(), b.len())?;
    same_len("dx", a.len(), y.len())?;
    isa.checked()?.run(ZipOp { f, a, b, y });
    Ok(())
}

/// `y = x`, split across the configuration's threads in contiguous runs, each a plain
/// vector copy: tensor copies, and the yardstick the memory-bound kernels are measured by.
/// (libc's `memcpy` takes `rep movsb` on AMD Zen 3, which drops to about 6 GB/s on some
/// sizes, 400 KB among them.)
pub fn copy(cfg: &GemmConfig, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    same_len("y", x.len(), y.len())?;
    let per_task = x.len().div_ceil(cfg.threads()).max(1);
    for_each_chunk_mut(cfg.threads(), y, per_task, |i, part| {
        cfg.run(MapOp { f: Identity, x: &x[i * per_task..][..part.len()], y: part })
    });
    Ok(())
}

/// `y = max(x, 0)`.
pub fn relu(isa: Isa, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    map(isa, Relu, x, y)
}
/// `dx = dy` where `x > 0`, else 0.
pub fn relu_backward(isa: Isa, x: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<(), KernelError> {
    zip(isa, ReluBackward, x, dy, dx)
}
/// `y = e^x` (0 below about -87.3, where e^x is subnormal; infinity above about 88.7).
pub fn exp(isa: Isa, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    map(isa, Exp, x, y)
}
/// `y = 1 / (1 + e^-x)`.
pub fn sigmoid(isa: Isa, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    map(isa, Sigmoid, x, y)
}
/// `dx = dy * y * (1 - y)`, from the forward output `y`.
pub fn sigmoid_backward(isa: Isa, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<(), KernelError> {
    zip(isa, SigmoidBackward, y, dy, dx)
}
/// `y = tanh(x)`.
pub fn tanh(isa: Isa, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    map(isa, Tanh, x, y)
}
/// `dx = dy * (1 - y^2)`, from the forward output `y`.
pub fn tanh_backward(isa: Isa, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<(), KernelError> {
    zip(isa, TanhBackward, y, dy, dx)
}

fn rows(what: &'static str, cols: usize, len: usize) -> Result<(), KernelError> {
    if cols == 0 {
        return Err(KernelError::ZeroSize { what: "softmax row length" });
    }
    same_len(what, len.div_ceil(cols) * cols, len)
}

/// Softmax of each `cols`-long row: `y = e^(x - max) / sum e^(x - max)`.
pub fn softmax(isa: Isa, cols: usize, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    rows("x", cols, x.len())?;
    same_len("y", x.len(), y.len())?;
    isa.checked()?.run(SoftmaxOp { cols, log: false, x, y });
    Ok(())
}

/// Log-softmax of each `cols`-long row: `y = x - max - log(sum e^(x - max))`, finite for
/// any finite logits (the stable form cross-entropy needs).
pub fn log_softmax(isa: Isa, cols: usize, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    rows("x", cols, x.len())?;
    same_len("y", x.len(), y.len())?;
    isa.checked()?.run(SoftmaxOp { cols, log: true, x, y });
    Ok(())
}

/// The softmax backward pass per row: `dx = y * (dy - sum(dy * y))`, from the forward output.
pub fn softmax_backward(cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<(), KernelError> {
    rows("y", cols, y.len())?;
    same_len("dy", y.len(), dy.len())?;
    same_len("dx", y.len(), dx.len())?;
    for ((yr, dyr), dxr) in y.chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
        let dot: f32 = yr.iter().zip(dyr).map(|(a, b)| a * b).sum();
        for ((d, &yv), &g) in dxr.iter_mut().zip(yr).zip(dyr) {
            *d = yv * (g - dot);
        }
    }
    Ok(())
}
