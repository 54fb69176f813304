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

    /// Where example `i` sits among examples that continue one another (the windows of a
    /// text, whose recurrent state carries from one to the next): `(stream, position)`.
    /// `None` for independent examples.
    fn stream_position(&self, _i: usize) -> Option<(usize, usize)> {
        None
    }

    /// Whether the examples are windows of streams ([`Dataset::stream_position`]): the
    /// trainer then visits them in order, never shuffled.
    fn is_stream(&self) -> bool {
        false
    }

    /// The set as `Any`, for a family that needs more of its own data than batches (a
    /// forecaster's whole series); `None` by default.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// A training set, a held-out set, and where they came from.
pub struct Splits {
    pub train: Box<dyn Dataset>,
    pub test: Box<dyn Dataset>,
    /// For logs and checkpoint metadata, e.g. `idx:/data/mnist`.
    pub source: String,
    /// The number of classes of the labels.
    pub classes: usize,
    /// What else the data fixes about a model (a text's vocabulary), as configuration sizes
    /// for `Family::fit_data` to record.
    pub fixed: Vec<(&'static str, String)>,
}
