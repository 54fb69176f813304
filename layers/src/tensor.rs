//! An owned f32 tensor: a shape and 64-byte-aligned storage that is reused across calls.

use crate::LayerError;
use simdnn_kernels::AlignedBuf;

/// A dense row-major tensor (NCHW for images). Layers keep their outputs and gradients in
/// tensors that they resize on each call: after the first batch no memory is allocated
/// (or page-faulted) again unless the batch grows.
#[derive(Default)]
pub struct Tensor {
    shape: Vec<usize>,
    buf: AlignedBuf,
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        let mut t = Tensor::default();
        t.resize(shape);
        t.data_mut().fill(0.0);
        t
    }

    /// A tensor holding `data`, an error if its length disagrees with `shape`.
    pub fn from_slice(shape: &[usize], data: &[f32]) -> Result<Tensor, LayerError> {
        let expected = shape.iter().product::<usize>();
        if expected != data.len() {
            return Err(LayerError::DataLength { shape: shape.to_vec(), expected, got: data.len() });
        }
        let mut t = Tensor::default();
        t.resize(shape);
        t.data_mut().copy_from_slice(data);
        Ok(t)
    }

    /// Gives the tensor `shape`, reusing the storage when it is large enough. The contents
    /// are unspecified afterwards: callers overwrite what they use.
    pub fn resize(&mut self, shape: &[usize]) {
        if self.shape != shape {
            self.shape.clear();
            self.shape.extend_from_slice(shape);
        }
        self.buf.resize(shape.iter().product());
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn len(&self) -> usize {
        self.buf.as_slice().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn data(&self) -> &[f32] {
        self.buf.as_slice()
    }
    pub fn data_mut(&mut self) -> &mut [f32] {
        self.buf.as_mut_slice()
    }

    /// The size of the first axis (the batch), 0 for a scalar shape.
    pub fn batch(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Copies `other`'s shape and values into this tensor.
    pub fn assign(&mut self, other: &Tensor) {
        self.resize(other.shape());
        self.data_mut().copy_from_slice(other.data());
    }
}

impl Clone for Tensor {
    fn clone(&self) -> Tensor {
        let mut t = Tensor::default();
        t.assign(self);
        t
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.data() == other.data()
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?}", self.shape)
    }
}

/// A layer's name for error messages, built only when an error is reported (a layer's
/// description is formatted, so not on every call).
pub(crate) trait LayerName {
    fn name(self) -> String;
}

impl LayerName for &str {
    fn name(self) -> String {
        self.to_string()
    }
}

impl<F: FnOnce() -> String> LayerName for F {
    fn name(self) -> String {
        self()
    }
}

/// The `[n, c, h, w]` of a 4-D input, or an error naming `layer`.
pub(crate) fn nchw(layer: impl LayerName, shape: &[usize]) -> Result<[usize; 4], LayerError> {
    match *shape {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(LayerError::InputShape {
            layer: layer.name(),
            expected: "[batch, channels, height, width]".into(),
            got: shape.to_vec(),
        }),
    }
}

/// An error unless `dy` has the shape of the output `y` of the layer's last forward pass.
pub(crate) fn check_grad(layer: impl LayerName, y: &Tensor, dy: &Tensor) -> Result<(), LayerError> {
    if y.shape() == dy.shape() && !y.shape().is_empty() {
        Ok(())
    } else {
        Err(LayerError::GradShape { layer: layer.name(), expected: y.shape().to_vec(), got: dy.shape().to_vec() })
    }
}
