//! Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay,
//! in PyTorch's formulation: `g += wd w; v = mu v + g; w -= lr (nesterov ? g + mu v : v)`.

use super::{check_weight_decay, Optimizer, Select, Slots};
use crate::param::{Grads, Params};
use crate::{LayerError, Tensor};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_kernels::optim::{self, SgdStep};

pub struct Sgd {
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    velocity: Slots,
    /// The kernel path and threads of the updates.
    cfg: Option<GemmConfig>,
}

impl Sgd {
    /// Plain SGD; see the `with_*` methods, then [`Sgd::attach`].
    pub fn new() -> Self {
        Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0, velocity: Slots::default(), cfg: None }
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
    /// Attaches the optimizer to the parameters `select` picks (state allocated now, so a
    /// checkpoint can be loaded into it before the first step).
    pub fn attach(self, params: &Params, select: Select) -> Result<Self, LayerError> {
        let cfg = Some(match self.cfg {
            Some(c) => c,
            None => GemmConfig::from_env()?,
        });
        Ok(Sgd { velocity: Slots::attach(params, select, &["sgd_velocity"])?, cfg, ..self })
    }
    /// Updates on this kernel path and thread count (default: the environment's, see
    /// `GemmConfig::from_env`).
    pub fn with_config(self, cfg: GemmConfig) -> Self {
        Sgd { cfg: Some(cfg), ..self }
    }
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd::new()
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut Params, grads: &Grads, lr: f32) -> Result<(), LayerError> {
        let (mu, nesterov, wd) = (self.momentum, self.nesterov, self.weight_decay);
        let cfg = self.cfg.ok_or(LayerError::NotAttached)?;
        self.velocity.each(params, grads, |w, g, decays, state| {
            let h = SgdStep { lr, momentum: mu, nesterov, weight_decay: if decays { wd } else { 0.0 } };
            optim::sgd_update(&cfg, &h, w, g, state[0].data_mut())?;
            Ok(())
        })
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        if self.momentum > 0.0 {
            self.velocity.visit(f);
        }
    }
}
