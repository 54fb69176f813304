//! What the trainer reads: a data set of examples, any of which it can gather into a batch
//! of a model's inputs.

use simdnn_layers::{Inputs, LayerError};

/// A set of examples (labelled images, sequences, graphs) the trainer draws batches from.
///
/// `fill` writes the examples `indices`, in that order, into the model's named inputs
/// (resizing the tensors there, whose storage is reused batch after batch).
pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError>;
}

/// A training set, a held-out set, and where they came from.
pub struct Splits {
    pub train: Box<dyn Dataset>,
    pub test: Box<dyn Dataset>,
    /// For logs and checkpoint metadata, e.g. `idx:/data/mnist`.
    pub source: String,
    /// The number of classes of the labels.
    pub classes: usize,
}
