//! Operations that only reshape: their output is a view of their input's storage (no copy
//! in forward; backward copies the gradient under the input's shape).

use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::{LayerError, Tensor};

/// The gradient of a view: `dy` under the input's shape.
fn view_backward(layer: &str, io: Backward) -> Result<(), LayerError> {
    let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
    let dy = io.d_outputs[0];
    check_grad(layer, io.outputs[0].shape, dy.shape)?;
    dx.resize(io.inputs[0].shape());
    dx.data_mut().copy_from_slice(dy.data);
    Ok(())
}

/// Forward of a view op, run only when a caller bypasses the graph's sharing.
fn view_forward(inputs: &[ValueRef], outputs: &mut [Tensor], shape: &[usize]) -> Result<(), LayerError> {
    let x = inputs[0].f32("view")?;
    outputs[0].resize(shape);
    outputs[0].data_mut().copy_from_slice(x.data);
    Ok(())
}

/// `[n, d1, d2, ...] -> [n, d1 * d2 * ...]`.
#[derive(Default)]
pub struct Flatten;

impl Flatten {
    pub fn new() -> Self {
        Flatten
    }
}

fn flat(shape: &[usize]) -> Result<Vec<usize>, LayerError> {
    match shape {
        [n, rest @ ..] if !rest.is_empty() => Ok(vec![*n, rest.iter().product()]),
        _ => Err(LayerError::InputShape {
            layer: "flatten".into(),
            expected: "[batch, ...]".into(),
            got: shape.to_vec(),
        }),
    }
}

impl Op for Flatten {
    fn describe(&self) -> String {
        "flatten".into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32("flatten", inputs, 1)?;
        Ok(vec![ValueInfo::f32(&flat(&inputs[0].shape)?)])
    }
    fn view_of(&self) -> Option<usize> {
        Some(0)
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut [Tensor],
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        view_forward(inputs, outputs, &flat(inputs[0].shape())?)
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        view_backward("flatten", io)
    }
}

/// `x` under another shape with the same number of values; one axis may be given as 0 to
/// keep the input's batch axis (`[0, 16, 5, 5]`).
pub struct Reshape {
    shape: Vec<usize>,
}

impl Reshape {
    pub fn new(shape: &[usize]) -> Self {
        Reshape { shape: shape.to_vec() }
    }

    fn target(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        let shape: Vec<usize> = self
            .shape
            .iter()
            .enumerate()
            .map(|(i, &d)| if d == 0 && i == 0 { input.first().copied().unwrap_or(0) } else { d })
            .collect();
        if shape.iter().product::<usize>() != input.iter().product::<usize>() {
            return Err(LayerError::ShapeMismatch {
                what: "reshape (element counts differ)",
                a: input.to_vec(),
                b: shape,
            });
        }
        Ok(shape)
    }
}

impl Op for Reshape {
    fn describe(&self) -> String {
        format!("reshape {:?}", self.shape)
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32("reshape", inputs, 1)?;
        Ok(vec![ValueInfo::f32(&self.target(&inputs[0].shape)?)])
    }
    fn view_of(&self) -> Option<usize> {
        Some(0)
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut [Tensor],
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        view_forward(inputs, outputs, &self.target(inputs[0].shape())?)
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        view_backward("reshape", io)
    }
}

/// `y = x` (a view).
#[derive(Default)]
pub struct Identity;

impl Identity {
    pub fn new() -> Self {
        Identity
    }
}

impl Op for Identity {
    fn describe(&self) -> String {
        "identity".into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32("identity", inputs, 1)?;
        Ok(vec![ValueInfo::f32(&inputs[0].shape)])
    }
    fn view_of(&self) -> Option<usize> {
        Some(0)
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut [Tensor],
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        view_forward(inputs, outputs, inputs[0].shape())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        view_backward("identity", io)
    }
}
