//! Inverted dropout (Srivastava et al., 2014): in training each value is zeroed with
//! probability `p` and the survivors scaled by `1 / (1 - p)`, so inference is the identity.

use crate::init::{rng, uniform, Rng};
use crate::layer::{Ctx, Layer};
use crate::tensor::check_grad;
use crate::{LayerError, Tensor};
use std::any::Any;

pub struct Dropout {
    p: f32,
    rng: Rng,
    /// `0` or `1 / (1 - p)` per element, from the last training forward pass.
    mask: Tensor,
    y: Tensor,
    dx: Tensor,
}

impl Dropout {
    /// Rate `p` in `[0, 1)`; the masks are drawn from a generator seeded with `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Dropout, LayerError> {
        if !(0.0..1.0).contains(&p) {
            return Err(LayerError::BadHyperParameter { what: "dropout rate", expected: "in [0, 1)", got: p as f64 });
        }
        Ok(Dropout { p, rng: rng(seed), mask: Tensor::default(), y: Tensor::default(), dx: Tensor::default() })
    }
}

impl Layer for Dropout {
    fn describe(&self) -> String {
        format!("dropout {}", self.p)
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        self.y.resize(x.shape());
        self.mask.resize(x.shape());
        let active = ctx.is_train() && self.p > 0.0;
        let keep = if active { 1.0 / (1.0 - self.p) } else { 1.0 };
        for m in self.mask.data_mut() {
            *m = if active && uniform(&mut self.rng) < self.p { 0.0 } else { keep };
        }
        for ((y, &v), &m) in self.y.data_mut().iter_mut().zip(x.data()).zip(self.mask.data()) {
            *y = v * m;
        }
        Ok(&self.y)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn backward(&mut self, _ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        self.dx.resize(x.shape());
        for ((d, &g), &m) in self.dx.data_mut().iter_mut().zip(dy.data()).zip(self.mask.data()) {
            *d = g * m;
        }
        Ok(&self.dx)
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
