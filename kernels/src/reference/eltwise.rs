//! Elementwise functions and softmax through f64 and the standard library, with the same
//! signatures as [`crate::eltwise`].

use crate::{Isa, KernelError};

fn map(x: &[f32], y: &mut [f32], f: impl Fn(f64) -> f64) -> Result<(), KernelError> {
    y.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v as f64) as f32);
    Ok(())
}

pub fn relu(_: Isa, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    map(x, y, |v| v.max(0.0))
}
pub fn exp(_: Isa, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    map(x, y, f64::exp)
}
pub fn sigmoid(_: Isa, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    map(x, y, |v| 1.0 / (1.0 + (-v).exp()))
}
pub fn tanh(_: Isa, x: &[f32], y: &mut [f32]) -> Result<(), KernelError> {
    map(x, y, f64::tanh)
}

/// Row-wise softmax (`log`: log-softmax) in f64.
pub fn softmax_f64(cols: usize, log: bool, x: &[f32]) -> Vec<f64> {
    x.chunks_exact(cols)
        .flat_map(|row| {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
            let sum: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            row.iter()
                .map(move |&v| if log { v as f64 - m - sum.ln() } else { (v as f64 - m).exp() / sum })
                .collect::<Vec<_>>()
        })
        .collect()
}
