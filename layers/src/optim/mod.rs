//! Optimizers over a network's parameters, and learning-rate schedules.
//!
//! An optimizer keeps per-parameter state (momentum, moments) in the order the network
//! visits its parameters, named after them so the state can be checkpointed.

mod adam;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use schedule::LrSchedule;
pub use sgd::Sgd;

use crate::{Layer, LayerError, Tensor};

/// Updates parameters from their accumulated gradients.
pub trait Optimizer: Send {
    /// One update of every parameter of `net` with learning rate `lr`. Gradients are left
    /// as they are (see [`crate::zero_grads`]).
    fn step(&mut self, net: &mut dyn Layer, lr: f32) -> Result<(), LayerError>;

    /// Visits the optimizer's state tensors with names (for checkpoints).
    fn visit_state(&mut self, f: &mut dyn FnMut(&str, &mut Tensor));
}

/// One state tensor per parameter, created on the first step, and checked against the
/// parameter's shape on every step (a network that changed shape is an error).
#[derive(Default)]
pub(crate) struct StateSlots {
    names: Vec<String>,
    tensors: Vec<Tensor>,
}

impl StateSlots {
    /// The state tensor for parameter number `i`, named `name`, shaped like `value`.
    pub(crate) fn get(&mut self, i: usize, name: &str, value: &Tensor) -> Result<&mut Tensor, LayerError> {
        if i == self.tensors.len() {
            self.names.push(name.to_string());
            self.tensors.push(Tensor::zeros(value.shape()));
        }
        let t = &mut self.tensors[i];
        if t.shape() != value.shape() {
            return Err(LayerError::ParamShape {
                name: name.into(),
                expected: value.shape().to_vec(),
                got: t.shape().to_vec(),
            });
        }
        Ok(t)
    }

    pub(crate) fn visit(&mut self, kind: &str, f: &mut dyn FnMut(&str, &mut Tensor)) {
        for (name, t) in self.names.iter().zip(&mut self.tensors) {
            f(&format!("{kind}.{name}"), t);
        }
    }

    /// Allocates the state for every parameter of `net` now (so a checkpoint can be loaded
    /// into it before the first step).
    pub(crate) fn prepare(&mut self, net: &mut dyn Layer) {
        let mut i = 0;
        net.visit_params("", &mut |name, p| {
            let _ = self.get(i, name, &p.value);
            i += 1;
        });
    }
}

/// `weight_decay` if it is a valid decay rate (finite and not negative).
pub(crate) fn check_weight_decay(weight_decay: f32) -> Result<f32, LayerError> {
    if weight_decay.is_finite() && weight_decay >= 0.0 {
        Ok(weight_decay)
    } else {
        Err(LayerError::BadHyperParameter { what: "weight decay", expected: ">= 0", got: weight_decay as f64 })
    }
}

/// Visits `net`'s parameters in order with their index; stops at the first error.
pub(crate) fn for_each_param(
    net: &mut dyn Layer,
    mut f: impl FnMut(usize, &str, &mut crate::Param) -> Result<(), LayerError>,
) -> Result<(), LayerError> {
    let mut i = 0;
    let mut result = Ok(());
    net.visit_params("", &mut |name, p| {
        if result.is_ok() {
            result = f(i, name, p);
        }
        i += 1;
    });
    result
}
