//! Running a model: forward over the plan's order, backward over its reverse, with every
//! buffer in the caller's [`State`].

use super::memory::{Layout, MemoryReport, NONE};
use super::{Graph, Model};
use crate::op::{Backward, Ctx, Mode, OpCtx, OpState};
use crate::param::Grads;
use crate::tensor::{DType, IntTensor, TensorRef, ValueRef};
use crate::{LayerError, Tensor};
use std::time::{Duration, Instant};

/// The most inputs one node may read (a stack array holds their references).
pub(crate) const MAX_INPUTS: usize = 256;

/// How many plans (input shapes and modes) a [`State`] keeps.
const MAX_LAYOUTS: usize = 4;

/// A value given to a graph input.
#[derive(Clone, Copy, Debug)]
pub enum Feed<'a> {
    F32(TensorRef<'a>),
    Int(&'a IntTensor),
}

impl<'a> From<&'a Tensor> for Feed<'a> {
    fn from(t: &'a Tensor) -> Feed<'a> {
        Feed::F32(t.as_ref())
    }
}

impl<'a> From<&'a IntTensor> for Feed<'a> {
    fn from(t: &'a IntTensor) -> Feed<'a> {
        Feed::Int(t)
    }
}

impl<'a> Feed<'a> {
    fn shape(&self) -> &'a [usize] {
        match self {
            Feed::F32(t) => t.shape,
            Feed::Int(t) => t.shape(),
        }
    }
    fn dtype(&self) -> DType {
        match self {
            Feed::F32(_) => DType::F32,
            Feed::Int(_) => DType::I64,
        }
    }
}

/// The values given to a graph's inputs, by name: a slice or array of `(name, Feed)`
/// pairs, or an [`Inputs`] a data loader fills batch after batch.
pub trait Feeds {
    /// The value given for input `name`.
    fn get(&self, name: &str) -> Option<Feed<'_>>;
    /// A name given that `known` rejects (a misspelt input).
    fn unknown(&self, known: &dyn Fn(&str) -> bool) -> Option<String>;
}

impl Feeds for [(&str, Feed<'_>)] {
    fn get(&self, name: &str) -> Option<Feed<'_>> {
        self.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }
    fn unknown(&self, known: &dyn Fn(&str) -> bool) -> Option<String> {
        self.iter().find(|(n, _)| !known(n)).map(|(n, _)| n.to_string())
    }
}

impl<const N: usize> Feeds for [(&str, Feed<'_>); N] {
    fn get(&self, name: &str) -> Option<Feed<'_>> {
        Feeds::get(self.as_slice(), name)
    }
    fn unknown(&self, known: &dyn Fn(&str) -> bool) -> Option<String> {
        Feeds::unknown(self.as_slice(), known)
    }
}

/// Named input tensors owned by the caller and refilled batch after batch (their storage
/// reused), for data loaders.
#[derive(Default)]
pub struct Inputs {
    f32: Vec<(String, Tensor)>,
    int: Vec<(String, IntTensor)>,
}

impl Inputs {
    pub fn new() -> Inputs {
        Inputs::default()
    }

    /// The f32 tensor for input `name`, created empty on first use.
    pub fn f32_mut(&mut self, name: &str) -> &mut Tensor {
        entry(&mut self.f32, name)
    }

    /// The integer tensor for input `name`, created empty on first use.
    pub fn int_mut(&mut self, name: &str) -> &mut IntTensor {
        entry(&mut self.int, name)
    }

    /// An f32 and an integer input at once (images and their labels).
    pub fn f32_and_int_mut(&mut self, f32: &str, int: &str) -> (&mut Tensor, &mut IntTensor) {
        (entry(&mut self.f32, f32), entry(&mut self.int, int))
    }

    pub fn f32(&self, name: &str) -> Option<&Tensor> {
        self.f32.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn int(&self, name: &str) -> Option<&IntTensor> {
        self.int.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// The tensor named `name` in `list`, appended empty if missing.
fn entry<'a, T: Default>(list: &'a mut Vec<(String, T)>, name: &str) -> &'a mut T {
    let i = match list.iter().position(|(n, _)| n == name) {
        Some(i) => i,
        None => {
            list.push((name.to_string(), T::default()));
            list.len() - 1
        }
    };
    &mut list[i].1
}

impl Feeds for Inputs {
    fn get(&self, name: &str) -> Option<Feed<'_>> {
        self.f32(name).map(Feed::from).or_else(|| self.int(name).map(Feed::from))
    }
    fn unknown(&self, known: &dyn Fn(&str) -> bool) -> Option<String> {
        let mut names = self.f32.iter().map(|(n, _)| n).chain(self.int.iter().map(|(n, _)| n));
        names.find(|n| !known(n)).cloned()
    }
}

/// One caller's buffers for running a model: the values of a pass (planned by
/// [`super::memory`] for the input shapes, and kept for backward in training), each node's
/// saved state, and the gradients of backward. Reused call after call: once a call at some
/// shapes has run, another at the same shapes allocates nothing.
#[derive(Default)]
pub struct State {
    graph_id: u64,
    /// The plans of the input shapes seen lately (a data set's last, smaller batch
    /// alternates with the full ones); `current` is the last pass's.
    layouts: Vec<Layout>,
    current: Option<usize>,
    storage: Vec<Tensor>,
    /// The integer graph inputs, by input position.
    ints: Vec<IntTensor>,
    ops: Vec<OpState>,
    /// Output buffers taken out of `storage` while a node runs.
    outs: Vec<Tensor>,
    /// Whether the last forward ran in training mode (backward needs one).
    trained: bool,
    input_grads: bool,
    /// Per node: forward and backward time of the last passes, when profiling.
    times: Option<Vec<[Duration; 2]>>,
    // Backward.
    grads: Vec<Tensor>,
    written: Vec<bool>,
    needs: Vec<bool>,
    /// Per node input: a gradient to add into one already written.
    temps: Vec<Vec<Tensor>>,
    /// Zeros, the gradient of outputs nothing differentiated.
    zeros: Tensor,
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// Also compute the gradients of the graph's f32 inputs in backward (a GAN's
    /// discriminator, passing its input gradient on to the generator).
    pub fn keep_input_grads(&mut self, keep: bool) {
        self.input_grads = keep;
    }

    /// Times every node's forward and backward call (read with [`Model::node_times`]).
    pub fn profile(&mut self, on: bool) {
        self.times = on.then(Vec::new);
    }

    /// The planned activation memory of the last pass.
    pub fn memory(&self) -> Option<MemoryReport> {
        self.layout().map(Layout::report)
    }

    fn layout(&self) -> Option<&Layout> {
        self.layouts.get(self.current?)
    }

    /// The plan for these input shapes and mode: a cached one, or a new one (the oldest
    /// dropped beyond [`MAX_LAYOUTS`]).
    fn select_layout(&mut self, model: &Model, mode: Mode, feed: &(impl Feeds + ?Sized)) -> Result<(), LayerError> {
        let g = &*model.graph;
        let shape_of = |name: &str| feed.get(name).map_or(&[][..], |f| f.shape());
        let fits = |l: &Layout| {
            l.mode == mode && g.inputs.iter().zip(&l.shapes).all(|((n, _), s)| shape_of(n) == s.as_slice())
        };
        if let Some(i) = self.layouts.iter().position(fits) {
            self.current = Some(i);
            return Ok(());
        }
        let shapes: Vec<Vec<usize>> = g.inputs.iter().map(|(n, _)| shape_of(n).to_vec()).collect();
        let given: Vec<(&str, &[usize])> =
            g.inputs.iter().zip(&shapes).map(|((n, _), s)| (n.as_str(), s.as_slice())).collect();
        let layout = Layout::plan(g, model.infer(&given)?, shapes, mode);
        if self.layouts.len() == MAX_LAYOUTS {
            self.layouts.remove(0);
        }
        self.storage.resize_with(self.storage.len().max(layout.sizes.len()), Tensor::default);
        self.layouts.push(layout);
        self.current = Some(self.layouts.len() - 1);
        Ok(())
    }

    fn reset_for(&mut self, graph: &Graph) {
        if self.graph_id != graph.id {
            *self = State { input_grads: self.input_grads, times: self.times.take(), ..State::default() };
            self.graph_id = graph.id;
            self.ops.resize_with(graph.nodes.len(), OpState::default);
            self.temps.resize_with(graph.nodes.len(), Vec::new);
        }
        if let Some(times) = &mut self.times {
            times.resize(graph.nodes.len(), Default::default());
        }
    }
}

impl Model {
    /// The planned activation memory of a pass at these input shapes.
    pub fn memory_plan(&self, inputs: &[(&str, &[usize])], mode: Mode) -> Result<MemoryReport, LayerError> {
        let infos = self.infer(inputs)?;
        Ok(Layout::plan(&self.graph, infos, Vec::new(), mode).report())
    }

    /// Runs the graph on `feed` (every input of the graph, by name). In `Mode::Train` the
    /// state keeps what [`Model::backward`] needs.
    pub fn forward(&self, ctx: &Ctx, state: &mut State, feed: &(impl Feeds + ?Sized)) -> Result<(), LayerError> {
        let g = &*self.graph;
        state.reset_for(g);
        state.trained = false;
        // Every input given, with its declared type and rank; no name the graph lacks.
        if let Some(name) = feed.unknown(&|name| g.inputs.iter().any(|(n, _)| n == name)) {
            return Err(LayerError::UnknownInput { name });
        }
        for (name, v) in &g.inputs {
            let f = feed.get(name).ok_or_else(|| LayerError::MissingInput { name: name.clone() })?;
            let want = &g.values[*v].info;
            if f.dtype() != want.dtype || f.shape().len() != want.shape.len() {
                return Err(LayerError::InputMismatch {
                    name: name.clone(),
                    expected: format!("{} of rank {}", want.dtype.name(), want.shape.len()),
                    got: format!("{} of shape {:?}", f.dtype().name(), f.shape()),
                });
            }
        }
        state.select_layout(self, ctx.mode, feed)?;
        let State { layouts, current, storage, ints, ops, outs, times, .. } = state;
        let layout = &layouts[current.expect("selected above")];
        ints.resize_with(g.inputs.len(), IntTensor::default);
        for (i, (name, v)) in g.inputs.iter().enumerate() {
            match feed.get(name).expect("checked above") {
                Feed::F32(t) => {
                    let buf = &mut storage[layout.storage_of[*v]];
                    buf.resize(t.shape);
                    buf.data_mut().copy_from_slice(t.data);
                }
                Feed::Int(t) => ints[i].assign(t.shape(), t.data().iter().copied())?,
            }
        }
        let cx = OpCtx { ctx: *ctx, params: &self.params };
        for (n, node) in g.nodes.iter().enumerate() {
            if node.op.view_of().is_some() {
                continue;
            }
            outs.clear();
            for &v in &node.outputs {
                let b = layout.storage_of[v];
                outs.push(if b == NONE { Tensor::default() } else { std::mem::take(&mut storage[b]) });
            }
            let start = times.is_some().then(Instant::now);
            let result = {
                let mut refs = [ValueRef::F32(TensorRef { shape: &[], data: &[] }); MAX_INPUTS];
                for (r, &v) in refs.iter_mut().zip(&node.inputs) {
                    *r = value_ref(g, layout, storage, ints, v);
                }
                node.op.forward(&cx, &refs[..node.inputs.len()], outs, &mut ops[n])
            };
            record(times, n, 0, start);
            for (&v, t) in node.outputs.iter().zip(outs.drain(..)) {
                let b = layout.storage_of[v];
                if b != NONE {
                    storage[b] = t;
                }
            }
            result.map_err(|e| e.in_node(&node.name))?;
        }
        state.trained = ctx.mode == Mode::Train;
        Ok(())
    }

    /// `(node, forward, backward)` times of the last passes of a profiling `state`
    /// ([`State::profile`]).
    pub fn node_times<'m>(&'m self, state: &State) -> Vec<(&'m str, Duration, Duration)> {
        let g = &*self.graph;
        match &state.times {
            Some(t) if state.graph_id == g.id => {
                g.nodes.iter().zip(t).map(|(n, &[f, b])| (n.name.as_str(), f, b)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Output `name` of the last forward pass of `state`.
    pub fn output<'s>(&self, state: &'s State, name: &str) -> Result<TensorRef<'s>, LayerError> {
        let g = &*self.graph;
        let &(_, v) = g
            .outputs
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| LayerError::UnknownOutput { name: name.to_string() })?;
        let layout = state.layout().filter(|_| state.graph_id == g.id).ok_or(LayerError::NoForward)?;
        match value_ref(g, layout, &state.storage, &state.ints, v) {
            ValueRef::F32(t) => Ok(t),
            ValueRef::Int(_) => Err(LayerError::UnknownOutput { name: name.to_string() }),
        }
    }

    /// The gradient of graph input `name` from the last backward pass (with
    /// [`State::keep_input_grads`]).
    pub fn input_grad<'s>(&self, state: &'s State, name: &str) -> Option<TensorRef<'s>> {
        let g = &*self.graph;
        let &(_, v) = g.inputs.iter().find(|(n, _)| n == name)?;
        let layout = state.layout()?;
        state.written.get(v).copied().filter(|&w| w)?;
        Some(TensorRef { shape: &layout.infos[v].shape, data: &state.grads[v].data()[..layout.infos[v].len()] })
    }

    /// Backward from a scalar output (a loss): its gradient is one.
    pub fn backward_from(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        output: &str,
    ) -> Result<(), LayerError> {
        self.backward_seeded(ctx, state, grads, &[(output, None)])
    }

    /// Backward from the given gradients of outputs. Parameter gradients are added into
    /// `grads` (frozen parameters get none, and their weight-gradient kernels do not run).
    pub fn backward(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        seeds: &[(&str, TensorRef)],
    ) -> Result<(), LayerError> {
        let mut seeded = [("", None); 16];
        if seeds.len() > seeded.len() {
            return Err(LayerError::InputCount {
                layer: "backward".into(),
                expected: "at most 16 seeds".into(),
                got: seeds.len(),
            });
        }
        for (s, &(name, t)) in seeded.iter_mut().zip(seeds) {
            *s = (name, Some(t));
        }
        self.backward_seeded(ctx, state, grads, &seeded[..seeds.len()])
    }

    fn backward_seeded(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        seeds: &[(&str, Option<TensorRef>)],
    ) -> Result<(), LayerError> {
        let g = &*self.graph;
        if state.graph_id != g.id || !state.trained {
            return Err(LayerError::NoForward);
        }
        grads.sync(&self.params);
        let State {
            layouts,
            current,
            storage,
            ints,
            ops,
            grads: vgrads,
            written,
            needs,
            temps,
            zeros,
            input_grads,
            times,
            ..
        } = state;
        let layout = &layouts[current.expect("a forward pass planned it")];
        let n_values = g.values.len();
        vgrads.resize_with(n_values, Tensor::default);
        written.clear();
        written.resize(n_values, false);
        // Which values need a gradient: those computed from a trainable parameter, and the
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
        for &(name, seed) in seeds {
            let &(_, v) = g
                .outputs
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| LayerError::UnknownOutput { name: name.to_string() })?;
            let info = &layout.infos[v];
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
        let cx = OpCtx { ctx: *ctx, params: &self.params };
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
            // Input gradients: written in place the first time a value gets one, else into
            // a temporary that is added in.
            let start = times.is_some().then(Instant::now);
            let temps = &mut temps[n];
            temps.resize_with(node.inputs.len(), Tensor::default);
            let mut direct = [false; MAX_INPUTS];
            let mut taken: [Option<Tensor>; MAX_INPUTS] = [const { None }; MAX_INPUTS];
            for (i, &v) in node.inputs.iter().enumerate() {
                if needs[v] && !written[v] && node.inputs[..i].iter().all(|&u| u != v) {
                    direct[i] = true;
                    taken[i] = Some(std::mem::take(&mut vgrads[v]));
                }
            }
            let result = {
                let mut d_in: [Option<&mut Tensor>; MAX_INPUTS] = [const { None }; MAX_INPUTS];
                let mut temp_iter = temps.iter_mut();
                let mut taken_iter = taken.iter_mut();
                for (i, &v) in node.inputs.iter().enumerate() {
                    let (temp, slot) =
                        (temp_iter.next().expect("one per input"), taken_iter.next().expect("one per input"));
                    if direct[i] {
                        d_in[i] = slot.as_mut();
                    } else if needs[v] {
                        d_in[i] = Some(temp);
                    }
                }
                let mut ins = [ValueRef::F32(TensorRef { shape: &[], data: &[] }); MAX_INPUTS];
                for (r, &v) in ins.iter_mut().zip(&node.inputs) {
                    *r = value_ref(g, layout, storage, ints, v);
                }
                let empty = TensorRef { shape: &[], data: &[] };
                let mut outs = [empty; MAX_INPUTS];
                let mut d_outs = [empty; MAX_INPUTS];
                for (k, &v) in node.outputs.iter().enumerate() {
                    let info = &layout.infos[v];
                    outs[k] = match value_ref(g, layout, storage, ints, v) {
                        ValueRef::F32(t) => t,
                        ValueRef::Int(_) => empty,
                    };
                    let data = if written[v] { &vgrads[v].data()[..info.len()] } else { &zeros.data()[..info.len()] };
                    d_outs[k] = TensorRef { shape: &info.shape, data };
                }
                let k = node.outputs.len();
                let io = Backward {
                    inputs: &ins[..node.inputs.len()],
                    outputs: &outs[..k],
                    d_outputs: &d_outs[..k],
                    d_inputs: &mut d_in[..node.inputs.len()],
                    grads,
                    state: &mut ops[n],
                };
                node.op.backward(&cx, io)
            };
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

/// Records the time since `start` as node `n`'s pass (0 forward, 1 backward).
fn record(times: &mut Option<Vec<[Duration; 2]>>, n: usize, pass: usize, start: Option<Instant>) {
    if let (Some(times), Some(start)) = (times.as_mut(), start) {
        times[n][pass] = start.elapsed();
    }
}

/// The largest output of any node (the zero gradient of outputs nobody differentiated).
fn node_max_output(g: &Graph, layout: &Layout) -> usize {
    g.nodes.iter().flat_map(|n| &n.outputs).map(|&v| layout.infos[v].len()).max().unwrap_or(0)
}

/// Value `v` as the ops see it: a view of its buffer under its shape, or an integer input.
fn value_ref<'s>(
    g: &Graph,
    layout: &'s Layout,
    storage: &'s [Tensor],
    ints: &'s [IntTensor],
    v: usize,
) -> ValueRef<'s> {
    let info = &layout.infos[v];
    match info.dtype {
        DType::F32 => {
            let b = layout.storage_of[v];
            ValueRef::F32(TensorRef { shape: &info.shape, data: &storage[b].data()[..info.len()] })
        }
        // Only graph inputs are integers (the builder rejects ops with integer outputs).
        DType::I64 => match g.values[v].source {
            super::Source::Input(i) | super::Source::Node(i, _) => ValueRef::Int(&ints[i.min(ints.len() - 1)]),
        },
    }
}
