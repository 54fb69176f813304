//! Max pooling, optionally fused with a preceding ReLU, forward with argmax and backward.
//!
//! Separable and vectorised along the width. Without argmax, rows first
//! ([`super::window::plane_rows_first`]). With argmax (training), columns first, so that
//! ties resolve as PyTorch's do: each input row is padded with -inf into a buffer, a window
//! maximum is taken at every start position with `kernel_w` unaligned vector loads (at
//! stride 2, even and odd columns split in registers) and the positions a stride apart are
//! kept; then each output row is the maximum of its window's rows, a vector of output
//! columns at a time. Comparisons are strict and run left to right, then top to bottom, so
//! ties resolve to the first element of the window in row-major order.

use super::window::{plane_rows_first, stride2_window, Finish, Max};
use super::Pool2dGeom;
use crate::isa::{instances, Simd, WithSimd};
use crate::scratch::{Scratch, Slot};

pub(crate) struct MaxPoolOp<'a> {
    pub g: &'a Pool2dGeom,
    pub x: &'a [f32],
    pub y: &'a mut [f32],
    pub argmax: Option<&'a mut [u32]>,
    pub relu: bool,
}

instances! {
    /// Max pooling (with argmax, or fused with a ReLU) of a run of planes.
    fn(MaxPoolOp<'_>) => f32_maxpool_portable, f32_maxpool_avx2, f32_maxpool_avx512;
}

impl WithSimd for MaxPoolOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let MaxPoolOp { g, x, y, argmax, relu } = self;
        let (plane_in, plane_out) = (g.in_h * g.in_w, g.out_h() * g.out_w());
        let lanes = S::LANES;
        let row_len = g.row_buffer_len(lanes);
        let Some(argmax) = argmax else {
            // Without argmax the order of comparisons does not matter, so the cheaper order
            // is taken: rows first.
            let mut buf = Scratch::take(Slot::Pool, 3 * row_len);
            let (rows, win) = buf.split_at_mut(2 * row_len);
            rows.fill(f32::NEG_INFINITY);
            let (r0, r1) = rows.split_at_mut(row_len);
            let finish = Finish { inv_h: None, inv_w: None, relu };
            for (xp, yp) in x.chunks_exact(plane_in).zip(y.chunks_exact_mut(plane_out)) {
                plane_rows_first::<S, Max>(s, g, xp, yp, [&mut *r0, &mut *r1], win, &finish);
            }
            return;
        };
        // row, row indices, window maxima and their indices, per-row results and indices.
        let h_len = g.in_h * g.out_w() + lanes;
        let mut buf = Scratch::take(Slot::Pool, 4 * row_len + 2 * h_len + lanes);
        let (stage, rest) = buf.split_at_mut(lanes);
        let (row, rest) = rest.split_at_mut(row_len);
        let (row_idx, rest) = rest.split_at_mut(row_len);
        let (win, rest) = rest.split_at_mut(row_len);
        let (win_idx, rest) = rest.split_at_mut(row_len);
        let (h_val, h_idx) = rest.split_at_mut(h_len);
        row.fill(f32::NEG_INFINITY);
        for p in 0..g.planes() {
            let planes = Planes { x: &x[p * plane_in..][..plane_in], y: &mut y[p * plane_out..][..plane_out] };
            let idx_out = &mut argmax[p * plane_out..][..plane_out];
            let bufs = Bufs { row, row_idx, win, win_idx, h_val, h_idx, stage };
            max_plane(s, g, planes, idx_out, bufs, relu);
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
    /// One vector, where a vector of indices is converted lane by lane.
    stage: &'a mut [f32],
}

#[inline(always)]
fn max_plane<S: Simd>(s: S, g: &Pool2dGeom, planes: Planes, argmax: &mut [u32], b: Bufs, relu: bool) {
    let Planes { x, y } = planes;
    let Bufs { row, row_idx, win, win_idx, h_val, h_idx, stage } = b;
    let lanes = S::LANES;
    let (oh_n, ow_n) = (g.out_h(), g.out_w());
    let starts = (ow_n - 1) * g.stride_w + 1;
    let (pw, iw_n) = (g.pad_w, g.in_w);
    // Column of each padded-row position; padding carries the nearest real column: it can
    // only win when the whole window is -inf, and then that element is a correct argmax
    // too. Row offsets are added per row (exact: indices stay below 2^24).
    for (i, v) in row_idx.iter_mut().enumerate() {
        *v = i.saturating_sub(pw).min(iw_n - 1) as f32;
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
                    let idx = (row_idx.as_ptr().add(2 * ow), base);
                    let (v, vi) = stride2_window::<S, Max>(s, g.kernel_w, row.as_ptr().add(2 * ow), idx);
                    s.store(h_val.as_mut_ptr().add(h_row + ow), v);
                    s.store(h_idx.as_mut_ptr().add(h_row + ow), vi);
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
                let mut vi = s.add(base, s.load(row_idx.as_ptr().add(x0)));
                for j in 1..g.kernel_w {
                    let c = s.load(row.as_ptr().add(x0 + j));
                    vi = s.select_gt(c, v, s.add(base, s.load(row_idx.as_ptr().add(x0 + j))), vi);
                    v = s.select_gt(c, v, c, v);
                }
                s.store(win.as_mut_ptr().add(x0), v);
                s.store(win_idx.as_mut_ptr().add(x0), vi);
            }
            x0 += lanes;
        }
        for ow in 0..ow_n {
            h_val[ih * ow_n + ow] = win[ow * g.stride_w];
            h_idx[ih * ow_n + ow] = win_idx[ow * g.stride_w];
        }
    }
    // Vertical pass: each output row is the maximum over its window's rows.
    for oh in 0..oh_n {
        let (lo, hi, _) = Pool2dGeom::window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h, true);
        let mut ow = 0;
        while ow < ow_n {
            let n = lanes.min(ow_n - ow);
            // SAFETY: rows lo..hi of h_val/h_idx hold ow_n values each (+ lanes of slack);
            // y and the index row hold ow_n values from oh * ow_n.
            unsafe {
                let mut v = s.load(h_val.as_ptr().add(lo * ow_n + ow));
                let mut vi = s.load(h_idx.as_ptr().add(lo * ow_n + ow));
                for ih in lo + 1..hi {
                    let c = s.load(h_val.as_ptr().add(ih * ow_n + ow));
                    vi = s.select_gt(c, v, s.load(h_idx.as_ptr().add(ih * ow_n + ow)), vi);
                    v = s.select_gt(c, v, c, v);
                }
                if relu {
                    v = s.max(v, s.zero());
                }
                let dst = y.as_mut_ptr().add(oh * ow_n + ow);
                s.store_upto(dst, n, v);
                s.store(stage.as_mut_ptr(), vi);
                for (k, t) in stage[..n].iter().enumerate() {
                    // SAFETY (of this use of the enclosing block): indices are whole numbers
                    // below 2^24 (plane positions held exactly in f32), so the conversion
                    // cannot overflow; it skips the saturation checks of `as`.
                    argmax[oh * ow_n + ow + k] = t.to_int_unchecked::<u32>();
                }
            }
            ow += n;
        }
    }
}
