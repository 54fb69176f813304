//! Criterion benchmarks of SGEMM on every ISA path this CPU has, over the shapes of the
//! engine's layers (square, convolution-as-GEMM, fully connected). Ids are
//! `{kernel}/{shape}`; throughput is in FLOPs (2*M*N*K), so criterion reports FLOP/s.
//!
//! `cargo bench --bench gemm` (all), `cargo bench --bench gemm -- conv` (a subset).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use simdnn::kernels::gemm::{self, sgemm, sgemm_packed, Epilogue, GemmConfig, MatMut, MatRef, PackedB};
use simdnn::kernels::{reference, Isa};
use std::hint::black_box;
use std::time::Duration;

/// (name, m, n, k): the shapes of issue #2, named after what they stand for.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("square64", 64, 64, 64),
    ("square128", 128, 128, 128),
    ("square256", 256, 256, 256),
    ("square512", 512, 512, 512),
    ("square1024", 1024, 1024, 1024),
    ("square2048", 2048, 2048, 2048),
    ("conv_resnet_c2", 64, 3136, 576),
    ("conv_resnet_c3", 128, 784, 1152),
    ("conv_resnet_c4", 256, 196, 2304),
    ("conv_resnet_c5", 512, 49, 4608),
    ("fc_gemv_1000x4096", 1000, 1, 4096),
    ("fc_batch64_4096x9216", 4096, 64, 9216),
];

fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 9) as f32 / 8.4e6 - 0.5).collect()
}

fn bench_gemm(c: &mut Criterion) {
    let threads = std::env::var("SIMDNN_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    for isa in Isa::available() {
        let cfg = GemmConfig::new(isa, threads).expect("available ISA");
        let mut group = c.benchmark_group(format!("{}/t{threads}", gemm::kernel_name(isa)));
        group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
        for &(name, m, n, k) in SHAPES {
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let mut out = vec![0.0f32; m * n];
            let (av, bv) = (MatRef::new(&a, m, k, k).unwrap(), MatRef::new(&b, k, n, n).unwrap());
            group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
            group.bench_function(BenchmarkId::new("sgemm", name), |bench| {
                bench.iter(|| {
                    let cv = MatMut::new(&mut out, m, n, n).unwrap();
                    sgemm(&cfg, 1.0, black_box(av), black_box(bv), 0.0, cv, Epilogue::NONE).unwrap()
                })
            });
            let packed = PackedB::new(isa, bv).unwrap();
            group.bench_function(BenchmarkId::new("sgemm_packed", name), |bench| {
                bench.iter(|| {
                    let cv = MatMut::new(&mut out, m, n, n).unwrap();
                    sgemm_packed(&cfg, 1.0, black_box(av), &packed, 0.0, cv, Epilogue::NONE).unwrap()
                })
            });
        }
        group.finish();
    }
    // The naive reference at a small size: a floor the optimised paths must clear by far.
    let mut group = c.benchmark_group("reference");
    group.sample_size(10);
    let (m, n, k) = (64, 64, 64);
    let (a, b) = (data(m * k, 1), data(k * n, 2));
    let mut out = vec![0.0f32; m * n];
    let cfg = GemmConfig::new(Isa::Portable, 1).unwrap();
    group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
    group.bench_function("sgemm/square64", |bench| {
        bench.iter(|| {
            let (av, bv) = (MatRef::new(&a, m, k, k).unwrap(), MatRef::new(&b, k, n, n).unwrap());
            reference::gemm::sgemm(&cfg, 1.0, av, bv, 0.0, MatMut::new(&mut out, m, n, n).unwrap(), Epilogue::NONE)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
