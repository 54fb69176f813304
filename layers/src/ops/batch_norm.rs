//! Batch normalisation (Ioffe & Szegedy, 2015) over the channel axis of `[n, c]` (1-D) or
//! `[n, c, h, w]` (2-D) inputs, with running statistics for inference.

use super::one_f32;
use crate::op::{same_as_input, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::{BufferId, Fill, ParamId, ParamScope, Params};
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

/// `y = gamma (x - mean) / sqrt(var + eps) + beta` per channel; training uses the batch's
/// statistics and updates the running ones (PyTorch's `momentum` rule), inference the
/// running ones.
pub struct BatchNorm {
    channels: usize,
    eps: f32,
    momentum: f32,
    gamma: ParamId,
    beta: ParamId,
    running_mean: BufferId,
    running_var: BufferId,
}

impl BatchNorm {
    /// `name.weight = 1`, `name.bias = 0`, buffers `name.running_mean = 0` and
    /// `name.running_var = 1`; PyTorch's defaults `eps = 1e-5`, `momentum = 0.1`.
    pub fn new(p: &mut ParamScope, channels: usize) -> Result<BatchNorm, LayerError> {
        if channels == 0 {
            return Err(simdnn_kernels::KernelError::ZeroSize { what: "batch-norm channels" }.into());
        }
        Ok(BatchNorm {
            channels,
            eps: 1e-5,
            momentum: 0.1,
            gamma: p.param("weight", &[channels], Fill::Constant(1.0), false)?,
            beta: p.param("bias", &[channels], Fill::Zeros, false)?,
            running_mean: p.buffer("running_mean", &[channels], Fill::Zeros)?,
            running_var: p.buffer("running_var", &[channels], Fill::Constant(1.0))?,
        })
    }

    pub fn with_eps(self, eps: f32) -> Self {
        BatchNorm { eps, ..self }
    }

    /// `(gamma, beta, running_mean, running_var, eps)`, e.g. to fold into a convolution.
    pub fn statistics(&self, params: &Params) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, f32) {
        (
            params.value(self.gamma).data().to_vec(),
            params.value(self.beta).data().to_vec(),
            params.buffer(self.running_mean).data().to_vec(),
            params.buffer(self.running_var).data().to_vec(),
            self.eps,
        )
    }

    /// `(batch, plane)` of an input, or an error.
    fn layout(&self, shape: &[usize]) -> Result<(usize, usize), LayerError> {
        super::channels::per_channel(|| self.describe(), self.channels, shape)
    }
}

/// The values of channel `c`, image by image.
fn planes(data: &[f32], channels: usize, plane: usize, c: usize) -> impl Iterator<Item = &[f32]> {
    data.chunks_exact(channels * plane).map(move |img| &img[c * plane..][..plane])
}

impl Op for BatchNorm {
    fn describe(&self) -> String {
        format!("batchnorm {}", self.channels)
    }

    fn params(&self) -> Vec<ParamId> {
        vec![self.gamma, self.beta]
    }

    fn buffers(&self) -> Vec<BufferId> {
        vec![self.running_mean, self.running_var]
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        let out = same_as_input(&self.describe(), inputs)?;
        self.layout(&inputs[0].shape)?;
        Ok(out)
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32("batchnorm", inputs)?;
        let (n, plane) = self.layout(x.shape)?;
        let (c_all, count) = (self.channels, n * plane);
        // Saved for backward: the normalised input (0), 1 / sqrt(var + eps) (1); the mean (2).
        state.tensor(2).resize(&[c_all]);
        let [x_hat, inv_std, means] = state.tensors.get_disjoint_mut([0, 1, 2]).expect("three tensors");
        x_hat.resize(x.shape);
        inv_std.resize(&[c_all]);
        if cx.is_train() {
            let (mut rm, mut rv) = (cx.params.buffer_mut(self.running_mean), cx.params.buffer_mut(self.running_var));
            for c in 0..c_all {
                // Two passes in f64: the mean, then the centred sum of squares.
                let sum: f64 = planes(x.data, c_all, plane, c).flatten().map(|&v| v as f64).sum();
                let mean = sum / count as f64;
                let sq: f64 = planes(x.data, c_all, plane, c).flatten().map(|&v| (v as f64 - mean).powi(2)).sum();
                let var = sq / count as f64;
                let (m, unbiased) = (self.momentum, if count > 1 { sq / (count - 1) as f64 } else { var });
                rm.data_mut()[c] = (1.0 - m) * rm.data()[c] + m * mean as f32;
                rv.data_mut()[c] = (1.0 - m) * rv.data()[c] + m * unbiased as f32;
                means.data_mut()[c] = mean as f32;
                inv_std.data_mut()[c] = 1.0 / (var as f32 + self.eps).sqrt();
            }
        } else {
            let (rm, rv) = (cx.params.buffer(self.running_mean), cx.params.buffer(self.running_var));
            means.data_mut().copy_from_slice(rm.data());
            for (s, &v) in inv_std.data_mut().iter_mut().zip(rv.data()) {
                *s = 1.0 / (v + self.eps).sqrt();
            }
        }
        let y = &mut outputs[0];
        y.resize(x.shape);
        let (gamma, beta) = (cx.param(self.gamma).data(), cx.param(self.beta).data());
        for c in 0..c_all {
            let (mean, istd, g, b) = (means.data()[c], inv_std.data()[c], gamma[c], beta[c]);
            for img in 0..n {
                let at = (img * c_all + c) * plane;
                let hat = &mut x_hat.data_mut()[at..at + plane];
                for (h, &v) in hat.iter_mut().zip(&x.data[at..at + plane]) {
                    *h = (v - mean) * istd;
                }
                for (o, &h) in y.data_mut()[at..at + plane].iter_mut().zip(&x_hat.data()[at..at + plane]) {
                    *o = g * h + b;
                }
            }
        }
        Ok(())
    }

    /// In training mode the batch statistics depend on every input, which the gradient
    /// accounts for: `dx = gamma inv_std / M (M dy - sum dy - x_hat sum(dy x_hat))`.
    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let x = one_f32("batchnorm", io.inputs)?;
        let dy = io.d_outputs[0];
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        let (n, plane) = self.layout(x.shape)?;
        let (c_all, m) = (self.channels, (n * plane) as f64);
        // Per channel: sum(dy) (3) and sum(dy x_hat) (4).
        io.state.tensor(4).resize(&[c_all]);
        let [x_hat, inv_std, _, sum_dy, sum_dy_hat] = io.state.tensors.get_disjoint_mut([0, 1, 2, 3, 4]).expect("five");
        sum_dy.resize(&[c_all]);
        for c in 0..c_all {
            let (mut s, mut sh) = (0.0f64, 0.0f64);
            for img in 0..n {
                let at = (img * c_all + c) * plane;
                for (&g, &h) in dy.data[at..at + plane].iter().zip(&x_hat.data()[at..at + plane]) {
                    s += g as f64;
                    sh += (g * h) as f64;
                }
            }
            sum_dy.data_mut()[c] = s as f32;
            sum_dy_hat.data_mut()[c] = sh as f32;
        }
        if let Some(dg) = io.grads.get_mut(self.gamma) {
            dg.data_mut().iter_mut().zip(sum_dy_hat.data()).for_each(|(d, s)| *d += s);
        }
        if let Some(db) = io.grads.get_mut(self.beta) {
            db.data_mut().iter_mut().zip(sum_dy.data()).for_each(|(d, s)| *d += s);
        }
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        dx.resize(x.shape);
        for c in 0..c_all {
            let scale = cx.param(self.gamma).data()[c] * inv_std.data()[c];
            let mean_dy = (sum_dy.data()[c] as f64 / m) as f32;
            let mean_dy_hat = (sum_dy_hat.data()[c] as f64 / m) as f32;
            for img in 0..n {
                let at = (img * c_all + c) * plane;
                let (dys, hats) = (&dy.data[at..at + plane], &x_hat.data()[at..at + plane]);
                for ((d, &g), &h) in dx.data_mut()[at..at + plane].iter_mut().zip(dys).zip(hats) {
                    *d = if cx.is_train() { scale * (g - mean_dy - h * mean_dy_hat) } else { scale * g };
                }
            }
        }
        Ok(())
    }
}
