//! SGEMM on every ISA path against the naive f64 reference: property tests on random shapes,
//! the boundary catalogue around the register tile and cache blocks, determinism across
//! thread counts, pre-packed B, and every bad-input error.

mod common;

use common::{describe, gemm_configs, isas_under_test, random_vec};
use proptest::prelude::*;
use simdnn::kernels::gemm::{self, sgemm, sgemm_packed, Bias, Epilogue, GemmConfig, MatMut, MatRef, PackedB};
use simdnn::kernels::{reference, Isa, KernelError};

/// One GEMM problem with its storage.
#[derive(Clone, Debug)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    transa: bool,
    transb: bool,
    /// Extra elements per row beyond the minimum leading dimension, for A, B and C.
    pad: (usize, usize, usize),
    alpha: f32,
    beta: f32,
    bias: u8, // 0 none, 1 per row, 2 per column
    relu: bool,
    seed: u64,
}

struct Data {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    bias: Vec<f32>,
    lda: usize,
    ldb: usize,
    ldc: usize,
}

impl Case {
    fn simple(m: usize, n: usize, k: usize) -> Case {
        Case {
            m,
            n,
            k,
            transa: false,
            transb: false,
            pad: (0, 0, 0),
            alpha: 1.0,
            beta: 0.0,
            bias: 0,
            relu: false,
            seed: 7,
        }
    }

    /// Stored shapes: A is m x k (k x m if transposed), B is k x n (n x k if transposed).
    fn data(&self) -> Data {
        let (ar, ac) = if self.transa { (self.k, self.m) } else { (self.m, self.k) };
        let (br, bc) = if self.transb { (self.n, self.k) } else { (self.k, self.n) };
        let (lda, ldb, ldc) = (ac + self.pad.0, bc + self.pad.1, self.n + self.pad.2);
        let mut c = random_vec(self.m * ldc, self.seed + 3);
        if self.beta == 0.0 {
            c.fill(f32::NAN); // beta == 0 must never read C
        }
        Data {
            a: random_vec(ar * lda, self.seed),
            b: random_vec(br * ldb, self.seed + 1),
            c,
            bias: random_vec(self.m.max(self.n), self.seed + 2),
            lda,
            ldb,
            ldc,
        }
    }

    fn views<'a>(&self, d: &'a Data) -> (MatRef<'a>, MatRef<'a>) {
        let a = if self.transa {
            MatRef::new(&d.a, self.k, self.m, d.lda).unwrap().t()
        } else {
            MatRef::new(&d.a, self.m, self.k, d.lda).unwrap()
        };
        let b = if self.transb {
            MatRef::new(&d.b, self.n, self.k, d.ldb).unwrap().t()
        } else {
            MatRef::new(&d.b, self.k, self.n, d.ldb).unwrap()
        };
        (a, b)
    }

    fn epilogue<'a>(&self, d: &'a Data) -> Epilogue<'a> {
        let bias = match self.bias {
            1 => Bias::PerRow(&d.bias[..self.m]),
            2 => Bias::PerCol(&d.bias[..self.n]),
            _ => Bias::None,
        };
        Epilogue { bias, relu: self.relu }
    }

    /// Runs the fast GEMM on `cfg` (B pre-packed if asked) and the reference, and compares.
    fn check(&self, cfg: &GemmConfig, packed: bool) -> Result<(), String> {
        let d = self.data();
        let (a, b) = self.views(&d);
        let epi = self.epilogue(&d);
        let mut got = d.c.clone();
        let c = MatMut::new(&mut got, self.m, self.n, d.ldc).unwrap();
        if packed {
            let pb = PackedB::new(cfg.isa(), b).unwrap();
            sgemm_packed(cfg, self.alpha, a, &pb, self.beta, c, epi).unwrap();
        } else {
            sgemm(cfg, self.alpha, a, b, self.beta, c, epi).unwrap();
        }
        let mut want = d.c.clone();
        reference::gemm::sgemm(
            cfg,
            self.alpha,
            a,
            b,
            self.beta,
            MatMut::new(&mut want, self.m, self.n, d.ldc).unwrap(),
            epi,
        )
        .unwrap();
        for i in 0..self.m {
            for j in 0..self.n {
                let (g, w) = (got[i * d.ldc + j], want[i * d.ldc + j]);
                // Worst-case f32 summation error: k roundings of a sum bounded by the sum of
                // absolute terms (Higham, Accuracy and Stability of Numerical Algorithms, 3.1).
                let mag: f32 = (0..self.k).map(|p| (a.at(i, p) * b.at(p, j)).abs()).sum::<f32>() * self.alpha.abs()
                    + if self.beta == 0.0 { 0.0 } else { (self.beta * d.c[i * d.ldc + j]).abs() }
                    + 1.0;
                let tol = 2.0 * f32::EPSILON * (self.k as f32 + 4.0) * mag;
                let close = (g - w).abs() <= tol; // false for NaN too
                if !close {
                    return Err(format!(
                        "{} {:?}: C[{i}][{j}] = {g}, reference {w} (tolerance {tol})",
                        describe(cfg),
                        self
                    ));
                }
            }
        }
        // Padding between rows of C is never written.
        for i in 0..self.m {
            for j in self.n..d.ldc {
                let (g, w) = (got[i * d.ldc + j], d.c[i * d.ldc + j]);
                if g.to_bits() != w.to_bits() {
                    return Err(format!("{}: padding C[{i}][{j}] overwritten {:?}", describe(cfg), self));
                }
            }
        }
        Ok(())
    }
}

fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0usize..=300,
        2 => prop::sample::select(vec![1usize, 2, 3, 5, 6, 7, 8, 11, 12, 13, 16, 17, 31, 32, 33, 97, 127, 251, 256, 257, 293]),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        (dim(), dim(), dim()),
        (any::<bool>(), any::<bool>()),
        (0usize..4, 0usize..4, 0usize..4),
        prop::sample::select(vec![1.0f32, -0.5, 2.5]),
        prop::sample::select(vec![0.0f32, 1.0, 0.5]),
        (0u8..3, any::<bool>()),
        any::<u64>(),
    )
        .prop_map(|((m, n, k), (transa, transb), pad, alpha, beta, (bias, relu), seed)| Case {
            m,
            n,
            k,
            transa,
            transb,
            pad,
            alpha,
            beta,
            bias,
            relu,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sgemm_matches_reference(c in case(), threads in 1usize..=3) {
        for cfg in gemm_configs(threads) {
            c.check(&cfg, false).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn sgemm_packed_matches_reference(c in case(), threads in 1usize..=2) {
        for isa in isas_under_test() {
            let cfg = GemmConfig::new(isa, threads).unwrap();
            c.check(&cfg, true).map_err(TestCaseError::fail)?;
        }
    }
}

/// m and n at 0, 1 and around one and two register tiles (m also around the two-thirds
/// tile that finishes a short last panel of rows); k around the kc block.
#[test]
fn boundary_catalogue() {
    for cfg in gemm_configs(1) {
        let blk = cfg.blocking();
        let edges = |t: usize| vec![0, 1, t - 1, t, t + 1, 2 * t + 1];
        let short = blk.mr * 2 / 3;
        let mut rows = edges(blk.mr);
        rows.extend([short, short + 1, blk.mr + short, blk.mr + short + 1]);
        for &m in &rows {
            for &n in &edges(blk.nr) {
                for &k in &[0, 1, blk.kc - 1, blk.kc, blk.kc + 1] {
                    for (beta, bias, relu) in [(0.0, 0, false), (1.0, 1, true), (0.5, 2, false)] {
                        let c = Case { beta, bias, relu, alpha: -0.5, ..Case::simple(m, n, k) };
                        c.check(&cfg, false).unwrap();
                    }
                }
            }
        }
    }
}

/// Shapes that cross the mc and nc cache blocks, checked against the reference.
#[test]
fn crosses_cache_blocks() {
    for threads in [1, 2] {
        for cfg in gemm_configs(threads) {
            let blk = cfg.blocking();
            let c = Case { beta: 0.5, bias: 2, relu: true, transa: true, ..Case::simple(blk.mc + 7, 37, blk.kc + 3) };
            c.check(&cfg, false).unwrap();
            let c = Case { bias: 1, ..Case::simple(13, blk.nc + 5, 29) };
            c.check(&cfg, false).unwrap();
            if cfg.blocking() == gemm::blocking(cfg.isa()) {
                c.check(&cfg, true).unwrap(); // packing for the emulated layout is not offered
            }
        }
    }
}

/// Large shapes: a random projection (Freivalds) checks C x = A (B x) in O(n^2).
#[test]
fn large_shapes_random_projection() {
    for isa in isas_under_test() {
        for (m, n, k) in [(1030, 517, 700), (64, 3136, 576)] {
            let a = random_vec(m * k, 1);
            let b = random_vec(k * n, 2);
            let mut c = vec![f32::NAN; m * n];
            let cfg = GemmConfig::new(isa, 2).unwrap();
            let (av, bv) = (MatRef::new(&a, m, k, k).unwrap(), MatRef::new(&b, k, n, n).unwrap());
            sgemm(&cfg, 1.0, av, bv, 0.0, MatMut::new(&mut c, m, n, n).unwrap(), Epilogue::NONE).unwrap();
            let x: Vec<f64> = random_vec(n, 3).into_iter().map(f64::from).collect();
            let bx: Vec<f64> = (0..k).map(|p| (0..n).map(|j| b[p * n + j] as f64 * x[j]).sum()).collect();
            for i in 0..m {
                let want: f64 = (0..k).map(|p| a[i * k + p] as f64 * bx[p]).sum();
                let got: f64 = (0..n).map(|j| c[i * n + j] as f64 * x[j]).sum();
                let scale: f64 = (0..k).map(|p| (a[i * k + p] as f64 * bx[p]).abs()).sum::<f64>() + 1.0;
                assert!(
                    (got - want).abs() <= 1e-5 * scale * (k as f64).sqrt(),
                    "{isa} {m}x{n}x{k} row {i}: {got} vs {want}"
                );
            }
        }
    }
}

/// Threads split M and N, never K: the result is bit-identical for any thread count.
#[test]
fn deterministic_across_thread_counts() {
    for base in gemm_configs(1) {
        let (m, n, k) = (301, 257, 531);
        let a = random_vec(m * k, 4);
        let b = random_vec(k * n, 5);
        let run = |threads: usize| {
            let mut c = vec![0.0; m * n];
            let cfg = base.with_threads(threads).unwrap();
            sgemm(
                &cfg,
                1.0,
                MatRef::new(&a, m, k, k).unwrap(),
                MatRef::new(&b, k, n, n).unwrap(),
                0.0,
                MatMut::new(&mut c, m, n, n).unwrap(),
                Epilogue::NONE,
            )
            .unwrap();
            c
        };
        let one = run(1);
        for t in [2, 3, 4] {
            assert!(
                one.iter().zip(run(t)).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{}: {t} threads differ",
                describe(&base)
            );
        }
    }
}

/// alpha == 0 means A and B are not read: infinities there must not become NaN in C.
#[test]
fn alpha_zero_ignores_a_and_b() {
    for isa in isas_under_test() {
        let cfg = GemmConfig::new(isa, 1).unwrap();
        let a = vec![f32::INFINITY; 12];
        let b = vec![f32::NAN; 12];
        let mut c = vec![2.0; 9];
        sgemm(
            &cfg,
            0.0,
            MatRef::new(&a, 3, 4, 4).unwrap(),
            MatRef::new(&b, 4, 3, 3).unwrap(),
            0.5,
            MatMut::new(&mut c, 3, 3, 3).unwrap(),
            Epilogue::NONE,
        )
        .unwrap();
        assert_eq!(c, vec![1.0; 9], "{isa}");
    }
}

#[test]
fn bad_input_is_an_error() {
    let cfg = GemmConfig::new(Isa::Portable, 1).unwrap();
    let (a, b) = (vec![0.0; 6], vec![0.0; 6]);
    let mut c = vec![0.0; 4];
    assert!(matches!(MatRef::new(&a, 2, 3, 2), Err(KernelError::LeadingDimTooSmall { .. })));
    assert!(matches!(MatRef::new(&a, 3, 3, 3), Err(KernelError::SliceTooShort { need: 9, got: 6, .. })));
    assert!(matches!(MatRef::new(&a, usize::MAX, 2, 2), Err(KernelError::SizeOverflow { .. })));
    let a23 = MatRef::new(&a, 2, 3, 3).unwrap();
    let b32 = MatRef::new(&b, 3, 2, 2).unwrap();
    let err = sgemm(&cfg, 1.0, a23, a23, 0.0, MatMut::new(&mut c, 2, 2, 2).unwrap(), Epilogue::NONE);
    assert!(matches!(err, Err(KernelError::InnerDimMismatch { m: 2, k: 3, k_b: 2, n: 3 })), "{err:?}");
    let err = sgemm(&cfg, 1.0, a23, b32, 0.0, MatMut::new(&mut c, 1, 2, 2).unwrap(), Epilogue::NONE);
    assert!(matches!(err, Err(KernelError::OutputShapeMismatch { .. })));
    let bias = [1.0; 3];
    let err = sgemm(&cfg, 1.0, a23, b32, 0.0, MatMut::new(&mut c, 2, 2, 2).unwrap(), Epilogue::bias_per_row(&bias));
    assert!(matches!(err, Err(KernelError::BiasLength { expected: 2, got: 3, .. })));
    let err =
        sgemm(&cfg, 1.0, a23, b32, 0.0, MatMut::new(&mut c, 2, 2, 2).unwrap(), Epilogue::bias_per_col(&bias[..1]));
    assert!(matches!(err, Err(KernelError::BiasLength { expected: 2, got: 1, .. })));
    assert!(matches!(GemmConfig::new(Isa::Portable, 0), Err(KernelError::BadThreadCount { .. })));
    assert!(matches!("avx9".parse::<Isa>(), Err(KernelError::UnknownIsa { .. })));
    if !Isa::Avx512.is_supported() {
        assert!(matches!(GemmConfig::new(Isa::Avx512, 1), Err(KernelError::IsaUnsupported { isa: "avx512" })));
    }
    if let Some(&other) = Isa::available().iter().find(|&&i| i != Isa::Portable) {
        let packed = PackedB::new(other, b32).unwrap();
        let err = sgemm_packed(&cfg, 1.0, a23, &packed, 0.0, MatMut::new(&mut c, 2, 2, 2).unwrap(), Epilogue::NONE);
        assert!(matches!(err, Err(KernelError::PackedIsaMismatch { .. })));
    }
}

/// Every path the CPU reports is exercised by this suite, and the forced one is the one used.
#[test]
fn isa_paths_under_test() {
    let isas = isas_under_test();
    assert!(!isas.is_empty());
    if std::env::var("SIMDNN_ISA").is_ok_and(|v| !v.is_empty()) {
        assert_eq!(Isa::current().unwrap(), isas[0]);
    } else {
        assert!(isas.contains(&Isa::best()));
    }
}

#[test]
fn thread_counts_are_bounded() {
    use simdnn::kernels::threading::MAX_THREADS;
    assert!(GemmConfig::new(Isa::Portable, MAX_THREADS).is_ok());
    assert!(matches!(GemmConfig::new(Isa::Portable, MAX_THREADS + 1), Err(KernelError::BadThreadCount { .. })));
    assert!(matches!(simdnn::kernels::peak::fma_chains(Isa::Portable, 0, 1), Err(KernelError::BadThreadCount { .. })));
}
