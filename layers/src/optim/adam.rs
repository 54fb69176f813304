//! Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019): bias-corrected first and
//! second moments; weight decay either added to the gradient (Adam's L2) or applied to the
//! weights directly (AdamW's decoupled decay).

use super::{check_weight_decay, for_each_param, Optimizer, StateSlots};
use crate::{Layer, LayerError, Tensor};

pub struct Adam {
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
    /// Steps taken, as a one-element tensor so that it is checkpointed with the moments.
    steps: Tensor,
    m: StateSlots,
    v: StateSlots,
}

impl Adam {
    /// Adam with `betas = (0.9, 0.999)`, `eps = 1e-8`, no weight decay.
    pub fn new() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            steps: Tensor::zeros(&[1]),
            m: StateSlots::default(),
            v: StateSlots::default(),
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

    /// Allocates the moment state now (before loading a checkpoint into it).
    pub fn prepare(&mut self, net: &mut dyn Layer) {
        self.m.prepare(net);
        self.v.prepare(net);
    }
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new()
    }
}

impl Optimizer for Adam {
    fn step(&mut self, net: &mut dyn Layer, lr: f32) -> Result<(), LayerError> {
        let t = self.steps.data()[0] as i32 + 1;
        self.steps.data_mut()[0] = t as f32;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let correct1 = 1.0 - b1.powi(t);
        let step = lr / correct1;
        let inv_sqrt_correct2 = 1.0 / (1.0 - b2.powi(t)).sqrt();
        let (m_slots, v_slots) = (&mut self.m, &mut self.v);
        for_each_param(net, |i, name, p| {
            let wd = if p.decay { self.weight_decay } else { 0.0 };
            let (l2, decay) = if self.decoupled { (0.0, 1.0 - lr * wd) } else { (wd, 1.0) };
            let m = m_slots.get(i, name, &p.value)?;
            let v = v_slots.get(i, name, &p.value)?;
            let values = p.value.data_mut().iter_mut().zip(p.grad.data());
            for ((w, &g), (m, v)) in values.zip(m.data_mut().iter_mut().zip(v.data_mut())) {
                let g = g + l2 * *w;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w = *w * decay - step * *m / ((*v).sqrt() * inv_sqrt_correct2 + eps);
            }
            Ok(())
        })
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        f("adam_steps", &mut self.steps);
        self.m.visit("adam_m", f);
        self.v.visit("adam_v", f);
    }
}
