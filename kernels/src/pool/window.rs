//! Reductions over pooling windows shared by max and average pooling: down a window's rows
//! (contiguous vectors) and along a row (at stride 2, windows deinterleaved in registers).

use super::Pool2dGeom;
use crate::isa::{Simd, LANE_INDEX};

/// How window values combine: maximum or sum.
pub(crate) trait Combine {
    /// The value that changes nothing: what padding contributes.
    const IDENTITY: f32;
    fn combine<S: Simd>(s: S, acc: S::V, v: S::V) -> S::V;
}

pub(crate) struct Max;
pub(crate) struct Sum;

impl Combine for Max {
    const IDENTITY: f32 = f32::NEG_INFINITY;
    #[inline(always)]
    fn combine<S: Simd>(s: S, acc: S::V, v: S::V) -> S::V {
        // Ties give the same value either way; the argmax, where tracked, takes the first.
        s.max(acc, v)
    }
}

impl Combine for Sum {
    const IDENTITY: f32 = 0.0;
    #[inline(always)]
    fn combine<S: Simd>(s: S, acc: S::V, v: S::V) -> S::V {
        s.add(acc, v)
    }
}

/// The windows of `lanes` outputs a stride of 2 apart starting at `row`, combined, and the
/// position of each window's winner, `base + idx[column]` for `track = (idx, base)` (max
/// pooling's argmax). Tap `j` of every window is at even or odd offsets of
/// `row + (j & !1)`, split apart in registers, so no window start is computed in vain.
///
/// # Safety
/// `row` and `idx` must be readable for `kernel_w - 1 + 2 * LANES` values.
#[inline(always)]
pub(crate) unsafe fn stride2_window<S: Simd, C: Combine>(
    s: S,
    kernel_w: usize,
    row: *const f32,
    track: (*const f32, S::V),
) -> (S::V, S::V) {
    // SAFETY: forwarded contract.
    unsafe {
        match kernel_w {
            2 => stride2_taps::<S, C, 2>(s, 2, row, track),
            3 => stride2_taps::<S, C, 3>(s, 3, row, track),
            _ => stride2_taps::<S, C, 0>(s, kernel_w, row, track),
        }
    }
}

/// [`stride2_window`] with the kernel width `K` known at compile time (`K = 0`: `kernel_w`
/// at run time), so the loop over taps unrolls.
///
/// # Safety
/// As [`stride2_window`].
#[inline(always)]
unsafe fn stride2_taps<S: Simd, C: Combine, const K: usize>(
    s: S,
    kernel_w: usize,
    row: *const f32,
    (idx, base): (*const f32, S::V),
) -> (S::V, S::V) {
    let kernel_w = if K > 0 { K } else { kernel_w };
    // SAFETY: every load starts at most kernel_w - 1 values in and reads 2 * LANES.
    unsafe {
        let mut v = s.load_deinterleave(row).0;
        let mut vi = s.add(base, s.load_deinterleave(idx).0);
        // Taps in pairs: odd tap `j` is the odd half at `j - 1`, even tap `j + 1` the even
        // half at `j + 1`. (Choosing the half by `j`'s parity in one loop compiled, at a
        // run-time width, to a vector blend whose mask lived on the stack.)
        let mut j = 1;
        while j < kernel_w {
            let c = s.load_deinterleave(row.add(j - 1)).1;
            (v, vi) = take::<S, C>(s, (v, vi), c, s.add(base, s.load_deinterleave(idx.add(j - 1)).1));
            if j + 1 < kernel_w {
                let c = s.load_deinterleave(row.add(j + 1)).0;
                (v, vi) = take::<S, C>(s, (v, vi), c, s.add(base, s.load_deinterleave(idx.add(j + 1)).0));
            }
            j += 2;
        }
        (v, vi)
    }
}

/// A window's running result `(v, vi)` with tap `c` at positions `ci` combined in (the
/// position moves only where `c` is strictly greater: the first winner is kept).
#[inline(always)]
fn take<S: Simd, C: Combine>(s: S, (v, vi): (S::V, S::V), c: S::V, ci: S::V) -> (S::V, S::V) {
    (C::combine(s, v, c), s.select_gt(c, v, ci, vi))
}

/// What a rows-first pooling pass does besides combining: scale each output row's
/// vertical pass (average pooling's height divisors, per output row) and each output
/// column (width divisors, with a vector of slack), and rectify (fused ReLU).
pub(crate) struct Finish<'a> {
    pub inv_h: Option<&'a [f32]>,
    pub inv_w: Option<&'a [f32]>,
    pub relu: bool,
}

/// Separable pooling of one plane (no argmax), rows first. At horizontal stride 2 with
/// windows 2 or 3 wide (most pooling layers), each output row straight from its window's
/// input rows, in registers ([`FusedRows`]). Otherwise per output row, its window's input
/// rows combined lane by lane into a padded row buffer, then the windows along that row;
/// the vertical pass of row `oh` runs into the other of two buffers before the horizontal
/// pass of row `oh - 1`, whose unaligned loads straddle the vertical pass's stores and
/// would stall on stores still in flight if they read them right away.
///
/// `rows` are two buffers of [`Pool2dGeom::row_buffer_len`] values whose padding (outside
/// `pad_w..pad_w + in_w`) holds the combine's identity; `win` is as long.
#[inline(always)]
pub(crate) fn plane_rows_first<S: Simd, C: Combine>(
    s: S,
    g: &Pool2dGeom,
    x: &[f32],
    y: &mut [f32],
    rows: [&mut [f32]; 2],
    win: &mut [f32],
    finish: &Finish,
) {
    let lanes = S::LANES;
    let (oh_n, ow_n, iw_n) = (g.out_h(), g.out_w(), g.in_w);
    let row_len = g.row_buffer_len(lanes);
    let [r0, r1] = rows;
    assert!(r0.len() >= row_len && r1.len() >= row_len && win.len() >= row_len && x.len() >= g.in_h * iw_n);
    assert!(y.len() >= oh_n * ow_n && finish.inv_w.is_none_or(|v| v.len() >= ow_n + lanes));
    let bufs = [r0.as_mut_ptr(), r1.as_mut_ptr()];
    if g.stride_w == 2 && matches!(g.kernel_w, 2 | 3) && g.pad_w <= 1 {
        // Width divisors all the same (no window clipped, or the padding counted): one
        // scale per row; else a vector of them per output vector.
        let inv_w = finish.inv_w.map(|v| &v[..ow_n + lanes]);
        let uniform = inv_w.filter(|v| v[..ow_n].iter().all(|&d| d == v[0])).map(|v| v[0]);
        // Output rows whose windows lie wholly inside the input share their height, scale
        // and step to the next: one run, so no row pays the setup.
        let past_full = (g.in_h + g.pad_h).checked_sub(g.kernel_h).map_or(0, |span| span / g.stride_h + 1);
        let full = g.pad_h.div_ceil(g.stride_h)..past_full.min(oh_n);
        let mut oh = 0;
        while oh < oh_n {
            let count = if full.contains(&oh) { full.end - oh } else { 1 };
            let (lo, hi, _) = Pool2dGeom::window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h, true);
            let row_scale = match (finish.inv_h, uniform) {
                (None, None) => None,
                (h, w) => Some(h.map_or(1.0, |v| v[oh]) * w.unwrap_or(1.0)),
            };
            let column_scale = if uniform.is_some() { None } else { inv_w };
            let rows = FusedRows {
                top: &x[lo * iw_n..],
                rows: hi - lo,
                width: iw_n,
                step: g.stride_h * iw_n,
                out_w: ow_n,
                pad: g.pad_w,
                kernel_w: g.kernel_w,
                row_scale,
                column_scale,
            };
            let out = &mut y[oh * ow_n..(oh + count) * ow_n];
            if finish.relu {
                rows.pool::<S, C, true>(s, out);
            } else {
                rows.pool::<S, C, false>(s, out);
            }
            oh += count;
        }
        return;
    }
    for oh in 0..=oh_n {
        if oh < oh_n {
            let (lo, hi, _) = Pool2dGeom::window(oh, g.stride_h, g.pad_h, g.kernel_h, g.in_h, true);
            let scale = finish.inv_h.map(|v| v[oh]);
            // SAFETY: rows lo..hi of x hold iw_n values each; the buffer holds
            // pad_w + iw_n <= row_len values (asserted above).
            unsafe {
                let span = RowSpan { top: x.as_ptr().add(lo * iw_n), stride: iw_n, rows: hi - lo };
                span.combine::<S, C>(s, iw_n, scale, bufs[oh % 2].add(g.pad_w))
            };
        }
        if oh > 0 {
            let row = bufs[(oh - 1) % 2] as *const f32;
            let out = &mut y[(oh - 1) * ow_n..][..ow_n];
            // SAFETY: reads end before starts + kernel_w + lanes <= row_len.
            unsafe { window_row::<S, C>(s, g, row, finish.relu, win) };
            let inv_w = finish.inv_w.unwrap_or(&[]);
            for (ow, o) in out.iter_mut().enumerate() {
                let v = win[ow * g.stride_w];
                *o = inv_w.get(ow).map_or(v, |i| v * i);
            }
        }
    }
}

/// `rows` input rows `stride` values apart from `top`: a window's rows.
#[derive(Clone, Copy)]
struct RowSpan {
    top: *const f32,
    stride: usize,
    rows: usize,
}

impl RowSpan {
    /// The rows combined lane by lane into `dst` (`len` values), times `scale` if given;
    /// the common window heights unrolled (a loop over two or three rows costs more than
    /// the arithmetic itself).
    ///
    /// # Safety
    /// Every row must be readable for `len` values, `dst` writable for `len`.
    #[inline(always)]
    unsafe fn combine<S: Simd, C: Combine>(self, s: S, len: usize, scale: Option<f32>, dst: *mut f32) {
        // SAFETY: forwarded contract.
        unsafe {
            match self.rows {
                1 => self.combine_n::<S, C, 1>(s, len, scale, dst),
                2 => self.combine_n::<S, C, 2>(s, len, scale, dst),
                3 => self.combine_n::<S, C, 3>(s, len, scale, dst),
                _ => self.combine_n::<S, C, 0>(s, len, scale, dst),
            }
        }
    }

    /// [`RowSpan::combine`] with the row count `R` known at compile time (`R = 0`: `rows`).
    ///
    /// # Safety
    /// As [`RowSpan::combine`].
    #[inline(always)]
    unsafe fn combine_n<S: Simd, C: Combine, const R: usize>(
        self,
        s: S,
        len: usize,
        scale: Option<f32>,
        dst: *mut f32,
    ) {
        let RowSpan { top, stride, rows } = self;
        let rows = if R > 0 { R } else { rows };
        let lanes = S::LANES;
        let scale = scale.map(|v| s.splat(v));
        let mut i = 0;
        // SAFETY: full vectors while i + lanes <= len, then n < lanes values.
        unsafe {
            while i + lanes <= len {
                let mut v = s.load(top.add(i));
                for r in 1..rows {
                    v = C::combine(s, v, s.load(top.add(r * stride + i)));
                }
                s.store(dst.add(i), scale.map_or(v, |sc| s.mul(v, sc)));
                i += lanes;
            }
            if i < len {
                let n = len - i;
                let mut v = s.load_partial(top.add(i), n);
                for r in 1..rows {
                    v = C::combine(s, v, s.load_partial(top.add(r * stride + i), n));
                }
                s.store_partial(dst.add(i), n, scale.map_or(v, |sc| s.mul(v, sc)));
            }
        }
    }
}

/// The window of every start position `0..starts` along `row` (combined, rectified if
/// `relu`) into `win`, for strides other than 2 (which [`stride2_row`] takes directly).
///
/// # Safety
/// `row` must be readable for `starts + kernel_w + LANES` values, `win` writable for
/// `starts + LANES`.
#[inline(always)]
unsafe fn window_row<S: Simd, C: Combine>(s: S, g: &Pool2dGeom, row: *const f32, relu: bool, win: &mut [f32]) {
    let starts = (g.out_w() - 1) * g.stride_w + 1;
    let mut x0 = 0;
    // SAFETY: x0 + kernel_w - 1 + lanes <= starts + kernel_w + lanes values read.
    unsafe {
        while x0 < starts {
            let mut v = s.load(row.add(x0));
            for j in 1..g.kernel_w {
                v = C::combine(s, v, s.load(row.add(x0 + j)));
            }
            if relu {
                v = s.max(v, s.zero());
            }
            s.store(win.as_mut_ptr().add(x0), v);
            x0 += S::LANES;
        }
    }
}

/// Output rows of a stride-2 pooling with windows 2 or 3 wide (so padding 0 or 1), each
/// computed in registers from its window's input rows: per vector of outputs, the window's
/// rows combined over two vectors of columns and split into even and odd columns `E`, `O`.
/// Unpadded, output `i` combines `E[i]`, `O[i]` and (3 wide) `E[i + 1]`, the even columns
/// shifted down with the next vector's first shifted in; padded by one, it combines
/// `O[i - 1]` (shifted up, the previous vector's last shifted in), `E[i]` and (3 wide)
/// `O[i]`. Columns past the row (windows clipped at its end) hold the combine's identity;
/// only the last vectors of a row look for them.
struct FusedRows<'a> {
    /// From the first output row's window: `rows` input rows of `width` values, and the
    /// following output rows' windows `step` values further on each.
    top: &'a [f32],
    rows: usize,
    width: usize,
    step: usize,
    /// Outputs per row.
    out_w: usize,
    /// Padding columns to the left of the row: 0 or 1.
    pad: usize,
    kernel_w: usize,
    /// Average pooling's divisor inverse for whole rows, when every window of a row has
    /// the same one.
    row_scale: Option<f32>,
    /// Else the width divisors' inverses per output (with a vector of slack).
    column_scale: Option<&'a [f32]>,
}

impl FusedRows<'_> {
    /// Pools into `out`, a whole number of output rows.
    #[inline(always)]
    fn pool<S: Simd, C: Combine, const RELU: bool>(&self, s: S, out: &mut [f32]) {
        if self.pad == 0 {
            self.pool_p::<S, C, RELU, false>(s, out)
        } else {
            self.pool_p::<S, C, RELU, true>(s, out)
        }
    }

    /// [`FusedRows::pool`] with the padding (`PAD`: one column) fixed.
    #[inline(always)]
    fn pool_p<S: Simd, C: Combine, const RELU: bool, const PAD: bool>(&self, s: S, out: &mut [f32]) {
        match (self.kernel_w, self.rows) {
            (2, 2) => self.pool_k::<S, C, RELU, PAD, 2, 2>(s, out),
            (3, 2) => self.pool_k::<S, C, RELU, PAD, 3, 2>(s, out),
            (2, 3) => self.pool_k::<S, C, RELU, PAD, 2, 3>(s, out),
            (3, 3) => self.pool_k::<S, C, RELU, PAD, 3, 3>(s, out),
            (2, _) => self.pool_k::<S, C, RELU, PAD, 2, 0>(s, out),
            _ => self.pool_k::<S, C, RELU, PAD, 3, 0>(s, out),
        }
    }

    /// [`FusedRows::pool`] with the window width `K` and height `R` (0: at run time) fixed.
    #[inline(always)]
    fn pool_k<S: Simd, C: Combine, const RELU: bool, const PAD: bool, const K: usize, const R: usize>(
        &self,
        s: S,
        out: &mut [f32],
    ) {
        let lanes = S::LANES;
        let ow_n = self.out_w;
        let vectors = ow_n.div_ceil(lanes);
        let rows = if R > 0 { R } else { self.rows };
        // Rows pooled without checks (all but the last one or two of a plane): when no
        // window is clipped at the row's end, columns read past it (the next row's) land
        // only in lanes past the row's last output, and every vector can be stored whole,
        // its lanes past the row's end spilling into the next row's outputs, stored over
        // later.
        let clipped = 2 * (ow_n - 1) + K > self.width + usize::from(PAD);
        let reads = (rows - 1) * self.width + 2 * lanes * (vectors + 1);
        let by_reads = self.top.len().checked_sub(reads).map_or(0, |room| room / self.step + 1);
        let by_writes = out.len().checked_sub(lanes * vectors).map_or(0, |room| room / ow_n + 1);
        let fast = if clipped { 0 } else { by_reads.min(by_writes).min(out.len() / ow_n) };
        for r in 0..fast {
            // SAFETY: row r's window reads end within top (by_reads), its stores within out
            // (by_writes).
            unsafe {
                let (src, dst) = (self.top.as_ptr().add(r * self.step), out.as_mut_ptr().add(r * ow_n));
                self.row_unchecked::<S, C, RELU, PAD, K, R>(s, src, dst, vectors);
            }
        }
        // Unpadded 3-wide windows read the next vector's columns too.
        let ahead = !PAD && K == 3;
        // Output vectors whose outputs all exist, and whose columns and the next vector's
        // (loaded as each vector is finished) lie inside the row: no checks in their loop.
        let inside = self.width / (2 * lanes);
        let inner = inside.saturating_sub(1).min(ow_n / lanes);
        for (r, out) in out.chunks_exact_mut(ow_n).enumerate().skip(fast) {
            let base = r * self.step;
            let (mut cur, mut prev_odd) = if inside > 0 {
                assert!(base + (rows - 1) * self.width + 2 * lanes * inside <= self.top.len());
                // SAFETY: pairs 0..=inner < inside lie inside the row, in each of the
                // window's rows (asserted); inner vectors lie in out (inner's bound).
                unsafe {
                    let src = self.top.as_ptr().add(base);
                    self.row_unchecked::<S, C, RELU, PAD, K, R>(s, src, out.as_mut_ptr(), inner)
                }
            } else {
                (self.pair::<S, C, R>(s, base, 0), s.splat(C::IDENTITY))
            };
            for i in inner..vectors {
                let next = if ahead || i + 1 < vectors { self.pair::<S, C, R>(s, base, i + 1) } else { cur };
                let v = self.finish::<S, C, RELU, PAD, K>(s, cur, next.0, prev_odd, i * lanes);
                let (ow, n) = (i * lanes, lanes.min(ow_n - i * lanes));
                // SAFETY: n values from ow lie in out.
                unsafe { s.store_upto(out.as_mut_ptr().add(ow), n, v) };
                prev_odd = cur.1;
                cur = next;
            }
        }
    }

    /// The first `vectors` whole vectors of an output row to `dst`, its window's rows from
    /// `src`; returns what the next vector carries on: pair `vectors` and the odd columns
    /// before it.
    ///
    /// # Safety
    /// `src` must be readable for `vectors + 1` pairs of vectors in each of the window's
    /// rows, `dst` writable for `vectors` vectors.
    #[inline(always)]
    unsafe fn row_unchecked<S: Simd, C: Combine, const RELU: bool, const PAD: bool, const K: usize, const R: usize>(
        &self,
        s: S,
        src: *const f32,
        dst: *mut f32,
        vectors: usize,
    ) -> ((S::V, S::V), S::V) {
        let lanes = S::LANES;
        // SAFETY: forwarded contract; pair i + 1 <= vectors is read.
        unsafe {
            let mut cur = self.pair_at::<S, C, R>(s, src);
            let mut prev_odd = s.splat(C::IDENTITY);
            for i in 0..vectors {
                let next = self.pair_at::<S, C, R>(s, src.add(2 * lanes * (i + 1)));
                s.store(dst.add(i * lanes), self.finish::<S, C, RELU, PAD, K>(s, cur, next.0, prev_odd, i * lanes));
                prev_odd = cur.1;
                cur = next;
            }
            (cur, prev_odd)
        }
    }

    /// Outputs `ow..ow + LANES` from the even and odd columns of their vector, the next
    /// vector's even columns and the previous vector's odd ones; scaled and rectified.
    #[inline(always)]
    fn finish<S: Simd, C: Combine, const RELU: bool, const PAD: bool, const K: usize>(
        &self,
        s: S,
        (even, odd): (S::V, S::V),
        next_even: S::V,
        prev_odd: S::V,
        ow: usize,
    ) -> S::V {
        let mut v = if !PAD {
            let v = C::combine(s, even, odd);
            if K == 3 {
                C::combine(s, v, s.shift_in(even, next_even))
            } else {
                v
            }
        } else {
            let v = C::combine(s, s.shift_up(odd, prev_odd), even);
            if K == 3 {
                C::combine(s, v, odd)
            } else {
                v
            }
        };
        if let Some(scale) = self.row_scale {
            v = s.mul(v, s.splat(scale));
        }
        if let Some(scales) = self.column_scale {
            // SAFETY: the scales hold ow_n + LANES values (plane_rows_first).
            v = s.mul(v, unsafe { s.load(scales.as_ptr().add(ow)) });
        }
        if RELU {
            v = s.max(v, s.zero());
        }
        v
    }

    /// Two vectors of columns from `p`, combined over the window's rows and split into
    /// even and odd ones.
    ///
    /// # Safety
    /// Each of the rows must be readable for `2 LANES` values from `p`.
    #[inline(always)]
    unsafe fn pair_at<S: Simd, C: Combine, const R: usize>(&self, s: S, p: *const f32) -> (S::V, S::V) {
        let lanes = S::LANES;
        let rows = if R > 0 { R } else { self.rows };
        // SAFETY: forwarded contract.
        unsafe {
            let (mut a, mut b) = (s.load(p), s.load(p.add(lanes)));
            for r in 1..rows {
                a = C::combine(s, a, s.load(p.add(r * self.width)));
                b = C::combine(s, b, s.load(p.add(r * self.width + lanes)));
            }
            s.deinterleave(a, b)
        }
    }

    /// Columns `2 LANES i .. 2 LANES (i + 1)` of the window's rows, combined and split into
    /// even and odd ones; columns past the row hold the identity.
    /// (Methods rather than closures, which might not inline into the `#[target_feature]`
    /// frame.)
    #[inline(always)]
    fn pair<S: Simd, C: Combine, const R: usize>(&self, s: S, base: usize, i: usize) -> (S::V, S::V) {
        let col = 2 * S::LANES * i;
        s.deinterleave(self.column::<S, C, R>(s, base, col), self.column::<S, C, R>(s, base, col + S::LANES))
    }

    /// The window's rows combined at columns `col..col + LANES`, those past the row's end
    /// the identity.
    #[inline(always)]
    fn column<S: Simd, C: Combine, const R: usize>(&self, s: S, base: usize, col: usize) -> S::V {
        let lanes = S::LANES;
        let rows = if R > 0 { R } else { self.rows };
        if col >= self.width {
            return s.splat(C::IDENTITY);
        }
        let n = lanes.min(self.width - col);
        assert!(base + (rows - 1) * self.width + col + n <= self.top.len());
        let p = self.top[base + col..].as_ptr();
        // SAFETY: every row holds n values from col (asserted); LANE_INDEX holds 16 >= LANES.
        unsafe {
            if n == lanes {
                let mut v = s.load(p);
                for r in 1..rows {
                    v = C::combine(s, v, s.load(p.add(r * self.width)));
                }
                v
            } else {
                let mut v = s.load_partial(p, n);
                for r in 1..rows {
                    v = C::combine(s, v, s.load_partial(p.add(r * self.width), n));
                }
                s.select_gt(s.splat(n as f32), s.load(LANE_INDEX.as_ptr()), v, s.splat(C::IDENTITY))
            }
        }
    }
}
