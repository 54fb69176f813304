//! VGG (Simonyan & Zisserman, "Very deep convolutional networks for large-scale image
//! recognition", ICLR 2015), configurations A, B, D and E (11, 13, 16 and 19 weight
//! layers), with or without batch normalisation after each convolution, as torchvision
//! builds them: 3x3 convolutions with padding 1, 2x2 max pooling, an adaptive average pool
//! to 7x7 and FC 25088-4096-4096-classes with dropout. VGG-11 has 132,863,336 parameters
//! and VGG-16 138,357,544.

use super::net::Net;
use super::BuildSpec;
use simdnn_layers::ops::{Conv2dSpec, PoolSpec};
use simdnn_layers::GraphBuilder;

/// A 3x3 convolution with this many filters, or (`0`) a 2x2 max pooling.
const M: usize = 0;

/// The paper's Table 1, columns A, B, D and E.
fn layers(depth: usize) -> &'static [usize] {
    match depth {
        11 => &[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
        13 => &[64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
        16 => &[64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
        _ => &[64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M],
    }
}

/// VGG-`depth` (11, 13, 16 or 19). Names follow torchvision: `features.N` numbered over
/// convolution, (batch norm,) ReLU and pooling modules, `classifier.{0,3,6}`.
pub fn vgg(g: GraphBuilder, depth: usize, batch_norm: bool, spec: &BuildSpec) -> (GraphBuilder, String) {
    let mut net = Net::new(g, spec.batch, spec.in_channels, spec.input, spec.seed);
    let (mut index, mut channels) = (0, spec.in_channels);
    for &width in layers(depth) {
        if width == M {
            net.max_pool(&format!("features.{index}"), PoolSpec::new(2, 2));
            index += 1;
            continue;
        }
        let conv = Conv2dSpec::new(channels, width, 3).pad(1);
        if batch_norm {
            net.conv(&format!("features.{index}"), conv, false).bn(&format!("features.{}", index + 1), width);
            net.relu(&format!("features.{}", index + 2));
            index += 3;
        } else {
            net.conv(&format!("features.{index}"), conv, true);
            index += 2;
        }
        channels = width;
    }
    net.adaptive_avg_pool("avgpool", 7, 7)
        .flatten("flatten")
        .linear("classifier.0", 512 * 7 * 7, 4096, true)
        .dropout("classifier.2", 0.5)
        .linear("classifier.3", 4096, 4096, true)
        .dropout("classifier.5", 0.5)
        .linear("classifier.6", 4096, spec.classes, false);
    net.finish()
}
