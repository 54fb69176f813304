//! The frame that maps an elementwise function over slices: full vectors through the
//! body, the remainder through one masked vector.

use crate::isa::{Simd, WithSimd};

/// An elementwise function of one vector.
pub(crate) trait Unary: Copy {
    fn apply<S: Simd>(self, s: S, x: S::V) -> S::V;
}

/// An elementwise function of two vectors (backward passes: the saved value and `dy`).
pub(crate) trait Binary: Copy {
    fn apply<S: Simd>(self, s: S, a: S::V, b: S::V) -> S::V;
}

/// `y[i] = f(x[i])`; `x` and `y` have the same length.
pub(crate) struct MapOp<'a, F> {
    pub f: F,
    pub x: &'a [f32],
    pub y: &'a mut [f32],
}

impl<F: Unary> WithSimd for MapOp<'_, F> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let MapOp { f, x, y } = self;
        let (len, lanes) = (x.len().min(y.len()), S::LANES);
        let body = len - len % lanes;
        let mut i = 0;
        // SAFETY: i + lanes <= body <= len for both slices; the tail reads len - body.
        unsafe {
            while i < body {
                s.store(y.as_mut_ptr().add(i), f.apply(s, s.load(x.as_ptr().add(i))));
                i += lanes;
            }
            if body < len {
                let v = f.apply(s, s.load_partial(x.as_ptr().add(body), len - body));
                s.store_partial(y.as_mut_ptr().add(body), len - body, v);
            }
        }
    }
}

/// `y[i] = f(a[i], b[i])`; all three have the same length.
pub(crate) struct ZipOp<'a, F> {
    pub f: F,
    pub a: &'a [f32],
    pub b: &'a [f32],
    pub y: &'a mut [f32],
}

impl<F: Binary> WithSimd for ZipOp<'_, F> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let ZipOp { f, a, b, y } = self;
        let (len, lanes) = (a.len().min(b.len()).min(y.len()), S::LANES);
        let body = len - len % lanes;
        let mut i = 0;
        // SAFETY: as in MapOp, for three slices.
        unsafe {
            while i < body {
                let v = f.apply(s, s.load(a.as_ptr().add(i)), s.load(b.as_ptr().add(i)));
                s.store(y.as_mut_ptr().add(i), v);
                i += lanes;
            }
            if body < len {
                let n = len - body;
                let v = f.apply(s, s.load_partial(a.as_ptr().add(body), n), s.load_partial(b.as_ptr().add(body), n));
                s.store_partial(y.as_mut_ptr().add(body), n, v);
            }
        }
    }
}
