//! The recurrent family: models over sequences built on the fused recurrent layers
//! (`simdnn_layers::ops::Recurrent`), registered like the image classifiers and trained by
//! the same loop.
//!
//! - [`charlm`]: a character-level language model, truncated backpropagation through time
//!   over streams of a text, and sampling;
//! - [`adding`]: the adding problem (Hochreiter & Schmidhuber 1997), long-range memory;
//! - [`gradients`]: how the gradient of the last step's loss fades back through time;
//! - [`forecast`]: one-step forecasting of a univariate series against naive baselines.

pub mod adding;
pub mod charlm;
pub mod forecast;
pub mod gradients;
pub mod regressor;
pub mod stack;
pub mod text;
