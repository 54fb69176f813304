//! Elementwise activations (ReLU, leaky ReLU, sigmoid, tanh) and softmax, on the vectorised
//! kernels.

use super::one_f32;
use crate::op::{same_as_input, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::ValueRef;
use crate::LayerError;
use simdnn_kernels::eltwise;

/// Which function an [`Activation`] applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationKind {
    Relu,
    /// `x` where positive, else `slope * x` (Maas et al., 2013).
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    /// `a tanh(s x)`; LeCun et al. (1998, appendix A) chose `a = 1.7159`, `s = 2/3`, so that
    /// `f(±1) = ±1` and the gain is largest there.
    ScaledTanh {
        a: f32,
        s: f32,
    },
}

/// `y = f(x)` elementwise, any shape.
pub struct Activation {
    kind: ActivationKind,
}

impl Activation {
    pub fn new(kind: ActivationKind) -> Self {
        Activation { kind }
    }
    pub fn relu() -> Self {
        Activation::new(ActivationKind::Relu)
    }
    /// Leaky ReLU with `slope` for negative inputs (PyTorch's default is 0.01).
    pub fn leaky_relu(slope: f32) -> Self {
        Activation::new(ActivationKind::LeakyRelu(slope))
    }
    pub fn sigmoid() -> Self {
        Activation::new(ActivationKind::Sigmoid)
    }
    pub fn tanh() -> Self {
        Activation::new(ActivationKind::Tanh)
    }
    /// LeNet-5's squashing function `1.7159 tanh(2x / 3)`.
    pub fn lecun_tanh() -> Self {
        Activation::new(ActivationKind::ScaledTanh { a: 1.7159, s: 2.0 / 3.0 })
    }
    pub fn kind(&self) -> ActivationKind {
        self.kind
    }
}

impl Op for Activation {
    fn describe(&self) -> String {
        match self.kind {
            ActivationKind::LeakyRelu(s) => format!("leaky_relu {s}"),
            ActivationKind::ScaledTanh { a, s } => format!("{a} tanh({s} x)"),
            k => format!("{k:?}").to_lowercase(),
        }
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        same_as_input(&self.describe(), inputs)
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32(|| self.describe(), inputs)?;
        let y = &mut outputs[0];
        y.resize(x.shape);
        let isa = cx.isa();
        match self.kind {
            ActivationKind::Relu => eltwise::relu(isa, x.data, y.data_mut())?,
            ActivationKind::Sigmoid => eltwise::sigmoid(isa, x.data, y.data_mut())?,
            ActivationKind::Tanh => eltwise::tanh(isa, x.data, y.data_mut())?,
            ActivationKind::LeakyRelu(s) => {
                for (o, &v) in y.data_mut().iter_mut().zip(x.data) {
                    *o = if v > 0.0 { v } else { s * v };
                }
            }
            ActivationKind::ScaledTanh { a, s } => {
                let scaled = state.tensor(0);
                scaled.resize(x.shape);
                scaled.data_mut().iter_mut().zip(x.data).for_each(|(t, &v)| *t = s * v);
                eltwise::tanh(isa, scaled.data(), y.data_mut())?;
                y.data_mut().iter_mut().for_each(|v| *v *= a);
            }
        }
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (x, y, dy) = (io.inputs[0].f32("activation")?, io.outputs[0], io.d_outputs[0]);
        crate::tensor::check_grad(|| self.describe(), y.shape, dy.shape)?;
        dx.resize(x.shape);
        let isa = cx.isa();
        match self.kind {
            ActivationKind::Relu => eltwise::relu_backward(isa, x.data, dy.data, dx.data_mut())?,
            ActivationKind::Sigmoid => eltwise::sigmoid_backward(isa, y.data, dy.data, dx.data_mut())?,
            ActivationKind::Tanh => eltwise::tanh_backward(isa, y.data, dy.data, dx.data_mut())?,
            ActivationKind::LeakyRelu(s) => {
                for ((d, &g), &v) in dx.data_mut().iter_mut().zip(dy.data).zip(x.data) {
                    *d = if v > 0.0 { g } else { s * g };
                }
            }
            ActivationKind::ScaledTanh { a, s } => {
                for ((d, &g), &v) in dx.data_mut().iter_mut().zip(dy.data).zip(y.data) {
                    let t = v / a;
                    *d = g * a * s * (1.0 - t * t);
                }
            }
        }
        Ok(())
    }
}

/// Softmax over the last axis (probabilities for inference; for training use
/// [`crate::ops::SoftmaxCrossEntropy`] on the logits, which is stable and cheaper).
#[derive(Default)]
pub struct Softmax;

impl Softmax {
    pub fn new() -> Self {
        Softmax
    }
}

fn classes(shape: &[usize]) -> Result<usize, LayerError> {
    match shape.last() {
        Some(&c) if c > 0 => Ok(c),
        _ => Err(LayerError::InputShape {
            layer: "softmax".into(),
            expected: "[..., classes]".into(),
            got: shape.to_vec(),
        }),
    }
}

impl Op for Softmax {
    fn describe(&self) -> String {
        "softmax".into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        let out = same_as_input("softmax", inputs)?;
        classes(&inputs[0].shape)?;
        Ok(out)
    }
    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32("softmax", inputs)?;
        let y = &mut outputs[0];
        y.resize(x.shape);
        eltwise::softmax(cx.isa(), classes(x.shape)?, x.data, y.data_mut())?;
        Ok(())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (y, dy) = (io.outputs[0], io.d_outputs[0]);
        dx.resize(y.shape);
        eltwise::softmax_backward(classes(y.shape)?, y.data, dy.data, dx.data_mut())?;
        Ok(())
    }
}
