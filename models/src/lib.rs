//! Models built as graphs of simdnn's operations, the data they train on, the generic
//! training loop, checkpoints, and the registry that names them for the command line.

pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod dataset;
pub mod gnn;
pub mod registry;
pub mod report;
pub mod sequence;
pub mod step;
#[doc(hidden)]
pub mod testing;
pub mod train;
pub mod weights;
pub mod zoo;

pub use dataset::{Dataset, Splits};
pub use registry::{find, Head, ModelEntry, Options, Shape, MODELS};
pub use step::{Evaluation, Metrics, Step};
pub use zoo::lenet5::{lenet5, LeNetActivation, LeNetPooling, LENET5_PARAMS};
