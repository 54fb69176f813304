//! Max pooling, optionally fused with a preceding ReLU, forward with argmax and backward.
//!
//! Separable and vectorised along the width: each input row is padded with -inf into a
//! buffer, a window maximum is taken at every start position with `kernel_w` unaligned
//! vector loads, and the positions a stride apart are kept; then each output row is the
//! maximum of its window's rows, a vector of output columns at a time. Comparisons are
//! strict and run left to right, then top to bottom, so ties resolve to the first element
//! of the window in row-major order, as PyTorch does. At stride 2 along the width the
//! windows are read as even and odd columns split in registers ([`super::window`]) and
//! written straight to the output row.

use super::window::{column, stride2_row, stride2_window, Max};
use super::Pool2dGeom;
use crate::isa::{Simd, WithSimd};
use crate::scratch::{Scratch, Slot};

pub(crate) struct MaxPoolOp<'a> {
    pub g: &'a Pool2dGeom,
    pub x: &'a [f32],
    pub y: &'a mut [f32],
    pub argmax: Option<&'a mut [u32]>,
    pub relu: bool,
}

impl WithSimd for MaxPoolOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let MaxPoolOp { g, x, y, mut argmax, relu } = self;
        let (plane_in, plane_out) = (g.in_h * g.in_w, g.out_h() * g.out_w());
        let lanes = S::LANES;
        let ow_n = g.out_w();
        let row_len = g.row_buffer_len(lanes);
        let h_len = g.in_h * ow_n + lanes;
        // row, row indices, window maxima and their indices, per-row results and indices.
        let mut buf = Scratch::take(Slot::Pool, 4 * row_len + 2 * h_len);
        let (row, rest) = buf.split_at_mut(row_len);
        let (row_idx, rest) = rest.split_at_mut(row_len);
        let (win, rest) = rest.split_at_mut(row_len);
        let (win_idx, rest) = rest.split_at_mut(row_len);
        let (h_val, h_idx) = rest.split_at_mut(h_len);
        row.fill(f32::NEG_INFINITY);
        let track = argmax.is_some();
        for p in 0..g.planes() {
            let planes = Planes { x: &x[p * plane_in..][..plane_in], y: &mut y[p * plane_out..][..plane_out] };
            let idx_out = argmax.as_deref_mut().map(|a| &mut a[p * plane_out..][..plane_out]);
            if track {
                let bufs = Bufs { row, row_idx, win, win_idx, h_val, h_idx };
                max_plane(s, g, planes, idx_out, bufs, relu, track);
            } else {
                max_plane_rows_first(s, g, planes, row, win, relu);
            }
        }
    }
}

/// Without argmax the order of comparisons does not matter, so the cheaper order is
/// taken: each output row first reduces its window's input rows (contiguous vector maxima
/// over the whole width), then takes the window maxima along that one row.
#[inline(always)]
fn max_plane_rows_first<S: Simd>(s: S, g: &Pool2dGeom, planes: Planes, row: &mut [f32], win: &mut [f32], relu: bool) {
    let Planes { x, y } = planes;
    let lanes = S::LANES;
    let (oh_n, ow_n, iw_n, pw) = (g.out_h(), g.out_w(), g.in_w, g.pad_w);
    let starts = (ow_n - 1) * g.stride_w + 1;
    let body = iw_n - iw_n % lanes;
    for oh in 0..oh_n {
        let (lo, hi, _) = Pool2dGeom::window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h, true);
        // SAFETY: rows lo..hi of x hold iw_n values; row_len >= pw + iw_n + lanes and
        // >= starts + kernel_w + lanes (Pool2dGeom::row_buffer_len).
        unsafe {
            let dst = row.as_mut_ptr().add(pw);
            let mut i = 0;
            let top = x.as_ptr().add(lo * iw_n);
            while i < body {
                s.store(dst.add(i), column::<S, Max>(s, top.add(i), iw_n, hi - lo));
                i += lanes;
            }
            for i in body..iw_n {
                let mut v = x[lo * iw_n + i];
                for ih in lo + 1..hi {
                    v = v.max(x[ih * iw_n + i]);
                }
                *dst.add(i) = v;
            }
            if g.stride_w == 2 {
                // Window maxima straight into the output row: reads end before
                // 2 (ow_n - 1) + kernel_w + 2 lanes <= row_len; stores stay in the row.
                stride2_row::<S, Max>(s, g.kernel_w, row.as_ptr(), None, relu, y.as_mut_ptr().add(oh * ow_n), ow_n);
                continue;
            }
            let mut x0 = 0;
            while x0 < starts {
                let mut v = s.load(row.as_ptr().add(x0));
                for j in 1..g.kernel_w {
                    v = s.max(v, s.load(row.as_ptr().add(x0 + j)));
                }
                if relu {
                    v = s.max(v, s.zero());
                }
                s.store(win.as_mut_ptr().add(x0), v);
                x0 += lanes;
            }
        }
        let out = &mut y[oh * ow_n..][..ow_n];
        if g.stride_w == 1 {
            out.copy_from_slice(&win[..ow_n]);
        } else {
            for (o, w) in out.iter_mut().zip(win.iter().step_by(g.stride_w)) {
                *o = *w;
            }
        }
    }
}

struct Planes<'a> {
    x: &'a [f32],
    y: &'a mut [f32],
}

struct Bufs<'a> {
    row: &'a mut [f32],
    row_idx: &'a mut [f32],
    win: &'a mut [f32],
    win_idx: &'a mut [f32],
    h_val: &'a mut [f32],
    h_idx: &'a mut [f32],
}

#[inline(always)]
fn max_plane<S: Simd>(
    s: S,
    g: &Pool2dGeom,
    planes: Planes,
    argmax: Option<&mut [u32]>,
    b: Bufs,
    relu: bool,
    track: bool,
) {
    let Planes { x, y } = planes;
    let Bufs { row, row_idx, win, win_idx, h_val, h_idx } = b;
    let lanes = S::LANES;
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    let starts = (ow_n - 1) * g.stride_w + 1;
    let (pw, iw_n) = (g.pad_w, g.in_w);
    if track {
        // Column of each padded-row position; padding carries the nearest real column: it
        // can only win when the whole window is -inf, and then that element is a correct
        // argmax too. Row offsets are added per row (exact: indices stay below 2^24).
        for (i, v) in row_idx.iter_mut().enumerate() {
            *v = i.saturating_sub(pw).min(iw_n - 1) as f32;
        }
    }
    // Horizontal pass: every input row's window maxima at the output columns.
    for ih in 0..g.in_h {
        row[pw..pw + iw_n].copy_from_slice(&x[ih * iw_n..][..iw_n]);
        let base = s.splat((ih * iw_n) as f32);
        if g.stride_w == 2 {
            let h_row = ih * ow_n;
            let mut ow = 0;
            while ow < ow_n {
                // SAFETY: reads end before 2 (ow_n - 1) + kernel_w + 2 lanes <= row_len
                // (Pool2dGeom::row_buffer_len); the stores end before h_row + ow_n + lanes
                // <= in_h * ow_n + lanes (the overshoot lands in the next row, written after).
                unsafe {
                    let idx = track.then(|| (row_idx.as_ptr().add(2 * ow), base));
                    let (v, vi) = stride2_window::<S, Max>(s, g.kernel_w, row.as_ptr().add(2 * ow), idx);
                    s.store(h_val.as_mut_ptr().add(h_row + ow), v);
                    if track {
                        s.store(h_idx.as_mut_ptr().add(h_row + ow), vi);
                    }
                }
                ow += lanes;
            }
            continue;
        }
        let mut x0 = 0;
        while x0 < starts {
            // SAFETY: x0 + kernel_w - 1 + lanes <= starts + kernel_w + lanes <= row_len.
            unsafe {
                let mut v = s.load(row.as_ptr().add(x0));
                let mut vi = if track { s.add(base, s.load(row_idx.as_ptr().add(x0))) } else { s.zero() };
                for j in 1..g.kernel_w {
                    let c = s.load(row.as_ptr().add(x0 + j));
                    if track {
                        vi = s.select_gt(c, v, s.add(base, s.load(row_idx.as_ptr().add(x0 + j))), vi);
                    }
                    v = s.select_gt(c, v, c, v);
                }
                s.store(win.as_mut_ptr().add(x0), v);
                if track {
                    s.store(win_idx.as_mut_ptr().add(x0), vi);
                }
            }
            x0 += lanes;
        }
        for ow in 0..ow_n {
            h_val[ih * ow_n + ow] = win[ow * g.stride_w];
            if track {
                h_idx[ih * ow_n + ow] = win_idx[ow * g.stride_w];
            }
        }
    }
    // Vertical pass: each output row is the maximum over its window's rows.
    let mut out_idx = argmax;
    for oh in 0..oh_n {
        let (lo, hi, _) = Pool2dGeom::window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h, true);
        let mut ow = 0;
        while ow < ow_n {
            let n = lanes.min(ow_n - ow);
            // SAFETY: rows lo..hi of h_val/h_idx hold ow_n values each (+ lanes of slack);
            // y and the index row hold ow_n values from oh * ow_n.
            unsafe {
                let mut v = s.load(h_val.as_ptr().add(lo * ow_n + ow));
                let mut vi = if track { s.load(h_idx.as_ptr().add(lo * ow_n + ow)) } else { s.zero() };
                for ih in lo + 1..hi {
                    let c = s.load(h_val.as_ptr().add(ih * ow_n + ow));
                    if track {
                        vi = s.select_gt(c, v, s.load(h_idx.as_ptr().add(ih * ow_n + ow)), vi);
                    }
                    v = s.select_gt(c, v, c, v);
                }
                if relu {
                    v = s.max(v, s.zero());
                }
                let dst = y.as_mut_ptr().add(oh * ow_n + ow);
                if n == lanes {
                    s.store(dst, v);
                } else {
                    s.store_partial(dst, n, v);
                }
                if let Some(out) = out_idx.as_deref_mut() {
                    let mut tmp = [0.0f32; 16]; // LANES <= 16 on every path
                    s.store(tmp.as_mut_ptr(), vi);
                    for (k, t) in tmp[..n].iter().enumerate() {
                        // SAFETY (of this use of the enclosing block): indices are whole
                        // numbers below 2^24 (plane positions held exactly in f32), so the
                        // conversion cannot overflow; it skips the saturation checks of `as`.
                        out[oh * ow_n + ow + k] = t.to_int_unchecked::<u32>();
                    }
                }
            }
            ow += n;
        }
    }
}
