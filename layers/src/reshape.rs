//! Layers that only move values: Flatten and Identity.

use crate::layer::{Ctx, Layer};
use crate::tensor::check_grad;
use crate::{LayerError, Tensor};
use std::any::Any;

/// `[n, d1, d2, ...] -> [n, d1 * d2 * ...]`.
#[derive(Default)]
pub struct Flatten {
    y: Tensor,
    dx: Tensor,
}

/// `y = x`: a branch that passes its input through (DenseNet's concatenation, shortcuts).
#[derive(Default)]
pub struct Identity {
    y: Tensor,
    dx: Tensor,
}

impl Flatten {
    pub fn new() -> Self {
        Flatten::default()
    }
}

impl Identity {
    pub fn new() -> Self {
        Identity::default()
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

impl Layer for Flatten {
    fn describe(&self) -> String {
        "flatten".into()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        flat(input)
    }
    fn forward(&mut self, _ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        self.y.resize(&flat(x.shape())?);
        self.y.data_mut().copy_from_slice(x.data());
        Ok(&self.y)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn backward(&mut self, _ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad("flatten", &self.y, dy)?;
        self.dx.resize(x.shape());
        self.dx.data_mut().copy_from_slice(dy.data());
        Ok(&self.dx)
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Layer for Identity {
    fn describe(&self) -> String {
        "identity".into()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, _ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        self.y.assign(x);
        Ok(&self.y)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn backward(&mut self, _ctx: &Ctx, _x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad("identity", &self.y, dy)?;
        self.dx.assign(dy);
        Ok(&self.dx)
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
