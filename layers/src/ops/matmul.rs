//! Batched matrix products of two values (attention scores, message passing with dense
//! adjacency, bilinear forms), one SGEMM per batch entry.

use super::broadcast::{broadcast_dim, broadcast_shape, broadcast_zip, check_broadcast, with_dims};
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, TensorRef, ValueRef};
use crate::{LayerError, Tensor};
use simdnn_kernels::gemm::{sgemm, Epilogue, MatMut, MatRef};

const BATCH_AXES: &str = "the batch axes of matmul (not broadcastable)";

/// `[..., M, K] x [..., K, N] -> [..., M, N]`: the product of the last two axes of each
/// input, for every index of the leading (batch) axes, which broadcast by NumPy's rules (a
/// rank-2 operand is shared by every batch entry). Either operand may be read transposed
/// (its last two axes swapped), as `[..., K, M]` or `[..., N, K]`.
#[derive(Default)]
pub struct MatMul {
    ta: bool,
    tb: bool,
}

/// The sizes of one product: `op(A)` is `m x k`, `op(B)` is `k x n`.
#[derive(Clone, Copy)]
struct Dims {
    m: usize,
    k: usize,
    n: usize,
}

impl MatMul {
    pub fn new() -> Self {
        MatMul { ta: false, tb: false }
    }
    /// Reads the first operand transposed: `a` is `[..., K, M]`.
    pub fn transpose_a(self) -> Self {
        MatMul { ta: true, ..self }
    }
    /// Reads the second operand transposed: `b` is `[..., N, K]` (`q k^T`).
    pub fn transpose_b(self) -> Self {
        MatMul { tb: true, ..self }
    }

    /// The product's sizes, or an error for operands of rank under 2 or inner sizes that
    /// differ.
    fn dims(&self, a: &[usize], b: &[usize]) -> Result<Dims, LayerError> {
        let last2 = |s: &[usize], t: bool| match *s {
            [.., r, c] => Ok(if t { (c, r) } else { (r, c) }),
            _ => Err(LayerError::InputShape {
                layer: self.describe(),
                expected: "operands of rank 2 or more ([..., rows, cols])".into(),
                got: s.to_vec(),
            }),
        };
        let ((m, ka), (kb, n)) = (last2(a, self.ta)?, last2(b, self.tb)?);
        if ka != kb {
            return Err(LayerError::ShapeMismatch {
                what: "matmul operands (the inner sizes, a's columns and b's rows, differ)",
                a: a.to_vec(),
                b: b.to_vec(),
            });
        }
        Ok(Dims { m, k: ka, n })
    }

    /// `op(A)` of batch entry `i` as an `m x k` matrix.
    fn op_a<'a>(&self, a: &'a [f32], d: Dims, i: usize) -> Result<MatRef<'a>, LayerError> {
        let data = &a[i * d.m * d.k..][..d.m * d.k];
        Ok(if self.ta { MatRef::new(data, d.k, d.m, d.m)?.t() } else { MatRef::new(data, d.m, d.k, d.k)? })
    }

    /// `op(B)` of batch entry `j` as a `k x n` matrix.
    fn op_b<'a>(&self, b: &'a [f32], d: Dims, j: usize) -> Result<MatRef<'a>, LayerError> {
        let data = &b[j * d.k * d.n..][..d.k * d.n];
        Ok(if self.tb { MatRef::new(data, d.n, d.k, d.k)?.t() } else { MatRef::new(data, d.k, d.n, d.n)? })
    }
}

/// The batch axes of a shape of rank 2 or more.
fn batch(shape: &[usize]) -> &[usize] {
    &shape[..shape.len() - 2]
}

/// Runs `f(o, i, j)` for every batch entry `o` of the output with the entries `i`, `j` of the
/// operands it multiplies, stopping at the first error.
fn each_entry(
    a: &[usize],
    b: &[usize],
    mut f: impl FnMut(usize, usize, usize) -> Result<(), LayerError>,
) -> Result<(), LayerError> {
    let mut result = Ok(());
    broadcast_zip(batch(a), batch(b), &mut |o, i, j| {
        if result.is_ok() {
            result = f(o, i, j);
        }
    });
    result
}

/// Makes `dx` the zeroed gradient of input `x` when several output entries add into one of
/// its entries (it was broadcast), and gives the `beta` the products then use.
fn prepare_grad(dx: &mut Tensor, x: TensorRef, out_entries: usize) -> f32 {
    dx.resize(x.shape);
    if batch(x.shape).iter().product::<usize>() == out_entries {
        0.0
    } else {
        dx.data_mut().fill(0.0);
        1.0
    }
}

impl Op for MatMul {
    fn describe(&self) -> String {
        format!("matmul{}{}", if self.ta { " a^T" } else { "" }, if self.tb { " b^T" } else { "" })
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(&self.describe(), inputs, 2)?;
        let (a, b) = (&inputs[0].shape, &inputs[1].shape);
        let d = self.dims(a, b)?;
        let mut shape = broadcast_shape(BATCH_AXES, batch(a), batch(b))?;
        shape.extend([d.m, d.n]);
        Ok(vec![ValueInfo::f32(&shape)])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (a, b) = (inputs[0].f32(|| self.describe())?, inputs[1].f32(|| self.describe())?);
        let d = self.dims(a.shape, b.shape)?;
        check_broadcast(BATCH_AXES, batch(a.shape), batch(b.shape))?;
        let rank = a.shape.len().max(b.shape.len());
        let y = &mut outputs[0];
        let dim = |i: usize| match i {
            i if i + 2 < rank => broadcast_dim(batch(a.shape), batch(b.shape), i),
            i if i + 2 == rank => d.m,
            _ => d.n,
        };
        with_dims(rank, dim, |s| y.resize(s));
        let out = y.data_mut();
        each_entry(a.shape, b.shape, |o, i, j| {
            let c = MatMut::new(&mut out[o * d.m * d.n..][..d.m * d.n], d.m, d.n, d.n)?;
            sgemm(cx.cfg(), 1.0, self.op_a(a.data, d, i)?, self.op_b(b.data, d, j)?, 0.0, c, Epilogue::NONE)?;
            Ok(())
        })
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let (a, b) = (io.inputs[0].f32(|| self.describe())?, io.inputs[1].f32(|| self.describe())?);
        let d = self.dims(a.shape, b.shape)?;
        check_broadcast(BATCH_AXES, batch(a.shape), batch(b.shape))?;
        let dy = io.d_outputs[0];
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        let entries = batch(dy.shape).iter().product::<usize>();
        let dc = |o: usize| MatRef::new(&dy.data[o * d.m * d.n..][..d.m * d.n], d.m, d.n, d.n);
        let [da, db] = io.d_inputs else {
            return Err(LayerError::InputCount {
                layer: self.describe(),
                expected: "2".into(),
                got: io.d_inputs.len(),
            });
        };
        if let Some(da) = da.as_deref_mut() {
            let beta = prepare_grad(da, a, entries);
            let out = da.data_mut();
            each_entry(a.shape, b.shape, |o, i, j| {
                let (rows, cols) = if self.ta { (d.k, d.m) } else { (d.m, d.k) };
                let g = MatMut::new(&mut out[i * d.m * d.k..][..d.m * d.k], rows, cols, cols)?;
                let (dc, ob) = (dc(o)?, self.op_b(b.data, d, j)?);
                // d op(A) = dC op(B)^T, transposed back when A is read transposed.
                let (x, y) = if self.ta { (ob, dc.t()) } else { (dc, ob.t()) };
                Ok(sgemm(cx.cfg(), 1.0, x, y, beta, g, Epilogue::NONE)?)
            })?;
        }
        if let Some(db) = db.as_deref_mut() {
            let beta = prepare_grad(db, b, entries);
            let out = db.data_mut();
            each_entry(a.shape, b.shape, |o, i, j| {
                let (rows, cols) = if self.tb { (d.n, d.k) } else { (d.k, d.n) };
                let g = MatMut::new(&mut out[j * d.k * d.n..][..d.k * d.n], rows, cols, cols)?;
                let (dc, oa) = (dc(o)?, self.op_a(a.data, d, i)?);
                // d op(B) = op(A)^T dC, transposed back when B is read transposed.
                let (x, y) = if self.tb { (dc.t(), oa) } else { (oa.t(), dc) };
                Ok(sgemm(cx.cfg(), 1.0, x, y, beta, g, Epilogue::NONE)?)
            })?;
        }
        Ok(())
    }

    fn macs(&self, inputs: &[ValueInfo], outputs: &[ValueInfo]) -> u64 {
        match (inputs, outputs) {
            ([a, b], [y]) => self.dims(&a.shape, &b.shape).map_or(0, |d| (y.len() * d.k) as u64),
            _ => 0,
        }
    }
}
