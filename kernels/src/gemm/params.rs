//! Cache blocking (Goto & van de Geijn, "Anatomy of High-Performance Matrix
//! Multiplication", 2008; BLIS loop names jc, pc, ic, jr, ir).

use crate::isa::Simd;

/// Block sizes of the five GEMM loops for one ISA.
///
/// The register tile broadcasts `mr` values of A against `nr` columns of B, so A plays the
/// part BLIS gives B: an `mr x kc` micropanel of A stays in L1 while the `kc x nr`
/// micropanels of a `kc x nc` block of B stream past it from L2, and the `mc x kc` block of
/// A, packed once per k block, waits in L3 for every block of B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Register tile rows (ir loop step).
    pub mr: usize,
    /// Register tile columns (jr loop step).
    pub nr: usize,
    /// Largest pc loop step: the `mr x kc` micropanel of A stays in L1 beside the stream
    /// of B; [`Blocking::kc_for`] evens the steps out.
    pub kc: usize,
    /// ic loop step: the packed `mc x kc` block of A stays in L3.
    pub mc: usize,
    /// jc loop step: the packed `kc x nc` block of B stays in L2.
    pub nc: usize,
}

impl Blocking {
    /// The blocking for `S`. Sized for 32-48 KiB L1d, 512 KiB-2 MiB L2 per core and a shared
    /// L3 of several MiB, which covers current x86-64 server cores.
    pub fn of<S: Simd>() -> Blocking {
        let mr = S::GEMM_MR;
        let nr = S::GEMM_NR_VECS * S::LANES;
        // kc: long enough to amortise each tile's load and store of C; the A micropanel
        // (mr * kc * 4 = 12 KiB on AVX-512, 7.5 KiB on AVX2) leaves most of L1 to B.
        let kc = if nr > 16 { 256 } else { 320 };
        // mc: A block mc*kc*4 bytes of about 4 MiB in L3.
        let mc = ((4 * 1024 * 1024 / (kc * 4)) / mr).max(1) * mr;
        // nc: B block kc*nc*4 bytes of about 512 KiB, within L2 on every core here.
        let nc = ((512 * 1024 / (kc * 4)) / nr).max(1) * nr;
        Blocking { mr, nr, kc, mc, nc }
    }

    /// The pc step for a sum of length `k`: as few blocks as `kc` allows, of equal length
    /// (576 = 2 x 288, not 256 + 256 + 64, whose short block pays a full pass over C).
    pub fn kc_for(&self, k: usize) -> usize {
        let blocks = k.div_ceil(self.kc).max(1);
        k.div_ceil(blocks).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Portable;

    #[test]
    fn k_blocks_are_even_and_within_kc() {
        let b = Blocking::of::<Portable>();
        for k in [1, 2, b.kc - 1, b.kc, b.kc + 1, 576, 1000, 4608, 9216] {
            let kc = b.kc_for(k);
            assert!(kc >= 1 && kc <= b.kc, "k={k} kc={kc}");
            assert_eq!(k.div_ceil(kc), k.div_ceil(b.kc), "k={k}: no more blocks than needed");
        }
        assert_eq!(Blocking { kc: 320, ..b }.kc_for(576), 288);
    }

    #[test]
    fn blocks_are_multiples_of_the_tile() {
        let b = Blocking::of::<Portable>();
        assert_eq!(b.mc % b.mr, 0);
        assert_eq!(b.nc % b.nr, 0);
    }
}
