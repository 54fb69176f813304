//! Fused recurrent layers over whole sequences: the simple RNN, the LSTM and the GRU, with
//! several layers, both directions, initial and final states, and padded batches of
//! sequences of different lengths. Weights in PyTorch's names, layouts and gate orders
//! (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `_reverse`), so its
//! checkpoints load as they are.
//!
//! Inputs, in order: `x` (`[T, N, F]`, or `[N, T, F]` batch-first), then optionally the
//! initial states `h0` (and the LSTM's `c0`), each `[layers * directions, N, H]`, then
//! optionally integer `lengths` (`[N]`, each from 1 to T). Outputs: `y` (`[T, N, D * H]`
//! or batch-first, zero past each sequence's end), the final states `h_n` (and `c_n`),
//! taken at each sequence's own end. T is read from `x` at run time: one model runs any
//! sequence length.
//!
//! The speed design (as oneDNN's and cuDNN's RNN primitives): the input projections of all
//! steps are one GEMM before the recurrence; each step is one GEMM of the recurrent
//! product of all gates, on weights packed once per call ([`PackedB`]), and one vectorised
//! kernel for the gates and the state update ([`simdnn_kernels::rnn`]); backward through
//! time runs the steps in reverse with one GEMM each, and the weight gradients are large
//! GEMMs over all steps after the loop. Nothing is allocated per step, nor per call once a
//! caller's state has its sizes.

mod backward;
mod forward;
mod saved;

use crate::init::Init;
use crate::op::{Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::{Fill, ParamId, ParamScope, Params};
use crate::tensor::{DType, ValueRef};
use crate::LayerError;
pub use simdnn_kernels::rnn::Cell;
use simdnn_kernels::KernelError;

/// The hyper-parameters of a [`Recurrent`] layer, set by the builder methods and turned
/// into a layer with its parameters by [`RecurrentSpec::build`].
#[derive(Clone, Copy, Debug)]
pub struct RecurrentSpec {
    pub cell: Cell,
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
    pub bidirectional: bool,
    pub batch_first: bool,
    /// The LSTM's initial forget-gate bias (`bias_ih` of the gate; `bias_hh` of it zero),
    /// or `None` for PyTorch's uniform draw. 1 keeps early gradients flowing (Gers et al.
    /// 2000; Jozefowicz et al. 2015).
    pub forget_bias: Option<f32>,
}

impl RecurrentSpec {
    pub fn new(cell: Cell, input: usize, hidden: usize) -> RecurrentSpec {
        RecurrentSpec { cell, input, hidden, layers: 1, bidirectional: false, batch_first: false, forget_bias: None }
    }
    pub fn layers(self, layers: usize) -> Self {
        RecurrentSpec { layers, ..self }
    }
    pub fn bidirectional(self, bidirectional: bool) -> Self {
        RecurrentSpec { bidirectional, ..self }
    }
    pub fn batch_first(self, batch_first: bool) -> Self {
        RecurrentSpec { batch_first, ..self }
    }
    pub fn forget_bias(self, value: f32) -> Self {
        RecurrentSpec { forget_bias: Some(value), ..self }
    }
    pub fn directions(&self) -> usize {
        1 + self.bidirectional as usize
    }

    /// The layer, creating its parameters in `p` (PyTorch's names; every weight and bias
    /// drawn from `U(-1/sqrt(H), 1/sqrt(H))`, as PyTorch does).
    pub fn build(self, p: &mut ParamScope) -> Result<Recurrent, LayerError> {
        for (what, v) in [("recurrent input size", self.input), ("hidden size", self.hidden), ("layers", self.layers)] {
            if v == 0 {
                return Err(KernelError::ZeroSize { what }.into());
            }
        }
        let (h, gh) = (self.hidden, self.cell.gates() * self.hidden);
        let fill = Fill::Random { init: Init::InverseSqrt, fan_in: h, fan_out: h };
        let mut weights = Vec::new();
        for l in 0..self.layers {
            let fin = if l == 0 { self.input } else { self.directions() * h };
            for d in 0..self.directions() {
                let suffix = format!("l{l}{}", if d == 1 { "_reverse" } else { "" });
                let w_ih = p.param(&format!("weight_ih_{suffix}"), &[gh, fin], fill, true)?;
                let w_hh = p.param(&format!("weight_hh_{suffix}"), &[gh, h], fill, true)?;
                let b_ih = p.param(&format!("bias_ih_{suffix}"), &[gh], fill, false)?;
                let b_hh = p.param(&format!("bias_hh_{suffix}"), &[gh], fill, false)?;
                if let (Some(v), Cell::Lstm) = (self.forget_bias, self.cell) {
                    if let Some(b) = p.initial_value_mut(b_ih) {
                        b.data_mut()[h..2 * h].fill(v);
                    }
                    if let Some(b) = p.initial_value_mut(b_hh) {
                        b.data_mut()[h..2 * h].fill(0.0);
                    }
                }
                weights.push(DirWeights { w_ih, w_hh, b_ih, b_hh, fin });
            }
        }
        Ok(Recurrent { spec: self, weights })
    }
}

/// The parameters of one layer and direction.
#[derive(Clone, Copy, Debug)]
struct DirWeights {
    w_ih: ParamId,
    w_hh: ParamId,
    b_ih: ParamId,
    b_hh: ParamId,
    /// The layer's input features (F for the first, D * H after).
    fin: usize,
}

/// A stack of recurrent layers over whole sequences: see the module documentation. A clone
/// shares the weights (one cell applied by several nodes: a gated graph network's steps).
#[derive(Clone)]
pub struct Recurrent {
    spec: RecurrentSpec,
    /// Layer `l`, direction `d` at `l * directions + d`.
    weights: Vec<DirWeights>,
}

/// Where the optional inputs sit in a call's input list.
#[derive(Clone, Copy, Debug, Default)]
struct Roles {
    h0: Option<usize>,
    c0: Option<usize>,
    lengths: Option<usize>,
}

impl Recurrent {
    /// `torch.nn.RNN(nonlinearity='tanh')`: the course's cell.
    pub fn rnn(input: usize, hidden: usize) -> RecurrentSpec {
        RecurrentSpec::new(Cell::Tanh, input, hidden)
    }
    pub fn lstm(input: usize, hidden: usize) -> RecurrentSpec {
        RecurrentSpec::new(Cell::Lstm, input, hidden)
    }
    pub fn gru(input: usize, hidden: usize) -> RecurrentSpec {
        RecurrentSpec::new(Cell::Gru, input, hidden)
    }
    pub fn spec(&self) -> &RecurrentSpec {
        &self.spec
    }

    /// The number of f32 state inputs/outputs: `h` (and `c`).
    fn states(&self) -> usize {
        1 + self.spec.cell.has_cell_state() as usize
    }

    /// The roles of the inputs after `x`: f32 states (none or all), then integer lengths.
    /// `dtypes` yields the inputs' element types (an iterator: no list is allocated per call).
    fn roles(&self, dtypes: impl Iterator<Item = DType> + Clone) -> Result<Roles, LayerError> {
        let count = dtypes.clone().count();
        let floats = dtypes.clone().skip(1).take_while(|&t| t == DType::F32).count();
        let ints = count.saturating_sub(1 + floats);
        let ok = dtypes.clone().next() == Some(DType::F32)
            && (floats == 0 || floats == self.states())
            && ints <= 1
            && dtypes.skip(1 + floats).all(|t| t == DType::I64);
        if !ok {
            let states = if self.states() == 2 { "h0, c0" } else { "h0" };
            return Err(LayerError::InputCount {
                layer: self.describe(),
                expected: format!("x, optionally the initial states ({states}), optionally integer lengths:"),
                got: count,
            });
        }
        let state = |k: usize| (floats > k).then_some(1 + k);
        Ok(Roles {
            h0: state(0),
            c0: state(1).filter(|_| self.states() == 2),
            lengths: (ints == 1).then_some(1 + floats),
        })
    }

    /// `(T, N)` of an input shape, checking its rank and features.
    fn time_batch(&self, shape: &[usize]) -> Result<(usize, usize), LayerError> {
        let layout = if self.spec.batch_first { "[N, T, F]" } else { "[T, N, F]" };
        match *shape {
            [a, b, f] if f == self.spec.input && a > 0 && b > 0 => {
                Ok(if self.spec.batch_first { (b, a) } else { (a, b) })
            }
            _ => Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("{layout} with F = {} and T, N at least 1", self.spec.input),
                got: shape.to_vec(),
            }),
        }
    }

    /// The shape of `h0`, `c0`, `h_n` and `c_n`.
    fn state_shape(&self, batch: usize) -> [usize; 3] {
        [self.spec.layers * self.spec.directions(), batch, self.spec.hidden]
    }

    fn output_shape(&self, t: usize, n: usize) -> [usize; 3] {
        let dh = self.spec.directions() * self.spec.hidden;
        if self.spec.batch_first {
            [n, t, dh]
        } else {
            [t, n, dh]
        }
    }

    /// Forward floating-point operations of one call over `T x N`.
    fn flops(&self, t: usize, n: usize) -> u64 {
        let gh = self.spec.cell.gates() * self.spec.hidden;
        self.weights.iter().map(|w| 2 * (t * n * gh * (w.fin + self.spec.hidden)) as u64).sum()
    }
}

impl Op for Recurrent {
    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "{} {}->{}{}{}{}",
            s.cell.name(),
            s.input,
            s.hidden,
            if s.layers > 1 { format!(" x{} layers", s.layers) } else { String::new() },
            if s.bidirectional { " bidirectional" } else { "" },
            if s.batch_first { " batch-first" } else { "" }
        )
    }

    fn params(&self) -> Vec<ParamId> {
        self.weights.iter().flat_map(|w| [w.w_ih, w.w_hh, w.b_ih, w.b_hh]).collect()
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        let roles = self.roles(inputs.iter().map(|i| i.dtype))?;
        let (t, n) = self.time_batch(&inputs[0].shape)?;
        let state = self.state_shape(n);
        for k in [roles.h0, roles.c0].into_iter().flatten() {
            if inputs[k].shape != state {
                return Err(LayerError::InputShape {
                    layer: self.describe(),
                    expected: format!("an initial state of [layers * directions, N, H] = {state:?}"),
                    got: inputs[k].shape.clone(),
                });
            }
        }
        if let Some(k) = roles.lengths {
            if inputs[k].shape != [n] {
                return Err(LayerError::InputShape {
                    layer: self.describe(),
                    expected: format!("lengths of shape [N] = [{n}]"),
                    got: inputs[k].shape.clone(),
                });
            }
        }
        let mut out = vec![ValueInfo::f32(&self.output_shape(t, n)), ValueInfo::f32(&state)];
        if self.states() == 2 {
            out.push(ValueInfo::f32(&state));
        }
        Ok(out)
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        forward::run(self, cx, inputs, outputs, state)
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        backward::run(self, cx, io)
    }

    fn macs(&self, inputs: &[ValueInfo], _: &[ValueInfo]) -> u64 {
        inputs.first().and_then(|x| self.time_batch(&x.shape).ok()).map_or(0, |(t, n)| self.flops(t, n) / 2)
    }
}
