//! One error variant per violated contract, worded for the user.

use simdnn_kernels::KernelError;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Error)]
pub enum LayerError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("{layer}: expected input of shape {expected}, got {got:?}")]
    InputShape { layer: String, expected: String, got: Vec<usize> },
    #[error("a tensor of shape {shape:?} needs {expected} values, got {got}")]
    DataLength { shape: Vec<usize>, expected: usize, got: usize },
    #[error(
        "{layer}: backward called before forward, or with a gradient of shape {got:?} where the output is {expected:?}"
    )]
    GradShape { layer: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("{what}: {got} labels for a batch of {expected}")]
    LabelCount { what: &'static str, expected: usize, got: usize },
    #[error("{what}: label {label} is out of range for {classes} classes")]
    LabelRange { what: &'static str, label: usize, classes: usize },
    #[error("{what} must be {expected}, got {got}")]
    BadHyperParameter { what: &'static str, expected: &'static str, got: f64 },
    #[error("a sequential stack with no layers has no output")]
    EmptySequential,
    #[error("{what}: shapes {a:?} and {b:?} differ")]
    ShapeMismatch { what: &'static str, a: Vec<usize>, b: Vec<usize> },
    #[error("parameter {name}: shape {got:?}, the model expects {expected:?}")]
    ParamShape { name: String, expected: Vec<usize>, got: Vec<usize> },
}
