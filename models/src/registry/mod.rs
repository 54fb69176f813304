//! Models by name: what `simdnn train MODEL`, `simdnn eval MODEL` and `simdnn summary MODEL`
//! build. An entry names its options and its family: how the family reads its data (the
//! user's, or an embedded default that needs no download), builds its networks and trains
//! them (its [`Step`]). The image classifiers of the zoo are one family
//! ([`ImageClassifier`]); any other registers a [`Family`] of its own, and the command line
//! needs no change (ARCHITECTURE.md has a worked example).

mod image;
mod options;
mod table;

pub use image::{Head, ImageClassifier, Shape};
pub use options::{ModelOption, OptionValues, Options};
pub use table::{MODELS, SQUEEZENODULE_V1_PARAMS};

use crate::classifier::Objective;
use crate::data::DataError;
use crate::dataset::Splits;
use crate::report::Report;
use crate::step::Step;
use crate::train::{EpochMetrics, TrainConfig};
use crate::zoo::{Convention, IMAGE};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::{GraphBuilder, LayerError, Model};
use std::collections::HashMap;
use std::path::PathBuf;
use thiserror::Error;

/// A registered model.
pub struct ModelEntry {
    /// The command-line name, e.g. `lenet5`.
    pub name: &'static str,
    /// For titles, e.g. `LeNet-5`.
    pub title: &'static str,
    pub about: &'static str,
    pub options: &'static [ModelOption],
    /// Epochs when none are given: on the user's data, and on the embedded default.
    pub default_epochs: (usize, usize),
    /// Adam's default learning rate: the LeNet-5s take 0.003; the deeper networks diverge or
    /// (SqueezeNet, whose class maps pass a ReLU) die at that rate and get 0.0003.
    pub adam_lr: f32,
    /// What `simdnn summary` adds (where a published table differs, say).
    pub note: Option<&'static str>,
    /// The batch, gradient clipping and schedule a run takes when the command line names none.
    pub defaults: TrainDefaults,
    pub kind: Kind,
}

/// A model's training defaults besides its epochs and learning rate.
#[derive(Clone, Copy, Debug)]
pub struct TrainDefaults {
    pub batch: usize,
    pub clip_norm: Option<f32>,
    /// A schedule's command-line name (`sgdr`, `cosine`, `constant`, `step`).
    pub schedule: &'static str,
    /// L2 weight decay on the parameters that take it (the GCN's first layer: 5e-4).
    pub weight_decay: f32,
    /// Cross-validation folds a run trains by default (graph classification: 10; else 1).
    pub folds: usize,
}

impl TrainDefaults {
    /// The image classifiers': batch 16, no clipping, warm restarts every epoch, no decay.
    pub const IMAGES: TrainDefaults =
        TrainDefaults { batch: 16, clip_norm: None, schedule: "sgdr", weight_decay: 0.0, folds: 1 };
}

/// The family an entry belongs to.
pub enum Kind {
    /// An image classifier of the zoo.
    Image(ImageClassifier),
    /// Any other family.
    Family(&'static dyn Family),
}

/// What a run asks for: the user's data (`--data`), or the embedded default with its split
/// sizes; image families also read the image size and channels of the model, and may keep
/// some classes only.
#[derive(Clone, Debug)]
pub struct DataRequest {
    pub dir: Option<PathBuf>,
    pub synthetic_train: usize,
    pub synthetic_test: usize,
    /// The model's input: height and width, channels (image families).
    pub input: (usize, usize),
    pub channels: usize,
    /// Only these classes of the data, relabelled in this order (empty: all).
    pub keep_classes: Vec<u8>,
    /// The batch the run trains or evaluates with (a family of streams cuts its text into
    /// this many, so that each batch continues the last).
    pub batch: usize,
    /// Cross-validation: `(k, folds)` holds out the `k`-th of `folds` parts of a data set
    /// that is split that way (graph classification); `None`: the family's own split.
    pub fold: Option<(usize, usize)>,
}

/// What fixes a model besides its weights: its options and the sizes the command line or
/// the data set (image size and channels, classes, a vocabulary), as a checkpoint's
/// metadata records them so `eval` rebuilds the same network from the file alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub options: Options,
    sizes: Vec<(&'static str, String)>,
}

impl Config {
    pub fn new(options: Options) -> Config {
        Config { options, sizes: Vec::new() }
    }

    /// Size `name` (as recorded), if set.
    pub fn size(&self, name: &str) -> Option<&str> {
        self.sizes.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Size `name` as a whole number; an error naming it if it is missing or not one.
    pub fn number(&self, name: &'static str) -> Result<usize, RegistryError> {
        let v = self.size(name).unwrap_or("");
        v.parse().map_err(|_| RegistryError::BadMetadata { key: name, value: v.to_string() })
    }

    pub fn set_size(&mut self, name: &'static str, value: impl ToString) {
        let value = value.to_string();
        match self.sizes.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.sizes.push((name, value)),
        }
    }

    /// The metadata recording `entry`, the options and the sizes.
    pub fn metadata(&self, entry: &ModelEntry) -> HashMap<String, String> {
        let mut meta = HashMap::from([("model".to_string(), entry.name.to_string())]);
        meta.extend(self.sizes.iter().map(|(n, v)| (n.to_string(), v.clone())));
        meta.extend(self.options.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        meta
    }

    /// `name value, ...` of the options and sizes, for headers.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .options
            .iter()
            .chain(self.sizes.iter().map(|(n, v)| (*n, v.as_str())))
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        parts.join(", ")
    }
}

/// A family of models: how it reads its data, builds its networks and trains them. The
/// command line drives every family through this trait alone.
pub trait Family: Sync {
    /// The configuration of a run: `options` with the `sizes` given on the command line
    /// (`in_channels`, `input`, ...), or, resuming or evaluating, those a checkpoint's
    /// `recorded` metadata holds (which win). By default, the options alone (what the data
    /// fixes comes back from `load_data` and `fit_data`).
    fn configure(
        &self,
        entry: &ModelEntry,
        options: Options,
        _sizes: &[(&'static str, String)],
        recorded: Option<&HashMap<String, String>>,
    ) -> Result<Config, RegistryError> {
        entry.options_config(options, recorded)
    }

    /// The training and held-out sets: the user's (`request.dir`) or the embedded default.
    fn load_data(&self, entry: &ModelEntry, config: &Config, request: &DataRequest) -> Result<Splits, RegistryError>;

    /// Records in `config` what the data fixes (an image set's classes); an error when a
    /// recorded configuration does not fit the data. By default, records `Splits::fixed`.
    fn fit_data(&self, _entry: &ModelEntry, config: &mut Config, splits: &Splits) -> Result<(), RegistryError> {
        for (name, value) in &splits.fixed {
            config.set_size(name, value);
        }
        Ok(())
    }

    /// The training step of a model of `config`: its networks (declared for batches of
    /// `batch`, weights drawn from `seed`) and, given `train`, its optimizers (without, a
    /// step that only evaluates).
    fn step(
        &self,
        entry: &ModelEntry,
        config: &Config,
        batch: usize,
        seed: u64,
        train: Option<&TrainConfig>,
        gemm: GemmConfig,
    ) -> Result<Box<dyn Step>, RegistryError>;

    /// What the family adds when a run ends (after training, or in `eval`): summary values
    /// under the names its users expect (a language model's `bits_per_char`) and charts (a
    /// forecast against the held-out tail), from the trained `step` and its data.
    fn report(
        &self,
        _entry: &ModelEntry,
        _config: &Config,
        _step: &mut dyn Step,
        _splits: &Splits,
        _last: Option<&EpochMetrics>,
    ) -> Result<Report, RegistryError> {
        Ok(Report::default())
    }
}

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("no model is named {name:?}; the models are: {known}")]
    UnknownModel { name: String, known: String },
    #[error("{model} has no option {option:?}")]
    UnknownOption { model: &'static str, option: String },
    #[error("{model}: option {option} must be {allowed}, got {got:?}")]
    BadValue { model: &'static str, option: &'static str, allowed: String, got: String },
    #[error("weights of {}, not of {model}", found.as_deref().unwrap_or("an unnamed model"))]
    OtherModel { model: &'static str, found: Option<String> },
    #[error("{model}: {what} must be from 1 to {max}")]
    BadShape { model: &'static str, what: &'static str, max: usize },
    #[error("checkpoint metadata {key} = {value:?} is not valid")]
    BadMetadata { key: &'static str, value: String },
    #[error("{model} is not an image classifier: {what} does not apply to it")]
    NotImages { model: &'static str, what: &'static str },
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Train(Box<crate::train::TrainError>),
}

impl From<crate::train::TrainError> for RegistryError {
    fn from(e: crate::train::TrainError) -> Self {
        RegistryError::Train(Box::new(e))
    }
}

impl ModelEntry {
    /// The configuration of a family whose options alone fix its model: `options`, or those
    /// a checkpoint's `recorded` metadata holds.
    pub fn options_config(
        &self,
        options: Options,
        recorded: Option<&HashMap<String, String>>,
    ) -> Result<Config, RegistryError> {
        Ok(Config::new(match recorded {
            Some(meta) => self.recorded_options(meta)?,
            None => options,
        }))
    }

    /// The family that builds, feeds and trains the entry.
    pub fn family(&self) -> &dyn Family {
        match &self.kind {
            Kind::Image(image) => image,
            Kind::Family(family) => *family,
        }
    }

    /// The image classifier behind the entry (commands that feed images: infer, classify,
    /// show, bench model), or an error naming `what` needs one.
    pub fn image(&self, what: &'static str) -> Result<&ImageClassifier, RegistryError> {
        match &self.kind {
            Kind::Image(image) => Ok(image),
            Kind::Family(_) => Err(RegistryError::NotImages { model: self.name, what }),
        }
    }

    /// An evaluation-only step over freshly drawn networks of a model with `options`, sized
    /// by the family's embedded default data: what `simdnn summary` describes for a family
    /// that is not images.
    pub fn untrained(&self, options: Options, gemm: GemmConfig) -> Result<Box<dyn Step>, RegistryError> {
        let family = self.family();
        let mut config = family.configure(self, options, &[], None)?;
        let request = DataRequest {
            fold: None,
            dir: None,
            synthetic_train: 16,
            synthetic_test: 16,
            input: (0, 0),
            channels: 0,
            keep_classes: Vec::new(),
            batch: 1,
        };
        let splits = family.load_data(self, &config, &request)?;
        family.fit_data(self, &mut config, &splits)?;
        family.step(self, &config, 1, 0, None, gemm)
    }

    /// Checks that `meta` records this model (an error if it is another model's).
    pub fn check_recorded(&self, meta: &HashMap<String, String>) -> Result<(), RegistryError> {
        let found = meta.get("model");
        if found.map(String::as_str) != Some(self.name) {
            return Err(RegistryError::OtherModel { model: self.name, found: found.cloned() });
        }
        Ok(())
    }

    /// The options and shape of an image classifier a checkpoint's metadata records.
    pub fn from_metadata(&self, meta: &HashMap<String, String>) -> Result<(Options, Shape), RegistryError> {
        self.image("its metadata")?.from_metadata(self, meta)
    }

    /// The metadata recording an image classifier with `options` and `shape`.
    pub fn metadata(&self, options: &Options, shape: &Shape) -> HashMap<String, String> {
        image::config_of(options, shape).metadata(self)
    }

    /// An image classifier for `shape` (see [`ImageClassifier::build`]).
    pub fn build(
        &self,
        options: &Options,
        shape: &Shape,
        batch: usize,
        seed: u64,
        convention: Convention,
        head: Head,
    ) -> Result<Model, RegistryError> {
        self.image("building for an image shape")?.build(self, options, shape, batch, seed, convention, head)
    }

    /// The graph [`ModelEntry::build`] builds, before it is built.
    pub fn graph(
        &self,
        options: &Options,
        shape: &Shape,
        batch: usize,
        seed: u64,
        convention: Convention,
        head: Head,
    ) -> Result<(GraphBuilder, &'static [&'static str]), RegistryError> {
        self.image("an image graph")?.graph(self, options, shape, batch, seed, convention, head)
    }

    /// What an image classifier of `shape` minimises and how its accuracy is counted.
    pub fn objective(&self, shape: &Shape) -> Objective {
        image::objective(shape)
    }

    /// An image classifier's training and held-out sets.
    pub fn load_data(&self, request: &DataRequest) -> Result<Splits, RegistryError> {
        Ok((self.image("image data")?.data)(request)?)
    }
}

impl std::fmt::Debug for ModelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelEntry").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Bounds on a model's shape: generous for any real use, they keep a corrupt or hostile
/// file's metadata from asking for terabytes of weights.
pub const MAX_CHANNELS: usize = 4096;
pub const MAX_CLASSES: usize = 100_000;
pub const MAX_SIDE: usize = 16_384;

/// The entry named `name`.
pub fn find(name: &str) -> Result<&'static ModelEntry, RegistryError> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| RegistryError::UnknownModel {
        name: name.into(),
        known: MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
    })
}

/// The image input's name, for commands that feed images.
pub const IMAGE_INPUT: &str = IMAGE;
