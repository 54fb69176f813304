//! One caller's buffers for running a model, and its cache of memory plans by input shapes.

use super::feed::Feeds;
use super::memory::{Layout, MemoryReport};
use super::{Graph, ModelRef};
use crate::op::{Mode, OpState};
use crate::tensor::{DType, IntRef, IntTensor, TensorRef, ValueRef};
use crate::{LayerError, Tensor};
use std::time::Duration;

/// How many plans (input shapes and modes) a [`State`] keeps unless told otherwise: a data
/// set's full and last batches in training and evaluation, with room to spare.
const DEFAULT_LAYOUTS: usize = 8;

/// One caller's buffers for running a model: the values of a pass (planned by
/// [`super::memory`] for the input shapes, and kept for backward in training), each node's
/// saved state, and the gradients of backward. Reused call after call: once a call at some
/// shapes has run, another at the same shapes allocates nothing.
#[derive(Default)]
pub struct State {
    pub(super) graph_id: u64,
    /// The plans of the input shapes seen lately (a data set's last, smaller batch
    /// alternates with the full ones); `current` is the last pass's.
    pub(super) layouts: Vec<Layout>,
    pub(super) current: Option<usize>,
    /// How many plans to keep (0: the default).
    max_layouts: usize,
    /// The buffers of f32 and of integer values.
    pub(super) storage: Vec<Tensor>,
    pub(super) int_storage: Vec<IntTensor>,
    pub(super) ops: Vec<OpState>,
    /// Output buffers taken out of the storage while a node runs.
    pub(super) outs: Vec<Tensor>,
    pub(super) int_outs: Vec<IntTensor>,
    /// Whether the last forward ran in training mode (backward needs one).
    pub(super) trained: bool,
    pub(super) input_grads: bool,
    /// Per node: forward and backward time of the last passes, when profiling.
    pub(super) times: Option<Vec<[Duration; 2]>>,
    pub(super) scratch: Scratch,
    // Backward.
    pub(super) grads: Vec<Tensor>,
    /// Which values hold a gradient of the last backward pass (cleared by a forward pass).
    pub(super) written: Vec<bool>,
    pub(super) needs: Vec<bool>,
    /// Per node input: a gradient to add into one already written.
    pub(super) temps: Vec<Vec<Tensor>>,
    /// Zeros, the gradient of outputs nothing differentiated.
    pub(super) zeros: Tensor,
}

/// Per-node argument lists, kept between nodes and calls so that a node of any fan-in costs
/// no allocation. The borrowed lists are stored empty under `'static` and lent to each node
/// under the lifetime of that node's borrows ([`relend`]).
#[derive(Default)]
pub(super) struct Scratch {
    pub values: Vec<ValueRef<'static>>,
    pub tensors: Vec<TensorRef<'static>>,
    pub d_outputs: Vec<TensorRef<'static>>,
    pub d_inputs: Vec<Option<&'static mut Tensor>>,
    pub direct: Vec<bool>,
    pub taken: Vec<Option<Tensor>>,
}

/// An empty vector on `v`'s allocation, for items of another lifetime. The standard
/// library collects a vector's own iterator back into its allocation when the item layouts
/// agree (they do: only the lifetime differs), so this allocates nothing
/// (`tests/train_alloc.rs` counts).
pub(super) fn relend<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter().map(|_| unreachable!("emptied above")).collect()
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

    /// Times every node's forward and backward call (read with [`ModelRef::node_times`]).
    pub fn profile(&mut self, on: bool) {
        self.times = on.then(Vec::new);
    }

    /// How many memory plans (one per set of input shapes and mode) to keep: beyond it the
    /// oldest is dropped and planned again when its shapes come back. At least one; the
    /// default is 8.
    pub fn keep_layouts(&mut self, n: usize) {
        self.max_layouts = n.max(1);
        let excess = self.layouts.len().saturating_sub(self.max_layouts);
        self.layouts.drain(..excess);
        self.current = None;
    }

    /// The planned activation memory of the last pass.
    pub fn memory(&self) -> Option<MemoryReport> {
        self.layout().map(Layout::report)
    }

    pub(super) fn layout(&self) -> Option<&Layout> {
        self.layouts.get(self.current?)
    }

    /// The plan for these input shapes and mode: a cached one, or a new one (the oldest
    /// dropped beyond the number kept).
    pub(super) fn select_layout(
        &mut self,
        model: &ModelRef,
        mode: Mode,
        feed: &(impl Feeds + ?Sized),
    ) -> Result<(), LayerError> {
        let g = model.graph;
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
        let keep = if self.max_layouts == 0 { DEFAULT_LAYOUTS } else { self.max_layouts };
        if self.layouts.len() >= keep {
            self.layouts.remove(0);
        }
        self.storage.resize_with(self.storage.len().max(layout.sizes[0].len()), Tensor::default);
        self.int_storage.resize_with(self.int_storage.len().max(layout.sizes[1].len()), IntTensor::default);
        self.layouts.push(layout);
        self.current = Some(self.layouts.len() - 1);
        Ok(())
    }

    /// Starts afresh for another plan (keeping the caller's settings).
    pub(super) fn reset_for(&mut self, graph: &Graph) {
        if self.graph_id != graph.id {
            *self = State {
                input_grads: self.input_grads,
                times: self.times.take(),
                max_layouts: self.max_layouts,
                scratch: std::mem::take(&mut self.scratch),
                ..State::default()
            };
            self.graph_id = graph.id;
            self.ops.resize_with(graph.nodes.len(), OpState::default);
            self.temps.resize_with(graph.nodes.len(), Vec::new);
        }
        if let Some(times) = &mut self.times {
            times.resize(graph.nodes.len(), Default::default());
        }
    }
}

/// Value `v` as the ops see it: a view of its buffer under its shape.
pub(super) fn value_ref<'s>(
    layout: &'s Layout,
    storage: &'s [Tensor],
    int_storage: &'s [IntTensor],
    v: usize,
) -> ValueRef<'s> {
    let info = &layout.infos[v];
    let b = layout.storage_of[v];
    match info.dtype {
        DType::F32 => ValueRef::F32(TensorRef { shape: &info.shape, data: &storage[b].data()[..info.len()] }),
        DType::I64 => ValueRef::Int(IntRef { shape: &info.shape, data: &int_storage[b].data()[..info.len()] }),
    }
}
