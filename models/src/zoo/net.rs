//! A graph builder that follows one current value, for writing the zoo's networks the way
//! torchvision writes them: node names are torchvision's module paths (`features.0`,
//! `layer1.0.conv1`), so parameter names are its state-dict names.

use simdnn_layers::ops::{
    Activation, AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Conv2d, Conv2dSpec, Dropout, Flatten, Linear, MaxPool2d,
    PoolSpec,
};
use simdnn_layers::{GraphBuilder, Init, Op};

/// The name of every zoo model's image input.
pub const IMAGE: &str = "image";

pub(crate) struct Net {
    g: GraphBuilder,
    x: String,
    seed: u64,
}

impl Net {
    /// A graph on `g` reading `image` `[batch, channels, h, w]` (dropout seeded from `seed`).
    pub fn new(mut g: GraphBuilder, batch: usize, channels: usize, (h, w): (usize, usize), seed: u64) -> Net {
        g.input(IMAGE, &[batch, channels, h, w]);
        Net { g, x: IMAGE.to_string(), seed }
    }

    /// The current value.
    pub fn x(&self) -> String {
        self.x.clone()
    }

    /// Makes `value` the current value (to start a branch).
    pub fn at(&mut self, value: &str) -> &mut Self {
        self.x = value.to_string();
        self
    }

    /// Node `name` computing `op` from `inputs`; it becomes the current value.
    pub fn op(&mut self, name: &str, op: impl Op, inputs: &[&str]) -> &mut Self {
        self.g.add(name, op, inputs);
        self.at(name)
    }

    /// Node `name` computing `op` from the current value.
    pub fn then(&mut self, name: &str, op: impl Op) -> &mut Self {
        let x = self.x.clone();
        self.op(name, op, &[&x])
    }

    /// A convolution (He-initialised) of the current value, ReLU fused if `relu`.
    pub fn conv(&mut self, name: &str, spec: Conv2dSpec, relu: bool) -> &mut Self {
        self.conv_init(name, spec, relu, Init::He)
    }

    /// A convolution drawn by `init`, ReLU fused if `relu`.
    pub fn conv_init(&mut self, name: &str, spec: Conv2dSpec, relu: bool, init: Init) -> &mut Self {
        let x = self.x.clone();
        self.g.layer(
            name,
            |p| {
                let c = Conv2d::new(p, spec, init)?;
                Ok(if relu { c.with_relu() } else { c })
            },
            &[&x],
        );
        self.at(name)
    }

    pub fn bn(&mut self, name: &str, channels: usize) -> &mut Self {
        let x = self.x.clone();
        self.g.layer(name, |p| BatchNorm::new(p, channels), &[&x]);
        self.at(name)
    }

    pub fn relu(&mut self, name: &str) -> &mut Self {
        self.then(name, Activation::relu())
    }

    pub fn max_pool(&mut self, name: &str, spec: PoolSpec) -> &mut Self {
        self.then(name, MaxPool2d::new(spec))
    }

    pub fn avg_pool(&mut self, name: &str, spec: PoolSpec) -> &mut Self {
        self.then(name, AvgPool2d::new(spec))
    }

    pub fn adaptive_avg_pool(&mut self, name: &str, h: usize, w: usize) -> &mut Self {
        self.then(name, AdaptiveAvgPool2d::new(h, w))
    }

    /// Dropout with rate `p`, its masks seeded from the model's seed and the node's name.
    pub fn dropout(&mut self, name: &str, p: f32) -> &mut Self {
        let seed = name.bytes().fold(self.seed, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        match Dropout::new(p, seed) {
            Ok(d) => self.then(name, d),
            Err(e) => {
                self.g.layer(name, |_| Err::<Dropout, _>(e), &[]);
                self
            }
        }
    }

    pub fn flatten(&mut self, name: &str) -> &mut Self {
        self.then(name, Flatten::new())
    }

    /// A fully connected layer: He-initialised with a fused ReLU, Glorot without.
    pub fn linear(&mut self, name: &str, inputs: usize, outputs: usize, relu: bool) -> &mut Self {
        let x = self.x.clone();
        let init = if relu { Init::He } else { Init::Glorot };
        self.g.layer(
            name,
            |p| {
                let l = Linear::new(p, inputs, outputs, init)?;
                Ok(if relu { l.with_relu() } else { l })
            },
            &[&x],
        );
        self.at(name)
    }

    /// The builder (for nodes of other kinds) without moving the current value.
    pub fn graph(&mut self) -> &mut GraphBuilder {
        &mut self.g
    }

    /// The builder and the name of the current value (the logits).
    pub fn finish(self) -> (GraphBuilder, String) {
        (self.g, self.x)
    }
}
