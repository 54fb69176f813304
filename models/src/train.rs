//! The training loop for image classifiers: mini-batch gradient descent with softmax
//! cross-entropy, evaluation on a held-out set after each epoch, checkpoints, resume, and
//! a stop with a clear error when the loss stops being finite.

use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::data::{epoch_order, ImageSet, Preprocess};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::{
    argmax_rows, zero_grads, Adam, Ctx, Layer, LayerError, LrSchedule, Optimizer, Sequential, Sgd, SoftmaxCrossEntropy,
    Tensor,
};
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
    pub preprocess: Preprocess,
    /// Where `checkpoint.safetensors` is written after each epoch (none: no checkpoints).
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint instead of starting afresh.
    pub resume: bool,
    /// Strings stored in every checkpoint (model name, configuration).
    pub metadata: HashMap<String, String>,
}

/// One epoch's results.
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
    pub images_per_second: f64,
    pub lr: f32,
}

/// Progress reports from the loop (progress bars, logs, metric files).
pub trait Observer {
    fn batch_done(&mut self, _epoch: usize, _batch: usize, _batches: usize, _loss: f32, _accuracy: f64) {}
    fn epoch_done(&mut self, _metrics: &EpochMetrics) {}
}

/// Accuracy and loss on a set, with the confusion matrix (`[true][predicted]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub confusion: Vec<Vec<usize>>,
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

/// Runs the network over `set` in evaluation mode.
pub fn evaluate(
    net: &mut Sequential,
    cfg: GemmConfig,
    set: &ImageSet,
    pre: &Preprocess,
    batch: usize,
) -> Result<Evaluation, TrainError> {
    let ctx = Ctx::eval(cfg);
    let (mut x, mut labels) = (Tensor::default(), Vec::new());
    let mut ce = SoftmaxCrossEntropy::new();
    let mut confusion = vec![vec![0; set.classes]; set.classes];
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(batch.max(1)) {
        pre.fill(set, chunk, &mut x, &mut labels);
        let logits = net.forward(&ctx, &x)?;
        loss_sum += ce.forward(ctx.isa(), logits, &labels)? as f64 * chunk.len() as f64;
        for (&p, &t) in argmax_rows(logits)?.iter().zip(&labels) {
            correct += usize::from(p == t);
            if let Some(cell) = confusion.get_mut(t).and_then(|row| row.get_mut(p)) {
                *cell += 1;
            }
        }
    }
    let n = set.len().max(1) as f64;
    Ok(Evaluation { loss: loss_sum / n, accuracy: correct as f64 / n, confusion })
}

fn make_optimizer(cfg: &TrainConfig, net: &mut Sequential) -> Result<Box<dyn Optimizer>, LayerError> {
    Ok(match cfg.optimizer {
        OptimizerKind::Sgd => {
            let mut o = Sgd::new().with_momentum(0.9, true)?.with_weight_decay(cfg.weight_decay)?;
            o.prepare(net);
            Box::new(o)
        }
        OptimizerKind::Adam => {
            let mut o = Adam::new().with_weight_decay(cfg.weight_decay)?;
            o.prepare(net);
            Box::new(o)
        }
    })
}

/// The number of completed epochs recorded in a checkpoint's metadata.
pub fn checkpoint_epoch(meta: &HashMap<String, String>) -> usize {
    meta.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0)
}

/// Trains `net` on `train` for `cfg.epochs` epochs (in total, counting those a resumed
/// checkpoint already did), evaluating on `test` after each. Returns every epoch's metrics
/// run in this call.
pub fn train_classifier(
    net: &mut Sequential,
    gemm: GemmConfig,
    train: &ImageSet,
    test: &ImageSet,
    cfg: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochMetrics>, TrainError> {
    if cfg.batch == 0 || train.is_empty() {
        return Err(TrainError::Config("the batch size and the training set must not be empty".into()));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(TrainError::Config(format!("the learning rate must be a positive number, got {}", cfg.lr)));
    }
    let mut opt = make_optimizer(cfg, net)?;
    let mut first_epoch = 0;
    if cfg.resume {
        let path =
            cfg.checkpoint.as_ref().ok_or_else(|| TrainError::Config("--resume needs an output directory".into()))?;
        let ck = Checkpoint::read(path)?;
        ck.load_into(net, Some(opt.as_mut()))?;
        first_epoch = checkpoint_epoch(&ck.metadata()?);
    }
    net.skip_input_grad();
    let ctx = Ctx::train(gemm);
    let batches = train.len().div_ceil(cfg.batch);
    let (mut x, mut labels) = (Tensor::default(), Vec::new());
    let mut ce = SoftmaxCrossEntropy::new();
    let mut history = Vec::new();
    for epoch in first_epoch..cfg.epochs {
        let order = epoch_order(train.len(), cfg.seed, epoch);
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut lr = cfg.lr;
        for (b, chunk) in order.chunks(cfg.batch).enumerate() {
            cfg.preprocess.fill(train, chunk, &mut x, &mut labels);
            zero_grads(net);
            let logits = net.forward(&ctx, &x)?;
            correct += argmax_rows(logits)?.iter().zip(&labels).filter(|(p, t)| p == t).count();
            let (loss, grad) = ce.forward_backward(ctx.isa(), logits, &labels)?;
            if !loss.is_finite() {
                let kept = cfg.checkpoint.clone().filter(|p| p.exists());
                return Err(TrainError::NonFiniteLoss { epoch: epoch + 1, batch: b + 1, loss, kept });
            }
            net.backward(&ctx, &x, grad)?;
            lr = cfg.schedule.lr(cfg.lr, epoch * batches + b);
            opt.step(net, lr)?;
            loss_sum += loss as f64 * chunk.len() as f64;
            seen += chunk.len();
            observer.batch_done(epoch + 1, b + 1, batches, loss, correct as f64 / seen as f64);
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let eval = evaluate(net, gemm, test, &cfg.preprocess, cfg.batch.max(256))?;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            test_loss: eval.loss,
            test_accuracy: eval.accuracy,
            train_seconds,
            images_per_second: seen as f64 / train_seconds,
            lr,
        };
        if let Some(path) = &cfg.checkpoint {
            let mut meta = cfg.metadata.clone();
            meta.insert("epoch".into(), (epoch + 1).to_string());
            meta.insert("test_accuracy".into(), eval.accuracy.to_string());
            checkpoint::save(path, net, Some(opt.as_mut()), meta)?;
        }
        observer.epoch_done(&metrics);
        history.push(metrics);
    }
    Ok(history)
}
