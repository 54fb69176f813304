//! What a node of a graph computes: the [`Op`] trait, and what its calls get.
//!
//! An op is a stateless description (its hyper-parameters and the ids of the parameters it
//! reads), shared by every caller of a model. Per call it gets its inputs, buffers for its
//! outputs, and an [`OpState`] of the caller's own, where it keeps what backward needs.

use crate::init::Rng;
use crate::param::{BufferId, Grads, ParamId, Params};
use crate::tensor::{DType, IntTensor, TensorRef, ValueRef};
use crate::{LayerError, Tensor};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_kernels::Isa;
use std::any::Any;

/// Training (batch statistics, dropout active, saved state for backward) or inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// The kernel path and thread count, and the mode, of a pass.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub cfg: GemmConfig,
    pub mode: Mode,
}

impl Ctx {
    pub fn train(cfg: GemmConfig) -> Ctx {
        Ctx { cfg, mode: Mode::Train }
    }
    pub fn eval(cfg: GemmConfig) -> Ctx {
        Ctx { cfg, mode: Mode::Eval }
    }
    pub fn isa(&self) -> Isa {
        self.cfg.isa()
    }
    pub fn is_train(&self) -> bool {
        self.mode == Mode::Train
    }
}

/// What an op's call sees besides its tensors: the pass and the model's weights.
#[derive(Clone, Copy)]
pub struct OpCtx<'a> {
    pub ctx: Ctx,
    pub params: &'a Params,
}

impl OpCtx<'_> {
    pub fn cfg(&self) -> &GemmConfig {
        &self.ctx.cfg
    }
    pub fn isa(&self) -> Isa {
        self.ctx.isa()
    }
    pub fn is_train(&self) -> bool {
        self.ctx.is_train()
    }
    /// The value of parameter `id`.
    pub fn param(&self, id: ParamId) -> &Tensor {
        self.params.value(id)
    }
}

/// A value's shape and element type, as shape inference sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueInfo {
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl ValueInfo {
    pub fn f32(shape: &[usize]) -> ValueInfo {
        ValueInfo { shape: shape.to_vec(), dtype: DType::F32 }
    }
    pub fn int(shape: &[usize]) -> ValueInfo {
        ValueInfo { shape: shape.to_vec(), dtype: DType::I64 }
    }
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One caller's state of one node: saved tensors and scratch, reused call after call (no
/// allocation once they have their sizes).
#[derive(Default)]
pub struct OpState {
    pub tensors: Vec<Tensor>,
    pub indices: Vec<u32>,
    pub rng: Option<Rng>,
    /// A structure the op prepares once per caller and reuses (a CSR adjacency, packed
    /// recurrent weights): see [`OpState::prepared`].
    prepared: Option<Box<dyn Any + Send + Sync>>,
}

impl OpState {
    /// The caller's prepared structure of type `T`, created by `T::default()` on first use
    /// (or when a previous one was of another type).
    pub fn prepared<T: Any + Default + Send + Sync>(&mut self) -> &mut T {
        if !self.prepared.as_ref().is_some_and(|p| p.is::<T>()) {
            self.prepared = Some(Box::<T>::default());
        }
        self.prepared.as_mut().and_then(|p| p.downcast_mut::<T>()).expect("set to a T above")
    }

    /// Saved tensor `i`, created empty on first use.
    pub fn tensor(&mut self, i: usize) -> &mut Tensor {
        if self.tensors.len() <= i {
            self.tensors.resize_with(i + 1, Tensor::default);
        }
        &mut self.tensors[i]
    }
}

/// The outputs of a forward call: a tensor per output to resize and fill, seen as a slice
/// (`outputs[k]`) for the f32 outputs; [`Outputs::int`] gives an integer output (an
/// argmax, sampled indices, gathered edge lists).
pub struct Outputs<'a> {
    f32: &'a mut [Tensor],
    int: &'a mut [IntTensor],
}

impl<'a> Outputs<'a> {
    /// Output buffers by position: `f32[k]` for an f32 output `k`, `int[k]` for an integer
    /// one (the other slot of each position is unused).
    pub fn new(f32: &'a mut [Tensor], int: &'a mut [IntTensor]) -> Outputs<'a> {
        Outputs { f32, int }
    }

    /// Integer output `k`, or an error naming `layer` if the op has no output `k`.
    pub fn int(&mut self, k: usize, layer: &str) -> Result<&mut IntTensor, LayerError> {
        let got = self.int.len();
        self.int.get_mut(k).ok_or_else(|| LayerError::InputCount {
            layer: layer.to_string(),
            expected: format!("an output {k}"),
            got,
        })
    }
}

impl std::ops::Deref for Outputs<'_> {
    type Target = [Tensor];
    fn deref(&self) -> &[Tensor] {
        self.f32
    }
}

impl std::ops::DerefMut for Outputs<'_> {
    fn deref_mut(&mut self) -> &mut [Tensor] {
        self.f32
    }
}

/// What a backward call gets. Each wanted input gradient is overwritten (the op resizes it
/// to its input's shape); parameter gradients are added into [`Grads`], for the trainable
/// parameters only.
pub struct Backward<'a, 'b> {
    pub inputs: &'b [ValueRef<'a>],
    pub outputs: &'b [TensorRef<'a>],
    pub d_outputs: &'b [TensorRef<'a>],
    /// `None` where no gradient is needed (an integer input, a graph input, a branch with
    /// nothing trainable before it).
    pub d_inputs: &'b mut [Option<&'a mut Tensor>],
    pub grads: &'b mut Grads,
    pub state: &'b mut OpState,
}

/// A node's computation.
///
/// Implementations keep no per-call state in `self` (it is shared by every caller of a
/// model): what backward needs goes into the [`OpState`]. See ARCHITECTURE.md for a worked
/// example of adding one.
pub trait Op: AsAny + Send + Sync + 'static {
    /// A one-line description, e.g. `conv2d 1->6 5x5`.
    fn describe(&self) -> String;

    /// The parameters the op reads.
    fn params(&self) -> Vec<ParamId> {
        Vec::new()
    }

    /// The buffers the op reads (running statistics), for summaries that count them.
    fn buffers(&self) -> Vec<BufferId> {
        Vec::new()
    }

    /// The outputs' shapes and types for inputs `inputs`, or the error `forward` would give.
    fn infer(&self, inputs: &[ValueInfo], params: &Params) -> Result<Vec<ValueInfo>, LayerError>;

    /// For an op whose single output is one of its inputs under another shape (reshape,
    /// flatten): which input. The graph then shares the storage and never calls `forward`.
    fn view_of(&self) -> Option<usize> {
        None
    }

    /// Computes the outputs (each resized by the op to its inferred shape).
    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError>;

    /// Given the output gradients, writes the wanted input gradients and adds the parameter
    /// gradients (after a training-mode forward of the same state).
    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError>;

    /// Multiply-accumulates of one forward pass at these shapes (for summaries).
    fn macs(&self, _inputs: &[ValueInfo], _outputs: &[ValueInfo]) -> u64 {
        0
    }
}

/// The concrete type behind a `dyn Op`, for graph rewrites that need it (batch-norm
/// folding): every op has it through the blanket implementation.
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An error unless an op got `n` inputs.
pub(crate) fn expect_inputs(layer: &str, n: usize, got: usize) -> Result<(), LayerError> {
    if n == got {
        Ok(())
    } else {
        Err(LayerError::InputCount { layer: layer.to_string(), expected: n.to_string(), got })
    }
}

/// The output of an op of one f32 input and one output of the same shape (activations,
/// dropout, normalisation).
pub(crate) fn same_as_input(layer: &str, inputs: &[ValueInfo]) -> Result<Vec<ValueInfo>, LayerError> {
    expect_f32(layer, inputs, 1)?;
    Ok(vec![ValueInfo::f32(&inputs[0].shape)])
}

/// An error unless an op got `n` inputs, all f32.
pub(crate) fn expect_f32(layer: &str, inputs: &[ValueInfo], n: usize) -> Result<(), LayerError> {
    expect_inputs(layer, n, inputs.len())?;
    match inputs.iter().find(|i| i.dtype != DType::F32) {
        Some(i) => Err(LayerError::InputType { layer: layer.to_string(), expected: DType::F32, got: i.shape.clone() }),
        None => Ok(()),
    }
}
