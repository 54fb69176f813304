//! Inverted dropout (Srivastava et al., 2014): in training each value is zeroed with
//! probability `p` and the survivors scaled by `1 / (1 - p)`, so inference is the identity.

use super::one_f32;
use crate::init::{rng, uniform};
use crate::op::{same_as_input, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

/// Each caller draws its masks from its own generator, seeded from `seed` on first use.
pub struct Dropout {
    p: f32,
    seed: u64,
}

impl Dropout {
    /// Rate `p` in `[0, 1)`.
    pub fn new(p: f32, seed: u64) -> Result<Dropout, LayerError> {
        if !(0.0..1.0).contains(&p) {
            return Err(LayerError::BadHyperParameter { what: "dropout rate", expected: "in [0, 1)", got: p as f64 });
        }
        Ok(Dropout { p, seed })
    }
}

impl Op for Dropout {
    fn describe(&self) -> String {
        format!("dropout {}", self.p)
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        same_as_input("dropout", inputs)
    }
    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32("dropout", inputs)?;
        let y = &mut outputs[0];
        y.resize(x.shape);
        if !cx.is_train() || self.p == 0.0 {
            y.data_mut().copy_from_slice(x.data);
            return Ok(());
        }
        let keep = 1.0 / (1.0 - self.p);
        state.tensor(0).resize(x.shape);
        let OpState { tensors, rng: r, .. } = state;
        let (mask, r) = (&mut tensors[0], r.get_or_insert_with(|| rng(self.seed)));
        // Branch-free: a branch on a fair coin mispredicts every other value.
        for m in mask.data_mut() {
            *m = f32::from(u8::from(uniform(r) >= self.p)) * keep;
        }
        for ((o, &v), &m) in y.data_mut().iter_mut().zip(x.data).zip(mask.data()) {
            *o = v * m;
        }
        Ok(())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let dy = io.d_outputs[0];
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        dx.resize(dy.shape);
        if self.p == 0.0 {
            dx.data_mut().copy_from_slice(dy.data);
            return Ok(());
        }
        for ((d, &g), &m) in dx.data_mut().iter_mut().zip(dy.data).zip(io.state.tensor(0).data()) {
            *d = g * m;
        }
        Ok(())
    }
}
