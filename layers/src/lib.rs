//! Neural-network layers with forward and backward passes, built on `simdnn-kernels`.
//!
//! The layer set (convolution, pooling, fully connected, activations, losses, optimizers)
//! is tracked as its own issue; this crate currently re-exports the kernels it builds on.

pub use simdnn_kernels as kernels;
