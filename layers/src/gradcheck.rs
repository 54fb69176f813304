//! Finite-difference gradient checking: the analytic gradients of a layer's backward pass
//! against central differences of its forward pass.
//!
//! The scalar checked is `L = sum(r * y)` for a fixed random `r`, so `dL/dy = r` exercises
//! every output. Each input and parameter coordinate is nudged by `±eps` and
//! `(L(+eps) - L(-eps)) / 2 eps` compared with the analytic derivative.

use crate::init::{rng, uniform};
use crate::layer::{zero_grads, Ctx, Layer};
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

fn weighted_sum(y: &Tensor, r: &Tensor) -> f64 {
    y.data().iter().zip(r.data()).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Checks up to `max_coords` coordinates of the input and of each parameter of `layer`.
pub fn check_layer(
    layer: &mut dyn Layer,
    ctx: &Ctx,
    x: &Tensor,
    eps: f32,
    max_coords: usize,
    seed: u64,
) -> Result<GradCheckReport, LayerError> {
    let y_shape = layer.forward(ctx, x)?.shape().to_vec();
    let r = random_tensor(&y_shape, seed);
    zero_grads(layer);
    let dx = layer.backward(ctx, x, &r)?.clone();
    let mut analytic_params = Vec::new();
    layer.visit_params("", &mut |name, p| analytic_params.push((name.to_string(), p.grad.clone())));

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

    let mut xp = x.clone();
    for i in coords(x.len(), max_coords) {
        let v = x.data()[i];
        let mut at = |d: f32| -> Result<f64, LayerError> {
            xp.data_mut()[i] = v + d;
            Ok(weighted_sum(layer.forward(ctx, &xp)?, &r))
        };
        let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps as f64);
        xp.data_mut()[i] = v;
        record(format!("input[{i}]"), dx.data()[i], numeric);
    }

    for (p_index, (name, grad)) in analytic_params.iter().enumerate() {
        for i in coords(grad.len(), max_coords) {
            let mut at = |d: f32| -> Result<f64, LayerError> {
                nudge(layer, p_index, i, d);
                let l = weighted_sum(layer.forward(ctx, x)?, &r);
                nudge(layer, p_index, i, -d);
                Ok(l)
            };
            let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps as f64);
            record(format!("{name}[{i}]"), grad.data()[i], numeric);
        }
    }
    Ok(report)
}

/// Adds `d` to element `i` of parameter number `p_index`.
fn nudge(layer: &mut dyn Layer, p_index: usize, i: usize, d: f32) {
    let mut k = 0;
    layer.visit_params("", &mut |_, p| {
        if k == p_index {
            p.value.data_mut()[i] += d;
        }
        k += 1;
    });
}

/// Every index when there are at most `max` of them, else `max` spread evenly.
fn coords(len: usize, max: usize) -> Vec<usize> {
    if len <= max {
        (0..len).collect()
    } else {
        (0..max).map(|k| k * len / max).collect()
    }
}
