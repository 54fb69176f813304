//! Models as directed acyclic graphs of named nodes, split the way engines that serve many
//! callers and also train split them:
//!
//! - the **plan** ([`Graph`]): nodes in topological order, which values each reads and
//!   writes; built once, immutable, shared by every caller;
//! - the **weights** ([`Params`]): named parameters and buffers, read by the ops through ids;
//! - the **state** ([`State`]): one per caller, holding the values, what backward needs, and
//!   the planned buffers, reused call after call.
//!
//! [`Model`] pairs a plan with its weights; `model.forward(&ctx, &mut state, inputs)` runs
//! it. Several threads may run one `&Model` at once, each with its own `State`. More plans
//! over the same weights ([`Model::plan`]: another output exposed, another unrolled length)
//! run through [`Model::with`], which pairs a [`Plan`] with the weights as a [`ModelRef`].

mod backward;
mod build;
mod feed;
mod fold;
mod forward;
mod memory;
mod sequential;
mod state;

pub use build::GraphBuilder;
pub use feed::{Feed, Feeds, Inputs};
pub use memory::MemoryReport;
pub use sequential::Sequential;
pub use state::State;

use crate::op::{Ctx, Mode, Op, ValueInfo};
use crate::optim::Select;
use crate::param::{Grads, Params};
use crate::tensor::{IntRef, TensorRef};
use crate::LayerError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a value comes from: graph input `i`, or output `k` of node `n` (in plan order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Input(usize),
    Node(usize, usize),
}

/// A value of the graph, with its shape at the example input shapes.
pub(crate) struct Value {
    pub name: String,
    pub source: Source,
    pub info: ValueInfo,
}

pub(crate) struct Node {
    pub name: String,
    pub op: Box<dyn Op>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

/// The plan of a model: its nodes in topological order and the values they read and write.
pub struct Graph {
    /// Distinguishes plans, so a state used with another model starts afresh.
    id: u64,
    pub(crate) nodes: Vec<Node>,
    pub(crate) values: Vec<Value>,
    pub(crate) inputs: Vec<(String, usize)>,
    pub(crate) outputs: Vec<(String, usize)>,
    /// The nodes reading each value.
    pub(crate) readers: Vec<Vec<usize>>,
    /// The parameters each node reads.
    pub(crate) node_params: Vec<Vec<crate::ParamId>>,
    /// The weights the plan was built over ([`Params`]' identity).
    pub(crate) params_identity: u64,
}

impl Graph {
    pub(crate) fn new(
        nodes: Vec<Node>,
        values: Vec<Value>,
        inputs: Vec<(String, usize)>,
        outputs: Vec<(String, usize)>,
    ) -> Graph {
        let mut g = Graph {
            id: 0,
            nodes,
            values,
            inputs,
            outputs,
            readers: Vec::new(),
            node_params: Vec::new(),
            params_identity: 0,
        };
        g.index_readers();
        g
    }

    /// Indexes the readers of every value after the nodes changed, under a new id.
    pub(crate) fn index_readers(&mut self) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        self.readers = vec![Vec::new(); self.values.len()];
        for (n, node) in self.nodes.iter().enumerate() {
            for &v in &node.inputs {
                self.readers[v].push(n);
            }
        }
        self.node_params = self.nodes.iter().map(|n| n.op.params()).collect();
        self.id = NEXT.fetch_add(1, Ordering::Relaxed);
    }

    /// The parameters node `n` reads.
    pub(crate) fn params_of(&self, n: usize) -> &[crate::ParamId] {
        &self.node_params[n]
    }
}

/// A plan and its weights.
pub struct Model {
    graph: Arc<Graph>,
    params: Params,
}

/// A further plan over a model's weights ([`Model::plan`]), run with [`Model::with`].
#[derive(Clone)]
pub struct Plan {
    graph: Arc<Graph>,
}

/// A plan with the weights it runs on, borrowed: what forward and backward run.
#[derive(Clone, Copy)]
pub struct ModelRef<'m> {
    graph: &'m Graph,
    params: &'m Params,
}

impl<'m> ModelRef<'m> {
    /// The weights the plan runs on.
    pub fn params(&self) -> &'m Params {
        self.params
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("nodes", &self.graph.nodes.len()).finish()
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self.nodes().map(|(n, d)| format!("{n}: {d}")).collect();
        f.debug_struct("Model").field("nodes", &nodes).field("params", &self.params.count()).finish()
    }
}

/// One node of a model, as a summary shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSummary {
    pub name: String,
    pub op: String,
    pub inputs: Vec<String>,
    pub output_shapes: Vec<Vec<usize>>,
    /// Values of the parameters the node reads first (shared parameters count once).
    pub params: usize,
    /// Values of its buffers (batch-norm running statistics; Keras counts them).
    pub buffers: usize,
    pub macs: u64,
}

impl Model {
    pub(crate) fn new(mut graph: Graph, params: Params) -> Model {
        graph.params_identity = params.identity();
        Model { graph: Arc::new(graph), params }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// The model's own plan with its weights.
    pub fn as_ref(&self) -> ModelRef<'_> {
        ModelRef { graph: &self.graph, params: &self.params }
    }

    /// A further plan over this model's weights, declared by `declare` on a builder whose
    /// layers take the existing parameters of their names (shapes must agree; a layer whose
    /// parameter does not exist is an error): the same weights at another unrolled length,
    /// another graph batch, or with an inner value exposed as an output. Nothing is copied.
    pub fn plan(&mut self, declare: impl FnOnce(GraphBuilder) -> GraphBuilder) -> Result<Plan, LayerError> {
        let mut params = std::mem::take(&mut self.params);
        params.set_reuse(true);
        let (graph, mut params) = declare(GraphBuilder::over(params)).into_graph();
        params.set_reuse(false);
        self.params = params;
        let mut graph = graph?;
        graph.params_identity = self.params.identity();
        Ok(Plan { graph: Arc::new(graph) })
    }

    /// `plan` with this model's weights; an error for a plan built over another model's.
    pub fn with<'m>(&'m self, plan: &'m Plan) -> Result<ModelRef<'m>, LayerError> {
        if plan.graph.params_identity != self.params.identity() {
            return Err(LayerError::OtherWeights);
        }
        Ok(ModelRef { graph: &plan.graph, params: &self.params })
    }

    /// Runs the model's plan (see [`ModelRef::forward`]).
    pub fn forward(&self, ctx: &Ctx, state: &mut State, feed: &(impl Feeds + ?Sized)) -> Result<(), LayerError> {
        self.as_ref().forward(ctx, state, feed)
    }

    /// See [`ModelRef::backward_from`].
    pub fn backward_from(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        output: &str,
    ) -> Result<(), LayerError> {
        self.as_ref().backward_from(ctx, state, grads, output)
    }

    /// See [`ModelRef::backward_from_selected`].
    pub fn backward_from_selected(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        output: &str,
        select: Select,
    ) -> Result<(), LayerError> {
        self.as_ref().backward_from_selected(ctx, state, grads, output, select)
    }

    /// See [`ModelRef::backward`].
    pub fn backward(
        &self,
        ctx: &Ctx,
        state: &mut State,
        grads: &mut Grads,
        seeds: &[(&str, TensorRef)],
    ) -> Result<(), LayerError> {
        self.as_ref().backward(ctx, state, grads, seeds)
    }

    /// See [`ModelRef::output`].
    pub fn output<'s>(&self, state: &'s State, name: &str) -> Result<TensorRef<'s>, LayerError> {
        self.as_ref().output(state, name)
    }

    /// See [`ModelRef::int_output`].
    pub fn int_output<'s>(&self, state: &'s State, name: &str) -> Result<IntRef<'s>, LayerError> {
        self.as_ref().int_output(state, name)
    }

    /// See [`ModelRef::input_grad`].
    pub fn input_grad<'s>(&self, state: &'s State, name: &str) -> Option<TensorRef<'s>> {
        self.as_ref().input_grad(state, name)
    }

    /// See [`ModelRef::node_times`].
    pub fn node_times(&self, state: &State) -> Vec<(&str, Duration, Duration)> {
        self.as_ref().node_times(state)
    }

    /// See [`ModelRef::memory_plan`].
    pub fn memory_plan(&self, inputs: &[(&str, &[usize])], mode: Mode) -> Result<MemoryReport, LayerError> {
        self.as_ref().memory_plan(inputs, mode)
    }

    /// See [`ModelRef::summary`].
    pub fn summary(&self, inputs: &[(&str, &[usize])]) -> Result<Vec<NodeSummary>, LayerError> {
        self.as_ref().summary(inputs)
    }

    /// The names of the graph's inputs, in declaration order.
    pub fn input_names(&self) -> Vec<&str> {
        self.graph.inputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The names of the graph's outputs.
    pub fn output_names(&self) -> Vec<&str> {
        self.graph.outputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// `(name, description)` of every node, in the order they run.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, String)> {
        self.graph.nodes.iter().map(|n| (n.name.as_str(), n.op.describe()))
    }

    /// The op of node `name` (for inspection: `as_any` gives the concrete type).
    pub fn op(&self, name: &str) -> Option<&dyn Op> {
        self.graph.nodes.iter().find(|n| n.name == name).map(|n| n.op.as_ref())
    }
}

impl<'m> ModelRef<'m> {
    /// The planned activation memory of a pass at these input shapes.
    pub fn memory_plan(&self, inputs: &[(&str, &[usize])], mode: Mode) -> Result<MemoryReport, LayerError> {
        let infos = self.infer(inputs)?;
        Ok(memory::Layout::plan(self.graph, infos, Vec::new(), mode).report())
    }

    /// Every node with its output shapes, parameters and multiply-accumulates for inputs of
    /// the given shapes (the declared example shapes where `inputs` is empty).
    pub fn summary(&self, inputs: &[(&str, &[usize])]) -> Result<Vec<NodeSummary>, LayerError> {
        let infos = self.infer(inputs)?;
        let mut counted = vec![false; self.params.len()];
        let g = self.graph;
        Ok(g.nodes
            .iter()
            .map(|n| {
                let params =
                    n.op.params()
                        .into_iter()
                        .filter(|id| !std::mem::replace(&mut counted[id.index()], true))
                        .map(|id| self.params.value(id).len())
                        .sum();
                let ins: Vec<ValueInfo> = n.inputs.iter().map(|&v| infos[v].clone()).collect();
                let outs: Vec<ValueInfo> = n.outputs.iter().map(|&v| infos[v].clone()).collect();
                NodeSummary {
                    name: n.name.clone(),
                    op: n.op.describe(),
                    inputs: n.inputs.iter().map(|&v| g.values[v].name.clone()).collect(),
                    output_shapes: outs.iter().map(|i| i.shape.clone()).collect(),
                    params,
                    buffers: n.op.buffers().into_iter().map(|b| self.params.buffer(b).len()).sum(),
                    macs: n.op.macs(&ins, &outs),
                }
            })
            .collect())
    }

    /// Every value's shape and type for inputs of the given shapes (declared ones where not
    /// given).
    pub(crate) fn infer(&self, inputs: &[(&str, &[usize])]) -> Result<Vec<ValueInfo>, LayerError> {
        let g = self.graph;
        for (name, _) in inputs {
            if !g.inputs.iter().any(|(n, _)| n == name) {
                return Err(LayerError::UnknownInput { name: name.to_string() });
            }
        }
        let mut infos: Vec<ValueInfo> = g.values.iter().map(|v| v.info.clone()).collect();
        for (name, v) in &g.inputs {
            if let Some((_, shape)) = inputs.iter().find(|(n, _)| n == name) {
                infos[*v].shape = shape.to_vec();
            }
        }
        for node in &g.nodes {
            let ins: Vec<ValueInfo> = node.inputs.iter().map(|&v| infos[v].clone()).collect();
            let outs = node.op.infer(&ins, self.params).map_err(|e| e.in_node(&node.name))?;
            for (&v, info) in node.outputs.iter().zip(outs) {
                infos[v] = info;
            }
        }
        Ok(infos)
    }
}
