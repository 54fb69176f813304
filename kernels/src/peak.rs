//! The machine's FP32 FMA peak, measured with independent FMA chains: the yardstick GEMM
//! efficiency is quoted against.

use crate::isa::{instances, Isa, Simd, WithSimd};
use crate::threading::for_each_task;
use crate::KernelError;
use std::sync::atomic::{AtomicU32, Ordering};

struct Chains {
    iters: usize,
}

instances! {
    /// Independent FMA chains, as many as the GEMM tile has accumulators.
    fn(Chains) -> f32 => f32_peak_fma_portable, f32_peak_fma_avx2, f32_peak_fma_avx512;
}

/// The named kernels of the peak measurement.
pub(crate) const KERNELS: &[&[crate::isa::Instance]] = &[INSTANCES];

impl WithSimd for Chains {
    type Output = f32;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        // As many independent chains as the GEMM tile has accumulators: enough to cover
        // FMA latency times throughput on every ISA here, and no register spills.
        match S::GEMM_MR * S::GEMM_NR_VECS {
            8 => chains::<S, 8>(s, self.iters),
            12 => chains::<S, 12>(s, self.iters),
            24 => chains::<S, 24>(s, self.iters),
            c => unreachable!("no peak instantiation for {c} chains"),
        }
    }
}

#[inline(always)]
fn chains<S: Simd, const C: usize>(s: S, iters: usize) -> f32 {
    // x <- x * a + b converges to b / (1 - a); no overflow, no denormals.
    let (a, b) = (s.splat(0.999_999), s.splat(1e-6));
    let mut acc = [s.zero(); C];
    for _ in 0..iters {
        // An index loop over a constant bound unrolls fully, so `acc` stays in registers.
        #[allow(clippy::needless_range_loop)]
        for c in 0..C {
            acc[c] = s.fma(acc[c], a, b);
        }
    }
    let mut sum = 0.0;
    #[allow(clippy::needless_range_loop)]
    for c in 0..C {
        sum += s.hsum(acc[c]);
    }
    sum
}

/// FLOPs one call of [`fma_chains`] performs per thread.
pub fn flops_per_thread(isa: Isa, iters: usize) -> f64 {
    let b = crate::gemm::blocking(isa);
    // chains * lanes * 2 flops per FMA
    (b.mr * b.nr * 2 * iters) as f64
}

/// Runs `iters` rounds of independent FMA chains on each of `threads` threads at once and
/// returns a checksum (so the work cannot be optimised away); an error if this CPU lacks
/// `isa`.
pub fn fma_chains(isa: Isa, threads: usize, iters: usize) -> Result<f32, KernelError> {
    let isa = isa.checked()?;
    crate::threading::check_threads(threads)?;
    let sum = AtomicU32::new(0);
    for_each_task(threads, threads, |_| {
        let v = isa.run(Chains { iters });
        sum.fetch_add(v.to_bits() & 1, Ordering::Relaxed);
    });
    Ok(sum.into_inner() as f32)
}
