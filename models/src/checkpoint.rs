//! Checkpoints in the safetensors format: a network's parameters and buffers, an
//! optimizer's state and string metadata, written atomically.

use simdnn_layers::{Layer, LayerError, Optimizer, Tensor};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid safetensors file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: tensor {name} is missing")]
    Missing { path: PathBuf, name: String },
    #[error("{path}: tensor {name} has shape {got:?} and type {dtype}, the model expects f32 {expected:?}")]
    Mismatch { path: PathBuf, name: String, expected: Vec<usize>, got: Vec<usize>, dtype: String },
    #[error("{path}: tensor {name} holds a NaN or infinite value")]
    NonFinite { path: PathBuf, name: String },
    #[error(transparent)]
    Layer(#[from] LayerError),
}

/// Distinguishes the temporary files of concurrent writers within one process.
static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Writes `bytes` to `path` through a hidden temporary file in the same directory, synced to
/// disk and renamed over `path`: a reader (or a crash) sees the old file or the new, never
/// half of one. The temporary file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.{}.tmp", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let temp = path.with_file_name(temp_name);
    let result = std::fs::File::create(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all() // on disk before the rename makes it visible
        })
        .and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Every tensor of a network (`model.` + parameter or buffer name) and optimizer
/// (`optim.` + state name), copied out in visiting order.
fn collect(net: &mut dyn Layer, opt: Option<&mut dyn Optimizer>) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    net.visit_params("", &mut |n, p| out.push((format!("model.{n}"), p.value.clone())));
    net.visit_buffers("", &mut |n, t| out.push((format!("model.{n}"), t.clone())));
    if let Some(opt) = opt {
        opt.visit_state(&mut |n, t| out.push((format!("optim.{n}"), t.clone())));
    }
    out
}

/// Saves `net` (and `opt`, if given) with `metadata` to `path`, atomically.
pub fn save(
    path: &Path,
    net: &mut dyn Layer,
    opt: Option<&mut dyn Optimizer>,
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let tensors = collect(net, opt);
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.data().iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape().to_vec()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map_err(|e| CheckpointError::Format { path: path.into(), reason: e.to_string() })?;
            Ok((n.clone(), view))
        })
        .collect::<Result<Vec<_>, CheckpointError>>()?;
    let data = safetensors::serialize(views, Some(metadata))
        .map_err(|e| CheckpointError::Format { path: path.into(), reason: e.to_string() })?;
    write_atomic(path, &data).map_err(|source| CheckpointError::Io { path: path.into(), source })
}

/// A checkpoint read into memory, checked to be valid safetensors.
pub struct Checkpoint {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Checkpoint {
    pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.into(), source })?;
        let ck = Checkpoint { path: path.into(), bytes };
        ck.tensors()?;
        Ok(ck)
    }

    fn tensors(&self) -> Result<safetensors::SafeTensors<'_>, CheckpointError> {
        safetensors::SafeTensors::deserialize(&self.bytes)
            .map_err(|e| CheckpointError::Format { path: self.path.clone(), reason: e.to_string() })
    }

    /// The string metadata.
    pub fn metadata(&self) -> Result<HashMap<String, String>, CheckpointError> {
        let (_, meta) = safetensors::SafeTensors::read_metadata(&self.bytes)
            .map_err(|e| CheckpointError::Format { path: self.path.clone(), reason: e.to_string() })?;
        Ok(meta.metadata().clone().unwrap_or_default())
    }

    /// Copies the checkpoint's tensors into `net` (and `opt`), checking that every tensor the
    /// model expects is present with the same shape, in f32, and finite.
    pub fn load_into(&self, net: &mut dyn Layer, opt: Option<&mut dyn Optimizer>) -> Result<(), CheckpointError> {
        let st = self.tensors()?;
        let mut result = Ok(());
        let mut load = |name: String, t: &mut Tensor| {
            if result.is_ok() {
                result = self.copy_one(&st, &name, t);
            }
        };
        net.visit_params("", &mut |n, p| load(format!("model.{n}"), &mut p.value));
        net.visit_buffers("", &mut |n, t| load(format!("model.{n}"), t));
        if let Some(opt) = opt {
            opt.visit_state(&mut |n, t| load(format!("optim.{n}"), t));
        }
        result
    }

    fn copy_one(&self, st: &safetensors::SafeTensors, name: &str, t: &mut Tensor) -> Result<(), CheckpointError> {
        let view =
            st.tensor(name).map_err(|_| CheckpointError::Missing { path: self.path.clone(), name: name.into() })?;
        if view.dtype() != safetensors::Dtype::F32 || view.shape() != t.shape() {
            return Err(CheckpointError::Mismatch {
                path: self.path.clone(),
                name: name.into(),
                expected: t.shape().to_vec(),
                got: view.shape().to_vec(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        for (v, b) in t.data_mut().iter_mut().zip(view.data().chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        if t.data().iter().any(|v| !v.is_finite()) {
            return Err(CheckpointError::NonFinite { path: self.path.clone(), name: name.into() });
        }
        Ok(())
    }
}
