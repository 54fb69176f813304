//! AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet classification with deep
//! convolutional neural networks", NIPS 2012), in three forms:
//!
//! - **ungrouped** (the course's table): 96/256/384/384/256 filters on a 227x227 input,
//!   FC 9216-4096-4096-1000: 62,378,344 parameters;
//! - **grouped**: the paper's two-GPU split, conv2, conv4 and conv5 in two groups that
//!   each see half the maps: 60,965,224;
//! - **torchvision**: 64/192/384/256/256 filters with padding on 224x224: 61,100,840.
//!
//! All three end their features with an adaptive average pooling to 6x6 (torchvision's; the
//! identity at the native input size), so other input sizes run too. The paper's local
//! response normalisation (no parameters) is left out, as torchvision does.
//! Names follow torchvision: `features.{0,3,6,8,10}` convolutions, `classifier.{1,4,6}`.

use super::net::Net;
use super::BuildSpec;
use simdnn_layers::ops::{Conv2dSpec, PoolSpec};
use simdnn_layers::GraphBuilder;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlexNetKind {
    Ungrouped,
    Grouped,
    Torchvision,
}

pub fn alexnet(g: GraphBuilder, kind: AlexNetKind, spec: &BuildSpec) -> (GraphBuilder, String) {
    let mut net = Net::new(g, spec.batch, spec.in_channels, spec.input, spec.seed);
    let pool = PoolSpec::new(3, 2);
    let c = spec.in_channels;
    let groups = if kind == AlexNetKind::Grouped { 2 } else { 1 };
    let (c1, c2, c3, c4) = match kind {
        AlexNetKind::Torchvision => (64, 192, 384, 256),
        _ => (96, 256, 384, 384),
    };
    let pad1 = if kind == AlexNetKind::Torchvision { 2 } else { 0 };
    net.conv("features.0", Conv2dSpec::new(c, c1, 11).stride(4).pad(pad1), true)
        .max_pool("features.2", pool)
        .conv("features.3", Conv2dSpec::new(c1, c2, 5).pad(2).groups(groups), true)
        .max_pool("features.5", pool)
        .conv("features.6", Conv2dSpec::new(c2, c3, 3).pad(1), true)
        .conv("features.8", Conv2dSpec::new(c3, c4, 3).pad(1).groups(groups), true)
        .conv("features.10", Conv2dSpec::new(c4, 256, 3).pad(1).groups(groups), true)
        .max_pool("features.12", pool)
        .adaptive_avg_pool("avgpool", 6, 6)
        .flatten("flatten")
        .dropout("classifier.0", 0.5)
        .linear("classifier.1", 256 * 6 * 6, 4096, true)
        .dropout("classifier.3", 0.5)
        .linear("classifier.4", 4096, 4096, true)
        .linear("classifier.6", 4096, spec.classes, false);
    net.finish()
}
