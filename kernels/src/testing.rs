//! Test support shared by `tests/`, `benches/` and `fuzz/` (feature `reference`).

use crate::gemm::{sgemm, sgemm_packed, Bias, Epilogue, GemmConfig, MatMut, MatRef, PackedB};
use crate::{reference, Isa};

/// Reads bytes as a little stream of small numbers; runs out gracefully (zeros).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn below(&mut self, n: u8) -> usize {
        (self.next() % n) as usize
    }
}

/// Decodes arbitrary bytes into a GEMM call, possibly malformed (short slices, small leading
/// dimensions, mismatched C or bias), runs it on a path this CPU has, and checks the
/// contract: an error for a malformed call, the reference result for a valid one. Panics
/// (the fuzzer's signal) on any violation; the kernels themselves must never panic.
pub fn fuzz_gemm(data: &[u8]) {
    let mut d = Bytes(data);
    let isas = Isa::available();
    let isa = isas[d.below(isas.len() as u8)];
    let threads = 1 + d.below(3);
    let (m, n, k) = (d.below(40), d.below(40), d.below(40));
    let (transa, transb, packed) = (d.next() & 1 == 1, d.next() & 1 == 1, d.next() & 1 == 1);
    let (ar, ac) = if transa { (k, m) } else { (m, k) };
    let (br, bc) = if transb { (n, k) } else { (k, n) };
    // Leading dimensions and lengths may fall short of what the shape needs.
    let ld = |d: &mut Bytes, cols: usize| (cols + d.below(4)).saturating_sub(d.below(8) / 7);
    let (lda, ldb, ldc) = (ld(&mut d, ac), ld(&mut d, bc), ld(&mut d, n));
    let len = |d: &mut Bytes, rows: usize, ld: usize| (rows * ld).saturating_sub(d.below(16) / 15);
    let a: Vec<f32> = (0..len(&mut d, ar, lda)).map(|i| ((i * 7 + 3) % 11) as f32 - 5.0).collect();
    let b: Vec<f32> = (0..len(&mut d, br, ldb)).map(|i| ((i * 5 + 1) % 13) as f32 - 6.0).collect();
    let c_rows = if d.below(16) == 0 { m + 1 } else { m };
    let c0: Vec<f32> = (0..len(&mut d, c_rows, ldc)).map(|i| (i % 5) as f32).collect();
    let alpha = [1.0, 0.0, -2.0, 0.5][d.below(4)];
    let beta = [0.0, 1.0, 0.5, -1.0][d.below(4)];
    let bias_vals: Vec<f32> = (0..m.max(n) + 1).map(|i| i as f32 * 0.25 - 1.0).collect();
    let bias = match d.below(4) {
        0 => Bias::None,
        1 => Bias::PerRow(&bias_vals[..m + d.below(8) / 7]),
        _ => Bias::PerCol(&bias_vals[..n + d.below(8) / 7]),
    };
    let epi = Epilogue { bias, relu: d.next() & 1 == 1 };
    let cfg = GemmConfig::new(isa, threads).expect("available ISA");

    let view = |data, rows, cols, ld, t: bool| MatRef::new(data, rows, cols, ld).map(|v| if t { v.t() } else { v });
    let (Ok(av), Ok(bv)) = (view(&a, ar, ac, lda, transa), view(&b, br, bc, ldb, transb)) else {
        return; // a clear error for a malformed view is the contract
    };
    let mut got = c0.clone();
    let Ok(cv) = MatMut::new(&mut got, c_rows, n, ldc) else { return };
    let result = if packed {
        match PackedB::new(isa, bv) {
            Ok(pb) => sgemm_packed(&cfg, alpha, av, &pb, beta, cv, epi),
            Err(_) => return,
        }
    } else {
        sgemm(&cfg, alpha, av, bv, beta, cv, epi)
    };
    let bias_ok = match bias {
        Bias::PerRow(v) => v.len() == m,
        Bias::PerCol(v) => v.len() == n,
        Bias::None => true,
    };
    let valid = c_rows == m && bias_ok;
    assert_eq!(result.is_ok(), valid, "{result:?} for a call that is valid: {valid}");
    if valid {
        let mut want = c0.clone();
        let wv = MatMut::new(&mut want, m, n, ldc).expect("validated above");
        reference::gemm::sgemm(&cfg, alpha, av, bv, beta, wv, epi).expect("valid call");
        // Small integers: every partial sum is exact in f32, so results agree exactly.
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(g == w || (g.is_nan() && w.is_nan()), "{isa}: C[{i}] = {g}, reference {w}");
        }
    }
}
