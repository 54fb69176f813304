//! Graph classification: node states over each graph of a batch (a few graph convolutions,
//! or the recurrent networks of [`super::propagate`]), a readout that pools each graph's
//! nodes into one vector (sum, mean or maximum: a segment reduction over the graph id of
//! each node; or Li et al. 2016's gated sum), and a linear classifier. A batch of graphs is one
//! block-diagonal graph (nodes concatenated, edges offset; Â normalised per graph, since
//! no edge crosses graphs), so the same sparse products serve any batch.
//!
//! Accuracy by 10-fold cross-validation: the command line trains once per fold
//! (`--folds`, 10 by default for this model) and reports the mean and standard deviation.

use super::gcn::{fill_int, graph_conv, ConvInput, ADJ, ADJ_VALUES, EDGES, EDGE_TYPES, LABELS};
use super::propagate::{node_states, Propagation};
use super::tu::GraphSet;
use crate::classifier::{ClassifierStep, Classify, Objective};
use crate::dataset::{Dataset, Splits};
use crate::registry::{
    Config, DataRequest, Family, Kind, ModelEntry, ModelOption, OptionValues, RegistryError, TrainDefaults,
};
use crate::step::Step;
use crate::train::TrainConfig;
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::init::Init;
use simdnn_layers::ops::{Activation, Concat, Linear, Mul, SegmentKind, SegmentReduce, SoftmaxCrossEntropy};
use simdnn_layers::{GraphBuilder, Inputs, LayerError, Model};
use std::sync::Arc;

/// Input names: one-hot node features and each node's graph within the batch.
pub const X: &str = "x";
pub const GRAPH_IDS: &str = "graph_ids";

/// The seed of the fold assignment (fixed, so `eval` sees the same folds).
const FOLD_SEED: u64 = 2020;

/// Some graphs of a set, each an example; a batch is their block-diagonal union.
pub struct GraphBatches {
    set: Arc<GraphSet>,
    members: Vec<usize>,
}

impl GraphBatches {
    /// The graphs `members` of `set`.
    pub fn new(set: Arc<GraphSet>, members: Vec<usize>) -> GraphBatches {
        GraphBatches { set, members }
    }
}

impl Dataset for GraphBatches {
    fn len(&self) -> usize {
        self.members.len()
    }

    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let graphs = indices
            .iter()
            .map(|&i| {
                let g = self.members.get(i).ok_or(LayerError::IndexRange {
                    what: "graph",
                    index: i as i64,
                    len: self.len(),
                })?;
                Ok(&self.set.graphs[*g])
            })
            .collect::<Result<Vec<_>, LayerError>>()?;
        let nodes: usize = graphs.iter().map(|g| g.node_labels.len()).sum();
        let (mut targets, mut sources, mut values) = (Vec::new(), Vec::new(), Vec::new());
        // Message passing's edges: each undirected edge both ways, with its type.
        let (mut edges, mut types) = ((Vec::new(), Vec::new()), Vec::new());
        let mut x = vec![0f32; nodes * self.set.node_labels];
        let mut ids = Vec::with_capacity(nodes);
        let mut offset = 0usize;
        for (b, g) in graphs.iter().enumerate() {
            let n = g.node_labels.len();
            // Kipf's D^-1/2 (A + I) D^-1/2 of this graph.
            let mut degree = vec![1f32; n];
            for &(a, c) in &g.edges {
                degree[a as usize] += 1.0;
                degree[c as usize] += 1.0;
            }
            let mut link = |t: usize, s: usize| {
                targets.push((offset + t) as i64);
                sources.push((offset + s) as i64);
                values.push(1.0 / (degree[t] * degree[s]).sqrt());
            };
            for i in 0..n {
                link(i, i);
            }
            for &(a, c) in &g.edges {
                link(a as usize, c as usize);
                link(c as usize, a as usize);
            }
            for (&(a, c), &t) in g.edges.iter().zip(&g.edge_types) {
                let (a, c) = ((offset + a as usize) as i64, (offset + c as usize) as i64);
                edges.0.extend([c, a]);
                edges.1.extend([a, c]);
                types.extend([t as i64; 2]);
            }
            for (i, &label) in g.node_labels.iter().enumerate() {
                x[(offset + i) * self.set.node_labels + label as usize] = 1.0;
                ids.push(b as i64);
            }
            offset += n;
        }
        let e = targets.len();
        inputs.int_mut(ADJ).assign(&[2, e], targets.into_iter().chain(sources))?;
        let v = inputs.f32_mut(ADJ_VALUES);
        v.resize(&[e]);
        v.data_mut().copy_from_slice(&values);
        let xt = inputs.f32_mut(X);
        xt.resize(&[nodes, self.set.node_labels]);
        xt.data_mut().copy_from_slice(&x);
        inputs.int_mut(GRAPH_IDS).assign(&[nodes], ids)?;
        let m = types.len();
        edges.0.extend(edges.1);
        fill_int(inputs, EDGES, &[2, m], &edges.0);
        fill_int(inputs, EDGE_TYPES, &[m], &types);
        inputs.int_mut(LABELS).assign(&[graphs.len()], graphs.iter().map(|g| g.class as i64))?;
        Ok(())
    }
}

/// How the node states are computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NodeStates {
    /// `layers` graph convolutions (Kipf & Welling) with ReLU.
    Convolutions { layers: usize },
    /// A linear map of the node features with tanh, then a recurrent propagation.
    Recurrent(Propagation),
}

/// How a graph's node states become one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readout {
    Pool(SegmentKind),
    /// Li et al. 2016 (eq. 7): `tanh(Σ_v σ(i(h_v, x_v)) ⊙ tanh(j(h_v, x_v)))`, `i` and `j`
    /// linear maps of the state beside the node's features: each node gates what it adds.
    Gated,
}

impl Readout {
    /// `sum`, `mean`, `max` or `gated`.
    pub fn named(name: &str) -> Readout {
        match name {
            "mean" => Readout::Pool(SegmentKind::Mean),
            "max" => Readout::Pool(SegmentKind::Max),
            "gated" => Readout::Gated,
            _ => Readout::Pool(SegmentKind::Sum),
        }
    }
}

/// The classifier's sizes.
#[derive(Clone, Copy, Debug)]
pub struct GraphClsSpec {
    pub features: usize,
    pub hidden: usize,
    pub edge_types: usize,
    pub classes: usize,
    pub states: NodeStates,
    pub readout: Readout,
}

impl GraphClsSpec {
    /// Outputs `logits` (`[B, classes]`) and `loss` (and a contraction's `iterations`);
    /// `batch` graphs of about 20 nodes declared (any number runs).
    pub fn build(&self, batch: usize, seed: u64) -> Result<Model, LayerError> {
        let GraphClsSpec { features, hidden, edge_types, classes, states, readout } = *self;
        let nodes = 20 * batch;
        let mut g = GraphBuilder::new(seed);
        // Every input a batch fills, whichever the node states read.
        g.input(X, &[nodes, features])
            .int_input(GRAPH_IDS, &[nodes])
            .int_input(LABELS, &[batch])
            .int_input(ADJ, &[2, 3 * nodes])
            .input(ADJ_VALUES, &[3 * nodes])
            .int_input(EDGES, &[2, 2 * nodes])
            .int_input(EDGE_TYPES, &[2 * nodes]);
        let h = match states {
            NodeStates::Convolutions { layers } => {
                let mut h = X.to_string();
                for l in 0..layers {
                    let fin = if l == 0 { features } else { hidden };
                    let name = format!("conv{}", l + 1);
                    h = graph_conv(&mut g, &name, ConvInput::Dense(&h), (fin, hidden), true, false)?;
                }
                h
            }
            NodeStates::Recurrent(propagation) => {
                g.layer("input", |p| Linear::new(p, features, hidden, Init::Glorot), &[X]).layer(
                    "h0",
                    |_| Ok(Activation::tanh()),
                    &["input"],
                );
                node_states(&mut g, propagation, hidden, edge_types, "h0")?
            }
        };
        match readout {
            Readout::Pool(kind) => {
                g.layer("readout", |_| Ok(SegmentReduce::like(kind)), &[&h, GRAPH_IDS, LABELS]);
            }
            Readout::Gated => {
                let both = hidden + features;
                g.layer("readout.hx", |_| Ok(Concat::new(1)), &[&h, X])
                    .layer("readout.i", |p| Linear::new(p, both, hidden, Init::Glorot), &["readout.hx"])
                    .layer("readout.gate", |_| Ok(Activation::sigmoid()), &["readout.i"])
                    .layer("readout.j", |p| Linear::new(p, both, hidden, Init::Glorot), &["readout.hx"])
                    .layer("readout.value", |_| Ok(Activation::tanh()), &["readout.j"])
                    .layer("readout.gated", |_| Ok(Mul::new()), &["readout.gate", "readout.value"])
                    .layer(
                        "readout.sum",
                        |_| Ok(SegmentReduce::like(SegmentKind::Sum)),
                        &["readout.gated", GRAPH_IDS, LABELS],
                    )
                    .layer("readout", |_| Ok(Activation::tanh()), &["readout.sum"]);
            }
        }
        g.layer("classifier", |p| Linear::new(p, hidden, classes, Init::Glorot), &["readout"])
            .layer("loss", |_| Ok(SoftmaxCrossEntropy::new()), &["classifier", LABELS])
            .output("logits", "classifier")
            .output("loss", "loss");
        g.build()
    }

    /// The training step of this classifier.
    pub fn step(
        &self,
        batch: usize,
        seed: u64,
        train: Option<&TrainConfig>,
        gemm: GemmConfig,
    ) -> Result<Box<dyn Step>, RegistryError> {
        let model = self.build(batch.max(1), seed)?;
        let classify = Classify { logits: "logits", labels: LABELS, classes: self.classes };
        let report: &'static [&'static str] = match self.states {
            NodeStates::Recurrent(p) => p.iterations().map_or(&[], |_| &[super::propagate::ITERATIONS]),
            NodeStates::Convolutions { .. } => &[],
        };
        let objective = Objective { loss: "loss", classify: Some(classify), report };
        Ok(Box::new(ClassifierStep::new(model, objective, gemm, train)?))
    }
}

/// The graph sets of a run (`--data DIR` in the TU format, else the embedded motifs), split
/// into the training graphs and fold `k` of the requested folds.
pub fn load_graph_set(request: &DataRequest) -> Result<Splits, RegistryError> {
    let set = match &request.dir {
        Some(dir) => GraphSet::read_tu(dir)?,
        None => GraphSet::motifs(600, 2020),
    };
    let (k, folds) = request.fold.unwrap_or((0, 10));
    let (train, test) = set.fold(k, folds, FOLD_SEED);
    let fixed = vec![
        ("features", set.node_labels.to_string()),
        ("classes", set.classes.to_string()),
        ("edge_types", set.edge_types.to_string()),
    ];
    let (source, classes) = (format!("{}, fold {} of {folds}", set.source, k + 1), set.classes);
    let set = Arc::new(set);
    Ok(Splits {
        train: Box::new(GraphBatches::new(set.clone(), train)),
        test: Box::new(GraphBatches::new(set, test)),
        source,
        classes,
        fixed,
    })
}

/// The family of [`ENTRY`].
pub struct GraphCls;

const OPTIONS: &[ModelOption] = &[
    ModelOption {
        name: "hidden",
        help: "Units of each graph convolution",
        values: OptionValues::Number { min: 1, max: 4096 },
        default: "64",
    },
    ModelOption {
        name: "layers",
        help: "Graph convolutions before the readout",
        values: OptionValues::Number { min: 1, max: 16 },
        default: "3",
    },
    ModelOption {
        name: "readout",
        help: "How a graph's nodes are pooled: sum, mean, max or gated (Li et al. 2016)",
        values: OptionValues::OneOf(&["sum", "mean", "max", "gated"]),
        default: "sum",
    },
    ModelOption {
        name: "conv",
        help: "Node states: gcn (graph convolutions), ggnn (gated steps) or recgnn (fixed point)",
        values: OptionValues::OneOf(&["gcn", "ggnn", "recgnn"]),
        default: "gcn",
    },
    ModelOption {
        name: "steps",
        help: "Propagation steps of a gated network (--conv ggnn)",
        values: OptionValues::Number { min: 1, max: 64 },
        default: "4",
    },
];

/// `simdnn train graphcls`.
pub const ENTRY: ModelEntry = ModelEntry {
    name: "graphcls",
    title: "Graph classifier",
    about: "graph convolutions, a sum/mean/max readout and a linear classifier over sets of small graphs (TU format)",
    options: OPTIONS,
    default_epochs: (100, 100),
    adam_lr: 0.01,
    note: Some("accuracy by 10-fold cross-validation"),
    defaults: TrainDefaults { batch: 32, clip_norm: None, schedule: "constant", weight_decay: 0.0, folds: 10 },
    kind: Kind::Family(&GraphCls),
};

impl Family for GraphCls {
    fn load_data(&self, _: &ModelEntry, _: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        load_graph_set(request)
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
        let states = match config.options.get("conv") {
            "ggnn" => NodeStates::Recurrent(Propagation::Gated {
                steps: config.options.number("steps", 4),
                aggregate: SegmentKind::Sum,
            }),
            "recgnn" => NodeStates::Recurrent(Propagation::CONTRACTION),
            _ => NodeStates::Convolutions { layers: config.options.number("layers", 3) },
        };
        let spec = GraphClsSpec {
            features: config.number("features")?,
            hidden: config.options.number("hidden", 64),
            edge_types: config.number("edge_types").unwrap_or(1),
            classes: config.number("classes")?,
            states,
            readout: Readout::named(config.options.get("readout")),
        };
        spec.step(batch, seed, train, gemm)
    }
}
