//! Backpropagation through time: per layer (last first) and direction, the steps in
//! reverse, one cell kernel and one GEMM (`dh' += d_gates W_hh`) each; then the weight
//! gradients and the input gradient as GEMMs over all steps at once.

use super::forward::DirRun;
use super::saved::{sized, swap_leading, DirSaved, Saved};
use super::Recurrent;
use crate::op::{Backward, Op, OpCtx};
use crate::tensor::ValueRef;
use crate::LayerError;
use simdnn_kernels::gemm::{sgemm, Epilogue, MatMut, MatRef};
use simdnn_kernels::rnn::{step_backward, BackwardStep, Cell};

pub(super) fn run(op: &Recurrent, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
    let roles = op.roles(io.inputs.iter().map(ValueRef::dtype))?;
    let x = io.inputs[0].f32(|| op.describe())?;
    let spec = op.spec;
    let (h, dirs, layers) = (spec.hidden, spec.directions(), spec.layers);
    let saved = io.state.prepared::<Saved>();
    let (t_len, n) = (saved.steps, saved.batch);
    if op.time_batch(x.shape)? != (t_len, n) || saved.dirs.len() != layers * dirs {
        return Err(LayerError::GradShape { layer: op.describe(), expected: x.shape.to_vec(), got: vec![t_len, n] });
    }
    let out_len = t_len * n * dirs * h;
    let Saved {
        x_time_major, active, dirs: dir_saved, layer_out, d_gates, d_rec, dh, dh_prev, dc, d_out, d_in, ..
    } = saved;
    let x_tm: &[f32] = if spec.batch_first { x_time_major } else { x.data };
    // The gradient of the last layer's output, time-major.
    let dy = io.d_outputs[0].data;
    if spec.batch_first {
        swap_leading(dy, n, t_len, dirs * h, sized(d_out, out_len));
    } else {
        sized(d_out, out_len).copy_from_slice(dy);
    }
    let mut d_h0 = roles.h0.and_then(|k| io.d_inputs[k].take());
    let mut d_c0 = roles.c0.and_then(|k| io.d_inputs[k].take());
    for t in [d_h0.as_deref_mut(), d_c0.as_deref_mut()].into_iter().flatten() {
        t.resize(&op.state_shape(n));
    }
    let want_dx = io.d_inputs[0].is_some();
    for l in (0..layers).rev() {
        let input: &[f32] = if l == 0 { x_tm } else { &layer_out[l - 1] };
        let fin = op.weights[l * dirs].fin;
        let need_d_in = l > 0 || want_dx;
        if need_d_in {
            sized(d_in, t_len * n * fin);
        }
        for d in 0..dirs {
            let k = l * dirs + d;
            let run = DirRun { op, cx, k, reverse: d == 1, t_len, n, active };
            let dh_n = &io.d_outputs[1].data[k * n * h..][..n * h];
            let dc_n = if spec.cell == Cell::Lstm { &io.d_outputs[2].data[k * n * h..][..n * h] } else { &[][..] };
            let scratch = Scratch { d_gates, d_rec, dh, dh_prev, dc };
            let need_dh0 = d_h0.is_some() || d_c0.is_some();
            run.backward(&mut dir_saved[k], scratch, d_out, dh_n, dc_n, need_dh0)?;
            if let Some(t) = d_h0.as_deref_mut() {
                t.data_mut()[k * n * h..][..n * h].copy_from_slice(dh);
            }
            if let Some(t) = d_c0.as_deref_mut() {
                t.data_mut()[k * n * h..][..n * h].copy_from_slice(dc);
            }
            run.weight_grads(&dir_saved[k], io.grads, d_gates, d_rec, input)?;
            if need_d_in {
                // dx (+)= d_gates W_ih over all steps at once.
                let w = op.weights[k];
                let gh = spec.cell.gates() * h;
                sgemm(
                    cx.cfg(),
                    1.0,
                    MatRef::new(d_gates, t_len * n, gh, gh)?,
                    MatRef::new(cx.param(w.w_ih).data(), gh, fin, fin)?,
                    if d == 0 { 0.0 } else { 1.0 },
                    MatMut::new(d_in, t_len * n, fin, fin)?,
                    Epilogue::NONE,
                )?;
            }
        }
        if need_d_in {
            std::mem::swap(d_in, d_out);
        }
    }
    if let Some(dx) = io.d_inputs[0].as_deref_mut() {
        dx.resize(x.shape);
        if spec.batch_first {
            swap_leading(d_out, t_len, n, spec.input, dx.data_mut());
        } else {
            dx.data_mut().copy_from_slice(d_out);
        }
    }
    Ok(())
}

/// The backward scratch of one layer and direction.
struct Scratch<'a> {
    d_gates: &'a mut Vec<f32>,
    d_rec: &'a mut Vec<f32>,
    dh: &'a mut Vec<f32>,
    dh_prev: &'a mut Vec<f32>,
    dc: &'a mut Vec<f32>,
}

impl DirRun<'_> {
    /// Runs the steps in reverse from the final states' gradients `dh_n`, `dc_n`, with the
    /// layer's output gradient `dy` (`[T, N, D*H]`): leaves every step's gate gradients in
    /// `d_gates` (and the GRU's recurrent ones in `d_rec`), and, with `need_dh0`, the initial
    /// states' gradients in `dh` and `dc`.
    fn backward(
        &self,
        saved: &mut DirSaved,
        s: Scratch,
        dy: &[f32],
        dh_n: &[f32],
        dc_n: &[f32],
        need_dh0: bool,
    ) -> Result<(), LayerError> {
        let (cx, spec, w) = (self.cx, &self.op.spec, self.op.weights[self.k]);
        let (t_len, n, h) = (self.t_len, self.n, spec.hidden);
        let gh = spec.cell.gates() * h;
        let (lstm, gru) = (spec.cell == Cell::Lstm, spec.cell.separate_recurrent());
        let d_gates = sized(s.d_gates, t_len * n * gh);
        let d_rec = if gru { sized(s.d_rec, t_len * n * gh) } else { &mut [][..] };
        sized(s.dh, n * h).copy_from_slice(dh_n);
        sized(s.dh_prev, n * h);
        if lstm {
            sized(s.dc, n * h).copy_from_slice(dc_n);
        } else {
            s.dc.clear();
        }
        let w_hh = MatRef::new(cx.param(w.w_hh).data(), gh, h, h)?;
        let dh_stride = spec.directions() * h;
        for step in (0..t_len).rev() {
            let t = self.time(step);
            let (read, write) = DirSaved::slots(t, self.reverse);
            fn at(v: &[f32], slot: usize, len: usize) -> &[f32] {
                &v[slot * len..][..len]
            }
            let (h_prev, h_new) = (at(&saved.hs, read, n * h), at(&saved.hs, write, n * h));
            let (c_prev, c_new) =
                if lstm { (at(&saved.cs, read, n * h), at(&saved.cs, write, n * h)) } else { (&[][..], &[][..]) };
            let g = t * n * gh..(t + 1) * n * gh;
            let io = BackwardStep {
                gates: &saved.gates[g.clone()],
                rec: if gru { &saved.rec[g.clone()] } else { &[] },
                h_prev,
                c_prev,
                c: c_new,
                h: h_new,
                dh_next: s.dh,
                dy: &dy[t * n * dh_stride..][..n * dh_stride],
                dc: s.dc,
                d_gates: &mut d_gates[g.clone()],
                d_rec: if gru { &mut d_rec[g.clone()] } else { &mut [] },
                dh_prev: s.dh_prev,
            };
            step_backward(cx.cfg(), self.shape(t), io)?;
            // dh' += (recurrent) d_gates W_hh; the initial state's only when asked for.
            if step > 0 || need_dh0 {
                let dg: &[f32] = if gru { &d_rec[g] } else { &d_gates[g] };
                let a = MatRef::new(dg, n, gh, gh)?;
                let c = MatMut::new(s.dh_prev, n, h, h)?;
                saved.backward_weights.product(cx, w.w_hh, w_hh, a, 1.0, c, Epilogue::NONE)?;
            }
            std::mem::swap(s.dh, s.dh_prev);
        }
        Ok(())
    }

    /// Adds the weight gradients of all steps at once: `dW_ih += d_gates^T x`,
    /// `dW_hh += d_rec^T h'`, and the biases' column sums.
    fn weight_grads(
        &self,
        saved: &DirSaved,
        grads: &mut crate::Grads,
        d_gates: &[f32],
        d_rec: &[f32],
        x: &[f32],
    ) -> Result<(), LayerError> {
        let (cx, spec, w) = (self.cx, &self.op.spec, self.op.weights[self.k]);
        let (rows, h) = (self.t_len * self.n, spec.hidden);
        let gh = spec.cell.gates() * h;
        let d_rec = if spec.cell.separate_recurrent() { &d_rec[..rows * gh] } else { &d_gates[..rows * gh] };
        let d_gates = &d_gates[..rows * gh];
        if let Some(g) = grads.get_mut(w.w_ih) {
            let dw = MatMut::new(g.data_mut(), gh, w.fin, w.fin)?;
            let a = MatRef::new(d_gates, rows, gh, gh)?.t();
            sgemm(cx.cfg(), 1.0, a, MatRef::new(x, rows, w.fin, w.fin)?, 1.0, dw, Epilogue::NONE)?;
        }
        if let Some(g) = grads.get_mut(w.w_hh) {
            // h' of step t is slot t (forward) or t + 1 (reverse): T consecutive slots.
            let first = self.reverse as usize;
            let h_prev = &saved.hs[first * self.n * h..][..rows * h];
            let dw = MatMut::new(g.data_mut(), gh, h, h)?;
            let a = MatRef::new(d_rec, rows, gh, gh)?.t();
            sgemm(cx.cfg(), 1.0, a, MatRef::new(h_prev, rows, h, h)?, 1.0, dw, Epilogue::NONE)?;
        }
        for (id, d) in [(w.b_ih, d_gates), (w.b_hh, d_rec)] {
            if let Some(g) = grads.get_mut(id) {
                let db = g.data_mut();
                for row in d.chunks_exact(gh) {
                    db.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                }
            }
        }
        Ok(())
    }
}
