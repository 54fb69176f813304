//! Models built from simdnn layers, the data they train on, and the training loop.

pub mod checkpoint;
pub mod data;
pub mod lenet5;
pub mod train;

pub use lenet5::{lenet5, LeNetActivation, LeNetPooling, LENET5_PARAMS};
