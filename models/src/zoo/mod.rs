//! The CNN zoo: LeNet-5 (today's and the paper's), AlexNet, VGG, ResNet, DenseNet,
//! SqueezeNet and SqueezeNodule-Net, each a function from a [`BuildSpec`] to a graph whose
//! node names are torchvision's module paths.

pub mod alexnet;
pub mod densenet;
pub mod lenet5;
pub mod lenet5_paper;
mod net;
pub mod resnet;
pub mod squeezenet;
pub mod vgg;

pub use alexnet::AlexNetKind;
pub use net::IMAGE;

use simdnn_layers::GraphBuilder;

/// Whose conventions a model follows where frameworks differ: ResNet's convolutions have
/// biases in Keras and not in torchvision, and Keras counts batch-norm moving statistics
/// among a model's parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Convention {
    #[default]
    Torchvision,
    Keras,
}

/// What a network is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildSpec {
    pub in_channels: usize,
    pub classes: usize,
    /// Input height and width.
    pub input: (usize, usize),
    /// The batch of the declared input (any batch runs).
    pub batch: usize,
    pub seed: u64,
    pub convention: Convention,
}

/// An architecture of the zoo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    LeNet5(lenet5::LeNetActivation, lenet5::LeNetPooling),
    LeNet5Paper,
    AlexNet(AlexNetKind),
    Vgg { depth: usize, batch_norm: bool },
    ResNet(usize),
    DenseNet(usize),
    SqueezeNet(&'static [squeezenet::Stage]),
}

impl Arch {
    /// The network reading input `image`, weights drawn from the spec's seed, with the
    /// name of its logits, and the prefixes of the parameters it keeps fixed.
    pub fn build(&self, spec: &BuildSpec) -> (GraphBuilder, String, &'static [&'static str]) {
        self.build_on(GraphBuilder::new(spec.seed), spec)
    }

    /// [`Arch::build`] on builder `g` (one over existing weights: a further plan of a model).
    pub fn build_on(&self, g: GraphBuilder, spec: &BuildSpec) -> (GraphBuilder, String, &'static [&'static str]) {
        let (graph, logits) = match *self {
            Arch::LeNet5(activation, pooling) => lenet5::lenet5(g, activation, pooling, spec),
            Arch::LeNet5Paper => lenet5_paper::lenet5_paper(g, spec),
            Arch::AlexNet(kind) => alexnet::alexnet(g, kind, spec),
            Arch::Vgg { depth, batch_norm } => vgg::vgg(g, depth, batch_norm, spec),
            Arch::ResNet(depth) => resnet::resnet(g, depth, spec),
            Arch::DenseNet(depth) => densenet::densenet(g, depth, spec),
            Arch::SqueezeNet(table) => squeezenet::squeezenet(g, table, spec),
        };
        let frozen = if *self == Arch::LeNet5Paper { lenet5_paper::FROZEN } else { &[] };
        (graph, logits, frozen)
    }
}
