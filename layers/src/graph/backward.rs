//! The backward pass: the plan's nodes in reverse, over those between a seeded output and
//! a parameter that takes a gradient (or an input whose gradient was asked for).

use super::forward::record;
use super::state::{relend, value_ref, State};
use super::{Graph, ModelRef};
use crate::op::{Backward, Ctx, OpCtx};
use crate::optim::Select;
use crate::param::Grads;
use crate::tensor::{DType, TensorRef, ValueRef};
use crate::{LayerError, Tensor};
use std::time::Instant;

/// Where backward starts: a scalar output (a loss, gradient one) or given output gradients.
#[derive(Clone, Copy)]
enum Seeds<'a> {
    Scalar(&'a str),
    Given(&'a [(&'a str, TensorRef<'a>)]),
}

impl<'a> Seeds<'a> {
    fn len(&self) -> usize {
        match self {
            Seeds::Scalar(_) => 1,
            Seeds::Given(s) => s.len(),
        }
    }
    fn get(&self, i: usize) -> (&'a str, Option<TensorRef<'a>>) {
        match *self {
            Seeds::Scalar(name) => (name, None),
            Seeds::Given(s) => (s[i].0, Some(s[i].1)),
        }
    }
}

impl ModelRef<'_> {
    /// Backward from a scalar output (a loss): its gradient is one. Every trainable
    /// parameter takes a gradient.
    pub fn backward_from(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        output: &str,
    ) -> Result<(), LayerError> {
        self.run_backward(ctx, state, grads, Seeds::Scalar(output), Select::Trainable)
    }

    /// Backward from a scalar output, with gradients for the parameters `select` picks
    /// only: two callers (a GAN's two players) train different parts of one model without
    /// freezing anything in it.
    pub fn backward_from_selected(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        output: &str,
        select: Select,
    ) -> Result<(), LayerError> {
        self.run_backward(ctx, state, grads, Seeds::Scalar(output), select)
    }

    /// Backward from the given gradients of outputs (any number of them). Parameter
    /// gradients are added into `grads` (frozen parameters get none, and their
    /// weight-gradient kernels do not run).
    pub fn backward(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        seeds: &[(&str, TensorRef)],
    ) -> Result<(), LayerError> {
        self.run_backward(ctx, state, grads, Seeds::Given(seeds), Select::Trainable)
    }

    /// [`ModelRef::backward`] with gradients for the parameters `select` picks only.
    pub fn backward_selected(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        seeds: &[(&str, TensorRef)],
        select: Select,
    ) -> Result<(), LayerError> {
        self.run_backward(ctx, state, grads, Seeds::Given(seeds), select)
    }

    /// The gradient of graph input `name` from the last backward pass (with
    /// [`State::keep_input_grads`]); `None` when that pass computed none, or a forward pass
    /// has run since.
    pub fn input_grad<'s>(&self, state: &'s State, name: &str) -> Option<TensorRef<'s>> {
        let g = self.graph;
        let &(_, v) = g.inputs.iter().find(|(n, _)| n == name)?;
        let layout = state.layout().filter(|_| state.graph_id == g.id)?;
        state.written.get(v).copied().filter(|&w| w)?;
        let info = &layout.infos[v];
        Some(TensorRef { shape: &info.shape, data: state.grads[v].data().get(..info.len())? })
    }

    fn run_backward(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        seeds: Seeds,
        select: Select,
    ) -> Result<(), LayerError> {
        let g = self.graph;
        if state.graph_id != g.id || !state.trained {
            return Err(LayerError::NoForward);
        }
        grads.select(self.params, select)?;
        let State {
            layouts,
            current,
            storage,
            int_storage,
            ops,
            grads: vgrads,
            written,
            needs,
            temps,
            zeros,
            input_grads,
            times,
            scratch,
            ..
        } = state;
        let layout = &layouts[current.expect("a forward pass planned it")];
        let n_values = g.values.len();
        vgrads.resize_with(n_values, Tensor::default);
        written.clear();
        written.resize(n_values, false);
        // Which values need a gradient: those computed from a selected parameter, and the
        // f32 graph inputs when asked for.
        needs.clear();
        needs.resize(n_values, false);
        for &(_, v) in &g.inputs {
            needs[v] = *input_grads && layout.infos[v].dtype == DType::F32;
        }
        for (n, node) in g.nodes.iter().enumerate() {
            let own = g.params_of(n).iter().any(|&p| grads.wants(p));
            let any = own || node.inputs.iter().any(|&v| needs[v]);
            for &v in &node.outputs {
                needs[v] = any && layout.infos[v].dtype == DType::F32;
            }
        }
        for i in 0..seeds.len() {
            let (name, seed) = seeds.get(i);
            let &(_, v) = g
                .outputs
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| LayerError::UnknownOutput { name: name.to_string() })?;
            let info = &layout.infos[v];
            if info.dtype != DType::F32 {
                return Err(LayerError::InputType {
                    layer: format!("seed {name:?}"),
                    expected: DType::F32,
                    got: info.shape.clone(),
                });
            }
            let t = &mut vgrads[v];
            t.resize(&info.shape);
            match seed {
                Some(s) if s.shape == info.shape.as_slice() => t.data_mut().copy_from_slice(s.data),
                Some(s) => {
                    return Err(LayerError::GradShape {
                        layer: name.to_string(),
                        expected: info.shape.clone(),
                        got: s.shape.to_vec(),
                    })
                }
                None => t.data_mut().fill(1.0),
            }
            written[v] = true;
        }
        let max_len = node_max_output(g, layout);
        if zeros.len() < max_len {
            *zeros = Tensor::zeros(&[max_len]); // only ever read: zeroed once
        }
        let cx = OpCtx { ctx: *ctx, params: self.params };
        for (n, node) in g.nodes.iter().enumerate().rev() {
            if !node.outputs.iter().any(|&v| written[v] && needs[v]) {
                continue; // off the path from the seeds, or nothing before it learns
            }
            if !node.inputs.iter().any(|&v| needs[v]) && !g.params_of(n).iter().any(|&p| grads.wants(p)) {
                continue;
            }
            // A view's gradient is its output's under the input's shape: handed over, not
            // copied, when it is the input's first (every reader of the output has run).
            if let Some(i) = node.op.view_of() {
                let (x, y) = (node.inputs[i], node.outputs[0]);
                if needs[x] && !written[x] && written[y] && vgrads[y].len() == layout.infos[x].len() {
                    vgrads.swap(x, y);
                    vgrads[x].reshape(&layout.infos[x].shape)?;
                    (written[x], written[y]) = (true, false);
                    continue;
                }
            }
            // Input gradients: written in place the first time a value gets one (taken out
            // of `vgrads` while the op writes it), else into a temporary that is added in.
            let start = times.is_some().then(Instant::now);
            let temps = &mut temps[n];
            temps.resize_with(node.inputs.len(), Tensor::default);
            let (direct, taken) = (&mut scratch.direct, &mut scratch.taken);
            direct.clear();
            taken.clear();
            for (i, &v) in node.inputs.iter().enumerate() {
                let first = needs[v] && !written[v] && node.inputs[..i].iter().all(|&u| u != v);
                direct.push(first);
                taken.push(first.then(|| std::mem::take(&mut vgrads[v])));
            }
            let mut d_in: Vec<Option<&mut Tensor>> = relend(std::mem::take(&mut scratch.d_inputs));
            for ((temp, slot), &v) in temps.iter_mut().zip(taken.iter_mut()).zip(&node.inputs) {
                d_in.push(match slot {
                    Some(t) => Some(t),
                    None if needs[v] => Some(temp),
                    None => None,
                });
            }
            let mut ins: Vec<ValueRef> = relend(std::mem::take(&mut scratch.values));
            ins.extend(node.inputs.iter().map(|&v| value_ref(layout, storage, int_storage, v)));
            let (mut outs, mut d_outs): (Vec<TensorRef>, Vec<TensorRef>) =
                (relend(std::mem::take(&mut scratch.tensors)), relend(std::mem::take(&mut scratch.d_outputs)));
            let empty = TensorRef { shape: &[], data: &[] };
            for &v in &node.outputs {
                let info = &layout.infos[v];
                match value_ref(layout, storage, int_storage, v) {
                    ValueRef::F32(t) => {
                        outs.push(t);
                        let data =
                            if written[v] { &vgrads[v].data()[..info.len()] } else { &zeros.data()[..info.len()] };
                        d_outs.push(TensorRef { shape: &info.shape, data });
                    }
                    // Integer outputs have no gradient.
                    ValueRef::Int(_) => {
                        outs.push(empty);
                        d_outs.push(empty);
                    }
                }
            }
            let io = Backward {
                inputs: &ins,
                outputs: &outs,
                d_outputs: &d_outs,
                d_inputs: &mut d_in,
                grads,
                state: &mut ops[n],
            };
            let result = node.op.backward(&cx, io);
            scratch.d_inputs = relend(d_in);
            scratch.values = relend(ins);
            scratch.tensors = relend(outs);
            scratch.d_outputs = relend(d_outs);
            record(times, n, 1, start);
            for (i, &v) in node.inputs.iter().enumerate() {
                if direct[i] {
                    vgrads[v] = taken[i].take().expect("taken above");
                    written[v] = true;
                } else if needs[v] {
                    let sum = &mut vgrads[v];
                    for (d, &t) in sum.data_mut().iter_mut().zip(temps[i].data()) {
                        *d += t;
                    }
                }
            }
            result.map_err(|e| e.in_node(&node.name))?;
        }
        Ok(())
    }
}

/// The largest output of any node (the zero gradient of outputs nobody differentiated).
fn node_max_output(g: &Graph, layout: &super::memory::Layout) -> usize {
    g.nodes.iter().flat_map(|n| &n.outputs).map(|&v| layout.infos[v].len()).max().unwrap_or(0)
}
