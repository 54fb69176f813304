//! A parameter as a value: a node with no inputs whose output is a weight, so that ops which
//! take two values (a sparse product's dense operand, a bias added by broadcasting) can
//! read a learned tensor.

use crate::op::{expect_inputs, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::{Fill, ParamId, ParamScope, Params};
use crate::tensor::ValueRef;
use crate::LayerError;

/// `() -> weight`: the parameter `name.weight`, its gradient the output's.
pub struct Weight {
    weight: ParamId,
}

impl Weight {
    /// A new parameter `name.weight` of `shape`, filled by `fill`, with weight decay or not.
    pub fn new(p: &mut ParamScope, shape: &[usize], fill: Fill, decay: bool) -> Result<Weight, LayerError> {
        Ok(Weight { weight: p.param("weight", shape, fill, decay)? })
    }

    /// An existing parameter (one made with `GraphBuilder::param`, named as the caller
    /// likes: `conv1.weight`, `conv1.bias`).
    pub fn of(weight: ParamId) -> Weight {
        Weight { weight }
    }
}

impl Op for Weight {
    fn describe(&self) -> String {
        "weight".into()
    }

    fn params(&self) -> Vec<ParamId> {
        vec![self.weight]
    }

    fn infer(&self, inputs: &[ValueInfo], params: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_inputs("weight", 0, inputs.len())?;
        Ok(vec![ValueInfo::f32(params.value(self.weight).shape())])
    }

    fn forward(&self, cx: &OpCtx, _: &[ValueRef], outputs: &mut Outputs, _: &mut OpState) -> Result<(), LayerError> {
        let w = cx.param(self.weight);
        outputs[0].resize(w.shape());
        outputs[0].data_mut().copy_from_slice(w.data());
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        if let Some(dw) = io.grads.get_mut(self.weight) {
            dw.data_mut().iter_mut().zip(io.d_outputs[0].data).for_each(|(d, g)| *d += g);
        }
        Ok(())
    }
}
