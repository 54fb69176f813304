//! Euclidean radial basis function units, LeNet-5's output layer (LeCun et al. 1998, §II.B):
//! each class has a prototype vector, and a unit's output is the squared distance between
//! its input and the prototype.

use super::one_f32;
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::{Fill, ParamId, ParamScope, Params};
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

/// `[n, in] -> [n, units]`, `y[i] = -|x - w[i]|^2` for prototypes `w: [units, in]`: the
/// negated penalty, so that the nearest prototype has the largest value and the outputs
/// serve as logits (softmax cross-entropy, argmax).
pub struct Rbf {
    inputs: usize,
    units: usize,
    weight: ParamId,
}

impl Rbf {
    /// Prototypes `name.weight` of `units` rows, each value `-1` or `+1` drawn from the
    /// scope's generator (the paper drew stylised 7x12 bitmaps of the characters, values
    /// ±1; these are random codes of the same kind).
    pub fn new(p: &mut ParamScope, inputs: usize, units: usize) -> Result<Rbf, LayerError> {
        if inputs == 0 || units == 0 {
            return Err(simdnn_kernels::KernelError::ZeroSize { what: "rbf layer" }.into());
        }
        let weight = p.param("weight", &[units, inputs], Fill::Signs, false)?;
        Ok(Rbf { inputs, units, weight })
    }

    pub fn weight(&self) -> ParamId {
        self.weight
    }
}

impl Op for Rbf {
    fn describe(&self) -> String {
        format!("rbf {}->{}", self.inputs, self.units)
    }

    fn params(&self) -> Vec<ParamId> {
        vec![self.weight]
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(&self.describe(), inputs, 1)?;
        match *inputs[0].shape {
            [n, i] if i == self.inputs => Ok(vec![ValueInfo::f32(&[n, self.units])]),
            _ => Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("[batch, {}]", self.inputs),
                got: inputs[0].shape.clone(),
            }),
        }
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32(|| self.describe(), inputs)?;
        let w = cx.param(self.weight).data();
        let y = &mut outputs[0];
        y.resize(&[x.shape[0], self.units]);
        for (xr, yr) in x.data.chunks_exact(self.inputs).zip(y.data_mut().chunks_exact_mut(self.units)) {
            for (o, wr) in yr.iter_mut().zip(w.chunks_exact(self.inputs)) {
                *o = -xr.iter().zip(wr).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
            }
        }
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let (x, dy) = (io.inputs[0].f32("rbf")?, io.d_outputs[0]);
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        let w = cx.param(self.weight).data();
        // d y[i] / d x = -2 (x - w[i]); d y[i] / d w[i] = 2 (x - w[i]).
        if let Some(dw) = io.grads.get_mut(self.weight) {
            for (xr, gr) in x.data.chunks_exact(self.inputs).zip(dy.data.chunks_exact(self.units)) {
                for ((dwr, wr), &g) in
                    dw.data_mut().chunks_exact_mut(self.inputs).zip(w.chunks_exact(self.inputs)).zip(gr)
                {
                    dwr.iter_mut().zip(xr.iter().zip(wr)).for_each(|(d, (a, b))| *d += 2.0 * g * (a - b));
                }
            }
        }
        if let Some(dx) = io.d_inputs[0].as_deref_mut() {
            dx.resize(x.shape);
            for ((dr, xr), gr) in dx
                .data_mut()
                .chunks_exact_mut(self.inputs)
                .zip(x.data.chunks_exact(self.inputs))
                .zip(dy.data.chunks_exact(self.units))
            {
                dr.fill(0.0);
                for (wr, &g) in w.chunks_exact(self.inputs).zip(gr) {
                    dr.iter_mut().zip(xr.iter().zip(wr)).for_each(|(d, (a, b))| *d -= 2.0 * g * (a - b));
                }
            }
        }
        Ok(())
    }
}
