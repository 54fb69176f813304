//! Selecting entries of a value along an axis by an integer index tensor (rows of node
//! features by edge endpoints, tokens by position), and the block copies it shares with
//! slicing and scatter-add.

use super::broadcast::with_dims;
use crate::op::{expect_inputs, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, DType, ValueRef};
use crate::LayerError;

/// `(outer, len, inner)` of a shape around `axis`: the product of the axes before it, its
/// size, and the product of the axes after it.
pub(crate) fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

/// An error naming `what` unless every index lies in `0..len`.
pub(crate) fn check_indices(what: &'static str, index: &[i64], len: usize) -> Result<(), LayerError> {
    match index.iter().find(|&&i| usize::try_from(i).map_or(true, |i| i >= len)) {
        Some(&index) => Err(LayerError::IndexRange { what, index, len }),
        None => Ok(()),
    }
}

/// `y[o, k, :] = x[o, rows[k], :]` for `x` of `(outer, len, inner)` around an axis and `y`
/// of `(outer, rows.len(), inner)` (rows checked by the caller).
pub(crate) fn gather_rows(
    x: &[f32],
    y: &mut [f32],
    (outer, len, inner): (usize, usize, usize),
    rows: impl Iterator<Item = usize> + Clone,
) {
    let mut out = y.chunks_exact_mut(inner.max(1));
    for o in 0..outer {
        for r in rows.clone() {
            if let Some(dst) = out.next() {
                dst.copy_from_slice(&x[(o * len + r) * inner..][..inner]);
            }
        }
    }
}

/// `dx[o, rows[k], :] += dy[o, k, :]`, the adjoint of [`gather_rows`] (`dx` zeroed by the
/// caller where it should start from zero).
pub(crate) fn scatter_add_rows(
    dy: &[f32],
    dx: &mut [f32],
    (outer, len, inner): (usize, usize, usize),
    rows: impl Iterator<Item = usize> + Clone,
) {
    let mut src = dy.chunks_exact(inner.max(1));
    for o in 0..outer {
        for r in rows.clone() {
            if let Some(g) = src.next() {
                let dst = &mut dx[(o * len + r) * inner..][..inner];
                dst.iter_mut().zip(g).for_each(|(d, g)| *d += g);
            }
        }
    }
}

/// An error naming `layer` unless input `i` has type `types[i]`, for each given.
pub(crate) fn expect_types(layer: &str, inputs: &[ValueInfo], types: &[DType]) -> Result<(), LayerError> {
    match inputs.iter().zip(types).find(|(i, &t)| i.dtype != t) {
        Some((i, &t)) => Err(LayerError::InputType { layer: layer.into(), expected: t, got: i.shape.clone() }),
        None => Ok(()),
    }
}

/// The values of an integer index as row numbers (checked to be in range first).
pub(crate) fn as_rows(index: &[i64]) -> impl Iterator<Item = usize> + Clone + '_ {
    index.iter().map(|&i| i as usize)
}

/// `x [a.., n, b..]` and an integer `index [k..]` to `[a.., k.., b..]`: the entries of `x`
/// along `axis` at the given positions, in the index's order and shape (PyTorch's
/// `index_select` for a 1-D index, NumPy's `take` along an axis for any). An index out of
/// `0..n` is an error when run; the gradient adds back into the positions read (a position
/// read twice gets both).
pub struct IndexSelect {
    axis: usize,
}

/// [`IndexSelect`] under the name graph libraries use.
pub type Gather = IndexSelect;

impl IndexSelect {
    pub fn new(axis: usize) -> Self {
        IndexSelect { axis }
    }

    fn check_axis(&self, x: &[usize]) -> Result<(), LayerError> {
        if self.axis < x.len() {
            return Ok(());
        }
        Err(LayerError::InputShape {
            layer: self.describe(),
            expected: format!("rank above {}", self.axis),
            got: x.to_vec(),
        })
    }

    fn out_dim(&self, x: &[usize], index: &[usize], d: usize) -> usize {
        let k = index.len();
        if d < self.axis {
            x[d]
        } else if d < self.axis + k {
            index[d - self.axis]
        } else {
            x[d + 1 - k]
        }
    }
}

impl Op for IndexSelect {
    fn describe(&self) -> String {
        format!("index select axis {}", self.axis)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_inputs(&self.describe(), 2, inputs.len())?;
        expect_types(&self.describe(), inputs, &[DType::F32, DType::I64])?;
        let (x, index) = (&inputs[0].shape, &inputs[1].shape);
        self.check_axis(x)?;
        let rank = x.len() + index.len() - 1;
        Ok(vec![ValueInfo::f32(&(0..rank).map(|d| self.out_dim(x, index, d)).collect::<Vec<_>>())])
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (x, index) = (inputs[0].f32(|| self.describe())?, inputs[1].int(|| self.describe())?);
        self.check_axis(x.shape)?;
        let sizes = around(x.shape, self.axis);
        check_indices("index select: index", index.data, sizes.1)?;
        let y = &mut outputs[0];
        let rank = x.shape.len() + index.shape.len() - 1;
        with_dims(rank, |d| self.out_dim(x.shape, index.shape, d), |s| y.resize(s));
        gather_rows(x.data, y.data_mut(), sizes, as_rows(index.data));
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (x, index) = (io.inputs[0].f32(|| self.describe())?, io.inputs[1].int(|| self.describe())?);
        let dy = io.d_outputs[0];
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        let sizes = around(x.shape, self.axis);
        check_indices("index select: index", index.data, sizes.1)?;
        dx.resize(x.shape);
        dx.data_mut().fill(0.0);
        scatter_add_rows(dy.data, dx.data_mut(), sizes, as_rows(index.data));
        Ok(())
    }
}
