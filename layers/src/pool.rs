//! Pooling layers: max (optionally fused with a preceding ReLU), average, global average.

use crate::layer::{Ctx, Layer};
use crate::tensor::{check_grad, nchw, LayerName};
use crate::{LayerError, Tensor};
use simdnn_kernels::pool::{self, Pool2dGeom};
use std::any::Any;

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
}

fn pooled_shape(g: &Pool2dGeom) -> [usize; 4] {
    [g.batch, g.channels, g.out_h(), g.out_w()]
}

/// Max pooling; with [`MaxPool2d::with_relu`], `max(0, max over the window)` in one pass.
pub struct MaxPool2d {
    spec: PoolSpec,
    relu: bool,
    y: Tensor,
    argmax: Vec<u32>,
    dx: Tensor,
}

impl MaxPool2d {
    pub fn new(spec: PoolSpec) -> Self {
        MaxPool2d { spec, relu: false, y: Tensor::default(), argmax: Vec::new(), dx: Tensor::default() }
    }
    /// Rectifies the input first (ReLU then max pooling, fused: the input is read once).
    pub fn with_relu(self) -> Self {
        MaxPool2d { relu: true, ..self }
    }
}

impl Layer for MaxPool2d {
    fn describe(&self) -> String {
        self.spec.describe(if self.relu { "relu+maxpool" } else { "maxpool" })
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        Ok(pooled_shape(&self.spec.geom(|| self.describe(), input)?).to_vec())
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let g = self.spec.geom(|| self.describe(), x.shape())?;
        self.y.resize(&pooled_shape(&g));
        let argmax = if ctx.is_train() {
            self.argmax.resize(g.output_len(), 0);
            Some(&mut self.argmax[..])
        } else {
            None
        };
        let f = if self.relu { pool::relu_max_pool2d_forward } else { pool::max_pool2d_forward };
        f(&ctx.cfg, &g, x.data(), self.y.data_mut(), argmax)?;
        Ok(&self.y)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn backward(&mut self, _ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        let g = self.spec.geom(|| self.describe(), x.shape())?;
        self.dx.resize(x.shape());
        if self.relu {
            pool::relu_max_pool2d_backward(&g, self.y.data(), dy.data(), &self.argmax, self.dx.data_mut())?;
        } else {
            pool::max_pool2d_backward(&g, dy.data(), &self.argmax, self.dx.data_mut())?;
        }
        Ok(&self.dx)
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Average pooling. `count_pad` follows PyTorch's `count_include_pad` (default true).
pub struct AvgPool2d {
    spec: PoolSpec,
    count_pad: bool,
    y: Tensor,
    dx: Tensor,
}

impl AvgPool2d {
    pub fn new(spec: PoolSpec) -> Self {
        AvgPool2d { spec, count_pad: true, y: Tensor::default(), dx: Tensor::default() }
    }
    /// Divides by the number of input elements in the window, not counting padding.
    pub fn exclude_pad(self) -> Self {
        AvgPool2d { count_pad: false, ..self }
    }
}

impl Layer for AvgPool2d {
    fn describe(&self) -> String {
        self.spec.describe("avgpool")
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        Ok(pooled_shape(&self.spec.geom(|| self.describe(), input)?).to_vec())
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let g = self.spec.geom(|| self.describe(), x.shape())?;
        self.y.resize(&pooled_shape(&g));
        pool::avg_pool2d_forward(&ctx.cfg, &g, self.count_pad, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn backward(&mut self, _ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        let g = self.spec.geom(|| self.describe(), x.shape())?;
        self.dx.resize(x.shape());
        pool::avg_pool2d_backward(&g, self.count_pad, dy.data(), self.dx.data_mut())?;
        Ok(&self.dx)
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The mean of each channel plane: `[n, c, h, w] -> [n, c]` (ready for a [`crate::Linear`]).
#[derive(Default)]
pub struct GlobalAvgPool {
    y: Tensor,
    dx: Tensor,
}

impl GlobalAvgPool {
    pub fn new() -> Self {
        GlobalAvgPool::default()
    }
}

impl Layer for GlobalAvgPool {
    fn describe(&self) -> String {
        "global avgpool".into()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        let [n, c, _, _] = nchw("global avgpool", input)?;
        Ok(vec![n, c])
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let [n, c, h, w] = nchw("global avgpool", x.shape())?;
        self.y.resize(&[n, c]);
        pool::global_avg_pool_forward(&ctx.cfg, h * w, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn backward(&mut self, _ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad("global avgpool", &self.y, dy)?;
        let [_, _, h, w] = nchw("global avgpool", x.shape())?;
        self.dx.resize(x.shape());
        pool::global_avg_pool_backward(h * w, dy.data(), self.dx.data_mut())?;
        Ok(&self.dx)
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
