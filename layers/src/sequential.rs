//! A chain of named layers: the output of each is the input of the next.

use crate::layer::{join_name, Ctx, Layer, Param};
use crate::{BatchNorm, Conv2d, LayerError, Tensor};
use std::any::Any;

#[derive(Default)]
pub struct Sequential {
    layers: Vec<(String, Box<dyn Layer>)>,
    /// Stand-ins for an empty stack's output and input gradient, never read.
    empty: Tensor,
}

impl Sequential {
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends `layer`; `name` prefixes its parameters (`name.weight`).
    pub fn add(mut self, name: &str, layer: impl Layer + 'static) -> Self {
        self.push(name, Box::new(layer));
        self
    }

    pub fn push(&mut self, name: &str, layer: Box<dyn Layer>) {
        self.layers.push((name.to_string(), layer));
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// `(name, layer)` pairs in order.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &dyn Layer)> {
        self.layers.iter().map(|(n, l)| (n.as_str(), l.as_ref()))
    }

    /// The layer at `index`, for inspection and per-layer timing.
    pub fn layer_mut(&mut self, index: usize) -> &mut dyn Layer {
        self.layers[index].1.as_mut()
    }

    /// One line per layer: name, description, output shape and parameter count, for an
    /// input of shape `input`.
    pub fn summary(&mut self, input: &[usize]) -> Result<String, LayerError> {
        let mut shape = input.to_vec();
        let mut out = format!("{:<8} {:<28} {:<20} {:>10}\n", "name", "layer", "output", "params");
        let mut total = 0;
        for (name, layer) in &mut self.layers {
            shape = layer.output_shape(&shape)?;
            let params = crate::count_params(layer.as_mut());
            total += params;
            out += &format!("{:<8} {:<28} {:<20} {:>10}\n", name, layer.describe(), format!("{shape:?}"), params);
        }
        out += &format!("{:<8} {:<28} {:<20} {:>10}\n", "total", "", "", total);
        Ok(out)
    }

    /// Folds every BatchNorm that directly follows a convolution into that convolution's
    /// weights and bias, removing the BatchNorm (inference only: the running statistics
    /// become constants). Returns how many were folded.
    pub fn fold_batch_norms(&mut self) -> Result<usize, LayerError> {
        let mut folded = 0;
        let mut i = 0;
        while i + 1 < self.layers.len() {
            let (head, tail) = self.layers.split_at_mut(i + 1);
            let conv = head[i].1.as_any_mut().downcast_mut::<Conv2d>();
            let bn = tail[0].1.as_any_mut().downcast_mut::<BatchNorm>();
            if let (Some(conv), Some(bn)) = (conv, bn) {
                conv.fold_batch_norm(bn)?;
                self.layers.remove(i + 1);
                folded += 1;
            }
            i += 1;
        }
        for (_, layer) in &mut self.layers {
            if let Some(inner) = layer.as_any_mut().downcast_mut::<Sequential>() {
                folded += inner.fold_batch_norms()?;
            }
        }
        Ok(folded)
    }
}

impl Layer for Sequential {
    fn describe(&self) -> String {
        format!("sequential ({} layers)", self.layers.len())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        self.layers.iter().try_fold(input.to_vec(), |shape, (_, l)| l.output_shape(&shape))
    }

    fn forward(&mut self, ctx: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        if self.layers.is_empty() {
            return Err(LayerError::EmptySequential);
        }
        for i in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(i);
            let input = before.last().map_or(x, |(_, l)| l.output());
            rest[0].1.forward(ctx, input)?;
        }
        Ok(self.output())
    }

    fn output(&self) -> &Tensor {
        self.layers.last().map_or(&self.empty, |(_, l)| l.output())
    }

    fn backward(&mut self, ctx: &Ctx, x: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        if self.layers.is_empty() {
            return Err(LayerError::EmptySequential);
        }
        for i in (0..self.layers.len()).rev() {
            let (before, rest) = self.layers.split_at_mut(i);
            let ((_, layer), after) = rest.split_first_mut().ok_or(LayerError::EmptySequential)?;
            let input = before.last().map_or(x, |(_, l)| l.output());
            let grad = after.first().map_or(dy, |(_, l)| l.input_grad());
            layer.backward(ctx, input, grad)?;
        }
        Ok(self.input_grad())
    }

    fn input_grad(&self) -> &Tensor {
        self.layers.first().map_or(&self.empty, |(_, l)| l.input_grad())
    }

    fn visit_params(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        for (name, layer) in &mut self.layers {
            layer.visit_params(&join_name(prefix, name), f);
        }
    }

    fn visit_buffers(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Tensor)) {
        for (name, layer) in &mut self.layers {
            layer.visit_buffers(&join_name(prefix, name), f);
        }
    }

    fn skip_input_grad(&mut self) {
        if let Some((_, first)) = self.layers.first_mut() {
            first.skip_input_grad();
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
