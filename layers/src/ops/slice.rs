//! A range of positions along one axis (`x[:, 2:10:2]`), copied out; its gradient goes back
//! into those positions, zero elsewhere.

use super::broadcast::with_dims;
use super::gather::{around, gather_rows, scatter_add_rows};
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

/// Positions `start, start + step, ...` below `end` of axis `axis` (Python's
/// `start:end:step`, with `start <= end <= size` checked when the graph is built).
pub struct Slice {
    axis: usize,
    start: usize,
    end: usize,
    step: usize,
}

impl Slice {
    /// Positions `start..end` of `axis`.
    pub fn new(axis: usize, start: usize, end: usize) -> Self {
        Slice { axis, start, end, step: 1 }
    }

    /// Every `step`-th position of the range, from its start (a step of 0 is an error when the
    /// graph is built).
    pub fn step(self, step: usize) -> Self {
        Slice { step, ..self }
    }

    /// The number of positions taken.
    fn len(&self) -> usize {
        (self.end - self.start).div_ceil(self.step)
    }

    fn positions(&self) -> impl Iterator<Item = usize> + Clone {
        (self.start..self.end).step_by(self.step)
    }

    /// An error unless the range fits axis `axis` of `shape`.
    fn check(&self, shape: &[usize]) -> Result<(), LayerError> {
        if self.step == 0 {
            return Err(LayerError::BadHyperParameter { what: "a slice's step", expected: "at least 1", got: 0.0 });
        }
        match shape.get(self.axis) {
            Some(&n) if self.start <= self.end && self.end <= n => Ok(()),
            _ => Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!(
                    "an axis {} of at least {} positions (and a start no later than the end)",
                    self.axis, self.end
                ),
                got: shape.to_vec(),
            }),
        }
    }
}

impl Op for Slice {
    fn describe(&self) -> String {
        let step = if self.step == 1 { String::new() } else { format!(":{}", self.step) };
        format!("slice axis {} {}:{}{step}", self.axis, self.start, self.end)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(&self.describe(), inputs, 1)?;
        self.check(&inputs[0].shape)?;
        let mut shape = inputs[0].shape.clone();
        shape[self.axis] = self.len();
        Ok(vec![ValueInfo::f32(&shape)])
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = super::one_f32(|| self.describe(), inputs)?;
        self.check(x.shape)?;
        let y = &mut outputs[0];
        with_dims(x.shape.len(), |d| if d == self.axis { self.len() } else { x.shape[d] }, |s| y.resize(s));
        gather_rows(x.data, y.data_mut(), around(x.shape, self.axis), self.positions());
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (x, dy) = (io.inputs[0].f32(|| self.describe())?, io.d_outputs[0]);
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        self.check(x.shape)?;
        dx.resize(x.shape);
        dx.data_mut().fill(0.0);
        scatter_add_rows(dy.data, dx.data_mut(), around(x.shape, self.axis), self.positions());
        Ok(())
    }
}
