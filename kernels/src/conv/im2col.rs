//! im2col and its adjoint col2im: the rearrangement that turns a convolution into a GEMM.
//!
//! For one image and one group, row `(c, r, s)` of the column matrix holds, for every output
//! pixel `(oh, ow)`, the input value the kernel tap `(r, s)` of channel `c` multiplies there:
//! `x[c][oh*stride_h - pad_h + r*dilation_h][ow*stride_w - pad_w + s*dilation_w]`, or 0 in
//! the padding. The convolution is then `W_g [K_g x C_g R S] * col [C_g R S x OH OW]`.

use super::Conv2dGeom;

/// Output columns `ow` whose input column `ow*stride + offset` lies in `0..in_len`, as a
/// range; `offset` may be negative (padding).
pub(super) fn valid_range(out_len: usize, in_len: usize, stride: usize, offset: isize) -> (usize, usize) {
    let lo = if offset >= 0 { 0 } else { ((-offset) as usize).div_ceil(stride) };
    let hi = if (in_len as isize) <= offset { 0 } else { (in_len as isize - offset) as usize }.div_ceil(stride);
    (lo.min(out_len), hi.min(out_len).max(lo.min(out_len)))
}

/// Fills `col` (`channels * kernel_h * kernel_w` rows of `out_h * out_w` values, `ld`
/// apart) from `x` (`channels` planes of `in_h * in_w`).
pub(crate) fn im2col(g: &Conv2dGeom, channels: usize, x: &[f32], col: &mut [f32], ld: usize) {
    im2col_rows(g, channels, x, col, ld, 0..g.out_h());
}

/// [`im2col`] for the output rows `rows` only: each row of `col` holds their
/// `rows.len() * out_w` values.
pub(crate) fn im2col_rows(
    g: &Conv2dGeom,
    channels: usize,
    x: &[f32],
    col: &mut [f32],
    ld: usize,
    rows: std::ops::Range<usize>,
) {
    let (ow_n, plane) = (g.out_w(), g.in_h * g.in_w);
    let mut index = 0;
    for c in 0..channels {
        let xc = &x[c * plane..(c + 1) * plane];
        for r in 0..g.kernel_h {
            for s in 0..g.kernel_w {
                let row = &mut col[index * ld..][..rows.len() * ow_n];
                index += 1;
                let col_off = (s * g.dilation_w) as isize - g.pad_w as isize;
                let (lo, hi) = valid_range(ow_n, g.in_w, g.stride_w, col_off);
                for (oh, out) in rows.clone().zip(row.chunks_exact_mut(ow_n)) {
                    let ih = (oh * g.stride_h + r * g.dilation_h) as isize - g.pad_h as isize;
                    if ih < 0 || ih >= g.in_h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let xrow = &xc[ih as usize * g.in_w..(ih as usize + 1) * g.in_w];
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    if lo == hi {
                        continue;
                    }
                    let first = (lo * g.stride_w) as isize + col_off;
                    if g.stride_w == 1 {
                        out[lo..hi].copy_from_slice(&xrow[first as usize..first as usize + (hi - lo)]);
                    } else {
                        for (o, v) in out[lo..hi].iter_mut().zip(xrow[first as usize..].iter().step_by(g.stride_w)) {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every entry of `col` (rows `ld` apart) into the input
/// position it was read from (`dx` is accumulated into, not overwritten).
pub(crate) fn col2im(g: &Conv2dGeom, channels: usize, col: &[f32], ld: usize, dx: &mut [f32]) {
    let (oh_n, ow_n, plane) = (g.out_h(), g.out_w(), g.in_h * g.in_w);
    let mut index = 0;
    for c in 0..channels {
        let dxc = &mut dx[c * plane..(c + 1) * plane];
        for r in 0..g.kernel_h {
            for s in 0..g.kernel_w {
                let row = &col[index * ld..][..oh_n * ow_n];
                index += 1;
                let col_off = (s * g.dilation_w) as isize - g.pad_w as isize;
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
                        // Contiguous: a plain zip, which the compiler vectorises.
                        for (d, v) in dxrow[first..first + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += *v;
                        }
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
