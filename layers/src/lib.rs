//! Models as graphs of operations on simdnn's kernels: tensors, parameters, the [`Op`]s
//! (convolution, pooling, linear, activations, normalisation, losses, ...), the graph that
//! plans and runs them forward and backward, optimizers, initialisers and a gradient
//! checker. ARCHITECTURE.md at the top of the repository is the map.
//!
//! ```
//! use simdnn_layers::graph::Sequential;
//! use simdnn_layers::ops::{Activation, Conv2d, Conv2dSpec, Flatten, Linear};
//! use simdnn_layers::{Ctx, Feed, Init, State, Tensor};
//! use simdnn_kernels::gemm::GemmConfig;
//! let model = Sequential::new("image", &[2, 1, 8, 8], 7)
//!     .layer("conv", |p| Ok(Conv2d::new(p, Conv2dSpec::new(1, 4, 3).pad(1), Init::He)?.with_relu()))
//!     .add("flat", Flatten::new())
//!     .layer("fc", |p| Linear::new(p, 4 * 8 * 8, 10, Init::Glorot))
//!     .add("act", Activation::tanh())
//!     .build("y")?;
//! let (ctx, mut state) = (Ctx::eval(GemmConfig::from_env()?), State::new());
//! let x = Tensor::zeros(&[2, 1, 8, 8]);
//! model.forward(&ctx, &mut state, &[("image", Feed::from(&x))])?;
//! assert_eq!(model.output(&state, "y")?.shape, &[2, 10]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod gradcheck;
pub mod graph;
pub mod init;
pub mod message_passing;
pub mod op;
pub mod ops;
pub mod optim;
pub mod param;
mod tensor;

pub use error::LayerError;
pub use graph::{
    Feed, Feeds, GraphBuilder, Inputs, MemoryReport, Model, ModelRef, NodeSummary, Plan, Sequential, State,
};
pub use init::Init;
pub use op::{Ctx, Mode, Op, Outputs};
pub use optim::{Adam, LrSchedule, Optimizer, Select, Sgd};
pub use param::{BufferId, Fill, Grads, ParamId, ParamScope, Params};
pub use tensor::{DType, IntRef, IntTensor, LayerName, Tensor, TensorRef, ValueRef};
