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

/// Decodes arbitrary bytes into a convolution, possibly malformed (zero sizes, groups that
/// do not divide, kernels larger than the input, tensors of the wrong length), runs the
/// forward and backward passes, and checks the contract: an error for a malformed call,
/// the reference result for a valid one. Panics on any violation.
pub fn fuzz_conv(data: &[u8]) {
    use crate::conv::{self, Conv2dGeom, ConvAlgo};
    use crate::reference::conv as naive;
    let mut d = Bytes(data);
    // Mostly valid sizes; one byte may zero one field (a malformed geometry).
    let mut f = [
        1 + d.below(2), // batch
        1 + d.below(6), // in_channels
        1 + d.below(9), // in_h
        1 + d.below(9), // in_w
        1 + d.below(6), // out_channels
        1 + d.below(5), // kernel_h
        1 + d.below(5), // kernel_w
        1 + d.below(3), // stride_h
        1 + d.below(3), // stride_w
        d.below(4),     // pad_h
        d.below(4),     // pad_w
        1 + d.below(2), // dilation_h
        1 + d.below(2), // dilation_w
        1 + d.below(3), // groups
    ];
    if let Some(v) = f.get_mut(d.below(64)) {
        *v = 0;
    }
    let geom = Conv2dGeom {
        batch: f[0],
        in_channels: f[1],
        in_h: f[2],
        in_w: f[3],
        out_channels: f[4],
        kernel_h: f[5],
        kernel_w: f[6],
        stride_h: f[7],
        stride_w: f[8],
        pad_h: f[9],
        pad_w: f[10],
        dilation_h: f[11],
        dilation_w: f[12],
        groups: f[13],
    };
    let short = d.below(8) == 0;
    let relu = d.next() & 1 == 1;
    let algo = ConvAlgo::ALL[d.below(ConvAlgo::ALL.len() as u8)];
    let cfg = GemmConfig::new(Isa::best(), 1 + d.below(2)).expect("best ISA");
    let valid = geom.validate().is_ok() && algo.resolve(&geom).is_ok();
    // Small integers: sums are exact in f32, so results agree exactly with the reference.
    let fill = |n: usize, k: usize| (0..n).map(|i| ((i * k + 1) % 7) as f32 - 3.0).collect::<Vec<f32>>();
    let sizes = if valid { (geom.input_len(), geom.weight_len(), geom.output_len()) } else { (8, 8, 8) };
    let x = fill(sizes.0.saturating_sub(short as usize), 3);
    let w = fill(sizes.1, 5);
    let bias = fill(geom.out_channels, 2);
    let mut y = vec![f32::NAN; sizes.2];
    let got = conv::conv2d_forward(&cfg, &geom, algo, &x, &w, Some(&bias), relu, &mut y);
    assert_eq!(got.is_ok(), valid && !short, "forward: {got:?} for {geom:?}, short input: {short}");
    if got.is_err() {
        return;
    }
    let mut want = vec![0.0; sizes.2];
    naive::conv2d_forward(&cfg, &geom, ConvAlgo::Auto, &x, &w, Some(&bias), relu, &mut want).expect("valid");
    if algo.resolve(&geom) == Ok(ConvAlgo::Winograd) {
        // Winograd's transforms have fractions (1/6, 1/24): close, not exact.
        let taps = (geom.in_channels * 9) as f32;
        for (a, b) in y.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-4 * taps * (1.0 + b.abs()), "winograd forward {geom:?}: {a} vs {b}");
        }
    } else {
        assert_eq!(y, want, "forward {geom:?} with {algo:?}");
    }
    let dy = fill(sizes.2, 11);
    let (mut dx, mut dx_want) = (vec![f32::NAN; sizes.0], vec![0.0; sizes.0]);
    conv::conv2d_backward_input(&cfg, &geom, &w, &dy, &mut dx).expect("valid");
    naive::conv2d_backward_input(&cfg, &geom, &w, &dy, &mut dx_want).expect("valid");
    assert_eq!(dx, dx_want, "backward_input {geom:?}");
    let (mut dw, mut dw_want) = (vec![f32::NAN; sizes.1], vec![0.0; sizes.1]);
    conv::conv2d_backward_weight(&cfg, &geom, &x, &dy, &mut dw).expect("valid");
    naive::conv2d_backward_weight(&cfg, &geom, &x, &dy, &mut dw_want).expect("valid");
    assert_eq!(dw, dw_want, "backward_weight {geom:?}");
}
