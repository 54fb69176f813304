//! The weight gradient of a stride-1 convolution computed directly, without im2col: for
//! each filter tap `(c, r, s)`, `dW[k][c][r][s]` is the sum over images and output rows of
//! the dot product of `dy[n][k][oh][..]` with the input row segment that tap reads,
//! `x[n][c][oh + r - pad][.. + s - pad]` (contiguous at stride 1). The input segment is loaded
//! once per row and multiplied into up to eight output channels' accumulators.
//!
//! For few output channels and wide rows this does the work of the column matrix's GEMM
//! without writing and packing that matrix: LeNet-5's C1 (1 -> 6 channels, 5x5 on 32x32)
//! has a column matrix 25 times its input and a GEMM with only 6 columns.

// Index loops over constant bounds keep the accumulators in registers.
#![allow(clippy::needless_range_loop)]

use super::im2col::valid_range;
use super::Conv2dGeom;
use crate::isa::{instances, Simd, WithSimd, LANE_INDEX};

/// Output channels accumulated together (registers: `KB` accumulators, the input vector and
/// one gradient vector fit in AVX2's sixteen).
const KB: usize = 8;

/// Whether the direct weight gradient applies and is expected to beat the GEMM: stride 1,
/// no dilation, one group, few output channels (at most two blocks) and output rows of at
/// least 16. Measured on AVX2, one thread, 32 images (microseconds, GEMM -> direct):
/// LeNet-5's C1 (1 -> 6, 5x5, 28-wide rows) 669 -> 378; its C3 (6 -> 16, 10-wide rows,
/// mostly partial vectors) 658 -> 1041, so narrow rows stay on the GEMM.
pub(crate) fn applies(g: &Conv2dGeom) -> bool {
    (g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.groups) == (1, 1, 1, 1, 1)
        && g.out_channels <= 2 * KB
        && (0..g.kernel_w).all(|t| {
            let (lo, hi) = valid_range(g.out_w(), g.in_w, 1, t as isize - g.pad_w as isize);
            hi == lo || hi - lo >= MIN_ROW
        })
}

/// The narrowest row segment (output row within the input, for every tap) the direct
/// weight gradient takes: at least a vector on every path.
pub(crate) const MIN_ROW: usize = 16;

/// `dw <- beta * dw + dW` for all images of `g` (lengths validated by the caller).
pub(crate) struct WeightGradOp<'a> {
    pub g: &'a Conv2dGeom,
    pub x: &'a [f32],
    pub dy: &'a [f32],
    pub beta: f32,
    pub dw: &'a mut [f32],
}

instances! {
    /// The direct weight gradient, eight output channels at a time.
    fn(WeightGradOp<'_>) => f32_conv_weight_grad_8ch_portable, f32_conv_weight_grad_8ch_avx2, f32_conv_weight_grad_8ch_avx512;
}

impl WithSimd for WeightGradOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(mut self, s: S) {
        let k_n = self.g.out_channels;
        let mut k0 = 0;
        while k0 < k_n {
            let op = &mut self;
            match (k_n - k0).min(KB) {
                1 => block::<S, 1>(s, op, k0),
                2 => block::<S, 2>(s, op, k0),
                3 => block::<S, 3>(s, op, k0),
                4 => block::<S, 4>(s, op, k0),
                5 => block::<S, 5>(s, op, k0),
                6 => block::<S, 6>(s, op, k0),
                7 => block::<S, 7>(s, op, k0),
                _ => block::<S, KB>(s, op, k0),
            }
            k0 += KB;
        }
    }
}

/// Output channels `k0..k0 + N` of the gradient.
#[inline(always)]
fn block<S: Simd, const N: usize>(s: S, op: &mut WeightGradOp, k0: usize) {
    let g = op.g;
    let lanes = S::LANES;
    let (oh_n, ow_n, k_n) = (g.out_h(), g.out_w(), g.out_channels);
    let (in_plane, out_plane) = (g.in_h * g.in_w, oh_n * ow_n);
    let taps = g.kernel_h * g.kernel_w;
    for c in 0..g.in_channels {
        for r in 0..g.kernel_h {
            let (oh_lo, oh_hi) = valid_range(oh_n, g.in_h, 1, r as isize - g.pad_h as isize);
            for t in 0..g.kernel_w {
                let (ow_lo, ow_hi) = valid_range(ow_n, g.in_w, 1, t as isize - g.pad_w as isize);
                let len = ow_hi - ow_lo;
                let mut acc = [s.zero(); N];
                // `applies` admits no row shorter than a vector.
                assert!(len == 0 || len >= lanes, "direct weight gradient on a {len}-wide row");
                if len > 0 {
                    for n in 0..g.batch {
                        for oh in oh_lo..oh_hi {
                            let ih = oh + r - g.pad_h;
                            let iw = ow_lo + t - g.pad_w;
                            let x_row = &op.x[(n * g.in_channels + c) * in_plane + ih * g.in_w + iw..][..len];
                            let dy_at = (n * k_n + k0) * out_plane + oh * ow_n + ow_lo;
                            let dy_rows = &op.dy[dy_at..dy_at + (N - 1) * out_plane + len];
                            let (x_row, dy_rows) = (x_row.as_ptr(), dy_rows.as_ptr());
                            let body = len - len % lanes;
                            let mut j = 0;
                            // SAFETY: x_row holds len values and each of the N gradient rows
                            // (out_plane apart in dy_rows) holds len values: the steps read
                            // j..j + lanes <= body, then the last whole vector or the tail.
                            unsafe {
                                // At least one whole vector (len >= lanes, asserted above): a
                                // loop that may not run would give the compiler a version of
                                // the row loop with the tail alone, and its registers spilled.
                                loop {
                                    let xv = s.load(x_row.add(j));
                                    acc = dot_step::<S, N>(s, acc, xv, dy_rows.add(j), out_plane);
                                    j += lanes;
                                    if j >= body {
                                        break;
                                    }
                                }
                                if body < len {
                                    // The row's last whole vector, with the lanes summed above
                                    // zeroed in x: no partial loads.
                                    let from = len - lanes;
                                    let first = s.splat((lanes - (len - body)) as f32 - 0.5);
                                    let index = s.load(LANE_INDEX.as_ptr());
                                    let xv = s.select_gt(index, first, s.load(x_row.add(from)), s.zero());
                                    acc = dot_step::<S, N>(s, acc, xv, dy_rows.add(from), out_plane);
                                }
                            }
                        }
                    }
                }
                for k in 0..N {
                    let at = ((k0 + k) * g.in_channels + c) * taps + r * g.kernel_w + t;
                    let v = s.hsum(acc[k]);
                    let d = &mut op.dw[at];
                    *d = if op.beta == 0.0 { v } else { op.beta * *d + v };
                }
            }
        }
    }
}

/// `acc[k] += xv * dy_k` over one vector, `dy_k` the `k`-th gradient row (`stride` apart).
///
/// # Safety
/// Each of the `N` gradient rows holds a vector of readable values.
#[inline(always)]
unsafe fn dot_step<S: Simd, const N: usize>(
    s: S,
    mut acc: [S::V; N],
    xv: S::V,
    dy: *const f32,
    stride: usize,
) -> [S::V; N] {
    for k in 0..N {
        // SAFETY: the caller's contract.
        acc[k] = s.fma(unsafe { s.load(dy.add(k * stride)) }, xv, acc[k]);
    }
    acc
}
