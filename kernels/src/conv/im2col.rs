//! im2col and its adjoint col2im: the rearrangement that turns a convolution into a GEMM.
//!
//! For one image and one group, row `(c, r, s)` of the column matrix holds, for every output
//! pixel `(oh, ow)`, the input value the kernel tap `(r, s)` of channel `c` multiplies there:
//! `x[c][oh*stride_h - pad_h + r*dilation_h][ow*stride_w - pad_w + s*dilation_w]`, or 0 in
//! the padding. The convolution is then `W_g [K_g x C_g R S] * col [C_g R S x OH OW]`.

use super::Conv2dGeom;
use crate::isa::{instances, Simd, WithSimd};

/// Output columns `ow` whose input column `ow*stride + offset` lies in `0..in_len`, as a
/// range; `offset` may be negative (padding).
pub(super) fn valid_range(out_len: usize, in_len: usize, stride: usize, offset: isize) -> (usize, usize) {
    let lo = if offset >= 0 { 0 } else { ((-offset) as usize).div_ceil(stride) };
    let hi = if (in_len as isize) <= offset { 0 } else { (in_len as isize - offset) as usize }.div_ceil(stride);
    (lo.min(out_len), hi.min(out_len).max(lo.min(out_len)))
}

/// Row `(c, r, s)` of the column matrix for output rows `rows`, from the input planes `x`
/// of `channels` channels: each row of `col` (`ld` apart) holds the rows' `rows.len() *
/// out_w` values. Vector copies at stride 1, even lanes of pairs at stride 2.
pub(crate) struct Im2col<'a> {
    pub g: &'a Conv2dGeom,
    pub channels: usize,
    pub x: &'a [f32],
    pub col: &'a mut [f32],
    pub ld: usize,
    pub rows: std::ops::Range<usize>,
}

/// The adjoint of [`Im2col`]: adds every entry of `col` (rows `ld` apart, all output rows)
/// into the input position it was read from (`dx` is accumulated into, not overwritten).
pub(crate) struct Col2im<'a> {
    pub g: &'a Conv2dGeom,
    pub channels: usize,
    pub col: &'a [f32],
    pub ld: usize,
    pub dx: &'a mut [f32],
}

instances! {
    /// im2col: the column matrix of a convolution.
    fn(Im2col<'_>) => f32_im2col_portable, f32_im2col_avx2, f32_im2col_avx512;
    /// col2im: the column matrix's gradient added back into the input's.
    fn(Col2im<'_>) => f32_col2im_portable, f32_col2im_avx2, f32_col2im_avx512;
}

impl WithSimd for Im2col<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Im2col { g, channels, x, col, ld, rows } = self;
        let (ow_n, plane) = (g.out_w(), g.in_h * g.in_w);
        let mut index = 0;
        for c in 0..channels {
            let xc = &x[c * plane..(c + 1) * plane];
            for r in 0..g.kernel_h {
                for t in 0..g.kernel_w {
                    let row = &mut col[index * ld..][..rows.len() * ow_n];
                    index += 1;
                    let col_off = (t * g.dilation_w) as isize - g.pad_w as isize;
                    let (lo, hi) = valid_range(ow_n, g.in_w, g.stride_w, col_off);
                    for (oh, out) in rows.clone().zip(row.chunks_exact_mut(ow_n)) {
                        let ih = (oh * g.stride_h + r * g.dilation_h) as isize - g.pad_h as isize;
                        if ih < 0 || ih >= g.in_h as isize || lo == hi {
                            fill(s, out, 0.0);
                            continue;
                        }
                        let xrow = &xc[ih as usize * g.in_w..(ih as usize + 1) * g.in_w];
                        fill(s, &mut out[..lo], 0.0);
                        fill(s, &mut out[hi..], 0.0);
                        let first = ((lo * g.stride_w) as isize + col_off) as usize;
                        let (out, n) = (&mut out[lo..hi], hi - lo);
                        match g.stride_w {
                            1 => copy(s, &xrow[first..first + n], out),
                            2 => copy_even(s, &xrow[first..first + 2 * n - 1], out),
                            stride => {
                                for (o, v) in out.iter_mut().zip(xrow[first..].iter().step_by(stride)) {
                                    *o = *v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

impl WithSimd for Col2im<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Col2im { g, channels, col, ld, dx } = self;
        let (oh_n, ow_n, plane) = (g.out_h(), g.out_w(), g.in_h * g.in_w);
        let mut index = 0;
        for c in 0..channels {
            let dxc = &mut dx[c * plane..(c + 1) * plane];
            for r in 0..g.kernel_h {
                for t in 0..g.kernel_w {
                    let row = &col[index * ld..][..oh_n * ow_n];
                    index += 1;
                    let col_off = (t * g.dilation_w) as isize - g.pad_w as isize;
                    let (lo, hi) = valid_range(ow_n, g.in_w, g.stride_w, col_off);
                    if lo >= hi {
                        continue;
                    }
                    for (oh, src) in row.chunks_exact(ow_n).enumerate() {
                        let ih = (oh * g.stride_h + r * g.dilation_h) as isize - g.pad_h as isize;
                        if ih < 0 || ih >= g.in_h as isize {
                            continue;
                        }
                        let dxrow = &mut dxc[ih as usize * g.in_w..(ih as usize + 1) * g.in_w];
                        let first = ((lo * g.stride_w) as isize + col_off) as usize;
                        if g.stride_w == 1 {
                            add_into(s, &src[lo..hi], &mut dxrow[first..first + (hi - lo)]);
                        } else {
                            for (d, v) in dxrow[first..].iter_mut().step_by(g.stride_w).zip(&src[lo..hi]) {
                                *d += *v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst[..] = v`.
#[inline(always)]
fn fill<S: Simd>(s: S, dst: &mut [f32], v: f32) {
    let (lanes, n) = (S::LANES, dst.len());
    let (vv, p) = (s.splat(v), dst.as_mut_ptr());
    let mut i = 0;
    // SAFETY: whole vectors below n - n % lanes, then the rest.
    unsafe {
        while i + lanes <= n {
            s.store(p.add(i), vv);
            i += lanes;
        }
        if i < n {
            s.store_partial(p.add(i), n - i, vv);
        }
    }
}

/// `dst = src` (equal lengths).
#[inline(always)]
fn copy<S: Simd>(s: S, src: &[f32], dst: &mut [f32]) {
    let (lanes, n) = (S::LANES, dst.len().min(src.len()));
    let (from, to) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    // SAFETY: whole vectors below n - n % lanes of both, then the rest.
    unsafe {
        while i + lanes <= n {
            s.store(to.add(i), s.load(from.add(i)));
            i += lanes;
        }
        if i < n {
            s.store_partial(to.add(i), n - i, s.load_partial(from.add(i), n - i));
        }
    }
}

/// `dst[j] = src[2 j]` (`src` holds `2 dst.len() - 1` values).
#[inline(always)]
fn copy_even<S: Simd>(s: S, src: &[f32], dst: &mut [f32]) {
    let (lanes, n) = (S::LANES, dst.len());
    assert!(src.len() + 1 >= 2 * n);
    let (from, to) = (src.as_ptr(), dst.as_mut_ptr());
    let mut j = 0;
    // SAFETY: a pair of vectors from 2 j reads below 2 j + 2 lanes <= 2 n - 1 when
    // j + lanes < n; the last (partial) group goes lane by lane.
    unsafe {
        while j + lanes < n {
            let (even, _) = s.load_deinterleave(from.add(2 * j));
            s.store(to.add(j), even);
            j += lanes;
        }
    }
    for k in j..n {
        dst[k] = src[2 * k];
    }
}

/// `dst += src` (equal lengths).
#[inline(always)]
fn add_into<S: Simd>(s: S, src: &[f32], dst: &mut [f32]) {
    let (lanes, n) = (S::LANES, dst.len().min(src.len()));
    let (from, to) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    // SAFETY: whole vectors below n - n % lanes of both, then the rest.
    unsafe {
        while i + lanes <= n {
            s.store(to.add(i), s.add(s.load(to.add(i)), s.load(from.add(i))));
            i += lanes;
        }
        if i < n {
            let v = s.add(s.load_partial(to.add(i), n - i), s.load_partial(from.add(i), n - i));
            s.store_partial(to.add(i), n - i, v);
        }
    }
}
