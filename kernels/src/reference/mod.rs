//! Naive reference implementations: the oracles the optimised kernels are tested against.
//! They accumulate in f64 and favour obviousness over speed.

pub mod conv;
pub mod eltwise;
pub mod gemm;
pub mod pool;
pub mod rnn;
pub mod sparse;
