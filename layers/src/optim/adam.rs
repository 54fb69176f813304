//! Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019): bias-corrected first and
//! second moments; weight decay either added to the gradient (Adam's L2) or applied to the
//! weights directly (AdamW's decoupled decay).

use super::{check_weight_decay, Optimizer, Select, Slots};
use crate::param::{Grads, Params};
use crate::{LayerError, Tensor};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_kernels::optim::{self, AdamStep};

pub struct Adam {
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
    /// Steps taken, as a one-element tensor so that it is checkpointed with the moments.
    steps: Tensor,
    moments: Slots,
    /// The kernel path and threads of the updates.
    cfg: Option<GemmConfig>,
}

impl Adam {
    /// Adam with `betas = (0.9, 0.999)`, `eps = 1e-8`, no weight decay; then
    /// [`Adam::attach`].
    pub fn new() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            steps: Tensor::zeros(&[1]),
            moments: Slots::default(),
            cfg: None,
        }
    }

    /// AdamW: decay applied as `w -= lr wd w`, separately from the adaptive step.
    pub fn adamw(weight_decay: f32) -> Result<Self, LayerError> {
        Ok(Adam { decoupled: true, ..Adam::new().with_weight_decay(weight_decay)? })
    }

    pub fn with_betas(self, beta1: f32, beta2: f32) -> Result<Self, LayerError> {
        for (what, b) in [("beta1", beta1), ("beta2", beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(LayerError::BadHyperParameter { what, expected: "in [0, 1)", got: b as f64 });
            }
        }
        Ok(Adam { beta1, beta2, ..self })
    }

    pub fn with_weight_decay(self, weight_decay: f32) -> Result<Self, LayerError> {
        Ok(Adam { weight_decay: check_weight_decay(weight_decay)?, ..self })
    }

    /// Updates on this kernel path and thread count (default: the environment's, see
    /// `GemmConfig::from_env`).
    pub fn with_config(self, cfg: GemmConfig) -> Self {
        Adam { cfg: Some(cfg), ..self }
    }

    /// Attaches the optimizer to the parameters `select` picks (moments allocated now, so a
    /// checkpoint can be loaded into them before the first step).
    pub fn attach(self, params: &Params, select: Select) -> Result<Self, LayerError> {
        let cfg = Some(match self.cfg {
            Some(c) => c,
            None => GemmConfig::from_env()?,
        });
        Ok(Adam { moments: Slots::attach(params, select, &["adam_m", "adam_v"])?, cfg, ..self })
    }
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new()
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut Params, grads: &Grads, lr: f32) -> Result<(), LayerError> {
        let cfg = self.cfg.ok_or(LayerError::NotAttached)?;
        let t = self.steps.data()[0] as i32 + 1;
        self.steps.data_mut()[0] = t as f32;
        let (b1, b2, eps, wd_all, decoupled) = (self.beta1, self.beta2, self.eps, self.weight_decay, self.decoupled);
        let step = lr / (1.0 - b1.powi(t));
        let inv_sqrt_correct2 = 1.0 / (1.0 - b2.powi(t)).sqrt();
        self.moments.each(params, grads, |w, g, decays, state| {
            let wd = if decays { wd_all } else { 0.0 };
            let (l2, decay) = if decoupled { (0.0, 1.0 - lr * wd) } else { (wd, 1.0) };
            let [m, v] = state else { return Ok(()) };
            let h = AdamStep { step, beta1: b1, beta2: b2, eps, inv_sqrt_correct2, l2, decay };
            optim::adam_update(&cfg, &h, w, g, m.data_mut(), v.data_mut())?;
            Ok(())
        })
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        f("adam_steps", &mut self.steps);
        self.moments.visit(f);
    }
}
