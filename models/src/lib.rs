//! Models built as graphs of simdnn's operations, the data they train on, the generic
//! training loop, checkpoints, and the registry that names them for the command line.

pub mod checkpoint;
pub mod data;
pub mod dataset;
pub mod lenet5;
pub mod registry;
pub mod train;

pub use dataset::{Dataset, Splits};
pub use lenet5::{lenet5, LeNetActivation, LeNetPooling, LENET5_PARAMS};
pub use registry::{find, ModelEntry, Options, MODELS};
