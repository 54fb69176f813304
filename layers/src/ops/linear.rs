//! Fully connected layer over the last axis, on the SGEMM: `y = relu?(x W^T + b)`.

use super::{one_f32, through_fused_relu};
use crate::init::Init;
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::{Fill, ParamId, ParamScope, Params};
use crate::tensor::ValueRef;
use crate::LayerError;
use simdnn_kernels::gemm::{sgemm, Epilogue, MatMut, MatRef};

/// `[..., in] -> [..., out]` for input of any rank (every leading index a row), weight
/// `[out, in]` (PyTorch's layout), bias `[out]`.
pub struct Linear {
    in_features: usize,
    out_features: usize,
    relu: bool,
    weight: ParamId,
    bias: Option<ParamId>,
}

impl Linear {
    /// Weights (`name.weight`) drawn by `init`, zero bias (`name.bias`).
    pub fn new(p: &mut ParamScope, in_features: usize, out_features: usize, init: Init) -> Result<Linear, LayerError> {
        if in_features == 0 || out_features == 0 {
            return Err(simdnn_kernels::KernelError::ZeroSize { what: "linear layer features" }.into());
        }
        let fill = Fill::Random { init, fan_in: in_features, fan_out: out_features };
        let weight = p.param("weight", &[out_features, in_features], fill, true)?;
        let bias = p.param("bias", &[out_features], Fill::Zeros, false)?;
        Ok(Linear { in_features, out_features, relu: false, weight, bias: Some(bias) })
    }

    /// A layer reading existing parameters (`weight: [out, in]`): shared or tied weights.
    pub fn from_params(params: &Params, weight: ParamId, bias: Option<ParamId>) -> Result<Linear, LayerError> {
        let (out_features, in_features) = match *params.value(weight).shape() {
            [o, i] => (o, i),
            ref s => {
                return Err(LayerError::ParamShape {
                    name: params.name(weight).into(),
                    expected: vec![0, 0],
                    got: s.to_vec(),
                })
            }
        };
        Ok(Linear { in_features, out_features, relu: false, weight, bias })
    }

    /// Applies ReLU in the GEMM's epilogue.
    pub fn with_relu(self) -> Self {
        Linear { relu: true, ..self }
    }

    /// The rows of an input shape (the product of all but the last axis).
    fn rows(&self, shape: &[usize]) -> Result<usize, LayerError> {
        match shape.split_last() {
            Some((&f, lead)) if f == self.in_features => Ok(lead.iter().product()),
            _ => Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("[..., {}] (a Flatten node turns images into rows)", self.in_features),
                got: shape.to_vec(),
            }),
        }
    }
}

impl Op for Linear {
    fn describe(&self) -> String {
        format!("linear {}->{}{}", self.in_features, self.out_features, if self.relu { " +relu" } else { "" })
    }

    fn params(&self) -> Vec<ParamId> {
        [Some(self.weight), self.bias].into_iter().flatten().collect()
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(&self.describe(), inputs, 1)?;
        self.rows(&inputs[0].shape)?;
        let mut shape = inputs[0].shape.clone();
        *shape.last_mut().expect("rank checked") = self.out_features;
        Ok(vec![ValueInfo::f32(&shape)])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32(|| self.describe(), inputs)?;
        let (n, i, o) = (self.rows(x.shape)?, self.in_features, self.out_features);
        let y = &mut outputs[0];
        y.resize_last(x.shape, o);
        let w = MatRef::new(cx.param(self.weight).data(), o, i, i)?.t();
        let mut epi = self.bias.map_or(Epilogue::NONE, |b| Epilogue::bias_per_col(cx.param(b).data()));
        epi.relu = self.relu;
        sgemm(cx.cfg(), 1.0, MatRef::new(x.data, n, i, i)?, w, 0.0, MatMut::new(y.data_mut(), n, o, o)?, epi)?;
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let x = one_f32(|| self.describe(), io.inputs)?;
        let (n, i, o) = (self.rows(x.shape)?, self.in_features, self.out_features);
        let dy = through_fused_relu(cx, self.relu, io.outputs[0], io.d_outputs[0], io.state.tensor(0))?;
        let dy_m = MatRef::new(dy, n, o, o)?;
        if let Some(dw) = io.grads.get_mut(self.weight) {
            // dW += dy^T x
            let dw = MatMut::new(dw.data_mut(), o, i, i)?;
            sgemm(cx.cfg(), 1.0, dy_m.t(), MatRef::new(x.data, n, i, i)?, 1.0, dw, Epilogue::NONE)?;
        }
        if let Some(db) = self.bias.and_then(|b| io.grads.get_mut(b)) {
            for row in dy.chunks_exact(o) {
                db.data_mut().iter_mut().zip(row).for_each(|(d, g)| *d += g);
            }
        }
        if let Some(dx) = io.d_inputs[0].as_deref_mut() {
            // dx = dy W
            dx.resize(x.shape);
            let w = MatRef::new(cx.param(self.weight).data(), o, i, i)?;
            sgemm(cx.cfg(), 1.0, dy_m, w, 0.0, MatMut::new(dx.data_mut(), n, i, i)?, Epilogue::NONE)?;
        }
        Ok(())
    }

    fn macs(&self, _: &[ValueInfo], outputs: &[ValueInfo]) -> u64 {
        outputs.first().map_or(0, |o| (o.len() * self.in_features) as u64)
    }
}
