//! Losses as graph nodes: each reads a prediction and a target and outputs the mean loss
//! over the batch (a scalar, shape `[]`), the value a training pass differentiates.

use crate::op::{expect_inputs, Backward, Op, OpCtx, OpState, ValueInfo};
use crate::param::Params;
use crate::tensor::{DType, TensorRef, ValueRef};
use crate::{LayerError, Tensor};
use simdnn_kernels::eltwise;

fn rows_cols(what: &str, shape: &[usize]) -> Result<(usize, usize), LayerError> {
    match *shape {
        [n, c] if c > 0 => Ok((n, c)),
        _ => {
            Err(LayerError::InputShape { layer: what.into(), expected: "[batch, classes]".into(), got: shape.to_vec() })
        }
    }
}

fn same_f32_shapes(what: &str, inputs: &[ValueInfo]) -> Result<Vec<ValueInfo>, LayerError> {
    crate::op::expect_f32(what, inputs, 2)?;
    if inputs[0].shape != inputs[1].shape {
        return Err(LayerError::ShapeMismatch {
            what: "prediction and target",
            a: inputs[0].shape.clone(),
            b: inputs[1].shape.clone(),
        });
    }
    Ok(vec![ValueInfo::f32(&[])])
}

/// Softmax followed by the negative log-likelihood of the true class, fused: computed from
/// log-softmax (`x - max - log sum e^(x - max)`), so large logits neither overflow nor lose
/// the loss to rounding. Inputs: logits `[n, classes]` and integer labels `[n]`. Gradient:
/// `(softmax(x) - onehot(label)) / n`.
#[derive(Default)]
pub struct SoftmaxCrossEntropy;

impl SoftmaxCrossEntropy {
    pub fn new() -> Self {
        SoftmaxCrossEntropy
    }
}

impl Op for SoftmaxCrossEntropy {
    fn describe(&self) -> String {
        "softmax cross-entropy".into()
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_inputs("softmax cross-entropy", 2, inputs.len())?;
        let (n, _) = rows_cols("softmax cross-entropy", &inputs[0].shape)?;
        if inputs[0].dtype != DType::F32 || inputs[1].dtype != DType::I64 || inputs[1].shape != [n] {
            return Err(LayerError::InputShape {
                layer: "softmax cross-entropy".into(),
                expected: format!("f32 logits [{n}, classes] and integer labels [{n}]"),
                got: inputs[1].shape.clone(),
            });
        }
        Ok(vec![ValueInfo::f32(&[])])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut [Tensor],
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let (logits, labels) = (inputs[0].f32("softmax cross-entropy")?, inputs[1].int("softmax cross-entropy")?);
        let (n, c) = rows_cols("softmax cross-entropy", logits.shape)?;
        if labels.len() != n {
            return Err(LayerError::LabelCount { what: "cross-entropy", expected: n, got: labels.len() });
        }
        if let Some(&label) = labels.data().iter().find(|&&l| l < 0 || l as usize >= c) {
            return Err(LayerError::LabelRange { what: "cross-entropy", label, classes: c });
        }
        // Saved for backward: log-softmax of the logits.
        let log_probs = state.tensor(0);
        log_probs.resize(logits.shape);
        eltwise::log_softmax(cx.isa(), c, logits.data, log_probs.data_mut())?;
        let sum: f64 =
            log_probs.data().chunks_exact(c).zip(labels.data()).map(|(row, &l)| -row[l as usize] as f64).sum();
        outputs[0].resize(&[]);
        outputs[0].data_mut()[0] = (sum / n.max(1) as f64) as f32;
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (logits, labels) = (io.inputs[0].f32("softmax cross-entropy")?, io.inputs[1].int("softmax cross-entropy")?);
        let (n, c) = rows_cols("softmax cross-entropy", logits.shape)?;
        let scale = io.d_outputs[0].data.first().copied().unwrap_or(1.0) / n.max(1) as f32;
        dx.resize(logits.shape);
        eltwise::exp(cx.isa(), io.state.tensor(0).data(), dx.data_mut())?;
        for (row, &label) in dx.data_mut().chunks_exact_mut(c).zip(labels.data()) {
            row[label as usize] -= 1.0;
            row.iter_mut().for_each(|v| *v *= scale);
        }
        Ok(())
    }
}

/// Mean squared error over all elements: `mean((y - t)^2)`; inputs: prediction and target
/// of one shape.
#[derive(Default)]
pub struct MeanSquaredError;

impl MeanSquaredError {
    pub fn new() -> Self {
        MeanSquaredError
    }
}

impl Op for MeanSquaredError {
    fn describe(&self) -> String {
        "mean squared error".into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        same_f32_shapes("mean squared error", inputs)
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut [Tensor],
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (y, t) = (inputs[0].f32("mse")?, inputs[1].f32("mse")?);
        let sum: f64 = y.data.iter().zip(t.data).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
        outputs[0].resize(&[]);
        outputs[0].data_mut()[0] = (sum / y.len().max(1) as f64) as f32;
        Ok(())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let (y, t) = (io.inputs[0].f32("mse")?, io.inputs[1].f32("mse")?);
        let scale = 2.0 * io.d_outputs[0].data.first().copied().unwrap_or(1.0) as f64 / y.len().max(1) as f64;
        for (k, dx) in io.d_inputs.iter_mut().enumerate() {
            let Some(dx) = dx.as_deref_mut() else { continue };
            let sign = if k == 0 { 1.0 } else { -1.0 };
            dx.resize(y.shape);
            for ((d, &a), &b) in dx.data_mut().iter_mut().zip(y.data).zip(t.data) {
                *d = (sign * scale * (a - b) as f64) as f32;
            }
        }
        Ok(())
    }
}

/// Binary cross-entropy on logits `z` with targets `t` in [0, 1], mean over all elements:
/// `max(z, 0) - z t + log(1 + e^-|z|)`, the form that cannot overflow; gradient
/// `(sigmoid(z) - t) / len`.
#[derive(Default)]
pub struct BceWithLogits;

impl BceWithLogits {
    pub fn new() -> Self {
        BceWithLogits
    }
}

impl Op for BceWithLogits {
    fn describe(&self) -> String {
        "binary cross-entropy with logits".into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        same_f32_shapes("binary cross-entropy", inputs)
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut [Tensor],
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (z, t) = (inputs[0].f32("bce")?, inputs[1].f32("bce")?);
        let sum: f64 = z
            .data
            .iter()
            .zip(t.data)
            .map(|(&z, &t)| {
                let (z, t) = (z as f64, t as f64);
                z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()
            })
            .sum();
        outputs[0].resize(&[]);
        outputs[0].data_mut()[0] = (sum / z.len().max(1) as f64) as f32;
        Ok(())
    }
    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (z, t) = (io.inputs[0].f32("bce")?, io.inputs[1].f32("bce")?);
        let scale = io.d_outputs[0].data.first().copied().unwrap_or(1.0) as f64 / z.len().max(1) as f64;
        dx.resize(z.shape);
        eltwise::sigmoid(cx.isa(), z.data, dx.data_mut())?;
        for (d, &t) in dx.data_mut().iter_mut().zip(t.data) {
            *d = ((*d as f64 - t as f64) * scale) as f32;
        }
        Ok(())
    }
}

/// The index of the largest value of each row of `[n, classes]` (the predicted classes),
/// into `out` (reused).
pub fn argmax_rows(x: TensorRef, out: &mut Vec<usize>) -> Result<(), LayerError> {
    let (_, c) = rows_cols("argmax", x.shape)?;
    out.clear();
    out.extend(
        x.data
            .chunks_exact(c)
            .map(|row| row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best })),
    );
    Ok(())
}
