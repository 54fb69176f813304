//! Criterion benchmarks of convolution, pooling and activations on the shapes of issue #3
//! (ResNet, VGG, AlexNet and SqueezeNet layers), for each algorithm that applies. Ids are
//! `conv/{algo}/{shape}/n{batch}`; throughput counts direct-equivalent FLOPs
//! (2*N*K*C*R*S*Hout*Wout), or bytes read and written for pooling and ReLU.
//!
//! `cargo bench --bench conv`; `SIMDNN_THREADS` sets the thread count.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use simdnn::kernels::conv::{conv2d_forward, Conv2dGeom, ConvAlgo};
use simdnn::kernels::eltwise;
use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::pool::{relu_max_pool2d_forward, Pool2dGeom};
use std::time::Duration;

/// (name, C, K, H=W, R, stride, pad)
const SHAPES: &[(&str, usize, usize, usize, usize, usize, usize)] = &[
    ("3x3_64_56", 64, 64, 56, 3, 1, 1),
    ("3x3_128_28", 128, 128, 28, 3, 1, 1),
    ("3x3_256_14", 256, 256, 14, 3, 1, 1),
    ("3x3_512_7", 512, 512, 7, 3, 1, 1),
    ("3x3_3to64_224", 3, 64, 224, 3, 1, 1),
    ("7x7s2_3to64_224", 3, 64, 224, 7, 2, 3),
    ("1x1_256to64_56", 256, 64, 56, 1, 1, 0),
    ("11x11s4_3to96_227", 3, 96, 227, 11, 4, 0),
    ("5x5_96to256_27", 96, 256, 27, 5, 1, 2),
];

fn data(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn bench_conv(c: &mut Criterion) {
    let cfg = GemmConfig::from_env().expect("SIMDNN_ISA / SIMDNN_THREADS");
    let mut group = c.benchmark_group("conv");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for &(name, ch, k, hw, r, stride, pad) in SHAPES {
        for batch in [1, 8] {
            let g = Conv2dGeom::new(batch, ch, (hw, hw), k, (r, r)).stride(stride, stride).pad(pad, pad);
            let (x, w, b) = (data(g.input_len()), data(g.weight_len()), data(k));
            let mut y = vec![0.0; g.output_len()];
            group.throughput(Throughput::Elements(2 * g.macs() as u64));
            for algo in ConvAlgo::ALL.into_iter().filter(|&a| a != ConvAlgo::Auto) {
                if algo.resolve(&g).is_err() {
                    continue;
                }
                group.bench_function(
                    BenchmarkId::new(format!("{}/{name}", algo.name()), format!("n{batch}")),
                    |bench| bench.iter(|| conv2d_forward(&cfg, &g, algo, &x, &w, Some(&b), false, &mut y).unwrap()),
                );
            }
        }
    }
    group.finish();

    let isa = cfg.isa();
    let mut group = c.benchmark_group("memory_bound");
    let p = Pool2dGeom::new(1, 64, (112, 112), 3, 2);
    let x = data(p.input_len());
    let mut y = vec![0.0; p.output_len()];
    group.throughput(Throughput::Bytes(4 * (p.input_len() + p.output_len()) as u64));
    group.bench_function("relu_max_pool_3x3s2_64_112", |bench| {
        bench.iter(|| relu_max_pool2d_forward(&cfg, &p, &x, &mut y, None).unwrap())
    });
    let mut out = vec![0.0; x.len()];
    group.throughput(Throughput::Bytes(8 * x.len() as u64));
    group.bench_function("relu_64_112", |bench| bench.iter(|| eltwise::relu(isa, &x, &mut out).unwrap()));
    group.bench_function("copy_64_112", |bench| bench.iter(|| out.copy_from_slice(std::hint::black_box(&x))));
    group.finish();
}

criterion_group!(benches, bench_conv);
criterion_main!(benches);
