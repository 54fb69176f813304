//! Concatenation of values along an axis, and its inverse, splitting one.

use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::ValueRef;
use crate::LayerError;

/// `(outer, inner)` of a shape around `axis`: the products of the axes before and after it.
fn around(shape: &[usize], axis: usize) -> (usize, usize) {
    (shape[..axis].iter().product(), shape[axis + 1..].iter().product())
}

/// Copies `src` (blocks of `len` values, `outer` of them) into `dst`, whose blocks are
/// `stride` apart, from `offset` within each.
fn copy_blocks(src: &[f32], dst: &mut [f32], outer: usize, len: usize, stride: usize, offset: usize) {
    for o in 0..outer {
        dst[o * stride + offset..][..len].copy_from_slice(&src[o * len..][..len]);
    }
}

/// The inverse of [`copy_blocks`].
fn gather_blocks(src: &[f32], dst: &mut [f32], outer: usize, len: usize, stride: usize, offset: usize) {
    for o in 0..outer {
        dst[o * len..][..len].copy_from_slice(&src[o * stride + offset..][..len]);
    }
}

/// The inputs joined along `axis` (channels of NCHW: axis 1); every other axis agrees.
pub struct Concat {
    axis: usize,
}

impl Concat {
    pub fn new(axis: usize) -> Self {
        Concat { axis }
    }
}

impl Op for Concat {
    fn describe(&self) -> String {
        format!("concat axis {}", self.axis)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        if inputs.is_empty() {
            return Err(LayerError::InputCount { layer: self.describe(), expected: "at least 1".into(), got: 0 });
        }
        expect_f32(&self.describe(), inputs, inputs.len())?;
        let first = &inputs[0].shape;
        if self.axis >= first.len() {
            return Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("rank above {}", self.axis),
                got: first.clone(),
            });
        }
        let mut out = first.clone();
        out[self.axis] = 0;
        for i in inputs {
            let s = &i.shape;
            let agrees =
                s.len() == first.len() && s.iter().zip(first).enumerate().all(|(k, (a, b))| k == self.axis || a == b);
            if !agrees {
                return Err(LayerError::ShapeMismatch {
                    what: "concatenated inputs (beyond the axis)",
                    a: first.clone(),
                    b: s.clone(),
                });
            }
            out[self.axis] += s[self.axis];
        }
        Ok(vec![ValueInfo::f32(&out)])
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let first = inputs[0].shape();
        let total: usize = inputs.iter().map(|i| i.shape()[self.axis]).sum();
        let (outer, inner) = around(first, self.axis);
        let y = &mut outputs[0];
        y.resize(first);
        y.resize_axis(self.axis, total);
        let stride = total * inner;
        let mut offset = 0;
        for x in inputs {
            let x = x.f32("concat")?;
            let len = x.shape[self.axis] * inner;
            copy_blocks(x.data, y.data_mut(), outer, len, stride, offset);
            offset += len;
        }
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let dy = io.d_outputs[0];
        let (outer, inner) = around(dy.shape, self.axis);
        let stride = dy.shape[self.axis] * inner;
        let mut offset = 0;
        for (x, dx) in io.inputs.iter().zip(io.d_inputs.iter_mut()) {
            let len = x.shape()[self.axis] * inner;
            if let Some(dx) = dx.as_deref_mut() {
                dx.resize(x.shape());
                gather_blocks(dy.data, dx.data_mut(), outer, len, stride, offset);
            }
            offset += len;
        }
        Ok(())
    }
}

/// One value cut along `axis` into parts of the given sizes (outputs `name`, `name:1`, ...).
pub struct Split {
    axis: usize,
    sizes: Vec<usize>,
}

impl Split {
    pub fn new(axis: usize, sizes: &[usize]) -> Self {
        Split { axis, sizes: sizes.to_vec() }
    }
}

impl Op for Split {
    fn describe(&self) -> String {
        format!("split axis {} into {:?}", self.axis, self.sizes)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(&self.describe(), inputs, 1)?;
        let s = &inputs[0].shape;
        if self.axis >= s.len() || s[self.axis] != self.sizes.iter().sum::<usize>() || self.sizes.is_empty() {
            return Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("axis {} of {} values", self.axis, self.sizes.iter().sum::<usize>()),
                got: s.clone(),
            });
        }
        Ok(self
            .sizes
            .iter()
            .map(|&k| {
                let mut part = s.clone();
                part[self.axis] = k;
                ValueInfo::f32(&part)
            })
            .collect())
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = inputs[0].f32("split")?;
        let (outer, inner) = around(x.shape, self.axis);
        let stride = x.shape[self.axis] * inner;
        let mut offset = 0;
        for (y, &k) in outputs.iter_mut().zip(&self.sizes) {
            y.resize(x.shape);
            y.resize_axis(self.axis, k);
            gather_blocks(x.data, y.data_mut(), outer, k * inner, stride, offset);
            offset += k * inner;
        }
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let shape = io.inputs[0].shape();
        let (outer, inner) = around(shape, self.axis);
        let stride = shape[self.axis] * inner;
        dx.resize(shape);
        let mut offset = 0;
        for (dy, &k) in io.d_outputs.iter().zip(&self.sizes) {
            copy_blocks(dy.data, dx.data_mut(), outer, k * inner, stride, offset);
            offset += k * inner;
        }
        Ok(())
    }
}
