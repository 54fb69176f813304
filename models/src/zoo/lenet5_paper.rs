//! LeNet-5 as the paper built it (LeCun, Bottou, Bengio & Haffner 1998, §II.B): the same
//! layers as today's variant, but
//!
//! - every unit up to F6 squashes its sum with `1.7159 tanh(2a/3)` (appendix A);
//! - S2 and S4 are trainable: each map's 2x2 sum times one coefficient plus one bias (here
//!   the 2x2 mean times the coefficient, the same family of functions);
//! - C3 reads a different subset of S2's maps for each of its 16 maps (Table I), 1,516
//!   parameters instead of 2,416;
//! - the output is 10 Euclidean RBF units over F6's 84 values, whose prototypes are fixed
//!   (not trained): their outputs, negated squared distances, serve as logits.
//!
//! Trainable parameters: C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120 + F6 10,164 =
//! exactly 60,000, the paper's figure; the RBF prototypes add 840 fixed values.

use super::lenet5::c5_side;
use super::net::Net;
use super::BuildSpec;
use simdnn_layers::ops::{
    Activation, AvgPool2d, ChannelAffine, ChannelSelect, Concat, Conv2d, Conv2dSpec, PoolSpec, Rbf,
};
use simdnn_layers::{GraphBuilder, Init};

/// Trainable parameters of the paper's LeNet-5 (32x32 greyscale input, 10 classes).
pub const LENET5_PAPER_TRAINABLE: usize = 60_000;

/// Table I: the S2 maps each C3 map reads. Maps 0-5 read three neighbours, 6-11 four
/// neighbours, 12-14 four non-contiguous maps, 15 all six.
pub const C3_TABLE: [&[usize]; 16] = [
    &[0, 1, 2],
    &[1, 2, 3],
    &[2, 3, 4],
    &[3, 4, 5],
    &[4, 5, 0],
    &[5, 0, 1],
    &[0, 1, 2, 3],
    &[1, 2, 3, 4],
    &[2, 3, 4, 5],
    &[3, 4, 5, 0],
    &[4, 5, 0, 1],
    &[5, 0, 1, 2],
    &[0, 1, 3, 4],
    &[1, 2, 4, 5],
    &[0, 2, 3, 5],
    &[0, 1, 2, 3, 4, 5],
];

/// The parameters to freeze after building (the RBF prototypes).
pub const FROZEN: &[&str] = &["output"];

pub fn lenet5_paper(g: GraphBuilder, spec: &BuildSpec) -> (GraphBuilder, String) {
    let mut net = Net::new(g, spec.batch, spec.in_channels, spec.input, spec.seed);
    let squash = |net: &mut Net, name: &str| {
        net.then(name, Activation::lecun_tanh());
    };
    let subsample = |net: &mut Net, name: &str, maps: usize| {
        net.then(&format!("{name}.sum"), AvgPool2d::new(PoolSpec::new(2, 2)));
        let x = net.x();
        net.graph().layer(name, |p| ChannelAffine::new(p, maps), &[&x]);
        net.at(name);
    };
    net.conv("c1", Conv2dSpec::new(spec.in_channels, 6, 5), false);
    squash(&mut net, "c1_squash");
    subsample(&mut net, "s2", 6);
    squash(&mut net, "s2_squash");
    // C3: the maps with the same number of inputs form one grouped convolution over the
    // S2 maps they read, gathered in order; the four groups' outputs, concatenated, are
    // maps 0..15 in the table's order.
    let s2 = net.x();
    let mut parts = Vec::new();
    for (part, maps) in [("a", 0..6), ("b", 6..12), ("c", 12..15), ("d", 15..16)] {
        let reads: Vec<usize> = maps.clone().flat_map(|m| C3_TABLE[m].iter().copied()).collect();
        let (groups, per_map) = (maps.len(), C3_TABLE[maps.start].len());
        let gathered = format!("c3.{part}.inputs");
        net.op(&gathered, ChannelSelect::new(&reads), &[&s2]);
        let name = format!("c3.{part}");
        let conv = Conv2dSpec::new(groups * per_map, groups, 5).groups(groups);
        net.graph().layer(&name, |p| Conv2d::new(p, conv, Init::Glorot), &[&gathered]);
        parts.push(name);
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    net.op("c3", Concat::new(1), &parts);
    squash(&mut net, "c3_squash");
    subsample(&mut net, "s4", 16);
    squash(&mut net, "s4_squash");
    net.flatten("flatten");
    let flat = 16 * c5_side(spec.input.0) * c5_side(spec.input.1);
    net.linear("c5", flat, 120, false);
    squash(&mut net, "c5_squash");
    net.linear("f6", 120, 84, false);
    squash(&mut net, "f6_squash");
    let x = net.x();
    let classes = spec.classes;
    net.graph().layer("output", |p| Rbf::new(p, 84, classes), &[&x]);
    net.at("output");
    net.finish()
}
