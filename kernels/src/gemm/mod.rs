//! Single-precision GEMM: `C <- epilogue(alpha * op(A) * op(B) + beta * C)`.
//!
//! Row-major matrices with arbitrary leading dimensions; `op(X)` is `X` or its transpose
//! ([`MatRef::t`]). With `beta == 0` C is never read, so it may hold garbage or NaN (BLAS
//! rule); with `alpha == 0` or `k == 0`, A and B are not read.
//!
//! ```
//! use simdnn_kernels::gemm::{sgemm, Epilogue, GemmConfig, MatMut, MatRef};
//! let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 x 3
//! let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3 x 2
//! let mut c = [0.0; 4];
//! let cfg = GemmConfig::from_env()?;
//! sgemm(&cfg, 1.0, MatRef::new(&a, 2, 3, 3)?, MatRef::new(&b, 3, 2, 2)?, 0.0,
//!       MatMut::new(&mut c, 2, 2, 2)?, Epilogue::NONE)?;
//! assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
//! # Ok::<(), simdnn_kernels::KernelError>(())
//! ```

mod epilogue;
mod gemv;
mod loops;
mod matrix;
mod microkernel;
mod pack;
mod packed_b;
mod params;

pub use epilogue::{Bias, Epilogue};
pub use matrix::{MatMut, MatRef};
pub use packed_b::{blocking, PackedB};
pub use params::Blocking;

use crate::isa::{Instance, Kernel, WithSimd};
use crate::threading::default_threads;
use crate::{Isa, KernelError};
use gemv::{Gemv, GemvOp, VecBias, XPtr};
pub(crate) use loops::CPtr;
use loops::{BSource, GemmOp, Problem};

/// The named kernels of the GEMM.
pub(crate) const KERNELS: &[&[Instance]] = &[loops::INSTANCES, pack::INSTANCES, gemv::INSTANCES];

/// Which path and how many threads a GEMM runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmConfig {
    isa: Isa,
    threads: usize,
    /// Run on [`crate::isa::Emulated512`] (tests of the AVX-512 layout; feature `reference`).
    emulate_avx512: bool,
}

impl GemmConfig {
    /// An explicit path and thread count; an error if the CPU lacks the path or `threads` is
    /// not from 1 to [`crate::threading::MAX_THREADS`].
    pub fn new(isa: Isa, threads: usize) -> Result<Self, KernelError> {
        let threads = crate::threading::check_threads(threads)?;
        Ok(GemmConfig { isa: isa.checked()?, threads, emulate_avx512: false })
    }

    /// The AVX-512 path's blocking and tile (12 x 32, 16 lanes) on portable instructions,
    /// for testing that layout on CPUs without AVX-512.
    #[cfg(feature = "reference")]
    pub fn emulated_avx512(threads: usize) -> Result<Self, KernelError> {
        Ok(GemmConfig { emulate_avx512: true, ..GemmConfig::new(Isa::Portable, threads)? })
    }

    /// The blocking this configuration runs with.
    pub fn blocking(&self) -> Blocking {
        #[cfg(feature = "reference")]
        if self.emulate_avx512 {
            return Blocking::of::<crate::isa::Emulated512>();
        }
        blocking(self.isa)
    }

    /// Runs driver code `op` with this configuration's token ([`Isa::dispatch`]).
    pub(crate) fn dispatch<Op: WithSimd>(&self, op: Op) -> Op::Output {
        #[cfg(feature = "reference")]
        if self.emulate_avx512 {
            return op.with_simd(crate::isa::Emulated512::new());
        }
        self.isa.dispatch(op)
    }

    /// Runs `kernel` in this configuration's named instance ([`Isa::run`]).
    pub(crate) fn run<K: Kernel>(&self, kernel: K) -> K::Output {
        #[cfg(feature = "reference")]
        if self.emulate_avx512 {
            return kernel.with_simd(crate::isa::Emulated512::new());
        }
        self.isa.run(kernel)
    }
    /// `SIMDNN_ISA` (else the best path) and `SIMDNN_THREADS` (else all CPUs).
    pub fn from_env() -> Result<Self, KernelError> {
        GemmConfig::new(Isa::current()?, default_threads()?)
    }
    pub fn isa(&self) -> Isa {
        self.isa
    }
    /// Whether B packed by [`PackedB::new`] on this path can be used ([`sgemm_packed`]): not on
    /// the emulated AVX-512 layout.
    pub fn packs(&self) -> bool {
        !self.emulate_avx512
    }
    pub fn threads(&self) -> usize {
        self.threads
    }
    pub fn with_threads(self, threads: usize) -> Result<Self, KernelError> {
        Ok(GemmConfig { threads: GemmConfig::new(self.isa, threads)?.threads, ..self })
    }
    pub fn with_isa(self, isa: Isa) -> Result<Self, KernelError> {
        GemmConfig::new(isa, self.threads)
    }
}

/// Name of the microkernel a path uses, `f32_gemm_{MR}x{NR}_{isa}`.
pub fn kernel_name(isa: Isa) -> String {
    let b = blocking(isa);
    format!("f32_gemm_{}x{}_{}", b.mr, b.nr, isa.name())
}

/// Name of the kernel an `m x n` product runs on: the GEMV kernel for a single row or
/// column, else the GEMM microkernel.
pub fn kernel_name_for(isa: Isa, m: usize, n: usize) -> String {
    if m == 1 || n == 1 {
        format!("f32_gemv_{}", isa.name())
    } else {
        kernel_name(isa)
    }
}

fn check_shapes(m: usize, k: usize, k_b: usize, n: usize, c: &MatMut, epi: &Epilogue) -> Result<(), KernelError> {
    if k != k_b {
        return Err(KernelError::InnerDimMismatch { m, k, k_b, n });
    }
    if c.rows() != m || c.cols() != n {
        return Err(KernelError::OutputShapeMismatch { rows: c.rows(), cols: c.cols(), m, n });
    }
    match epi.bias {
        Bias::PerRow(b) if b.len() != m => Err(KernelError::BiasLength { what: "per-row", expected: m, got: b.len() }),
        Bias::PerCol(b) if b.len() != n => {
            Err(KernelError::BiasLength { what: "per-column", expected: n, got: b.len() })
        }
        _ => Ok(()),
    }
}

/// `C <- epilogue(alpha * op(A) * op(B) + beta * C)`, where op(A) is `m x k`, op(B) `k x n`
/// and C `m x n`.
pub fn sgemm(
    cfg: &GemmConfig,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    mut c: MatMut,
    epilogue: Epilogue,
) -> Result<(), KernelError> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if settled(m, k, b.rows(), n, alpha, beta, &mut c, &epilogue)? {
        return Ok(());
    }
    let (ldc, cp) = (c.ld(), CPtr(c.as_mut_ptr()));
    if n == 1 || m == 1 {
        // y = op(A) x for a single column; for a single row, y^T = op(B)^T x^T.
        let (mat, x, x_stride, y_stride, bias) = if n == 1 {
            let bias = match epilogue.bias {
                Bias::None => VecBias::None,
                Bias::PerRow(v) => VecBias::Each(v),
                Bias::PerCol(v) => VecBias::Same(v[0]),
            };
            (a, b.as_ptr(), b.row_stride(), ldc, bias)
        } else {
            let bias = match epilogue.bias {
                Bias::None => VecBias::None,
                Bias::PerRow(v) => VecBias::Same(v[0]),
                Bias::PerCol(v) => VecBias::Each(v),
            };
            (b.t(), a.as_ptr(), a.col_stride(), 1, bias)
        };
        let g = Gemv {
            mat,
            x: XPtr(x),
            x_stride,
            y: cp,
            y_stride,
            alpha,
            beta,
            bias,
            relu: epilogue.relu,
            threads: cfg.threads,
        };
        cfg.dispatch(GemvOp(g));
        return Ok(());
    }
    let p = Problem { m, n, k, alpha, beta, a, b: BSource::View(b), c: cp, ldc, epilogue, threads: cfg.threads };
    cfg.dispatch(GemmOp(p));
    Ok(())
}

/// As [`sgemm`], with B packed in advance by [`PackedB::new`] on the same path as `cfg`.
pub fn sgemm_packed(
    cfg: &GemmConfig,
    alpha: f32,
    a: MatRef,
    b: &PackedB,
    beta: f32,
    mut c: MatMut,
    epilogue: Epilogue,
) -> Result<(), KernelError> {
    if b.isa() != cfg.isa || cfg.emulate_avx512 {
        return Err(KernelError::PackedIsaMismatch { packed: b.isa().name(), requested: cfg.isa.name() });
    }
    let (m, k, n) = (a.rows(), a.cols(), b.n());
    if settled(m, k, b.k(), n, alpha, beta, &mut c, &epilogue)? {
        return Ok(());
    }
    let (ldc, cp) = (c.ld(), CPtr(c.as_mut_ptr()));
    let p = Problem { m, n, k, alpha, beta, a, b: BSource::Packed(b), c: cp, ldc, epilogue, threads: cfg.threads };
    cfg.dispatch(GemmOp(p));
    Ok(())
}

/// Checks the shapes (`m x k` times `kb x n` into C) and computes a product with nothing to
/// multiply (an empty one, or one scaled by zero) at once: true when C is done.
#[allow(clippy::too_many_arguments)]
fn settled(
    m: usize,
    k: usize,
    kb: usize,
    n: usize,
    alpha: f32,
    beta: f32,
    c: &mut MatMut,
    epilogue: &Epilogue,
) -> Result<bool, KernelError> {
    check_shapes(m, k, kb, n, c, epilogue)?;
    if m == 0 || n == 0 {
        return Ok(true);
    }
    if k == 0 || alpha == 0.0 {
        scale_c(beta, c, epilogue);
        return Ok(true);
    }
    Ok(false)
}

/// `C <- epilogue(beta * C)`: the whole GEMM when the product is empty or scaled by zero.
fn scale_c(beta: f32, c: &mut MatMut, epilogue: &Epilogue) {
    for i in 0..c.rows() {
        for j in 0..c.cols() {
            let v = c.at_mut(i, j);
            *v = epilogue.apply(i, j, 0.0, beta, *v);
        }
    }
}
