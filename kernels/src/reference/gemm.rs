//! Triple-loop GEMM with f64 accumulation and the same signature as [`crate::gemm::sgemm`].

use crate::gemm::{Epilogue, GemmConfig, MatMut, MatRef};
use crate::KernelError;

/// `C <- epilogue(alpha * op(A) * op(B) + beta * C)`, computed naively; `cfg` is ignored.
pub fn sgemm(
    _cfg: &GemmConfig,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    mut c: MatMut,
    epilogue: Epilogue,
) -> Result<(), KernelError> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if b.rows() != k {
        return Err(KernelError::InnerDimMismatch { m, k, k_b: b.rows(), n });
    }
    if c.rows() != m || c.cols() != n {
        return Err(KernelError::OutputShapeMismatch { rows: c.rows(), cols: c.cols(), m, n });
    }
    for i in 0..m {
        for j in 0..n {
            let mut dot = 0.0f64;
            if alpha != 0.0 {
                for p in 0..k {
                    dot += a.at(i, p) as f64 * b.at(p, j) as f64;
                }
            }
            let v = c.at_mut(i, j);
            *v = epilogue.apply(i, j, (alpha as f64 * dot) as f32, beta, *v);
        }
    }
    Ok(())
}
