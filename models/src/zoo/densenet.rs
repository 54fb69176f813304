//! DenseNet-BC (Huang, Liu, van der Maaten & Weinberger, "Densely connected convolutional
//! networks", CVPR 2017): growth rate k = 32, bottleneck layers (batch norm, ReLU, 1x1
//! convolution to 4k maps, batch norm, ReLU, 3x3 convolution to k maps) whose outputs are
//! concatenated to everything before them, transitions (batch norm, ReLU, 1x1 convolution
//! halving the maps, 2x2 average pooling) between the four blocks.
//!
//! Blocks of 6-12-24-16 layers for DenseNet-121, 6-12-32-32 for 169, 6-12-48-32 for 201,
//! 6-12-64-48 for 264: torchvision counts 7,978,856 / 14,149,480 / 20,013,928 /
//! 33,337,704 parameters. Names follow torchvision: `features.conv0`, `features.norm0`,
//! `features.denseblock{i}.denselayer{j}.{norm1,conv1,norm2,conv2}`,
//! `features.transition{i}.{norm,conv}`, `features.norm5`, `classifier`.

use super::net::Net;
use super::BuildSpec;
use simdnn_layers::ops::{Concat, Conv2dSpec, PoolSpec};
use simdnn_layers::GraphBuilder;

const GROWTH: usize = 32;
const BOTTLENECK: usize = 4;
const STEM: usize = 64;

fn blocks(depth: usize) -> [usize; 4] {
    match depth {
        121 => [6, 12, 24, 16],
        169 => [6, 12, 32, 32],
        201 => [6, 12, 48, 32],
        _ => [6, 12, 64, 48],
    }
}

pub fn densenet(g: GraphBuilder, depth: usize, spec: &BuildSpec) -> (GraphBuilder, String) {
    let mut net = Net::new(g, spec.batch, spec.in_channels, spec.input, spec.seed);
    net.conv("features.conv0", Conv2dSpec::new(spec.in_channels, STEM, 7).stride(2).pad(3).no_bias(), false)
        .bn("features.norm0", STEM)
        .relu("features.relu0")
        .max_pool("features.pool0", PoolSpec::new(3, 2).pad(1));
    let mut channels = STEM;
    let stages = blocks(depth);
    for (b, &layers) in stages.iter().enumerate() {
        // Each layer reads the concatenation of the block's input and every earlier
        // layer's new maps.
        let mut features = vec![net.x()];
        for l in 0..layers {
            let name = format!("features.denseblock{}.denselayer{}", b + 1, l + 1);
            if features.len() > 1 {
                let parts: Vec<&str> = features.iter().map(String::as_str).collect();
                net.op(&format!("{name}.input"), Concat::new(1), &parts);
            }
            let c_in = channels + l * GROWTH;
            net.bn(&format!("{name}.norm1"), c_in)
                .relu(&format!("{name}.relu1"))
                .conv(&format!("{name}.conv1"), Conv2dSpec::new(c_in, BOTTLENECK * GROWTH, 1).no_bias(), false)
                .bn(&format!("{name}.norm2"), BOTTLENECK * GROWTH)
                .relu(&format!("{name}.relu2"))
                .conv(
                    &format!("{name}.conv2"),
                    Conv2dSpec::new(BOTTLENECK * GROWTH, GROWTH, 3).pad(1).no_bias(),
                    false,
                );
            features.push(net.x());
        }
        let parts: Vec<&str> = features.iter().map(String::as_str).collect();
        net.op(&format!("features.denseblock{}", b + 1), Concat::new(1), &parts);
        channels += layers * GROWTH;
        if b + 1 < stages.len() {
            let name = format!("features.transition{}", b + 1);
            net.bn(&format!("{name}.norm"), channels)
                .relu(&format!("{name}.relu"))
                .conv(&format!("{name}.conv"), Conv2dSpec::new(channels, channels / 2, 1).no_bias(), false)
                .avg_pool(&format!("{name}.pool"), PoolSpec::new(2, 2));
            channels /= 2;
        }
    }
    net.bn("features.norm5", channels).relu("relu").adaptive_avg_pool("avgpool", 1, 1).flatten("flatten").linear(
        "classifier",
        channels,
        spec.classes,
        false,
    );
    net.finish()
}
