//! Checkpoints in the safetensors format: the parameters and buffers of one or more models,
//! the state of their optimizers, and string metadata, written atomically.

use simdnn_layers::param::{in_scope, join_name};
use simdnn_layers::{IntTensor, LayerError, Optimizer, Params, Tensor};
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
    #[error(
        "{path}: tensor {name} has shape {got:?} and type {dtype}, the model expects {expected:?} (f32, f16 or bf16)"
    )]
    Mismatch { path: PathBuf, name: String, expected: Vec<usize>, got: Vec<usize>, dtype: String },
    #[error("{path}: tensor {name} is not part of the model (a checkpoint of another configuration?)")]
    Unexpected { path: PathBuf, name: String },
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

/// What a checkpoint holds: models' weights and optimizers' state, each under its own name
/// prefix (`model.c1.weight`, `optim.adam_m.c1.weight`; a GAN's `generator.*`,
/// `discriminator.*`, `opt_g.*`, `opt_d.*`).
pub enum Part<'a> {
    Params(&'a str, &'a mut Params),
    Optimizer(&'a str, &'a mut dyn Optimizer),
}

impl Part<'_> {
    fn prefix(&self) -> &str {
        match self {
            Part::Params(p, _) | Part::Optimizer(p, _) => p,
        }
    }

    /// Visits the part's tensors with their full names.
    fn visit(&mut self, f: &mut dyn FnMut(String, &mut Tensor)) {
        match self {
            Part::Params(prefix, params) => params.visit_mut(&mut |n, t| f(join_name(prefix, n), t)),
            Part::Optimizer(prefix, opt) => opt.visit_state(&mut |n, t| f(join_name(prefix, n), t)),
        }
    }
}

/// Saves `parts` with `metadata` to `path`, atomically.
pub fn save(path: &Path, parts: &mut [Part], metadata: HashMap<String, String>) -> Result<(), CheckpointError> {
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    for part in parts.iter_mut() {
        part.visit(&mut |name, t| tensors.push((name, encode(t.data()), t.shape().to_vec())));
    }
    write_safetensors(path, &tensors, metadata)
}

/// Saves named tensors (no metadata) to `path`, atomically: `simdnn infer`'s output.
pub fn save_tensors(path: &Path, tensors: &[(&str, &Tensor)]) -> Result<(), CheckpointError> {
    let tensors: Vec<_> = tensors.iter().map(|(n, t)| (n.to_string(), encode(t.data()), t.shape().to_vec())).collect();
    write_safetensors(path, &tensors, HashMap::new())
}

/// f32 values as little-endian bytes.
pub(crate) fn encode(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes f32 tensors `(name, bytes, shape)` and `metadata` to `path`, atomically.
pub(crate) fn write_safetensors(
    path: &Path,
    tensors: &[(String, Vec<u8>, Vec<usize>)],
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let views = tensors
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
        Checkpoint::from_bytes(path, bytes)
    }

    /// A checkpoint held in `bytes`, named `path` in errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Checkpoint, CheckpointError> {
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

    /// The names of the tensors the file holds, sorted.
    pub fn names(&self) -> Result<Vec<String>, CheckpointError> {
        let mut names: Vec<String> = self.tensors()?.names().into_iter().map(String::from).collect();
        names.sort();
        Ok(names)
    }

    /// The tensor `name`, whatever its shape (f32, or f16 or bf16 widened), checked finite.
    pub fn tensor(&self, name: &str) -> Result<Tensor, CheckpointError> {
        let st = self.tensors()?;
        let view =
            st.tensor(name).map_err(|_| CheckpointError::Missing { path: self.path.clone(), name: name.into() })?;
        self.check_one(&st, name, view.shape())?;
        let mut t = Tensor::zeros(view.shape());
        decode(view.dtype(), view.data(), t.data_mut()).expect("checked above");
        Ok(t)
    }

    /// The integer tensor `name` (stored as I64: token ids, sequence lengths).
    pub fn int_tensor(&self, name: &str) -> Result<IntTensor, CheckpointError> {
        let st = self.tensors()?;
        let view =
            st.tensor(name).map_err(|_| CheckpointError::Missing { path: self.path.clone(), name: name.into() })?;
        if view.dtype() != safetensors::Dtype::I64 {
            return Err(CheckpointError::Format {
                path: self.path.clone(),
                reason: format!("tensor {name} is {:?}, expected I64", view.dtype()),
            });
        }
        let data: Vec<i64> =
            view.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        Ok(IntTensor::from_slice(view.shape(), &data)?)
    }

    /// Copies the checkpoint's tensors into `parts`. Every tensor a part expects must be
    /// present with the same shape, in f32 (or f16 or bf16, widened), and finite, and the
    /// checkpoint may hold no tensor under a part's prefix that the part lacks: the error
    /// names the first mismatch. Nothing is changed unless everything fits.
    pub fn load(&self, parts: &mut [Part]) -> Result<(), CheckpointError> {
        self.load_skipping(parts, |_| false)
    }

    /// [`Checkpoint::load`], ignoring the file's tensors for which `skip` holds (such as
    /// PyTorch's `num_batches_tracked` counters).
    pub fn load_skipping(&self, parts: &mut [Part], skip: impl Fn(&str) -> bool) -> Result<(), CheckpointError> {
        let st = self.tensors()?;
        let mut expected = Vec::new();
        for part in parts.iter_mut() {
            part.visit(&mut |name, t| expected.push((name, t.shape().to_vec())));
        }
        for (name, shape) in &expected {
            self.check_one(&st, name, shape)?;
        }
        let prefixes: Vec<&str> = parts.iter().map(Part::prefix).collect();
        let mut names = st.names();
        names.sort();
        let extra = names.into_iter().find(|n| {
            prefixes.iter().any(|p| in_scope(n, p) && *n != *p) && !skip(n) && !expected.iter().any(|(e, _)| e == *n)
        });
        if let Some(name) = extra {
            return Err(CheckpointError::Unexpected { path: self.path.clone(), name: name.to_string() });
        }
        for part in parts.iter_mut() {
            part.visit(&mut |name, t| {
                let view = st.tensor(&name).expect("checked above");
                decode(view.dtype(), view.data(), t.data_mut()).expect("checked above");
            });
        }
        Ok(())
    }

    fn check_one(&self, st: &safetensors::SafeTensors, name: &str, shape: &[usize]) -> Result<(), CheckpointError> {
        let view =
            st.tensor(name).map_err(|_| CheckpointError::Missing { path: self.path.clone(), name: name.into() })?;
        if element_bytes(view.dtype()).is_none() || view.shape() != shape {
            return Err(CheckpointError::Mismatch {
                path: self.path.clone(),
                name: name.into(),
                expected: shape.to_vec(),
                got: view.shape().to_vec(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        if !all_finite(view.dtype(), view.data()) {
            return Err(CheckpointError::NonFinite { path: self.path.clone(), name: name.into() });
        }
        Ok(())
    }
}

/// The bytes of one element of the floating types a checkpoint may hold.
fn element_bytes(dtype: safetensors::Dtype) -> Option<usize> {
    match dtype {
        safetensors::Dtype::F32 => Some(4),
        safetensors::Dtype::F16 | safetensors::Dtype::BF16 => Some(2),
        _ => None,
    }
}

/// Widens the little-endian elements `bytes` of `dtype` into `out` (exactly: every f16 and
/// bf16 value is an f32 value). `None` for another type or a length mismatch.
pub(crate) fn decode(dtype: safetensors::Dtype, bytes: &[u8], out: &mut [f32]) -> Option<()> {
    let size = element_bytes(dtype)?;
    if bytes.len() != out.len() * size {
        return None;
    }
    for (v, b) in out.iter_mut().zip(bytes.chunks_exact(size)) {
        *v = element(dtype, b);
    }
    Some(())
}

/// Whether every element of `bytes` (of a type [`element_bytes`] accepts) is finite,
/// without a decoded copy.
fn all_finite(dtype: safetensors::Dtype, bytes: &[u8]) -> bool {
    element_bytes(dtype).is_some_and(|size| bytes.chunks_exact(size).all(|b| element(dtype, b).is_finite()))
}

/// One little-endian element of `dtype` (f32, bf16 or f16) as f32.
#[inline]
fn element(dtype: safetensors::Dtype, b: &[u8]) -> f32 {
    match dtype {
        safetensors::Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        safetensors::Dtype::BF16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        _ => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
    }
}

/// IEEE 754 binary16 to binary32.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = (h >> 10) & 0x1f;
    let fraction = (h & 0x3ff) as u32;
    match exponent {
        // Zero and subnormals: fraction * 2^-24.
        0 => sign * fraction as f32 * f32::powi(2.0, -24),
        0x1f => f32::from_bits(((h as u32 & 0x8000) << 16) | 0x7f80_0000 | (fraction << 13)),
        e => f32::from_bits(((h as u32 & 0x8000) << 16) | ((e as u32 + 112) << 23) | (fraction << 13)),
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_widens_exactly() {
        for (bits, value) in
            [(0x3c00, 1.0), (0xc000, -2.0), (0x3555, 0.333_251_95), (0x0001, 5.960_464_5e-8), (0x7bff, 65504.0)]
        {
            assert_eq!(f16_to_f32(bits), value, "{bits:#x}");
        }
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
    }
}
