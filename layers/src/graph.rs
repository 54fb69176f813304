//! Non-chain composition: residual addition (ResNet) and channel concatenation of parallel
//! branches (DenseNet, SqueezeNet's fire module, Inception). Nested inside [`Sequential`]
//! stacks they express the directed acyclic graphs of those networks.
//!
//! [`Sequential`]: crate::Sequential

use crate::activation::through_fused_relu;
use crate::layer::{join_name, Ctx, Layer, Param};
use crate::tensor::{check_grad, nchw};
use crate::{LayerError, Sequential, Tensor};
use std::any::Any;

/// `y = relu?(body(x) + shortcut(x))`, the shortcut being the identity unless given
/// (a strided 1x1 convolution when the body changes the shape).
pub struct Residual {
    body: Sequential,
    shortcut: Option<Sequential>,
    relu: bool,
    y: Tensor,
    dy_masked: Tensor,
    dx: Tensor,
}

impl Residual {
    pub fn new(body: Sequential) -> Self {
        Residual {
            body,
            shortcut: None,
            relu: false,
            y: Tensor::default(),
            dy_masked: Tensor::default(),
            dx: Tensor::default(),
        }
    }
    pub fn with_shortcut(self, shortcut: Sequential) -> Self {
        Residual { shortcut: Some(shortcut), ..self }
    }
    /// ReLU after the addition (ResNet's basic and bottleneck blocks).
    pub fn with_relu(self) -> Self {
        Residual { relu: true, ..self }
    }
}

impl Layer for Residual {
    fn describe(&self) -> String {
        format!("residual ({} layers{})", self.body.len(), if self.shortcut.is_some() { ", projection" } else { "" })
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        let a = self.body.output_shape(input)?;
        let b = self.shortcut.as_ref().map_or(Ok(input.to_vec()), |s| s.output_shape(input))?;
        if a != b {
            return Err(LayerError::ShapeMismatch { what: "residual body and shortcut", a, b });
        }
        Ok(a)
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let body = self.body.forward(ctx, x)?;
        let short = match &mut self.shortcut {
            Some(s) => s.forward(ctx, x)?,
            None => x,
        };
        if body.shape() != short.shape() {
            let (a, b) = (body.shape().to_vec(), short.shape().to_vec());
            return Err(LayerError::ShapeMismatch { what: "residual body and shortcut", a, b });
        }
        self.y.resize(body.shape());
        for ((y, &a), &b) in self.y.data_mut().iter_mut().zip(body.data()).zip(short.data()) {
            let s = a + b;
            *y = if self.relu { s.max(0.0) } else { s };
        }
        Ok(&self.y)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn backward(&mut self, ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        let dy = through_fused_relu(ctx, self.relu, &self.y, dy, &mut self.dy_masked)?;
        self.dx.assign(self.body.backward(ctx, x, dy)?);
        let short = match &mut self.shortcut {
            Some(s) => s.backward(ctx, x, dy)?,
            None => dy,
        };
        self.dx.data_mut().iter_mut().zip(short.data()).for_each(|(d, g)| *d += g);
        Ok(&self.dx)
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.body.visit_params(&join_name(prefix, "body"), f);
        if let Some(s) = &mut self.shortcut {
            s.visit_params(&join_name(prefix, "shortcut"), f);
        }
    }

    fn visit_buffers(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Tensor)) {
        self.body.visit_buffers(&join_name(prefix, "body"), f);
        if let Some(s) = &mut self.shortcut {
            s.visit_buffers(&join_name(prefix, "shortcut"), f);
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Runs every branch on the same input and concatenates their NCHW outputs along the
/// channels; the input gradient is the sum of the branches'.
pub struct Concat {
    branches: Vec<Sequential>,
    y: Tensor,
    dy_branch: Tensor,
    dx: Tensor,
}

impl Concat {
    pub fn new(branches: Vec<Sequential>) -> Self {
        Concat { branches, y: Tensor::default(), dy_branch: Tensor::default(), dx: Tensor::default() }
    }

    /// Channels of each branch for an input shape, and the common `[n, _, h, w]`.
    fn split(&self, input: &[usize]) -> Result<(Vec<usize>, [usize; 4]), LayerError> {
        let mut channels = Vec::with_capacity(self.branches.len());
        let mut common: Option<[usize; 4]> = None;
        for b in &self.branches {
            let s = nchw("concat branch", &b.output_shape(input)?)?;
            if let Some(c) = common {
                if (c[0], c[2], c[3]) != (s[0], s[2], s[3]) {
                    return Err(LayerError::ShapeMismatch {
                        what: "concatenated branches",
                        a: c.to_vec(),
                        b: s.to_vec(),
                    });
                }
            }
            common = Some(s);
            channels.push(s[1]);
        }
        let [n, _, h, w] = common.ok_or(LayerError::EmptySequential)?;
        Ok((channels.clone(), [n, channels.iter().sum(), h, w]))
    }
}

impl Layer for Concat {
    fn describe(&self) -> String {
        format!("concat ({} branches)", self.branches.len())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        Ok(self.split(input)?.1.to_vec())
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        let (channels, shape) = self.split(x.shape())?;
        let [n, c_all, h, w] = shape;
        let plane = h * w;
        self.y.resize(&shape);
        let mut offset = 0;
        for (branch, &c) in self.branches.iter_mut().zip(&channels) {
            let out = branch.forward(ctx, x)?;
            for img in 0..n {
                let dst = &mut self.y.data_mut()[(img * c_all + offset) * plane..][..c * plane];
                dst.copy_from_slice(&out.data()[img * c * plane..][..c * plane]);
            }
            offset += c;
        }
        Ok(&self.y)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn backward(&mut self, ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        check_grad(|| self.describe(), &self.y, dy)?;
        let (channels, [n, c_all, h, w]) = self.split(x.shape())?;
        let plane = h * w;
        self.dx.resize(x.shape());
        self.dx.data_mut().fill(0.0);
        let mut offset = 0;
        for (branch, &c) in self.branches.iter_mut().zip(&channels) {
            self.dy_branch.resize(&[n, c, h, w]);
            for img in 0..n {
                let src = &dy.data()[(img * c_all + offset) * plane..][..c * plane];
                self.dy_branch.data_mut()[img * c * plane..][..c * plane].copy_from_slice(src);
            }
            let dx = branch.backward(ctx, x, &self.dy_branch)?;
            self.dx.data_mut().iter_mut().zip(dx.data()).for_each(|(d, g)| *d += g);
            offset += c;
        }
        Ok(&self.dx)
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        for (i, b) in self.branches.iter_mut().enumerate() {
            b.visit_params(&join_name(prefix, &i.to_string()), f);
        }
    }

    fn visit_buffers(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Tensor)) {
        for (i, b) in self.branches.iter_mut().enumerate() {
            b.visit_buffers(&join_name(prefix, &i.to_string()), f);
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
