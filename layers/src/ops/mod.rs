//! The operations nodes compute, each with its forward and backward pass in one file.

mod activation;
mod adaptive_pool;
mod aggregate;
mod argmax;
mod arith;
mod batch_norm;
mod broadcast;
mod channels;
mod concat;
mod conv2d;
mod dropout;
mod embedding;
mod fixed_point;
mod gather;
mod gaussian;
mod linear;
mod loss;
mod matmul;
mod norm_bound;
mod permute;
mod pool;
mod rbf;
mod recurrent;
mod scatter;
mod segment;
mod shape;
mod slice;
mod sparse;
mod weight;

pub use activation::{Activation, ActivationKind, Softmax};
pub use adaptive_pool::AdaptiveAvgPool2d;
pub use aggregate::Aggregate;
pub use argmax::ArgMax;
pub use arith::{Add, Mul, Sub};
pub use batch_norm::BatchNorm;
pub use channels::{ChannelAffine, ChannelSelect};
pub use concat::{Concat, Split};
pub use conv2d::{Conv2d, Conv2dSpec};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use fixed_point::FixedPoint;
pub use gather::{Gather, IndexSelect};
pub use gaussian::{GaussianKl, GaussianSample};
pub use linear::Linear;
pub use loss::{argmax_rows, BceWithLogits, MeanSquaredError, SoftmaxCrossEntropy};
pub use matmul::MatMul;
pub use norm_bound::NormBound;
pub use permute::{Permute, Transpose};
pub use pool::{AvgPool2d, GlobalAvgPool, MaxPool2d, PoolSpec};
pub use rbf::Rbf;
pub use recurrent::{Cell, Recurrent, RecurrentSpec};
pub use scatter::ScatterAdd;
pub use segment::{SegmentKind, SegmentReduce};
pub use shape::{Flatten, Identity, Reshape};
pub use slice::Slice;
pub use sparse::{SampledDot, SparseMatMul};
pub use weight::Weight;

use crate::op::OpCtx;
use crate::tensor::{LayerName, TensorRef, ValueRef};
use crate::{LayerError, Tensor};
use simdnn_kernels::eltwise;

/// The single f32 input of an op named `layer` (formatted only for an error).
pub(crate) fn one_f32<'a>(layer: impl LayerName, inputs: &[ValueRef<'a>]) -> Result<TensorRef<'a>, LayerError> {
    match inputs {
        [x] => x.f32(layer),
        _ => Err(LayerError::InputCount { layer: layer.name(), expected: "1".into(), got: inputs.len() }),
    }
}

/// `dy` through a ReLU fused into an op's output `y` (zero where `y <= 0`), written into
/// `buf`; or `dy` itself when no ReLU is fused.
pub(crate) fn through_fused_relu<'a>(
    cx: &OpCtx,
    relu: bool,
    y: TensorRef<'a>,
    dy: TensorRef<'a>,
    buf: &'a mut Tensor,
) -> Result<&'a [f32], LayerError> {
    crate::tensor::check_grad("fused relu", y.shape, dy.shape)?;
    if !relu {
        return Ok(dy.data);
    }
    buf.resize(dy.shape);
    eltwise::relu_backward(cx.isa(), y.data, dy.data, buf.data_mut())?;
    Ok(buf.data())
}
