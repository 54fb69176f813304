//! The variational auto-encoder's two pieces (Kingma & Welling, "Auto-Encoding Variational
//! Bayes", 2014): a sample of `N(mu, exp(logstd)²)` drawn by reparameterisation, so that
//! gradients reach `mu` and `logstd`, and its KL divergence from `N(0, 1)`.

use crate::init::{rng, uniform};
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

/// `(mu, logstd) -> z`, both `[rows, F]`: in training `z = mu + eps · exp(logstd)` with
/// `eps ~ N(0, 1)` drawn afresh each call (from the op's seed, per caller); in evaluation
/// `z = mu`.
pub struct GaussianSample {
    seed: u64,
}

impl GaussianSample {
    pub fn new(seed: u64) -> Self {
        GaussianSample { seed }
    }
}

fn same_shapes(layer: &str, inputs: &[ValueInfo]) -> Result<(), LayerError> {
    expect_f32(layer, inputs, 2)?;
    if inputs[0].shape != inputs[1].shape {
        return Err(LayerError::ShapeMismatch {
            what: "mu and logstd",
            a: inputs[0].shape.clone(),
            b: inputs[1].shape.clone(),
        });
    }
    Ok(())
}

impl Op for GaussianSample {
    fn describe(&self) -> String {
        "gaussian sample".into()
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        same_shapes("gaussian sample", inputs)?;
        Ok(vec![ValueInfo::f32(&inputs[0].shape)])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let (mu, logstd) = (inputs[0].f32("gaussian sample")?, inputs[1].f32("gaussian sample")?);
        let z = &mut outputs[0];
        z.resize(mu.shape);
        if !cx.is_train() {
            z.data_mut().copy_from_slice(mu.data);
            return Ok(());
        }
        state.tensor(0).resize(mu.shape);
        let OpState { tensors, rng: r, .. } = state;
        let (eps, r) = (&mut tensors[0], r.get_or_insert_with(|| rng(self.seed)));
        // Box-Muller: two uniforms give two independent normals.
        for pair in eps.data_mut().chunks_mut(2) {
            let (u1, u2) = (1.0 - uniform(r), uniform(r));
            let radius = (-2.0 * u1.ln()).sqrt();
            let angle = std::f32::consts::TAU * u2;
            pair[0] = radius * angle.cos();
            if let Some(second) = pair.get_mut(1) {
                *second = radius * angle.sin();
            }
        }
        for (((o, &m), &s), &e) in z.data_mut().iter_mut().zip(mu.data).zip(logstd.data).zip(eps.data()) {
            *o = m + e * s.exp();
        }
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let dz = io.d_outputs[0];
        check_grad("gaussian sample", io.outputs[0].shape, dz.shape)?;
        if let Some(dmu) = io.d_inputs[0].as_deref_mut() {
            dmu.resize(dz.shape);
            dmu.data_mut().copy_from_slice(dz.data);
        }
        let logstd = io.inputs[1].f32("gaussian sample")?;
        let eps = io.state.tensor(0);
        if let Some(ds) = io.d_inputs[1].as_deref_mut() {
            ds.resize(dz.shape);
            for (((d, &g), &s), &e) in ds.data_mut().iter_mut().zip(dz.data).zip(logstd.data).zip(eps.data()) {
                *d = g * e * s.exp();
            }
        }
        Ok(())
    }
}

/// `(mu, logstd) -> kl`, a scalar: `scale` times the mean over rows of each row's
/// `KL(N(mu, exp(logstd)²) || N(0, 1)) = -1/2 Σ (1 + 2 logstd - mu² - exp(logstd)²)`
/// (Kipf & Welling's VGAE takes `scale = 1 / N`).
pub struct GaussianKl {
    scale: f32,
}

impl GaussianKl {
    pub fn new(scale: f32) -> Self {
        GaussianKl { scale }
    }
}

impl Op for GaussianKl {
    fn describe(&self) -> String {
        format!("gaussian kl x{}", self.scale)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        same_shapes("gaussian kl", inputs)?;
        Ok(vec![ValueInfo::f32(&[])])
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (mu, logstd) = (inputs[0].f32("gaussian kl")?, inputs[1].f32("gaussian kl")?);
        let rows = mu.shape.first().copied().unwrap_or(1).max(1);
        let sum: f64 =
            mu.data.iter().zip(logstd.data).map(|(&m, &s)| (1.0 + 2.0 * s - m * m - (2.0 * s).exp()) as f64).sum();
        outputs[0].resize(&[]);
        outputs[0].data_mut()[0] = (-0.5 * sum / rows as f64) as f32 * self.scale;
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let (mu, logstd) = (io.inputs[0].f32("gaussian kl")?, io.inputs[1].f32("gaussian kl")?);
        let rows = mu.shape.first().copied().unwrap_or(1).max(1);
        let g = io.d_outputs[0].data.first().copied().unwrap_or(0.0) * self.scale / rows as f32;
        if let Some(dmu) = io.d_inputs[0].as_deref_mut() {
            dmu.resize(mu.shape);
            dmu.data_mut().iter_mut().zip(mu.data).for_each(|(d, &m)| *d = g * m);
        }
        if let Some(ds) = io.d_inputs[1].as_deref_mut() {
            ds.resize(logstd.shape);
            ds.data_mut().iter_mut().zip(logstd.data).for_each(|(d, &s)| *d = g * ((2.0 * s).exp() - 1.0));
        }
        Ok(())
    }
}
