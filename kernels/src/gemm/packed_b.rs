//! B packed once, for weights that multiply many inputs (fully connected layers, im2col
//! convolution, inference).

use super::matrix::MatRef;
use super::pack::PackB;
use super::params::Blocking;
use crate::isa::Isa;
use crate::scratch::AlignedBuf;
use crate::KernelError;

/// `op(B)` (`k x n`) packed into the micropanel layout of one ISA: for each `kc` block of
/// rows, the `nr`-column panels of all `n` columns, each `kc * nr` values.
pub struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    blocking: Blocking,
    /// The pc step the panels were packed with: `blocking.kc_for(k)`, as the GEMM loops use.
    kc: usize,
    data: AlignedBuf,
}

/// The GEMM blocking used on `isa` (whether or not this CPU has it).
pub fn blocking(isa: Isa) -> Blocking {
    match isa {
        Isa::Portable => Blocking::of::<crate::isa::Portable>(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Blocking::of::<crate::isa::Avx2>(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Blocking::of::<crate::isa::Avx512>(),
        #[cfg(not(target_arch = "x86_64"))]
        _ => Blocking::of::<crate::isa::Portable>(),
    }
}

impl PackedB {
    /// Packs `b` (`k x n`, any strides) for GEMMs on `isa`.
    pub fn new(isa: Isa, b: MatRef) -> Result<PackedB, KernelError> {
        let isa = isa.checked()?;
        let blocking = blocking(isa);
        let mut packed = PackedB { isa, k: 0, n: 0, blocking, kc: 1, data: AlignedBuf::default() };
        packed.repack(isa, b)?;
        Ok(packed)
    }

    /// Packs `b` in place of what this holds, reusing the allocation when it is large
    /// enough: weights that change every training step, packed once per step.
    pub fn repack(&mut self, isa: Isa, b: MatRef) -> Result<(), KernelError> {
        let isa = isa.checked()?;
        let blocking = blocking(isa);
        let (k, n) = (b.rows(), b.cols());
        let (kc, nr) = (blocking.kc_for(k), blocking.nr);
        let n_pad = n.div_ceil(nr) * nr;
        // Every panel value is written below, padding included.
        self.data.resize(k * n_pad);
        let buf = self.data.as_mut_slice();
        for pc in (0..k).step_by(kc) {
            let kc_len = kc.min(k - pc);
            let dst = &mut buf[pc * n_pad..(pc + kc_len) * n_pad];
            isa.run(PackB { b, rows: (pc, kc_len), cols: (0, n), nr, dst });
        }
        *self = PackedB { isa, k, n, blocking, kc, data: std::mem::take(&mut self.data) };
        Ok(())
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }
    /// Rows of `op(B)`.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Columns of `op(B)`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The panels of rows `pc..pc+kc` and columns `jc..jc+nc` (`jc` a multiple of `nr`).
    pub(crate) fn panels(&self, pc: usize, kc: usize, jc: usize, nc: usize) -> &[f32] {
        let nr = self.blocking.nr;
        debug_assert!(pc.is_multiple_of(self.kc) && kc <= self.kc);
        let n_pad = self.n.div_ceil(nr) * nr;
        let start = pc * n_pad + (jc / nr) * kc * nr;
        &self.data.as_slice()[start..start + nc.div_ceil(nr) * nr * kc]
    }
}
