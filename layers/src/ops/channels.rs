//! Per-channel operations of NCHW (or `[n, c]`) values: selecting channels, and a trainable
//! scale and bias per channel.

use super::one_f32;
use crate::op::{expect_f32, same_as_input, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::{Fill, ParamId, ParamScope, Params};
use crate::tensor::{check_grad, LayerName, ValueRef};
use crate::LayerError;

/// `(batch, channels, plane)` of an `[n, c, ...]` shape.
fn channel_layout(layer: &str, shape: &[usize]) -> Result<(usize, usize, usize), LayerError> {
    match shape {
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product())),
        _ => Err(LayerError::InputShape {
            layer: layer.into(),
            expected: "[batch, channels, ...]".into(),
            got: shape.to_vec(),
        }),
    }
}

/// The input channels `indices`, in that order (a channel may repeat): how LeNet-5's C3
/// reads a different subset of S2's maps for each of its own.
pub struct ChannelSelect {
    indices: Vec<usize>,
}

impl ChannelSelect {
    pub fn new(indices: &[usize]) -> Self {
        ChannelSelect { indices: indices.to_vec() }
    }
}

impl Op for ChannelSelect {
    fn describe(&self) -> String {
        format!("select channels {:?}", self.indices)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32("select channels", inputs, 1)?;
        let (_, c, _) = channel_layout("select channels", &inputs[0].shape)?;
        if self.indices.is_empty() || self.indices.iter().any(|&i| i >= c) {
            return Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("more than {} channels", self.indices.iter().max().copied().unwrap_or(0)),
                got: inputs[0].shape.clone(),
            });
        }
        let mut shape = inputs[0].shape.clone();
        shape[1] = self.indices.len();
        Ok(vec![ValueInfo::f32(&shape)])
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32("select channels", inputs)?;
        let (n, c, plane) = channel_layout("select channels", x.shape)?;
        let y = &mut outputs[0];
        y.resize(x.shape);
        y.resize_axis(1, self.indices.len());
        for (xi, yi) in
            x.data.chunks_exact(c * plane).zip(y.data_mut().chunks_exact_mut(self.indices.len() * plane)).take(n)
        {
            for (dst, &i) in yi.chunks_exact_mut(plane).zip(&self.indices) {
                dst.copy_from_slice(&xi[i * plane..][..plane]);
            }
        }
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (x, dy) = (io.inputs[0].f32("select channels")?, io.d_outputs[0]);
        check_grad("select channels", io.outputs[0].shape, dy.shape)?;
        let (_, c, plane) = channel_layout("select channels", x.shape)?;
        dx.resize(x.shape);
        dx.data_mut().fill(0.0);
        for (dxi, dyi) in
            dx.data_mut().chunks_exact_mut(c * plane).zip(dy.data.chunks_exact(self.indices.len() * plane))
        {
            for (src, &i) in dyi.chunks_exact(plane).zip(&self.indices) {
                dxi[i * plane..][..plane].iter_mut().zip(src).for_each(|(d, &g)| *d += g);
            }
        }
        Ok(())
    }
}

/// `y = weight[c] * x + bias[c]` on every value of channel `c`: LeNet-5's trainable
/// subsampling coefficient and bias (after a 2x2 sum).
pub struct ChannelAffine {
    channels: usize,
    weight: ParamId,
    bias: ParamId,
}

impl ChannelAffine {
    /// `name.weight` (ones) and `name.bias` (zeros), `channels` each.
    pub fn new(p: &mut ParamScope, channels: usize) -> Result<ChannelAffine, LayerError> {
        if channels == 0 {
            return Err(simdnn_kernels::KernelError::ZeroSize { what: "channel affine" }.into());
        }
        let weight = p.param("weight", &[channels], Fill::Constant(1.0), false)?;
        let bias = p.param("bias", &[channels], Fill::Zeros, false)?;
        Ok(ChannelAffine { channels, weight, bias })
    }

    fn layout(&self, shape: &[usize]) -> Result<(usize, usize), LayerError> {
        per_channel(|| self.describe(), self.channels, shape)
    }
}

/// `(batch, plane)` of an `[n, channels, ...]` input of an op with `channels` channels
/// (batch norm, per-channel affine maps), or an error naming `layer`.
pub(crate) fn per_channel(
    layer: impl LayerName,
    channels: usize,
    shape: &[usize],
) -> Result<(usize, usize), LayerError> {
    match shape {
        [n, c, rest @ ..] if *c == channels => Ok((*n, rest.iter().product())),
        _ => Err(LayerError::InputShape {
            layer: layer.name(),
            expected: format!("[batch, {channels}, ...]"),
            got: shape.to_vec(),
        }),
    }
}

impl Op for ChannelAffine {
    fn describe(&self) -> String {
        format!("channel affine {}", self.channels)
    }

    fn params(&self) -> Vec<ParamId> {
        vec![self.weight, self.bias]
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        let out = same_as_input("channel affine", inputs)?;
        self.layout(&inputs[0].shape)?;
        Ok(out)
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32("channel affine", inputs)?;
        let (_, plane) = self.layout(x.shape)?;
        let (w, b) = (cx.param(self.weight).data(), cx.param(self.bias).data());
        let y = &mut outputs[0];
        y.resize(x.shape);
        for (k, (yp, xp)) in y.data_mut().chunks_exact_mut(plane).zip(x.data.chunks_exact(plane)).enumerate() {
            let c = k % self.channels;
            yp.iter_mut().zip(xp).for_each(|(o, &v)| *o = w[c] * v + b[c]);
        }
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let (x, dy) = (io.inputs[0].f32("channel affine")?, io.d_outputs[0]);
        check_grad("channel affine", io.outputs[0].shape, dy.shape)?;
        let (_, plane) = self.layout(x.shape)?;
        if let Some(dw) = io.grads.get_mut(self.weight) {
            for (k, (gp, xp)) in dy.data.chunks_exact(plane).zip(x.data.chunks_exact(plane)).enumerate() {
                dw.data_mut()[k % self.channels] += gp.iter().zip(xp).map(|(g, v)| g * v).sum::<f32>();
            }
        }
        if let Some(db) = io.grads.get_mut(self.bias) {
            for (k, gp) in dy.data.chunks_exact(plane).enumerate() {
                db.data_mut()[k % self.channels] += gp.iter().sum::<f32>();
            }
        }
        if let Some(dx) = io.d_inputs[0].as_deref_mut() {
            let w = cx.param(self.weight).data();
            dx.resize(x.shape);
            for (k, (dp, gp)) in dx.data_mut().chunks_exact_mut(plane).zip(dy.data.chunks_exact(plane)).enumerate() {
                let c = k % self.channels;
                dp.iter_mut().zip(gp).for_each(|(d, &g)| *d = w[c] * g);
            }
        }
        Ok(())
    }
}
