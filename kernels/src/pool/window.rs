//! Reductions over pooling windows shared by max and average pooling: down a window's rows
//! (contiguous vectors) and along a row at stride 2 (windows deinterleaved in registers).

use crate::isa::Simd;

/// How window values combine: maximum or sum.
pub(crate) trait Combine {
    fn combine<S: Simd>(s: S, acc: S::V, v: S::V) -> S::V;
}

pub(crate) struct Max;
pub(crate) struct Sum;

impl Combine for Max {
    #[inline(always)]
    fn combine<S: Simd>(s: S, acc: S::V, v: S::V) -> S::V {
        // Ties give the same value either way; the argmax, where tracked, takes the first.
        s.max(acc, v)
    }
}

impl Combine for Sum {
    #[inline(always)]
    fn combine<S: Simd>(s: S, acc: S::V, v: S::V) -> S::V {
        s.add(acc, v)
    }
}

/// `rows` vectors `stride` apart from `p` combined, unrolled for the common window heights
/// (a loop over two or three rows costs more than the arithmetic itself).
///
/// # Safety
/// `p + r * stride` must be readable for `LANES` values, for every `r < rows`.
#[inline(always)]
pub(crate) unsafe fn column<S: Simd, C: Combine>(s: S, p: *const f32, stride: usize, rows: usize) -> S::V {
    // SAFETY: forwarded contract.
    unsafe {
        let v = s.load(p);
        match rows {
            2 => C::combine(s, v, s.load(p.add(stride))),
            3 => C::combine(s, C::combine(s, v, s.load(p.add(stride))), s.load(p.add(2 * stride))),
            _ => (1..rows).fold(v, |v, r| C::combine(s, v, s.load(p.add(r * stride)))),
        }
    }
}

/// The windows of `lanes` outputs a stride of 2 apart starting at `row`, combined; with
/// `track = Some((idx, base))` (maxima only) also their positions `base + idx[column]`. Tap
/// `j` of every window is at even or odd offsets of `row + (j & !1)`, split apart in
/// registers, so no window start is computed in vain.
///
/// # Safety
/// `row` (and `idx`) must be readable for `kernel_w - 1 + 2 * LANES` values.
#[inline(always)]
pub(crate) unsafe fn stride2_window<S: Simd, C: Combine>(
    s: S,
    kernel_w: usize,
    row: *const f32,
    track: Option<(*const f32, S::V)>,
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
    track: Option<(*const f32, S::V)>,
) -> (S::V, S::V) {
    let kernel_w = if K > 0 { K } else { kernel_w };
    let tap = |(even, odd): (S::V, S::V), j: usize| if j.is_multiple_of(2) { even } else { odd };
    // SAFETY: every load starts at most kernel_w - 1 values in and reads 2 * LANES.
    unsafe {
        let mut v = s.load_deinterleave(row).0;
        let mut vi = match track {
            Some((idx, base)) => s.add(base, s.load_deinterleave(idx).0),
            None => s.zero(),
        };
        for j in 1..kernel_w {
            let c = tap(s.load_deinterleave(row.add(j & !1)), j);
            if let Some((idx, base)) = track {
                vi = s.select_gt(c, v, s.add(base, tap(s.load_deinterleave(idx.add(j & !1)), j)), vi);
            }
            v = C::combine(s, v, c);
        }
        (v, vi)
    }
}

/// One output row of a stride-2 pooling from its window-reduced input `row`: the windows of
/// `ow_n` outputs combined, optionally scaled per output (`scale`, average pooling's width
/// divisors) and rectified, stored to `out`.
///
/// # Safety
/// `row` must be readable for `2 (ow_n - 1) + kernel_w + 2 * LANES` values, `scale` (if
/// given) for `ow_n + LANES`, and `out` writable for `ow_n`.
#[inline(always)]
pub(crate) unsafe fn stride2_row<S: Simd, C: Combine>(
    s: S,
    kernel_w: usize,
    row: *const f32,
    scale: Option<*const f32>,
    relu: bool,
    out: *mut f32,
    ow_n: usize,
) {
    let lanes = S::LANES;
    let mut ow = 0;
    while ow < ow_n {
        // SAFETY: forwarded contract; n <= lanes values are stored from out + ow.
        unsafe {
            let mut v = stride2_window::<S, C>(s, kernel_w, row.add(2 * ow), None).0;
            if let Some(scale) = scale {
                v = s.mul(v, s.load(scale.add(ow)));
            }
            if relu {
                v = s.max(v, s.zero());
            }
            let n = lanes.min(ow_n - ow);
            if n == lanes {
                s.store(out.add(ow), v);
            } else {
                s.store_partial(out.add(ow), n, v);
            }
        }
        ow += lanes;
    }
}
