//! simdnn's hand-vectorised f32 kernels.
//!
//! Every kernel is written once, generic over [`isa::Simd`], and instantiated for each
//! instruction set: AVX-512F, AVX2+FMA, and a portable path on `wide`. The best path the
//! CPU supports is chosen at run time ([`Isa::current`]); `SIMDNN_ISA=portable|avx2|avx512`
//! forces one. A plain `cargo build --release` reaches every path: no `RUSTFLAGS` needed.
//!
//! The safe API validates every shape, stride and length and returns [`KernelError`] rather
//! than panicking; `unsafe` code stays inside the kernels.

pub mod conv;
pub mod eltwise;
mod error;
pub mod gemm;
pub mod isa;
pub mod optim;
pub mod peak;
pub mod pool;
pub mod rnn;
mod scratch;
pub mod sparse;
mod team;
pub mod threading;

#[cfg(feature = "reference")]
pub mod reference;
#[cfg(feature = "reference")]
pub mod testing;

pub use error::KernelError;
pub use isa::Isa;
pub use scratch::AlignedBuf;
