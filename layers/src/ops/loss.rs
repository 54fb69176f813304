//! Losses as graph nodes: each reads a prediction and a target and outputs the mean loss
//! over the batch (a scalar, shape `[]`), the value a training pass differentiates.

use crate::op::{Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{DType, IntRef, TensorRef, ValueRef};
use crate::LayerError;
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
/// the loss to rounding. Inputs: logits `[..., classes]` (every leading index a position:
/// `[n, classes]`, or `[batch, time, vocab]`) and integer labels of the leading shape, and
/// optionally an f32 weight per position (a padding mask) of that shape. The loss is the
/// weighted mean `sum(w l) / sum(w)` over positions (the plain mean without weights);
/// positions labelled with the [`SoftmaxCrossEntropy::ignore_index`] weigh 0. Gradient:
/// `w (softmax(x) - onehot(label)) / sum(w)`.
#[derive(Default)]
pub struct SoftmaxCrossEntropy {
    ignore: Option<i64>,
}

const CE: &str = "softmax cross-entropy";

impl SoftmaxCrossEntropy {
    pub fn new() -> Self {
        SoftmaxCrossEntropy { ignore: None }
    }

    /// Positions whose label is `label` (PyTorch's -100 for padding) add no loss and no
    /// gradient, and do not count in the mean; their label need not be a class.
    pub fn ignore_index(self, label: i64) -> Self {
        SoftmaxCrossEntropy { ignore: Some(label) }
    }

    /// The weight of position `r` with label `label`.
    fn weight(&self, mask: Option<TensorRef>, r: usize, label: i64) -> f64 {
        if self.ignore == Some(label) {
            0.0
        } else {
            mask.map_or(1.0, |m| m.data[r] as f64)
        }
    }

    /// The sum of the positions' weights, 1 where it is 0 (so the loss of nothing is 0).
    fn total_weight(&self, mask: Option<TensorRef>, labels: &[i64]) -> f64 {
        let w: f64 = labels.iter().enumerate().map(|(r, &l)| self.weight(mask, r, l)).sum();
        if w == 0.0 {
            1.0
        } else {
            w
        }
    }

    /// Logits, labels and the optional weights of a call, checked against each other.
    fn read<'a>(&self, inputs: &[ValueRef<'a>]) -> Result<CeInputs<'a>, LayerError> {
        let (logits, labels) = (inputs[0].f32(CE)?, inputs[1].int(CE)?);
        let (n, classes) = positions_classes(CE, logits.shape)?;
        if labels.len() != n {
            return Err(LayerError::LabelCount { what: "cross-entropy", expected: n, got: labels.len() });
        }
        let mask = inputs.get(2).map(|m| m.f32(CE)).transpose()?;
        if let Some(m) = mask.filter(|m| m.len() != n) {
            return Err(LayerError::LabelCount { what: "cross-entropy weights", expected: n, got: m.len() });
        }
        Ok(CeInputs { logits, labels, mask, classes })
    }
}

/// The inputs of a cross-entropy call.
struct CeInputs<'a> {
    logits: TensorRef<'a>,
    labels: IntRef<'a>,
    mask: Option<TensorRef<'a>>,
    classes: usize,
}

/// The positions (product of the leading axes) and classes (last axis) of logits.
fn positions_classes(what: &str, shape: &[usize]) -> Result<(usize, usize), LayerError> {
    match shape.split_last() {
        Some((&c, lead)) if c > 0 => Ok((lead.iter().product(), c)),
        _ => Err(LayerError::InputShape { layer: what.into(), expected: "[..., classes]".into(), got: shape.to_vec() }),
    }
}

impl Op for SoftmaxCrossEntropy {
    fn describe(&self) -> String {
        match self.ignore {
            Some(i) => format!("{CE} ignoring {i}"),
            None => CE.into(),
        }
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        if !(2..=3).contains(&inputs.len()) {
            return Err(LayerError::InputCount {
                layer: CE.into(),
                expected: "2 or 3 (logits, labels and optional weights)".into(),
                got: inputs.len(),
            });
        }
        positions_classes(CE, &inputs[0].shape)?;
        let lead = &inputs[0].shape[..inputs[0].shape.len() - 1];
        let lead_str = lead.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
        if inputs[0].dtype != DType::F32 || inputs[1].dtype != DType::I64 || inputs[1].shape != lead {
            return Err(LayerError::InputShape {
                layer: CE.into(),
                expected: format!("f32 logits [{lead_str}, classes] and integer labels [{lead_str}]"),
                got: inputs[1].shape.clone(),
            });
        }
        if let Some(mask) = inputs.get(2).filter(|m| m.dtype != DType::F32 || m.shape != lead) {
            return Err(LayerError::InputShape {
                layer: CE.into(),
                expected: format!("f32 weights [{lead_str}], one per label"),
                got: mask.shape.clone(),
            });
        }
        Ok(vec![ValueInfo::f32(&[])])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let CeInputs { logits, labels, mask, classes: c } = self.read(inputs)?;
        if let Some(&label) = labels.data().iter().find(|&&l| self.ignore != Some(l) && (l < 0 || l as usize >= c)) {
            return Err(LayerError::LabelRange { what: "cross-entropy", label, classes: c });
        }
        // Saved for backward: log-softmax of the logits.
        let log_probs = state.tensor(0);
        log_probs.resize(logits.shape);
        eltwise::log_softmax(cx.isa(), c, logits.data, log_probs.data_mut())?;
        let sum: f64 = log_probs
            .data()
            .chunks_exact(c)
            .zip(labels.data())
            .enumerate()
            .map(|(r, (row, &l))| {
                let w = self.weight(mask, r, l);
                if w == 0.0 {
                    0.0
                } else {
                    -row[l as usize] as f64 * w
                }
            })
            .sum();
        outputs[0].resize(&[]);
        outputs[0].data_mut()[0] = (sum / self.total_weight(mask, labels.data())) as f32;
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let CeInputs { logits, labels, mask, classes: c } = self.read(io.inputs)?;
        let d_loss = io.d_outputs[0].data.first().copied().unwrap_or(1.0);
        let total = self.total_weight(mask, labels.data());
        let log_probs = io.state.tensor(0);
        if log_probs.shape() != logits.shape {
            return Err(LayerError::NoForward);
        }
        if let Some(Some(dw)) = io.d_inputs.get_mut(2) {
            // d/dw_r of sum(w l) / sum(w) = (l_r - loss) / sum(w), for the positions that count.
            let loss = io.outputs[0].data.first().copied().unwrap_or(0.0) as f64;
            dw.resize(labels.shape());
            for ((d, row), &l) in dw.data_mut().iter_mut().zip(log_probs.data().chunks_exact(c)).zip(labels.data()) {
                let counts = self.ignore != Some(l);
                *d = if counts { (d_loss as f64 * (-row[l as usize] as f64 - loss) / total) as f32 } else { 0.0 };
            }
        }
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let scale = d_loss / total as f32;
        dx.resize(logits.shape);
        eltwise::exp(cx.isa(), log_probs.data(), dx.data_mut())?;
        for (r, (row, &label)) in dx.data_mut().chunks_exact_mut(c).zip(labels.data()).enumerate() {
            let w = self.weight(mask, r, label);
            if w == 0.0 {
                row.fill(0.0);
            } else {
                row[label as usize] -= 1.0;
                let s = scale * w as f32;
                row.iter_mut().for_each(|v| *v *= s);
            }
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
        outputs: &mut Outputs,
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
        outputs: &mut Outputs,
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
    out.extend(x.data.chunks_exact(c).map(super::argmax::argmax));
    Ok(())
}
