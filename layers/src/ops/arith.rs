//! Elementwise sums and products of two values of the same shape (residual connections,
//! gates).

use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, ValueInfo};
use crate::param::Params;
use crate::tensor::ValueRef;
use crate::{LayerError, Tensor};

/// The shape two inputs share, or an error.
fn same_shape(layer: &str, inputs: &[ValueInfo]) -> Result<Vec<ValueInfo>, LayerError> {
    expect_f32(layer, inputs, 2)?;
    if inputs[0].shape != inputs[1].shape {
        return Err(LayerError::ShapeMismatch {
            what: "the inputs of an elementwise op",
            a: inputs[0].shape.clone(),
            b: inputs[1].shape.clone(),
        });
    }
    Ok(vec![inputs[0].clone()])
}

/// `y = relu?(a + b)`.
#[derive(Default)]
pub struct Add {
    relu: bool,
}

impl Add {
    pub fn new() -> Self {
        Add { relu: false }
    }
    /// ReLU after the sum (ResNet's blocks end so).
    pub fn with_relu(self) -> Self {
        Add { relu: true }
    }
}

impl Op for Add {
    fn describe(&self) -> String {
        if self.relu { "add +relu" } else { "add" }.into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        same_shape("add", inputs)
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut [Tensor],
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (a, b) = (inputs[0].f32("add")?, inputs[1].f32("add")?);
        let y = &mut outputs[0];
        y.resize(a.shape);
        for ((o, &u), &v) in y.data_mut().iter_mut().zip(a.data).zip(b.data) {
            let s = u + v;
            *o = if self.relu { s.max(0.0) } else { s };
        }
        Ok(())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let (y, dy) = (io.outputs[0], io.d_outputs[0]);
        for dx in io.d_inputs.iter_mut().flatten() {
            dx.resize(dy.shape);
            for ((d, &g), &o) in dx.data_mut().iter_mut().zip(dy.data).zip(y.data) {
                *d = if self.relu && o <= 0.0 { 0.0 } else { g };
            }
        }
        Ok(())
    }
}

/// `y = a * b` elementwise.
#[derive(Default)]
pub struct Mul;

impl Mul {
    pub fn new() -> Self {
        Mul
    }
}

impl Op for Mul {
    fn describe(&self) -> String {
        "mul".into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        same_shape("mul", inputs)
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut [Tensor],
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (a, b) = (inputs[0].f32("mul")?, inputs[1].f32("mul")?);
        let y = &mut outputs[0];
        y.resize(a.shape);
        for ((o, &u), &v) in y.data_mut().iter_mut().zip(a.data).zip(b.data) {
            *o = u * v;
        }
        Ok(())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let dy = io.d_outputs[0];
        for (i, dx) in io.d_inputs.iter_mut().enumerate() {
            let Some(dx) = dx.as_deref_mut() else { continue };
            // d(a b)/da = b, and the other way round.
            let other = io.inputs[1 - i].f32("mul")?;
            dx.resize(dy.shape);
            for ((d, &g), &o) in dx.data_mut().iter_mut().zip(dy.data).zip(other.data) {
                *d = g * o;
            }
        }
        Ok(())
    }
}
