//! A GEMM call allocates nothing once a call of the same shape and thread count has run:
//! RNN and GNN steps are many GEMMs of a few microseconds, where an allocation (and the
//! page faults of a fresh buffer) would cost as much as the product.
//!
//! A counting global allocator sees every allocation of every thread of this test binary,
//! which therefore holds this one test only.

mod common;

use common::{gemm_configs, random_vec};
use simdnn::kernels::gemm::{sgemm, sgemm_packed, Epilogue, GemmConfig, MatMut, MatRef, PackedB};
#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

fn allocations(f: impl FnOnce()) -> usize {
    counting::allocations(f).0
}

#[test]
fn repeated_gemm_calls_do_not_allocate() {
    let _serial = counting::serial();
    // Square, wide and narrow (A read in place, dot-product columns), a GEMV each way,
    // transposed B, a bias and ReLU epilogue, beta != 0.
    let shapes = [(97, 131, 203), (301, 257, 531), (64, 49, 576), (1, 300, 200), (300, 1, 200), (33, 40, 17)];
    for threads in [1, 2, 3] {
        for cfg in gemm_configs(threads) {
            for &(m, n, k) in &shapes {
                let a = random_vec(m * k, 1);
                let b = random_vec(k * n, 2);
                let bias = random_vec(n, 3);
                let mut c = vec![0.0; m * n];
                let mut call = |cfg: &GemmConfig, transposed_b: bool| {
                    let av = MatRef::new(&a, m, k, k).unwrap();
                    let bv = if transposed_b {
                        MatRef::new(&b, n, k, k).unwrap().t()
                    } else {
                        MatRef::new(&b, k, n, n).unwrap()
                    };
                    let cv = MatMut::new(&mut c, m, n, n).unwrap();
                    sgemm(cfg, 1.5, av, bv, 0.5, cv, Epilogue::bias_per_col(&bias).relu()).unwrap();
                };
                for transposed_b in [false, true] {
                    call(&cfg, transposed_b); // the first call may size buffers and start threads
                    let count = allocations(|| {
                        for _ in 0..3 {
                            call(&cfg, transposed_b);
                        }
                    });
                    assert_eq!(count, 0, "{m}x{n}x{k} on {cfg:?}, B transposed: {transposed_b}");
                }
            }
        }
        // Packed B: packing allocates the panels once; the products do not.
        let cfg = GemmConfig::new(simdnn::kernels::Isa::current().unwrap(), threads).unwrap();
        let (m, n, k) = (150, 90, 300);
        let (a, b) = (random_vec(m * k, 4), random_vec(k * n, 5));
        let packed = PackedB::new(cfg.isa(), MatRef::new(&b, k, n, n).unwrap()).unwrap();
        let mut c = vec![0.0; m * n];
        let mut call = || {
            let (av, cv) = (MatRef::new(&a, m, k, k).unwrap(), MatMut::new(&mut c, m, n, n).unwrap());
            sgemm_packed(&cfg, 1.0, av, &packed, 0.0, cv, Epilogue::NONE).unwrap();
        };
        call();
        assert_eq!(allocations(|| (0..3).for_each(|_| call())), 0, "packed B, {threads} threads");
    }
}
