//! The generic training loop on data that are not images (token sequences, through an
//! embedding), its checkpoints and resume, and the model registry.

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::ops::{Activation, Embedding, Linear, Reshape, SoftmaxCrossEntropy};
use simdnn::layers::{GraphBuilder, Init, Inputs, LayerError, LrSchedule, Model};
use simdnn::models::checkpoint::Checkpoint;
use simdnn::models::classifier::{self, ClassifierStep, Classify, Objective};
use simdnn::models::registry::{self, Head, MODELS};
use simdnn::models::step::Metrics;
use simdnn::models::train::{self, EpochMetrics, Observer, OptimizerKind, TrainConfig, TrainError};
use simdnn::models::zoo::Convention;
use simdnn::models::Dataset;
use std::collections::HashMap;

const LEN: usize = 5;
const TOKENS: usize = 3;

/// Sequences of `LEN` tokens from `0..TOKENS`, labelled with the most frequent token (ties
/// to the smallest).
struct Majority {
    tokens: Vec<i64>,
    labels: Vec<i64>,
}

impl Majority {
    fn new(n: usize, seed: u64) -> Majority {
        let mut r = simdnn::layers::init::rng(seed);
        let tokens: Vec<i64> = (0..n * LEN).map(|_| simdnn::layers::init::index(&mut r, TOKENS) as i64).collect();
        let labels = tokens
            .chunks(LEN)
            .map(|s| {
                let count = |t: i64| s.iter().filter(|&&v| v == t).count();
                (0..TOKENS as i64).rev().max_by_key(|&t| count(t)).unwrap()
            })
            .collect();
        Majority { tokens, labels }
    }
}

impl Dataset for Majority {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let ids = indices.iter().flat_map(|&i| self.tokens[i * LEN..][..LEN].iter().copied());
        inputs.int_mut("tokens").assign(&[indices.len(), LEN], ids)?;
        inputs.int_mut("label").assign(&[indices.len()], indices.iter().map(|&i| self.labels[i]))
    }
}

/// Embedding, flattened over time, a hidden layer, logits and the loss.
fn sequence_classifier(batch: usize, seed: u64) -> Model {
    let mut g = GraphBuilder::new(seed);
    g.int_input("tokens", &[batch, LEN])
        .int_input("label", &[batch])
        .layer("embed", |p| Embedding::new(p, TOKENS, 8), &["tokens"])
        .add("flat", Reshape::new(&[0, LEN * 8]), &["embed"])
        .layer("hidden", |p| Ok(Linear::new(p, LEN * 8, 32, Init::He)?.with_relu()), &["flat"])
        .add("act", Activation::leaky_relu(0.1), &["hidden"])
        .layer("out", |p| Linear::new(p, 32, TOKENS, Init::Glorot), &["act"])
        .add("loss", SoftmaxCrossEntropy::new(), &["out", "label"])
        .output("logits", "out")
        .output("loss", "loss");
    g.build().unwrap()
}

const OBJECTIVE: Objective =
    Objective { loss: "loss", classify: Some(Classify { logits: "logits", labels: "label", classes: TOKENS }) };

struct Record(Vec<EpochMetrics>, usize);

impl Observer for Record {
    fn batch_done(&mut self, _: usize, _: usize, _: usize, running: &Metrics) {
        assert!(running.get("loss").is_some_and(f64::is_finite));
        self.1 += 1;
    }
    fn epoch_done(&mut self, m: &EpochMetrics) {
        self.0.push(m.clone());
    }
}

/// Trains `model` with the classifier step; returns it trained.
fn fit(
    model: Model,
    objective: Objective,
    gemm: GemmConfig,
    data: (&dyn simdnn::models::Dataset, &dyn simdnn::models::Dataset),
    cfg: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<Model, TrainError> {
    let mut step = ClassifierStep::new(model, objective, gemm, cfg)?;
    train::train(&mut step, data.0, data.1, cfg, observer)?;
    Ok(step.into_model())
}

fn config(epochs: usize, checkpoint: Option<std::path::PathBuf>, resume: bool) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 32,
        lr: 0.01,
        optimizer: OptimizerKind::Adam,
        weight_decay: 0.0,
        schedule: LrSchedule::Constant,
        seed: 3,
        checkpoint,
        resume,
        metadata: HashMap::from([("model".into(), "majority".into())]),
    }
}

#[test]
fn the_trainer_learns_from_sequences_and_resumes_from_its_checkpoint() {
    let gemm = GemmConfig::new(Isa::current().unwrap(), 2).unwrap();
    let (train_set, test_set) = (Majority::new(2000, 1), Majority::new(500, 2));
    let dir = std::env::temp_dir().join(format!("simdnn-train-seq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.safetensors");

    let model = sequence_classifier(32, 5);
    let mut record = Record(Vec::new(), 0);
    let cfg = config(2, Some(path.clone()), false);
    fit(model, OBJECTIVE, gemm, (&train_set, &test_set), &cfg, &mut record).unwrap();
    assert_eq!(record.0.len(), 2);
    assert_eq!(record.1, 2 * 2000usize.div_ceil(32));
    let meta = Checkpoint::read(&path).unwrap().metadata().unwrap();
    assert_eq!((meta["model"].as_str(), meta["epoch"].as_str()), ("majority", "2"));

    // Resumed to 12 epochs in all: ten more run, and they learn the task.
    let mut more = Record(Vec::new(), 0);
    let cfg = config(12, Some(path.clone()), true);
    let resumed = fit(sequence_classifier(32, 99), OBJECTIVE, gemm, (&train_set, &test_set), &cfg, &mut more).unwrap();
    assert_eq!(more.0.first().map(|m| m.epoch), Some(3));
    assert_eq!(more.0.len(), 10);
    let last = more.0.last().unwrap();
    assert!(last.test_accuracy() > 0.95, "{last:?}");
    assert!(last.test_loss() < record.0[1].test_loss());
    let eval = classifier::evaluate(&resumed, gemm, &OBJECTIVE, &test_set, 100).unwrap();
    assert_eq!(eval.accuracy(), last.test_accuracy());
    assert_eq!(eval.confusion.iter().flatten().sum::<usize>(), 500);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_trainer_rejects_bad_configurations() {
    let gemm = GemmConfig::new(Isa::current().unwrap(), 1).unwrap();
    let data = Majority::new(64, 1);
    let model = || sequence_classifier(32, 5);
    let mut bad = config(1, None, false);
    bad.lr = f32::NAN;
    assert!(fit(model(), OBJECTIVE, gemm, (&data, &data), &bad, &mut Record(vec![], 0)).is_err());
    let mut bad = config(1, None, true);
    bad.resume = true;
    assert!(
        fit(model(), OBJECTIVE, gemm, (&data, &data), &bad, &mut Record(vec![], 0)).is_err(),
        "resume without a path"
    );
    let wrong = Objective { loss: "logits", classify: None };
    let err = fit(model(), wrong, gemm, (&data, &data), &config(1, None, false), &mut Record(vec![], 0)).unwrap_err();
    assert!(err.to_string().contains("scalar"), "{err}");
}

#[test]
fn every_option_of_a_registered_model_builds_and_round_trips_through_metadata() {
    assert!(!MODELS.is_empty());
    for entry in MODELS.iter().filter(|e| !e.options.is_empty()) {
        for option in entry.options {
            for value in option.values {
                let options = entry.options([(option.name, *value)]).unwrap();
                let shape = entry.native;
                let model = entry.build(&options, &shape, 2, 1, Convention::Torchvision, Head::Loss).unwrap();
                if let Some(n) = entry.params {
                    assert_eq!(model.params().count(), n, "{} with {} {value}", entry.name, option.name);
                }
                let meta = entry.metadata(&options, &shape);
                assert_eq!(entry.from_metadata(&meta).unwrap(), (options, shape));
            }
        }
        assert!(entry.options([("no-such-option", "x")]).is_err());
    }
    let lenet = registry::find("lenet5").unwrap();
    assert!(lenet.options([("pooling", "median")]).unwrap_err().to_string().contains("max"));
    assert!(registry::find("lenet6").unwrap_err().to_string().contains("lenet5"));
    let other = HashMap::from([("model".to_string(), "resnet".to_string())]);
    assert!(lenet.from_metadata(&other).is_err());
    let bad = HashMap::from([("model".to_string(), "lenet5".to_string()), ("input".to_string(), "32by32".to_string())]);
    assert!(lenet.from_metadata(&bad).unwrap_err().to_string().contains("input"));
}
