//! The image classifiers of the zoo as a family: one network from an image to class
//! logits, trained by the classifier step on labelled images (MNIST-format files, or the
//! embedded synthetic digits), resized to the network's input.

use super::{Config, DataRequest, Family, ModelEntry, Options, RegistryError, MAX_CHANNELS, MAX_CLASSES, MAX_SIDE};
use crate::classifier::{ClassifierStep, Classify, Objective};
use crate::data::{DataError, LabelledImages};
use crate::dataset::Splits;
use crate::step::Step;
use crate::train::TrainConfig;
use crate::zoo::lenet5::{LeNetActivation, LeNetPooling};
use crate::zoo::{Arch, BuildSpec, Convention};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::ops::SoftmaxCrossEntropy;
use simdnn_layers::{GraphBuilder, Model, Plan};
use std::collections::HashMap;

/// What a network reads and predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub in_channels: usize,
    pub classes: usize,
    /// Height and width.
    pub input: (usize, usize),
}

/// What a built model ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Output `logits` only (inference).
    Logits,
    /// Also the integer input `label` and the output `loss`, the mean softmax
    /// cross-entropy (training, evaluation).
    Loss,
}

/// An image classifier of the zoo.
pub struct ImageClassifier {
    pub arch: Arch,
    /// The published model's input and classes.
    pub native: Shape,
    /// The exact parameter count at the native shape (torchvision's convention), fixed
    /// parameters included.
    pub params: Option<usize>,
    /// Its training and held-out images.
    pub data: fn(&DataRequest) -> Result<Splits, DataError>,
}

/// The configuration recording `options` and `shape` (sizes `in_channels`, `classes`,
/// `input` as `HxW`).
pub(crate) fn config_of(options: &Options, shape: &Shape) -> Config {
    let mut config = Config::new(options.clone());
    config.set_size("in_channels", shape.in_channels);
    config.set_size("classes", shape.classes);
    config.set_size("input", format!("{}x{}", shape.input.0, shape.input.1));
    config
}

/// The shape a configuration records.
fn shape_of(config: &Config) -> Result<Shape, RegistryError> {
    let input = config.size("input").unwrap_or("");
    let (h, w) = input
        .split_once('x')
        .and_then(|(h, w)| Some((h.parse().ok()?, w.parse().ok()?)))
        .ok_or_else(|| RegistryError::BadMetadata { key: "input", value: input.to_string() })?;
    Ok(Shape { in_channels: config.number("in_channels")?, classes: config.number("classes")?, input: (h, w) })
}

/// What training minimises (output `loss`) and how accuracy is counted (output `logits`
/// against input `label`) for a model of `shape`.
pub(crate) fn objective(shape: &Shape) -> Objective {
    let classify = Classify { logits: "logits", labels: LabelledImages::LABEL, classes: shape.classes };
    Objective { loss: "loss", classify: Some(classify), report: &[] }
}

impl ImageClassifier {
    /// The options and shape a checkpoint's metadata records (an error if it is another
    /// model's). Checkpoints without a shape (older ones) have the native one.
    pub fn from_metadata(
        &self,
        entry: &ModelEntry,
        meta: &HashMap<String, String>,
    ) -> Result<(Options, Shape), RegistryError> {
        let options = entry.recorded_options(meta)?;
        let mut config = config_of(&options, &self.native);
        for key in ["in_channels", "classes", "input"] {
            if let Some(value) = meta.get(key) {
                config.set_size(key, value);
            }
        }
        let shape = shape_of(&config)?;
        Ok((options, shape))
    }

    /// The architecture the options select.
    fn arch(&self, options: &Options) -> Arch {
        match self.arch {
            Arch::LeNet5(..) => Arch::LeNet5(
                if options.get("activation") == "tanh" { LeNetActivation::Tanh } else { LeNetActivation::Relu },
                if options.get("pooling") == "avg" { LeNetPooling::Avg } else { LeNetPooling::Max },
            ),
            arch => arch,
        }
    }

    /// The model for `shape`, declared for batches of `batch`, weights drawn from `seed`;
    /// its fixed parameters frozen. Input `image`, output `logits` (and with
    /// [`Head::Loss`], input `label` and output `loss`).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        &self,
        entry: &ModelEntry,
        options: &Options,
        shape: &Shape,
        batch: usize,
        seed: u64,
        convention: Convention,
        head: Head,
    ) -> Result<Model, RegistryError> {
        let (graph, frozen) = self.graph(entry, options, shape, batch, seed, convention, head)?;
        let mut model = graph.build()?;
        for prefix in frozen {
            model.params_mut().set_trainable(prefix, false);
        }
        Ok(model)
    }

    /// The graph [`ImageClassifier::build`] builds, before it is built, with the prefixes
    /// of its fixed parameters.
    #[allow(clippy::too_many_arguments)]
    pub fn graph(
        &self,
        entry: &ModelEntry,
        options: &Options,
        shape: &Shape,
        batch: usize,
        seed: u64,
        convention: Convention,
        head: Head,
    ) -> Result<(GraphBuilder, &'static [&'static str]), RegistryError> {
        let spec = build_spec(entry, shape, batch, seed, convention)?;
        let (mut graph, logits, frozen) = self.arch(options).build(&spec);
        graph.output("logits", &logits);
        if head == Head::Loss {
            graph.int_input(LabelledImages::LABEL, &[spec.batch]).add(
                "loss",
                SoftmaxCrossEntropy::new(),
                &[&logits, LabelledImages::LABEL],
            );
            graph.output("loss", "loss");
        }
        Ok((graph, frozen))
    }

    /// A further plan over the weights of `model` (built by [`ImageClassifier::build`] with
    /// these options and shape, batch 1): output `logits`, and whatever `expose` adds (an
    /// inner layer's maps for `simdnn show`). The weights are shared, not copied.
    pub fn plan(
        &self,
        entry: &ModelEntry,
        model: &mut Model,
        options: &Options,
        shape: &Shape,
        expose: impl FnOnce(&mut GraphBuilder),
    ) -> Result<Plan, RegistryError> {
        let spec = build_spec(entry, shape, 1, 0, Convention::Torchvision)?;
        Ok(model.plan(|g| {
            let (mut g, logits, _) = self.arch(options).build_on(g, &spec);
            g.output("logits", &logits);
            expose(&mut g);
            g
        })?)
    }
}

/// The build specification of a model of `shape`, within the registry's bounds.
fn build_spec(
    entry: &ModelEntry,
    shape: &Shape,
    batch: usize,
    seed: u64,
    convention: Convention,
) -> Result<BuildSpec, RegistryError> {
    let limits = [
        ("the input channels", shape.in_channels, MAX_CHANNELS),
        ("the classes", shape.classes, MAX_CLASSES),
        ("the input height", shape.input.0, MAX_SIDE),
        ("the input width", shape.input.1, MAX_SIDE),
    ];
    for (what, n, max) in limits {
        if n == 0 || n > max {
            return Err(RegistryError::BadShape { model: entry.name, what, max });
        }
    }
    Ok(BuildSpec {
        in_channels: shape.in_channels,
        classes: shape.classes,
        input: shape.input,
        batch: batch.max(1),
        seed,
        convention,
    })
}

impl Family for ImageClassifier {
    fn configure(
        &self,
        entry: &ModelEntry,
        options: Options,
        sizes: &[(&'static str, String)],
        recorded: Option<&HashMap<String, String>>,
    ) -> Result<Config, RegistryError> {
        if let Some(meta) = recorded {
            let (options, shape) = self.from_metadata(entry, meta)?;
            return Ok(config_of(&options, &shape));
        }
        let mut config = config_of(&options, &Shape { classes: 0, ..self.native });
        for (name, value) in sizes {
            config.set_size(name, value);
        }
        Ok(config)
    }

    fn load_data(&self, _: &ModelEntry, config: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        let shape = shape_of(config)?;
        let request = DataRequest { input: shape.input, channels: shape.in_channels, ..request.clone() };
        Ok((self.data)(&request)?)
    }

    fn fit_data(&self, _: &ModelEntry, config: &mut Config, splits: &Splits) -> Result<(), RegistryError> {
        match config.number("classes")? {
            0 => config.set_size("classes", splits.classes),
            n if n != splits.classes => {
                return Err(RegistryError::Mismatch(format!("a model of {n} classes, the data has {}", splits.classes)))
            }
            _ => {}
        }
        Ok(())
    }

    fn step(
        &self,
        entry: &ModelEntry,
        config: &Config,
        batch: usize,
        seed: u64,
        train: Option<&TrainConfig>,
        gemm: GemmConfig,
    ) -> Result<Box<dyn Step>, RegistryError> {
        let shape = shape_of(config)?;
        let model = self.build(entry, &config.options, &shape, batch, seed, Convention::Torchvision, Head::Loss)?;
        Ok(Box::new(ClassifierStep::new(model, objective(&shape), gemm, train)?))
    }
}
