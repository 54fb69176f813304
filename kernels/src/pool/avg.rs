//! Average pooling (PyTorch's divisor rules, with or without the padding counted) and
//! global average pooling, forward and backward.
//!
//! The divisor of a window is the product of its height and width extents, so the forward
//! pass is separable, rows first ([`super::window::plane_rows_first`]): each output row
//! sums its window's input rows (vectorised over the width), then the windows along that
//! row, scaled by the height and width extents' inverses.

use super::window::{plane_rows_first, Finish, Sum};
use super::Pool2dGeom;
use crate::isa::{instances, Simd, WithSimd};
use crate::scratch::{Scratch, Slot};

pub(crate) struct AvgPoolOp<'a> {
    pub g: &'a Pool2dGeom,
    pub count_pad: bool,
    pub x: &'a [f32],
    pub y: &'a mut [f32],
}

instances! {
    /// Average pooling of a run of planes.
    fn(AvgPoolOp<'_>) => f32_avgpool_portable, f32_avgpool_avx2, f32_avgpool_avx512;
    /// Global average pooling of a run of planes.
    fn(GlobalAvgOp<'_>) => f32_global_avgpool_portable, f32_global_avgpool_avx2, f32_global_avgpool_avx512;
}

impl WithSimd for AvgPoolOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let AvgPoolOp { g, count_pad, x, y } = self;
        let lanes = S::LANES;
        let (oh_n, ow_n) = (g.out_h(), g.out_w());
        let (plane_in, plane_out) = (g.in_h * g.in_w, oh_n * ow_n);
        let row_len = g.row_buffer_len(lanes);
        // Two row buffers, the windows, the height and width divisors' inverses (the width
        // ones with a vector of slack: the stride-2 path scales whole vectors of outputs).
        let mut buf = Scratch::take(Slot::Pool, 3 * row_len + oh_n + ow_n + lanes);
        let (rows, rest) = buf.split_at_mut(2 * row_len);
        let (win, rest) = rest.split_at_mut(row_len);
        let (inv_h, inv_w) = rest.split_at_mut(oh_n);
        rows.fill(0.0);
        let (r0, r1) = rows.split_at_mut(row_len);
        for (oh, inv) in inv_h.iter_mut().enumerate() {
            let (_, _, div) = Pool2dGeom::window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h, count_pad);
            *inv = 1.0 / div as f32;
        }
        for (ow, inv) in inv_w.iter_mut().enumerate() {
            let (_, _, div) = Pool2dGeom::window(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w, count_pad);
            *inv = 1.0 / div as f32;
        }
        let finish = Finish { inv_h: Some(inv_h), inv_w: Some(inv_w), relu: false };
        for (xp, yp) in x.chunks_exact(plane_in).zip(y.chunks_exact_mut(plane_out)) {
            plane_rows_first::<S, Sum>(s, g, xp, yp, [&mut *r0, &mut *r1], win, &finish);
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
            for ow in 0..ow_n {
                let (lo, hi, div) = Pool2dGeom::window(ow, g.stride_w, g.pad_w, g.kernel_w, g.in_w, count_pad);
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
