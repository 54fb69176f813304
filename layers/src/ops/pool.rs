//! Pooling: max (optionally fused with a preceding ReLU), average, global average.

use super::one_f32;
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, nchw, LayerName, TensorRef, ValueRef};
use crate::{LayerError, Tensor};
use simdnn_kernels::pool::{self, Pool2dGeom};

/// Window, stride, padding and ceil mode of a pooling layer (square windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub ceil_mode: bool,
}

impl PoolSpec {
    pub fn new(kernel: usize, stride: usize) -> Self {
        PoolSpec { kernel, stride, pad: 0, ceil_mode: false }
    }
    pub fn pad(self, pad: usize) -> Self {
        PoolSpec { pad, ..self }
    }
    pub fn ceil_mode(self) -> Self {
        PoolSpec { ceil_mode: true, ..self }
    }

    fn geom(&self, layer: impl LayerName, shape: &[usize]) -> Result<Pool2dGeom, LayerError> {
        let [n, c, h, w] = nchw(layer, shape)?;
        let g =
            Pool2dGeom::new(n, c, (h, w), self.kernel, self.stride).pad(self.pad, self.pad).ceil_mode(self.ceil_mode);
        g.validate()?;
        Ok(g)
    }

    fn describe(&self, what: &str) -> String {
        let mut d = format!("{what} {}x{} stride {}", self.kernel, self.kernel, self.stride);
        if self.pad > 0 {
            d += &format!(" pad {}", self.pad);
        }
        if self.ceil_mode {
            d += " ceil";
        }
        d
    }

    fn infer(&self, layer: &str, inputs: &[ValueInfo]) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(layer, inputs, 1)?;
        Ok(vec![ValueInfo::f32(&pooled_shape(&self.geom(layer, &inputs[0].shape)?))])
    }

    /// What a pooling forward starts from: its input, the geometry, the output sized.
    fn forward_io<'a, 'o>(
        &self,
        layer: impl Fn() -> String,
        inputs: &[ValueRef<'a>],
        outputs: &'o mut Outputs,
    ) -> Result<(TensorRef<'a>, Pool2dGeom, &'o mut Tensor), LayerError> {
        let x = one_f32(&layer, inputs)?;
        let g = self.geom(&layer, x.shape)?;
        let y = &mut outputs[0];
        y.resize(&pooled_shape(&g));
        Ok((x, g, y))
    }

    /// What a pooling backward starts from: the geometry of input `x`, the output
    /// gradient checked against output `y`, and the input gradient `dx` sized (`None` when
    /// none is wanted).
    fn backward_io<'d>(
        &self,
        layer: impl Fn() -> String,
        x: ValueRef,
        y: TensorRef,
        dy: TensorRef,
        dx: &'d mut Option<&mut Tensor>,
    ) -> Result<Option<(Pool2dGeom, &'d mut Tensor)>, LayerError> {
        let x = x.f32(&layer)?;
        check_grad(&layer, y.shape, dy.shape)?;
        let g = self.geom(&layer, x.shape)?;
        let Some(dx) = dx.as_deref_mut() else { return Ok(None) };
        dx.resize(x.shape);
        Ok(Some((g, dx)))
    }
}

fn pooled_shape(g: &Pool2dGeom) -> [usize; 4] {
    [g.batch, g.channels, g.out_h(), g.out_w()]
}

/// Max pooling; with [`MaxPool2d::with_relu`], `max(0, max over the window)` in one pass.
/// Training keeps each maximum's position (the op state) for backward.
pub struct MaxPool2d {
    spec: PoolSpec,
    relu: bool,
}

impl MaxPool2d {
    pub fn new(spec: PoolSpec) -> Self {
        MaxPool2d { spec, relu: false }
    }
    /// Rectifies the input first (ReLU then max pooling, fused: the input is read once).
    pub fn with_relu(self) -> Self {
        MaxPool2d { relu: true, ..self }
    }
}

impl Op for MaxPool2d {
    fn describe(&self) -> String {
        self.spec.describe(if self.relu { "relu+maxpool" } else { "maxpool" })
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        self.spec.infer(&self.describe(), inputs)
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let (x, g, y) = self.spec.forward_io(|| self.describe(), inputs, outputs)?;
        let argmax = if cx.is_train() {
            state.indices.resize(g.output_len(), 0);
            Some(&mut state.indices[..])
        } else {
            None
        };
        let f = if self.relu { pool::relu_max_pool2d_forward } else { pool::max_pool2d_forward };
        f(cx.cfg(), &g, x.data, y.data_mut(), argmax)?;
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Backward { inputs, outputs, d_outputs, d_inputs, state, .. } = io;
        let (y, dy) = (outputs[0], d_outputs[0]);
        let Some((g, dx)) = self.spec.backward_io(|| self.describe(), inputs[0], y, dy, &mut d_inputs[0])? else {
            return Ok(());
        };
        let argmax = &state.indices;
        if self.relu {
            pool::relu_max_pool2d_backward(&g, y.data, dy.data, argmax, dx.data_mut())?;
        } else {
            pool::max_pool2d_backward(&g, dy.data, argmax, dx.data_mut())?;
        }
        Ok(())
    }
}

/// Average pooling. `count_pad` follows PyTorch's `count_include_pad` (default true).
pub struct AvgPool2d {
    spec: PoolSpec,
    count_pad: bool,
}

impl AvgPool2d {
    pub fn new(spec: PoolSpec) -> Self {
        AvgPool2d { spec, count_pad: true }
    }
    /// Divides by the number of input elements in the window, not counting padding.
    pub fn exclude_pad(self) -> Self {
        AvgPool2d { count_pad: false, ..self }
    }
}

impl Op for AvgPool2d {
    fn describe(&self) -> String {
        self.spec.describe("avgpool")
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        self.spec.infer(&self.describe(), inputs)
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (x, g, y) = self.spec.forward_io(|| self.describe(), inputs, outputs)?;
        pool::avg_pool2d_forward(cx.cfg(), &g, self.count_pad, x.data, y.data_mut())?;
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let dy = io.d_outputs[0];
        let Some((g, dx)) =
            self.spec.backward_io(|| self.describe(), io.inputs[0], io.outputs[0], dy, &mut io.d_inputs[0])?
        else {
            return Ok(());
        };
        pool::avg_pool2d_backward(&g, self.count_pad, dy.data, dx.data_mut())?;
        Ok(())
    }
}

/// The mean of each channel plane: `[n, c, h, w] -> [n, c]` (ready for a
/// [`crate::ops::Linear`]).
#[derive(Default)]
pub struct GlobalAvgPool;

impl GlobalAvgPool {
    pub fn new() -> Self {
        GlobalAvgPool
    }
}

impl Op for GlobalAvgPool {
    fn describe(&self) -> String {
        "global avgpool".into()
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32("global avgpool", inputs, 1)?;
        let [n, c, _, _] = nchw("global avgpool", &inputs[0].shape)?;
        Ok(vec![ValueInfo::f32(&[n, c])])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32("global avgpool", inputs)?;
        let [n, c, h, w] = nchw("global avgpool", x.shape)?;
        let y = &mut outputs[0];
        y.resize(&[n, c]);
        pool::global_avg_pool_forward(cx.cfg(), h * w, x.data, y.data_mut())?;
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (x, dy) = (io.inputs[0].f32("global avgpool")?, io.d_outputs[0]);
        check_grad("global avgpool", io.outputs[0].shape, dy.shape)?;
        let [_, _, h, w] = nchw("global avgpool", x.shape)?;
        dx.resize(x.shape);
        pool::global_avg_pool_backward(h * w, dy.data, dx.data_mut())?;
        Ok(())
    }
}
