//! The layer abstraction: forward, backward, parameters and a train/eval mode.

use crate::{LayerError, Tensor};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_kernels::Isa;
use std::any::Any;

/// Training (batch statistics, dropout active, saved state for backward) or inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// What every call needs besides its tensors: the kernel path and thread count, and the mode.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub cfg: GemmConfig,
    pub mode: Mode,
}

impl Ctx {
    pub fn train(cfg: GemmConfig) -> Ctx {
        Ctx { cfg, mode: Mode::Train }
    }
    pub fn eval(cfg: GemmConfig) -> Ctx {
        Ctx { cfg, mode: Mode::Eval }
    }
    pub fn isa(&self) -> Isa {
        self.cfg.isa()
    }
    pub fn is_train(&self) -> bool {
        self.mode == Mode::Train
    }
}

/// A trainable tensor and the gradient accumulated into it by backward passes.
#[derive(Clone, Debug)]
pub struct Param {
    pub value: Tensor,
    pub grad: Tensor,
    /// Whether weight decay applies (weights yes; biases and normalisation scales no).
    pub decay: bool,
}

impl Param {
    pub fn new(value: Tensor, decay: bool) -> Param {
        let grad = Tensor::zeros(value.shape());
        Param { value, grad, decay }
    }
}

/// A differentiable layer. The layer owns its output and its input gradient, so buffers
/// are reused from batch to batch; the caller keeps each layer's input alive between
/// `forward` and `backward` and passes it again (saved tensors are explicit, as in llm.c).
pub trait Layer: Send {
    /// A one-line description, e.g. `conv2d 1->6 5x5`.
    fn describe(&self) -> String;

    /// The output shape for an input of shape `input`, or the error `forward` would give.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError>;

    /// Computes the output for `x` (kept until the next forward).
    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError>;

    /// The output of the last forward pass.
    fn output(&self) -> &Tensor;

    /// Given the input `x` of the last forward pass and `dy`, the loss gradient with respect
    /// to its output: adds the parameter gradients into each [`Param::grad`] and returns the
    /// gradient with respect to `x` (kept until the next backward).
    fn backward(&mut self, ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError>;

    /// The input gradient of the last backward pass.
    fn input_grad(&self) -> &Tensor;

    /// Visits each trainable parameter with its dotted name (`prefix.weight`).
    fn visit_params(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut Param)) {}

    /// Visits each non-trainable state tensor (running statistics) with its dotted name.
    fn visit_buffers(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut Tensor)) {}

    /// Tells the layer that nobody needs its input gradient (the first layer of a network),
    /// so backward may skip computing it.
    fn skip_input_grad(&mut self) {}

    /// For rewrites that need the concrete type (BatchNorm folding).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// `prefix.name`, or `name` at the top level.
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Visits a weight and an optional bias as `prefix.weight` and `prefix.bias`.
pub(crate) fn visit_weight_bias(
    prefix: &str,
    weight: &mut Param,
    bias: Option<&mut Param>,
    f: &mut dyn FnMut(&str, &mut Param),
) {
    f(&join_name(prefix, "weight"), weight);
    if let Some(b) = bias {
        f(&join_name(prefix, "bias"), b);
    }
}

/// Sets every parameter gradient of `layer` to zero.
pub fn zero_grads(layer: &mut dyn Layer) {
    layer.visit_params("", &mut |_, p| p.grad.data_mut().fill(0.0));
}

/// The number of trainable values in `layer`.
pub fn count_params(layer: &mut dyn Layer) -> usize {
    let mut n = 0;
    layer.visit_params("", &mut |_, p| n += p.value.len());
    n
}
