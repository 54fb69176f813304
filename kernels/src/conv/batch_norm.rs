//! BatchNorm folded into the preceding convolution, for inference.
//!
//! `BN(conv(x, w) + b) = gamma (conv(x, w) + b - mean) / sqrt(var + eps) + beta`
//! `                  = conv(x, w * s) + (b - mean) * s + beta`, with `s = gamma / sqrt(var + eps)`
//! per output channel (Ioffe & Szegedy, 2015; the folding is the standard inference
//! rewrite), so inference runs one convolution with a fused bias.

use super::Conv2dGeom;
use crate::KernelError;

/// A BatchNorm layer's parameters and running statistics, one value per channel.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormParams<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub running_mean: &'a [f32],
    pub running_var: &'a [f32],
    pub eps: f32,
}

/// Rewrites `w` (`[out_channels, in_channels / groups, kh, kw]`) and `bias`
/// (`[out_channels]`, the convolution's bias or zeros) so that the convolution alone
/// computes `BN(conv(x, w) + bias)`. An error for lengths that disagree with `g` or a
/// negative variance or epsilon.
pub fn fold_batch_norm(
    g: &Conv2dGeom,
    bn: &BatchNormParams,
    w: &mut [f32],
    bias: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("w", g.weight_len(), w.len())?;
    Conv2dGeom::check_len("bias", g.out_channels, bias.len())?;
    for (what, v) in
        [("gamma", bn.gamma), ("beta", bn.beta), ("running_mean", bn.running_mean), ("running_var", bn.running_var)]
    {
        Conv2dGeom::check_len(what, g.out_channels, v.len())?;
    }
    let invalid = |v: f32| v.is_nan() || v < 0.0;
    if invalid(bn.eps) || bn.running_var.iter().any(|&v| invalid(v)) {
        return Err(KernelError::InvalidBatchNorm);
    }
    let per_channel = g.weight_len() / g.out_channels;
    for (k, wk) in w.chunks_exact_mut(per_channel).enumerate() {
        let scale = bn.gamma[k] / (bn.running_var[k] + bn.eps).sqrt();
        wk.iter_mut().for_each(|v| *v *= scale);
        bias[k] = (bias[k] - bn.running_mean[k]) * scale + bn.beta[k];
    }
    Ok(())
}
