//! Pooling on every ISA path against the naive reference: max (with argmax and fused
//! ReLU), average (both divisor rules) and global average, forward and backward, on random
//! geometries with padding, strides and ceil mode; the gradients against finite
//! differences; and the bad-input errors.

mod common;

use common::{describe, gemm_configs, random_vec};
use proptest::prelude::*;
use simdnn::kernels::pool::{self, Pool2dGeom};
use simdnn::kernels::{reference, KernelError};

fn geom() -> impl Strategy<Value = Pool2dGeom> {
    (
        (1usize..=2, 1usize..=3),
        (1usize..=20, 1usize..=20),
        (1usize..=4, 1usize..=4),
        (1usize..=3, 1usize..=3),
        (0usize..=2, 0usize..=2),
        any::<bool>(),
    )
        .prop_map(|((batch, channels), (h, w), (kh, kw), (sh, sw), (ph, pw), ceil_mode)| Pool2dGeom {
            batch,
            channels,
            in_h: h,
            in_w: w,
            kernel_h: kh,
            kernel_w: kw,
            stride_h: sh,
            stride_w: sw,
            pad_h: ph,
            pad_w: pw,
            ceil_mode,
        })
        .prop_filter("a valid geometry", |g| g.validate().is_ok())
}

/// Inputs with repeated values, so ties (and their row-major resolution) are exercised.
fn tie_prone(len: usize, seed: u64) -> Vec<f32> {
    random_vec(len, seed).into_iter().map(|v| (v * 4.0).round()).collect()
}

fn check(g: &Pool2dGeom, seed: u64) -> Result<(), String> {
    let x = tie_prone(g.input_len(), seed);
    let dy = random_vec(g.output_len(), seed + 1);
    for cfg in gemm_configs(1) {
        let isa = describe(&cfg);
        let cfg = &cfg;
        for relu in [false, true] {
            let (mut y, mut arg) = (vec![f32::NAN; g.output_len()], vec![u32::MAX; g.output_len()]);
            let (mut y_ref, mut arg_ref) = (vec![0.0; g.output_len()], vec![0; g.output_len()]);
            let fwd = if relu { pool::relu_max_pool2d_forward } else { pool::max_pool2d_forward };
            fwd(cfg, g, &x, &mut y, Some(&mut arg)).map_err(|e| e.to_string())?;
            reference::pool::max_pool2d(g, relu, &x, &mut y_ref, &mut arg_ref).unwrap();
            if y != y_ref || arg != arg_ref {
                return Err(format!("{isa} max pool (relu {relu}) {g:?}:\n{y:?}\n{y_ref:?}\n{arg:?}\n{arg_ref:?}"));
            }
            let mut y_only = vec![f32::NAN; g.output_len()];
            fwd(cfg, g, &x, &mut y_only, None).map_err(|e| e.to_string())?;
            if y_only != y_ref {
                return Err(format!("{isa} max pool without argmax (relu {relu}) {g:?}"));
            }
            // Backward: the gradient lands on the recorded argmax, through ReLU only if y > 0.
            let mut dx = vec![f32::NAN; g.input_len()];
            let mut want = vec![0.0; g.input_len()];
            let plane_in = g.in_h * g.in_w;
            let plane_out = g.out_h() * g.out_w();
            for (o, (&d, &a)) in dy.iter().zip(&arg_ref).enumerate() {
                if !relu || y_ref[o] > 0.0 {
                    want[(o / plane_out) * plane_in + a as usize] += d;
                }
            }
            if relu {
                pool::relu_max_pool2d_backward(g, &y, &dy, &arg, &mut dx).map_err(|e| e.to_string())?;
            } else {
                pool::max_pool2d_backward(g, &dy, &arg, &mut dx).map_err(|e| e.to_string())?;
            }
            if dx != want {
                return Err(format!("{isa} max pool backward (relu {relu}) {g:?}"));
            }
        }
        for count_pad in [true, false] {
            let mut y = vec![f32::NAN; g.output_len()];
            let mut y_ref = vec![0.0; g.output_len()];
            pool::avg_pool2d_forward(cfg, g, count_pad, &x, &mut y).map_err(|e| e.to_string())?;
            reference::pool::avg_pool2d(g, count_pad, &x, &mut y_ref).unwrap();
            for (i, (a, b)) in y.iter().zip(&y_ref).enumerate() {
                let close = (a - b).abs() <= 1e-5 * (1.0 + b.abs());
                if !close {
                    return Err(format!("{isa} avg pool (count_pad {count_pad}) {g:?}: y[{i}] = {a}, reference {b}"));
                }
            }
            let mut dx = vec![f32::NAN; g.input_len()];
            let mut want = vec![0.0; g.input_len()];
            pool::avg_pool2d_backward(g, count_pad, &dy, &mut dx).map_err(|e| e.to_string())?;
            reference::pool::avg_pool2d_backward(g, count_pad, &dy, &mut want).unwrap();
            for (i, (a, b)) in dx.iter().zip(&want).enumerate() {
                let close = (a - b).abs() <= 1e-5 * (1.0 + b.abs());
                if !close {
                    return Err(format!(
                        "avg pool backward (count_pad {count_pad}) {g:?}: dx[{i}] = {a}, reference {b}"
                    ));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn pooling_matches_reference(g in geom(), seed in any::<u64>()) {
        check(&g, seed).map_err(TestCaseError::fail)?;
    }
}

/// Rows up to 80 wide at horizontal stride 2 (windows 2 or 3 wide, mostly unpadded): the
/// fused stride-2 rows, with their unchecked inner vectors and checked last ones.
fn wide_stride2_geom() -> impl Strategy<Value = Pool2dGeom> {
    (
        (1usize..=2, 1usize..=9, 17usize..=80),
        (1usize..=4, 2usize..=3, 1usize..=3),
        (0usize..=1, 0usize..=1, any::<bool>()),
    )
        .prop_map(|((channels, h, w), (kh, kw, sh), (ph, pw, ceil_mode))| Pool2dGeom {
            kernel_h: kh,
            kernel_w: kw,
            stride_h: sh,
            ..Pool2dGeom::new(1, channels, (h, w), kh, 2).pad(ph.min(kh / 2), pw.min(kw / 2)).ceil_mode(ceil_mode)
        })
        .prop_filter("a valid geometry", |g| g.validate().is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn wide_stride2_rows_match_reference(g in wide_stride2_geom(), seed in any::<u64>()) {
        check(&g, seed).map_err(TestCaseError::fail)?;
    }
}

/// The pooling layers of the course's models, at reduced plane sizes.
#[test]
fn model_pooling_shapes() {
    let shapes = [
        Pool2dGeom::new(2, 3, (28, 28), 2, 2),                   // LeNet S2
        Pool2dGeom::new(1, 4, (55, 55), 3, 2),                   // AlexNet
        Pool2dGeom::new(1, 2, (113, 113), 3, 2).ceil_mode(true), // SqueezeNet, ceil mode
        Pool2dGeom::new(1, 2, (112, 112), 3, 2).pad(1, 1),       // ResNet stem
        Pool2dGeom::new(1, 2, (7, 9), 7, 1),                     // window = input height
    ];
    for g in shapes {
        check(&g, 3).unwrap();
    }
}

/// The forward passes split the planes across threads: the same bits on any thread count
/// (whole planes per thread, and planes enough to be split).
#[test]
fn threads_split_planes_with_the_same_results() {
    let g = Pool2dGeom::new(2, 5, (61, 67), 3, 2).pad(1, 1);
    let x = tie_prone(g.input_len(), 21);
    let run = |threads: usize| {
        let cfg = gemm_configs(threads).remove(0);
        let (mut y, mut arg, mut y_relu, mut y_avg) =
            (vec![0.0; g.output_len()], vec![0; g.output_len()], vec![0.0; g.output_len()], vec![0.0; g.output_len()]);
        pool::max_pool2d_forward(&cfg, &g, &x, &mut y, Some(&mut arg)).unwrap();
        pool::relu_max_pool2d_forward(&cfg, &g, &x, &mut y_relu, None).unwrap();
        pool::avg_pool2d_forward(&cfg, &g, false, &x, &mut y_avg).unwrap();
        let mut y_global = vec![0.0; 10];
        pool::global_avg_pool_forward(&cfg, 61 * 67, &x, &mut y_global).unwrap();
        (y, arg, y_relu, y_avg, y_global)
    };
    let one = run(1);
    check(&g, 21).unwrap();
    for threads in [2, 3, 4] {
        assert!(run(threads) == one, "{threads} threads");
    }
}

/// Average pooling is linear: its backward pass must equal the finite differences of the
/// f64 reference forward, i.e. the adjoint; checked through sum(y * dy).
#[test]
fn avg_backward_is_the_adjoint() {
    let g = Pool2dGeom::new(1, 2, (7, 6), 3, 2).pad(1, 1).ceil_mode(true);
    let x = random_vec(g.input_len(), 5);
    let dy = random_vec(g.output_len(), 6);
    for count_pad in [true, false] {
        let mut dx = vec![0.0; g.input_len()];
        pool::avg_pool2d_backward(&g, count_pad, &dy, &mut dx).unwrap();
        let loss = |x: &[f32]| -> f64 {
            let mut y = vec![0.0; g.output_len()];
            reference::pool::avg_pool2d(&g, count_pad, x, &mut y).unwrap();
            y.iter().zip(&dy).map(|(a, b)| *a as f64 * *b as f64).sum()
        };
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += 0.5;
            minus[i] -= 0.5;
            let numeric = loss(&plus) - loss(&minus);
            assert!((numeric - dx[i] as f64).abs() < 1e-5, "dx[{i}]: {} vs numeric {numeric}", dx[i]);
        }
    }
}

#[test]
fn global_average_pooling() {
    for cfg in gemm_configs(2) {
        let (isa, cfg) = (describe(&cfg), &cfg);
        for plane in [1, 7, 8, 49, 50, 196, 1 << 15] {
            let x = random_vec(3 * plane, plane as u64);
            let (mut y, mut want) = (vec![0.0; 3], vec![0.0; 3]);
            pool::global_avg_pool_forward(cfg, plane, &x, &mut y).unwrap();
            reference::pool::global_avg_pool(cfg, plane, &x, &mut want).unwrap();
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{isa} plane {plane}: {a} vs {b}");
            }
            let mut dx = vec![0.0; 3 * plane];
            pool::global_avg_pool_backward(plane, &[3.0, -1.0, 0.5], &mut dx).unwrap();
            assert!((dx[0] - 3.0 / plane as f32).abs() < 1e-7 && (dx[3 * plane - 1] - 0.5 / plane as f32).abs() < 1e-7);
        }
        assert!(pool::global_avg_pool_forward(cfg, 0, &[], &mut []).is_err());
        assert!(pool::global_avg_pool_forward(cfg, 4, &[0.0; 7], &mut [0.0; 2]).is_err());
    }
}

#[test]
fn bad_input_is_an_error() {
    let isa = &gemm_configs(1)[0];
    let g = Pool2dGeom::new(1, 1, (4, 4), 2, 2);
    let (x, mut y) = (vec![0.0; 16], vec![0.0; 4]);
    assert!(matches!(
        pool::max_pool2d_forward(isa, &Pool2dGeom { stride_h: 0, ..g }, &x, &mut y, None),
        Err(KernelError::ZeroSize { .. })
    ));
    assert!(matches!(
        pool::max_pool2d_forward(isa, &g.pad(2, 0), &x, &mut y, None),
        Err(KernelError::PoolPadding { .. })
    ));
    assert!(matches!(
        pool::max_pool2d_forward(isa, &Pool2dGeom::new(1, 1, (4, 4), 5, 1), &x, &mut y, None),
        Err(KernelError::KernelLargerThanInput { .. })
    ));
    assert!(matches!(pool::max_pool2d_forward(isa, &g, &x[1..], &mut y, None), Err(KernelError::TensorLength { .. })));
    assert!(matches!(pool::avg_pool2d_forward(isa, &g, true, &x, &mut y[1..]), Err(KernelError::TensorLength { .. })));
    let mut dx = vec![0.0; 16];
    assert!(matches!(
        pool::max_pool2d_backward(&g, &[1.0; 4], &[0, 1, 2, 16], &mut dx),
        Err(KernelError::ArgmaxOutOfRange { index: 3, value: 16, .. })
    ));
    assert!(matches!(
        pool::max_pool2d_backward(&g, &[1.0; 4], &[0, 1, 2], &mut dx),
        Err(KernelError::TensorLength { .. })
    ));
}

/// Regressions from review: strides far wider than the window (the row buffer must hold
/// the whole padded row), and sizes whose arithmetic would overflow.
#[test]
fn bug_wide_strides_and_huge_sizes() {
    for g in [
        Pool2dGeom::new(1, 1, (1, 1000), 1, 1000),
        Pool2dGeom { stride_w: 13, stride_h: 5, ..Pool2dGeom::new(1, 2, (7, 50), 2, 2).pad(1, 1) },
        Pool2dGeom { stride_w: 40, ..Pool2dGeom::new(1, 1, (3, 97), 3, 1) }.ceil_mode(true),
    ] {
        check(&g, 8).unwrap();
    }
    let isa = &gemm_configs(1)[0];
    let (x, mut y) = (vec![0.0; 8], vec![0.0; 8]);
    let huge_pad = Pool2dGeom { kernel_h: 2, pad_h: (1usize << 63) + 1, ..Pool2dGeom::new(1, 1, (1, 8), 1, 1) };
    assert!(pool::max_pool2d_forward(isa, &huge_pad, &x, &mut y, None).is_err());
    let huge_kernel = Pool2dGeom { kernel_w: usize::MAX, pad_w: usize::MAX / 2, ..Pool2dGeom::new(1, 1, (1, 8), 1, 1) };
    assert!(pool::avg_pool2d_forward(isa, &huge_kernel, true, &x, &mut y).is_err());
    let huge_stride = Pool2dGeom { stride_w: usize::MAX, ..Pool2dGeom::new(1, 1, (1, 8), 1, 1) }.ceil_mode(true);
    assert!(pool::max_pool2d_forward(isa, &huge_stride, &x, &mut y, None).is_err());
    assert!(matches!(
        pool::global_avg_pool_forward(isa, 1 << 62, &[], &mut [0.0; 4]),
        Err(KernelError::SizeOverflow { .. })
    ));
}
