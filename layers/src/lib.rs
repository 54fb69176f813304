//! Layers with forward and backward passes on simdnn's kernels, losses, optimizers and
//! initialisers.
//!
//! A [`Layer`] owns its output and its input gradient, reusing their storage from batch to
//! batch. [`Sequential`] chains layers; [`Residual`] and [`Concat`] nest stacks into the
//! directed acyclic graphs of ResNet, DenseNet and SqueezeNet. Backward passes accumulate
//! parameter gradients ([`zero_grads`] clears them); every backward pass is checked against
//! finite differences ([`gradcheck`]).
//!
//! ```
//! use simdnn_layers::{init, Activation, Conv2d, Conv2dSpec, Ctx, Flatten, Init, Layer, Linear, Sequential, Tensor};
//! use simdnn_kernels::gemm::GemmConfig;
//! let mut rng = init::rng(7);
//! let mut net = Sequential::new()
//!     .add("conv", Conv2d::new(Conv2dSpec::new(1, 4, 3).pad(1), Init::He, &mut rng)?.with_relu())
//!     .add("flat", Flatten::new())
//!     .add("fc", Linear::new(4 * 8 * 8, 10, Init::Glorot, &mut rng)?)
//!     .add("act", Activation::tanh());
//! let ctx = Ctx::eval(GemmConfig::from_env()?);
//! let y = net.forward(&ctx, &Tensor::zeros(&[2, 1, 8, 8]))?;
//! assert_eq!(y.shape(), &[2, 10]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod activation;
mod batch_norm;
mod conv2d;
mod dropout;
mod error;
pub mod gradcheck;
mod graph;
pub mod init;
mod layer;
mod linear;
mod loss;
pub mod optim;
mod pool;
mod reshape;
mod sequential;
mod tensor;

pub use activation::{Activation, ActivationKind, Softmax};
pub use batch_norm::BatchNorm;
pub use conv2d::{Conv2d, Conv2dSpec};
pub use dropout::Dropout;
pub use error::LayerError;
pub use graph::{Concat, Residual};
pub use init::Init;
pub use layer::{count_params, join_name, zero_grads, Ctx, Layer, Mode, Param};
pub use linear::Linear;
pub use loss::{argmax_rows, BceWithLogits, MeanSquaredError, SoftmaxCrossEntropy};
pub use optim::{Adam, LrSchedule, Optimizer, Sgd};
pub use pool::{AvgPool2d, GlobalAvgPool, MaxPool2d, PoolSpec};
pub use reshape::{Flatten, Identity};
pub use sequential::Sequential;
pub use tensor::Tensor;
