//! Fully connected layer on the packed SGEMM: `y = relu?(x W^T + b)`.

use crate::activation::through_fused_relu;
use crate::init::{Init, Rng};
use crate::layer::{visit_weight_bias, Ctx, Layer, Param};
use crate::tensor::check_grad;
use crate::{LayerError, Tensor};
use simdnn_kernels::gemm::{sgemm, Epilogue, MatMut, MatRef};
use std::any::Any;

/// `[n, in] -> [n, out]`, weight `[out, in]` (PyTorch's layout), bias `[out]`.
pub struct Linear {
    in_features: usize,
    out_features: usize,
    relu: bool,
    weight: Param,
    bias: Option<Param>,
    skip_dx: bool,
    y: Tensor,
    dx: Tensor,
    dy_masked: Tensor,
}

impl Linear {
    /// Weights drawn by `init`, zero bias.
    pub fn new(in_features: usize, out_features: usize, init: Init, rng: &mut Rng) -> Result<Linear, LayerError> {
        if in_features == 0 || out_features == 0 {
            return Err(simdnn_kernels::KernelError::ZeroSize { what: "linear layer features" }.into());
        }
        let mut w = Tensor::zeros(&[out_features, in_features]);
        init.fill(in_features, out_features, w.data_mut(), rng);
        Ok(Linear {
            in_features,
            out_features,
            relu: false,
            weight: Param::new(w, true),
            bias: Some(Param::new(Tensor::zeros(&[out_features]), false)),
            skip_dx: false,
            y: Tensor::default(),
            dx: Tensor::default(),
            dy_masked: Tensor::default(),
        })
    }

    /// Applies ReLU in the GEMM's epilogue.
    pub fn with_relu(self) -> Self {
        Linear { relu: true, ..self }
    }

    pub fn without_bias(self) -> Self {
        Linear { bias: None, ..self }
    }

    fn rows(&self, shape: &[usize]) -> Result<usize, LayerError> {
        match *shape {
            [n, f] if f == self.in_features => Ok(n),
            _ => Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("[batch, {}] (a Flatten layer turns images into rows)", self.in_features),
                got: shape.to_vec(),
            }),
        }
    }
}

impl Layer for Linear {
    fn describe(&self) -> String {
        format!("linear {}->{}{}", self.in_features, self.out_features, if self.relu { " +relu" } else { "" })
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        Ok(vec![self.rows(input)?, self.out_features])
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let (n, i, o) = (self.rows(x.shape())?, self.in_features, self.out_features);
        self.y.resize(&[n, o]);
        let w = MatRef::new(self.weight.value.data(), o, i, i)?.t();
        let mut epi = self.bias.as_ref().map_or(Epilogue::NONE, |b| Epilogue::bias_per_col(b.value.data()));
        epi.relu = self.relu;
        sgemm(&ctx.cfg, 1.0, MatRef::new(x.data(), n, i, i)?, w, 0.0, MatMut::new(self.y.data_mut(), n, o, o)?, epi)?;
        Ok(&self.y)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn backward(&mut self, ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        let (n, i, o) = (self.rows(x.shape())?, self.in_features, self.out_features);
        let dy = through_fused_relu(ctx, self.relu, &self.y, dy, &mut self.dy_masked)?;
        let dy_m = MatRef::new(dy.data(), n, o, o)?;
        // dW += dy^T x
        let dw = MatMut::new(self.weight.grad.data_mut(), o, i, i)?;
        sgemm(&ctx.cfg, 1.0, dy_m.t(), MatRef::new(x.data(), n, i, i)?, 1.0, dw, Epilogue::NONE)?;
        if let Some(b) = &mut self.bias {
            for row in dy.data().chunks_exact(o) {
                b.grad.data_mut().iter_mut().zip(row).for_each(|(d, g)| *d += g);
            }
        }
        if self.skip_dx {
            self.dx.resize(&[0]);
        } else {
            // dx = dy W
            self.dx.resize(x.shape());
            let w = MatRef::new(self.weight.value.data(), o, i, i)?;
            sgemm(&ctx.cfg, 1.0, dy_m, w, 0.0, MatMut::new(self.dx.data_mut(), n, i, i)?, Epilogue::NONE)?;
        }
        Ok(&self.dx)
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_weight_bias(prefix, &mut self.weight, self.bias.as_mut(), f);
    }

    fn skip_input_grad(&mut self) {
        self.skip_dx = true;
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
