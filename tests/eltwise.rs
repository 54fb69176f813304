//! Activations, exp and softmax on every ISA path against f64 references: accuracy in ulps
//! over dense ranges, special values, every tail length, the backward passes against
//! finite differences, and the length errors.

mod common;

use common::{describe, gemm_configs, isas_under_test, random_vec};
use simdnn::kernels::{eltwise, reference, Isa, KernelError};

type Fwd = fn(Isa, &[f32], &mut [f32]) -> Result<(), KernelError>;

/// Largest error in units of `max(|want|, floor)` over `x` (relative error, with an
/// absolute floor where the function is near zero).
fn worst_error(isa: Isa, f: Fwd, r: Fwd, x: &[f32], floor: f64) -> (f64, f32) {
    let (mut got, mut want) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    f(isa, x, &mut got).unwrap();
    r(isa, x, &mut want).unwrap();
    let mut worst = (0.0, 0.0);
    for ((g, w), &v) in got.iter().zip(&want).zip(x) {
        let err = (*g as f64 - *w as f64).abs() / (w.abs() as f64).max(floor);
        if err > worst.0 {
            worst = (err, v);
        }
    }
    worst
}

fn dense(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..n).map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32).collect()
}

#[test]
fn transcendental_accuracy() {
    let eps = f32::EPSILON as f64;
    for isa in isas_under_test() {
        let (e, at) = worst_error(isa, eltwise::exp, reference::eltwise::exp, &dense(-87.0, 88.5, 200_001), 0.0);
        assert!(e <= 3.0 * eps, "{isa} exp: {:.2} ulp at {at}", e / eps);
        let (e, at) =
            worst_error(isa, eltwise::sigmoid, reference::eltwise::sigmoid, &dense(-80.0, 40.0, 200_001), 0.0);
        assert!(e <= 4.0 * eps, "{isa} sigmoid: {:.2} ulp at {at}", e / eps);
        let (e, at) = worst_error(isa, eltwise::tanh, reference::eltwise::tanh, &dense(-20.0, 20.0, 200_001), 0.0);
        assert!(e <= 4.0 * eps, "{isa} tanh: {:.2} ulp at {at}", e / eps);
        let (e, at) = worst_error(isa, eltwise::tanh, reference::eltwise::tanh, &dense(-1e-3, 1e-3, 20_001), 1e-30);
        assert!(e <= 4.0 * eps, "{isa} tanh near 0: {:.2} ulp at {at}", e / eps);
        let (e, _) = worst_error(isa, eltwise::relu, reference::eltwise::relu, &random_vec(1000, 1), 0.0);
        assert_eq!(e, 0.0);
    }
}

#[test]
fn special_values() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    for isa in isas_under_test() {
        let x = [nan, inf, -inf, 100.0, -100.0, 0.0, -0.0, 88.0, -87.0];
        let mut y = [0.0; 9];
        eltwise::exp(isa, &x, &mut y).unwrap();
        assert!(
            y[0].is_nan() && y[1] == inf && y[2] == 0.0 && y[3] == inf && y[4] == 0.0 && y[5] == 1.0 && y[6] == 1.0,
            "{isa} exp {y:?}"
        );
        assert!(y[7].is_finite() && y[8] > 0.0, "{isa} exp near the limits {y:?}");
        eltwise::sigmoid(isa, &x, &mut y).unwrap();
        assert!(
            y[0].is_nan() && y[1] == 1.0 && y[2] == 0.0 && y[3] == 1.0 && y[4] >= 0.0 && y[4] < 1e-40 && y[5] == 0.5,
            "{isa} sigmoid {y:?}"
        );
        eltwise::tanh(isa, &x, &mut y).unwrap();
        assert!(
            y[0].is_nan() && y[1] == 1.0 && y[2] == -1.0 && y[3] == 1.0 && y[4] == -1.0 && y[5] == 0.0,
            "{isa} tanh {y:?}"
        );
        eltwise::relu(isa, &x, &mut y).unwrap();
        assert_eq!(&y[1..6], &[inf, 0.0, 100.0, 0.0, 0.0], "{isa} relu");
    }
}

/// Every length from 0 to a few vectors, so every tail is exercised.
#[test]
fn every_tail_length() {
    for isa in isas_under_test() {
        for len in 0..70 {
            let x = random_vec(len, len as u64);
            for (f, r) in [
                (eltwise::exp as Fwd, reference::eltwise::exp as Fwd),
                (eltwise::sigmoid, reference::eltwise::sigmoid),
                (eltwise::tanh, reference::eltwise::tanh),
                (eltwise::relu, reference::eltwise::relu),
            ] {
                let mut y = vec![f32::NAN; len + 1];
                f(isa, &x, &mut y[..len]).unwrap();
                assert!(y[len].is_nan(), "{isa} wrote past the end at length {len}");
                let (e, _) = worst_error(isa, f, r, &x, 1e-30);
                assert!(e <= 4.0 * f32::EPSILON as f64, "{isa} length {len}");
            }
        }
    }
}

/// The threaded vector copy: the same bits (NaN payloads and signed zeros included), every
/// tail, runs split over 1-3 threads, nothing written past the end.
#[test]
fn copy_is_exact() {
    for threads in 1..=3 {
        for cfg in gemm_configs(threads) {
            for len in (0..70).chain([1000, 65_537]) {
                let mut x = random_vec(len, len as u64);
                if len > 2 {
                    x[1] = -0.0;
                    x[2] = f32::from_bits(0x7fc0_1234);
                }
                let mut y = vec![f32::from_bits(0x7f80_0001); len + 1];
                eltwise::copy(&cfg, &x, &mut y[..len]).unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y[..len]), bits(&x), "{} length {len}", describe(&cfg));
                assert_eq!(y[len].to_bits(), 0x7f80_0001, "{} wrote past the end at length {len}", describe(&cfg));
            }
        }
    }
    let cfg = &gemm_configs(1)[0];
    assert!(matches!(eltwise::copy(cfg, &[1.0; 4], &mut [0.0; 3]), Err(KernelError::TensorLength { .. })));
}

/// The backward passes against central differences of the f64 functions.
#[test]
fn activation_gradients() {
    let x = random_vec(300, 9).into_iter().map(|v| v * 6.0).collect::<Vec<f32>>();
    let dy = random_vec(300, 10);
    for isa in isas_under_test() {
        let mut y = vec![0.0; 300];
        let mut dx = vec![0.0; 300];
        let check = |name: &str, dx: &[f32], f: fn(f64) -> f64| {
            for i in 0..x.len() {
                let h = 1e-4;
                let num = (f(x[i] as f64 + h) - f(x[i] as f64 - h)) / (2.0 * h) * dy[i] as f64;
                assert!(
                    (dx[i] as f64 - num).abs() <= 1e-5 * (1.0 + num.abs()),
                    "{isa} {name} at {}: {} vs {num}",
                    x[i],
                    dx[i]
                );
            }
        };
        eltwise::sigmoid(isa, &x, &mut y).unwrap();
        eltwise::sigmoid_backward(isa, &y, &dy, &mut dx).unwrap();
        check("sigmoid", &dx, |v| 1.0 / (1.0 + (-v).exp()));
        eltwise::tanh(isa, &x, &mut y).unwrap();
        eltwise::tanh_backward(isa, &y, &dy, &mut dx).unwrap();
        check("tanh", &dx, f64::tanh);
        eltwise::relu_backward(isa, &x, &dy, &mut dx).unwrap();
        for i in 0..x.len() {
            assert_eq!(dx[i], if x[i] > 0.0 { dy[i] } else { 0.0 });
        }
    }
}

#[test]
fn softmax_rows() {
    for isa in isas_under_test() {
        for cols in [1, 7, 8, 10, 17, 33, 1000] {
            let mut x = random_vec(3 * cols, cols as u64).into_iter().map(|v| v * 30.0).collect::<Vec<f32>>();
            x[0] = 1e4; // a large logit must not overflow
            for log in [false, true] {
                let mut y = vec![f32::NAN; x.len()];
                let f = if log { eltwise::log_softmax } else { eltwise::softmax };
                f(isa, cols, &x, &mut y).unwrap();
                let want = reference::eltwise::softmax_f64(cols, log, &x);
                for (i, (g, w)) in y.iter().zip(&want).enumerate() {
                    let tol = if log { 1e-5 * (1.0 + w.abs()) } else { 1e-6 * (1.0 + w.abs()) };
                    assert!((*g as f64 - w).abs() <= tol, "{isa} cols {cols} log {log}: y[{i}] = {g}, reference {w}");
                }
            }
        }
    }
}

#[test]
fn softmax_gradient() {
    let cols = 11;
    let x = random_vec(2 * cols, 4);
    let dy = random_vec(2 * cols, 5);
    let mut y = vec![0.0; x.len()];
    eltwise::softmax(isas_under_test()[0], cols, &x, &mut y).unwrap();
    let mut dx = vec![0.0; x.len()];
    eltwise::softmax_backward(cols, &y, &dy, &mut dx).unwrap();
    let loss = |x: &[f32]| -> f64 {
        reference::eltwise::softmax_f64(cols, false, x).iter().zip(&dy).map(|(a, b)| a * *b as f64).sum()
    };
    for i in 0..x.len() {
        let (mut p, mut m) = (x.clone(), x.clone());
        p[i] += 1e-3;
        m[i] -= 1e-3;
        let num = (loss(&p) - loss(&m)) / 2e-3;
        assert!((dx[i] as f64 - num).abs() < 1e-4, "dx[{i}] = {} vs {num}", dx[i]);
    }
}

#[test]
fn length_errors() {
    let isa = isas_under_test()[0];
    let mut y = [0.0; 3];
    assert!(matches!(eltwise::relu(isa, &[1.0; 4], &mut y), Err(KernelError::TensorLength { .. })));
    assert!(matches!(eltwise::relu_backward(isa, &[1.0; 3], &[1.0; 2], &mut y), Err(KernelError::TensorLength { .. })));
    assert!(matches!(eltwise::softmax(isa, 0, &[], &mut []), Err(KernelError::ZeroSize { .. })));
    assert!(matches!(eltwise::softmax(isa, 2, &[1.0; 3], &mut y), Err(KernelError::TensorLength { .. })));
    assert!(matches!(
        eltwise::softmax_backward(2, &[1.0; 4], &[1.0; 4], &mut y),
        Err(KernelError::TensorLength { .. })
    ));
}

/// Adam and SGD updates against scalar references: every path, tails of every length,
/// lengths split across threads (the kernels fuse multiply-adds, so agreement is to a few
/// ulps, not bits).
#[test]
fn optimizer_updates_match_the_scalar_reference() {
    use simdnn::kernels::gemm::GemmConfig;
    use simdnn::kernels::optim::{adam_update, sgd_update, AdamStep, SgdStep};
    let close = |a: &[f32], b: &[f32], what: &str| {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
        }
    };
    let lengths: Vec<usize> = (0..40).chain([1000, 65_536 * 2 + 7, 300_001]).collect();
    for threads in [1, 2] {
        for cfg in gemm_configs(threads) {
            for &len in &lengths {
                let (w0, g, m0, v0) = (random_vec(len, 1), random_vec(len, 2), random_vec(len, 3), random_vec(len, 4));
                let v0: Vec<f32> = v0.iter().map(|x| x.abs()).collect();
                let h = AdamStep {
                    step: 0.01,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    inv_sqrt_correct2: 3.0,
                    l2: 0.1,
                    decay: 0.99,
                };
                let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
                adam_update(&cfg, &h, &mut w, &g, &mut m, &mut v).unwrap();
                let (mut rw, mut rm, mut rv) = (w0.clone(), m0.clone(), v0.clone());
                for i in 0..len {
                    let gi = g[i] + h.l2 * rw[i];
                    rm[i] = h.beta1 * rm[i] + (1.0 - h.beta1) * gi;
                    rv[i] = h.beta2 * rv[i] + (1.0 - h.beta2) * gi * gi;
                    rw[i] = h.decay * rw[i] - h.step * rm[i] / (rv[i].sqrt() * h.inv_sqrt_correct2 + h.eps);
                }
                let what = format!("adam {} len {len}", describe(&cfg));
                close(&m, &rm, &what);
                close(&v, &rv, &what);
                close(&w, &rw, &what);
                for (momentum, nesterov) in [(0.0, false), (0.9, false), (0.5, true)] {
                    let h = SgdStep { lr: 0.1, momentum, nesterov, weight_decay: 0.01 };
                    let (mut w, mut vel) = (w0.clone(), m0.clone());
                    sgd_update(&cfg, &h, &mut w, &g, if momentum > 0.0 { &mut vel } else { &mut [] }).unwrap();
                    let (mut rw, mut rvel) = (w0.clone(), m0.clone());
                    for i in 0..len {
                        let gi = g[i] + h.weight_decay * rw[i];
                        let delta = if momentum > 0.0 {
                            rvel[i] = momentum * rvel[i] + gi;
                            if nesterov {
                                gi + momentum * rvel[i]
                            } else {
                                rvel[i]
                            }
                        } else {
                            gi
                        };
                        rw[i] -= h.lr * delta;
                    }
                    let what = format!("sgd {momentum} {nesterov} {} len {len}", describe(&cfg));
                    close(&w, &rw, &what);
                    close(&vel, &rvel, &what);
                }
            }
        }
    }
    let cfg = GemmConfig::new(Isa::Portable, 1).unwrap();
    let h = SgdStep { lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 0.0 };
    assert!(sgd_update(&cfg, &h, &mut [0.0; 3], &[0.0; 3], &mut [0.0; 2]).is_err(), "velocity length");
    let a = AdamStep { step: 0.1, beta1: 0.9, beta2: 0.9, eps: 1e-8, inv_sqrt_correct2: 1.0, l2: 0.0, decay: 1.0 };
    assert!(adam_update(&cfg, &a, &mut [0.0; 3], &[0.0; 4], &mut [0.0; 3], &mut [0.0; 3]).is_err());
}
