//! Row-wise softmax and log-softmax, numerically stable (the row maximum is subtracted
//! before exponentiating), and the softmax backward pass.

use super::math::exp;
use crate::isa::{Simd, WithSimd};

/// Softmax (or log-softmax) of each `cols`-long row of `x` into `y`.
pub(crate) struct SoftmaxOp<'a> {
    pub cols: usize,
    pub log: bool,
    pub x: &'a [f32],
    pub y: &'a mut [f32],
}

impl WithSimd for SoftmaxOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let SoftmaxOp { cols, log, x, y } = self;
        let lanes = S::LANES;
        let body = cols - cols % lanes;
        let tail = cols - body;
        for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
            // SAFETY (all loads and stores below): offsets < body step by lanes within the
            // row; the tail covers cols - body elements.
            unsafe {
                // Row maximum: full vectors, then the tail in scalars.
                let mut m = s.splat(f32::NEG_INFINITY);
                let mut i = 0;
                while i < body {
                    m = s.max(m, s.load(xr.as_ptr().add(i)));
                    i += lanes;
                }
                let mut row_max = s.hmax(m);
                for &v in &xr[body..] {
                    row_max = row_max.max(v);
                }
                let mv = s.splat(row_max);
                // e^(x - max), stored, and summed.
                let mut sum = s.zero();
                let mut i = 0;
                while i < body {
                    let e = exp(s, s.sub(s.load(xr.as_ptr().add(i)), mv));
                    sum = s.add(sum, e);
                    if !log {
                        s.store(yr.as_mut_ptr().add(i), e);
                    }
                    i += lanes;
                }
                let mut total = s.hsum(sum);
                if tail > 0 {
                    let e = exp(s, s.sub(s.load_partial(xr.as_ptr().add(body), tail), mv));
                    let mut buf = [0.0f32; 16]; // LANES <= 16
                    s.store(buf.as_mut_ptr(), e);
                    total += buf[..tail].iter().sum::<f32>();
                    if !log {
                        s.store_partial(yr.as_mut_ptr().add(body), tail, e);
                    }
                }
                if log {
                    // log softmax = x - max - log(sum e^(x - max)).
                    let shift = s.splat(row_max + total.ln());
                    let mut i = 0;
                    while i < body {
                        s.store(yr.as_mut_ptr().add(i), s.sub(s.load(xr.as_ptr().add(i)), shift));
                        i += lanes;
                    }
                    for (o, &v) in yr[body..].iter_mut().zip(&xr[body..]) {
                        *o = v - (row_max + total.ln());
                    }
                } else {
                    let inv = s.splat(1.0 / total);
                    let mut i = 0;
                    while i < body {
                        s.store(yr.as_mut_ptr().add(i), s.mul(s.load(yr.as_ptr().add(i)), inv));
                        i += lanes;
                    }
                    for o in &mut yr[body..] {
                        *o /= total;
                    }
                }
            }
        }
    }
}
