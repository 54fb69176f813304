//! Link prediction with graph auto-encoders (Kipf & Welling, "Variational Graph
//! Auto-Encoders", NIPS workshop 2016): a GCN encodes every node as `z_i`, and an edge
//! `(i, j)` is scored `σ(z_i · z_j)` on the pairs asked for (SDDMM: never the dense `N x N`
//! product). `gae` encodes with two graph convolutions (32 then 16 units); `vgae` draws
//! `z ~ N(mu, exp(logstd)²)` from two second-layer convolutions and adds the KL divergence
//! from `N(0, 1)`, scaled by `1 / N` against the reconstruction's two means.
//!
//! The edges are split 85 / 5 / 10 % into training, validation and test edges (a fixed
//! seed, so `eval` sees the same test edges); the encoder sees only the training edges.
//! Each step scores the training edges against as many node pairs drawn uniformly from the
//! non-edges of the training graph (fresh each step); validation and test edges are scored
//! against fixed samples of non-edges of the whole graph, as many as they have. The
//! reports: the area under the ROC curve (`auc`) and the average precision (`ap`).

use super::gcn::{graph_conv, graph_inputs, Aggregation, ConvInput, GraphInputs, FEATURE_VALUES};
use super::node_graph::NodeGraph;
use crate::classifier::{ClassifierStep, Objective};
use crate::dataset::{Dataset, Splits};
use crate::registry::{
    Config, DataRequest, Family, Kind, ModelEntry, ModelOption, OptionValues, RegistryError, TrainDefaults,
};
use crate::report::Report;
use crate::step::{Evaluation, Metrics, Step};
use crate::train::{EpochMetrics, TrainConfig, TrainError};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::init::{index, rng, shuffle};
use simdnn_layers::ops::{Add, BceWithLogits, GaussianKl, GaussianSample, SampledDot};
use simdnn_layers::{Ctx, Inputs, LayerError, Model, State};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Input names: the node pairs scored and their targets (1: an edge, 0: not).
pub const PAIRS: &str = "pairs";
pub const TARGETS: &str = "targets";

/// The seed of the edge split and of the held-out non-edges.
const SPLIT_SEED: u64 = 2016;

/// An undirected pair as `(low, high)`.
fn pair(a: u32, b: u32) -> (u32, u32) {
    (a.min(b), a.max(b))
}

/// The edges split for link prediction, with held-out non-edges.
pub struct EdgeSplit {
    pub train: Vec<(u32, u32)>,
    pub val: Vec<(u32, u32)>,
    pub test: Vec<(u32, u32)>,
    pub val_negative: Vec<(u32, u32)>,
    pub test_negative: Vec<(u32, u32)>,
}

impl EdgeSplit {
    /// 85 / 5 / 10 % of `g`'s edges at random (at least one each for val and test when the
    /// graph has three edges or more); as many non-edges of `g` for val and test.
    pub fn new(g: &NodeGraph, seed: u64) -> Result<EdgeSplit, RegistryError> {
        let n = g.nodes;
        let mut r = rng(seed);
        let mut edges = g.edges.clone();
        shuffle(&mut r, &mut edges);
        let m = edges.len();
        let (n_val, n_test) = ((m as f64 * 0.05).round() as usize, (m as f64 * 0.10).round() as usize);
        let (n_val, n_test) = if m >= 3 { (n_val.max(1), n_test.max(1)) } else { (0, 0) };
        let all: HashSet<(u32, u32)> = g.edges.iter().copied().collect();
        let possible = n * n.saturating_sub(1) / 2;
        if possible < m + n_val + n_test {
            return Err(RegistryError::Data(crate::data::DataError::Invalid {
                what: g.source.clone(),
                reason: "the graph is too dense to hold out as many non-edges as edges".into(),
            }));
        }
        let mut taken = HashSet::new();
        let mut negatives = |count: usize| -> Vec<(u32, u32)> {
            let mut out = Vec::with_capacity(count);
            while out.len() < count {
                let (a, b) = (index(&mut r, n) as u32, index(&mut r, n) as u32);
                let p = pair(a, b);
                if a != b && !all.contains(&p) && taken.insert(p) {
                    out.push(p);
                }
            }
            out
        };
        let (val_negative, test_negative) = (negatives(n_val), negatives(n_test));
        let test = edges.split_off(m - n_test);
        let val = edges.split_off(m - n_test - n_val);
        Ok(EdgeSplit { train: edges, val, test, val_negative, test_negative })
    }
}

/// The training edges; each batch adds as many fresh non-edges of the training graph.
pub struct TrainingEdges {
    graph: Arc<GraphInputs>,
    edges: Vec<(u32, u32)>,
    known: HashSet<(u32, u32)>,
    /// Batches drawn so far: the draws of batch `k` come from `seed ^ k`.
    draws: AtomicU64,
    seed: u64,
}

/// Feeds `graph`, then `pairs` with their targets.
fn fill_pairs(
    graph: &GraphInputs,
    pairs: &[(u32, u32)],
    targets: &[f32],
    inputs: &mut Inputs,
) -> Result<(), LayerError> {
    graph.fill(inputs);
    let p = pairs.len();
    let index = pairs.iter().map(|&(a, _)| a as i64).chain(pairs.iter().map(|&(_, b)| b as i64));
    inputs.int_mut(PAIRS).assign(&[2, p], index)?;
    let t = inputs.f32_mut(TARGETS);
    t.resize(&[p]);
    t.data_mut().copy_from_slice(targets);
    Ok(())
}

fn pick<T: Copy>(items: &[T], i: usize, what: &'static str) -> Result<T, LayerError> {
    items.get(i).copied().ok_or(LayerError::IndexRange { what, index: i as i64, len: items.len() })
}

impl Dataset for TrainingEdges {
    fn len(&self) -> usize {
        self.edges.len()
    }

    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let n = self.graph.nodes;
        let mut pairs: Vec<(u32, u32)> =
            indices.iter().map(|&i| pick(&self.edges, i, "training edge")).collect::<Result<_, _>>()?;
        let mut r = rng(self.seed ^ self.draws.fetch_add(1, Ordering::Relaxed));
        while pairs.len() < 2 * indices.len() {
            let (a, b) = (index(&mut r, n) as u32, index(&mut r, n) as u32);
            if a != b && !self.known.contains(&pair(a, b)) {
                pairs.push((a, b));
            }
        }
        let targets: Vec<f32> = (0..pairs.len()).map(|k| f32::from(u8::from(k < indices.len()))).collect();
        fill_pairs(&self.graph, &pairs, &targets, inputs)
    }
}

/// Held-out edges and non-edges, scored as they are.
pub struct ScoredPairs {
    graph: Arc<GraphInputs>,
    pairs: Vec<(u32, u32)>,
    targets: Vec<f32>,
}

impl ScoredPairs {
    fn new(graph: Arc<GraphInputs>, edges: &[(u32, u32)], non_edges: &[(u32, u32)]) -> ScoredPairs {
        let pairs = edges.iter().chain(non_edges).copied().collect();
        let targets = edges.iter().map(|_| 1.0).chain(non_edges.iter().map(|_| 0.0)).collect();
        ScoredPairs { graph, pairs, targets }
    }
}

impl Dataset for ScoredPairs {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let pairs: Vec<(u32, u32)> =
            indices.iter().map(|&i| pick(&self.pairs, i, "scored pair")).collect::<Result<_, _>>()?;
        let targets: Vec<f32> =
            indices.iter().map(|&i| pick(&self.targets, i, "scored pair")).collect::<Result<_, _>>()?;
        fill_pairs(&self.graph, &pairs, &targets, inputs)
    }
}

/// The area under the ROC curve of `scores` against binary `targets`: the probability that
/// an edge outscores a non-edge, ties counting a half (the Mann-Whitney statistic).
pub fn roc_auc(scores: &[f32], targets: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut positives) = (0.0f64, 0usize);
    let mut i = 0;
    while i < order.len() {
        // A run of equal scores shares the mean of its ranks.
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j + 1) as f64 / 2.0;
        for &k in &order[i..j] {
            if targets[k] > 0.5 {
                rank_sum += mean_rank;
                positives += 1;
            }
        }
        i = j;
    }
    let negatives = scores.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    (rank_sum - (positives * (positives + 1)) as f64 / 2.0) / (positives * negatives) as f64
}

/// The average precision of `scores` against binary `targets`: the mean, over the edges,
/// of the precision among the pairs scored at least as high (scikit-learn's definition).
pub fn average_precision(scores: &[f32], targets: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = targets.iter().filter(|&&t| t > 0.5).count();
    if positives == 0 {
        return f64::NAN;
    }
    let (mut sum, mut hits, mut i) = (0.0f64, 0usize, 0usize);
    while i < order.len() {
        let mut j = i;
        let mut run_hits = 0;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            run_hits += usize::from(targets[order[j]] > 0.5);
            j += 1;
        }
        hits += run_hits;
        sum += run_hits as f64 * hits as f64 / j as f64;
        i = j;
    }
    sum / positives as f64
}

/// The auto-encoder's sizes.
#[derive(Clone, Copy, Debug)]
pub struct GaeSpec {
    pub nodes: usize,
    pub features: usize,
    pub hidden: usize,
    pub latent: usize,
    pub variational: bool,
}

impl GaeSpec {
    /// The encoder and the decoder on `pairs`; outputs `scores` (logits), `loss` and the
    /// nodes' `embeddings` (`mu` for the VGAE).
    pub fn build(&self, pairs: usize, seed: u64) -> Result<Model, LayerError> {
        let GaeSpec { nodes, features, hidden, latent, variational } = *self;
        let mut g = graph_inputs(nodes, seed);
        g.int_input(PAIRS, &[2, pairs]).input(TARGETS, &[pairs]);
        let h = graph_conv(&mut g, "conv1", ConvInput::Sparse(FEATURE_VALUES, nodes), (features, hidden), true, false)?;
        let z = if variational {
            let mu = graph_conv(&mut g, "conv_mu", ConvInput::Dense(&h), (hidden, latent), false, false)?;
            let logstd = graph_conv(&mut g, "conv_logstd", ConvInput::Dense(&h), (hidden, latent), false, false)?;
            g.layer("z", |_| Ok(GaussianSample::new(seed ^ 3)), &[&mu, &logstd])
                // Kipf's and PyG's reconstruction loss is the mean over edges plus the mean
                // over non-edges: twice the mean over both that BCE takes here, so the KL
                // term's 1 / N is halved to keep their balance.
                .layer("kl", |_| Ok(GaussianKl::new(0.5 / nodes as f32)), &[&mu, &logstd]);
            "z".to_string()
        } else {
            graph_conv(&mut g, "conv2", ConvInput::Dense(&h), (hidden, latent), false, false)?
        };
        g.layer("scores", |_| Ok(SampledDot::new()), &[PAIRS, &z]);
        if variational {
            g.layer("reconstruction", |_| Ok(BceWithLogits::new()), &["scores", TARGETS]).layer(
                "loss",
                |_| Ok(Add::new()),
                &["reconstruction", "kl"],
            );
        } else {
            g.layer("loss", |_| Ok(BceWithLogits::new()), &["scores", TARGETS]);
        }
        g.output("scores", "scores").output("loss", "loss").output("embeddings", &z);
        g.build()
    }
}

/// The classifier's training step (one model, its scalar loss), evaluated by ranking.
struct LinkStep {
    inner: ClassifierStep,
    gemm: GemmConfig,
}

impl Step for LinkStep {
    fn train_batch(
        &mut self,
        data: &dyn Dataset,
        indices: &[usize],
        lr: f32,
        out: &mut Metrics,
    ) -> Result<(), TrainError> {
        self.inner.train_batch(data, indices, lr, out)
    }

    /// Scores every pair of `data` at once (the encoder runs on the whole graph anyway).
    fn evaluate(&mut self, data: &dyn Dataset, _batch: usize) -> Result<Evaluation, TrainError> {
        let model = self.inner.model();
        let (mut state, mut inputs) = (State::new(), Inputs::new());
        let all: Vec<usize> = (0..data.len()).collect();
        data.fill(&all, &mut inputs)?;
        model.forward(&Ctx::eval(self.gemm), &mut state, &inputs)?;
        let scores = model.output(&state, "scores")?.data;
        let targets = inputs.f32(TARGETS).map(|t| t.data()).unwrap_or(&[]);
        let mut metrics = Metrics::new();
        metrics.set("loss", model.output(&state, "loss")?.data.first().copied().unwrap_or(f32::NAN) as f64);
        metrics.set("auc", roc_auc(scores, targets));
        metrics.set("ap", average_precision(scores, targets));
        Ok(Evaluation { metrics, examples: data.len(), confusion: Vec::new() })
    }

    fn parts(&mut self) -> Vec<crate::checkpoint::Part<'_>> {
        self.inner.parts()
    }

    fn models(&self) -> Vec<(&'static str, &Model)> {
        self.inner.models()
    }
}

/// The family of [`GAE`] and [`VGAE`].
pub struct Gae {
    variational: bool,
}

static GAE_FAMILY: Gae = Gae { variational: false };
static VGAE_FAMILY: Gae = Gae { variational: true };

const OPTIONS: &[ModelOption] = &[
    ModelOption {
        name: "hidden",
        help: "Units of the first graph convolution",
        values: OptionValues::Number { min: 1, max: 4096 },
        default: "32",
    },
    ModelOption {
        name: "latent",
        help: "Units of the node embeddings z",
        values: OptionValues::Number { min: 1, max: 4096 },
        default: "16",
    },
];

const DEFAULTS: TrainDefaults =
    TrainDefaults { batch: 1 << 24, clip_norm: None, schedule: "constant", weight_decay: 0.0, folds: 1 };

/// `simdnn train gae`.
pub const GAE: ModelEntry = ModelEntry {
    name: "gae",
    title: "GAE",
    about: "Kipf & Welling's graph auto-encoder: link prediction scored by ROC AUC and average precision",
    options: OPTIONS,
    default_epochs: (400, 400),
    adam_lr: 0.01,
    note: Some("Kipf & Welling report AUC 0.910, AP 0.920 on Cora"),
    defaults: DEFAULTS,
    kind: Kind::Family(&GAE_FAMILY),
};

/// `simdnn train vgae`.
pub const VGAE: ModelEntry = ModelEntry {
    name: "vgae",
    title: "VGAE",
    about: "Kipf & Welling's variational graph auto-encoder: link prediction by ROC AUC and average precision",
    options: OPTIONS,
    default_epochs: (400, 400),
    adam_lr: 0.01,
    note: Some("Kipf & Welling report AUC 0.914, AP 0.926 on Cora"),
    defaults: DEFAULTS,
    kind: Kind::Family(&VGAE_FAMILY),
};

impl Family for Gae {
    fn load_data(&self, _: &ModelEntry, _: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        let graph = super::gcn::load_graph(request)?;
        let split = EdgeSplit::new(&graph, SPLIT_SEED)?;
        let train_graph = NodeGraph { edges: split.train.clone(), ..graph.clone() };
        let inputs = Arc::new(GraphInputs::new(&train_graph, Aggregation::Gcn));
        let fixed = vec![("nodes", graph.nodes.to_string()), ("features", inputs.features.to_string())];
        let train = TrainingEdges {
            graph: inputs.clone(),
            known: split.train.iter().copied().collect(),
            edges: split.train,
            draws: AtomicU64::new(0),
            seed: SPLIT_SEED ^ 1,
        };
        Ok(Splits {
            train: Box::new(train),
            test: Box::new(ScoredPairs::new(inputs, &split.test, &split.test_negative)),
            source: graph.source,
            classes: 0,
            fixed,
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
        let spec = GaeSpec {
            nodes: config.number("nodes")?,
            features: config.number("features")?,
            hidden: config.options.number("hidden", 32),
            latent: config.options.number("latent", 16),
            variational: self.variational,
        };
        let model = spec.build(batch.clamp(1, 1 << 16), seed)?;
        let objective = Objective { loss: "loss", classify: None, report: &[] };
        Ok(Box::new(LinkStep { inner: ClassifierStep::new(model, objective, gemm, train)?, gemm }))
    }

    fn report(
        &self,
        _: &ModelEntry,
        _: &Config,
        _: &mut dyn Step,
        _: &Splits,
        last: Option<&EpochMetrics>,
    ) -> Result<Report, RegistryError> {
        let values = ["auc", "ap"].into_iter().filter_map(|name| Some((name, last?.test.get(name)?))).collect();
        Ok(Report { values, charts: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_scores_match_hand_counts() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
        let targets = [1.0, 0.0, 1.0, 0.0, 0.0];
        // Pairs (edge, non-edge) ordered right: (0.9 > all 3) + (0.7 > 0.6, 0.5) = 5 of 6.
        assert!((roc_auc(&scores, &targets) - 5.0 / 6.0).abs() < 1e-12);
        // Precision at the edges: 1/1 and 2/3.
        assert!((average_precision(&scores, &targets) - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // Ties count a half.
        assert!((roc_auc(&[0.5, 0.5], &[1.0, 0.0]) - 0.5).abs() < 1e-12);
    }
}
