//! Elementwise activations (ReLU, sigmoid, tanh) and softmax, on the vectorised kernels.

use crate::layer::{Ctx, Layer};
use crate::tensor::check_grad;
use crate::{LayerError, Tensor};
use simdnn_kernels::eltwise;
use std::any::Any;

/// `dy` through a ReLU fused into a layer's output `y` (zero where `y <= 0`), written into
/// `buf`; or `dy` itself when no ReLU is fused.
pub(crate) fn through_fused_relu<'a>(
    ctx: &Ctx,
    relu: bool,
    y: &Tensor,
    dy: &'a Tensor,
    buf: &'a mut Tensor,
) -> Result<&'a Tensor, LayerError> {
    if !relu {
        return Ok(dy);
    }
    buf.resize(dy.shape());
    eltwise::relu_backward(ctx.isa(), y.data(), dy.data(), buf.data_mut())?;
    Ok(buf)
}

/// Which function an [`Activation`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationKind {
    Relu,
    Sigmoid,
    Tanh,
}

/// `y = f(x)` elementwise, any shape.
pub struct Activation {
    kind: ActivationKind,
    y: Tensor,
    dx: Tensor,
}

impl Activation {
    pub fn new(kind: ActivationKind) -> Self {
        Activation { kind, y: Tensor::default(), dx: Tensor::default() }
    }
    pub fn relu() -> Self {
        Activation::new(ActivationKind::Relu)
    }
    pub fn sigmoid() -> Self {
        Activation::new(ActivationKind::Sigmoid)
    }
    pub fn tanh() -> Self {
        Activation::new(ActivationKind::Tanh)
    }
    pub fn kind(&self) -> ActivationKind {
        self.kind
    }
}

impl Layer for Activation {
    fn describe(&self) -> String {
        format!("{:?}", self.kind).to_lowercase()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        self.y.resize(x.shape());
        let f = match self.kind {
            ActivationKind::Relu => eltwise::relu,
            ActivationKind::Sigmoid => eltwise::sigmoid,
            ActivationKind::Tanh => eltwise::tanh,
        };
        f(ctx.isa(), x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn backward(&mut self, ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        self.dx.resize(x.shape());
        let (isa, dx) = (ctx.isa(), self.dx.data_mut());
        match self.kind {
            ActivationKind::Relu => eltwise::relu_backward(isa, x.data(), dy.data(), dx),
            ActivationKind::Sigmoid => eltwise::sigmoid_backward(isa, self.y.data(), dy.data(), dx),
            ActivationKind::Tanh => eltwise::tanh_backward(isa, self.y.data(), dy.data(), dx),
        }?;
        Ok(&self.dx)
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Softmax over the last axis of `[n, classes]` (probabilities for inference; for training
/// use [`crate::SoftmaxCrossEntropy`] on the logits, which is stable and cheaper).
#[derive(Default)]
pub struct Softmax {
    y: Tensor,
    dx: Tensor,
}

impl Softmax {
    pub fn new() -> Self {
        Softmax::default()
    }
}

fn classes(shape: &[usize]) -> Result<usize, LayerError> {
    match *shape {
        [_, c] => Ok(c),
        _ => Err(LayerError::InputShape {
            layer: "softmax".into(),
            expected: "[batch, classes]".into(),
            got: shape.to_vec(),
        }),
    }
}

impl Layer for Softmax {
    fn describe(&self) -> String {
        "softmax".into()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        classes(input)?;
        Ok(input.to_vec())
    }
    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let c = classes(x.shape())?;
        self.y.resize(x.shape());
        eltwise::softmax(ctx.isa(), c, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn backward(&mut self, _ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad("softmax", &self.y, dy)?;
        self.dx.resize(x.shape());
        eltwise::softmax_backward(classes(x.shape())?, self.y.data(), dy.data(), self.dx.data_mut())?;
        Ok(&self.dx)
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
