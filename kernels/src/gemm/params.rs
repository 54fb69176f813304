//! Cache blocking (Goto & van de Geijn, "Anatomy of High-Performance Matrix
//! Multiplication", 2008; BLIS loop names jc, pc, ic, jr, ir).

use crate::isa::Simd;

/// Block sizes of the five GEMM loops for one ISA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Register tile rows (ir loop step).
    pub mr: usize,
    /// Register tile columns (jr loop step).
    pub nr: usize,
    /// Largest pc loop step: a kc x nr micropanel of B stays in L1 while a column of A
    /// tiles streams; [`Blocking::kc_for`] evens the steps out.
    pub kc: usize,
    /// ic loop step: the packed mc x kc block of A stays in L2.
    pub mc: usize,
    /// jc loop step: the packed kc x nc panel of B stays in L3 and is reused by every
    /// mc block of A.
    pub nc: usize,
    /// jc loop step when a thread has a single mc block of A, so nothing reuses B across
    /// blocks: a kc x nc_l2 panel sized to stay in L2 while that block sweeps it.
    pub nc_l2: usize,
}

impl Blocking {
    /// The blocking for `S`. Sized for 32-48 KiB L1d, 512 KiB-2 MiB L2 per core and a shared
    /// L3 of several MiB, which covers current x86-64 server cores.
    pub fn of<S: Simd>() -> Blocking {
        let mr = S::GEMM_MR;
        let nr = S::GEMM_NR_VECS * S::LANES;
        // kc: the B micropanel (kc*nr*4 = 20 KiB at nr = 16) stays in a 32 KiB L1 next to the
        // A micropanel; long enough to amortise each tile's load and store of C.
        let kc = if nr > 16 { 256 } else { 320 };
        // mc: A block mc*kc*4 bytes within about half of a 512 KiB L2.
        let mc = ((256 * 1024 / (kc * 4)) / mr).max(1) * mr;
        // nc: B panel kc*nc*4 bytes of about 4 MiB in L3.
        let nc = ((4 * 1024 * 1024 / (kc * 4)) / nr).max(1) * nr;
        // nc_l2: about 256 KiB of packed B, half of a 512 KiB L2.
        let nc_l2 = ((256 * 1024 / (kc * 4)) / nr).max(1) * nr;
        Blocking { mr, nr, kc, mc, nc, nc_l2 }
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
        assert_eq!(b.nc_l2 % b.nr, 0);
    }
}
