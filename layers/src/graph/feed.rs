//! What a caller gives a graph's inputs: [`Feed`]s by name, from a slice of pairs or from
//! [`Inputs`] that a data loader refills batch after batch.

use crate::tensor::{DType, IntTensor, TensorRef};
use crate::Tensor;

/// A value given to a graph input.
#[derive(Clone, Copy, Debug)]
pub enum Feed<'a> {
    F32(TensorRef<'a>),
    Int(&'a IntTensor),
}

impl<'a> From<&'a Tensor> for Feed<'a> {
    fn from(t: &'a Tensor) -> Feed<'a> {
        Feed::F32(t.as_ref())
    }
}

impl<'a> From<&'a IntTensor> for Feed<'a> {
    fn from(t: &'a IntTensor) -> Feed<'a> {
        Feed::Int(t)
    }
}

impl<'a> Feed<'a> {
    pub(crate) fn shape(&self) -> &'a [usize] {
        match self {
            Feed::F32(t) => t.shape,
            Feed::Int(t) => t.shape(),
        }
    }
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Feed::F32(_) => DType::F32,
            Feed::Int(_) => DType::I64,
        }
    }
}

/// The values given to a graph's inputs, by name: a slice or array of `(name, Feed)`
/// pairs, or an [`Inputs`] a data loader fills batch after batch.
pub trait Feeds {
    /// The value given for input `name`.
    fn get(&self, name: &str) -> Option<Feed<'_>>;
    /// A name given that `known` rejects (a misspelt input).
    fn unknown(&self, known: &dyn Fn(&str) -> bool) -> Option<String>;
}

impl Feeds for [(&str, Feed<'_>)] {
    fn get(&self, name: &str) -> Option<Feed<'_>> {
        self.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }
    fn unknown(&self, known: &dyn Fn(&str) -> bool) -> Option<String> {
        self.iter().find(|(n, _)| !known(n)).map(|(n, _)| n.to_string())
    }
}

impl<const N: usize> Feeds for [(&str, Feed<'_>); N] {
    fn get(&self, name: &str) -> Option<Feed<'_>> {
        Feeds::get(self.as_slice(), name)
    }
    fn unknown(&self, known: &dyn Fn(&str) -> bool) -> Option<String> {
        Feeds::unknown(self.as_slice(), known)
    }
}

/// Named input tensors owned by the caller and refilled batch after batch (their storage
/// reused), for data loaders.
#[derive(Default)]
pub struct Inputs {
    f32: Vec<(String, Tensor)>,
    int: Vec<(String, IntTensor)>,
}

impl Inputs {
    pub fn new() -> Inputs {
        Inputs::default()
    }

    /// The f32 tensor for input `name`, created empty on first use.
    pub fn f32_mut(&mut self, name: &str) -> &mut Tensor {
        entry(&mut self.f32, name)
    }

    /// The integer tensor for input `name`, created empty on first use.
    pub fn int_mut(&mut self, name: &str) -> &mut IntTensor {
        entry(&mut self.int, name)
    }

    /// An f32 and an integer input at once (images and their labels).
    pub fn f32_and_int_mut(&mut self, f32: &str, int: &str) -> (&mut Tensor, &mut IntTensor) {
        (entry(&mut self.f32, f32), entry(&mut self.int, int))
    }

    pub fn f32(&self, name: &str) -> Option<&Tensor> {
        self.f32.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn int(&self, name: &str) -> Option<&IntTensor> {
        self.int.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// The tensor named `name` in `list`, appended empty if missing.
fn entry<'a, T: Default>(list: &'a mut Vec<(String, T)>, name: &str) -> &'a mut T {
    let i = match list.iter().position(|(n, _)| n == name) {
        Some(i) => i,
        None => {
            list.push((name.to_string(), T::default()));
            list.len() - 1
        }
    };
    &mut list[i].1
}

impl Feeds for Inputs {
    fn get(&self, name: &str) -> Option<Feed<'_>> {
        self.f32(name).map(Feed::from).or_else(|| self.int(name).map(Feed::from))
    }
    fn unknown(&self, known: &dyn Fn(&str) -> bool) -> Option<String> {
        let mut names = self.f32.iter().map(|(n, _)| n).chain(self.int.iter().map(|(n, _)| n));
        names.find(|n| !known(n)).cloned()
    }
}
