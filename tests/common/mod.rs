//! Helpers shared by the integration tests.
#![allow(dead_code)]

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;

/// The paths to test: the one `SIMDNN_ISA` forces (failing loudly if this CPU lacks it), or
/// every path this CPU has.
pub fn isas_under_test() -> Vec<Isa> {
    match std::env::var("SIMDNN_ISA") {
        Ok(v) if !v.trim().is_empty() => {
            let isa = v.parse::<Isa>().unwrap_or_else(|e| panic!("{e}"));
            assert!(isa.is_supported(), "SIMDNN_ISA={v}, but this CPU lacks it");
            vec![isa]
        }
        _ => Isa::available(),
    }
}

/// GEMM configurations to test at `threads`: one per ISA under test, plus the AVX-512
/// layout emulated on portable instructions when no ISA is forced (so the 12 x 32 tiling is
/// exercised on CPUs without AVX-512).
pub fn gemm_configs(threads: usize) -> Vec<GemmConfig> {
    let mut cfgs: Vec<_> = isas_under_test().into_iter().map(|isa| GemmConfig::new(isa, threads).unwrap()).collect();
    if std::env::var("SIMDNN_ISA").map_or(true, |v| v.trim().is_empty()) {
        cfgs.push(GemmConfig::emulated_avx512(threads).unwrap());
    }
    cfgs
}

/// A short name for failure messages.
pub fn describe(cfg: &GemmConfig) -> String {
    let b = cfg.blocking();
    format!("{} {}x{} tile, {} threads", cfg.isa(), b.mr, b.nr, cfg.threads())
}

/// Deterministic pseudo-random values in [-1, 1) (xorshift; tests need no crate for this).
pub fn random_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}
