//! Optimizers over a model's parameters, and learning-rate schedules.
//!
//! An optimizer updates the parameters it was attached to (by name, see [`Select`]) and
//! keeps its state (momentum, moments) keyed by their names, so a checkpoint holding
//! several models and optimizers (a GAN's `generator.*`, `discriminator.*`, `opt_g.*`,
//! `opt_d.*`) loads into them whatever their order.

mod adam;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use schedule::LrSchedule;
pub use sgd::Sgd;

use crate::param::{in_scope, Grads, ParamId, Params};
use crate::{LayerError, Tensor};

/// Updates parameters from their accumulated gradients.
pub trait Optimizer: Send {
    /// One update, with learning rate `lr`, of every attached parameter that has a gradient
    /// (a parameter frozen since is left alone). Gradients are left as they are.
    fn step(&mut self, params: &mut Params, grads: &Grads, lr: f32) -> Result<(), LayerError>;

    /// Visits the optimizer's state tensors with names (for checkpoints).
    fn visit_state(&mut self, f: &mut dyn FnMut(&str, &mut Tensor));
}

/// Which parameters an optimizer updates.
#[derive(Clone, Copy, Debug)]
pub enum Select<'a> {
    /// Every trainable parameter.
    Trainable,
    /// The trainable parameters named `prefix` or `prefix.*`.
    Prefix(&'a str),
    /// These parameters, each of which must exist and be trainable.
    Names(&'a [&'a str]),
}

impl Select<'_> {
    /// An error naming a parameter [`Select::Names`] lists that is unknown or frozen.
    pub fn check(&self, params: &Params) -> Result<(), LayerError> {
        if let Select::Names(names) = self {
            for n in names.iter() {
                let id = params.id(n).ok_or_else(|| LayerError::UnknownParam { name: n.to_string() })?;
                if !params.is_trainable(id) {
                    return Err(LayerError::FrozenParam { name: n.to_string() });
                }
            }
        }
        Ok(())
    }

    /// Whether parameter `id` of `params` is selected (frozen ones never are).
    pub fn picks(&self, params: &Params, id: ParamId) -> bool {
        params.is_trainable(id)
            && match self {
                Select::Trainable => true,
                Select::Prefix(p) => in_scope(params.name(id), p),
                Select::Names(names) => names.contains(&params.name(id)),
            }
    }
}

/// The attached parameters and `kinds` state tensors for each, named `{kind}.{param}`.
#[derive(Default)]
pub(crate) struct Slots {
    ids: Vec<ParamId>,
    names: Vec<String>,
    /// `state[i][k]`: state `k` of parameter `i`.
    state: Vec<Vec<Tensor>>,
    kinds: Vec<&'static str>,
}

impl Slots {
    /// Zero state of each kind for the parameters `select` picks; an error naming an
    /// unknown or frozen parameter.
    pub(crate) fn attach(params: &Params, select: Select, kinds: &[&'static str]) -> Result<Slots, LayerError> {
        select.check(params)?;
        let ids: Vec<ParamId> = params.ids().filter(|&id| select.picks(params, id)).collect();
        let names = ids.iter().map(|&id| params.name(id).to_string()).collect();
        let state =
            ids.iter().map(|&id| kinds.iter().map(|_| Tensor::zeros(params.value(id).shape())).collect()).collect();
        Ok(Slots { ids, names, state, kinds: kinds.to_vec() })
    }

    /// Runs `f(value, grad, decays, states)` for each attached parameter with a gradient,
    /// after checking that the parameters are still the ones attached (same names and
    /// shapes).
    pub(crate) fn each(
        &mut self,
        params: &mut Params,
        grads: &Grads,
        mut f: impl FnMut(&mut [f32], &[f32], bool, &mut [Tensor]) -> Result<(), LayerError>,
    ) -> Result<(), LayerError> {
        for (i, &id) in self.ids.iter().enumerate() {
            if id.index() >= params.len() || params.name(id) != self.names[i] {
                return Err(LayerError::UnknownParam { name: self.names[i].clone() });
            }
            if let Some(s) = self.state[i].iter().find(|s| s.shape() != params.value(id).shape()) {
                let (expected, got) = (params.value(id).shape().to_vec(), s.shape().to_vec());
                return Err(LayerError::ParamShape { name: self.names[i].clone(), expected, got });
            }
            let Some(g) = grads.get(id) else { continue };
            let decays = params.decays(id);
            f(params.value_mut(id).data_mut(), g.data(), decays, &mut self.state[i])?;
        }
        Ok(())
    }

    pub(crate) fn visit(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        for (k, kind) in self.kinds.iter().enumerate() {
            for (name, s) in self.names.iter().zip(&mut self.state) {
                f(&format!("{kind}.{name}"), &mut s[k]);
            }
        }
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
