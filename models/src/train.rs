//! The one training loop, generic over the family's [`Step`]: mini-batch epochs over a
//! data set, the learning-rate schedule, evaluation on a held-out set after each epoch,
//! checkpoints, resume, and a stop with a clear error when a loss stops being finite.

use crate::checkpoint::{self, Checkpoint, CheckpointError, Part};
use crate::data::epoch_order;
use crate::dataset::Dataset;
use crate::step::{Metrics, RunningMean, Step};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::{Adam, LayerError, LrSchedule, Model, Optimizer, Select, Sgd};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;
use thiserror::Error;

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
    /// Rescale each step's gradients to at most this joint L2 norm (Pascanu et al., 2013):
    /// what keeps backpropagation through time from exploding.
    pub clip_norm: Option<f32>,
}

/// One epoch's results: the step's metrics averaged over the training examples and over
/// the held-out set (a classifier's `loss` and `accuracy`; a GAN's `d_loss`, `g_loss`).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    pub train: Metrics,
    pub test: Metrics,
    /// Wall time of the training pass (evaluation excluded).
    pub train_seconds: f64,
    pub examples_per_second: f64,
    pub lr: f32,
}

impl EpochMetrics {
    /// The mean training loss (0 where the step reports none).
    pub fn train_loss(&self) -> f64 {
        self.train.get("loss").unwrap_or(0.0)
    }
    pub fn test_loss(&self) -> f64 {
        self.test.get("loss").unwrap_or(0.0)
    }
    /// Accuracies: 0 for a step that does not classify.
    pub fn train_accuracy(&self) -> f64 {
        self.train.get("accuracy").unwrap_or(0.0)
    }
    pub fn test_accuracy(&self) -> f64 {
        self.test.get("accuracy").unwrap_or(0.0)
    }
}

/// Progress reports from the loop (progress bars, logs, metric files).
pub trait Observer {
    /// After batch `batch` of `batches`, with the epoch's running means.
    fn batch_done(&mut self, _epoch: usize, _batch: usize, _batches: usize, _running: &Metrics) {}
    fn epoch_done(&mut self, _metrics: &EpochMetrics) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "the {name} became {loss} at epoch {epoch}, batch {batch}: training stopped{}",
        .kept.as_ref().map_or(String::new(), |p| format!("; the last good checkpoint is kept at {}", p.display()))
    )]
    NonFiniteLoss { name: &'static str, epoch: usize, batch: usize, loss: f64, kept: Option<PathBuf> },
    #[error("{0}")]
    Config(String),
}

/// The checkpoint prefixes of a one-model step's model and optimizer.
pub const MODEL_PREFIX: &str = "model";
pub const OPTIMIZER_PREFIX: &str = "optim";

/// The checkpoint parts of a one-model step: the model's weights and, when it trains, its
/// optimizer's state.
pub fn model_parts<'a>(model: &'a mut Model, optimizer: &'a mut Option<Box<dyn Optimizer>>) -> Vec<Part<'a>> {
    let mut parts = vec![Part::Params(MODEL_PREFIX, model.params_mut())];
    if let Some(optimizer) = optimizer {
        parts.push(Part::Optimizer(OPTIMIZER_PREFIX, optimizer.as_mut()));
    }
    parts
}

/// One update of `model` from `grads`: clipped first to `clip_norm` (the norm before reported
/// as `grad_norm`), then the optimizer's step.
pub fn clip_and_step(
    optimizer: &mut dyn Optimizer,
    model: &mut Model,
    grads: &mut simdnn_layers::Grads,
    clip_norm: Option<f32>,
    lr: f32,
    out: &mut Metrics,
) -> Result<(), LayerError> {
    if let Some(max) = clip_norm {
        out.set("grad_norm", grads.clip_norm(max));
    }
    optimizer.step(model.params_mut(), grads, lr)
}

/// The optimizer `cfg` names, attached to the trainable parameters `select` picks.
pub fn make_optimizer(cfg: &TrainConfig, gemm: GemmConfig, model: &Model) -> Result<Box<dyn Optimizer>, LayerError> {
    make_optimizer_for(cfg, gemm, model, Select::Trainable)
}

/// [`make_optimizer`] over a selection of the parameters (one player of a GAN).
pub fn make_optimizer_for(
    cfg: &TrainConfig,
    gemm: GemmConfig,
    model: &Model,
    select: Select,
) -> Result<Box<dyn Optimizer>, LayerError> {
    let params = model.params();
    Ok(match cfg.optimizer {
        OptimizerKind::Sgd => Box::new(
            Sgd::new()
                .with_momentum(0.9, true)?
                .with_weight_decay(cfg.weight_decay)?
                .with_config(gemm)
                .attach(params, select)?,
        ),
        OptimizerKind::Adam => {
            Box::new(Adam::new().with_weight_decay(cfg.weight_decay)?.with_config(gemm).attach(params, select)?)
        }
    })
}

/// The number of completed epochs recorded in a checkpoint's metadata.
pub fn checkpoint_epoch(meta: &HashMap<String, String>) -> usize {
    meta.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0)
}

/// Trains `step` on `train` for `cfg.epochs` epochs (in total, counting those a resumed
/// checkpoint already did), evaluating on `test` after each. Returns every epoch's metrics
/// run in this call.
pub fn train(
    step: &mut dyn Step,
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
    let mut first_epoch = 0;
    if cfg.resume {
        let path =
            cfg.checkpoint.as_ref().ok_or_else(|| TrainError::Config("--resume needs an output directory".into()))?;
        let ck = Checkpoint::read(path)?;
        ck.load(&mut step.parts())?;
        first_epoch = checkpoint_epoch(&ck.metadata()?);
    }
    let batches = train.len().div_ceil(cfg.batch);
    let mut history = Vec::new();
    let mut batch_metrics = Metrics::new();
    for epoch in first_epoch..cfg.epochs {
        let order =
            if train.is_stream() { (0..train.len()).collect() } else { epoch_order(train.len(), cfg.seed, epoch) };
        let start = Instant::now();
        let (mut running, mut means) = (RunningMean::default(), Metrics::new());
        let mut lr = cfg.lr;
        for (b, chunk) in order.chunks(cfg.batch).enumerate() {
            lr = cfg.schedule.lr(cfg.lr, epoch * batches + b);
            batch_metrics.clear();
            step.train_batch(train, chunk, lr, &mut batch_metrics)?;
            if let Some((name, loss)) = batch_metrics.non_finite_loss() {
                let kept = cfg.checkpoint.clone().filter(|p| p.exists());
                return Err(TrainError::NonFiniteLoss { name, epoch: epoch + 1, batch: b + 1, loss, kept });
            }
            running.add(&batch_metrics, chunk.len());
            running.mean_into(&mut means);
            observer.batch_done(epoch + 1, b + 1, batches, &means);
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let eval = step.evaluate(test, cfg.batch.max(256))?;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train: means,
            test: eval.metrics,
            train_seconds,
            examples_per_second: running.examples() as f64 / train_seconds,
            lr,
        };
        if let Some(path) = &cfg.checkpoint {
            let mut meta = cfg.metadata.clone();
            meta.insert("epoch".into(), (epoch + 1).to_string());
            for (name, v) in metrics.test.iter() {
                meta.insert(format!("test_{name}"), v.to_string());
            }
            checkpoint::save(path, &mut step.parts(), meta)?;
        }
        observer.epoch_done(&metrics);
        history.push(metrics);
    }
    Ok(history)
}
