//! The generic training loop on data that are not images (token sequences, through an
//! embedding), its checkpoints and resume, and the model registry.

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::ops::{Activation, Embedding, Linear, Reshape, SoftmaxCrossEntropy};
use simdnn::layers::{GraphBuilder, Init, Inputs, LayerError, LrSchedule, Model};
use simdnn::models::checkpoint::{Checkpoint, Part};
use simdnn::models::classifier::{self, ClassifierStep, Classify, Objective};
use simdnn::models::registry::{
    self, Config, DataRequest, Family, Head, Kind, ModelEntry, ModelOption, OptionValues, RegistryError, TrainDefaults,
    MODELS,
};
use simdnn::models::step::{Metrics, Step};
use simdnn::models::train::{self, EpochMetrics, Observer, OptimizerKind, TrainConfig, TrainError};
use simdnn::models::zoo::Convention;
use simdnn::models::{Dataset, Splits};
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
    sequence_classifier_of(32, batch, seed)
}

/// [`sequence_classifier`] with `hidden` units.
fn sequence_classifier_of(hidden: usize, batch: usize, seed: u64) -> Model {
    let mut g = GraphBuilder::new(seed);
    g.int_input("tokens", &[batch, LEN])
        .int_input("label", &[batch])
        .layer("embed", |p| Embedding::new(p, TOKENS, 8), &["tokens"])
        .add("flat", Reshape::new(&[0, LEN * 8]), &["embed"])
        .layer("hidden", |p| Ok(Linear::new(p, LEN * 8, hidden, Init::He)?.with_relu()), &["flat"])
        .add("act", Activation::leaky_relu(0.1), &["hidden"])
        .layer("out", |p| Linear::new(p, hidden, TOKENS, Init::Glorot), &["act"])
        .add("loss", SoftmaxCrossEntropy::new(), &["out", "label"])
        .output("logits", "out")
        .output("loss", "loss");
    g.build().unwrap()
}

const OBJECTIVE: Objective = Objective {
    loss: "loss",
    classify: Some(Classify { logits: "logits", labels: "label", classes: TOKENS }),
    report: &[],
};

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
    let mut step = ClassifierStep::new(model, objective, gemm, Some(cfg))?;
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
        clip_norm: None,
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
    let wrong = Objective { loss: "logits", classify: None, report: &[] };
    let err = fit(model(), wrong, gemm, (&data, &data), &config(1, None, false), &mut Record(vec![], 0)).unwrap_err();
    assert!(err.to_string().contains("scalar"), "{err}");
}

#[test]
fn every_option_of_a_registered_model_builds_and_round_trips_through_metadata() {
    assert!(!MODELS.is_empty());
    for entry in MODELS.iter().filter(|e| !e.options.is_empty() && matches!(e.kind, Kind::Image(_))) {
        for option in entry.options {
            let OptionValues::OneOf(values) = option.values else { continue };
            for value in values {
                let options = entry.options([(option.name, *value)]).unwrap();
                let shape = entry.image("test").unwrap().native;
                let model = entry.build(&options, &shape, 2, 1, Convention::Torchvision, Head::Loss).unwrap();
                if let Some(n) = entry.image("test").unwrap().params {
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

/// A family that is not an image classifier, registered the way a later family registers:
/// majority votes over token sequences, with an embedded default and a numeric option.
struct MajorityFamily;

static MAJORITY_FAMILY: MajorityFamily = MajorityFamily;

static MAJORITY: ModelEntry = ModelEntry {
    name: "majority",
    title: "Majority vote",
    about: "the most frequent of five tokens",
    options: &[ModelOption {
        name: "hidden",
        help: "Hidden units",
        values: OptionValues::Number { min: 1, max: 1024 },
        default: "32",
    }],
    default_epochs: (4, 4),
    adam_lr: 1e-2,
    note: None,
    defaults: TrainDefaults::IMAGES,
    kind: Kind::Family(&MAJORITY_FAMILY),
};

impl Family for MajorityFamily {
    fn configure(
        &self,
        entry: &ModelEntry,
        options: registry::Options,
        _: &[(&'static str, String)],
        recorded: Option<&HashMap<String, String>>,
    ) -> Result<Config, RegistryError> {
        let options = match recorded {
            Some(meta) => entry.recorded_options(meta)?,
            None => options,
        };
        let mut config = Config::new(options);
        config.set_size("tokens", TOKENS);
        Ok(config)
    }
    fn load_data(&self, _: &ModelEntry, _: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        let (train, test) = (Majority::new(request.synthetic_train, 1), Majority::new(request.synthetic_test, 2));
        Ok(Splits {
            train: Box::new(train),
            test: Box::new(test),
            source: "embedded majority votes".into(),
            classes: 3,
            fixed: Vec::new(),
        })
    }
    fn fit_data(&self, _: &ModelEntry, _: &mut Config, _: &Splits) -> Result<(), RegistryError> {
        Ok(())
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
        let hidden = config.options.get("hidden").parse().unwrap_or(32);
        let model = sequence_classifier_of(hidden, batch, seed);
        Ok(Box::new(ClassifierStep::new(model, OBJECTIVE, gemm, train)?))
    }
}

/// What `simdnn train` and `simdnn eval` do with an entry, through its family alone.
#[test]
fn a_family_that_is_not_images_trains_and_evaluates_through_the_registry() {
    let entry = &MAJORITY;
    let family = entry.family();
    assert!(entry.image("a test").is_err(), "not an image classifier");
    assert!(entry.options([("hidden", "0")]).unwrap_err().to_string().contains("from 1 to 1024"));
    assert!(entry.options([("hidden", "many")]).is_err());
    let gemm = GemmConfig::new(Isa::current().unwrap(), 2).unwrap();
    let dir = std::env::temp_dir().join(format!("simdnn-family-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.safetensors");
    let request = DataRequest {
        fold: None,
        dir: None,
        synthetic_train: 2000,
        synthetic_test: 400,
        input: (0, 0),
        channels: 0,
        keep_classes: Vec::new(),
        batch: 16,
    };
    // Train, as `simdnn train majority --hidden 24` does.
    let options = entry.options([("hidden", "24")]).unwrap();
    let mut model_config = family.configure(entry, options, &[], None).unwrap();
    let splits = family.load_data(entry, &model_config, &request).unwrap();
    family.fit_data(entry, &mut model_config, &splits).unwrap();
    let mut cfg = config(6, Some(path.clone()), false);
    cfg.metadata = model_config.metadata(entry);
    let mut step = family.step(entry, &model_config, cfg.batch, 1, Some(&cfg), gemm).unwrap();
    assert_eq!(step.models()[0].1.params().count(), TOKENS * 8 + (LEN * 8 + 1) * 24 + 25 * TOKENS);
    let mut record = Record(Vec::new(), 0);
    train::train(step.as_mut(), &*splits.train, &*splits.test, &cfg, &mut record).unwrap();
    let last = record.0.last().unwrap().clone();
    assert!(last.test_accuracy() > 0.9, "{last:?}");
    // Evaluate, as `simdnn eval majority --weights ...` does: the configuration from the file.
    let ck = Checkpoint::read(&path).unwrap();
    let meta = ck.metadata().unwrap();
    assert_eq!(meta["hidden"], "24");
    let mut recorded = family.configure(entry, entry.options([]).unwrap(), &[], Some(&meta)).unwrap();
    assert_eq!(recorded, model_config);
    let splits = family.load_data(entry, &recorded, &request).unwrap();
    family.fit_data(entry, &mut recorded, &splits).unwrap();
    let mut eval = family.step(entry, &recorded, 100, 0, None, gemm).unwrap();
    let mut weights: Vec<Part> = eval.parts().into_iter().filter(|p| matches!(p, Part::Params(..))).collect();
    ck.load(&mut weights).unwrap();
    let e = eval.evaluate(&*splits.test, 100).unwrap();
    assert_eq!(e.accuracy(), last.test_accuracy());
    assert!(eval.train_batch(&*splits.train, &[0, 1], 0.1, &mut Metrics::new()).is_err(), "no optimizer to step");
    // What `simdnn summary majority` describes.
    let fresh = entry.untrained(entry.options([("hidden", "7")]).unwrap(), gemm).unwrap();
    assert_eq!(fresh.models()[0].1.params().count(), TOKENS * 8 + (LEN * 8 + 1) * 7 + 8 * TOKENS);
    std::fs::remove_dir_all(&dir).unwrap();
}
