//! One error variant per violated contract, worded for the user.

use crate::tensor::DType;
use simdnn_kernels::KernelError;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Error)]
pub enum LayerError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("{layer}: expected input of shape {expected}, got {got:?}")]
    InputShape { layer: String, expected: String, got: Vec<usize> },
    #[error("{layer}: expected a {expected:?} input, got the other type (shape {got:?})")]
    InputType { layer: String, expected: DType, got: Vec<usize> },
    #[error("{layer}: takes {expected} inputs, got {got}")]
    InputCount { layer: String, expected: String, got: usize },
    #[error("a tensor of shape {shape:?} needs {expected} values, got {got}")]
    DataLength { shape: Vec<usize>, expected: usize, got: usize },
    #[error("{layer}: a gradient of shape {got:?} where the output is {expected:?}")]
    GradShape { layer: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("{what}: {got} labels for a batch of {expected}")]
    LabelCount { what: &'static str, expected: usize, got: usize },
    #[error("{what}: label {label} is out of range for {classes} classes")]
    LabelRange { what: &'static str, label: i64, classes: usize },
    #[error("{what}: index {index} is out of range for an axis of {len}")]
    IndexRange { what: &'static str, index: i64, len: usize },
    #[error("{what}: {problem}")]
    BadIndices { what: &'static str, problem: String },
    #[error("{what} must be {expected}, got {got}")]
    BadHyperParameter { what: &'static str, expected: &'static str, got: f64 },
    #[error("a sequential model with no layers has no output")]
    EmptySequential,
    #[error("{what}: shapes {a:?} and {b:?} differ")]
    ShapeMismatch { what: &'static str, a: Vec<usize>, b: Vec<usize> },
    #[error("parameter {name}: shape {got:?}, the model expects {expected:?}")]
    ParamShape { name: String, expected: Vec<usize>, got: Vec<usize> },

    // Building a graph.
    #[error("the name {name:?} is used twice (names of inputs, nodes and parameters are unique)")]
    DuplicateName { name: String },
    #[error("node {node:?} reads {input:?}, which no input or node of the graph produces")]
    UnknownValue { node: String, input: String },
    #[error("the graph has a cycle through the nodes {nodes:?}")]
    Cycle { nodes: Vec<String> },
    #[error("node {node:?}: {source}")]
    InNode { node: String, source: Box<LayerError> },
    #[error("the graph has no output named {name:?}")]
    UnknownOutput { name: String },
    #[error("the graph has no input named {name:?}")]
    UnknownInput { name: String },
    #[error("input {name:?} was not given")]
    MissingInput { name: String },
    #[error("input {name:?}: expected {expected}, got {got}")]
    InputMismatch { name: String, expected: String, got: String },
    #[error("no parameter is named {name:?}")]
    UnknownParam { name: String },
    #[error("parameter {name:?} is frozen: an optimizer cannot update it")]
    FrozenParam { name: String },
    #[error("backward needs a training-mode forward pass of the same state first")]
    NoForward,
    #[error("{layer}: wrote {got} values for an output of shape {expected:?}")]
    OutputShape { layer: String, expected: Vec<usize>, got: usize },
    #[error("this plan was built over the weights of another model")]
    OtherWeights,
    #[error("the optimizer is not attached to any parameters (call attach first)")]
    NotAttached,
}

impl LayerError {
    /// This error, attributed to graph node `node`.
    pub fn in_node(self, node: &str) -> LayerError {
        match self {
            e @ LayerError::InNode { .. } => e,
            e => LayerError::InNode { node: node.to_string(), source: Box::new(e) },
        }
    }
}
