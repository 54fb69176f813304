//! Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay,
//! in PyTorch's formulation: `g += wd w; v = mu v + g; w -= lr (nesterov ? g + mu v : v)`.

use super::{check_weight_decay, for_each_param, Optimizer, StateSlots};
use crate::{Layer, LayerError, Tensor};

pub struct Sgd {
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    velocity: StateSlots,
}

impl Sgd {
    /// Plain SGD; see the `with_*` methods.
    pub fn new() -> Self {
        Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0, velocity: StateSlots::default() }
    }
    pub fn with_momentum(self, momentum: f32, nesterov: bool) -> Result<Self, LayerError> {
        if !(0.0..1.0).contains(&momentum) {
            return Err(LayerError::BadHyperParameter {
                what: "momentum",
                expected: "in [0, 1)",
                got: momentum as f64,
            });
        }
        Ok(Sgd { momentum, nesterov, ..self })
    }
    pub fn with_weight_decay(self, weight_decay: f32) -> Result<Self, LayerError> {
        Ok(Sgd { weight_decay: check_weight_decay(weight_decay)?, ..self })
    }
    /// Allocates the momentum state now (before loading a checkpoint into it).
    pub fn prepare(&mut self, net: &mut dyn Layer) {
        if self.momentum > 0.0 {
            self.velocity.prepare(net);
        }
    }
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd::new()
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, net: &mut dyn Layer, lr: f32) -> Result<(), LayerError> {
        let (mu, nesterov) = (self.momentum, self.nesterov);
        for_each_param(net, |i, name, p| {
            let wd = if p.decay { self.weight_decay } else { 0.0 };
            if mu == 0.0 {
                for (w, &g) in p.value.data_mut().iter_mut().zip(p.grad.data()) {
                    *w -= lr * (g + wd * *w);
                }
                return Ok(());
            }
            let v = self.velocity.get(i, name, &p.value)?;
            for ((w, &g), v) in p.value.data_mut().iter_mut().zip(p.grad.data()).zip(v.data_mut()) {
                let g = g + wd * *w;
                *v = mu * *v + g;
                *w -= lr * if nesterov { g + mu * *v } else { *v };
            }
            Ok(())
        })
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        self.velocity.visit("sgd_velocity", f);
    }
}
