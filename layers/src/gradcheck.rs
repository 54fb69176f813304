//! Finite-difference gradient checking: the analytic gradients of a model's backward pass
//! against central differences of its forward pass.
//!
//! The scalar checked is `L = sum(r * y)` for one output `y` and a fixed random `r`, so
//! `dL/dy = r` exercises every output value. Each input and parameter coordinate is nudged
//! by `±eps` and `(L(+eps) - L(-eps)) / 2 eps` compared with the analytic derivative.

use crate::graph::{Feed, Model, State};
use crate::init::{rng, uniform};
use crate::op::Ctx;
use crate::param::Grads;
use crate::tensor::IntTensor;
use crate::{LayerError, Tensor};

/// The worst disagreement found, and where.
#[derive(Clone, Debug)]
pub struct GradCheckReport {
    /// `|analytic - numeric| / max(|analytic|, |numeric|, 1)`.
    pub max_error: f64,
    pub worst: String,
    pub checked: usize,
}

/// Uniform values in `[-1, 1)` from `seed`.
pub fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    let mut r = rng(seed);
    let mut t = Tensor::zeros(shape);
    t.data_mut().iter_mut().for_each(|v| *v = 2.0 * uniform(&mut r) - 1.0);
    t
}

/// The graph inputs of a check: f32 inputs (their gradients are checked too) and integer
/// ones.
#[derive(Clone)]
pub struct CheckInputs {
    pub f32: Vec<(String, Tensor)>,
    pub int: Vec<(String, IntTensor)>,
}

impl CheckInputs {
    pub fn new() -> CheckInputs {
        CheckInputs { f32: Vec::new(), int: Vec::new() }
    }
    pub fn with(mut self, name: &str, t: Tensor) -> Self {
        self.f32.push((name.to_string(), t));
        self
    }
    pub fn with_int(mut self, name: &str, t: IntTensor) -> Self {
        self.int.push((name.to_string(), t));
        self
    }
}

impl Default for CheckInputs {
    fn default() -> Self {
        CheckInputs::new()
    }
}

fn run(
    model: &Model,
    ctx: &Ctx,
    state: &mut State,
    inputs: &CheckInputs,
    output: &str,
    r: Option<&Tensor>,
) -> Result<(f64, Vec<usize>), LayerError> {
    let feed: Vec<(&str, Feed)> = inputs
        .f32
        .iter()
        .map(|(n, t)| (n.as_str(), Feed::from(t)))
        .chain(inputs.int.iter().map(|(n, t)| (n.as_str(), Feed::from(t))))
        .collect();
    model.forward(ctx, state, feed.as_slice())?;
    let y = model.output(state, output)?;
    let l = r.map_or(0.0, |r| y.data.iter().zip(r.data()).map(|(&a, &b)| a as f64 * b as f64).sum());
    Ok((l, y.shape.to_vec()))
}

/// Checks up to `max_coords` coordinates of every f32 input and of every trainable
/// parameter of `model`, differentiating output `output`.
pub fn check_model(
    model: &mut Model,
    ctx: &Ctx,
    inputs: &mut CheckInputs,
    output: &str,
    eps: f32,
    max_coords: usize,
    seed: u64,
) -> Result<GradCheckReport, LayerError> {
    let mut state = State::new();
    state.keep_input_grads(true);
    let (_, shape) = run(model, ctx, &mut state, inputs, output, None)?;
    let r = random_tensor(&shape, seed);
    let mut grads = Grads::new(model.params());
    model.backward(ctx, &mut state, &mut grads, &[(output, r.as_ref())])?;
    let input_grads: Vec<Option<Vec<f32>>> =
        inputs.f32.iter().map(|(n, _)| model.input_grad(&state, n).map(|g| g.data.to_vec())).collect();

    let mut report = GradCheckReport { max_error: 0.0, worst: String::new(), checked: 0 };
    let mut record = |what: String, analytic: f32, numeric: f64| {
        let a = analytic as f64;
        let err = (a - numeric).abs() / a.abs().max(numeric.abs()).max(1.0);
        report.checked += 1;
        if err > report.max_error || report.worst.is_empty() {
            report.max_error = err;
            report.worst = format!("{what}: analytic {a:.6}, numeric {numeric:.6}");
        }
    };

    for (k, analytic) in input_grads.iter().enumerate() {
        let len = inputs.f32[k].1.len();
        for i in coords(len, max_coords) {
            let v = inputs.f32[k].1.data()[i];
            let mut at = |d: f32| -> Result<f64, LayerError> {
                inputs.f32[k].1.data_mut()[i] = v + d;
                Ok(run(model, ctx, &mut state, inputs, output, Some(&r))?.0)
            };
            let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps as f64);
            inputs.f32[k].1.data_mut()[i] = v;
            let a = analytic.as_ref().map_or(0.0, |g| g[i]);
            record(format!("input {}[{i}]", inputs.f32[k].0), a, numeric);
        }
    }

    let ids: Vec<_> = model.params().ids().filter(|&id| grads.get(id).is_some()).collect();
    for id in ids {
        let analytic = grads.get(id).expect("filtered").data().to_vec();
        let name = model.params().name(id).to_string();
        for i in coords(analytic.len(), max_coords) {
            let mut at = |d: f32| -> Result<f64, LayerError> {
                model.params_mut().value_mut(id).data_mut()[i] += d;
                let l = run(model, ctx, &mut state, inputs, output, Some(&r))?.0;
                model.params_mut().value_mut(id).data_mut()[i] -= d;
                Ok(l)
            };
            let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps as f64);
            record(format!("{name}[{i}]"), analytic[i], numeric);
        }
    }
    Ok(report)
}

/// Every index when there are at most `max` of them, else `max` spread evenly.
fn coords(len: usize, max: usize) -> Vec<usize> {
    if len <= max {
        (0..len).collect()
    } else {
        (0..max).map(|k| k * len / max).collect()
    }
}
