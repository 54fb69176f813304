//! Zachary's karate club (Zachary 1977): 34 members, 78 friendships, and the split of the
//! club into the instructor's faction and the administrator's. A GCN told only the two
//! leaders' factions (node 0, Mr. Hi, and node 33, the officer) labels the other 32, and
//! the run ends with a picture of the 2-d node embeddings it learned, coloured by faction
//! (as in Kipf's demonstration of the GCN, 2016).
//!
//! The nodes have no features, so each is its own one-hot feature (the identity). The
//! network: graph convolutions of 8 units (ReLU), 2 units (the embedding) and 2 classes.
//! `--data` reads the layout of `../shared/data/karate`: `nodes.csv` with header
//! `node,club,faction` (faction 0 or 1) and `edges.csv` with header
//! `source,target[,weight]` (the weights, the number of contexts the two met in, are not
//! used). Without it, a two-community planted-partition graph of 34 nodes stands in.

use super::gcn::{graph_conv, graph_inputs, Aggregation, ConvInput, GraphInputs, NodeSet, LABELS, NODES};
use super::node_graph::{bad, csv_rows, number, read, NodeGraph, Role};
use crate::classifier::{ClassifierStep, Classify, Objective};
use crate::dataset::{Dataset, Splits};
use crate::registry::{
    Config, DataRequest, Family, Kind, ModelEntry, ModelOption, OptionValues, RegistryError, TrainDefaults,
};
use crate::report::{Chart, Line, Report};
use crate::step::Step;
use crate::train::{EpochMetrics, TrainConfig};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::ops::{Gather, SoftmaxCrossEntropy};
use simdnn_layers::{Ctx, Inputs, LayerError, Model, State};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Reads the karate club's files.
pub fn read_karate(dir: &Path) -> Result<NodeGraph, RegistryError> {
    let nodes_path = dir.join("nodes.csv");
    let text = read(&nodes_path)?;
    let mut labels = Vec::new();
    for (line, fields) in csv_rows(&nodes_path, &text, "node")? {
        let id: usize = number(&nodes_path, line, fields[0], "node id")?;
        if id != labels.len() {
            return Err(
                bad(&nodes_path, line, format!("node {id} out of order: expected node {}", labels.len())).into()
            );
        }
        let faction: u32 = number(&nodes_path, line, fields.get(2).copied().unwrap_or(""), "faction")?;
        if faction > 1 {
            return Err(bad(&nodes_path, line, format!("faction {faction} is not 0 or 1")).into());
        }
        labels.push(Some(faction));
    }
    let n = labels.len();
    if n < 2 {
        return Err(bad(&nodes_path, 2, "the club needs at least its two leaders").into());
    }
    let edges_path = dir.join("edges.csv");
    let text = read(&edges_path)?;
    let mut edges = BTreeSet::new();
    for (line, fields) in csv_rows(&edges_path, &text, "source")? {
        if fields.len() < 2 {
            return Err(bad(&edges_path, line, "expected source,target[,weight]").into());
        }
        let (a, b): (usize, usize) =
            (number(&edges_path, line, fields[0], "source")?, number(&edges_path, line, fields[1], "target")?);
        if a >= n || b >= n {
            return Err(bad(
                &edges_path,
                line,
                format!("edge {a}-{b} names a member that does not exist ({n} in nodes.csv)"),
            )
            .into());
        }
        if a != b {
            edges.insert((a.min(b) as u32, a.max(b) as u32));
        }
    }
    Ok(club(n, edges.into_iter().collect(), labels, format!("karate:{}", dir.display())))
}

/// A club of `n` members: one-hot features, the first and last members labelled for
/// training, everyone else held out.
fn club(n: usize, edges: Vec<(u32, u32)>, labels: Vec<Option<u32>>, source: String) -> NodeGraph {
    let roles = (0..n).map(|i| if i == 0 || i == n - 1 { Role::Train } else { Role::Test }).collect();
    NodeGraph {
        nodes: n,
        edges,
        features: n,
        feature_entries: (0..n as u32).map(|i| (i, i, 1.0)).collect(),
        labels,
        classes: 2,
        roles,
        source,
    }
}

/// The embedded stand-in: two communities of 17 (a planted partition), leaders 0 and 33
/// in different ones.
fn stand_in() -> NodeGraph {
    let g = NodeGraph::planted_partition(2, 17, 1977);
    // planted_partition alternates classes: node 33 is in class 1, node 0 in class 0.
    club(g.nodes, g.edges, g.labels, "embedded two-community graph of 34 nodes".into())
}

/// The network: three graph convolutions, the second of two units (the embedding).
fn build(nodes: usize, hidden: usize, batch: usize, seed: u64) -> Result<Model, LayerError> {
    let mut g = graph_inputs(nodes, seed);
    g.int_input(NODES, &[batch]).int_input(LABELS, &[batch]);
    let h =
        graph_conv(&mut g, "conv1", ConvInput::Sparse(super::gcn::FEATURE_VALUES, nodes), (nodes, hidden), true, true)?;
    let e = graph_conv(&mut g, "conv2", ConvInput::Dense(&h), (hidden, 2), false, false)?;
    let out = graph_conv(&mut g, "conv3", ConvInput::Dense(&e), (2, 2), false, false)?;
    g.layer("logits", |_| Ok(Gather::new(0)), &[&out, NODES])
        .layer("loss", |_| Ok(SoftmaxCrossEntropy::new()), &["logits", LABELS])
        .output("logits", "logits")
        .output("loss", "loss")
        .output("embeddings", &e);
    g.build()
}

/// The family of [`ENTRY`].
pub struct Karate;

const OPTIONS: &[ModelOption] = &[ModelOption {
    name: "hidden",
    help: "Units of the first graph convolution",
    values: OptionValues::Number { min: 1, max: 1024 },
    default: "8",
}];

/// `simdnn train karate`.
pub const ENTRY: ModelEntry = ModelEntry {
    name: "karate",
    title: "Karate club",
    about: "a GCN labels Zachary's karate club's two factions from one member of each, and draws its 2-d embeddings",
    options: OPTIONS,
    default_epochs: (200, 200),
    adam_lr: 0.01,
    note: None,
    defaults: TrainDefaults { batch: 1 << 20, clip_norm: None, schedule: "constant", weight_decay: 5e-4, folds: 1 },
    kind: Kind::Family(&Karate),
};

impl Family for Karate {
    fn load_data(&self, _: &ModelEntry, _: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        let graph = match &request.dir {
            Some(dir) => read_karate(dir)?,
            None => stand_in(),
        };
        let inputs = Arc::new(GraphInputs::new(&graph, Aggregation::Gcn));
        Ok(Splits {
            train: Box::new(NodeSet { graph: inputs.clone(), nodes: graph.nodes_in(Role::Train) }),
            test: Box::new(NodeSet { graph: inputs, nodes: graph.nodes_in(Role::Test) }),
            source: graph.source,
            classes: 2,
            fixed: vec![("nodes", graph.nodes.to_string())],
        })
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
        let nodes = config.number("nodes")?;
        let hidden = config.options.number("hidden", 8);
        let model = build(nodes, hidden, batch.clamp(1, nodes), seed)?;
        let objective = Objective {
            loss: "loss",
            classify: Some(Classify { logits: "logits", labels: LABELS, classes: 2 }),
            report: &[],
        };
        Ok(Box::new(ClassifierStep::new(model, objective, gemm, train)?))
    }

    /// The learned 2-d embeddings of every member, one series per faction.
    fn report(
        &self,
        _: &ModelEntry,
        _: &Config,
        step: &mut dyn Step,
        splits: &Splits,
        _: Option<&EpochMetrics>,
    ) -> Result<Report, RegistryError> {
        let Some(set) = splits.test.as_any().and_then(|a| a.downcast_ref::<NodeSet>()) else {
            return Ok(Report::default());
        };
        let Some(&(_, model)) = step.models().first() else { return Ok(Report::default()) };
        let (mut state, mut inputs) = (State::new(), Inputs::new());
        let all: Vec<usize> = (0..set.len()).collect();
        set.fill(&all, &mut inputs)?;
        model.forward(&Ctx::eval(GemmConfig::from_env().map_err(LayerError::from)?), &mut state, &inputs)?;
        let embeddings = model.output(&state, "embeddings")?.data;
        let mut lines = vec![
            Line { label: "faction 0 (Mr. Hi)".into(), points: Vec::new() },
            Line { label: "faction 1 (the officer)".into(), points: Vec::new() },
        ];
        for (i, &label) in set.graph.labels.iter().enumerate() {
            if let Some(line) = usize::try_from(label).ok().and_then(|l| lines.get_mut(l)) {
                line.points.push((embeddings[2 * i] as f64, embeddings[2 * i + 1] as f64));
            }
        }
        let chart = Chart {
            title: "karate club: learned node embeddings".into(),
            x_label: "embedding 1".into(),
            y_label: "embedding 2".into(),
            lines,
            log_y: false,
            scatter: true,
        };
        Ok(Report { values: Vec::new(), charts: vec![("embeddings.png".into(), chart)] })
    }
}
