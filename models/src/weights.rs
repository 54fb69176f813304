//! Weights files: a model's parameters and buffers in safetensors under its tensor names
//! (torchvision's state-dict names for the models torchvision has: the zoo's node names are
//! its module paths), with metadata recording the model, its options and its shape.
//! `scripts/convert_pytorch.py` writes one from a PyTorch checkpoint; a training checkpoint
//! of `simdnn train` (its tensors under `model.`) reads as one too.

use crate::checkpoint::{self, Checkpoint, CheckpointError, Part};
use crate::registry::{Head, ModelEntry, Options, RegistryError, Shape};
use crate::train::MODEL_PREFIX;
use crate::zoo::Convention;
use simdnn_layers::param::join_name;
use simdnn_layers::Model;
use std::collections::HashMap;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WeightsError {
    #[error(transparent)]
    File(#[from] CheckpointError),
    #[error("{path}: {source}")]
    Model { path: String, source: RegistryError },
    #[error(transparent)]
    Layer(#[from] simdnn_layers::LayerError),
    #[error("{path} holds none of the model's tensors (it has {found}): weights of another model?")]
    OtherModel { path: String, found: String },
}

/// PyTorch's batch-norm step counters: state dicts carry them, inference has no use for them.
fn is_step_counter(name: &str) -> bool {
    name.ends_with(".num_batches_tracked")
}

/// A weights file read into memory.
pub struct Weights {
    file: Checkpoint,
    metadata: HashMap<String, String>,
    /// `""`, or `model` for a training checkpoint.
    prefix: &'static str,
    path: String,
}

impl Weights {
    pub fn read(path: &Path) -> Result<Weights, WeightsError> {
        Weights::from_checkpoint(path, Checkpoint::read(path)?)
    }

    /// A weights file held in `bytes`, named `path` in errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Weights, WeightsError> {
        Weights::from_checkpoint(path, Checkpoint::from_bytes(path, bytes)?)
    }

    fn from_checkpoint(path: &Path, file: Checkpoint) -> Result<Weights, WeightsError> {
        let metadata = file.metadata()?;
        let names = file.names()?;
        let scoped = format!("{MODEL_PREFIX}.");
        let prefix = if names.iter().any(|n| n.starts_with(&scoped)) { MODEL_PREFIX } else { "" };
        Ok(Weights { file, metadata, prefix, path: path.display().to_string() })
    }

    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The options and shape the file records for `entry` (an error if it names another
    /// model); a file without metadata (`safetensors.torch.save_file` of a state dict) has
    /// the default options and the native shape.
    pub fn recorded(&self, entry: &ModelEntry) -> Result<(Options, Shape), WeightsError> {
        let model_error = |source| WeightsError::Model { path: self.path.clone(), source };
        if self.metadata.contains_key("model") {
            entry.from_metadata(&self.metadata).map_err(model_error)
        } else {
            let native = entry.image("a weights file").map_err(model_error)?.native;
            Ok((entry.options([]).map_err(model_error)?, native))
        }
    }

    /// Builds `entry` with `options` for `shape` (batches of `batch`) and loads the file into
    /// it: every tensor the model has must be there with its shape. An inference model
    /// ([`Head::Logits`]) has its batch norms folded and ReLUs fused.
    pub fn build(
        &self,
        entry: &ModelEntry,
        options: &Options,
        shape: &Shape,
        batch: usize,
        head: Head,
    ) -> Result<Model, WeightsError> {
        let model_error = |source| WeightsError::Model { path: self.path.clone(), source };
        let mut model = entry.build(options, shape, batch, 0, Convention::Torchvision, head).map_err(model_error)?;
        self.load(&mut model)?;
        if head == Head::Logits {
            model.prepare_inference()?;
        }
        Ok(model)
    }

    /// Copies the file's tensors into `model`'s parameters and buffers.
    pub fn load(&self, model: &mut Model) -> Result<(), WeightsError> {
        let names = self.file.names()?;
        let mut shared = false;
        model.params().visit(&mut |name, _| shared |= names.iter().any(|n| n == &join_name(self.prefix, name)));
        if !shared && model.params().count() > 0 {
            let mut found: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
            if names.len() > 3 {
                found.push("...");
            }
            return Err(WeightsError::OtherModel { path: self.path.clone(), found: found.join(", ") });
        }
        self.file.load_skipping(&mut [Part::Params(self.prefix, model.params_mut())], is_step_counter)?;
        Ok(())
    }
}

/// Saves `model`'s weights, an `entry` model with `options` and `shape`, to `path`
/// atomically, under the names [`Weights::build`] reads.
pub fn save_weights(
    path: &Path,
    entry: &ModelEntry,
    options: &Options,
    shape: &Shape,
    model: &mut Model,
) -> Result<(), CheckpointError> {
    checkpoint::save(path, &mut [Part::Params("", model.params_mut())], entry.metadata(options, shape))
}
