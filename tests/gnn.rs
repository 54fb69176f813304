//! The graph family: Cora's plain files read as documented, bad files named by file and
//! line, the models' gradients by finite differences, and what they learn: the GCN on the
//! embedded graph and (when ../shared/data/cora is there) on Cora's standard split over ten
//! seeds, the graph auto-encoders on Cora's held-out links, the karate club, TU graph sets.

mod common;

use common::gemm_configs;
use simdnn::kernels::gemm::GemmConfig;
use simdnn::layers::gradcheck::check_model;
use simdnn::layers::ops::SegmentKind;
use simdnn::layers::LrSchedule;
use simdnn::layers::{Ctx, Inputs};
use simdnn::models::dataset::Dataset;
use simdnn::models::gnn::gcn::{self, Aggregation, GcnSpec, GraphInputs, NodeSet};
use simdnn::models::gnn::graphcls::{self, GraphBatches, GraphClsSpec, NodeStates, Readout};
use simdnn::models::gnn::node_graph::{NodeGraph, Role};
use simdnn::models::gnn::propagate::Propagation;
use simdnn::models::gnn::recurrent;
use simdnn::models::gnn::tu::{GraphSet, SmallGraph};
use simdnn::models::registry::{DataRequest, ModelEntry};
use simdnn::models::step::{Metrics, Step};
use simdnn::models::train::{self, OptimizerKind, Silent, TrainConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn cora() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cora");
    if dir.join("nodes.csv").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: ../shared/data/cora is absent");
        None
    }
}

#[test]
fn cora_reads_as_its_readme_describes() {
    let Some(dir) = cora() else { return };
    let g = NodeGraph::read(&dir).unwrap();
    assert_eq!((g.nodes, g.edges.len(), g.feature_entries.len(), g.features, g.classes), (2708, 5278, 49216, 1433, 7));
    let mut counts = [0usize; 7];
    g.labels.iter().flatten().for_each(|&l| counts[l as usize] += 1);
    assert_eq!(counts, [351, 217, 418, 818, 426, 298, 180]);
    let sizes: Vec<usize> = [Role::Train, Role::Val, Role::Test].iter().map(|&r| g.nodes_in(r).len()).collect();
    assert_eq!(sizes, [140, 500, 1000]);
    let mut degree = vec![0usize; g.nodes];
    for &(a, b) in &g.edges {
        degree[a as usize] += 1;
        degree[b as usize] += 1;
    }
    assert_eq!(degree.iter().max(), Some(&168));
    assert!(degree.iter().all(|&d| d > 0), "no isolated node");
}

/// Writes a graph directory from file contents.
fn graph_dir(name: &str, nodes: &str, edges: &str, features: Option<&str>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simdnn-gnn-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nodes.csv"), nodes).unwrap();
    std::fs::write(dir.join("edges.csv"), edges).unwrap();
    match features {
        Some(f) => std::fs::write(dir.join("features.txt"), f).unwrap(),
        None => {
            let _ = std::fs::remove_file(dir.join("features.txt"));
        }
    }
    dir
}

#[test]
fn bad_graph_files_are_errors_naming_file_and_line() {
    let nodes = "node,label,split\n0,0,train\n1,1,test\n2,,\n";
    let cases = [
        ("edge", nodes, "source,target\n0,1\n1,7\n", None, "edges.csv:3"),
        ("order", "node,label,split\n0,0,train\n2,1,test\n", "source,target\n", None, "nodes.csv:3"),
        ("split", "node,label,split\n0,0,training\n", "source,target\n", None, "nodes.csv:2"),
        ("unlabelled", "node,label,split\n0,,train\n", "source,target\n", None, "nodes.csv:2"),
        ("number", nodes, "source,target\n0,x\n", None, "edges.csv:2"),
        ("feature", nodes, "source,target\n0,1\n", Some("0 3\n5 1\n"), "features.txt:2"),
        ("header", nodes, "0,1\n", None, "edges.csv:1"),
    ];
    for (name, n, e, f, want) in cases {
        let dir = graph_dir(name, n, e, f);
        let err = NodeGraph::read(&dir).expect_err(name).to_string();
        assert!(err.contains(want), "{name}: {err:?} should name {want}");
        std::fs::remove_dir_all(dir).ok();
    }
    // Featureless and unlabelled nodes are allowed; self-loops and repeated edges collapse.
    let dir = graph_dir("ok", nodes, "source,target\n0,1\n1,0\n2,2\n", Some("1 4 0.5\n"));
    let g = NodeGraph::read(&dir).unwrap();
    assert_eq!((g.edges.clone(), g.features, g.labels.clone()), (vec![(0, 1)], 5, vec![Some(0), Some(1), None]));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn gcn_gradients_match_finite_differences() {
    let graph = NodeGraph::planted_partition(3, 6, 5);
    for aggregation in [Aggregation::Gcn, Aggregation::Mean, Aggregation::Sum] {
        let inputs = Arc::new(GraphInputs::new(&graph, aggregation));
        let set = NodeSet { graph: inputs.clone(), nodes: (0..graph.nodes as u32).collect() };
        let spec = GcnSpec { nodes: graph.nodes, features: inputs.features, hidden: 5, classes: 3, dropout: 0.0 };
        for cfg in gemm_configs(1).into_iter().chain([GemmConfig::new(gemm_configs(1)[0].isa(), 2).unwrap()]) {
            let mut model = spec.build(graph.nodes, 3).unwrap();
            // A positive first bias keeps every hidden unit away from ReLU's kink, where
            // finite differences are wrong (the kink itself: tests/ops.rs).
            let bias = model.params().id("conv1.bias").unwrap();
            model.params_mut().value_mut(bias).data_mut().fill(1.0);
            let mut feed = Inputs::new();
            set.fill(&(0..graph.nodes).collect::<Vec<_>>(), &mut feed).unwrap();
            let mut check = simdnn::layers::gradcheck::CheckInputs::new();
            for name in [gcn::ADJ_VALUES, gcn::FEATURE_VALUES] {
                check = check.with(name, feed.f32(name).unwrap().clone());
            }
            for name in [gcn::ADJ, gcn::FEATURES, gcn::NODES, gcn::LABELS] {
                check = check.with_int(name, feed.int(name).unwrap().clone());
            }
            let r = check_model(&mut model, &Ctx::train(cfg), &mut check, "loss", 1e-2, 40, 7).unwrap();
            assert!(r.checked > 0);
            assert!(r.max_error < 5e-3, "{aggregation:?} on {:?}: {} ({:.2e})", cfg.isa(), r.worst, r.max_error);
        }
    }
}

/// Trains the registry's GCN on `dir` (or the embedded graph) from `seed` without files:
/// its last test accuracy.
fn train_gcn(dir: Option<PathBuf>, seed: u64, epochs: usize) -> f64 {
    train_entry(&gcn::ENTRY, dir, seed, epochs).get("accuracy").unwrap()
}

/// Trains a registry entry of the graph family without files: its last test metrics.
fn train_entry(entry: &ModelEntry, dir: Option<PathBuf>, seed: u64, epochs: usize) -> Metrics {
    train_with(entry, &[], dir, seed, epochs)
}

/// [`train_entry`] with options.
fn train_with(entry: &ModelEntry, options: &[(&str, &str)], dir: Option<PathBuf>, seed: u64, epochs: usize) -> Metrics {
    trained(entry, options, dir, (seed, epochs), GemmConfig::from_env().unwrap()).1
}

/// The trained step of a registry entry and its last test metrics.
fn trained(
    entry: &ModelEntry,
    options: &[(&str, &str)],
    dir: Option<PathBuf>,
    (seed, epochs): (u64, usize),
    gemm: GemmConfig,
) -> (Box<dyn Step>, Metrics) {
    let family = entry.family();
    let request = DataRequest {
        fold: None,
        dir,
        synthetic_train: 0,
        synthetic_test: 0,
        input: (0, 0),
        channels: 0,
        keep_classes: Vec::new(),
        batch: entry.defaults.batch,
    };
    let mut config = family.configure(entry, entry.options(options.iter().copied()).unwrap(), &[], None).unwrap();
    let splits = family.load_data(entry, &config, &request).unwrap();
    family.fit_data(entry, &mut config, &splits).unwrap();
    let cfg = TrainConfig {
        epochs,
        batch: entry.defaults.batch,
        lr: entry.adam_lr,
        optimizer: OptimizerKind::Adam,
        weight_decay: entry.defaults.weight_decay,
        schedule: LrSchedule::Constant,
        seed,
        checkpoint: None,
        resume: false,
        metadata: HashMap::new(),
        clip_norm: None,
    };
    let mut step = family.step(entry, &config, cfg.batch, seed, Some(&cfg), gemm).unwrap();
    let history = train::train(step.as_mut(), &*splits.train, &*splits.test, &cfg, &mut Silent).unwrap();
    let test = history.last().unwrap().test.clone();
    (step, test)
}

#[test]
fn gcn_learns_the_embedded_graph() {
    let accuracy = train_gcn(None, 1, 100);
    // Seven classes: chance is 14 %.
    assert!(accuracy > 0.7, "test accuracy {accuracy}");
}

/// Kipf & Welling report 81.5 %; the bar is 80.5 % over ten seeds.
#[test]
fn gcn_reaches_kipf_and_wellings_accuracy_on_cora() {
    let Some(dir) = cora() else { return };
    let accuracies: Vec<f64> = (1..=10).map(|seed| train_gcn(Some(dir.clone()), seed, 200)).collect();
    let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
    assert!(mean >= 0.805, "mean test accuracy {mean} over {accuracies:?}");
}

/// Kipf & Welling report ROC AUC 0.910 (GAE) and 0.914 (VGAE) on Cora; the bar for
/// the GAE is 0.90.
#[test]
fn graph_auto_encoders_predict_coras_held_out_links() {
    let Some(dir) = cora() else { return };
    let gae = train_entry(&simdnn::models::gnn::link::GAE, Some(dir.clone()), 1, 400);
    assert!(gae.get("auc").unwrap() >= 0.90, "GAE {gae:?}");
    let vgae = train_entry(&simdnn::models::gnn::link::VGAE, Some(dir), 3, 400);
    assert!(vgae.get("auc").unwrap() >= 0.85, "VGAE {vgae:?}");
}

#[test]
fn the_karate_club_splits_from_one_member_of_each_faction() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/karate");
    let dir = if dir.join("nodes.csv").exists() {
        let g = simdnn::models::gnn::karate::read_karate(&dir).unwrap();
        assert_eq!((g.nodes, g.edges.len(), g.features), (34, 78, 34));
        assert_eq!(g.labels.iter().filter(|l| **l == Some(1)).count(), 17);
        assert_eq!(g.nodes_in(Role::Train), vec![0, 33]);
        Some(dir)
    } else {
        eprintln!("the karate club's files are absent: the embedded stand-in only");
        None
    };
    for dir in [dir, None] {
        let accuracy = train_entry(&simdnn::models::gnn::karate::ENTRY, dir.clone(), 1, 200).get("accuracy").unwrap();
        assert!(accuracy >= 0.85, "{dir:?}: test accuracy {accuracy}");
    }
}

/// Writes a TU data set `DS` into a fresh directory from `(suffix, contents)` pairs.
fn tu_dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simdnn-tu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (suffix, text) in files {
        std::fs::write(dir.join(format!("DS_{suffix}.txt")), text).unwrap();
    }
    dir
}

#[test]
fn tu_sets_read_as_documented_and_bad_files_name_their_line() {
    // Two graphs: a triangle (nodes 1-3, class -1) and an edge (nodes 4-5, class 1), both
    // directions listed as TU files do.
    let good: Vec<(&str, &str)> = vec![
        ("A", "1, 2\n2, 1\n2, 3\n3, 2\n1, 3\n3, 1\n4, 5\n5, 4\n"),
        ("graph_indicator", "1\n1\n1\n2\n2\n"),
        ("graph_labels", "-1\n1\n"),
        ("node_labels", "0\n2\n1\n0\n0\n"),
    ];
    let dir = tu_dir("good", &good);
    let set = GraphSet::read_tu(&dir).unwrap();
    assert_eq!((set.graphs.len(), set.classes, set.node_labels), (2, 2, 3));
    assert_eq!(set.graphs[0].edges, vec![(0, 1), (0, 2), (1, 2)]);
    assert_eq!(
        set.graphs[1],
        SmallGraph { node_labels: vec![0, 0], edges: vec![(0, 1)], edge_types: vec![0], class: 1 }
    );
    std::fs::remove_dir_all(dir).ok();
    let broken = |file: &str, text: &'static str| {
        let mut files = good.clone();
        files.iter_mut().find(|(s, _)| *s == file).unwrap().1 = text;
        files
    };
    let cases = [
        ("edge", broken("A", "1, 2\n2, 9\n"), "DS_A.txt:2"),
        ("order", broken("graph_indicator", "1\n2\n1\n2\n2\n"), "DS_graph_indicator.txt:3"),
        ("labels", broken("graph_labels", "1\n"), "DS_graph_labels.txt"),
        ("malformed", broken("node_labels", "0\nx\n1\n0\n0\n"), "DS_node_labels.txt:2"),
        ("across", broken("A", "1, 4\n"), "DS_A.txt:1"),
    ];
    for (name, files, want) in cases {
        let dir = tu_dir(name, &files);
        let err = GraphSet::read_tu(&dir).expect_err(name).to_string();
        assert!(err.contains(want), "{name}: {err:?} should name {want}");
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn graph_classifier_gradients_and_learning() {
    let set = GraphSet::motifs(8, 3);
    // (The maximum's kinks, where finite differences fail, are checked in tests/general_ops.rs.)
    for readout in [SegmentKind::Sum, SegmentKind::Mean] {
        let spec = GraphClsSpec {
            features: 3,
            hidden: 4,
            edge_types: 1,
            classes: 2,
            states: NodeStates::Convolutions { layers: 2 },
            readout: Readout::Pool(readout),
        };
        let mut model = spec.build(4, 5).unwrap();
        // Biases away from ReLU's kink, as above.
        for name in ["conv1.bias", "conv2.bias"] {
            let id = model.params().id(name).unwrap();
            model.params_mut().value_mut(id).data_mut().fill(1.0);
        }
        let mut check = motif_check_inputs(&set);
        let ctx = Ctx::train(GemmConfig::from_env().unwrap());
        let r = check_model(&mut model, &ctx, &mut check, "loss", 1e-2, 40, 7).unwrap();
        assert!(r.max_error < 5e-3, "{readout:?}: {} ({:.2e})", r.worst, r.max_error);
    }
    // The embedded set's rule takes neighbours' labels: learned well above chance (50 %).
    let accuracy = train_entry(&graphcls::ENTRY, None, 1, 40).get("accuracy").unwrap();
    assert!(accuracy > 0.7, "test accuracy {accuracy}");
}

/// A batch of the embedded motif graphs as check inputs of a graph classifier.
fn motif_check_inputs(set: &GraphSet) -> simdnn::layers::gradcheck::CheckInputs {
    let batches = GraphBatches::new(Arc::new(set.clone()), (0..set.graphs.len()).collect());
    let mut feed = Inputs::new();
    batches.fill(&[0, 3, 5, 6], &mut feed).unwrap();
    let mut check = simdnn::layers::gradcheck::CheckInputs::new()
        .with(gcn::ADJ_VALUES, feed.f32(gcn::ADJ_VALUES).unwrap().clone())
        .with(graphcls::X, feed.f32(graphcls::X).unwrap().clone());
    for name in [gcn::ADJ, graphcls::GRAPH_IDS, gcn::LABELS, gcn::EDGES, gcn::EDGE_TYPES] {
        check = check.with_int(name, feed.int(name).unwrap().clone());
    }
    check
}

#[test]
fn recurrent_graph_networks_gradients_on_every_path() {
    // Two edge types (the TU reader's edge labels), so the gated network's per-type weights
    // are each checked.
    let mut set = GraphSet::motifs(8, 4);
    set.edge_types = 2;
    for g in &mut set.graphs {
        g.edge_types = (0..g.edges.len() as u32).map(|k| k % 2).collect();
    }
    let contraction = Propagation::Contraction { radius: 0.9, tolerance: 1e-7, max_iterations: 500 };
    let gated = Propagation::Gated { steps: 3, aggregate: SegmentKind::Sum };
    for (states, readout) in [
        (NodeStates::Recurrent(contraction), Readout::Pool(SegmentKind::Sum)),
        (NodeStates::Recurrent(gated), Readout::Gated),
        (
            NodeStates::Recurrent(Propagation::Gated { steps: 2, aggregate: SegmentKind::Mean }),
            Readout::Pool(SegmentKind::Mean),
        ),
    ] {
        let spec = GraphClsSpec { features: 3, hidden: 4, edge_types: 2, classes: 2, states, readout };
        for gemm in gemm_configs(1) {
            let mut model = spec.build(4, 5).unwrap();
            let mut check = motif_check_inputs(&set);
            let r = check_model(&mut model, &Ctx::train(gemm), &mut check, "loss", 1e-2, 30, 7).unwrap();
            assert!(r.checked > 0);
            assert!(
                r.max_error < 5e-3,
                "{states:?} {readout:?} on {:?}: {} ({:.2e})",
                gemm.isa(),
                r.worst,
                r.max_error
            );
        }
    }
}

#[test]
fn recurrent_graph_networks_solve_the_embedded_graph_task() {
    // The motif rule (two adjacent nodes of label 0) takes a neighbour's label: the gated
    // network with its gated readout, and the fixed point, learn it well above chance.
    for (conv, readout) in [("ggnn", "gated"), ("recgnn", "sum")] {
        let options = [("conv", conv), ("readout", readout), ("hidden", "32")];
        let test = train_with(&graphcls::ENTRY, &options, None, 1, 40);
        let accuracy = test.get("accuracy").unwrap();
        assert!(accuracy > 0.85, "{conv}: test accuracy {accuracy}");
        if conv == "recgnn" {
            let iterations = test.get("iterations").unwrap();
            assert!((1.0..100.0).contains(&iterations), "{iterations} iterations");
        }
    }
}

#[test]
fn recurrent_graph_networks_learn_the_embedded_node_task() {
    // Seven classes: chance is about 14 %.
    let ggnn = train_entry(&recurrent::GGNN, None, 1, 100).get("accuracy").unwrap();
    assert!(ggnn > 0.3, "ggnn: test accuracy {ggnn}");
    let test = train_entry(&recurrent::RECGNN, None, 1, 100);
    let accuracy = test.get("accuracy").unwrap();
    assert!(accuracy > 0.3, "recgnn: test accuracy {accuracy}");
    let iterations = test.get("iterations").unwrap();
    assert!((2.0..100.0).contains(&iterations), "recgnn: {iterations} iterations");
}

#[test]
fn recurrent_graph_networks_take_tu_data_as_a_graph_task() {
    // Two graphs of each class with edge labels: the TU directory makes a graph task whose
    // edge types come from the labels.
    let dir = tu_dir(
        "recurrent_tu",
        &[
            ("A", "1,2\n2,1\n3,4\n4,3\n5,6\n6,5\n7,8\n8,7\n"),
            ("graph_indicator", "1\n1\n2\n2\n3\n3\n4\n4\n"),
            ("graph_labels", "0\n1\n0\n1\n"),
            ("node_labels", "0\n1\n0\n0\n1\n1\n0\n0\n"),
            ("edge_labels", "5\n5\n7\n7\n5\n5\n7\n7\n"),
        ],
    );
    let set = GraphSet::read_tu(&dir).unwrap();
    assert_eq!(set.edge_types, 2);
    assert_eq!(set.graphs[1].edge_types, vec![1]);
    let test = train_with(&recurrent::GGNN, &[("hidden", "8")], Some(dir.clone()), 1, 3);
    assert!(test.get("accuracy").is_some());
    let test = train_with(&recurrent::RECGNN, &[("hidden", "8")], Some(dir), 1, 3);
    assert!(test.get("iterations").is_some(), "the fixed point reports its iterations on graph tasks too");
}

#[test]
fn recurrent_graph_networks_train_alike_on_any_thread_count() {
    let weights = |threads: usize| {
        let gemm = GemmConfig::from_env().unwrap().with_threads(threads).unwrap();
        let (step, _) = trained(&recurrent::GGNN, &[("steps", "2"), ("hidden", "8")], None, (9, 3), gemm);
        let mut all = Vec::new();
        for (_, model) in step.models() {
            for id in model.params().ids() {
                all.extend(model.params().value(id).data().iter().map(|v| v.to_bits()));
            }
        }
        all
    };
    assert_eq!(weights(1), weights(2), "bit-identical weights on one and two threads");
}
