//! The recurrent graph networks as models: `recgnn` (Scarselli et al. 2009) and `ggnn`
//! (Li et al. 2016), each on node-level tasks (a graph in the plain format of
//! `../shared/data/cora`, or the embedded planted partition) and on graph-level tasks (a
//! `--data` directory in the TU format: [`super::graphcls`] with these node states and,
//! by default for `ggnn`, the gated readout).
//!
//! On a node task, the initial state is the node's sparse features through a linear map
//! and tanh (Li et al. pad low-dimensional annotations with zeros instead; a citation
//! graph's bag of words needs a projection), the states propagate along the edges of both
//! directions as two edge types, and a linear classifier reads the final states after
//! dropout. `recgnn` reports the iterations its fixed point took (`iterations`).

use super::gcn::{
    graph_inputs, load_graph, node_splits, Aggregation, GraphInputs, EDGES, EDGE_TYPES, FEATURES, FEATURE_VALUES,
    LABELS, NODES,
};
use super::graphcls::{load_graph_set, GraphClsSpec, NodeStates, Readout};
use super::propagate::{node_states, Propagation, ITERATIONS};
use crate::classifier::{ClassifierStep, Classify, Objective};
use crate::dataset::Splits;
use crate::registry::{
    Config, DataRequest, Family, Kind, ModelEntry, ModelOption, OptionValues, RegistryError, TrainDefaults,
};
use crate::step::Step;
use crate::train::TrainConfig;
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::init::Init;
use simdnn_layers::ops::{
    Activation, Add, Dropout, Gather, Linear, SegmentKind, SoftmaxCrossEntropy, SparseMatMul, Weight,
};
use simdnn_layers::{Fill, LayerError, Model};
use std::path::Path;

/// The edge types of a node task: along each edge of the data, and against it.
const NODE_EDGE_TYPES: usize = 2;

/// A node classifier over recurrent node states.
#[derive(Clone, Copy, Debug)]
pub struct NodeNetSpec {
    pub nodes: usize,
    pub features: usize,
    pub hidden: usize,
    pub classes: usize,
    pub dropout: f32,
    pub propagation: Propagation,
}

impl NodeNetSpec {
    /// Outputs `logits` (`[B, classes]`, the batch's nodes), `loss`, the final states as
    /// `embeddings`, and a contraction's `iterations`.
    pub fn build(&self, batch: usize, seed: u64) -> Result<Model, LayerError> {
        let NodeNetSpec { nodes, features, hidden, classes, dropout, propagation } = *self;
        let mut g = graph_inputs(nodes, seed);
        g.int_input(EDGES, &[2, 2 * nodes])
            .int_input(EDGE_TYPES, &[2 * nodes])
            .int_input(NODES, &[batch])
            .int_input(LABELS, &[batch]);
        let glorot = Fill::Random { init: Init::Glorot, fan_in: features, fan_out: hidden };
        let w = g.param("input.weight", &[features, hidden], glorot, true)?;
        let b = g.param("input.bias", &[hidden], Fill::Constant(0.0), false)?;
        g.layer("input_dropout", |_| Dropout::new(dropout, seed ^ 1), &[FEATURE_VALUES])
            .layer("input.w", move |_| Ok(Weight::of(w)), &[])
            .layer("input.xw", move |_| Ok(SparseMatMul::with_rows(nodes)), &[FEATURES, "input_dropout", "input.w"])
            .layer("input.b", move |_| Ok(Weight::of(b)), &[])
            .layer("input", |_| Ok(Add::new()), &["input.xw", "input.b"])
            .layer("h0", |_| Ok(Activation::tanh()), &["input"]);
        let states = node_states(&mut g, propagation, hidden, NODE_EDGE_TYPES, "h0")?;
        g.layer("state_dropout", |_| Dropout::new(dropout, seed ^ 2), &[&states])
            .layer("picked", |_| Ok(Gather::new(0)), &["state_dropout", NODES])
            .layer("logits", |p| Linear::new(p, hidden, classes, Init::Glorot), &["picked"])
            .layer("loss", |_| Ok(SoftmaxCrossEntropy::new()), &["logits", LABELS])
            .output("logits", "logits")
            .output("loss", "loss")
            .output("embeddings", &states);
        g.build()
    }
}

/// `recgnn` or `ggnn`.
pub struct RecurrentGnn {
    gated: bool,
}

/// Whether `dir` holds a set of graphs in the TU format (a `DS_A.txt` file).
fn is_graph_set(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| e.file_name().to_str().is_some_and(|n| n.ends_with("_A.txt")))
    })
}

impl RecurrentGnn {
    fn propagation(&self, config: &Config) -> Propagation {
        if self.gated {
            let aggregate = match config.options.get("aggregate") {
                "max" => SegmentKind::Max,
                "sum" => SegmentKind::Sum,
                _ => SegmentKind::Mean,
            };
            Propagation::Gated { steps: config.options.number("steps", 5), aggregate }
        } else {
            let Propagation::Contraction { tolerance, max_iterations, .. } = Propagation::CONTRACTION else {
                unreachable!("a contraction")
            };
            let radius = config.options.number("radius", 90) as f32 / 100.0;
            Propagation::Contraction { radius, tolerance, max_iterations }
        }
    }
}

impl Family for RecurrentGnn {
    fn load_data(&self, _: &ModelEntry, _: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        if request.dir.as_deref().is_some_and(is_graph_set) {
            let mut splits = load_graph_set(request)?;
            splits.fixed.push(("task", "graph".into()));
            return Ok(splits);
        }
        let graph = load_graph(request)?;
        let inputs = GraphInputs::new(&graph, Aggregation::Gcn).with_typed_edges(&graph);
        Ok(node_splits(&graph, inputs, vec![("task", "node".into())]))
    }

    fn step(
        &self,
        _: &ModelEntry,
        config: &Config,
        batch: usize,
        seed: u64,
        train: Option<&TrainConfig>,
        gemm: GemmConfig,
    ) -> Result<Box<dyn Step>, RegistryError> {
        let propagation = self.propagation(config);
        let hidden = config.options.number("hidden", 32);
        let report: &'static [&'static str] = if self.gated { &[] } else { &[ITERATIONS] };
        if config.size("task") == Some("graph") {
            let readout = Readout::named(config.options.get("readout"));
            let spec = GraphClsSpec {
                features: config.number("features")?,
                hidden,
                edge_types: config.number("edge_types").unwrap_or(1),
                classes: config.number("classes")?,
                states: NodeStates::Recurrent(propagation),
                readout,
            };
            return spec.step(batch, seed, train, gemm);
        }
        let spec = NodeNetSpec {
            nodes: config.number("nodes")?,
            features: config.number("features")?,
            hidden,
            classes: config.number("classes")?,
            dropout: config.options.number("dropout", 50) as f32 / 100.0,
            propagation,
        };
        let model = spec.build(batch.clamp(1, spec.nodes), seed)?;
        let classify = Classify { logits: "logits", labels: LABELS, classes: spec.classes };
        let objective = Objective { loss: "loss", classify: Some(classify), report };
        Ok(Box::new(ClassifierStep::new(model, objective, gemm, train)?))
    }
}

const HIDDEN: ModelOption = ModelOption {
    name: "hidden",
    help: "State units",
    values: OptionValues::Number { min: 1, max: 4096 },
    default: "32",
};
const DROPOUT: ModelOption = ModelOption {
    name: "dropout",
    help: "Dropout rate, in percent, on the input features' non-zeros and the final states (node tasks)",
    values: OptionValues::Number { min: 0, max: 95 },
    default: "50",
};
const fn readout(default: &'static str) -> ModelOption {
    ModelOption {
        name: "readout",
        help: "Graph tasks: how a graph's node states are pooled: sum, mean, max or gated (Li et al. 2016)",
        values: OptionValues::OneOf(&["sum", "mean", "max", "gated"]),
        default,
    }
}

const GGNN_OPTIONS: &[ModelOption] = &[
    HIDDEN,
    ModelOption {
        name: "steps",
        help: "Propagation steps (the same weights at each)",
        values: OptionValues::Number { min: 1, max: 64 },
        default: "5",
    },
    ModelOption {
        name: "aggregate",
        help: "How a node combines its messages: mean, sum (Li et al.; on a citation graph's hubs it overfits) or max",
        values: OptionValues::OneOf(&["sum", "mean", "max"]),
        default: "mean",
    },
    DROPOUT,
    readout("gated"),
];

const RECGNN_OPTIONS: &[ModelOption] = &[
    HIDDEN,
    ModelOption {
        name: "radius",
        help: "Bound on the transition weight's Frobenius norm, in percent (below 100: a contraction)",
        values: OptionValues::Number { min: 1, max: 99 },
        default: "90",
    },
    DROPOUT,
    readout("sum"),
];

/// The family of [`GGNN`].
pub static GATED: RecurrentGnn = RecurrentGnn { gated: true };
/// The family of [`RECGNN`].
pub static CONTRACTING: RecurrentGnn = RecurrentGnn { gated: false };

/// `simdnn train ggnn`.
pub const GGNN: ModelEntry = ModelEntry {
    name: "ggnn",
    title: "Gated graph neural network",
    about: "Li et al.'s gated graph network: GRU updates over typed messages, node tasks or (TU data) graph tasks",
    options: GGNN_OPTIONS,
    default_epochs: (200, 200),
    adam_lr: 0.01,
    note: Some("with TU data (--data DIR holding DS_A.txt) a graph task; --folds 10 for cross-validation"),
    defaults: TrainDefaults { batch: 100_000, clip_norm: None, schedule: "constant", weight_decay: 5e-4, folds: 1 },
    kind: Kind::Family(&GATED),
};

/// `simdnn train recgnn`.
pub const RECGNN: ModelEntry = ModelEntry {
    name: "recgnn",
    title: "Recurrent graph neural network",
    about: "Scarselli et al.'s graph network: a contraction iterated to its fixed point, node or (TU data) graph tasks",
    options: RECGNN_OPTIONS,
    default_epochs: (200, 200),
    adam_lr: 0.01,
    note: Some("reports the fixed point's iterations; with TU data a graph task, --folds 10 for cross-validation"),
    defaults: TrainDefaults { batch: 100_000, clip_norm: None, schedule: "constant", weight_decay: 5e-4, folds: 1 },
    kind: Kind::Family(&CONTRACTING),
};
