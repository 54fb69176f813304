//! Kipf & Welling's graph convolutional network ("Semi-Supervised Classification with Graph
//! Convolutional Networks", ICLR 2017) for node classification:
//! `Z = Â ReLU(Â X W1 + b1) W2 + b2` with `Â = D^-1/2 (A + I) D^-1/2`, dropout on the
//! input features' non-zeros and on the hidden layer, weight decay on `W1` only, Adam 0.01,
//! 200 epochs, 16 hidden units (the paper's Cora settings).
//!
//! The whole graph runs in every step (full-batch); a batch names the labelled nodes whose
//! logits the loss reads (`nodes`, gathered from all `N`), so the shared training loop's
//! batches of training nodes are the paper's full-batch steps when the batch holds them all.

use super::node_graph::{NodeGraph, Role};
use crate::classifier::{ClassifierStep, Classify, Objective};
use crate::dataset::{Dataset, Splits};
use crate::registry::{
    Config, DataRequest, Family, Kind, ModelEntry, ModelOption, OptionValues, RegistryError, TrainDefaults,
};
use crate::step::Step;
use crate::train::TrainConfig;
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::init::Init;
use simdnn_layers::ops::{Add, Dropout, Gather, MatMul, SoftmaxCrossEntropy, SparseMatMul, Weight};
use simdnn_layers::{Fill, GraphBuilder, Inputs, LayerError, Model};

use std::sync::Arc;

/// Input names.
pub const ADJ: &str = "adj";
pub const ADJ_VALUES: &str = "adj_values";
pub const FEATURES: &str = "features";
pub const FEATURE_VALUES: &str = "feature_values";
pub const NODES: &str = "nodes";
pub const LABELS: &str = "labels";
/// Directed edges without self-loops (`[2, E]`: targets, then sources) and their types
/// (`[E]`), for message-passing networks.
pub const EDGES: &str = "edges";
pub const EDGE_TYPES: &str = "edge_types";

/// How a node combines its neighbours' rows (and its own, through the self-loop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// Kipf & Welling's symmetric normalisation `D^-1/2 (A + I) D^-1/2`.
    Gcn,
    /// The mean, `D^-1 (A + I)`.
    Mean,
    /// The sum, `A + I`.
    Sum,
}

impl Aggregation {
    pub fn named(name: &str) -> Aggregation {
        match name {
            "mean" => Aggregation::Mean,
            "sum" => Aggregation::Sum,
            _ => Aggregation::Gcn,
        }
    }
}

/// A graph's inputs as the network reads them, built once and shared by the splits.
pub struct GraphInputs {
    pub nodes: usize,
    pub features: usize,
    pub classes: usize,
    /// `[2, E]`: targets, then sources, both directions and self-loops.
    pub adj: Vec<i64>,
    pub adj_values: Vec<f32>,
    /// `[2, Z]`: nodes, then feature indices; values row-normalised (Kipf's preprocessing).
    pub feature_index: Vec<i64>,
    pub feature_values: Vec<f32>,
    pub labels: Vec<i64>,
    /// `[2, E]` and `[E]` for message passing ([`GraphInputs::with_typed_edges`]).
    pub typed_edges: Option<(Vec<i64>, Vec<i64>)>,
}

impl GraphInputs {
    /// These inputs with the graph's edges as message passing reads them: each edge `a b`
    /// of the data both ways, `a -> b` of type 0 and `b -> a` of type 1 (a citation, and
    /// being cited: Li et al. 2016 give each direction its own weight).
    pub fn with_typed_edges(mut self, g: &NodeGraph) -> GraphInputs {
        let (mut targets, mut sources, mut types) = (Vec::new(), Vec::new(), Vec::new());
        for &(a, b) in &g.edges {
            targets.extend([b as i64, a as i64]);
            sources.extend([a as i64, b as i64]);
            types.extend([0, 1]);
        }
        targets.extend(sources);
        self.typed_edges = Some((targets, types));
        self
    }

    pub fn new(g: &NodeGraph, aggregation: Aggregation) -> GraphInputs {
        let n = g.nodes;
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(2 * g.edges.len() + n);
        for &(a, b) in &g.edges {
            pairs.push((a, b));
            pairs.push((b, a));
        }
        pairs.extend((0..n as u32).map(|i| (i, i)));
        pairs.sort_unstable();
        let mut degree = vec![0f32; n];
        for &(t, _) in &pairs {
            degree[t as usize] += 1.0;
        }
        let adj_values = pairs
            .iter()
            .map(|&(t, s)| match aggregation {
                Aggregation::Gcn => 1.0 / (degree[t as usize] * degree[s as usize]).sqrt(),
                Aggregation::Mean => 1.0 / degree[t as usize],
                Aggregation::Sum => 1.0,
            })
            .collect();
        let adj = pairs.iter().map(|p| p.0 as i64).chain(pairs.iter().map(|p| p.1 as i64)).collect();
        let mut row_sum = vec![0f32; n];
        for &(i, _, v) in &g.feature_entries {
            row_sum[i as usize] += v;
        }
        let fe = &g.feature_entries;
        GraphInputs {
            nodes: n,
            features: g.features.max(1),
            classes: g.classes,
            adj,
            adj_values,
            feature_index: fe.iter().map(|e| e.0 as i64).chain(fe.iter().map(|e| e.1 as i64)).collect(),
            feature_values: fe
                .iter()
                .map(|&(i, _, v)| if row_sum[i as usize] != 0.0 { v / row_sum[i as usize] } else { 0.0 })
                .collect(),
            labels: g.labels.iter().map(|l| l.map_or(-1, i64::from)).collect(),
            typed_edges: None,
        }
    }

    /// Feeds the graph (adjacency and sparse features) into `inputs`, their storage reused.
    pub fn fill(&self, inputs: &mut Inputs) {
        for (name, data) in [(ADJ, &self.adj), (FEATURES, &self.feature_index)] {
            fill_int(inputs, name, &[2, data.len() / 2], data);
        }
        for (name, data) in [(ADJ_VALUES, &self.adj_values), (FEATURE_VALUES, &self.feature_values)] {
            let t = inputs.f32_mut(name);
            t.resize(&[data.len()]);
            t.data_mut().copy_from_slice(data);
        }
        if let Some((edges, types)) = &self.typed_edges {
            fill_int(inputs, EDGES, &[2, types.len()], edges);
            fill_int(inputs, EDGE_TYPES, &[types.len()], types);
        }
    }
}

/// Integer input `name` set to `data` of shape `shape`, its storage reused.
pub fn fill_int(inputs: &mut Inputs, name: &str, shape: &[usize], data: &[i64]) {
    let t = inputs.int_mut(name);
    t.resize(shape);
    t.data_mut().copy_from_slice(data);
}

/// The labelled nodes of one part of the split, each an example; a batch feeds the whole
/// graph and the batch's nodes and labels.
pub struct NodeSet {
    pub graph: Arc<GraphInputs>,
    pub nodes: Vec<u32>,
}

impl Dataset for NodeSet {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let g = &*self.graph;
        g.fill(inputs);
        let picked = |i: &usize| {
            self.nodes.get(*i).copied().ok_or(LayerError::IndexRange {
                what: "node of the split",
                index: *i as i64,
                len: self.nodes.len(),
            })
        };
        let nodes: Vec<u32> = indices.iter().map(picked).collect::<Result<_, _>>()?;
        inputs.int_mut(NODES).assign(&[nodes.len()], nodes.iter().map(|&i| i as i64))?;
        inputs.int_mut(LABELS).assign(&[nodes.len()], nodes.iter().map(|&i| g.labels[i as usize]))?;
        Ok(())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// The network's sizes and regularisation.
#[derive(Clone, Copy, Debug)]
pub struct GcnSpec {
    pub nodes: usize,
    pub features: usize,
    pub hidden: usize,
    pub classes: usize,
    pub dropout: f32,
}

impl GcnSpec {
    /// Two graph convolutions; outputs `logits` (`[B, classes]`, the batch's nodes),
    /// `loss`, and the hidden layer's `embeddings`. `batch` is the declared number of
    /// labelled nodes (any number runs).
    pub fn build(&self, batch: usize, seed: u64) -> Result<Model, LayerError> {
        let GcnSpec { nodes, features, hidden, classes, dropout } = *self;
        let mut g = graph_inputs(nodes, seed);
        g.int_input(NODES, &[batch]).int_input(LABELS, &[batch]);
        // Layer 1 on the features' non-zeros after dropout on them (Kipf's sparse dropout).
        g.layer("input_dropout", |_| Dropout::new(dropout, seed ^ 1), &[FEATURE_VALUES]);
        let h1 =
            graph_conv(&mut g, "conv1", ConvInput::Sparse("input_dropout", nodes), (features, hidden), true, true)?;
        g.layer("hidden_dropout", |_| Dropout::new(dropout, seed ^ 2), &[&h1]);
        let out = graph_conv(&mut g, "conv2", ConvInput::Dense("hidden_dropout"), (hidden, classes), false, false)?;
        g.layer("logits", |_| Ok(Gather::new(0)), &[&out, NODES])
            .layer("loss", |_| Ok(SoftmaxCrossEntropy::new()), &["logits", LABELS])
            .output("logits", "logits")
            .output("loss", "loss")
            .output("embeddings", &h1);
        g.build()
    }
}

/// A builder with the graph's inputs declared (the adjacency and the sparse features of a
/// graph of `nodes` nodes).
pub fn graph_inputs(nodes: usize, seed: u64) -> GraphBuilder {
    let mut g = GraphBuilder::new(seed);
    g.int_input(ADJ, &[2, nodes])
        .input(ADJ_VALUES, &[nodes])
        .int_input(FEATURES, &[2, nodes])
        .input(FEATURE_VALUES, &[nodes]);
    g
}

/// What a graph convolution reads.
pub enum ConvInput<'a> {
    /// A dense value `[N, in]`.
    Dense(&'a str),
    /// The sparse features of a graph of this many nodes, with these values (the features'
    /// own, or after dropout).
    Sparse(&'a str, usize),
}

/// One graph convolution `act(Â (H W) + b)` on the graph's adjacency: parameters
/// `NAME.weight` (`[in, out]`, Glorot, with weight decay if `decay`) and `NAME.bias`
/// (zeros); ReLU if `relu`. Returns the name of its output value.
pub fn graph_conv(
    g: &mut GraphBuilder,
    name: &str,
    input: ConvInput,
    (fin, fout): (usize, usize),
    relu: bool,
    decay: bool,
) -> Result<String, LayerError> {
    let glorot = Fill::Random { init: Init::Glorot, fan_in: fin, fan_out: fout };
    let weight = g.param(&format!("{name}.weight"), &[fin, fout], glorot, decay)?;
    let bias = g.param(&format!("{name}.bias"), &[fout], Fill::Constant(0.0), false)?;
    let (w, hw, agg, out) = (format!("{name}.w"), format!("{name}.hw"), format!("{name}.agg"), name.to_string());
    g.layer(&w, move |_| Ok(Weight::of(weight)), &[]);
    match input {
        ConvInput::Dense(h) => g.layer(&hw, |_| Ok(MatMul::new()), &[h, &w]),
        ConvInput::Sparse(values, nodes) => {
            g.layer(&hw, move |_| Ok(SparseMatMul::with_rows(nodes)), &[FEATURES, values, &w])
        }
    };
    g.layer(&agg, |_| Ok(SparseMatMul::square()), &[ADJ, ADJ_VALUES, &hw])
        .layer(&format!("{name}.b"), move |_| Ok(Weight::of(bias)), &[])
        .layer(
            &out,
            move |_| Ok(if relu { Add::new().with_relu() } else { Add::new() }),
            &[&agg, &format!("{name}.b")],
        );
    Ok(out)
}

/// A node task's splits: the training and test nodes of `graph` over `inputs`, with the
/// sizes a network needs recorded after `fixed`.
pub fn node_splits(graph: &NodeGraph, inputs: GraphInputs, mut fixed: Vec<(&'static str, String)>) -> Splits {
    fixed.extend([
        ("nodes", graph.nodes.to_string()),
        ("features", inputs.features.to_string()),
        ("classes", graph.classes.to_string()),
    ]);
    let inputs = Arc::new(inputs);
    Splits {
        train: Box::new(NodeSet { graph: inputs.clone(), nodes: graph.nodes_in(Role::Train) }),
        test: Box::new(NodeSet { graph: inputs, nodes: graph.nodes_in(Role::Test) }),
        source: graph.source.clone(),
        classes: graph.classes,
        fixed,
    }
}

/// The family of [`ENTRY`].
pub struct Gcn;

const OPTIONS: &[ModelOption] = &[
    ModelOption {
        name: "hidden",
        help: "Hidden units",
        values: OptionValues::Number { min: 1, max: 4096 },
        default: "16",
    },
    ModelOption {
        name: "aggregate",
        help: "Neighbour aggregation: gcn (D^-1/2 (A+I) D^-1/2), mean or sum",
        values: OptionValues::OneOf(&["gcn", "mean", "sum"]),
        default: "gcn",
    },
    ModelOption {
        name: "dropout",
        help: "Dropout rate, in percent, on the input features' non-zeros and the hidden layer",
        values: OptionValues::Number { min: 0, max: 95 },
        default: "50",
    },
];

/// `simdnn train gcn`.
pub const ENTRY: ModelEntry = ModelEntry {
    name: "gcn",
    title: "GCN",
    about: "Kipf & Welling's two-layer graph convolutional network: node classification (Cora)",
    options: OPTIONS,
    default_epochs: (200, 200),
    adam_lr: 0.01,
    note: Some("Kipf & Welling report 81.5 % test accuracy on Cora's standard split"),
    defaults: TrainDefaults { batch: 100_000, clip_norm: None, schedule: "constant", weight_decay: 5e-4, folds: 1 },
    kind: Kind::Family(&Gcn),
};

/// The graph of a run: `--data DIR` in the plain format, else the embedded default.
pub fn load_graph(request: &DataRequest) -> Result<NodeGraph, RegistryError> {
    Ok(match &request.dir {
        Some(dir) => NodeGraph::read(dir)?,
        None => NodeGraph::planted_partition(7, 300, 2017),
    })
}

impl Family for Gcn {
    fn load_data(&self, _: &ModelEntry, config: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        let graph = load_graph(request)?;
        let aggregation = Aggregation::named(config.options.get("aggregate"));
        Ok(node_splits(&graph, GraphInputs::new(&graph, aggregation), Vec::new()))
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
        let spec = spec_of(config)?;
        let model = spec.build(batch.clamp(1, spec.nodes), seed)?;
        let classify = Classify { logits: "logits", labels: LABELS, classes: spec.classes };
        let objective = Objective { loss: "loss", classify: Some(classify), report: &[] };
        Ok(Box::new(ClassifierStep::new(model, objective, gemm, train)?))
    }
}

/// The network a configuration describes (the data's sizes recorded by `fit_data`).
pub fn spec_of(config: &Config) -> Result<GcnSpec, RegistryError> {
    Ok(GcnSpec {
        nodes: config.number("nodes")?,
        features: config.number("features")?,
        hidden: config.options.number("hidden", 16),
        classes: config.number("classes")?,
        dropout: config.options.number("dropout", 50) as f32 / 100.0,
    })
}
