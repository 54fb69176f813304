//! A model's weights: named parameters (trainable or frozen) and buffers (running
//! statistics), addressed by id, and the gradients a backward pass adds into.
//!
//! Operations hold [`ParamId`]s, not tensors, so one parameter may be read by many nodes (an
//! RNN cell unrolled over time, tied embeddings): backward adds every use's gradient into
//! the same [`Grads`] entry.

use crate::init::{Init, Rng};
use crate::optim::Select;
use crate::{LayerError, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A parameter of a [`Params`] store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(usize);

impl ParamId {
    /// The parameter's position in its store (creation order).
    pub fn index(self) -> usize {
        self.0
    }
}

/// A buffer (non-trainable state such as running statistics) of a [`Params`] store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferId(usize);

/// How a new tensor is filled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    Zeros,
    Constant(f32),
    /// Drawn by `init` with the given fan-in and fan-out.
    Random {
        init: Init,
        fan_in: usize,
        fan_out: usize,
    },
    /// `-1` or `+1`, each with probability one half.
    Signs,
}

struct Entry {
    name: String,
    value: Tensor,
    trainable: bool,
    /// Whether weight decay applies (weights yes; biases and normalisation scales no).
    decay: bool,
}

/// The parameters and buffers of one model, in creation order.
pub struct Params {
    entries: Vec<Entry>,
    buffers: Vec<(String, RwLock<Tensor>)>,
    /// Bumped by every mutable access to a value, so caches of derived weights (prepared
    /// convolutions) know when they are stale.
    version: u64,
    /// Tells stores apart, so a plan runs only on the weights it was built over.
    identity: u64,
    /// Set while a second plan is declared over these weights: a layer then reuses the
    /// parameter of its name instead of creating one.
    reuse: bool,
}

impl Default for Params {
    fn default() -> Params {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Params {
            entries: Vec::new(),
            buffers: Vec::new(),
            version: 0,
            identity: NEXT.fetch_add(1, Ordering::Relaxed),
            reuse: false,
        }
    }
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Which store this is (plans record the store they were built over).
    pub(crate) fn identity(&self) -> u64 {
        self.identity
    }

    /// While set, [`ParamScope`] resolves parameters and buffers by name to the existing
    /// ones (shapes must agree) and creates none.
    pub(crate) fn set_reuse(&mut self, reuse: bool) {
        self.reuse = reuse;
    }

    fn check_new(&self, name: &str) -> Result<(), LayerError> {
        if self.entries.iter().any(|e| e.name == name) || self.buffers.iter().any(|(n, _)| n == name) {
            return Err(LayerError::DuplicateName { name: name.to_string() });
        }
        Ok(())
    }

    /// Adds a trainable parameter.
    pub fn add(&mut self, name: &str, value: Tensor, decay: bool) -> Result<ParamId, LayerError> {
        self.check_new(name)?;
        self.entries.push(Entry { name: name.to_string(), value, trainable: true, decay });
        self.version += 1;
        Ok(ParamId(self.entries.len() - 1))
    }

    /// Adds a buffer.
    pub fn add_buffer(&mut self, name: &str, value: Tensor) -> Result<BufferId, LayerError> {
        self.check_new(name)?;
        self.buffers.push((name.to_string(), RwLock::new(value)));
        Ok(BufferId(self.buffers.len() - 1))
    }

    /// The number of parameters (not values).
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every parameter id, in creation order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> {
        (0..self.entries.len()).map(ParamId)
    }

    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.entries.iter().position(|e| e.name == name).map(ParamId)
    }
    pub fn name(&self, id: ParamId) -> &str {
        &self.entries[id.0].name
    }
    pub fn value(&self, id: ParamId) -> &Tensor {
        &self.entries[id.0].value
    }
    pub fn value_mut(&mut self, id: ParamId) -> &mut Tensor {
        self.version += 1;
        &mut self.entries[id.0].value
    }
    pub fn is_trainable(&self, id: ParamId) -> bool {
        self.entries[id.0].trainable
    }
    pub fn decays(&self, id: ParamId) -> bool {
        self.entries[id.0].decay
    }
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Freezes (`trainable = false`) or unfreezes the parameters named `prefix` or
    /// `prefix.*` (every parameter for `""`); returns how many matched.
    pub fn set_trainable(&mut self, prefix: &str, trainable: bool) -> usize {
        let mut n = 0;
        for e in &mut self.entries {
            if in_scope(&e.name, prefix) {
                e.trainable = trainable;
                n += 1;
            }
        }
        n
    }

    /// The number of values of the parameters (the count a model summary reports).
    pub fn count(&self) -> usize {
        self.entries.iter().map(|e| e.value.len()).sum()
    }

    /// The number of values of trainable parameters.
    pub fn trainable_count(&self) -> usize {
        self.entries.iter().filter(|e| e.trainable).map(|e| e.value.len()).sum()
    }

    pub fn buffer_id(&self, name: &str) -> Option<BufferId> {
        self.buffers.iter().position(|(n, _)| n == name).map(BufferId)
    }
    pub fn buffer(&self, id: BufferId) -> RwLockReadGuard<'_, Tensor> {
        self.buffers[id.0].1.read().unwrap_or_else(|e| e.into_inner())
    }
    pub fn buffer_mut(&self, id: BufferId) -> RwLockWriteGuard<'_, Tensor> {
        self.buffers[id.0].1.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Visits every parameter value, then every buffer, with its name (checkpoints).
    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        self.version += 1;
        for e in &mut self.entries {
            f(&e.name, &mut e.value);
        }
        for (name, b) in &mut self.buffers {
            f(name, b.get_mut().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// Visits every parameter value, then every buffer, with its name.
    pub fn visit(&self, f: &mut dyn FnMut(&str, &Tensor)) {
        for e in &self.entries {
            f(&e.name, &e.value);
        }
        for (name, b) in &self.buffers {
            f(name, &b.read().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

/// Whether `name` is `prefix` or lies under it (`prefix.`…); everything is under `""`.
pub fn in_scope(name: &str, prefix: &str) -> bool {
    prefix.is_empty() || name == prefix || name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
}

/// `prefix.name`, or `name` at the top level.
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Creates the parameters of one layer, named under the layer's name (`conv1.weight`).
pub struct ParamScope<'a> {
    params: &'a mut Params,
    prefix: String,
    rng: &'a mut Rng,
}

impl<'a> ParamScope<'a> {
    pub fn new(params: &'a mut Params, prefix: &str, rng: &'a mut Rng) -> ParamScope<'a> {
        ParamScope { params, prefix: prefix.to_string(), rng }
    }

    /// The scope's name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A new trainable parameter `prefix.name` of `shape`, filled by `fill`.
    /// Over existing weights (a second plan, [`crate::Model::plan`]), the parameter of that
    /// name, which must have `shape`.
    pub fn param(&mut self, name: &str, shape: &[usize], fill: Fill, decay: bool) -> Result<ParamId, LayerError> {
        let full = join_name(&self.prefix, name);
        if self.params.reuse {
            let id = self.params.id(&full).ok_or_else(|| LayerError::UnknownParam { name: full.clone() })?;
            return self.reused(full, self.params.value(id).shape(), shape).map(|_| id);
        }
        let t = self.tensor(shape, fill);
        self.params.add(&full, t, decay)
    }

    /// The value of parameter `id` to adjust its initial values (an LSTM's forget-gate
    /// bias); `None` over existing weights, which a plan never changes.
    pub fn initial_value_mut(&mut self, id: ParamId) -> Option<&mut Tensor> {
        (!self.params.reuse).then(|| self.params.value_mut(id))
    }

    /// A new buffer `prefix.name` (over existing weights, the buffer of that name).
    pub fn buffer(&mut self, name: &str, shape: &[usize], fill: Fill) -> Result<BufferId, LayerError> {
        let full = join_name(&self.prefix, name);
        if self.params.reuse {
            let id = self.params.buffer_id(&full).ok_or_else(|| LayerError::UnknownParam { name: full.clone() })?;
            return self.reused(full, self.params.buffer(id).shape(), shape).map(|_| id);
        }
        let t = self.tensor(shape, fill);
        self.params.add_buffer(&full, t)
    }

    /// An error unless an existing tensor `name` of shape `have` fits a declaration of `want`.
    fn reused(&self, name: String, have: &[usize], want: &[usize]) -> Result<(), LayerError> {
        if have == want {
            Ok(())
        } else {
            Err(LayerError::ParamShape { name, expected: have.to_vec(), got: want.to_vec() })
        }
    }

    /// The generator (for layers that draw more than their parameters, such as a dropout seed).
    pub fn rng(&mut self) -> &mut Rng {
        self.rng
    }

    fn tensor(&mut self, shape: &[usize], fill: Fill) -> Tensor {
        let mut t = Tensor::zeros(shape);
        match fill {
            Fill::Zeros => {}
            Fill::Constant(v) => t.data_mut().fill(v),
            Fill::Random { init, fan_in, fan_out } => init.fill(fan_in, fan_out, t.data_mut(), self.rng),
            Fill::Signs => {
                for v in t.data_mut() {
                    *v = if crate::init::uniform(self.rng) < 0.5 { -1.0 } else { 1.0 };
                }
            }
        }
        t
    }
}

/// The gradients of one model's parameters, added into by backward passes.
///
/// Which parameters take a gradient is chosen per backward call (the trainable ones, or a
/// [`Select`]ion of them): a parameter left out gets none, so no operation computes one. A
/// gradient tensor, once allocated, is kept whatever later calls select, so alternating
/// selections (a GAN's two players) allocate nothing.
#[derive(Default)]
pub struct Grads {
    tensors: Vec<Option<Tensor>>,
    /// Taking a gradient in the running backward pass.
    selected: Vec<bool>,
    /// Handed out to an operation since the last [`Grads::zero`].
    touched: Vec<bool>,
    /// Gradients handed to operations to add into: a measure of the weight-gradient work
    /// backward passes did (frozen parameters get none).
    handed_out: usize,
}

impl Grads {
    /// Zero gradients for every trainable parameter of `params`.
    pub fn new(params: &Params) -> Grads {
        let mut g = Grads::default();
        g.sync(params);
        g
    }

    /// Selects the trainable parameters of `params` (allocating gradients for parameters
    /// added or unfrozen since; none is ever dropped).
    pub fn sync(&mut self, params: &Params) {
        self.select_where(params, |id| params.is_trainable(id));
    }

    /// Selects the trainable parameters `select` picks for the next backward passes; an
    /// error naming an unknown or frozen parameter.
    pub fn select(&mut self, params: &Params, select: Select) -> Result<(), LayerError> {
        select.check(params)?;
        self.select_where(params, |id| select.picks(params, id));
        Ok(())
    }

    fn select_where(&mut self, params: &Params, pick: impl Fn(ParamId) -> bool) {
        self.tensors.resize_with(params.len(), || None);
        self.selected.resize(params.len(), false);
        self.touched.resize(params.len(), false);
        for id in params.ids() {
            let on = pick(id);
            self.selected[id.0] = on;
            if on && self.tensors[id.0].is_none() {
                self.tensors[id.0] = Some(Tensor::zeros(params.value(id).shape()));
            }
        }
    }

    /// Sets every gradient to zero (and forgets which were handed out).
    pub fn zero(&mut self) {
        for t in self.tensors.iter_mut().flatten() {
            t.data_mut().fill(0.0);
        }
        self.touched.fill(false);
    }

    /// Whether `id` takes a gradient in the running pass.
    pub fn wants(&self, id: ParamId) -> bool {
        self.selected.get(id.0).copied().unwrap_or(false)
    }

    /// The gradient of `id` to add into, `None` for a parameter not selected.
    pub fn get_mut(&mut self, id: ParamId) -> Option<&mut Tensor> {
        if !self.wants(id) {
            return None;
        }
        let t = self.tensors.get_mut(id.0)?.as_mut()?;
        self.touched[id.0] = true;
        self.handed_out += 1;
        Some(t)
    }

    /// How many times [`Grads::get_mut`] has handed out a gradient: each is one weight
    /// gradient an operation computed.
    pub fn handed_out(&self) -> usize {
        self.handed_out
    }

    /// The joint L2 norm of the gradients touched since the last [`Grads::zero`].
    pub fn norm(&self) -> f64 {
        let touched = self.tensors.iter().zip(&self.touched).filter(|(_, &t)| t).filter_map(|(g, _)| g.as_ref());
        touched.flat_map(|g| g.data()).map(|&v| v as f64 * v as f64).sum::<f64>().sqrt()
    }

    /// Scales the touched gradients so that their joint L2 norm is at most `max_norm`
    /// (gradient-norm clipping, Pascanu et al. 2013); returns the norm before. A non-finite
    /// norm is left for the caller's loss check to catch.
    pub fn clip_norm(&mut self, max_norm: f32) -> f64 {
        let norm = self.norm();
        if norm.is_finite() && norm > max_norm as f64 {
            let scale = (max_norm as f64 / norm) as f32;
            let touched = self.tensors.iter_mut().zip(&self.touched).filter(|(_, &t)| t);
            for g in touched.filter_map(|(g, _)| g.as_mut()) {
                g.data_mut().iter_mut().for_each(|v| *v *= scale);
            }
        }
        norm
    }

    /// The gradient of `id` if an operation added into it since the last [`Grads::zero`]
    /// (optimizers update only those).
    pub fn get(&self, id: ParamId) -> Option<&Tensor> {
        if !self.touched.get(id.0).copied().unwrap_or(false) {
            return None;
        }
        self.tensors.get(id.0)?.as_ref()
    }
}
