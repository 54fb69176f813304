//! Models by name: what `simdnn train MODEL`, `simdnn eval MODEL` (and later commands)
//! build. A model family registers an entry in [`MODELS`]: its options, how to build it,
//! what it minimises and which data it trains on; the command line needs no change.

use crate::data::{load_idx_dir, synthetic_digits, DataError, LabelledImages, Preprocess};
use crate::dataset::Splits;
use crate::lenet5::{lenet5, LeNetActivation, LeNetPooling, LENET5_PARAMS};
use crate::train::{Classify, Objective};
use simdnn_layers::{LayerError, Model};
use std::collections::HashMap;
use std::path::PathBuf;
use thiserror::Error;

/// A model option, offered on the command line as `--NAME VALUE` and stored in
/// checkpoints' metadata under `NAME`.
#[derive(Clone, Copy, Debug)]
pub struct ModelOption {
    pub name: &'static str,
    pub help: &'static str,
    pub values: &'static [&'static str],
    pub default: &'static str,
}

/// The data a run asks for: a directory of the user's, or the embedded default with its
/// split sizes.
#[derive(Clone, Debug)]
pub struct DataRequest {
    pub dir: Option<PathBuf>,
    pub synthetic_train: usize,
    pub synthetic_test: usize,
}

/// A registered model.
pub struct ModelEntry {
    /// The command-line name, e.g. `lenet5`.
    pub name: &'static str,
    /// For titles, e.g. `LeNet-5`.
    pub title: &'static str,
    pub about: &'static str,
    pub options: &'static [ModelOption],
    /// The exact parameter count, where the architecture fixes it.
    pub params: Option<usize>,
    /// Epochs when none are given: on the user's data, and on the embedded default.
    pub default_epochs: (usize, usize),
    pub objective: Objective,
    build: fn(&Options, usize, u64) -> Result<Model, LayerError>,
    data: fn(&DataRequest) -> Result<Splits, DataError>,
}

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("no model is named {name:?}; the models are: {known}")]
    UnknownModel { name: String, known: String },
    #[error("{model} has no option {option:?}")]
    UnknownOption { model: &'static str, option: String },
    #[error("{model}: option {option} must be one of {allowed:?}, got {got:?}")]
    BadValue { model: &'static str, option: &'static str, allowed: &'static [&'static str], got: String },
    #[error("a checkpoint of {found:?}, not of {model}")]
    OtherModel { model: &'static str, found: Option<String> },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Data(#[from] DataError),
}

/// The option values of one model, every option set (defaults where not given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    values: Vec<(&'static str, String)>,
}

impl Options {
    /// The value of option `name` (every registered option has one).
    pub fn get(&self, name: &str) -> &str {
        self.values.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v)
    }
    /// `(name, value)` in the entry's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

impl ModelEntry {
    /// Checks `given` (`(option, value)` pairs) against the entry's options, filling in
    /// defaults.
    pub fn options<'a>(&self, given: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Options, RegistryError> {
        let mut values: Vec<(&'static str, String)> =
            self.options.iter().map(|o| (o.name, o.default.to_string())).collect();
        for (name, value) in given {
            let Some(i) = self.options.iter().position(|o| o.name == name) else {
                return Err(RegistryError::UnknownOption { model: self.name, option: name.into() });
            };
            let o = &self.options[i];
            if !o.values.contains(&value) {
                return Err(RegistryError::BadValue {
                    model: self.name,
                    option: o.name,
                    allowed: o.values,
                    got: value.into(),
                });
            }
            values[i].1 = value.to_string();
        }
        Ok(Options { values })
    }

    /// The options a checkpoint's metadata records (an error if it is another model's).
    pub fn options_from_metadata(&self, meta: &HashMap<String, String>) -> Result<Options, RegistryError> {
        let found = meta.get("model");
        if found.map(String::as_str) != Some(self.name) {
            return Err(RegistryError::OtherModel { model: self.name, found: found.cloned() });
        }
        self.options(self.options.iter().filter_map(|o| Some((o.name, meta.get(o.name)?.as_str()))))
    }

    /// The metadata that records the model and its options.
    pub fn metadata(&self, options: &Options) -> HashMap<String, String> {
        let mut meta = HashMap::from([("model".to_string(), self.name.to_string())]);
        meta.extend(options.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        meta
    }

    /// The model, its weights drawn from `seed`, declared for batches of `batch`.
    pub fn build(&self, options: &Options, batch: usize, seed: u64) -> Result<Model, RegistryError> {
        Ok((self.build)(options, batch, seed)?)
    }

    /// The training and held-out sets.
    pub fn load_data(&self, request: &DataRequest) -> Result<Splits, RegistryError> {
        Ok((self.data)(request)?)
    }
}

impl std::fmt::Debug for ModelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelEntry").field("name", &self.name).field("options", &self.options).finish_non_exhaustive()
    }
}

/// Every registered model.
pub static MODELS: &[ModelEntry] = &[ModelEntry {
    name: "lenet5",
    title: "LeNet-5",
    about: "LeNet-5 (LeCun et al. 1998) on 32x32 digits",
    options: &[
        ModelOption {
            name: "activation",
            help: "Activation after each hidden layer",
            values: &["relu", "tanh"],
            default: "relu",
        },
        ModelOption { name: "pooling", help: "Subsampling in S2 and S4", values: &["max", "avg"], default: "max" },
    ],
    params: Some(LENET5_PARAMS),
    default_epochs: (10, 4),
    objective: Objective {
        loss: "loss",
        classify: Some(Classify { logits: "logits", labels: LabelledImages::LABEL, classes: 10 }),
    },
    build: build_lenet5,
    data: digits,
}];

/// The entry named `name`.
pub fn find(name: &str) -> Result<&'static ModelEntry, RegistryError> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| RegistryError::UnknownModel {
        name: name.into(),
        known: MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
    })
}

fn build_lenet5(options: &Options, batch: usize, seed: u64) -> Result<Model, LayerError> {
    let activation = if options.get("activation") == "tanh" { LeNetActivation::Tanh } else { LeNetActivation::Relu };
    let pooling = if options.get("pooling") == "avg" { LeNetPooling::Avg } else { LeNetPooling::Max };
    lenet5(activation, pooling, batch, seed)
}

/// Seed of the embedded digits: fixed, so `eval` regenerates the same held-out split.
const SYNTHETIC_SEED: u64 = 2026;

/// MNIST-format IDX files from the request's directory, or the embedded synthetic digits.
fn digits(request: &DataRequest) -> Result<Splits, DataError> {
    let images = |set| Box::new(LabelledImages { set, preprocess: Preprocess::MNIST });
    let (train, test, source) = match &request.dir {
        Some(dir) => {
            let (train, test) = load_idx_dir(dir)?;
            (train, test, format!("idx:{}", dir.display()))
        }
        None => {
            if request.synthetic_train == 0 || request.synthetic_test == 0 {
                return Err(DataError::EmptySet {
                    what: "the embedded synthetic digits (--synthetic-train, --synthetic-test)".into(),
                });
            }
            let (train, test) = synthetic_digits(request.synthetic_train, request.synthetic_test, SYNTHETIC_SEED);
            (train, test, "embedded synthetic digits".to_string())
        }
    };
    Ok(Splits { train: images(train), test: images(test), source })
}
