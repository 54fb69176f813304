//! Operations that only reshape: their output is a view of their input's storage (no copy
//! in forward; backward copies the gradient under the input's shape).

use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

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
fn view_forward(inputs: &[ValueRef], outputs: &mut Outputs, shape: &[usize]) -> Result<(), LayerError> {
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
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        view_forward(inputs, outputs, &flat(inputs[0].shape())?)
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        view_backward("flatten", io)
    }
}

/// `x` under another shape with the same number of values; one axis may be given as 0 to
/// keep the input's batch axis (`[0, 16, 5, 5]`), and with [`Reshape::inferred`] one as -1,
/// sized to hold the rest (`[0, -1]` flattens).
pub struct Reshape {
    shape: Vec<isize>,
}

impl Reshape {
    /// The target shape; 0 as the first size keeps the input's batch axis.
    pub fn new(shape: &[usize]) -> Self {
        Reshape { shape: shape.iter().map(|&d| d as isize).collect() }
    }

    /// As [`Reshape::new`], with one size at most given as -1: the size that makes the
    /// element counts agree (an error when none does). Other negative sizes are errors when
    /// the graph is built.
    pub fn inferred(shape: &[isize]) -> Self {
        Reshape { shape: shape.to_vec() }
    }

    fn target(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        let mut unknown = None;
        let mut shape = Vec::with_capacity(self.shape.len());
        for (i, &d) in self.shape.iter().enumerate() {
            shape.push(match d {
                0 if i == 0 => input.first().copied().unwrap_or(0),
                -1 if unknown.is_none() => {
                    unknown = Some(i);
                    1
                }
                d if d >= 0 => d as usize,
                d => {
                    return Err(LayerError::BadHyperParameter {
                        what: "a reshape size",
                        expected: "a size, 0 (first: the batch) or -1 (once: inferred)",
                        got: d as f64,
                    })
                }
            });
        }
        let total = input.iter().product::<usize>();
        if let Some(u) = unknown {
            let known = shape.iter().product::<usize>();
            if known > 0 && total % known == 0 {
                shape[u] = total / known;
            }
        }
        if shape.iter().product::<usize>() != total || (unknown.is_some() && shape.contains(&0)) {
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
        outputs: &mut Outputs,
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
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        view_forward(inputs, outputs, inputs[0].shape())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        view_backward("identity", io)
    }
}
