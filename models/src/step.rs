//! What one training step of a family does, behind the one training loop
//! ([`crate::train::train`]): the loop owns epochs, schedules, progress, metrics files,
//! checkpoints, resume and the stop on a non-finite loss; a [`Step`] owns the models and
//! optimizers and what a batch does to them (a classifier's one model and optimizer, a
//! GAN's two players, a language model's state carried between batches).

use crate::checkpoint::Part;
use crate::dataset::Dataset;
use crate::train::TrainError;
use simdnn_layers::Model;

/// Named scalars of a batch or of a whole set: losses and metrics (`loss`, `accuracy`,
/// `d_loss`, `bits_per_char`, ...). Reused batch after batch: setting a name already there
/// allocates nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    values: Vec<(&'static str, f64)>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Sets `name` to `value` (appended the first time, in the order names first appear).
    pub fn set(&mut self, name: &'static str, value: f64) {
        match self.values.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    /// `(name, value)` in the order the names were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.values.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Forgets every value (keeping the storage).
    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// The first loss that is not a finite number: `loss` or any `*_loss`.
    pub fn non_finite_loss(&self) -> Option<(&'static str, f64)> {
        self.iter().find(|&(n, v)| (n == "loss" || n.ends_with("_loss")) && !v.is_finite())
    }
}

/// Means of per-batch metrics over the examples of an epoch (each batch weighted by its
/// size).
#[derive(Clone, Debug, Default)]
pub struct RunningMean {
    sums: Metrics,
    examples: usize,
}

impl RunningMean {
    pub fn add(&mut self, batch: &Metrics, examples: usize) {
        for (name, v) in batch.iter() {
            let sum = self.sums.get(name).unwrap_or(0.0);
            self.sums.set(name, sum + v * examples as f64);
        }
        self.examples += examples;
    }

    pub fn examples(&self) -> usize {
        self.examples
    }

    /// The means so far, into `out` (its storage reused).
    pub fn mean_into(&self, out: &mut Metrics) {
        for (name, sum) in self.sums.iter() {
            out.set(name, sum / self.examples.max(1) as f64);
        }
    }
}

/// Metrics over a held-out set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub metrics: Metrics,
    pub examples: usize,
    /// `[true][predicted]` counts, for a step that classifies (empty otherwise).
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// The mean loss (0 where the step reports none).
    pub fn loss(&self) -> f64 {
        self.metrics.get("loss").unwrap_or(0.0)
    }
    /// The accuracy (0 where the step does not classify).
    pub fn accuracy(&self) -> f64 {
        self.metrics.get("accuracy").unwrap_or(0.0)
    }
}

/// A family's training step: the models and optimizers it drives, and what one batch and
/// one evaluation do.
pub trait Step {
    /// One step on examples `indices` of `data` at learning rate `lr`: the batch's metrics
    /// into `out`. A step whose loss is not finite reports it without updating any weight
    /// (the loop then stops with the last good checkpoint kept).
    fn train_batch(
        &mut self,
        data: &dyn Dataset,
        indices: &[usize],
        lr: f32,
        out: &mut Metrics,
    ) -> Result<(), TrainError>;

    /// Metrics over all of `data`, in evaluation mode, in batches of `batch`.
    fn evaluate(&mut self, data: &dyn Dataset, batch: usize) -> Result<Evaluation, TrainError>;

    /// The models and optimizers, named, as checkpoint parts (what is saved and resumed).
    fn parts(&mut self) -> Vec<Part<'_>>;

    /// The models, named (for summaries and reports).
    fn models(&self) -> Vec<(&'static str, &Model)>;
}
