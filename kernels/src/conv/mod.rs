//! 2-D convolution: forward for inference and training, and the three backward passes.
//!
//! Tensors are NCHW f32 slices (PyTorch's layout); [`Conv2dGeom`] gives every shape. Each
//! image and group is one GEMM on the blocked SGEMM, `y_g = W_g * col(x_g)`, with bias and
//! ReLU fused into its epilogue; a 1x1 stride-1 unpadded convolution multiplies the input
//! planes directly, with no im2col.
//!
//! The course's example, a 5x5 binary image and a 3x3 filter, gives its 3x3 feature map:
//!
//! ```
//! use simdnn_kernels::conv::{conv2d_forward, Conv2dGeom, ConvAlgo};
//! use simdnn_kernels::gemm::GemmConfig;
//! let x = [1., 1., 1., 0., 0., 0., 1., 1., 1., 0., 0., 0., 1., 1., 1., 0., 0., 1., 1., 0., 0., 1., 1., 0., 0.];
//! let w = [1., 0., 1., 0., 1., 0., 1., 0., 1.];
//! let mut y = [0.0; 9];
//! let geom = Conv2dGeom::new(1, 1, (5, 5), 1, (3, 3));
//! conv2d_forward(&GemmConfig::from_env()?, &geom, ConvAlgo::Auto, &x, &w, None, false, &mut y)?;
//! assert_eq!(y, [4., 3., 4., 2., 4., 3., 2., 3., 4.]);
//! # Ok::<(), simdnn_kernels::KernelError>(())
//! ```

mod algo;
mod backward_bias;
mod backward_input;
mod backward_weight;
mod batch_norm;
mod columns;
mod direct;
mod direct_rows;
mod direct_weight;
mod forward;
mod geometry;
mod im2col;
mod parts;
mod prepared;
mod winograd;

/// The named kernels of convolution.
pub(crate) const KERNELS: &[&[Instance]] =
    &[direct::INSTANCES, direct_rows::INSTANCES, direct_weight::INSTANCES, winograd::INSTANCES, im2col::INSTANCES];

pub use algo::ConvAlgo;
pub use backward_bias::{conv2d_backward_bias, conv2d_backward_bias_accumulate};
pub use backward_input::conv2d_backward_input;
pub use backward_weight::{conv2d_backward_weight, conv2d_backward_weight_accumulate};
pub use batch_norm::{fold_batch_norm, BatchNormParams};
pub use forward::conv2d_forward;
pub(crate) use forward::{run_forward, ForwardArgs};
pub(crate) use geometry::require_positive;
pub use geometry::Conv2dGeom;
pub use prepared::{conv2d_forward_prepared, PreparedConv};

use crate::isa::Instance;
