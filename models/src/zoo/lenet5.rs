//! LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
//! recognition", Proc. IEEE 1998) as reimplemented today: 32x32 input, C1 6@5x5, S2 2x2,
//! C3 16@5x5, S4 2x2, C5 120, F6 84, 10 outputs.
//!
//! C3 connects to all six S2 maps (the paper's sparse table had 1,516 weights, here
//! 2,416, see [`super::lenet5_paper`] for the original), the subsampling layers have no
//! trainable coefficients, and the output is a linear layer with softmax cross-entropy
//! instead of RBF units: 61,706 parameters. C5, a 5x5 convolution over the 5x5 maps of S4,
//! is computed as the equivalent fully connected layer over the 400 flattened values (the
//! same weights and result, one GEMM instead of a one-pixel convolution per image).

use super::net::Net;
use super::BuildSpec;
use simdnn_layers::ops::{Activation, AvgPool2d, Conv2dSpec, Linear, MaxPool2d, PoolSpec};
use simdnn_layers::{GraphBuilder, Init};

/// Parameters of LeNet-5 on 32x32 greyscale images with 10 classes, whatever its activation
/// and pooling.
pub const LENET5_PARAMS: usize = 61_706;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeNetActivation {
    /// The paper's squashing function (a scaled tanh there; plain tanh here).
    Tanh,
    Relu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeNetPooling {
    /// The paper's subsampling: the mean of each 2x2 block.
    Avg,
    Max,
}

/// The side of a map after a valid 5x5 convolution and a 2x2 subsampling, twice.
pub(crate) fn c5_side(side: usize) -> usize {
    (side.saturating_sub(4) / 2).saturating_sub(4) / 2
}

/// LeNet-5 with the given activation and pooling (He initialisation for ReLU, Glorot for
/// tanh). Parameters are named after the paper's layers: `c1.weight`, ..., `output.bias`.
pub fn lenet5(
    g: GraphBuilder,
    activation: LeNetActivation,
    pooling: LeNetPooling,
    spec: &BuildSpec,
) -> (GraphBuilder, String) {
    let relu = activation == LeNetActivation::Relu;
    let init = if relu { Init::He } else { Init::Glorot };
    let mut net = Net::new(g, spec.batch, spec.in_channels, spec.input, spec.seed);
    let squash = |net: &mut Net, name: &str| {
        if !relu {
            net.then(name, Activation::tanh());
        }
    };
    let pool = |net: &mut Net, name: &str| {
        match pooling {
            LeNetPooling::Avg => net.then(name, AvgPool2d::new(PoolSpec::new(2, 2))),
            LeNetPooling::Max => net.then(name, MaxPool2d::new(PoolSpec::new(2, 2))),
        };
    };
    let conv = |net: &mut Net, name: &str, c: usize, k: usize| {
        let x = net.x();
        net.graph().layer(
            name,
            |p| {
                let layer = simdnn_layers::ops::Conv2d::new(p, Conv2dSpec::new(c, k, 5), init)?;
                Ok(if relu { layer.with_relu() } else { layer })
            },
            &[&x],
        );
        net.at(name);
    };
    let linear = |net: &mut Net, name: &str, i: usize, o: usize, act: bool| {
        let x = net.x();
        net.graph().layer(
            name,
            |p| {
                let layer = Linear::new(p, i, o, if act { init } else { Init::Glorot })?;
                Ok(if relu && act { layer.with_relu() } else { layer })
            },
            &[&x],
        );
        net.at(name);
    };
    conv(&mut net, "c1", spec.in_channels, 6);
    squash(&mut net, "c1_tanh");
    pool(&mut net, "s2");
    conv(&mut net, "c3", 6, 16);
    squash(&mut net, "c3_tanh");
    pool(&mut net, "s4");
    net.flatten("flatten");
    let flat = 16 * c5_side(spec.input.0) * c5_side(spec.input.1);
    linear(&mut net, "c5", flat, 120, true);
    squash(&mut net, "c5_tanh");
    linear(&mut net, "f6", 120, 84, true);
    squash(&mut net, "f6_tanh");
    linear(&mut net, "output", 84, spec.classes, false);
    net.finish()
}
