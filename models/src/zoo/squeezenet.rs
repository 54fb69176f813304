//! SqueezeNet (Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer
//! parameters and <0.5MB model size", 2016) and SqueezeNodule-Net, built from one table:
//! a stem convolution, max pools (3x3, stride 2, ceil mode) and fire modules (a 1x1
//! "squeeze" convolution feeding 1x1 and 3x3 "expand" convolutions whose outputs are
//! concatenated), then dropout, a 1x1 convolution to the classes, ReLU and a global average.
//!
//! SqueezeNet 1.0 has 1,248,424 parameters, 1.1 (a 3x3 stem of 64 filters and earlier
//! pooling) 1,235,496. Names follow torchvision: `features.N` (`.squeeze`, `.expand1x1`,
//! `.expand3x3` inside a fire), `classifier.1`.
//!
//! SqueezeNodule-Net V1 and V2 (SqueezeNet variants for lung-nodule CT patches: one grey
//! channel, two classes) are a **reconstruction**: the paper's layer table is not available,
//! only the changes the course states. V1 applies SqueezeNet's first two design strategies
//! further than 1.0 does: in every fire three quarters of the expand filters are 1x1
//! (1.0: half) and the squeeze layers that feed the remaining 3x3 filters are a quarter
//! narrower. V2 is V1 with the late downsampling of the third strategy pushed further: its
//! pools come after fires 7 and 9 instead of 4 and 8, so most convolutions work on maps
//! four times as large (the same parameters, more multiply-adds).

use super::net::Net;
use super::BuildSpec;
use simdnn_layers::ops::{Concat, Conv2dSpec, PoolSpec};
use simdnn_layers::{GraphBuilder, Init};

/// A fire module's widths; an expand width of 0 leaves that branch out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fire {
    pub squeeze: usize,
    pub expand1x1: usize,
    pub expand3x3: usize,
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The first convolution (and its ReLU): filters, kernel, stride.
    Stem {
        filters: usize,
        kernel: usize,
        stride: usize,
    },
    /// Max pooling, 3x3, stride 2, ceil mode.
    Pool,
    Fire(Fire),
}

const fn fire(squeeze: usize, expand1x1: usize, expand3x3: usize) -> Stage {
    Stage::Fire(Fire { squeeze, expand1x1, expand3x3 })
}

const POOL: Stage = Stage::Pool;

/// SqueezeNet 1.0 (the paper's Table 1).
pub const SQUEEZENET_1_0: &[Stage] = &[
    Stage::Stem { filters: 96, kernel: 7, stride: 2 },
    POOL,
    fire(16, 64, 64),
    fire(16, 64, 64),
    fire(32, 128, 128),
    POOL,
    fire(32, 128, 128),
    fire(48, 192, 192),
    fire(48, 192, 192),
    fire(64, 256, 256),
    POOL,
    fire(64, 256, 256),
];

/// SqueezeNet 1.1 (the reference implementation's revision: 2.4x less computation).
pub const SQUEEZENET_1_1: &[Stage] = &[
    Stage::Stem { filters: 64, kernel: 3, stride: 2 },
    POOL,
    fire(16, 64, 64),
    fire(16, 64, 64),
    POOL,
    fire(32, 128, 128),
    fire(32, 128, 128),
    POOL,
    fire(48, 192, 192),
    fire(48, 192, 192),
    fire(64, 256, 256),
    fire(64, 256, 256),
];

/// SqueezeNodule-Net V1 (reconstruction): 1.0's layout, three quarters of every fire's
/// expand filters 1x1, squeeze layers a quarter narrower.
pub const SQUEEZENODULE_V1: &[Stage] = &[
    Stage::Stem { filters: 96, kernel: 7, stride: 2 },
    POOL,
    fire(12, 96, 32),
    fire(12, 96, 32),
    fire(24, 192, 64),
    POOL,
    fire(24, 192, 64),
    fire(36, 288, 96),
    fire(36, 288, 96),
    fire(48, 384, 128),
    POOL,
    fire(48, 384, 128),
];

/// SqueezeNodule-Net V2 (reconstruction): V1's fires with the pools after fires 7 and 9.
pub const SQUEEZENODULE_V2: &[Stage] = &[
    Stage::Stem { filters: 96, kernel: 7, stride: 2 },
    POOL,
    fire(12, 96, 32),
    fire(12, 96, 32),
    fire(24, 192, 64),
    fire(24, 192, 64),
    fire(36, 288, 96),
    POOL,
    fire(36, 288, 96),
    fire(48, 384, 128),
    POOL,
    fire(48, 384, 128),
];

pub fn squeezenet(g: GraphBuilder, table: &[Stage], spec: &BuildSpec) -> (GraphBuilder, String) {
    let mut net = Net::new(g, spec.batch, spec.in_channels, spec.input, spec.seed);
    let (mut index, mut channels) = (0, spec.in_channels);
    for stage in table {
        let name = format!("features.{index}");
        match *stage {
            Stage::Stem { filters, kernel, stride } => {
                net.conv(&name, Conv2dSpec::new(channels, filters, kernel).stride(stride), true);
                channels = filters;
                index += 2; // the convolution and its ReLU
            }
            Stage::Pool => {
                net.max_pool(&name, PoolSpec::new(3, 2).ceil_mode());
                index += 1;
            }
            Stage::Fire(f) => {
                net.conv(&format!("{name}.squeeze"), Conv2dSpec::new(channels, f.squeeze, 1), true);
                let squeezed = net.x();
                let mut branches = Vec::new();
                if f.expand1x1 > 0 {
                    net.at(&squeezed).conv(
                        &format!("{name}.expand1x1"),
                        Conv2dSpec::new(f.squeeze, f.expand1x1, 1),
                        true,
                    );
                    branches.push(net.x());
                }
                if f.expand3x3 > 0 {
                    let conv = Conv2dSpec::new(f.squeeze, f.expand3x3, 3).pad(1);
                    net.at(&squeezed).conv(&format!("{name}.expand3x3"), conv, true);
                    branches.push(net.x());
                }
                if branches.len() > 1 {
                    let parts: Vec<&str> = branches.iter().map(String::as_str).collect();
                    net.op(&name, Concat::new(1), &parts);
                }
                channels = f.expand1x1 + f.expand3x3;
                index += 1;
            }
        }
    }
    net.dropout("classifier.0", 0.5)
        .conv_init("classifier.1", Conv2dSpec::new(channels, spec.classes, 1), true, Init::Small)
        .adaptive_avg_pool("classifier.3", 1, 1)
        .flatten("flatten");
    net.finish()
}
