//! Losses, each returning the mean loss over the batch and its gradient with respect to the
//! network's output.

use crate::{LayerError, Tensor};
use simdnn_kernels::{eltwise, Isa};

fn rows_cols(what: &'static str, shape: &[usize]) -> Result<(usize, usize), LayerError> {
    match *shape {
        [n, c] if c > 0 => Ok((n, c)),
        _ => {
            Err(LayerError::InputShape { layer: what.into(), expected: "[batch, classes]".into(), got: shape.to_vec() })
        }
    }
}

/// Softmax followed by the negative log-likelihood of the true class, fused: computed from
/// log-softmax (`x - max - log sum e^(x - max)`), so large logits neither overflow nor lose
/// the loss to rounding. Gradient: `(softmax(x) - onehot(label)) / n`.
#[derive(Default)]
pub struct SoftmaxCrossEntropy {
    log_probs: Tensor,
    grad: Tensor,
}

impl SoftmaxCrossEntropy {
    pub fn new() -> Self {
        SoftmaxCrossEntropy::default()
    }

    /// The mean loss of `logits: [n, classes]` against `labels` (`n` class indices), and the
    /// gradient (kept until the next call).
    pub fn forward_backward(
        &mut self,
        isa: Isa,
        logits: &Tensor,
        labels: &[usize],
    ) -> Result<(f32, &Tensor), LayerError> {
        let loss = self.forward(isa, logits, labels)?;
        let (n, c) = rows_cols("softmax cross-entropy", logits.shape())?;
        self.grad.resize(logits.shape());
        let scale = 1.0 / n as f32;
        eltwise::exp(isa, self.log_probs.data(), self.grad.data_mut())?;
        for (row, &label) in self.grad.data_mut().chunks_exact_mut(c).zip(labels) {
            row[label] -= 1.0;
            row.iter_mut().for_each(|v| *v *= scale);
        }
        Ok((loss, &self.grad))
    }

    /// The mean loss only.
    pub fn forward(&mut self, isa: Isa, logits: &Tensor, labels: &[usize]) -> Result<f32, LayerError> {
        let (n, c) = rows_cols("softmax cross-entropy", logits.shape())?;
        check_labels(n, c, labels)?;
        self.log_probs.resize(logits.shape());
        eltwise::log_softmax(isa, c, logits.data(), self.log_probs.data_mut())?;
        let sum: f64 = self.log_probs.data().chunks_exact(c).zip(labels).map(|(row, &l)| -row[l] as f64).sum();
        Ok((sum / n.max(1) as f64) as f32)
    }
}

fn check_labels(n: usize, classes: usize, labels: &[usize]) -> Result<(), LayerError> {
    if labels.len() != n {
        return Err(LayerError::LabelCount { what: "cross-entropy", expected: n, got: labels.len() });
    }
    match labels.iter().find(|&&l| l >= classes) {
        Some(&label) => Err(LayerError::LabelRange { what: "cross-entropy", label, classes }),
        None => Ok(()),
    }
}

fn same_shape(what: &'static str, a: &Tensor, b: &Tensor) -> Result<(), LayerError> {
    if a.shape() == b.shape() {
        Ok(())
    } else {
        Err(LayerError::ShapeMismatch { what, a: a.shape().to_vec(), b: b.shape().to_vec() })
    }
}

/// Mean squared error over all elements: `mean((y - t)^2)`, gradient `2 (y - t) / len`.
#[derive(Default)]
pub struct MeanSquaredError {
    grad: Tensor,
}

impl MeanSquaredError {
    pub fn new() -> Self {
        MeanSquaredError::default()
    }

    pub fn forward_backward(&mut self, y: &Tensor, target: &Tensor) -> Result<(f32, &Tensor), LayerError> {
        same_shape("prediction and target", y, target)?;
        self.grad.resize(y.shape());
        let scale = 1.0 / y.len().max(1) as f64;
        let mut sum = 0.0f64;
        for ((g, &a), &b) in self.grad.data_mut().iter_mut().zip(y.data()).zip(target.data()) {
            let d = a - b;
            sum += (d as f64) * (d as f64);
            *g = (2.0 * d as f64 * scale) as f32;
        }
        Ok(((sum * scale) as f32, &self.grad))
    }
}

/// Binary cross-entropy on logits `z` with targets `t` in [0, 1], mean over all elements:
/// `max(z, 0) - z t + log(1 + e^-|z|)`, the form that cannot overflow; gradient
/// `(sigmoid(z) - t) / len`.
#[derive(Default)]
pub struct BceWithLogits {
    grad: Tensor,
}

impl BceWithLogits {
    pub fn new() -> Self {
        BceWithLogits::default()
    }

    pub fn forward_backward(&mut self, isa: Isa, z: &Tensor, target: &Tensor) -> Result<(f32, &Tensor), LayerError> {
        same_shape("logits and target", z, target)?;
        self.grad.resize(z.shape());
        eltwise::sigmoid(isa, z.data(), self.grad.data_mut())?;
        let scale = 1.0 / z.len().max(1) as f64;
        let mut sum = 0.0f64;
        for ((g, &zv), &t) in self.grad.data_mut().iter_mut().zip(z.data()).zip(target.data()) {
            let (z, t) = (zv as f64, t as f64);
            sum += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
            *g = ((*g as f64 - t) * scale) as f32;
        }
        Ok(((sum * scale) as f32, &self.grad))
    }
}

/// The index of the largest value of each `classes`-long row (the predicted class).
pub fn argmax_rows(x: &Tensor) -> Result<Vec<usize>, LayerError> {
    let (_, c) = rows_cols("argmax", x.shape())?;
    Ok(x.data()
        .chunks_exact(c)
        .map(|row| row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best }))
        .collect())
}
