//! Adaptive average pooling (PyTorch's `AdaptiveAvgPool2d`): a fixed output size from any
//! input size, as torchvision's AlexNet, VGG and SqueezeNet end their feature extractors.

use super::one_f32;
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, nchw, ValueRef};
use crate::LayerError;
use simdnn_kernels::pool;

/// `[n, c, h, w] -> [n, c, out_h, out_w]`: output cell `i` of an axis of length `len` is the
/// mean of inputs `floor(i * len / out) .. ceil((i + 1) * len / out)` (PyTorch's windows).
/// One output cell per axis is a global average, and an output as large as the input is a
/// copy.
pub struct AdaptiveAvgPool2d {
    out: (usize, usize),
}

impl AdaptiveAvgPool2d {
    pub fn new(out_h: usize, out_w: usize) -> Self {
        AdaptiveAvgPool2d { out: (out_h, out_w) }
    }
}

/// The input window of output cell `i` along an axis.
fn window(i: usize, len: usize, out: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

impl Op for AdaptiveAvgPool2d {
    fn describe(&self) -> String {
        format!("adaptive avgpool {}x{}", self.out.0, self.out.1)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(&self.describe(), inputs, 1)?;
        let [n, c, h, w] = nchw(|| self.describe(), &inputs[0].shape)?;
        if h == 0 || w == 0 || self.out.0 == 0 || self.out.1 == 0 {
            return Err(LayerError::InputShape {
                layer: self.describe(),
                expected: "non-empty planes".into(),
                got: inputs[0].shape.clone(),
            });
        }
        Ok(vec![ValueInfo::f32(&[n, c, self.out.0, self.out.1])])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32(|| self.describe(), inputs)?;
        let [n, c, h, w] = nchw(|| self.describe(), x.shape)?;
        let (oh, ow) = self.out;
        let y = &mut outputs[0];
        y.resize(&[n, c, oh, ow]);
        if (oh, ow) == (h, w) {
            y.data_mut().copy_from_slice(x.data);
        } else if (oh, ow) == (1, 1) {
            pool::global_avg_pool_forward(cx.cfg(), h * w, x.data, y.data_mut())?;
        } else {
            for (xp, yp) in x.data.chunks_exact(h * w).zip(y.data_mut().chunks_exact_mut(oh * ow)) {
                for i in 0..oh {
                    let (r0, r1) = window(i, h, oh);
                    for j in 0..ow {
                        let (c0, c1) = window(j, w, ow);
                        let sum: f32 = (r0..r1).map(|r| xp[r * w + c0..r * w + c1].iter().sum::<f32>()).sum();
                        yp[i * ow + j] = sum / ((r1 - r0) * (c1 - c0)) as f32;
                    }
                }
            }
        }
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (x, dy) = (io.inputs[0].f32("adaptive avgpool")?, io.d_outputs[0]);
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        let [_, _, h, w] = nchw(|| self.describe(), x.shape)?;
        let (oh, ow) = self.out;
        dx.resize(x.shape);
        dx.data_mut().fill(0.0);
        for (dxp, dyp) in dx.data_mut().chunks_exact_mut(h * w).zip(dy.data.chunks_exact(oh * ow)) {
            for i in 0..oh {
                let (r0, r1) = window(i, h, oh);
                for j in 0..ow {
                    let (c0, c1) = window(j, w, ow);
                    let g = dyp[i * ow + j] / ((r1 - r0) * (c1 - c0)) as f32;
                    for r in r0..r1 {
                        dxp[r * w + c0..r * w + c1].iter_mut().for_each(|d| *d += g);
                    }
                }
            }
        }
        Ok(())
    }
}
