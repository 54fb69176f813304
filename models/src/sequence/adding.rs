//! The adding problem (Hochreiter & Schmidhuber 1997, experiment 4; in the form of Le, Jaitly
//! & Hinton 2015): each step of a sequence carries a value drawn from U(0, 1) and a marker;
//! exactly two steps are marked, one in each half, and the target is the sum of their
//! values, read out after the last step. Answering 1.0 always scores a mean squared error of
//! 1/6 (the variance of a sum of two uniforms); doing better takes memory across the whole
//! sequence, which the simple RNN loses as T grows and the LSTM keeps.

use super::regressor::{Regressor, CELL_OPTION, TARGET, X};
use crate::classifier::{ClassifierStep, Objective};
use crate::data::DataError;
use crate::dataset::{Dataset, Splits};
use crate::registry::{
    Config, DataRequest, Family, Kind, ModelEntry, ModelOption, OptionValues, RegistryError, TrainDefaults,
};
use crate::report::Report;
use crate::step::{Evaluation, Metrics, Step};
use crate::train::{EpochMetrics, TrainConfig, TrainError};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::init::{index, rng, uniform};
use simdnn_layers::{Inputs, LayerError, Model};

/// Seeds of the generated sets: fixed, so `eval` regenerates the same held-out sequences.
const TRAIN_SEED: u64 = 1997;
const TEST_SEED: u64 = 2015;

/// Sequences of the adding problem.
pub struct AddingProblem {
    seq: usize,
    /// `[n, T]` values and the two marked steps of each sequence (`x`: value, marker).
    values: Vec<f32>,
    marks: Vec<[usize; 2]>,
}

impl AddingProblem {
    /// `n` sequences of length `seq` (at least 2) drawn from `seed`.
    pub fn generate(n: usize, seq: usize, seed: u64) -> AddingProblem {
        let mut r = rng(seed ^ (seq as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let values = (0..n * seq).map(|_| uniform(&mut r)).collect();
        let half = seq / 2;
        let marks = (0..n).map(|_| [index(&mut r, half), half + index(&mut r, seq - half)]).collect();
        AddingProblem { seq, values, marks }
    }

    /// The target of sequence `i`.
    pub fn target(&self, i: usize) -> f32 {
        let [a, b] = self.marks[i];
        self.values[i * self.seq + a] + self.values[i * self.seq + b]
    }
}

impl Dataset for AddingProblem {
    fn len(&self) -> usize {
        self.marks.len()
    }

    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let (b, t_len) = (indices.len(), self.seq);
        let x = inputs.f32_mut(X);
        x.resize(&[t_len, b, 2]);
        let data = x.data_mut();
        for (col, &i) in indices.iter().enumerate() {
            let [m0, m1] = *self.marks.get(i).ok_or(LayerError::IndexRange {
                what: "adding problem",
                index: i as i64,
                len: self.len(),
            })?;
            for t in 0..t_len {
                let at = (t * b + col) * 2;
                data[at] = self.values[i * t_len + t];
                data[at + 1] = f32::from(t == m0 || t == m1);
            }
        }
        let target = inputs.f32_mut(TARGET);
        target.resize(&[b, 1]);
        for (dst, &i) in target.data_mut().iter_mut().zip(indices) {
            *dst = self.target(i);
        }
        Ok(())
    }
}

/// The adding network of a configuration: the regressor over (value, marker) pairs.
#[derive(Clone, Copy, Debug)]
pub struct AddingSpec {
    pub regressor: Regressor,
    pub seq: usize,
}

impl AddingSpec {
    pub fn of(config: &Config) -> AddingSpec {
        let cell = Regressor::cell_named(config.options.get("cell"));
        AddingSpec {
            regressor: Regressor { cell, features: 2, hidden: config.options.number("hidden", 128) },
            seq: config.options.number("seq", 100),
        }
    }
}

/// The family of [`ENTRY`].
pub struct Adding;

const OPTIONS: &[ModelOption] = &[
    CELL_OPTION,
    ModelOption {
        name: "seq",
        help: "Sequence length T",
        values: OptionValues::Number { min: 2, max: 100_000 },
        default: "100",
    },
    ModelOption {
        name: "hidden",
        help: "Hidden units",
        values: OptionValues::Number { min: 1, max: 4096 },
        default: "128",
    },
];

/// `simdnn train adding`.
pub const ENTRY: ModelEntry = ModelEntry {
    name: "adding",
    title: "Adding problem",
    about: "Hochreiter & Schmidhuber's adding problem: the sum of two marked values of a long sequence",
    options: OPTIONS,
    default_epochs: (20, 20),
    adam_lr: 1e-3,
    note: Some("answering 1.0 always scores a mean squared error of about 0.167"),
    defaults: TrainDefaults { batch: 64, clip_norm: Some(1.0), schedule: "cosine", weight_decay: 0.0, folds: 1 },
    kind: Kind::Family(&Adding),
};

/// The classifier step (one model, its scalar loss) reporting the loss as `mse` too.
struct MseStep(ClassifierStep);

impl Step for MseStep {
    fn train_batch(
        &mut self,
        data: &dyn Dataset,
        indices: &[usize],
        lr: f32,
        out: &mut Metrics,
    ) -> Result<(), TrainError> {
        self.0.train_batch(data, indices, lr, out)?;
        out.set("mse", out.get("loss").unwrap_or(f64::NAN));
        Ok(())
    }
    fn evaluate(&mut self, data: &dyn Dataset, batch: usize) -> Result<Evaluation, TrainError> {
        let mut e = self.0.evaluate(data, batch)?;
        e.metrics.set("mse", e.loss());
        Ok(e)
    }
    fn parts(&mut self) -> Vec<crate::checkpoint::Part<'_>> {
        self.0.parts()
    }
    fn models(&self) -> Vec<(&'static str, &Model)> {
        self.0.models()
    }
}

/// The mean squared error of always answering 1.0 on `data`.
fn baseline_mse(data: &dyn Dataset) -> Result<f64, LayerError> {
    let mut inputs = Inputs::new();
    let all: Vec<usize> = (0..data.len()).collect();
    data.fill(&all, &mut inputs)?;
    let targets = inputs.f32(TARGET).map(|t| t.data()).unwrap_or(&[]);
    Ok(targets.iter().map(|&y| (y as f64 - 1.0).powi(2)).sum::<f64>() / targets.len().max(1) as f64)
}

impl Family for Adding {
    fn load_data(&self, _: &ModelEntry, config: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        if let Some(dir) = &request.dir {
            return Err(DataError::Invalid {
                what: dir.display().to_string(),
                reason: "the adding problem generates its sequences; --data does not apply".into(),
            }
            .into());
        }
        let seq = AddingSpec::of(config).seq;
        Ok(Splits {
            train: Box::new(AddingProblem::generate(request.synthetic_train.max(1), seq, TRAIN_SEED)),
            test: Box::new(AddingProblem::generate(request.synthetic_test.max(1), seq, TEST_SEED)),
            source: format!("generated adding problem, T = {seq}"),
            classes: 0,
            fixed: Vec::new(),
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
        let spec = AddingSpec::of(config);
        let model = spec.regressor.build(batch.max(1), spec.seq, seed)?;
        let objective = Objective { loss: "loss", classify: None, report: &[] };
        Ok(Box::new(MseStep(ClassifierStep::new(model, objective, gemm, train)?)))
    }

    fn report(
        &self,
        _: &ModelEntry,
        _: &Config,
        _: &mut dyn Step,
        splits: &Splits,
        _: Option<&EpochMetrics>,
    ) -> Result<Report, RegistryError> {
        Ok(Report { values: vec![("baseline_mse", baseline_mse(&*splits.test)?)], charts: Vec::new() })
    }
}
