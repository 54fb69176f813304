//! The registered models: the CNN zoo (image classifiers trained on digits by default).

use super::{DataRequest, ImageClassifier, Kind, ModelEntry, ModelOption, OptionValues, Shape, TrainDefaults};
use crate::data::{load_idx_dir, synthetic_digits, DataError, LabelledImages, Preprocess};
use crate::dataset::Splits;
use crate::zoo::lenet5::{LeNetActivation, LeNetPooling, LENET5_PARAMS};
use crate::zoo::squeezenet::{SQUEEZENET_1_0, SQUEEZENET_1_1, SQUEEZENODULE_V1, SQUEEZENODULE_V2};
use crate::zoo::{AlexNetKind, Arch};

const DIGITS: Shape = Shape { in_channels: 1, classes: 10, input: (32, 32) };
const IMAGENET: Shape = Shape { in_channels: 3, classes: 1000, input: (224, 224) };
const IMAGENET_227: Shape = Shape { in_channels: 3, classes: 1000, input: (227, 227) };
const NODULES: Shape = Shape { in_channels: 1, classes: 2, input: (64, 64) };

const LENET_OPTIONS: &[ModelOption] = &[
    ModelOption {
        name: "activation",
        help: "Activation after each hidden layer",
        values: OptionValues::OneOf(&["relu", "tanh"]),
        default: "relu",
    },
    ModelOption {
        name: "pooling",
        help: "Subsampling in S2 and S4",
        values: OptionValues::OneOf(&["max", "avg"]),
        default: "max",
    },
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
        default_epochs: (10, 4),
        adam_lr: 3e-4,
        note: None,
        defaults: TrainDefaults::IMAGES,
        kind: Kind::Image(ImageClassifier { arch, native, params: Some(params), data: digits }),
    }
}

const fn vgg(name: &'static str, title: &'static str, depth: usize, batch_norm: bool, params: usize) -> ModelEntry {
    let about = "VGG (Simonyan & Zisserman 2015): 3x3 convolutions, FC 4096-4096";
    zoo(name, title, about, Arch::Vgg { depth, batch_norm }, IMAGENET, params)
}

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
    crate::sequence::charlm::ENTRY,
    crate::sequence::adding::ENTRY,
    crate::sequence::forecast::ENTRY,
    crate::gnn::gcn::ENTRY,
    crate::gnn::link::GAE,
    crate::gnn::link::VGAE,
    crate::gnn::karate::ENTRY,
    crate::gnn::graphcls::ENTRY,
    crate::gnn::recurrent::RECGNN,
    crate::gnn::recurrent::GGNN,
];

/// SqueezeNodule-Net V1 and V2 on one grey channel with two classes (the reconstruction's
/// count; `tests/zoo.rs` checks it).
pub const SQUEEZENODULE_V1_PARAMS: usize = 363_058;

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
    Ok(Splits { train: images(train), test: images(test), source, classes, fixed: Vec::new() })
}
