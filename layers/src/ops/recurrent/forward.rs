//! The forward pass: per layer and direction, the input projections of all steps as one
//! GEMM, then the recurrence (one GEMM and one cell kernel per step).

use super::saved::{read_write, sized, swap_leading, DirSaved, Saved};
use super::{Recurrent, Roles};
use crate::op::{Op, OpCtx, OpState, Outputs};
use crate::tensor::ValueRef;
use crate::LayerError;
use simdnn_kernels::gemm::{sgemm, Epilogue, MatMut, MatRef};
use simdnn_kernels::rnn::{step_forward, Cell, ForwardStep, StepShape};

pub(super) fn run(
    op: &Recurrent,
    cx: &OpCtx,
    inputs: &[ValueRef],
    outputs: &mut Outputs,
    state: &mut OpState,
) -> Result<(), LayerError> {
    let roles = op.roles(inputs.iter().map(ValueRef::dtype))?;
    let x = inputs[0].f32(|| op.describe())?;
    let (t_len, n) = op.time_batch(x.shape)?;
    let spec = op.spec;
    let (h, dirs) = (spec.hidden, spec.directions());
    let saved = state.prepared::<Saved>();
    saved.steps = t_len;
    saved.batch = n;
    read_lengths(op, inputs, roles, t_len, n, &mut saved.active)?;
    let state_len = spec.layers * dirs * n * h;
    let initial = |k: Option<usize>| -> Result<Option<&[f32]>, LayerError> {
        k.map(|k| inputs[k].f32(|| op.describe()).map(|t| t.data)).transpose()
    };
    let (h0, c0) = (initial(roles.h0)?, initial(roles.c0)?);

    let x_tm: &[f32] = if spec.batch_first {
        swap_leading(x.data, n, t_len, spec.input, sized(&mut saved.x_time_major, x.data.len()));
        &saved.x_time_major
    } else {
        x.data
    };
    saved.dirs.resize_with(spec.layers * dirs, DirSaved::default);
    saved.layer_out.resize_with(spec.layers, Vec::new);
    let (y_out, finals) = outputs.split_at_mut(1);
    let y_out = &mut y_out[0];
    y_out.resize(&op.output_shape(t_len, n));
    for f in finals.iter_mut() {
        f.resize(&op.state_shape(n));
    }
    let out_len = t_len * n * dirs * h;
    let Saved { dirs: dir_saved, layer_out, active, bias, .. } = saved;
    for l in 0..spec.layers {
        let (below, this) = layer_out.split_at_mut(l);
        let input = if l == 0 { x_tm } else { &below[l - 1][..] };
        let direct = l + 1 == spec.layers && !spec.batch_first;
        let y: &mut [f32] = if direct { y_out.data_mut() } else { sized(&mut this[0], out_len) };
        for d in 0..dirs {
            let k = l * dirs + d;
            let part = k * n * h..(k + 1) * n * h;
            let (h0, c0) = (h0.map(|s| &s[part.clone()]), c0.map(|s| &s[part.clone()]));
            let run = DirRun { op, cx, k, reverse: d == 1, t_len, n, active };
            run.forward(&mut dir_saved[k], bias, input, h0, c0, y)?;
            let final_slot = if d == 1 { 0 } else { t_len };
            let ds = &dir_saved[k];
            finals[0].data_mut()[k * n * h..][..n * h].copy_from_slice(&ds.hs[final_slot * n * h..][..n * h]);
            if spec.cell == Cell::Lstm {
                finals[1].data_mut()[k * n * h..][..n * h].copy_from_slice(&ds.cs[final_slot * n * h..][..n * h]);
            }
        }
    }
    debug_assert_eq!(finals.iter().map(|f| f.len()).sum::<usize>(), state_len * op.states());
    if spec.batch_first {
        swap_leading(&layer_out[spec.layers - 1], t_len, n, dirs * h, y_out.data_mut());
    }
    Ok(())
}

/// Checks the lengths (1 to T each) and marks which rows are inside their sequence at each
/// step; no lengths, no marks.
fn read_lengths(
    op: &Recurrent,
    inputs: &[ValueRef],
    roles: Roles,
    t_len: usize,
    n: usize,
    active: &mut Vec<bool>,
) -> Result<(), LayerError> {
    active.clear();
    let Some(k) = roles.lengths else { return Ok(()) };
    let lengths = inputs[k].int(|| op.describe())?;
    if let Some(&bad) = lengths.data.iter().find(|&&len| len < 1 || len as u64 > t_len as u64) {
        return Err(LayerError::BadIndices {
            what: "sequence lengths",
            problem: format!("a length of {bad} where each must be from 1 to the padded length T = {t_len}"),
        });
    }
    active.extend((0..t_len).flat_map(|t| lengths.data.iter().map(move |&len| (t as i64) < len)));
    debug_assert_eq!(active.len(), t_len * n);
    Ok(())
}

/// One layer and direction of a call.
pub(super) struct DirRun<'a> {
    pub op: &'a Recurrent,
    pub cx: &'a OpCtx<'a>,
    /// `layer * directions + direction`.
    pub k: usize,
    pub reverse: bool,
    pub t_len: usize,
    pub n: usize,
    pub active: &'a [bool],
}

impl DirRun<'_> {
    /// The step order: 0..T forward, T-1..0 in reverse.
    pub fn time(&self, s: usize) -> usize {
        if self.reverse {
            self.t_len - 1 - s
        } else {
            s
        }
    }

    pub fn shape(&self, t: usize) -> StepShape<'_> {
        let spec = &self.op.spec;
        let dh = spec.directions() * spec.hidden;
        StepShape {
            cell: spec.cell,
            rows: self.n,
            hidden: spec.hidden,
            active: if self.active.is_empty() { &[] } else { &self.active[t * self.n..][..self.n] },
            y_stride: dh,
            y_offset: self.reverse as usize * spec.hidden,
        }
    }

    fn forward(
        &self,
        saved: &mut DirSaved,
        bias: &mut Vec<f32>,
        x: &[f32],
        h0: Option<&[f32]>,
        c0: Option<&[f32]>,
        y: &mut [f32],
    ) -> Result<(), LayerError> {
        let (cx, spec, w) = (self.cx, &self.op.spec, self.op.weights[self.k]);
        let (t_len, n, h) = (self.t_len, self.n, spec.hidden);
        let gh = spec.cell.gates() * h;
        let rows = t_len * n;
        let (b_ih, b_hh) = (cx.param(w.b_ih).data(), cx.param(w.b_hh).data());
        // The input projections of every step; the cells that add the two biases take both
        // here, the GRU keeps b_hh inside its recurrent product.
        let b: &[f32] = if spec.cell.separate_recurrent() {
            b_ih
        } else {
            let b = sized(bias, gh);
            b.iter_mut().zip(b_ih.iter().zip(b_hh)).for_each(|(s, (a, c))| *s = a + c);
            b
        };
        let gates = sized(&mut saved.gates, rows * gh);
        let w_ih = MatRef::new(cx.param(w.w_ih).data(), gh, w.fin, w.fin)?;
        sgemm(
            cx.cfg(),
            1.0,
            MatRef::new(x, rows, w.fin, w.fin)?,
            w_ih.t(),
            0.0,
            MatMut::new(gates, rows, gh, gh)?,
            Epilogue::bias_per_col(b),
        )?;
        let init = |s: &mut Vec<f32>, v: Option<&[f32]>| {
            let slots = sized(s, (t_len + 1) * n * h);
            let first = if self.reverse { t_len } else { 0 };
            let dst = &mut slots[first * n * h..][..n * h];
            match v {
                Some(v) => dst.copy_from_slice(v),
                None => dst.fill(0.0),
            }
        };
        init(&mut saved.hs, h0);
        let lstm = spec.cell == Cell::Lstm;
        if lstm {
            init(&mut saved.cs, c0);
        }
        // The GRU keeps every step's recurrent products for backward; the other cells take
        // them in a buffer of one step, hot in cache (adding them into the step's slice of
        // the large gate array read that slice from memory first).
        let gru = spec.cell.separate_recurrent();
        sized(&mut saved.rec, if gru { rows * gh } else { n * gh });
        let w_hh = MatRef::new(cx.param(w.w_hh).data(), gh, h, h)?.t();
        let dh = spec.directions() * h;
        for s in 0..t_len {
            let t = self.time(s);
            let (read, write) = DirSaved::slots(t, self.reverse);
            let (h_prev, h_new) = read_write(&mut saved.hs, n * h, read, write);
            let g_t = &mut saved.gates[t * n * gh..][..n * gh];
            let a = MatRef::new(h_prev, n, h, h)?;
            // Without an initial state the first step's recurrent product is zero.
            let zero_state = s == 0 && h0.is_none();
            let rec: &[f32] = if gru {
                let r = &mut saved.rec[t * n * gh..][..n * gh];
                if zero_state {
                    r.chunks_exact_mut(gh).for_each(|row| row.copy_from_slice(b_hh));
                } else {
                    let c = MatMut::new(r, n, gh, gh)?;
                    saved.forward_weights.product(cx, w.w_hh, w_hh, a, 0.0, c, Epilogue::bias_per_col(b_hh))?;
                }
                r
            } else if zero_state {
                &[]
            } else {
                let c = MatMut::new(&mut saved.rec, n, gh, gh)?;
                saved.forward_weights.product(cx, w.w_hh, w_hh, a, 0.0, c, Epilogue::NONE)?;
                &saved.rec
            };
            let (c_prev, c_new) =
                if lstm { read_write(&mut saved.cs, n * h, read, write) } else { (&[][..], &mut [][..]) };
            let io =
                ForwardStep { gates: g_t, rec, h_prev, c_prev, c: c_new, h: h_new, y: &mut y[t * n * dh..][..n * dh] };
            step_forward(cx.cfg(), self.shape(t), io)?;
        }
        Ok(())
    }
}
