//! 2-D convolution layer, with optional fused ReLU, on the kernels' algorithms.

use crate::activation::through_fused_relu;
use crate::init::{Init, Rng};
use crate::layer::{visit_weight_bias, Ctx, Layer, Param};
use crate::tensor::{check_grad, nchw};
use crate::{BatchNorm, LayerError, Tensor};
use simdnn_kernels::conv::{self, BatchNormParams, Conv2dGeom, ConvAlgo, PreparedConv};
use std::any::Any;

/// The hyper-parameters of a convolution (PyTorch's `Conv2d` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub pad: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
    pub bias: bool,
}

impl Conv2dSpec {
    /// A square `kernel`, stride 1, no padding, one group, with a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv2dSpec {
            in_channels,
            out_channels,
            kernel: (kernel, kernel),
            stride: (1, 1),
            pad: (0, 0),
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
    pub fn stride(self, s: usize) -> Self {
        Conv2dSpec { stride: (s, s), ..self }
    }
    pub fn pad(self, p: usize) -> Self {
        Conv2dSpec { pad: (p, p), ..self }
    }
    pub fn dilation(self, d: usize) -> Self {
        Conv2dSpec { dilation: (d, d), ..self }
    }
    pub fn groups(self, g: usize) -> Self {
        Conv2dSpec { groups: g, ..self }
    }
    pub fn no_bias(self) -> Self {
        Conv2dSpec { bias: false, ..self }
    }

    /// The geometry for an input `[n, c, h, w]`.
    pub fn geom(&self, [n, c, h, w]: [usize; 4]) -> Conv2dGeom {
        Conv2dGeom::new(n, c, (h, w), self.out_channels, self.kernel)
            .stride(self.stride.0, self.stride.1)
            .pad(self.pad.0, self.pad.1)
            .dilation(self.dilation.0, self.dilation.1)
            .groups(self.groups)
    }

    fn weight_shape(&self) -> [usize; 4] {
        [self.out_channels, self.in_channels / self.groups.max(1), self.kernel.0, self.kernel.1]
    }
}

/// `y = relu?(conv(x, w) + b)` over NCHW tensors.
pub struct Conv2d {
    spec: Conv2dSpec,
    algo: ConvAlgo,
    relu: bool,
    weight: Param,
    bias: Option<Param>,
    skip_dx: bool,
    y: Tensor,
    dx: Tensor,
    /// `dy` through the fused ReLU.
    dy_masked: Tensor,
    /// Weights prepared for inference (the Winograd filter transform done once), with the
    /// input height and width they were prepared for. Dropped whenever the parameters may
    /// change: every `visit_params` (optimizer steps, gradient resets, checkpoint loads go
    /// through it) and BatchNorm folding.
    prepared: Option<(PreparedConv, (usize, usize))>,
}

impl Conv2d {
    /// A convolution with weights drawn by `init` (fan-in `C/groups * kh * kw`) and zero bias.
    /// An error if the channels are not divisible by the groups or a size is zero.
    pub fn new(spec: Conv2dSpec, init: Init, rng: &mut Rng) -> Result<Conv2d, LayerError> {
        // Validating a one-pixel-output geometry checks channels, groups and sizes once here.
        let (kh, kw) = spec.kernel;
        let span = |k: usize, d: usize| d.saturating_mul(k.saturating_sub(1)).saturating_add(1);
        spec.geom([1, spec.in_channels, span(kh, spec.dilation.0), span(kw, spec.dilation.1)]).pad(0, 0).validate()?;
        let shape = spec.weight_shape();
        let mut w = Tensor::zeros(&shape);
        let per_out = shape[1] * shape[2] * shape[3];
        init.fill(per_out, spec.out_channels / spec.groups * kh * kw, w.data_mut(), rng);
        Ok(Conv2d {
            spec,
            algo: ConvAlgo::Auto,
            relu: false,
            weight: Param::new(w, true),
            bias: spec.bias.then(|| Param::new(Tensor::zeros(&[spec.out_channels]), false)),
            skip_dx: false,
            y: Tensor::default(),
            dx: Tensor::default(),
            dy_masked: Tensor::default(),
            prepared: None,
        })
    }

    /// Applies ReLU in the convolution's epilogue (and its mask in backward).
    pub fn with_relu(self) -> Self {
        Conv2d { relu: true, ..self }
    }

    /// Forces an algorithm (default: `Auto`, the fastest for each shape).
    pub fn with_algo(self, algo: ConvAlgo) -> Self {
        Conv2d { algo, ..self }
    }

    pub fn spec(&self) -> &Conv2dSpec {
        &self.spec
    }

    /// Folds an inference-mode BatchNorm that follows this convolution into its weights and
    /// bias (the convolution gains a bias if it had none). `bn` should then be removed.
    pub fn fold_batch_norm(&mut self, bn: &BatchNorm) -> Result<(), LayerError> {
        self.prepared = None;
        let k = self.spec.out_channels;
        let mut bias = self.bias.take().unwrap_or_else(|| Param::new(Tensor::zeros(&[k]), false));
        let s = &self.spec;
        let g = s.geom([1, s.in_channels, s.kernel.0, s.kernel.1]).pad(0, 0).dilation(1, 1);
        let (gamma, beta, mean, var, eps) = bn.statistics();
        let params = BatchNormParams { gamma, beta, running_mean: mean, running_var: var, eps };
        let result = conv::fold_batch_norm(&g, &params, self.weight.value.data_mut(), bias.value.data_mut());
        self.bias = Some(bias);
        self.spec.bias = true;
        Ok(result?)
    }

    fn geom(&self, x: &[usize]) -> Result<Conv2dGeom, LayerError> {
        let dims = nchw(|| self.describe(), x)?;
        if dims[1] != self.spec.in_channels {
            return Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("[batch, {}, height, width]", self.spec.in_channels),
                got: x.to_vec(),
            });
        }
        let g = self.spec.geom(dims);
        g.validate()?;
        Ok(g)
    }
}

impl Layer for Conv2d {
    fn describe(&self) -> String {
        let s = &self.spec;
        let mut d = format!("conv2d {}->{} {}x{}", s.in_channels, s.out_channels, s.kernel.0, s.kernel.1);
        if s.stride != (1, 1) {
            d += &format!(" stride {}", s.stride.0);
        }
        if s.pad != (0, 0) {
            d += &format!(" pad {}", s.pad.0);
        }
        if s.groups != 1 {
            d += &format!(" groups {}", s.groups);
        }
        if self.relu {
            d += " +relu";
        }
        d
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        let g = self.geom(input)?;
        Ok(vec![g.batch, g.out_channels, g.out_h(), g.out_w()])
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let g = self.geom(x.shape())?;
        self.y.resize(&[g.batch, g.out_channels, g.out_h(), g.out_w()]);
        let bias = self.bias.as_ref().map(|b| b.value.data());
        if !ctx.is_train() {
            // Inference: weights prepared once and reused until the parameters change.
            let size = (g.in_h, g.in_w);
            if self.prepared.as_ref().is_none_or(|(_, s)| *s != size) {
                let p = PreparedConv::new(&ctx.cfg, &g, self.algo, self.weight.value.data())?;
                self.prepared = Some((p, size));
            }
            if let Some((p, _)) = &self.prepared {
                conv::conv2d_forward_prepared(&ctx.cfg, &g, p, x.data(), bias, self.relu, self.y.data_mut())?;
                return Ok(&self.y);
            }
        }
        conv::conv2d_forward(
            &ctx.cfg,
            &g,
            self.algo,
            x.data(),
            self.weight.value.data(),
            bias,
            self.relu,
            self.y.data_mut(),
        )?;
        Ok(&self.y)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn backward(&mut self, ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        let g = self.geom(x.shape())?;
        let dy = through_fused_relu(ctx, self.relu, &self.y, dy, &mut self.dy_masked)?;
        conv::conv2d_backward_weight_accumulate(&ctx.cfg, &g, x.data(), dy.data(), self.weight.grad.data_mut())?;
        if let Some(b) = &mut self.bias {
            conv::conv2d_backward_bias_accumulate(&g, dy.data(), b.grad.data_mut())?;
        }
        if self.skip_dx {
            self.dx.resize(&[0]);
        } else {
            self.dx.resize(x.shape());
            conv::conv2d_backward_input(&ctx.cfg, &g, self.weight.value.data(), dy.data(), self.dx.data_mut())?;
        }
        Ok(&self.dx)
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.prepared = None;
        visit_weight_bias(prefix, &mut self.weight, self.bias.as_mut(), f);
    }

    fn skip_input_grad(&mut self) {
        self.skip_dx = true;
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
