//! ResNet (He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR
//! 2016): basic blocks (two 3x3 convolutions) for 18 and 34 layers, bottleneck blocks
//! (1x1, 3x3, 1x1 with four times the width) for 50, 101 and 152, projection shortcuts
//! (1x1 convolution and batch norm) where the shape changes.
//!
//! torchvision's convention (convolutions without bias, the stride in the bottleneck's 3x3
//! convolution): ResNet-50 has 25,557,032 parameters. Keras's gives every convolution a
//! bias and counts the batch norms' moving statistics: 25,636,712. Names follow
//! torchvision: `conv1`, `bn1`, `layer{1-4}.{block}.conv{1-3}`, `.bn{1-3}`,
//! `.downsample.{0,1}`, `fc`.

use super::net::Net;
use super::{BuildSpec, Convention};
use simdnn_layers::ops::{Add, Conv2dSpec, PoolSpec};
use simdnn_layers::GraphBuilder;

/// `(bottleneck, blocks per stage)` of ResNet-`depth`.
fn plan(depth: usize) -> (bool, [usize; 4]) {
    match depth {
        18 => (false, [2, 2, 2, 2]),
        34 => (false, [3, 4, 6, 3]),
        50 => (true, [3, 4, 6, 3]),
        101 => (true, [3, 4, 23, 3]),
        _ => (true, [3, 8, 36, 3]),
    }
}

pub fn resnet(g: GraphBuilder, depth: usize, spec: &BuildSpec) -> (GraphBuilder, String) {
    let bias = spec.convention == Convention::Keras;
    let conv = |cin: usize, cout: usize, k: usize| {
        let s = Conv2dSpec::new(cin, cout, k).pad(k / 2);
        if bias {
            s
        } else {
            s.no_bias()
        }
    };
    let mut net = Net::new(g, spec.batch, spec.in_channels, spec.input, spec.seed);
    net.conv("conv1", conv(spec.in_channels, 64, 7).stride(2), false)
        .bn("bn1", 64)
        .relu("relu")
        .max_pool("maxpool", PoolSpec::new(3, 2).pad(1));
    let (bottleneck, blocks) = plan(depth);
    let expansion = if bottleneck { 4 } else { 1 };
    let mut channels = 64;
    for (stage, &n) in blocks.iter().enumerate() {
        let width = 64 << stage;
        for b in 0..n {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let name = format!("layer{}.{b}", stage + 1);
            let input = net.x();
            let out = width * expansion;
            if bottleneck {
                net.conv(&format!("{name}.conv1"), conv(channels, width, 1), false)
                    .bn(&format!("{name}.bn1"), width)
                    .relu(&format!("{name}.relu1"))
                    .conv(&format!("{name}.conv2"), conv(width, width, 3).stride(stride), false)
                    .bn(&format!("{name}.bn2"), width)
                    .relu(&format!("{name}.relu2"))
                    .conv(&format!("{name}.conv3"), conv(width, out, 1), false)
                    .bn(&format!("{name}.bn3"), out);
            } else {
                net.conv(&format!("{name}.conv1"), conv(channels, width, 3).stride(stride), false)
                    .bn(&format!("{name}.bn1"), width)
                    .relu(&format!("{name}.relu1"))
                    .conv(&format!("{name}.conv2"), conv(width, width, 3), false)
                    .bn(&format!("{name}.bn2"), width);
            }
            let residual = net.x();
            let shortcut = if stride != 1 || channels != out {
                net.at(&input)
                    .conv(&format!("{name}.downsample.0"), conv(channels, out, 1).stride(stride), false)
                    .bn(&format!("{name}.downsample.1"), out);
                net.x()
            } else {
                input
            };
            net.op(&format!("{name}.add"), Add::new().with_relu(), &[&residual, &shortcut]);
            channels = out;
        }
    }
    net.adaptive_avg_pool("avgpool", 1, 1).flatten("flatten").linear("fc", channels, spec.classes, false);
    net.finish()
}
