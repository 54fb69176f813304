//! LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
//! recognition", Proc. IEEE 1998): 32x32 input, C1 6@5x5, S2 2x2, C3 16@5x5, S4 2x2,
//! C5 120, F6 84, 10 outputs.
//!
//! As in today's reimplementations, C3 connects to all six S2 maps (the paper's sparse
//! table had 1,516 weights, here 2,416), the subsampling layers have no trainable
//! coefficients, and the output is a linear layer with softmax cross-entropy instead of
//! RBF units: 61,706 parameters. C5, a 5x5 convolution over the 5x5 maps of S4, is
//! computed as the equivalent fully connected layer over the 400 flattened values (the
//! same weights and result, one GEMM instead of a one-pixel convolution per image).

use simdnn_layers::ops::{
    Activation, AvgPool2d, Conv2d, Conv2dSpec, Flatten, Linear, MaxPool2d, PoolSpec, SoftmaxCrossEntropy,
};
use simdnn_layers::{Init, LayerError, Model, ParamScope, Sequential};

/// Parameters of the network built by [`lenet5`], whatever its activation and pooling.
pub const LENET5_PARAMS: usize = 61_706;

/// The input shape of one image: `[1, 32, 32]` (MNIST's 28x28 padded by 2).
pub const LENET5_INPUT: [usize; 3] = [1, 32, 32];

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

/// LeNet-5 with the given activation and pooling, weights drawn from `seed` (He for ReLU,
/// Glorot for tanh), for batches like `batch` (any batch size runs).
///
/// Inputs: `image` `[batch, 1, 32, 32]` and integer `label` `[batch]`. Outputs: `logits`
/// `[batch, 10]` and `loss`, the mean softmax cross-entropy. Parameters are named after the
/// paper's layers: `c1.weight`, `c1.bias`, ..., `output.bias`.
pub fn lenet5(
    activation: LeNetActivation,
    pooling: LeNetPooling,
    batch: usize,
    seed: u64,
) -> Result<Model, LayerError> {
    let relu = activation == LeNetActivation::Relu;
    let init = if relu { Init::He } else { Init::Glorot };
    let conv = |p: &mut ParamScope, c: usize, k: usize| {
        let layer = Conv2d::new(p, Conv2dSpec::new(c, k, 5), init)?;
        Ok(if relu { layer.with_relu() } else { layer })
    };
    let linear = |p: &mut ParamScope, i: usize, o: usize| {
        let layer = Linear::new(p, i, o, init)?;
        Ok(if relu { layer.with_relu() } else { layer })
    };
    let squash = |net: Sequential, name: &str| if relu { net } else { net.add(name, Activation::tanh()) };
    let pool = |net: Sequential, name: &str| match pooling {
        LeNetPooling::Avg => net.add(name, AvgPool2d::new(PoolSpec::new(2, 2))),
        LeNetPooling::Max => net.add(name, MaxPool2d::new(PoolSpec::new(2, 2))),
    };
    let [c, h, w] = LENET5_INPUT;
    let net = Sequential::new("image", &[batch, c, h, w], seed).layer("c1", |p| conv(p, 1, 6));
    let net = pool(squash(net, "c1_tanh"), "s2").layer("c3", |p| conv(p, 6, 16));
    let net = pool(squash(net, "c3_tanh"), "s4").add("flatten", Flatten::new()).layer("c5", |p| linear(p, 400, 120));
    let net = squash(squash(net, "c5_tanh").layer("f6", |p| linear(p, 120, 84)), "f6_tanh")
        .layer("output", |p| Linear::new(p, 84, 10, Init::Glorot));
    let (mut graph, logits) = net.into_graph()?;
    graph
        .int_input("label", &[batch])
        .add("loss", SoftmaxCrossEntropy::new(), &[&logits, "label"])
        .output("logits", &logits)
        .output("loss", "loss");
    graph.build()
}
