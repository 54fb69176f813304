//! simdnn: a deep-learning engine on hand-vectorised CPU kernels.
//!
//! This facade re-exports the member crates: [`kernels`] (SIMD kernels with run-time ISA
//! dispatch), [`layers`] and [`models`].

pub use simdnn_kernels as kernels;
pub use simdnn_layers as layers;
pub use simdnn_models as models;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// ARCHITECTURE.md's worked example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../ARCHITECTURE.md")]
pub struct ArchitectureDoctests;
