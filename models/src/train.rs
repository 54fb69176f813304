//! The training loop, generic over the model, its loss and its data: mini-batch gradient
//! descent on the model's loss output, evaluation on a held-out set after each epoch,
//! checkpoints, resume, and a stop with a clear error when the loss stops being finite.

use crate::checkpoint::{self, Checkpoint, CheckpointError, Part};
use crate::data::epoch_order;
use crate::dataset::Dataset;
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::ops::argmax_rows;
use simdnn_layers::{Adam, Ctx, Grads, Inputs, LayerError, LrSchedule, Model, Optimizer, Select, Sgd, State};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;
use thiserror::Error;

/// What a model's outputs and inputs mean to the trainer: the scalar output it minimises,
/// and, for classifiers, the logits and labels accuracy is counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Objective {
    /// A scalar output (shape `[]`): the batch's mean loss.
    pub loss: &'static str,
    pub classify: Option<Classify>,
}

/// Rows of output `logits` (`[rows, classes]`) against the integer input `labels`
/// (`[rows]`): accuracy and the confusion matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classify {
    pub logits: &'static str,
    pub labels: &'static str,
    pub classes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// SGD with momentum 0.9 (Nesterov).
    Sgd,
    Adam,
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub optimizer: OptimizerKind,
    pub weight_decay: f32,
    pub schedule: LrSchedule,
    pub seed: u64,
    /// Where the checkpoint is written after each epoch (none: no checkpoints).
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint instead of starting afresh.
    pub resume: bool,
    /// Strings stored in every checkpoint (model name, configuration).
    pub metadata: HashMap<String, String>,
}

/// One epoch's results (accuracies are 0 for a model that does not classify).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Wall time of the training pass (evaluation excluded).
    pub train_seconds: f64,
    pub examples_per_second: f64,
    pub lr: f32,
}

/// Progress reports from the loop (progress bars, logs, metric files).
pub trait Observer {
    fn batch_done(&mut self, _epoch: usize, _batch: usize, _batches: usize, _loss: f32, _accuracy: f64) {}
    fn epoch_done(&mut self, _metrics: &EpochMetrics) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Loss and accuracy on a set, with the confusion matrix (`[true][predicted]`, empty for a
/// model that does not classify).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub confusion: Vec<Vec<usize>>,
    pub examples: usize,
}

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "the loss became {loss} at epoch {epoch}, batch {batch}: training stopped{}",
        .kept.as_ref().map_or(String::new(), |p| format!("; the last good checkpoint is kept at {}", p.display()))
    )]
    NonFiniteLoss { epoch: usize, batch: usize, loss: f32, kept: Option<PathBuf> },
    #[error("{0}")]
    Config(String),
}

/// The checkpoint prefixes of the trained model and its optimizer.
pub const MODEL_PREFIX: &str = "model";
pub const OPTIMIZER_PREFIX: &str = "optim";

/// Counts a batch's correct predictions (and fills the confusion matrix, when given).
struct Scorer {
    predicted: Vec<usize>,
}

impl Scorer {
    fn score(
        &mut self,
        classify: &Classify,
        model: &Model,
        state: &State,
        inputs: &Inputs,
        mut confusion: Option<&mut Vec<Vec<usize>>>,
    ) -> Result<usize, LayerError> {
        argmax_rows(model.output(state, classify.logits)?, &mut self.predicted)?;
        let labels =
            inputs.int(classify.labels).ok_or_else(|| LayerError::MissingInput { name: classify.labels.into() })?;
        let mut correct = 0;
        for (&p, &t) in self.predicted.iter().zip(labels.data()) {
            correct += usize::from(p as i64 == t);
            if let Some(cell) = confusion.as_deref_mut().and_then(|c| c.get_mut(t as usize)?.get_mut(p)) {
                *cell += 1;
            }
        }
        Ok(correct)
    }
}

/// The scalar loss of the last pass.
fn loss_of(model: &Model, state: &State, objective: &Objective) -> Result<f32, LayerError> {
    let loss = model.output(state, objective.loss)?;
    match loss.data {
        [l] => Ok(*l),
        _ => Err(LayerError::InputShape {
            layer: format!("loss output {:?}", objective.loss),
            expected: "a scalar (shape [])".into(),
            got: loss.shape.to_vec(),
        }),
    }
}

/// Runs `model` over `data` in evaluation mode, in batches of `batch`.
pub fn evaluate(
    model: &Model,
    gemm: GemmConfig,
    objective: &Objective,
    data: &dyn Dataset,
    batch: usize,
) -> Result<Evaluation, TrainError> {
    let ctx = Ctx::eval(gemm);
    let (mut state, mut inputs) = (State::new(), Inputs::new());
    let mut scorer = Scorer { predicted: Vec::new() };
    let classes = objective.classify.map_or(0, |c| c.classes);
    let mut confusion = vec![vec![0; classes]; classes];
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(batch.max(1)) {
        data.fill(chunk, &mut inputs)?;
        model.forward(&ctx, &mut state, &inputs)?;
        loss_sum += loss_of(model, &state, objective)? as f64 * chunk.len() as f64;
        if let Some(classify) = &objective.classify {
            correct += scorer.score(classify, model, &state, &inputs, Some(&mut confusion))?;
        }
    }
    let n = data.len().max(1) as f64;
    Ok(Evaluation { loss: loss_sum / n, accuracy: correct as f64 / n, confusion, examples: data.len() })
}

fn make_optimizer(cfg: &TrainConfig, gemm: GemmConfig, model: &Model) -> Result<Box<dyn Optimizer>, LayerError> {
    let params = model.params();
    Ok(match cfg.optimizer {
        OptimizerKind::Sgd => Box::new(
            Sgd::new()
                .with_momentum(0.9, true)?
                .with_weight_decay(cfg.weight_decay)?
                .with_config(gemm)
                .attach(params, Select::Trainable)?,
        ),
        OptimizerKind::Adam => Box::new(
            Adam::new().with_weight_decay(cfg.weight_decay)?.with_config(gemm).attach(params, Select::Trainable)?,
        ),
    })
}

/// The number of completed epochs recorded in a checkpoint's metadata.
pub fn checkpoint_epoch(meta: &HashMap<String, String>) -> usize {
    meta.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0)
}

/// One training run's buffers, reused batch after batch: after the first batches (a full
/// one and the epoch's last), a step allocates nothing.
pub struct Trainer<'m> {
    model: &'m mut Model,
    objective: Objective,
    optimizer: Box<dyn Optimizer>,
    ctx: Ctx,
    state: State,
    grads: Grads,
    inputs: Inputs,
    scorer: Scorer,
}

/// A training step's loss and correct predictions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepResult {
    pub loss: f32,
    pub correct: usize,
}

impl<'m> Trainer<'m> {
    pub fn new(
        model: &'m mut Model,
        objective: Objective,
        gemm: GemmConfig,
        cfg: &TrainConfig,
    ) -> Result<Self, TrainError> {
        let optimizer = make_optimizer(cfg, gemm, model)?;
        let grads = Grads::new(model.params());
        Ok(Trainer {
            model,
            objective,
            optimizer,
            ctx: Ctx::train(gemm),
            state: State::new(),
            grads,
            inputs: Inputs::new(),
            scorer: Scorer { predicted: Vec::new() },
        })
    }

    /// The model and optimizer as checkpoint parts.
    fn parts(&mut self) -> [Part<'_>; 2] {
        [
            Part::Params(MODEL_PREFIX, self.model.params_mut()),
            Part::Optimizer(OPTIMIZER_PREFIX, self.optimizer.as_mut()),
        ]
    }

    /// One step on the examples `indices` of `data` with learning rate `lr`. A non-finite
    /// loss is returned without updating the weights.
    pub fn step(&mut self, data: &dyn Dataset, indices: &[usize], lr: f32) -> Result<StepResult, TrainError> {
        data.fill(indices, &mut self.inputs)?;
        let model = &*self.model;
        model.forward(&self.ctx, &mut self.state, &self.inputs)?;
        let loss = loss_of(model, &self.state, &self.objective)?;
        if !loss.is_finite() {
            return Ok(StepResult { loss, correct: 0 });
        }
        let correct = match &self.objective.classify {
            Some(c) => self.scorer.score(c, model, &self.state, &self.inputs, None)?,
            None => 0,
        };
        self.grads.zero();
        model.backward_from(&self.ctx, &mut self.state, &mut self.grads, self.objective.loss)?;
        self.optimizer.step(self.model.params_mut(), &self.grads, lr)?;
        Ok(StepResult { loss, correct })
    }
}

/// Trains `model` on `train` for `cfg.epochs` epochs (in total, counting those a resumed
/// checkpoint already did), evaluating on `test` after each. Returns every epoch's metrics
/// run in this call.
pub fn train(
    model: &mut Model,
    objective: Objective,
    gemm: GemmConfig,
    train: &dyn Dataset,
    test: &dyn Dataset,
    cfg: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochMetrics>, TrainError> {
    if cfg.batch == 0 || train.is_empty() {
        return Err(TrainError::Config("the batch size and the training set must not be empty".into()));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(TrainError::Config(format!("the learning rate must be a positive number, got {}", cfg.lr)));
    }
    let mut trainer = Trainer::new(model, objective, gemm, cfg)?;
    let mut first_epoch = 0;
    if cfg.resume {
        let path =
            cfg.checkpoint.as_ref().ok_or_else(|| TrainError::Config("--resume needs an output directory".into()))?;
        let ck = Checkpoint::read(path)?;
        ck.load(&mut trainer.parts())?;
        first_epoch = checkpoint_epoch(&ck.metadata()?);
    }
    let batches = train.len().div_ceil(cfg.batch);
    let mut history = Vec::new();
    for epoch in first_epoch..cfg.epochs {
        let order = epoch_order(train.len(), cfg.seed, epoch);
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut lr = cfg.lr;
        for (b, chunk) in order.chunks(cfg.batch).enumerate() {
            lr = cfg.schedule.lr(cfg.lr, epoch * batches + b);
            let step = trainer.step(train, chunk, lr)?;
            if !step.loss.is_finite() {
                let kept = cfg.checkpoint.clone().filter(|p| p.exists());
                return Err(TrainError::NonFiniteLoss { epoch: epoch + 1, batch: b + 1, loss: step.loss, kept });
            }
            loss_sum += step.loss as f64 * chunk.len() as f64;
            correct += step.correct;
            seen += chunk.len();
            observer.batch_done(epoch + 1, b + 1, batches, step.loss, correct as f64 / seen as f64);
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let eval = evaluate(trainer.model, gemm, &objective, test, cfg.batch.max(256))?;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            test_loss: eval.loss,
            test_accuracy: eval.accuracy,
            train_seconds,
            examples_per_second: seen as f64 / train_seconds,
            lr,
        };
        if let Some(path) = &cfg.checkpoint {
            let mut meta = cfg.metadata.clone();
            meta.insert("epoch".into(), (epoch + 1).to_string());
            meta.insert("test_accuracy".into(), eval.accuracy.to_string());
            checkpoint::save(path, &mut trainer.parts(), meta)?;
        }
        observer.epoch_done(&metrics);
        history.push(metrics);
    }
    Ok(history)
}
