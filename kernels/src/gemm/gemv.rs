//! Matrix-vector products: GEMMs with `m == 1` or `n == 1` (fully connected layers at batch
//! 1, recurrent cells, graph convolutions). Packing would only waste bandwidth here; the
//! kernel streams the matrix once, as dot products when its rows are contiguous or as
//! scaled column sums (axpy) when its columns are.

use super::loops::CPtr;
use super::matrix::MatRef;
use crate::isa::{instances, Simd, WithSimd};
use crate::scratch::{Scratch, Slot};
use crate::threading::{for_each_task, AlignedSplit};

/// The bias of the output vector: one value per element, or one for all.
#[derive(Clone, Copy)]
pub(crate) enum VecBias<'a> {
    None,
    Each(&'a [f32]),
    Same(f32),
}

/// The vector `x`'s base pointer; read-only, shared by all tasks.
#[derive(Clone, Copy)]
pub(crate) struct XPtr(pub *const f32);
// SAFETY: only read, while the caller's shared borrow of x lasts.
unsafe impl Send for XPtr {}
// SAFETY: as above.
unsafe impl Sync for XPtr {}

/// `y <- relu?(alpha * mat * x + beta * y + bias)` with `mat` of `rows x len`.
#[derive(Clone, Copy)]
pub(crate) struct Gemv<'a> {
    pub mat: MatRef<'a>,
    pub x: XPtr,
    pub x_stride: usize,
    pub y: CPtr,
    pub y_stride: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: VecBias<'a>,
    pub relu: bool,
    pub threads: usize,
}

impl Gemv<'_> {
    /// Writes the finished value of `y[i]`.
    ///
    /// # Safety
    /// `i < rows`, and no other thread writes `y[i]`.
    #[inline(always)]
    unsafe fn finish(&self, i: usize, dot: f32) {
        // SAFETY: y has rows elements y_stride apart (validated C).
        let y = unsafe { &mut *self.y.0.add(i * self.y_stride) };
        let mut v = self.alpha * dot;
        if self.beta != 0.0 {
            v += self.beta * *y;
        }
        v += match self.bias {
            VecBias::None => 0.0,
            VecBias::Each(b) => b[i],
            VecBias::Same(b) => b,
        };
        *y = if self.relu { v.max(0.0) } else { v };
    }
}

/// Below this many multiply-adds the work stays on one thread.
const MIN_MACS_PARALLEL: usize = 1 << 16;

pub(crate) struct GemvOp<'a>(pub Gemv<'a>);

impl WithSimd for GemvOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let g = self.0;
        let (rows, len) = (g.mat.rows(), g.mat.cols());
        let gather_len = if g.x_stride == 1 { 0 } else { len };
        let mut x_buf = Scratch::take(Slot::PackB, gather_len);
        let x: &[f32] = if g.x_stride == 1 {
            // SAFETY: x has len contiguous elements (validated B or A).
            unsafe { std::slice::from_raw_parts(g.x.0, len) }
        } else {
            for (p, v) in x_buf.iter_mut().enumerate() {
                // SAFETY: element p of x, x_stride apart, inside the validated view.
                *v = unsafe { *g.x.0.add(p * g.x_stride) };
            }
            &x_buf
        };
        let threads = if rows * len < MIN_MACS_PARALLEL { 1 } else { g.threads };
        let ranges = AlignedSplit::new(rows, threads, S::LANES);
        for_each_task(threads, ranges.len(), |t| {
            s.run(GemvRows { g: &g, x, rows: ranges.get(t) });
        });
    }
}

/// One thread's rows of the output vector.
struct GemvRows<'a, 'g> {
    g: &'g Gemv<'a>,
    x: &'g [f32],
    rows: (usize, usize),
}

instances! {
    /// One thread's rows of a matrix-vector product.
    fn(GemvRows<'_, '_>) => f32_gemv_portable, f32_gemv_avx2, f32_gemv_avx512;
}

impl WithSimd for GemvRows<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let GemvRows { g, x, rows: (r0, r1) } = self;
        let (rs, cs) = (g.mat.row_stride(), g.mat.col_stride());
        if cs == 1 {
            dot_rows(s, g, x, r0, r1);
        } else if rs == 1 {
            axpy_columns(s, g, x, r0, r1);
        } else {
            for i in r0..r1 {
                let dot: f32 = x.iter().enumerate().map(|(p, &xp)| g.mat.at(i, p) * xp).sum();
                // SAFETY: i is in this task's rows.
                unsafe { g.finish(i, dot) };
            }
        }
    }
}

/// Rows are contiguous: eight dot products at a time share each load of x.
#[inline(always)]
fn dot_rows<S: Simd>(s: S, g: &Gemv, x: &[f32], r0: usize, r1: usize) {
    const ROWS: usize = 8;
    let (len, lanes, rs) = (x.len(), S::LANES, g.mat.row_stride());
    let base = g.mat.as_ptr();
    let body = len - len % lanes;
    let mut i = r0;
    while i < r1 {
        let block = ROWS.min(r1 - i);
        let mut acc = [s.zero(); ROWS];
        // SAFETY: rows i..i+block of the validated matrix have len contiguous elements; x has len.
        unsafe {
            let row = |r: usize| base.add((i + r.min(block - 1)) * rs);
            let mut p = 0;
            while p < body {
                let xv = s.load(x.as_ptr().add(p));
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = s.fma(s.load(row(r).add(p)), xv, *a);
                }
                p += lanes;
            }
            if body < len {
                let xv = s.load_partial(x.as_ptr().add(body), len - body);
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = s.fma(s.load_partial(row(r).add(body), len - body), xv, *a);
                }
            }
            for (r, a) in acc.iter().enumerate().take(block) {
                g.finish(i + r, s.hsum(*a));
            }
        }
        i += block;
    }
}

/// Columns are contiguous: y[r0..r1] accumulates x[p] * column p, one column at a time.
#[inline(always)]
fn axpy_columns<S: Simd>(s: S, g: &Gemv, x: &[f32], r0: usize, r1: usize) {
    let (lanes, cs) = (S::LANES, g.mat.col_stride());
    let n = r1 - r0;
    let body = n - n % lanes;
    let mut acc = Scratch::take(Slot::Gemv, n);
    acc.fill(0.0);
    for (p, &xp) in x.iter().enumerate() {
        let xv = s.splat(xp);
        // SAFETY: column p, rows r0..r1, lies in the validated matrix; acc has n elements.
        unsafe {
            let col = g.mat.as_ptr().add(p * cs + r0);
            let mut r = 0;
            while r < body {
                let v = s.fma(s.load(col.add(r)), xv, s.load(acc.as_ptr().add(r)));
                s.store(acc.as_mut_ptr().add(r), v);
                r += lanes;
            }
            if body < n {
                let v = s.fma(
                    s.load_partial(col.add(body), n - body),
                    xv,
                    s.load_partial(acc.as_ptr().add(body), n - body),
                );
                s.store_partial(acc.as_mut_ptr().add(body), n - body, v);
            }
        }
    }
    for (r, &v) in acc.iter().enumerate() {
        // SAFETY: r0 + r is in this task's rows.
        unsafe { g.finish(r0 + r, v) };
    }
}
