//! The classifier's training step: one model whose scalar output is its loss, one
//! optimizer, and (for classifiers) accuracy and a confusion matrix counted from its
//! logits against the integer labels.

use crate::checkpoint::Part;
use crate::dataset::Dataset;
use crate::step::{Evaluation, Metrics, Step};
use crate::train::{clip_and_step, make_optimizer, model_parts, TrainConfig, TrainError, MODEL_PREFIX};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::ops::argmax_rows;
use simdnn_layers::{Ctx, Grads, Inputs, LayerError, Model, Optimizer, State};

/// What a model's outputs and inputs mean to the classifier step: the scalar output it
/// minimises, and, for classifiers, the logits and labels accuracy is counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Objective {
    /// A scalar output (shape `[]`): the batch's mean loss.
    pub loss: &'static str,
    pub classify: Option<Classify>,
    /// Scalar outputs reported as metrics of the same names (a recurrent graph network's
    /// iteration count): the last batch's in training, the mean over batches in an
    /// evaluation.
    pub report: &'static [&'static str],
}

/// Rows of output `logits` (`[rows, classes]`) against the integer input `labels`
/// (`[rows]`): accuracy and the confusion matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classify {
    pub logits: &'static str,
    pub labels: &'static str,
    pub classes: usize,
}

/// Counts a batch's correct predictions (and fills the confusion matrix, when given).
#[derive(Default)]
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

/// Scalar output `name` of the last pass.
fn scalar_output(model: &Model, state: &State, name: &str) -> Result<f32, LayerError> {
    let value = model.output(state, name)?;
    match value.data {
        [v] => Ok(*v),
        _ => Err(LayerError::InputShape {
            layer: format!("output {name:?}"),
            expected: "a scalar (shape [])".into(),
            got: value.shape.to_vec(),
        }),
    }
}

/// The scalar loss of the last pass.
fn loss_of(model: &Model, state: &State, objective: &Objective) -> Result<f32, LayerError> {
    scalar_output(model, state, objective.loss)
}

/// Runs `model` over `data` in evaluation mode, in batches of `batch`: `loss` and, for a
/// classifier, `accuracy` and the confusion matrix.
pub fn evaluate(
    model: &Model,
    gemm: GemmConfig,
    objective: &Objective,
    data: &dyn Dataset,
    batch: usize,
) -> Result<Evaluation, TrainError> {
    let ctx = Ctx::eval(gemm);
    let (mut state, mut inputs, mut scorer) = (State::new(), Inputs::new(), Scorer::default());
    let classes = objective.classify.map_or(0, |c| c.classes);
    let mut confusion = vec![vec![0; classes]; classes];
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let mut reported = vec![0.0f64; objective.report.len()];
    let indices: Vec<usize> = (0..data.len()).collect();
    let chunks = indices.chunks(batch.max(1));
    let batches = chunks.len().max(1) as f64;
    for chunk in chunks {
        data.fill(chunk, &mut inputs)?;
        model.forward(&ctx, &mut state, &inputs)?;
        loss_sum += loss_of(model, &state, objective)? as f64 * chunk.len() as f64;
        for (sum, name) in reported.iter_mut().zip(objective.report) {
            *sum += scalar_output(model, &state, name)? as f64 / batches;
        }
        if let Some(classify) = &objective.classify {
            correct += scorer.score(classify, model, &state, &inputs, Some(&mut confusion))?;
        }
    }
    let n = data.len().max(1) as f64;
    let mut metrics = Metrics::new();
    metrics.set("loss", loss_sum / n);
    if objective.classify.is_some() {
        metrics.set("accuracy", correct as f64 / n);
    }
    for (&name, value) in objective.report.iter().zip(reported) {
        metrics.set(name, value);
    }
    Ok(Evaluation { metrics, examples: data.len(), confusion })
}

/// One model, its loss, one optimizer: the buffers of a training run, reused batch after
/// batch (after the first batches, a full one and the epoch's last, a step allocates
/// nothing).
pub struct ClassifierStep {
    model: Model,
    objective: Objective,
    /// None for a step that only evaluates.
    optimizer: Option<Box<dyn Optimizer>>,
    clip_norm: Option<f32>,
    gemm: GemmConfig,
    ctx: Ctx,
    state: State,
    grads: Grads,
    inputs: Inputs,
    scorer: Scorer,
}

impl ClassifierStep {
    /// A step training `model` as `cfg` says (its optimizer), or only evaluating it
    /// without `cfg` (no optimizer state is allocated).
    pub fn new(
        model: Model,
        objective: Objective,
        gemm: GemmConfig,
        cfg: Option<&TrainConfig>,
    ) -> Result<Self, TrainError> {
        let optimizer = cfg.map(|cfg| make_optimizer(cfg, gemm, &model)).transpose()?;
        let grads = Grads::new(model.params());
        Ok(ClassifierStep {
            model,
            objective,
            optimizer,
            clip_norm: cfg.and_then(|c| c.clip_norm),
            gemm,
            ctx: Ctx::train(gemm),
            state: State::new(),
            grads,
            inputs: Inputs::new(),
            scorer: Scorer::default(),
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The trained model.
    pub fn into_model(self) -> Model {
        self.model
    }
}

impl Step for ClassifierStep {
    fn train_batch(
        &mut self,
        data: &dyn Dataset,
        indices: &[usize],
        lr: f32,
        out: &mut Metrics,
    ) -> Result<(), TrainError> {
        data.fill(indices, &mut self.inputs)?;
        let model = &self.model;
        model.forward(&self.ctx, &mut self.state, &self.inputs)?;
        let loss = loss_of(model, &self.state, &self.objective)?;
        out.set("loss", loss as f64);
        if !loss.is_finite() {
            return Ok(());
        }
        for &name in self.objective.report {
            out.set(name, scalar_output(model, &self.state, name)? as f64);
        }
        if let Some(c) = &self.objective.classify {
            let correct = self.scorer.score(c, model, &self.state, &self.inputs, None)?;
            out.set("accuracy", correct as f64 / indices.len().max(1) as f64);
        }
        let optimizer = self.optimizer.as_mut().ok_or_else(|| TrainError::Config("this step only evaluates".into()))?;
        self.grads.zero();
        model.backward_from(&self.ctx, &mut self.state, &mut self.grads, self.objective.loss)?;
        clip_and_step(optimizer.as_mut(), &mut self.model, &mut self.grads, self.clip_norm, lr, out)?;
        Ok(())
    }

    fn evaluate(&mut self, data: &dyn Dataset, batch: usize) -> Result<Evaluation, TrainError> {
        evaluate(&self.model, self.gemm, &self.objective, data, batch)
    }

    fn parts(&mut self) -> Vec<Part<'_>> {
        model_parts(&mut self.model, &mut self.optimizer)
    }

    fn models(&self) -> Vec<(&'static str, &Model)> {
        vec![(MODEL_PREFIX, &self.model)]
    }
}
