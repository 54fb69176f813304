//! A weight kept inside a ball: `w = v · min(1, r / ‖v‖_F)`, the identity inside the ball
//! of radius `r` and the projection onto it outside, differentiable everywhere but on its
//! surface. Since `‖w‖₂ ≤ ‖w‖_F ≤ r`, a transition `tanh(P x W + b)` with `r < 1` is a
//! contraction ([`FixedPoint`](super::FixedPoint)): Scarselli et al.'s constraint, kept by
//! construction instead of by a penalty.

use crate::op::{expect_inputs, same_as_input, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

/// `v` (any shape) to `v · min(1, radius / ‖v‖_F)`.
pub struct NormBound {
    radius: f32,
}

impl NormBound {
    pub fn new(radius: f32) -> Self {
        NormBound { radius }
    }
}

const NAME: &str = "norm bound";

/// `‖v‖_F`, summed in f64.
fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt()
}

impl Op for NormBound {
    fn describe(&self) -> String {
        format!("norm bound (Frobenius norm at most {})", self.radius)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_inputs(NAME, 1, inputs.len())?;
        same_as_input(NAME, inputs)
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let v = super::one_f32(NAME, inputs)?;
        let n = norm(v.data);
        let scale = if n > self.radius as f64 { (self.radius as f64 / n) as f32 } else { 1.0 };
        let w = &mut outputs[0];
        w.resize(v.shape);
        w.data_mut().iter_mut().zip(v.data).for_each(|(w, &v)| *w = v * scale);
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let v = super::one_f32(NAME, io.inputs)?;
        let dw = io.d_outputs[0];
        check_grad(NAME, dw.shape, v.shape)?;
        let Some(dv) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        dv.resize(v.shape);
        let n = norm(v.data);
        let r = self.radius as f64;
        if n <= r {
            dv.data_mut().copy_from_slice(dw.data);
            return Ok(());
        }
        // d(r v / n) = (r / n) (dw - v (v · dw) / n²).
        let along = v.data.iter().zip(dw.data).map(|(&v, &g)| v as f64 * g as f64).sum::<f64>() / (n * n);
        for ((d, &v), &g) in dv.data_mut().iter_mut().zip(v.data).zip(dw.data) {
            *d = (r / n * (g as f64 - v as f64 * along)) as f32;
        }
        Ok(())
    }
}
