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

use simdnn_layers::{
    init, Activation, AvgPool2d, Conv2d, Conv2dSpec, Flatten, Init, LayerError, Linear, MaxPool2d, PoolSpec, Sequential,
};

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
/// Glorot for tanh).
pub fn lenet5(activation: LeNetActivation, pooling: LeNetPooling, seed: u64) -> Result<Sequential, LayerError> {
    let mut rng = init::rng(seed);
    let relu = activation == LeNetActivation::Relu;
    let init = if relu { Init::He } else { Init::Glorot };
    let conv = |c: usize, k: usize, rng: &mut init::Rng| -> Result<Conv2d, LayerError> {
        let layer = Conv2d::new(Conv2dSpec::new(c, k, 5), init, rng)?;
        Ok(if relu { layer.with_relu() } else { layer })
    };
    let linear = |i: usize, o: usize, act: bool, rng: &mut init::Rng| -> Result<Linear, LayerError> {
        let layer = Linear::new(i, o, if act { init } else { Init::Glorot }, rng)?;
        Ok(if relu && act { layer.with_relu() } else { layer })
    };
    let pool = || -> Box<dyn simdnn_layers::Layer> {
        match pooling {
            LeNetPooling::Avg => Box::new(AvgPool2d::new(PoolSpec::new(2, 2))),
            LeNetPooling::Max => Box::new(MaxPool2d::new(PoolSpec::new(2, 2))),
        }
    };
    let mut net = Sequential::new();
    let act = |net: &mut Sequential, name: &str| {
        if !relu {
            net.push(name, Box::new(Activation::tanh()));
        }
    };
    net.push("c1", Box::new(conv(1, 6, &mut rng)?));
    act(&mut net, "c1_tanh");
    net.push("s2", pool());
    net.push("c3", Box::new(conv(6, 16, &mut rng)?));
    act(&mut net, "c3_tanh");
    net.push("s4", pool());
    net.push("flatten", Box::new(Flatten::new()));
    net.push("c5", Box::new(linear(400, 120, true, &mut rng)?));
    act(&mut net, "c5_tanh");
    net.push("f6", Box::new(linear(120, 84, true, &mut rng)?));
    act(&mut net, "f6_tanh");
    net.push("output", Box::new(linear(84, 10, false, &mut rng)?));
    Ok(net)
}
