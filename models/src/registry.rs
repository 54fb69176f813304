//! Models by name: what `simdnn train MODEL`, `simdnn eval MODEL`, `simdnn summary MODEL`
//! (and later commands) build. A model registers an entry in [`MODELS`]: its options, its
//! architecture and native input, what it minimises and which data it trains on; the
//! command line needs no change.

use crate::classifier::{Classify, Objective};
use crate::data::{load_idx_dir, synthetic_digits, DataError, LabelledImages, Preprocess};
use crate::dataset::Splits;
use crate::zoo::lenet5::{LeNetActivation, LeNetPooling, LENET5_PARAMS};
use crate::zoo::squeezenet::{SQUEEZENET_1_0, SQUEEZENET_1_1, SQUEEZENODULE_V1, SQUEEZENODULE_V2};
use crate::zoo::{AlexNetKind, Arch, BuildSpec, Convention, IMAGE};
use simdnn_layers::ops::SoftmaxCrossEntropy;
use simdnn_layers::{GraphBuilder, LayerError, Model};
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

/// What a network reads and predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub in_channels: usize,
    pub classes: usize,
    /// Height and width.
    pub input: (usize, usize),
}

/// The data a run asks for: a directory of the user's, or the embedded default with its
/// split sizes, prepared for a model's input.
#[derive(Clone, Debug)]
pub struct DataRequest {
    pub dir: Option<PathBuf>,
    pub synthetic_train: usize,
    pub synthetic_test: usize,
    /// The model's input: height and width, channels.
    pub input: (usize, usize),
    pub channels: usize,
    /// Only these classes of the data, relabelled in this order (empty: all).
    pub keep_classes: Vec<u8>,
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

/// A registered model.
pub struct ModelEntry {
    /// The command-line name, e.g. `lenet5`.
    pub name: &'static str,
    /// For titles, e.g. `LeNet-5`.
    pub title: &'static str,
    pub about: &'static str,
    pub options: &'static [ModelOption],
    arch: Arch,
    /// The published model's input and classes.
    pub native: Shape,
    /// The exact parameter count at the native shape (torchvision's convention), fixed
    /// parameters included.
    pub params: Option<usize>,
    /// Epochs when none are given: on the user's data, and on the embedded default.
    pub default_epochs: (usize, usize),
    /// Adam's default learning rate: the LeNet-5s take 0.003; the deeper networks diverge or
    /// (SqueezeNet, whose class maps pass a ReLU) die at that rate and get 0.0003.
    pub adam_lr: f32,
    /// What `simdnn summary` adds (where a published table differs, say).
    pub note: Option<&'static str>,
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
    #[error("weights of {}, not of {model}", found.as_deref().unwrap_or("an unnamed model"))]
    OtherModel { model: &'static str, found: Option<String> },
    #[error("{model}: {what} must be from 1 to {max}")]
    BadShape { model: &'static str, what: &'static str, max: usize },
    #[error("checkpoint metadata {key} = {value:?} is not valid")]
    BadMetadata { key: &'static str, value: String },
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

    /// The options and shape a checkpoint's metadata records (an error if it is another
    /// model's). Checkpoints without a shape (older ones) have the native one.
    pub fn from_metadata(&self, meta: &HashMap<String, String>) -> Result<(Options, Shape), RegistryError> {
        let found = meta.get("model");
        if found.map(String::as_str) != Some(self.name) {
            return Err(RegistryError::OtherModel { model: self.name, found: found.cloned() });
        }
        let options = self.options(self.options.iter().filter_map(|o| Some((o.name, meta.get(o.name)?.as_str()))))?;
        let number = |key: &'static str, default: usize| match meta.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| RegistryError::BadMetadata { key, value: v.clone() }),
        };
        let input = match meta.get("input") {
            None => self.native.input,
            Some(v) => v
                .split_once('x')
                .and_then(|(h, w)| Some((h.parse().ok()?, w.parse().ok()?)))
                .ok_or_else(|| RegistryError::BadMetadata { key: "input", value: v.clone() })?,
        };
        let shape = Shape {
            in_channels: number("in_channels", self.native.in_channels)?,
            classes: number("classes", self.native.classes)?,
            input,
        };
        Ok((options, shape))
    }

    /// The metadata that records the model, its options and its shape.
    pub fn metadata(&self, options: &Options, shape: &Shape) -> HashMap<String, String> {
        let mut meta = HashMap::from([
            ("model".to_string(), self.name.to_string()),
            ("in_channels".to_string(), shape.in_channels.to_string()),
            ("classes".to_string(), shape.classes.to_string()),
            ("input".to_string(), format!("{}x{}", shape.input.0, shape.input.1)),
        ]);
        meta.extend(options.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        meta
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
    pub fn build(
        &self,
        options: &Options,
        shape: &Shape,
        batch: usize,
        seed: u64,
        convention: Convention,
        head: Head,
    ) -> Result<Model, RegistryError> {
        let (graph, frozen) = self.graph(options, shape, batch, seed, convention, head)?;
        let mut model = graph.build()?;
        for prefix in frozen {
            model.params_mut().set_trainable(prefix, false);
        }
        Ok(model)
    }

    /// The graph [`ModelEntry::build`] builds, before it is built (to expose inner values as
    /// outputs), with the prefixes of its fixed parameters.
    pub fn graph(
        &self,
        options: &Options,
        shape: &Shape,
        batch: usize,
        seed: u64,
        convention: Convention,
        head: Head,
    ) -> Result<(GraphBuilder, &'static [&'static str]), RegistryError> {
        let limits = [
            ("the input channels", shape.in_channels, MAX_CHANNELS),
            ("the classes", shape.classes, MAX_CLASSES),
            ("the input height", shape.input.0, MAX_SIDE),
            ("the input width", shape.input.1, MAX_SIDE),
        ];
        for (what, n, max) in limits {
            if n == 0 || n > max {
                return Err(RegistryError::BadShape { model: self.name, what, max });
            }
        }
        let spec = BuildSpec {
            in_channels: shape.in_channels,
            classes: shape.classes,
            input: shape.input,
            batch: batch.max(1),
            seed,
            convention,
        };
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

    /// What training minimises (output `loss`) and how accuracy is counted (output
    /// `logits` against input `label`) for a model of `shape`.
    pub fn objective(&self, shape: &Shape) -> Objective {
        let classify = Classify { logits: "logits", labels: LabelledImages::LABEL, classes: shape.classes };
        Objective { loss: "loss", classify: Some(classify) }
    }

    /// The training and held-out sets, prepared for the requested input.
    pub fn load_data(&self, request: &DataRequest) -> Result<Splits, RegistryError> {
        Ok((self.data)(request)?)
    }
}

impl std::fmt::Debug for ModelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelEntry").field("name", &self.name).field("arch", &self.arch).finish_non_exhaustive()
    }
}

const DIGITS: Shape = Shape { in_channels: 1, classes: 10, input: (32, 32) };
const IMAGENET: Shape = Shape { in_channels: 3, classes: 1000, input: (224, 224) };
const IMAGENET_227: Shape = Shape { in_channels: 3, classes: 1000, input: (227, 227) };
const NODULES: Shape = Shape { in_channels: 1, classes: 2, input: (64, 64) };

const LENET_OPTIONS: &[ModelOption] = &[
    ModelOption {
        name: "activation",
        help: "Activation after each hidden layer",
        values: &["relu", "tanh"],
        default: "relu",
    },
    ModelOption { name: "pooling", help: "Subsampling in S2 and S4", values: &["max", "avg"], default: "max" },
];

/// An entry of the zoo trained on digits by default (epochs on MNIST, on the embedded set).
const fn zoo(
    name: &'static str,
    title: &'static str,
    about: &'static str,
    arch: Arch,
    native: Shape,
    params: usize,
) -> ModelEntry {
    ModelEntry {
        name,
        title,
        about,
        options: &[],
        arch,
        native,
        params: Some(params),
        default_epochs: (10, 4),
        adam_lr: 3e-4,
        note: None,
        data: digits,
    }
}

const fn vgg(name: &'static str, title: &'static str, depth: usize, batch_norm: bool, params: usize) -> ModelEntry {
    let about = "VGG (Simonyan & Zisserman 2015): 3x3 convolutions, FC 4096-4096";
    zoo(name, title, about, Arch::Vgg { depth, batch_norm }, IMAGENET, params)
}

/// Bounds on a model's shape: generous for any real use, they keep a corrupt or hostile
/// file's metadata from asking for terabytes of weights.
pub const MAX_CHANNELS: usize = 4096;
pub const MAX_CLASSES: usize = 100_000;
pub const MAX_SIDE: usize = 16_384;

/// Every registered model.
pub static MODELS: &[ModelEntry] = &[
    ModelEntry {
        options: LENET_OPTIONS,
        adam_lr: 3e-3,
        ..zoo(
            "lenet5",
            "LeNet-5",
            "LeNet-5 (LeCun et al. 1998) as reimplemented today: 6-16-120-84-10, 61,706 parameters",
            Arch::LeNet5(LeNetActivation::Relu, LeNetPooling::Max),
            DIGITS,
            LENET5_PARAMS,
        )
    },
    ModelEntry {
        adam_lr: 3e-3,
        ..zoo(
            "lenet5-paper",
            "LeNet-5 (paper)",
            "LeNet-5 as in the paper: trainable subsampling, C3's connection table, RBF output; 60,000 trainable parameters",
            Arch::LeNet5Paper,
            DIGITS,
            60_840,
        )
    },
    zoo("alexnet", "AlexNet", "AlexNet, ungrouped 96/256/384/384/256 (the course's table)", Arch::AlexNet(AlexNetKind::Ungrouped), IMAGENET_227, 62_378_344),
    zoo("alexnet-grouped", "AlexNet (grouped)", "AlexNet as trained on two GPUs: conv2, conv4, conv5 in two groups", Arch::AlexNet(AlexNetKind::Grouped), IMAGENET_227, 60_965_224),
    zoo("alexnet-torchvision", "AlexNet (torchvision)", "torchvision's AlexNet: 64/192/384/256/256", Arch::AlexNet(AlexNetKind::Torchvision), IMAGENET, 61_100_840),
    ModelEntry {
        note: Some(
            "the course's table lists 138,357,544 parameters for VGG-11: that is VGG-16's count; VGG-11 has 132,863,336",
        ),
        ..vgg("vgg11", "VGG-11", 11, false, 132_863_336)
    },
    vgg("vgg13", "VGG-13", 13, false, 133_047_848),
    vgg("vgg16", "VGG-16", 16, false, 138_357_544),
    vgg("vgg19", "VGG-19", 19, false, 143_667_240),
    vgg("vgg11_bn", "VGG-11 (batch norm)", 11, true, 132_868_840),
    vgg("vgg13_bn", "VGG-13 (batch norm)", 13, true, 133_053_736),
    vgg("vgg16_bn", "VGG-16 (batch norm)", 16, true, 138_365_992),
    vgg("vgg19_bn", "VGG-19 (batch norm)", 19, true, 143_678_248),
    zoo("resnet18", "ResNet-18", "ResNet (He et al. 2016), basic blocks", Arch::ResNet(18), IMAGENET, 11_689_512),
    zoo("resnet34", "ResNet-34", "ResNet (He et al. 2016), basic blocks", Arch::ResNet(34), IMAGENET, 21_797_672),
    zoo("resnet50", "ResNet-50", "ResNet (He et al. 2016), bottleneck blocks", Arch::ResNet(50), IMAGENET, 25_557_032),
    zoo("resnet101", "ResNet-101", "ResNet (He et al. 2016), bottleneck blocks", Arch::ResNet(101), IMAGENET, 44_549_160),
    zoo("resnet152", "ResNet-152", "ResNet (He et al. 2016), bottleneck blocks", Arch::ResNet(152), IMAGENET, 60_192_808),
    zoo("densenet121", "DenseNet-121", "DenseNet-BC (Huang et al. 2017), k = 32", Arch::DenseNet(121), IMAGENET, 7_978_856),
    zoo("densenet169", "DenseNet-169", "DenseNet-BC (Huang et al. 2017), k = 32", Arch::DenseNet(169), IMAGENET, 14_149_480),
    zoo("densenet201", "DenseNet-201", "DenseNet-BC (Huang et al. 2017), k = 32", Arch::DenseNet(201), IMAGENET, 20_013_928),
    zoo("densenet264", "DenseNet-264", "DenseNet-BC (Huang et al. 2017), k = 32", Arch::DenseNet(264), IMAGENET, 33_337_704),
    zoo("squeezenet1_0", "SqueezeNet 1.0", "SqueezeNet (Iandola et al. 2016), fire modules", Arch::SqueezeNet(SQUEEZENET_1_0), IMAGENET, 1_248_424),
    zoo("squeezenet1_1", "SqueezeNet 1.1", "SqueezeNet 1.1: 3x3 stem, earlier pooling", Arch::SqueezeNet(SQUEEZENET_1_1), IMAGENET, 1_235_496),
    zoo(
        "squeezenodule_v1",
        "SqueezeNodule-Net V1",
        "SqueezeNet for nodule patches (reconstruction): more 1x1 expand filters, narrower squeezes",
        Arch::SqueezeNet(SQUEEZENODULE_V1),
        NODULES,
        SQUEEZENODULE_V1_PARAMS,
    ),
    zoo(
        "squeezenodule_v2",
        "SqueezeNodule-Net V2",
        "SqueezeNodule-Net V1 with late downsampling (reconstruction)",
        Arch::SqueezeNet(SQUEEZENODULE_V2),
        NODULES,
        SQUEEZENODULE_V1_PARAMS,
    ),
];

/// SqueezeNodule-Net V1 and V2 on one grey channel with two classes (the reconstruction's
/// count; `tests/zoo.rs` checks it).
pub const SQUEEZENODULE_V1_PARAMS: usize = 363_058;

/// The entry named `name`.
pub fn find(name: &str) -> Result<&'static ModelEntry, RegistryError> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| RegistryError::UnknownModel {
        name: name.into(),
        known: MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
    })
}

/// Seed of the embedded digits: fixed, so `eval` regenerates the same held-out split.
const SYNTHETIC_SEED: u64 = 2026;

/// MNIST-format IDX files from the request's directory, or the embedded synthetic digits,
/// padded or resized to the model's input.
fn digits(request: &DataRequest) -> Result<Splits, DataError> {
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
    let (train, test) = match request.keep_classes.as_slice() {
        [] => (train, test),
        keep => (train.keep_classes(keep)?, test.keep_classes(keep)?),
    };
    let preprocess = Preprocess::mnist_for(request.input, request.channels, train.rows, train.cols);
    let classes = train.classes.max(test.classes);
    let images = |set| Box::new(LabelledImages { set, preprocess });
    Ok(Splits { train: images(train), test: images(test), source, classes })
}

/// The image input's name, for commands that feed images.
pub const IMAGE_INPUT: &str = IMAGE;
