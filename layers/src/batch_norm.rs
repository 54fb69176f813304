//! Batch normalisation (Ioffe & Szegedy, 2015) over the channel axis of `[n, c]` (1-D) or
//! `[n, c, h, w]` (2-D) inputs, with running statistics for inference.

use crate::layer::{join_name, Ctx, Layer, Param};
use crate::tensor::check_grad;
use crate::{LayerError, Tensor};
use std::any::Any;

pub struct BatchNorm {
    channels: usize,
    eps: f32,
    momentum: f32,
    gamma: Param,
    beta: Param,
    running_mean: Tensor,
    running_var: Tensor,
    /// From the last forward pass: the normalised input and `1 / sqrt(var + eps)` per channel.
    x_hat: Tensor,
    inv_std: Vec<f32>,
    y: Tensor,
    dx: Tensor,
}

impl BatchNorm {
    /// `gamma = 1`, `beta = 0`, running mean 0 and variance 1; PyTorch's defaults
    /// `eps = 1e-5`, `momentum = 0.1` (running = (1 - momentum) running + momentum batch).
    pub fn new(channels: usize) -> Result<BatchNorm, LayerError> {
        if channels == 0 {
            return Err(simdnn_kernels::KernelError::ZeroSize { what: "batch-norm channels" }.into());
        }
        let ones = Tensor::from_slice(&[channels], &vec![1.0; channels])?;
        Ok(BatchNorm {
            channels,
            eps: 1e-5,
            momentum: 0.1,
            gamma: Param::new(ones.clone(), false),
            beta: Param::new(Tensor::zeros(&[channels]), false),
            running_mean: Tensor::zeros(&[channels]),
            running_var: ones,
            x_hat: Tensor::default(),
            inv_std: vec![0.0; channels],
            y: Tensor::default(),
            dx: Tensor::default(),
        })
    }

    /// `(gamma, beta, running_mean, running_var, eps)`, e.g. to fold into a convolution.
    pub fn statistics(&self) -> (&[f32], &[f32], &[f32], &[f32], f32) {
        (self.gamma.value.data(), self.beta.value.data(), self.running_mean.data(), self.running_var.data(), self.eps)
    }

    /// `(batch, plane)` of an input, or an error.
    fn layout(&self, shape: &[usize]) -> Result<(usize, usize), LayerError> {
        match *shape {
            [n, c] if c == self.channels => Ok((n, 1)),
            [n, c, h, w] if c == self.channels => Ok((n, h * w)),
            _ => Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("[batch, {0}] or [batch, {0}, height, width]", self.channels),
                got: shape.to_vec(),
            }),
        }
    }

    /// Visits the values of channel `c`: `f(image_index, plane slice)`.
    fn planes(data: &[f32], channels: usize, plane: usize, c: usize) -> impl Iterator<Item = &[f32]> {
        data.chunks_exact(channels * plane).map(move |img| &img[c * plane..][..plane])
    }
}

impl Layer for BatchNorm {
    fn describe(&self) -> String {
        format!("batchnorm {}", self.channels)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        self.layout(input)?;
        Ok(input.to_vec())
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let (n, plane) = self.layout(x.shape())?;
        let (c_all, count) = (self.channels, n * plane);
        self.y.resize(x.shape());
        self.x_hat.resize(x.shape());
        for c in 0..c_all {
            let (mean, inv_std) = if ctx.is_train() {
                // Two passes in f64: the mean, then the centred sum of squares.
                let sum: f64 = Self::planes(x.data(), c_all, plane, c).flatten().map(|&v| v as f64).sum();
                let mean = sum / count as f64;
                let sq: f64 =
                    Self::planes(x.data(), c_all, plane, c).flatten().map(|&v| (v as f64 - mean).powi(2)).sum();
                let var = sq / count as f64;
                let m = self.momentum;
                let unbiased = if count > 1 { sq / (count - 1) as f64 } else { var };
                let rm = &mut self.running_mean.data_mut()[c];
                *rm = (1.0 - m) * *rm + m * mean as f32;
                let rv = &mut self.running_var.data_mut()[c];
                *rv = (1.0 - m) * *rv + m * unbiased as f32;
                (mean as f32, 1.0 / (var as f32 + self.eps).sqrt())
            } else {
                (self.running_mean.data()[c], 1.0 / (self.running_var.data()[c] + self.eps).sqrt())
            };
            self.inv_std[c] = inv_std;
            let (g, b) = (self.gamma.value.data()[c], self.beta.value.data()[c]);
            for img in 0..n {
                let at = (img * c_all + c) * plane;
                let xs = &x.data()[at..at + plane];
                let hat = &mut self.x_hat.data_mut()[at..at + plane];
                for (h, &v) in hat.iter_mut().zip(xs) {
                    *h = (v - mean) * inv_std;
                }
                let hat = &self.x_hat.data()[at..at + plane];
                for (y, &h) in self.y.data_mut()[at..at + plane].iter_mut().zip(hat) {
                    *y = g * h + b;
                }
            }
        }
        Ok(&self.y)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    /// In training mode the batch statistics depend on every input, which the gradient
    /// accounts for: `dx = gamma inv_std / M (M dy - sum dy - x_hat sum(dy x_hat))`; in
    /// evaluation mode the statistics are constants and `dx = gamma inv_std dy`.
    fn backward(&mut self, ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        let (n, plane) = self.layout(x.shape())?;
        let (c_all, m) = (self.channels, (n * plane) as f32);
        self.dx.resize(x.shape());
        for c in 0..c_all {
            let (mut sum_dy, mut sum_dy_hat) = (0.0f64, 0.0f64);
            for img in 0..n {
                let at = (img * c_all + c) * plane;
                for (&g, &h) in dy.data()[at..at + plane].iter().zip(&self.x_hat.data()[at..at + plane]) {
                    sum_dy += g as f64;
                    sum_dy_hat += (g * h) as f64;
                }
            }
            self.gamma.grad.data_mut()[c] += sum_dy_hat as f32;
            self.beta.grad.data_mut()[c] += sum_dy as f32;
            let scale = self.gamma.value.data()[c] * self.inv_std[c];
            let (mean_dy, mean_dy_hat) = ((sum_dy / m as f64) as f32, (sum_dy_hat / m as f64) as f32);
            for img in 0..n {
                let at = (img * c_all + c) * plane;
                let (dys, hats) = (&dy.data()[at..at + plane], &self.x_hat.data()[at..at + plane]);
                for ((d, &g), &h) in self.dx.data_mut()[at..at + plane].iter_mut().zip(dys).zip(hats) {
                    *d = if ctx.is_train() { scale * (g - mean_dy - h * mean_dy_hat) } else { scale * g };
                }
            }
        }
        Ok(&self.dx)
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&join_name(prefix, "weight"), &mut self.gamma);
        f(&join_name(prefix, "bias"), &mut self.beta);
    }

    fn visit_buffers(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Tensor)) {
        f(&join_name(prefix, "running_mean"), &mut self.running_mean);
        f(&join_name(prefix, "running_var"), &mut self.running_var);
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
