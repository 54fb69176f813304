//! Average pooling (PyTorch's divisor rules, with or without the padding counted) and
//! global average pooling, forward and backward.
//!
//! The divisor of a window is the product of its height and width extents, so the forward
//! pass is separable: per output row, its window's input rows are summed (vectorised over
//! the width) and scaled by the height extent, then window sums are taken along that row
//! (one unaligned load per tap; at stride 2, even and odd columns split in registers), kept
//! a stride apart and scaled by the width extent.

use super::window::{column, stride2_row, Sum};
use super::Pool2dGeom;
use crate::isa::{Simd, WithSimd};
use crate::scratch::{Scratch, Slot};

pub(crate) struct AvgPoolOp<'a> {
    pub g: &'a Pool2dGeom,
    pub count_pad: bool,
    pub x: &'a [f32],
    pub y: &'a mut [f32],
}

impl WithSimd for AvgPoolOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let AvgPoolOp { g, count_pad, x, y } = self;
        let lanes = S::LANES;
        let (oh_n, ow_n) = (g.out_h(), g.out_w());
        let (plane_in, plane_out) = (g.in_h * g.in_w, oh_n * ow_n);
        let starts = (ow_n - 1) * g.stride_w + 1;
        let row_len = g.row_buffer_len(lanes);
        // inv_w has a vector of slack: the stride-2 path scales whole vectors of outputs.
        let mut buf = Scratch::take(Slot::Pool, 2 * row_len + ow_n + lanes);
        let (row, rest) = buf.split_at_mut(row_len);
        let (win, inv_w) = rest.split_at_mut(row_len);
        row.fill(0.0);
        for (ow, inv) in inv_w.iter_mut().enumerate() {
            let (_, _, div) = Pool2dGeom::window(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w, count_pad);
            *inv = 1.0 / div as f32;
        }
        let (pw, iw_n) = (g.pad_w, g.in_w);
        let body = iw_n - iw_n % lanes;
        for p in 0..g.planes() {
            let (xp, yp) = (&x[p * plane_in..][..plane_in], &mut y[p * plane_out..][..plane_out]);
            for oh in 0..oh_n {
                // Rows first: the window's input rows summed and scaled by the height divisor.
                let (lo, hi, div) = Pool2dGeom::window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h, count_pad);
                let inv_h = 1.0 / div as f32;
                // SAFETY: rows lo..hi of xp hold iw_n values; row_len >= pw + iw_n + lanes and
                // >= starts + kernel_w + lanes (Pool2dGeom::row_buffer_len).
                unsafe {
                    let dst = row.as_mut_ptr().add(pw);
                    let top = xp.as_ptr().add(lo * iw_n);
                    let mut i = 0;
                    while i < body {
                        s.store(dst.add(i), s.mul(column::<S, Sum>(s, top.add(i), iw_n, hi - lo), s.splat(inv_h)));
                        i += lanes;
                    }
                    for i in body..iw_n {
                        *dst.add(i) = (lo..hi).map(|ih| xp[ih * iw_n + i]).sum::<f32>() * inv_h;
                    }
                    if g.stride_w == 2 {
                        // Window sums straight into the output row, scaled by the width
                        // divisors: reads end before 2 (ow_n - 1) + kernel_w + 2 lanes <=
                        // row_len and ow_n + lanes in inv_w; stores stay in the row.
                        let out = yp.as_mut_ptr().add(oh * ow_n);
                        stride2_row::<S, Sum>(s, g.kernel_w, row.as_ptr(), Some(inv_w.as_ptr()), false, out, ow_n);
                        continue;
                    }
                    // Then the window sums along that row.
                    let mut x0 = 0;
                    while x0 < starts {
                        let mut v = s.load(row.as_ptr().add(x0));
                        for j in 1..g.kernel_w {
                            v = s.add(v, s.load(row.as_ptr().add(x0 + j)));
                        }
                        s.store(win.as_mut_ptr().add(x0), v);
                        x0 += lanes;
                    }
                }
                for (ow, o) in yp[oh * ow_n..][..ow_n].iter_mut().enumerate() {
                    *o = win[ow * g.stride_w] * inv_w[ow];
                }
            }
        }
    }
}

/// `dx[ih, iw] = sum over windows containing it of dy / divisor`, through the same
/// separable factors in reverse: rows first (vectorised along the output columns), then
/// each row's columns.
pub(crate) fn avg_pool_backward(g: &Pool2dGeom, count_pad: bool, dy: &[f32], dx: &mut [f32]) {
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    let (plane_in, plane_out) = (g.in_h * g.in_w, oh_n * ow_n);
    let mut t = Scratch::take(Slot::Pool, g.in_h * ow_n);
    let cols: Vec<_> =
        (0..ow_n).map(|ow| Pool2dGeom::window(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w, count_pad)).collect();
    for p in 0..g.planes() {
        let (dyp, dxp) = (&dy[p * plane_out..][..plane_out], &mut dx[p * plane_in..][..plane_in]);
        t.fill(0.0);
        for oh in 0..oh_n {
            let (lo, hi, div) = Pool2dGeom::window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h, count_pad);
            let inv = 1.0 / div as f32;
            for ih in lo..hi {
                for (acc, &d) in t[ih * ow_n..][..ow_n].iter_mut().zip(&dyp[oh * ow_n..][..ow_n]) {
                    *acc += d * inv;
                }
            }
        }
        dxp.fill(0.0);
        for ih in 0..g.in_h {
            let dx_row = &mut dxp[ih * g.in_w..][..g.in_w];
            for (ow, &(lo, hi, div)) in cols.iter().enumerate() {
                let v = t[ih * ow_n + ow] / div as f32;
                dx_row[lo..hi].iter_mut().for_each(|d| *d += v);
            }
        }
    }
}

pub(crate) struct GlobalAvgOp<'a> {
    pub plane: usize,
    pub x: &'a [f32],
    pub y: &'a mut [f32],
}

impl WithSimd for GlobalAvgOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let GlobalAvgOp { plane, x, y } = self;
        let lanes = S::LANES;
        let body = plane - plane % lanes;
        for (xp, out) in x.chunks_exact(plane).zip(y.iter_mut()) {
            let (mut a, mut b) = (s.zero(), s.zero());
            let mut i = 0;
            // SAFETY: i + lanes <= body <= plane (two accumulators for latency).
            unsafe {
                while i + 2 * lanes <= body {
                    a = s.add(a, s.load(xp.as_ptr().add(i)));
                    b = s.add(b, s.load(xp.as_ptr().add(i + lanes)));
                    i += 2 * lanes;
                }
                if i < body {
                    a = s.add(a, s.load(xp.as_ptr().add(i)));
                }
                if body < plane {
                    b = s.add(b, s.load_partial(xp.as_ptr().add(body), plane - body));
                }
            }
            *out = s.hsum(s.add(a, b)) / plane as f32;
        }
    }
}
