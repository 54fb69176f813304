//! One error variant per violated contract, worded for the user.

use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KernelError {
    #[error("unknown instruction set {given:?} (expected one of: portable, avx2, avx512)")]
    UnknownIsa { given: String },
    #[error("this CPU does not support the {isa} instruction set")]
    IsaUnsupported { isa: &'static str },
    #[error("invalid thread count {given:?} (expected a positive integer)")]
    BadThreadCount { given: String },
    #[error("{what}: leading dimension {ld} is smaller than the {cols} columns of a row-major matrix")]
    LeadingDimTooSmall { what: &'static str, ld: usize, cols: usize },
    #[error("{what}: a {rows}x{cols} matrix with leading dimension {ld} needs {need} elements, the slice has {got}")]
    SliceTooShort { what: &'static str, rows: usize, cols: usize, ld: usize, need: usize, got: usize },
    #[error("{what}: dimensions overflow the address space")]
    SizeOverflow { what: &'static str },
    #[error("inner dimensions differ: op(A) is {m}x{k}, op(B) is {k_b}x{n}")]
    InnerDimMismatch { m: usize, k: usize, k_b: usize, n: usize },
    #[error("C is {rows}x{cols}, but op(A)*op(B) is {m}x{n}")]
    OutputShapeMismatch { rows: usize, cols: usize, m: usize, n: usize },
    #[error("{what} bias has {got} values, expected {expected}")]
    BiasLength { what: &'static str, expected: usize, got: usize },
    #[error("B was packed for the {packed} path, but this call runs on {requested}")]
    PackedIsaMismatch { packed: &'static str, requested: &'static str },
    #[error("{what} must be at least 1")]
    ZeroSize { what: &'static str },
    #[error("{what} = {channels} is not divisible by groups = {groups}")]
    GroupsMismatch { what: &'static str, channels: usize, groups: usize },
    #[error("the {axis} of the kernel ({kernel}, dilation {dilation}) exceeds the padded input ({input} + 2 x {pad}): the output would be empty")]
    KernelLargerThanInput { axis: &'static str, input: usize, pad: usize, kernel: usize, dilation: usize },
    #[error("pooling padding {pad} along the {axis} exceeds half the window ({kernel})")]
    PoolPadding { axis: &'static str, pad: usize, kernel: usize },
    #[error("argmax entry {index} = {value} points outside its input plane of {plane} elements")]
    ArgmaxOutOfRange { index: usize, value: u32, plane: usize },
    #[error("the {algo} algorithm cannot compute this convolution: {reason}")]
    AlgoNotApplicable { algo: &'static str, reason: &'static str },
    #[error("BatchNorm statistics must have a non-negative variance and epsilon")]
    InvalidBatchNorm,
    #[error(
        "the convolution's geometry differs from the one its weights were prepared for (only the batch may differ)"
    )]
    PreparedGeometry,
    #[error("invalid sparse matrix: {reason}")]
    InvalidSparse { reason: String },
    #[error("{what} has {got} elements, the geometry needs {expected}")]
    TensorLength { what: &'static str, expected: usize, got: usize },
}
