//! Tensors: an owned f32 tensor (a shape and 64-byte-aligned storage reused across calls),
//! borrowed views of one under another shape, and an integer tensor for labels, token ids
//! and edge lists.

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

    /// [`Tensor::resize`] to `shape` with its last axis replaced by `last` (no allocation
    /// once the storage is large enough).
    pub fn resize_last(&mut self, shape: &[usize], last: usize) {
        self.shape.clear();
        self.shape.extend_from_slice(&shape[..shape.len().saturating_sub(1)]);
        self.shape.push(last);
        let len = self.shape.iter().product();
        self.buf.resize(len);
    }

    /// [`Tensor::resize`] to `lead` with one more axis of `last` (no allocation once the
    /// storage is large enough).
    pub fn resize_append(&mut self, lead: &[usize], last: usize) {
        self.shape.clear();
        self.shape.extend_from_slice(lead);
        self.shape.push(last);
        let len = self.shape.iter().product();
        self.buf.resize(len);
    }

    /// Sets axis `axis` of the shape to `n` and resizes to match.
    pub fn resize_axis(&mut self, axis: usize, n: usize) {
        if let Some(d) = self.shape.get_mut(axis) {
            *d = n;
        }
        let len = self.shape.iter().product();
        self.buf.resize(len);
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

    /// Copies `other`'s shape and values into this tensor.
    pub fn assign(&mut self, other: &Tensor) {
        self.resize(other.shape());
        self.data_mut().copy_from_slice(other.data());
    }

    /// Gives the tensor another shape with the same number of values, without moving them.
    pub fn reshape(&mut self, shape: &[usize]) -> Result<(), LayerError> {
        check_reshape(self.shape(), shape)?;
        self.shape.clear();
        self.shape.extend_from_slice(shape);
        Ok(())
    }

    /// The tensor seen under another shape with the same number of values (no copy).
    pub fn view<'a>(&'a self, shape: &'a [usize]) -> Result<TensorRef<'a>, LayerError> {
        check_reshape(self.shape(), shape)?;
        Ok(TensorRef { shape, data: self.data() })
    }

    /// The whole tensor as a view.
    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef { shape: &self.shape, data: self.data() }
    }
}

fn check_reshape(from: &[usize], to: &[usize]) -> Result<(), LayerError> {
    let (a, b) = (from.iter().product::<usize>(), to.iter().product::<usize>());
    if a == b {
        Ok(())
    } else {
        Err(LayerError::ShapeMismatch { what: "reshape (element counts differ)", a: from.to_vec(), b: to.to_vec() })
    }
}

/// A borrowed f32 tensor: values and the shape they are seen under.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

impl<'a> TensorRef<'a> {
    pub fn shape(&self) -> &'a [usize] {
        self.shape
    }
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A dense row-major tensor of integers: class labels, token ids, edge lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntTensor {
    shape: Vec<usize>,
    data: Vec<i64>,
}

impl IntTensor {
    /// A tensor holding `data`, an error if its length disagrees with `shape`.
    pub fn from_slice(shape: &[usize], data: &[i64]) -> Result<IntTensor, LayerError> {
        let expected = shape.iter().product::<usize>();
        if expected != data.len() {
            return Err(LayerError::DataLength { shape: shape.to_vec(), expected, got: data.len() });
        }
        Ok(IntTensor { shape: shape.to_vec(), data: data.to_vec() })
    }

    /// Refills the tensor from `values` under `shape`, reusing its storage.
    pub fn assign(&mut self, shape: &[usize], values: impl IntoIterator<Item = i64>) -> Result<(), LayerError> {
        self.data.clear();
        self.data.extend(values);
        let expected = shape.iter().product::<usize>();
        if expected != self.data.len() {
            return Err(LayerError::DataLength { shape: shape.to_vec(), expected, got: self.data.len() });
        }
        self.shape.clear();
        self.shape.extend_from_slice(shape);
        Ok(())
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn data(&self) -> &[i64] {
        &self.data
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The element type of a value in a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    I64,
}

/// A borrowed integer tensor: values and the shape they are seen under.
#[derive(Clone, Copy, Debug)]
pub struct IntRef<'a> {
    pub shape: &'a [usize],
    pub data: &'a [i64],
}

impl<'a> IntRef<'a> {
    pub fn shape(&self) -> &'a [usize] {
        self.shape
    }
    pub fn data(&self) -> &'a [i64] {
        self.data
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl IntTensor {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> IntTensor {
        let mut t = IntTensor::default();
        t.resize(shape);
        t
    }

    /// Gives the tensor `shape`, reusing its storage (new values are zero; callers
    /// overwrite what they use).
    pub fn resize(&mut self, shape: &[usize]) {
        if self.shape != shape {
            self.shape.clear();
            self.shape.extend_from_slice(shape);
        }
        self.data.resize(shape.iter().product(), 0);
    }

    pub fn data_mut(&mut self) -> &mut [i64] {
        &mut self.data
    }

    /// The whole tensor as a view.
    pub fn as_ref(&self) -> IntRef<'_> {
        IntRef { shape: &self.shape, data: &self.data }
    }
}

/// A value an operation reads: an f32 tensor or an integer tensor (either possibly a view).
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    F32(TensorRef<'a>),
    Int(IntRef<'a>),
}

impl<'a> ValueRef<'a> {
    pub fn shape(&self) -> &'a [usize] {
        match self {
            ValueRef::F32(t) => t.shape,
            ValueRef::Int(t) => t.shape,
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            ValueRef::F32(_) => DType::F32,
            ValueRef::Int(_) => DType::I64,
        }
    }

    /// The f32 tensor, or an error naming `what` reads it.
    pub fn f32(&self, what: impl LayerName) -> Result<TensorRef<'a>, LayerError> {
        match self {
            ValueRef::F32(t) => Ok(*t),
            ValueRef::Int(t) => {
                Err(LayerError::InputType { layer: what.name(), expected: DType::F32, got: t.shape.to_vec() })
            }
        }
    }

    /// The integer tensor, or an error naming `what` reads it.
    pub fn int(&self, what: impl LayerName) -> Result<IntRef<'a>, LayerError> {
        match self {
            ValueRef::Int(t) => Ok(*t),
            ValueRef::F32(t) => {
                Err(LayerError::InputType { layer: what.name(), expected: DType::I64, got: t.shape.to_vec() })
            }
        }
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
pub trait LayerName {
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
pub(crate) fn check_grad(layer: impl LayerName, y: &[usize], dy: &[usize]) -> Result<(), LayerError> {
    if y == dy {
        Ok(())
    } else {
        Err(LayerError::GradShape { layer: layer.name(), expected: y.to_vec(), got: dy.to_vec() })
    }
}
