//! Convolution on every ISA path against the naive reference (forward and the three
//! backward passes) on random geometries, the reference's backward against finite
//! differences, and every bad-input error.

mod common;

use common::{describe, gemm_configs, random_vec};
use proptest::prelude::*;
use simdnn::kernels::conv::{self, Conv2dGeom, ConvAlgo};
use simdnn::kernels::{reference, KernelError};

/// `|got - want| <= tol * (scale + 1)` elementwise, with a message naming the first miss.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32, scale: f32) -> Result<(), String> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let close = (g - w).abs() <= tol * (scale + 1.0);
        if !close {
            return Err(format!("{what}[{i}] = {g}, reference {w}"));
        }
    }
    Ok(())
}

fn geom() -> impl Strategy<Value = Conv2dGeom> {
    (
        (1usize..=3, 1usize..=3, 1usize..=4, 1usize..=4),
        (1usize..=12, 1usize..=12),
        (1usize..=5, 1usize..=5),
        (1usize..=3, 1usize..=3, 0usize..=3, 0usize..=3, 1usize..=2, 1usize..=2),
    )
        .prop_map(|((batch, groups, cg, kg), (h, w), (r, s), (sh, sw, ph, pw, dh, dw))| {
            Conv2dGeom::new(batch, groups * cg, (h, w), groups * kg, (r, s))
                .stride(sh, sw)
                .pad(ph, pw)
                .dilation(dh, dw)
                .groups(groups)
        })
        .prop_filter("a kernel that fits the padded input", |g| g.validate().is_ok())
}

/// Runs the fast and reference passes on `g` for every configuration under test.
fn check_all_passes(g: &Conv2dGeom, with_bias: bool, relu: bool, seed: u64) -> Result<(), String> {
    let x = random_vec(g.input_len(), seed);
    let w = random_vec(g.weight_len(), seed + 1);
    let bias = random_vec(g.out_channels, seed + 2);
    let dy = random_vec(g.output_len(), seed + 3);
    let bias = with_bias.then_some(&bias[..]);
    // Sums of up to C_g R S products of values in [-1, 1), and of up to batch * pixels.
    let taps = (g.in_channels / g.groups * g.kernel_h * g.kernel_w) as f32;
    let reach = (g.batch * g.out_h() * g.out_w()) as f32;
    let tol = 4.0 * f32::EPSILON;
    for cfg in gemm_configs(2) {
        let who = |pass: &str| format!("{} {pass} {g:?}", describe(&cfg));
        let mut y = vec![f32::NAN; g.output_len()];
        let mut want = vec![0.0; g.output_len()];
        conv::conv2d_forward(&cfg, g, ConvAlgo::Auto, &x, &w, bias, relu, &mut y).map_err(|e| e.to_string())?;
        reference::conv::conv2d_forward(&cfg, g, ConvAlgo::Auto, &x, &w, bias, relu, &mut want).unwrap();
        assert_close(&who("forward"), &y, &want, tol * taps, taps)?;
        for algo in [ConvAlgo::Direct, ConvAlgo::DirectRows] {
            let mut yd = vec![f32::NAN; g.output_len()];
            conv::conv2d_forward(&cfg, g, algo, &x, &w, bias, relu, &mut yd).map_err(|e| e.to_string())?;
            assert_close(&who(&format!("{} forward", algo.name())), &yd, &want, tol * taps, taps)?;
        }
        if ConvAlgo::Winograd.resolve(g).is_ok() {
            let mut yw = vec![f32::NAN; g.output_len()];
            conv::conv2d_forward(&cfg, g, ConvAlgo::Winograd, &x, &w, bias, relu, &mut yw)
                .map_err(|e| e.to_string())?;
            // The transforms amplify rounding by up to about 100x (see winograd_error_bound).
            assert_close(&who("winograd forward"), &yw, &want, WINOGRAD_TOL * taps, taps)?;
        }

        let mut dx = vec![f32::NAN; g.input_len()];
        let mut want = vec![0.0; g.input_len()];
        conv::conv2d_backward_input(&cfg, g, &w, &dy, &mut dx).map_err(|e| e.to_string())?;
        reference::conv::conv2d_backward_input(&cfg, g, &w, &dy, &mut want).unwrap();
        let fan_out = (g.out_channels / g.groups * g.kernel_h * g.kernel_w) as f32;
        assert_close(&who("backward_input"), &dx, &want, tol * fan_out, fan_out)?;

        let mut dw = vec![f32::NAN; g.weight_len()];
        let mut want = vec![0.0; g.weight_len()];
        conv::conv2d_backward_weight(&cfg, g, &x, &dy, &mut dw).map_err(|e| e.to_string())?;
        reference::conv::conv2d_backward_weight(&cfg, g, &x, &dy, &mut want).unwrap();
        assert_close(&who("backward_weight"), &dw, &want, tol * reach, reach)?;
        let mut acc = vec![1.0; g.weight_len()];
        conv::conv2d_backward_weight_accumulate(&cfg, g, &x, &dy, &mut acc).map_err(|e| e.to_string())?;
        let want_acc: Vec<f32> = want.iter().map(|v| v + 1.0).collect();
        assert_close(&who("backward_weight_accumulate"), &acc, &want_acc, tol * reach, reach + 1.0)?;

        let mut db = vec![f32::NAN; g.out_channels];
        let mut want = vec![0.0; g.out_channels];
        conv::conv2d_backward_bias(g, &dy, &mut db).map_err(|e| e.to_string())?;
        reference::conv::conv2d_backward_bias(g, &dy, &mut want).unwrap();
        assert_close(&who("backward_bias"), &db, &want, tol * reach, reach)?;
        let mut acc = vec![1.0; g.out_channels];
        conv::conv2d_backward_bias_accumulate(g, &dy, &mut acc).map_err(|e| e.to_string())?;
        let want_acc: Vec<f32> = want.iter().map(|v| v + 1.0).collect();
        assert_close(&who("backward_bias_accumulate"), &acc, &want_acc, tol * reach, reach + 1.0)?;
    }
    Ok(())
}

/// Winograd F(4x4, 3x3) tolerance per unit of `taps * (taps + 1)` scale, measured by
/// `winograd_error_bound` with a safety margin.
const WINOGRAD_TOL: f32 = 256.0 * f32::EPSILON;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn conv_matches_reference(g in geom(), with_bias in any::<bool>(), relu in any::<bool>(), seed in any::<u64>()) {
        check_all_passes(&g, with_bias, relu, seed).map_err(TestCaseError::fail)?;
    }
}

/// Geometries Winograd applies to: 3x3 (F(4x4, 3x3)) or 5x5 (F(2x2, 5x5)), stride 1, one
/// group; any padding, sizes from below one tile to several, so partial tiles and chunks are
/// exercised.
fn winograd_geom() -> impl Strategy<Value = Conv2dGeom> {
    ((1usize..=3, 1usize..=20, 1usize..=20), (5usize..=21, 5usize..=21), (0usize..=2, 0usize..=2), prop::bool::ANY)
        .prop_map(|((batch, c, k), (h, w), (ph, pw), five)| {
            let r = if five { 5 } else { 3 };
            Conv2dGeom::new(batch, c, (h, w), k, (r, r)).pad(ph, pw)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn winograd_matches_reference(g in winograd_geom(), with_bias in any::<bool>(), relu in any::<bool>(), seed in any::<u64>()) {
        check_all_passes(&g, with_bias, relu, seed).map_err(TestCaseError::fail)?;
    }
}

/// Output rows of up to five 8-lane vectors (two and more 16-lane ones), any stride,
/// kernel up to 11x11, dilation and groups: the direct-rows kernel's full and single-vector
/// tiles, partial last vectors, every phase of strided rows, channel groups of every fill.
fn long_row_geom() -> impl Strategy<Value = Conv2dGeom> {
    (
        (1usize..=2, 1usize..=2, 1usize..=4, 1usize..=26),
        (1usize..=4, 1usize..=40),
        (1usize..=11, 1usize..=11),
        (1usize..=4, 1usize..=4, 0usize..=3, 0usize..=3, 1usize..=2),
    )
        .prop_map(|((batch, groups, cg, kg), (oh, ow), (r, s), (sh, sw, ph, pw, dil))| {
            // Input sizes giving oh x ow outputs (before padding is added).
            let (h, w) = ((oh - 1) * sh + (r - 1) * dil + 1, (ow - 1) * sw + (s - 1) * dil + 1);
            Conv2dGeom::new(batch, groups * cg, (h, w), groups * kg, (r, s))
                .stride(sh, sw)
                .pad(ph.min(h / 2), pw.min(w / 2))
                .dilation(dil, dil)
                .groups(groups)
        })
        .prop_filter("a kernel that fits the padded input", |g| g.validate().is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn long_rows_match_reference(g in long_row_geom(), with_bias in any::<bool>(), relu in any::<bool>(), seed in any::<u64>()) {
        check_all_passes(&g, with_bias, relu, seed).map_err(TestCaseError::fail)?;
    }
}

/// Regressions: direct-rows refused a one-column input strided 4 wide (its phase-split
/// copy, rounded up to whole vectors, is many times so small an input).
#[test]
fn bug_direct_rows_tiny_strided_input() {
    let g = Conv2dGeom::new(1, 4, (11, 1), 1, (5, 1)).stride(2, 4).pad(3, 0).dilation(2, 2);
    check_all_passes(&g, false, false, 0).unwrap();
}

/// Stride-1 geometries with output rows of 16 or more and up to 20 output channels: the
/// direct weight gradient's domain (one and more blocks of eight channels, partial vectors
/// at the row ends, padding that cuts rows).
fn wide_row_geom() -> impl Strategy<Value = Conv2dGeom> {
    ((1usize..=3, 1usize..=4, 1usize..=20), (1usize..=6, 16usize..=40), (1usize..=5, 1usize..=5, 0usize..=2)).prop_map(
        |((batch, c, k), (h, w), (r, s, pad))| {
            Conv2dGeom::new(batch, c, (h + r - 1, w + s - 1), k, (r, s)).pad(pad, pad)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn wide_rows_match_reference(g in wide_row_geom(), with_bias in any::<bool>(), seed in any::<u64>()) {
        check_all_passes(&g, with_bias, false, seed).map_err(TestCaseError::fail)?;
    }
}

/// Named shapes: the model layers' kinds (pointwise, strided large kernels, depthwise),
/// primes and channel counts that are not multiples of the vector width.
#[test]
fn layer_shapes_match_reference() {
    let shapes = [
        Conv2dGeom::new(2, 17, (9, 11), 13, (1, 1)), // pointwise, no im2col
        Conv2dGeom::new(1, 3, (31, 29), 8, (11, 11)).stride(4, 4).pad(2, 2), // AlexNet conv1 kind
        Conv2dGeom::new(1, 3, (23, 23), 5, (7, 7)).stride(2, 2).pad(3, 3), // ResNet stem kind
        Conv2dGeom::new(2, 6, (7, 7), 6, (3, 3)).pad(1, 1).groups(6), // depthwise
        Conv2dGeom::new(1, 19, (13, 13), 37, (3, 3)).pad(1, 1), // 3x3 same
        Conv2dGeom::new(3, 4, (8, 8), 4, (1, 1)).stride(2, 2), // strided 1x1
        Conv2dGeom::new(1, 2, (5, 5), 3, (5, 5)),    // kernel = input
        Conv2dGeom::new(1, 1, (32, 32), 6, (5, 5)),  // LeNet C1
    ];
    for g in shapes {
        check_all_passes(&g, true, true, 11).unwrap();
        check_all_passes(&g, false, false, 12).unwrap();
    }
}

/// Images whose column matrix outgrows one L2-sized strip run im2col + GEMM a strip of
/// output rows at a time (one thread), the output written in place with the plane as row
/// stride: partial last strips, padding, strides, several images, every ISA path.
#[test]
fn im2col_strips_match_reference() {
    let shapes = [
        Conv2dGeom::new(2, 3, (70, 90), 8, (3, 3)).pad(1, 1),
        Conv2dGeom::new(1, 5, (61, 47), 7, (5, 5)).stride(2, 1).pad(2, 0),
        Conv2dGeom::new(1, 2, (200, 203), 3, (3, 3)).pad(1, 1), // one output row per strip and then some
    ];
    for g in shapes {
        let x = random_vec(g.input_len(), 41);
        let w = random_vec(g.weight_len(), 42);
        let bias = random_vec(g.out_channels, 43);
        let taps = (g.in_channels * g.kernel_h * g.kernel_w) as f32;
        for one in gemm_configs(1) {
            let run = |cfg: &simdnn::kernels::gemm::GemmConfig| {
                let mut y = vec![f32::NAN; g.output_len()];
                conv::conv2d_forward(cfg, &g, ConvAlgo::Im2colGemm, &x, &w, Some(&bias), true, &mut y).unwrap();
                y
            };
            let (y, mut want) = (run(&one), vec![0.0; g.output_len()]);
            reference::conv::conv2d_forward(&one, &g, ConvAlgo::Auto, &x, &w, Some(&bias), true, &mut want).unwrap();
            assert_close(&format!("{} strips {g:?}", describe(&one)), &y, &want, 4.0 * f32::EPSILON * taps, taps)
                .unwrap();
            // The same bits on more threads (the strips and their split do not depend on it).
            for threads in [2, 3] {
                let more = one.with_threads(threads).unwrap();
                assert!(run(&more) == y, "{} strips {g:?}: {threads} threads differ from one", describe(&more));
            }
        }
    }
}

/// Prepared weights (the Winograd filter transform done once) give the same outputs as
/// unprepared calls, at any batch size, on every algorithm, path and thread count; a
/// different geometry is an error.
#[test]
fn prepared_weights_match_unprepared_calls() {
    let shapes = [
        (Conv2dGeom::new(2, 17, (13, 11), 19, (3, 3)).pad(1, 1), ConvAlgo::Winograd),
        (Conv2dGeom::new(3, 9, (12, 14), 10, (5, 5)).pad(2, 2), ConvAlgo::Winograd),
        (Conv2dGeom::new(2, 5, (9, 9), 7, (3, 3)).stride(2, 2), ConvAlgo::Im2colGemm),
        (Conv2dGeom::new(2, 3, (15, 15), 8, (7, 7)).stride(2, 2).pad(3, 3), ConvAlgo::Direct),
        (Conv2dGeom::new(2, 3, (39, 37), 13, (11, 11)).stride(4, 4).pad(1, 2), ConvAlgo::DirectRows),
    ];
    for (g, algo) in shapes {
        let w = random_vec(g.weight_len(), 51);
        let bias = random_vec(g.out_channels, 52);
        for threads in [1, 2] {
            for cfg in gemm_configs(threads) {
                let prepared = conv::PreparedConv::new(&cfg, &g, algo, &w).unwrap();
                assert_eq!(prepared.algo(), algo);
                for batch in [1, g.batch, g.batch + 3] {
                    let gb = Conv2dGeom { batch, ..g };
                    let x = random_vec(gb.input_len(), 53 + batch as u64);
                    let (mut got, mut want) = (vec![f32::NAN; gb.output_len()], vec![0.0; gb.output_len()]);
                    conv::conv2d_forward_prepared(&cfg, &gb, &prepared, &x, Some(&bias), true, &mut got).unwrap();
                    conv::conv2d_forward(&cfg, &gb, algo, &x, &w, Some(&bias), true, &mut want).unwrap();
                    assert_eq!(got, want, "{} {algo:?} batch {batch} {g:?}", describe(&cfg));
                }
                let other = Conv2dGeom { in_h: g.in_h + 1, ..g };
                let mut y = vec![0.0; other.output_len()];
                let x = vec![0.0; other.input_len()];
                assert!(matches!(
                    conv::conv2d_forward_prepared(&cfg, &other, &prepared, &x, None, false, &mut y),
                    Err(KernelError::PreparedGeometry)
                ));
            }
        }
        let cfg = gemm_configs(1).remove(0);
        assert!(conv::PreparedConv::new(&cfg, &g, algo, &w[1..]).is_err(), "weight length");
    }
}

/// The reference backward passes against central differences of the f64 forward.
/// The convolution is linear in x, w and the bias, so the differences are exact up to
/// rounding and the tolerance can be tight.
#[test]
fn reference_backward_matches_finite_differences() {
    let shapes = [
        Conv2dGeom::new(2, 4, (6, 5), 6, (3, 2)).stride(2, 1).pad(1, 2).dilation(1, 2).groups(2),
        Conv2dGeom::new(1, 3, (7, 7), 2, (3, 3)).stride(3, 3).pad(3, 0),
    ];
    for g in shapes {
        let cfg = gemm_configs(1).remove(0);
        let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<f64>>();
        let (x, w, bias) = (
            widen(random_vec(g.input_len(), 1)),
            widen(random_vec(g.weight_len(), 2)),
            widen(random_vec(g.out_channels, 3)),
        );
        let dy32 = random_vec(g.output_len(), 4);
        let dy = widen(dy32.clone());
        // loss = sum(y * dy), so d loss / d y = dy.
        let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
            reference::conv::conv2d_forward_f64(&g, x, w, Some(b)).iter().zip(&dy).map(|(y, d)| y * d).sum()
        };
        let numeric = |v: &[f64], which: usize| -> Vec<f64> {
            (0..v.len())
                .map(|i| {
                    let h = 1e-3;
                    let (mut plus, mut minus) = (v.to_vec(), v.to_vec());
                    plus[i] += h;
                    minus[i] -= h;
                    let f = |p: &[f64]| match which {
                        0 => loss(p, &w, &bias),
                        1 => loss(&x, p, &bias),
                        _ => loss(&x, &w, p),
                    };
                    (f(&plus) - f(&minus)) / (2.0 * h)
                })
                .collect()
        };
        let narrow = |v: &[f64]| v.iter().map(|&e| e as f32).collect::<Vec<f32>>();
        let (x32, w32) = (narrow(&x), narrow(&w));
        let mut dx = vec![0.0; g.input_len()];
        reference::conv::conv2d_backward_input(&cfg, &g, &w32, &dy32, &mut dx).unwrap();
        let mut dw = vec![0.0; g.weight_len()];
        reference::conv::conv2d_backward_weight(&cfg, &g, &x32, &dy32, &mut dw).unwrap();
        let mut db = vec![0.0; g.out_channels];
        reference::conv::conv2d_backward_bias(&g, &dy32, &mut db).unwrap();
        for (name, analytic, which, v) in [("dx", &dx, 0, &x), ("dw", &dw, 1, &w), ("db", &db, 2, &bias)] {
            for (i, (a, n)) in analytic.iter().zip(numeric(v, which)).enumerate() {
                assert!(
                    (*a as f64 - n).abs() <= 1e-4 * (1.0 + n.abs()),
                    "{name}[{i}]: analytic {a}, numeric {n} ({g:?})"
                );
            }
        }
    }
}

#[test]
fn bad_geometry_and_lengths_are_errors() {
    let cfg = gemm_configs(1).remove(0);
    let ok = Conv2dGeom::new(1, 4, (5, 5), 6, (3, 3)).groups(2);
    let (x, w) = (vec![0.0; ok.input_len()], vec![0.0; ok.weight_len()]);
    let mut y = vec![0.0; ok.output_len()];
    let run = |g: &Conv2dGeom, x: &[f32], w: &[f32], y: &mut [f32]| {
        conv::conv2d_forward(&cfg, g, ConvAlgo::Auto, x, w, None, false, y)
    };
    assert!(run(&ok, &x, &w, &mut y).is_ok());
    assert!(matches!(run(&ok.stride(0, 1), &x, &w, &mut y), Err(KernelError::ZeroSize { what: "stride_h" })));
    assert!(matches!(run(&ok.groups(3), &x, &w, &mut y), Err(KernelError::GroupsMismatch { .. })));
    let big = Conv2dGeom::new(1, 4, (2, 5), 6, (3, 3)).groups(2);
    assert!(matches!(run(&big, &x, &w, &mut y), Err(KernelError::KernelLargerThanInput { axis: "height", .. })));
    assert!(matches!(run(&ok, &x[1..], &w, &mut y), Err(KernelError::TensorLength { what: "x", .. })));
    assert!(matches!(run(&ok, &x, &w[..5], &mut y), Err(KernelError::TensorLength { what: "w", .. })));
    assert!(matches!(run(&ok, &x, &w, &mut y[1..]), Err(KernelError::TensorLength { what: "y", .. })));
    let err = conv::conv2d_forward(&cfg, &ok, ConvAlgo::Auto, &x, &w, Some(&[0.0; 5]), false, &mut y);
    assert!(matches!(err, Err(KernelError::TensorLength { what: "bias", expected: 6, got: 5 })));
    let huge = Conv2dGeom::new(usize::MAX / 2, 4, (5, 5), 6, (3, 3));
    assert!(matches!(huge.validate(), Err(KernelError::SizeOverflow { .. })));
    let mut db = vec![0.0; 5];
    assert!(conv::conv2d_backward_bias(&ok, &y, &mut db).is_err());
}

/// Winograd's fp32 error against an f64 reference on layer-sized problems, relative to
/// the largest output magnitude: printed (for BENCHMARKS.md) and bounded.
#[test]
fn winograd_error_bound() {
    let cfg = gemm_configs(2).remove(0);
    for g in [
        Conv2dGeom::new(2, 64, (28, 28), 64, (3, 3)).pad(1, 1),
        Conv2dGeom::new(1, 256, (14, 14), 128, (3, 3)).pad(1, 1),
        Conv2dGeom::new(1, 3, (30, 31), 16, (3, 3)),
        Conv2dGeom::new(2, 96, (27, 27), 64, (5, 5)).pad(2, 2),
        Conv2dGeom::new(1, 3, (30, 31), 16, (5, 5)),
    ] {
        let x = random_vec(g.input_len(), 21);
        let w = random_vec(g.weight_len(), 22);
        let bias = random_vec(g.out_channels, 23);
        let mut y = vec![0.0; g.output_len()];
        conv::conv2d_forward(&cfg, &g, ConvAlgo::Winograd, &x, &w, Some(&bias), false, &mut y).unwrap();
        let widen = |v: &[f32]| v.iter().map(|&e| e as f64).collect::<Vec<f64>>();
        let want = reference::conv::conv2d_forward_f64(&g, &widen(&x), &widen(&w), Some(&widen(&bias)));
        let scale = want.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        let worst = y.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max) / scale;
        let mut yi = vec![0.0; g.output_len()];
        conv::conv2d_forward(&cfg, &g, ConvAlgo::Im2colGemm, &x, &w, Some(&bias), false, &mut yi).unwrap();
        let direct = yi.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max) / scale;
        println!(
            "winograd {}x{} {g:?}: worst error {worst:.2e} of the largest output (im2col: {direct:.2e})",
            g.kernel_h, g.kernel_w
        );
        assert!(worst < 2e-5, "winograd error {worst:.2e}");
    }
}

/// A convolution with folded BatchNorm equals the convolution followed by BatchNorm.
#[test]
fn folded_batch_norm_matches_conv_then_bn() {
    let cfg = gemm_configs(1).remove(0);
    let g = Conv2dGeom::new(2, 6, (9, 8), 4, (3, 3)).pad(1, 1).groups(2);
    let x = random_vec(g.input_len(), 31);
    let mut w = random_vec(g.weight_len(), 32);
    let mut bias = random_vec(4, 33);
    let (gamma, beta, mean) = (random_vec(4, 34), random_vec(4, 35), random_vec(4, 36));
    let var: Vec<f32> = random_vec(4, 37).iter().map(|v| v.abs() + 0.1).collect();
    let bn = conv::BatchNormParams { gamma: &gamma, beta: &beta, running_mean: &mean, running_var: &var, eps: 1e-5 };
    let mut want = vec![0.0; g.output_len()];
    conv::conv2d_forward(&cfg, &g, ConvAlgo::Auto, &x, &w, Some(&bias), false, &mut want).unwrap();
    let pixels = g.out_h() * g.out_w();
    for (i, v) in want.iter_mut().enumerate() {
        let k = (i / pixels) % 4;
        *v = gamma[k] * (*v - mean[k]) / (var[k] + 1e-5).sqrt() + beta[k];
    }
    conv::fold_batch_norm(&g, &bn, &mut w, &mut bias).unwrap();
    let mut got = vec![0.0; g.output_len()];
    conv::conv2d_forward(&cfg, &g, ConvAlgo::Auto, &x, &w, Some(&bias), false, &mut got).unwrap();
    assert_close("folded", &got, &want, 1e-5, 10.0).unwrap();
    let bad = conv::BatchNormParams { running_var: &[-1.0, 1.0, 1.0, 1.0], ..bn };
    assert!(matches!(conv::fold_batch_norm(&g, &bad, &mut w, &mut bias), Err(KernelError::InvalidBatchNorm)));
    let short = conv::BatchNormParams { gamma: &gamma[..3], ..bn };
    assert!(matches!(
        conv::fold_batch_norm(&g, &short, &mut w, &mut bias),
        Err(KernelError::TensorLength { what: "gamma", .. })
    ));
}

/// Regressions from review: padding that would make the padded copy enormous is refused
/// by Direct (and Auto avoids it), overflowing paddings are errors, not panics.
#[test]
fn bug_huge_padding() {
    let cfg = gemm_configs(1).remove(0);
    let g = Conv2dGeom::new(1, 1, (1, 1), 1, (1, 1)).stride(1 << 20, 1 << 20).pad(1 << 12, 1 << 12);
    assert!(g.validate().is_ok());
    assert_eq!(ConvAlgo::Auto.resolve(&g), Ok(ConvAlgo::Im2colGemm));
    assert!(matches!(ConvAlgo::Direct.resolve(&g), Err(KernelError::AlgoNotApplicable { .. })));
    assert!(matches!(ConvAlgo::DirectRows.resolve(&g), Err(KernelError::AlgoNotApplicable { .. })));
    let mut y = vec![0.0; g.output_len()];
    conv::conv2d_forward(&cfg, &g, ConvAlgo::Auto, &[2.0], &[3.0], None, false, &mut y).unwrap();
    assert_eq!(y[0], 0.0); // the only output position sees padding
    let overflow = Conv2dGeom::new(1, 1, (1, 1), 1, (1, 1)).stride(1 << 33, 1 << 33).pad(1 << 31, (1 << 31) - 1);
    assert!(matches!(overflow.validate(), Err(KernelError::SizeOverflow { .. })));
}
