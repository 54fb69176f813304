//! The step kernels: one pass over each row's gate blocks, a vector of units at a time.

use super::{BackwardStep, Cell, ForwardStep, StepShape};
use crate::eltwise::math::{gate_sigmoid as sigmoid, gate_tanh as tanh};
use crate::isa::{instances, Simd, WithSimd};

pub(super) struct StepForward<'a> {
    pub shape: StepShape<'a>,
    pub io: ForwardStep<'a>,
}

pub(super) struct StepBackward<'a> {
    pub shape: StepShape<'a>,
    pub io: BackwardStep<'a>,
}

instances! {
    /// One recurrent step forward: gate nonlinearities and the state update.
    fn(StepForward<'_>) => f32_rnn_step_forward_portable, f32_rnn_step_forward_avx2, f32_rnn_step_forward_avx512;
    /// One recurrent step backward: the gates' pre-activation gradients.
    fn(StepBackward<'_>) => f32_rnn_step_backward_portable, f32_rnn_step_backward_avx2, f32_rnn_step_backward_avx512;
}

/// A gate's pre-activation at `at`: the input part, plus the recurrent part when the step
/// keeps it apart.
///
/// # Safety
/// `g + at` (and `r + at` with `has_rec`) must be valid for reading `n` values.
#[inline(always)]
unsafe fn pre_activation<S: Simd>(s: S, g: *const f32, r: *const f32, has_rec: bool, at: usize, n: usize) -> S::V {
    // SAFETY: forwarded contract.
    unsafe {
        let x = s.load_upto(g.add(at), n);
        if has_rec {
            s.add(x, s.load_upto(r.add(at), n))
        } else {
            x
        }
    }
}

impl WithSimd for StepForward<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let StepForward { shape, io } = self;
        let (h, gh) = (shape.hidden, shape.cell.gates() * shape.hidden);
        for r in 0..shape.rows {
            let g = &mut io.gates[r * gh..][..gh];
            let hp = &io.h_prev[r * h..][..h];
            let ho = &mut io.h[r * h..][..h];
            let y = &mut io.y[r * shape.y_stride + shape.y_offset..][..h];
            let lstm = shape.cell == Cell::Lstm;
            if shape.active.get(r) == Some(&false) {
                g.fill(0.0);
                ho.copy_from_slice(hp);
                y.fill(0.0);
                if lstm {
                    io.c[r * h..][..h].copy_from_slice(&io.c_prev[r * h..][..h]);
                }
                continue;
            }
            let gp = g.as_mut_ptr();
            let has_rec = !io.rec.is_empty();
            let rp = if has_rec { io.rec[r * gh..][..gh].as_ptr() } else { io.rec.as_ptr() };
            // SAFETY: every access is at j + (block) * h + n <= gh within a row whose length
            // step_forward checked (gates, rec: gh; h', h, c', c, y: h from the offsets above).
            unsafe {
                match shape.cell {
                    Cell::Tanh | Cell::Relu => {
                        let mut j = 0;
                        while j < h {
                            let n = S::LANES.min(h - j);
                            let pre = pre_activation(s, gp, rp, has_rec, j, n);
                            let a = if shape.cell == Cell::Tanh { tanh(s, pre) } else { s.max(pre, s.zero()) };
                            s.store_upto(gp.add(j), n, a);
                            s.store_upto(ho.as_mut_ptr().add(j), n, a);
                            s.store_upto(y.as_mut_ptr().add(j), n, a);
                            j += n;
                        }
                    }
                    Cell::Lstm => {
                        let cp = io.c_prev[r * h..][..h].as_ptr();
                        let co = io.c[r * h..][..h].as_mut_ptr();
                        for (block, act) in [(0, Act::Sigmoid), (1, Act::Sigmoid), (2, Act::Tanh), (3, Act::Sigmoid)] {
                            activate(s, gp, rp, has_rec, block * h, h, act);
                        }
                        let mut j = 0;
                        while j < h {
                            let n = S::LANES.min(h - j);
                            let i = s.load_upto(gp.add(j), n);
                            let f = s.load_upto(gp.add(h + j), n);
                            let gg = s.load_upto(gp.add(2 * h + j), n);
                            let o = s.load_upto(gp.add(3 * h + j), n);
                            let c = s.fma(f, s.load_upto(cp.add(j), n), s.mul(i, gg));
                            let hv = s.mul(o, tanh(s, c));
                            s.store_upto(co.add(j), n, c);
                            s.store_upto(ho.as_mut_ptr().add(j), n, hv);
                            s.store_upto(y.as_mut_ptr().add(j), n, hv);
                            j += n;
                        }
                    }
                    Cell::Gru => {
                        activate(s, gp, rp, true, 0, h, Act::Sigmoid);
                        activate(s, gp, rp, true, h, h, Act::Sigmoid);
                        let mut j = 0;
                        while j < h {
                            let n = S::LANES.min(h - j);
                            let rg = s.load_upto(gp.add(j), n);
                            let z = s.load_upto(gp.add(h + j), n);
                            let pre_n = s.fma(rg, s.load_upto(rp.add(2 * h + j), n), s.load_upto(gp.add(2 * h + j), n));
                            let nn = tanh(s, pre_n);
                            // h = (1 - z) n + z h' = n + z (h' - n)
                            let hv = s.fma(z, s.sub(s.load_upto(hp.as_ptr().add(j), n), nn), nn);
                            s.store_upto(gp.add(2 * h + j), n, nn);
                            s.store_upto(ho.as_mut_ptr().add(j), n, hv);
                            s.store_upto(y.as_mut_ptr().add(j), n, hv);
                            j += n;
                        }
                    }
                }
            }
        }
    }
}

/// A gate's activation function.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Sigmoid,
    Tanh,
}

/// Replaces the `h` pre-activations at `g + at` (plus `r + at` with `has_rec`) by their
/// activations: one gate block a pass, so that a pass holds one function's constants in
/// registers (AVX2's 16 do not hold five transcendentals' at once without spilling).
///
/// # Safety
/// `g + at` (and `r + at` with `has_rec`) must be valid for `h` values.
#[inline(always)]
unsafe fn activate<S: Simd>(s: S, g: *mut f32, r: *const f32, has_rec: bool, at: usize, h: usize, act: Act) {
    let mut j = 0;
    while j < h {
        let n = S::LANES.min(h - j);
        // SAFETY: at + j + n <= at + h, within the caller's contract.
        unsafe {
            let x = pre_activation(s, g, r, has_rec, at + j, n);
            let a = if act == Act::Sigmoid { sigmoid(s, x) } else { tanh(s, x) };
            s.store_upto(g.add(at + j), n, a);
        }
        j += n;
    }
}

impl WithSimd for StepBackward<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let StepBackward { shape, io } = self;
        let (h, gh) = (shape.hidden, shape.cell.gates() * shape.hidden);
        let one = s.splat(1.0);
        let gru = shape.cell == Cell::Gru;
        for r in 0..shape.rows {
            let dg = &mut io.d_gates[r * gh..][..gh];
            let dhn = &io.dh_next[r * h..][..h];
            let dhp = &mut io.dh_prev[r * h..][..h];
            if shape.active.get(r) == Some(&false) {
                dg.fill(0.0);
                if gru {
                    io.d_rec[r * gh..][..gh].fill(0.0);
                }
                dhp.copy_from_slice(dhn);
                continue;
            }
            let g = io.gates[r * gh..][..gh].as_ptr();
            let dy = io.dy[r * shape.y_stride + shape.y_offset..][..h].as_ptr();
            let dgp = dg.as_mut_ptr();
            let (dhn, dhpp) = (dhn.as_ptr(), dhp.as_mut_ptr());
            // SAFETY: as in StepForward: offsets within rows of checked lengths.
            unsafe {
                match shape.cell {
                    Cell::Tanh | Cell::Relu => {
                        let mut j = 0;
                        while j < h {
                            let n = S::LANES.min(h - j);
                            let dh = s.add(s.load_upto(dhn.add(j), n), s.load_upto(dy.add(j), n));
                            let a = s.load_upto(g.add(j), n);
                            let d = if shape.cell == Cell::Tanh {
                                s.mul(dh, s.sub(one, s.mul(a, a)))
                            } else {
                                s.select_gt(a, s.zero(), dh, s.zero())
                            };
                            s.store_upto(dgp.add(j), n, d);
                            s.store_upto(dhpp.add(j), n, s.zero());
                            j += n;
                        }
                    }
                    Cell::Lstm => {
                        let cp = io.c_prev[r * h..][..h].as_ptr();
                        let c = io.c[r * h..][..h].as_ptr();
                        let dc = io.dc[r * h..][..h].as_mut_ptr();
                        let mut j = 0;
                        while j < h {
                            let n = S::LANES.min(h - j);
                            let dh = s.add(s.load_upto(dhn.add(j), n), s.load_upto(dy.add(j), n));
                            let i = s.load_upto(g.add(j), n);
                            let f = s.load_upto(g.add(h + j), n);
                            let gg = s.load_upto(g.add(2 * h + j), n);
                            let o = s.load_upto(g.add(3 * h + j), n);
                            let tc = tanh(s, s.load_upto(c.add(j), n));
                            let d_o = s.mul(dh, tc);
                            let dcv = s.fma(s.mul(dh, o), s.sub(one, s.mul(tc, tc)), s.load_upto(dc.add(j), n));
                            let di = s.mul(dcv, gg);
                            let df = s.mul(dcv, s.load_upto(cp.add(j), n));
                            let dgg = s.mul(dcv, i);
                            s.store_upto(dgp.add(j), n, s.mul(di, s.mul(i, s.sub(one, i))));
                            s.store_upto(dgp.add(h + j), n, s.mul(df, s.mul(f, s.sub(one, f))));
                            s.store_upto(dgp.add(2 * h + j), n, s.mul(dgg, s.sub(one, s.mul(gg, gg))));
                            s.store_upto(dgp.add(3 * h + j), n, s.mul(d_o, s.mul(o, s.sub(one, o))));
                            s.store_upto(dc.add(j), n, s.mul(dcv, f));
                            s.store_upto(dhpp.add(j), n, s.zero());
                            j += n;
                        }
                    }
                    Cell::Gru => {
                        let rp = io.rec[r * gh..][..gh].as_ptr();
                        let drp = io.d_rec[r * gh..][..gh].as_mut_ptr();
                        let hp = io.h_prev[r * h..][..h].as_ptr();
                        let mut j = 0;
                        while j < h {
                            let n = S::LANES.min(h - j);
                            let dh = s.add(s.load_upto(dhn.add(j), n), s.load_upto(dy.add(j), n));
                            let rg = s.load_upto(g.add(j), n);
                            let z = s.load_upto(g.add(h + j), n);
                            let nn = s.load_upto(g.add(2 * h + j), n);
                            let dn = s.mul(dh, s.sub(one, z));
                            let dz = s.mul(dh, s.sub(s.load_upto(hp.add(j), n), nn));
                            let dn_pre = s.mul(dn, s.sub(one, s.mul(nn, nn)));
                            let dr = s.mul(dn_pre, s.load_upto(rp.add(2 * h + j), n));
                            let dr_pre = s.mul(dr, s.mul(rg, s.sub(one, rg)));
                            let dz_pre = s.mul(dz, s.mul(z, s.sub(one, z)));
                            s.store_upto(dgp.add(j), n, dr_pre);
                            s.store_upto(dgp.add(h + j), n, dz_pre);
                            s.store_upto(dgp.add(2 * h + j), n, dn_pre);
                            s.store_upto(drp.add(j), n, dr_pre);
                            s.store_upto(drp.add(h + j), n, dz_pre);
                            s.store_upto(drp.add(2 * h + j), n, s.mul(dn_pre, rg));
                            s.store_upto(dhpp.add(j), n, s.mul(dh, z));
                            j += n;
                        }
                    }
                }
            }
        }
    }
}
