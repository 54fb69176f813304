//! Model definitions (LeNet-5, AlexNet, VGG, ResNet, DenseNet, SqueezeNet, RNNs, GNNs)
//! built from `simdnn-layers`; each model is tracked as its own issue.

pub use simdnn_layers as layers;
