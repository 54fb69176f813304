//! The optimizers' parameter updates, vectorised and split across threads. Each is one
//! memory-bound pass over a parameter, its gradient and the optimizer's state: on a VGG's
//! 100-million-value classifier the update costs as much as the layer's backward pass, so
//! it gets a kernel like any other.

use crate::gemm::GemmConfig;
use crate::isa::{instances, Instance, Simd, WithSimd};
use crate::threading::{for_each_task, DisjointChunks};
use crate::{conv::Conv2dGeom, KernelError};

/// One Adam step's constants (Kingma & Ba 2015, with L2 or decoupled decay):
/// `g' = g + l2 w`, `m = b1 m + (1 - b1) g'`, `v = b2 v + (1 - b2) g'^2`,
/// `w = decay w - step m / (sqrt(v) inv_sqrt_correct2 + eps)`, where `step` is the learning
/// rate over the first moment's bias correction and `inv_sqrt_correct2 = 1 / sqrt(1 -
/// b2^t)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub step: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub inv_sqrt_correct2: f32,
    pub l2: f32,
    pub decay: f32,
}

/// One SGD step's constants (PyTorch's formulation): `g' = g + wd w`; without momentum
/// `w -= lr g'`; with it `v = mu v + g'`, `w -= lr (nesterov ? g' + mu v : v)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
}

/// Below this many values an update runs on one thread (waking a helper costs more).
const MIN_PARALLEL: usize = 1 << 16;

struct AdamOp<'a> {
    h: AdamStep,
    w: &'a mut [f32],
    g: &'a [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
}

impl WithSimd for AdamOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let AdamOp { h, w, g, m, v } = self;
        let len = w.len().min(g.len()).min(m.len()).min(v.len());
        let (b1, b2, c1, c2) = (s.splat(h.beta1), s.splat(h.beta2), s.splat(1.0 - h.beta1), s.splat(1.0 - h.beta2));
        let (step, eps, corr, l2, decay) =
            (s.splat(h.step), s.splat(h.eps), s.splat(h.inv_sqrt_correct2), s.splat(h.l2), s.splat(h.decay));
        let mut i = 0;
        while i < len {
            let n = (len - i).min(S::LANES);
            // SAFETY: n values from i lie within all four slices (len is their minimum).
            unsafe {
                let (wp, mp, vp) = (w.as_mut_ptr().add(i), m.as_mut_ptr().add(i), v.as_mut_ptr().add(i));
                let wv = s.load_upto(wp, n);
                let gv = s.fma(l2, wv, s.load_upto(g.as_ptr().add(i), n));
                let mv = s.fma(b1, s.load_upto(mp, n), s.mul(c1, gv));
                let vv = s.fma(b2, s.load_upto(vp, n), s.mul(c2, s.mul(gv, gv)));
                let denom = s.fma(s.sqrt(vv), corr, eps);
                let wn = s.sub(s.mul(decay, wv), s.div(s.mul(step, mv), denom));
                s.store_upto(wp, n, wn);
                s.store_upto(mp, n, mv);
                s.store_upto(vp, n, vv);
            }
            i += S::LANES;
        }
    }
}

struct SgdOp<'a> {
    h: SgdStep,
    w: &'a mut [f32],
    g: &'a [f32],
    /// Empty without momentum.
    velocity: &'a mut [f32],
}

impl WithSimd for SgdOp<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let SgdOp { h, w, g, velocity } = self;
        let len = w.len().min(g.len());
        let (lr, mu, wd) = (s.splat(h.lr), s.splat(h.momentum), s.splat(h.weight_decay));
        let momentum = !velocity.is_empty();
        let mut i = 0;
        while i < len {
            let n = (len - i).min(S::LANES);
            // SAFETY: n values from i lie within w and g, and within velocity when it is
            // used (the caller gives it w's length).
            unsafe {
                let wp = w.as_mut_ptr().add(i);
                let wv = s.load_upto(wp, n);
                let gv = s.fma(wd, wv, s.load_upto(g.as_ptr().add(i), n));
                let delta = if momentum {
                    let vp = velocity.as_mut_ptr().add(i);
                    let vv = s.fma(mu, s.load_upto(vp, n), gv);
                    s.store_upto(vp, n, vv);
                    if h.nesterov {
                        s.fma(mu, vv, gv)
                    } else {
                        vv
                    }
                } else {
                    gv
                };
                s.store_upto(wp, n, s.sub(wv, s.mul(lr, delta)));
            }
            i += S::LANES;
        }
    }
}

instances! {
    /// One Adam step over a parameter.
    fn(AdamOp<'_>) => f32_adam_portable, f32_adam_avx2, f32_adam_avx512;
    /// One SGD step over a parameter.
    fn(SgdOp<'_>) => f32_sgd_portable, f32_sgd_avx2, f32_sgd_avx512;
}

/// The named kernels of the optimizer updates.
pub(crate) const KERNELS: &[&[Instance]] = &[INSTANCES];

/// Threads and values per task for an update of `len` values.
fn split(cfg: &GemmConfig, len: usize) -> (usize, usize) {
    let threads = if len < MIN_PARALLEL { 1 } else { cfg.threads().min(len / MIN_PARALLEL).max(1) };
    // Whole vectors per task, so only the last task has a tail.
    (threads, len.div_ceil(threads).div_ceil(16).max(1) * 16)
}

/// One Adam step over parameter `w` with gradient `g` and moments `m`, `v` (all of one
/// length), updated in place.
pub fn adam_update(
    cfg: &GemmConfig,
    h: &AdamStep,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) -> Result<(), KernelError> {
    for (what, n) in [("gradient", g.len()), ("first moment", m.len()), ("second moment", v.len())] {
        Conv2dGeom::check_len(what, w.len(), n)?;
    }
    let (threads, per_task) = split(cfg, w.len());
    let (ws, ms, vs) =
        (DisjointChunks::new(w, per_task), DisjointChunks::new(m, per_task), DisjointChunks::new(v, per_task));
    for_each_task(threads, ws.len(), |i| {
        // SAFETY: `for_each_task` runs each index once, so each chunk is taken once.
        let (w, m, v) = unsafe { (ws.take(i), ms.take(i), vs.take(i)) };
        let g = &g[i * per_task..][..w.len()];
        cfg.run(AdamOp { h: *h, w, g, m, v });
    });
    Ok(())
}

/// One SGD step over parameter `w` with gradient `g`; `velocity` (the momentum buffer,
/// `w`'s length) is updated when `h.momentum > 0` and may be empty otherwise.
pub fn sgd_update(
    cfg: &GemmConfig,
    h: &SgdStep,
    w: &mut [f32],
    g: &[f32],
    velocity: &mut [f32],
) -> Result<(), KernelError> {
    Conv2dGeom::check_len("gradient", w.len(), g.len())?;
    let momentum = h.momentum != 0.0;
    if momentum {
        Conv2dGeom::check_len("velocity", w.len(), velocity.len())?;
    }
    let (threads, per_task) = split(cfg, w.len());
    let ws = DisjointChunks::new(w, per_task);
    let vs = DisjointChunks::new(if momentum { velocity } else { &mut [] }, per_task);
    for_each_task(threads, ws.len(), |i| {
        // SAFETY: `for_each_task` runs each index once, so each chunk is taken once.
        let (w, velocity) = unsafe { (ws.take(i), vs.take(i)) };
        let g = &g[i * per_task..][..w.len()];
        cfg.run(SgdOp { h: *h, w, g, velocity });
    });
    Ok(())
}
